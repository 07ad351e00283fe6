"""TensorFlow's tensorflow/python/checkpoint/tensor_callable_test.py, for trackpoint.

TF's ``tensor_callable.Callable`` (TF-internal) lets ``_serialize_to_tensors``
return a function that the saver calls when it writes, once per save.
trackpoint calls ``_serialize_to_tensors`` itself at that moment, once per
save, so the test's object does its read-and-increment there; the expected
counter values are TF's.

Not applicable (TF's case -> why):

- test_callable_saved_model_compatibility: checks that ``tf.saved_model.save``
  refuses a Callable; trackpoint does not write SavedModels.
"""

import pytest

import trackpoint


class IncrementWhenSave(trackpoint.Trackable):
    def __init__(self):
        self.read_counter = trackpoint.Variable(0)

    def _serialize_to_tensors(self):
        value = self.read_counter.numpy().copy()
        self.read_counter.assign_add(1)
        return {"read_counter": value}

    def _restore_from_tensors(self, tensors):
        self.read_counter.assign(tensors["read_counter"])


@pytest.mark.parametrize("enable_async", [False, True], ids=["sync", "async"])
def test_test_callable(tmp_path, enable_async):
    options = trackpoint.CheckpointOptions(enable_async=enable_async)
    trackable = IncrementWhenSave()
    ckpt = trackpoint.Checkpoint(attr=trackable)
    prefix = tmp_path / "ckpt"
    save_path = ckpt.save(prefix, options=options)
    assert int(trackable.read_counter) == 1
    ckpt.save(prefix, options=options)
    assert int(trackable.read_counter) == 2
    ckpt.restore(save_path)
    assert int(trackable.read_counter) == 0
    # What each save wrote: the value before its increment.
    assert trackpoint.load_variable(save_path, "attr/.ATTRIBUTES/read_counter") == 0
    assert trackpoint.load_variable(f"{prefix}-2", "attr/.ATTRIBUTES/read_counter") == 1
