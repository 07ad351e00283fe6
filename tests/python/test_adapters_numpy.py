"""adapters/numpy.py: numpy arrays saved as variables and restored in place."""

import numpy as np
import pytest

import trackpoint
from trackpoint import errors
from trackpoint.adapters.numpy import NumpyArray

GRAPH = "_CHECKPOINTABLE_OBJECT_GRAPH"


def var(path):
    return f"{path}/.ATTRIBUTES/VARIABLE_VALUE"


def keys(path):
    return sorted(trackpoint.load_checkpoint(path).get_variable_to_shape_map())


def test_checkpoint_keyword_arrays_are_variables_restored_in_place(tmp_path):
    w = np.arange(6, dtype=np.float32).reshape(2, 3)
    step = np.array(41, dtype=np.int64)
    path = trackpoint.Checkpoint(w=w, step=step).write(tmp_path / "c")
    assert keys(path) == [GRAPH, var("step"), var("w")]
    reader = trackpoint.load_checkpoint(path)
    assert reader.get_tensor(var("w")).dtype == np.float32
    assert reader.get_tensor(var("step")) == 41

    w2, step2 = np.zeros((2, 3), np.float32), np.zeros((), np.int64)
    ckpt = trackpoint.Checkpoint(w=w2, step=step2)
    assert ckpt.w is w2  # attributes keep the array itself
    assert isinstance(ckpt._trackable_children()["w"], NumpyArray)
    ckpt.read(path).assert_consumed()
    np.testing.assert_array_equal(w2, w)  # the same array object now holds the values
    assert step2 == 41


def test_arrays_in_autotrackable_attributes_lists_and_dicts(tmp_path):
    def make(fill):
        model = trackpoint.AutoTrackable()
        model.kernel = np.full((3, 2), fill, np.float64)
        model.layers = [np.full(4, fill, np.int32), np.full((), fill, np.float16)]
        model.table = {"a/b": np.full(2, fill, np.uint8), "c": np.full(1, bool(fill))}
        return model

    source = make(1)
    path = trackpoint.Checkpoint(model=source).write(tmp_path / "c")
    assert keys(path) == sorted(
        [
            GRAPH,
            var("model/kernel"),
            var("model/layers/0"),
            var("model/layers/1"),
            var("model/table/a.Sb"),
            var("model/table/c"),
        ]
    )
    target = make(0)
    arrays = [
        target.kernel,
        target.layers[0],
        target.layers[1],
        target.table["a/b"],
        target.table["c"],
    ]
    assert all(type(a) is np.ndarray for a in arrays)
    trackpoint.Checkpoint(model=target).read(path).assert_consumed()
    for array, expected in zip(
        arrays,
        [np.full((3, 2), 1.0), np.full(4, 1), np.full((), 1.0), np.full(2, 1), np.full(1, True)],
    ):
        np.testing.assert_array_equal(array, expected)
    assert np.asarray(target.kernel).dtype == np.float64


def test_restores_into_a_strided_view(tmp_path):
    path = trackpoint.Checkpoint(w=np.arange(4.0)).write(tmp_path / "c")
    base = np.zeros(8)
    trackpoint.Checkpoint(w=base[::2]).read(path).assert_consumed()
    assert base.tolist() == [0, 0, 1, 0, 2, 0, 3, 0]


def test_read_only_arrays_are_rejected():
    frozen = np.zeros(3)
    frozen.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        trackpoint.Checkpoint(w=frozen)
    with pytest.raises(ValueError, match="read-only"):
        trackpoint.Checkpoint(w=np.broadcast_to(np.zeros(1), (4,)))
    model = trackpoint.AutoTrackable()
    with pytest.raises(ValueError, match="read-only"):
        model.w = frozen


def test_shape_mismatch_names_the_key(tmp_path):
    path = trackpoint.Checkpoint(w=np.zeros((2, 3), np.float32)).write(tmp_path / "c")
    with pytest.raises(errors.InvalidArgumentError) as info:
        trackpoint.Checkpoint(w=np.zeros((3, 2), np.float32)).read(path)
    assert "'w/.ATTRIBUTES/VARIABLE_VALUE'" in str(info.value)
    assert "checkpoint has float32[2, 3], object has float32[3, 2]" in str(info.value)


def test_dtype_mismatch_is_refused(tmp_path):
    path = trackpoint.Checkpoint(w=np.zeros(2, np.float32)).write(tmp_path / "c")
    with pytest.raises(errors.InvalidArgumentError, match="object has float64"):
        trackpoint.Checkpoint(w=np.zeros(2, np.float64)).read(path)


def test_one_array_reached_twice_is_saved_once(tmp_path):
    shared = np.arange(3.0)
    path = trackpoint.Checkpoint(x=shared, y=shared).write(tmp_path / "c")
    assert keys(path) == sorted([GRAPH, var("x")])
