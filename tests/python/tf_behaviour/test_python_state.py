"""TensorFlow's tensorflow/python/trackable/python_state_test.py, for
trackpoint.PythonState: ``serialize()`` returns bytes (or str),
``deserialize()`` receives bytes, and TensorFlow's numpy example runs as it
is but for the import.

Cases that cannot apply: testNoGraphPollution (TF graph mode and sessions).
testAssertConsumedFailsWithUsedPythonState builds its attribute with the
TF-internal ``PythonStringStateSaveable`` and ``_gather_saveables_for_checkpoint``;
the same behaviour is tested with trackpoint's protocol (a Trackable whose
``_serialize_to_tensors`` returns the attribute).
"""

import io

import numpy
import pytest

import trackpoint


class _NumpyState(trackpoint.AutoTrackable):
    """TensorFlow's test helper: numpy array attributes saved through
    _NumpyWrapper children of an inner object, re-created on restore."""

    def __init__(self):
        super().__setattr__("_arrays", trackpoint.AutoTrackable())

    def __getattribute__(self, name):
        try:
            arrays = super().__getattribute__("_arrays")
        except AttributeError:
            return super().__getattribute__(name)
        try:
            value = getattr(arrays, name)
        except AttributeError:
            dummy_array = numpy.array([])
            setattr(arrays, name, _NumpyWrapper(dummy_array))
            value = getattr(arrays, name)
            if value.array is dummy_array:
                delattr(arrays, name)
                return super().__getattribute__(name)
        if isinstance(value, _NumpyWrapper):
            return value.array
        return super().__getattribute__(name)

    def __setattr__(self, name, value):
        if isinstance(value, (numpy.ndarray, numpy.generic)):
            try:
                existing = getattr(self._arrays, name)
                existing.array = value
                return
            except AttributeError:
                value = _NumpyWrapper(value)
            setattr(self._arrays, name, value)
            return
        super().__setattr__(name, value)


class _NumpyWrapper(trackpoint.PythonState):
    """TensorFlow's documented PythonState example, unchanged but for the import."""

    def __init__(self, array):
        self.array = array

    def serialize(self):
        string_file = io.BytesIO()
        try:
            numpy.save(string_file, self.array, allow_pickle=False)
            serialized = string_file.getvalue()
        finally:
            string_file.close()
        return serialized

    def deserialize(self, string_value):
        string_file = io.BytesIO(string_value)
        try:
            self.array = numpy.load(string_file, allow_pickle=False)
        finally:
            string_file.close()


def test_wrapper(tmp_path):
    root = trackpoint.Checkpoint(numpy=_NumpyWrapper(numpy.array([1.0])))
    save_path = root.save(str(tmp_path / "ckpt"))
    root.numpy.array *= 2.0
    assert root.numpy.array.tolist() == [2.0]
    root.restore(save_path)
    assert root.numpy.array.tolist() == [1.0]


def test_save_restore_numpy_state(tmp_path):
    prefix = str(tmp_path / "ckpt")
    save_state = _NumpyState()
    saver = trackpoint.Checkpoint(numpy=save_state)
    save_state.a = numpy.ones([2, 2])
    save_state.b = numpy.ones([2, 2])
    save_state.b = numpy.zeros([2, 2])
    save_state.c = numpy.int64(3)
    numpy.testing.assert_array_equal(save_state.a, numpy.ones([2, 2]))
    numpy.testing.assert_array_equal(save_state.b, numpy.zeros([2, 2]))
    assert save_state.c == 3
    first_save_path = saver.save(prefix)
    save_state.a[1, 1] = 2.0
    save_state.c = numpy.int64(4)
    second_save_path = saver.save(prefix)

    load_state = _NumpyState()
    loader = trackpoint.Checkpoint(numpy=load_state)
    loader.restore(first_save_path).initialize_or_restore()
    numpy.testing.assert_array_equal(load_state.a, numpy.ones([2, 2]))
    numpy.testing.assert_array_equal(load_state.b, numpy.zeros([2, 2]))
    assert load_state.c == 3
    load_state.a[0, 0] = 42.0
    numpy.testing.assert_array_equal(load_state.a, [[42.0, 1.0], [1.0, 1.0]])
    loader.restore(first_save_path).run_restore_ops()
    numpy.testing.assert_array_equal(load_state.a, numpy.ones([2, 2]))
    loader.restore(second_save_path).run_restore_ops()
    numpy.testing.assert_array_equal(load_state.a, [[1.0, 1.0], [1.0, 2.0]])
    numpy.testing.assert_array_equal(load_state.b, numpy.zeros([2, 2]))
    assert load_state.c == 4


def test_docstring_example(tmp_path):
    arrays = _NumpyState()
    checkpoint = trackpoint.Checkpoint(numpy_arrays=arrays)
    arrays.x = numpy.zeros([3, 4])
    save_path = checkpoint.save(str(tmp_path / "ckpt"))
    arrays.x[1, 1] = 4.0
    checkpoint.restore(save_path)
    numpy.testing.assert_array_equal(arrays.x, numpy.zeros([3, 4]))

    second_checkpoint = trackpoint.Checkpoint(numpy_arrays=_NumpyState())
    second_checkpoint.restore(save_path)
    numpy.testing.assert_array_equal(second_checkpoint.numpy_arrays.x, numpy.zeros([3, 4]))


def test_deserialize_receives_the_bytes_serialize_returned(tmp_path):
    class Raw(trackpoint.PythonState):
        def __init__(self, value):
            self.value = value

        def serialize(self):
            return self.value

        def deserialize(self, string_value):
            self.value = string_value

    payload = bytes(range(256))  # not UTF-8
    path = trackpoint.Checkpoint(s=Raw(payload)).write(str(tmp_path / "ckpt"))
    fresh = Raw(b"")
    trackpoint.Checkpoint(s=fresh).read(path).assert_consumed()
    assert type(fresh.value) is bytes and fresh.value == payload
    text = Raw("héllo")
    path = trackpoint.Checkpoint(s=text).write(str(tmp_path / "text"))
    trackpoint.Checkpoint(s=fresh).read(path)
    assert fresh.value == "héllo".encode()


def test_serialize_returning_another_type_is_refused(tmp_path):
    class Bad(trackpoint.PythonState):
        def serialize(self):
            return 3

    with pytest.raises(TypeError, match="bytes or str"):
        trackpoint.Checkpoint(s=Bad()).write(str(tmp_path / "ckpt"))


def test_assert_consumed_fails_with_used_python_state(tmp_path):
    class HasConfig(trackpoint.Trackable):
        def _serialize_to_tensors(self):
            return {"foo_attr": numpy.array(b"", dtype=object)}

    saved = trackpoint.Checkpoint(obj=HasConfig())
    save_path = saved.save(str(tmp_path / "ckpt"))
    restored = trackpoint.Checkpoint(obj=trackpoint.Trackable())
    status = restored.restore(save_path)
    with pytest.raises(AssertionError, match="foo_attr"):
        status.assert_consumed()
