"""The walk a save keeps between saves (trackable/structure.py): after every
kind of change of structure, the next save writes exactly what a save
without any kept walk writes."""

import gc
import weakref

import numpy as np
import pytest

import trackpoint
from trackpoint import _saver
from trackpoint.trackable import structure


def stored(prefix) -> dict:
    """key -> (dtype, bytes) of everything in the checkpoint, the object graph included."""
    reader = trackpoint.load_checkpoint(prefix)
    out = {}
    for key, _shape in trackpoint.list_variables(prefix):
        value = np.asarray(reader.get_tensor(key))
        out[key] = (str(value.dtype), value.tobytes() if value.dtype != object else
                    repr(value.tolist()))
    return out


def assert_writes_as_uncached(ckpt, tmp_path, name):
    """ckpt.write equals a write that walks the graph anew."""
    cached = ckpt.write(str(tmp_path / f"{name}-cached"))
    walked = _saver.write_object_graph(ckpt._graph_root(), str(tmp_path / f"{name}-walked"))
    assert stored(cached) == stored(walked)
    return stored(cached)


class Layer(trackpoint.AutoTrackable):
    def __init__(self, value):
        self.w = trackpoint.Variable(np.full(3, value, np.float32))


def model():
    m = trackpoint.AutoTrackable()
    m.layers = [Layer(1.0), Layer(2.0)]
    m.table = {"a": trackpoint.Variable([1, 2])}
    m.step = trackpoint.Variable(0, dtype="int64")
    return m


def replace_attribute(m):
    m.step = trackpoint.Variable(7, dtype="int64")


def add_attribute(m):
    m.extra = Layer(5.0)


def delete_attribute(m):
    del m.table


def append(m):
    m.layers.append(Layer(3.0))


def extend_nested(m):
    m.layers[0].more = [trackpoint.Variable([4.0])]


def dict_set(m):
    m.table["b"] = trackpoint.Variable([3])


def dict_replace(m):
    m.table["a"] = trackpoint.Variable([9, 9])


def dict_delete(m):
    del m.table["a"]


def track_trackable(m):
    m._track_trackable(trackpoint.Variable([6.0]), "declared")


def private_trackable(m):
    m._hidden = Layer(8.0)  # a private attribute holding a trackable is a child too


def assign_value(m):
    m.layers[1].w.assign(np.full(3, -1.0, np.float32))


def list_in_dict(m):
    m.table["c"] = [trackpoint.Variable([1.5])]
    m.table["c"].append(trackpoint.Variable([2.5]))


CHANGES = [replace_attribute, add_attribute, delete_attribute, append, extend_nested, dict_set,
           dict_replace, dict_delete, track_trackable, private_trackable, assign_value,
           list_in_dict]


@pytest.mark.parametrize("change", CHANGES, ids=lambda f: f.__name__)
def test_a_save_after_a_change_writes_what_a_fresh_walk_writes(tmp_path, change):
    m = model()
    ckpt = trackpoint.Checkpoint(model=m)
    before = assert_writes_as_uncached(ckpt, tmp_path, "before")
    assert ckpt._walk_cache().value is not None  # the walk is kept
    change(m)
    after = assert_writes_as_uncached(ckpt, tmp_path, "after")
    assert after != before  # every change above changes what is saved


@pytest.mark.parametrize("change", CHANGES, ids=lambda f: f.__name__)
def test_a_change_through_a_checkpoint_with_a_root(tmp_path, change):
    m = model()
    ckpt = trackpoint.Checkpoint(root=m, extra_step=trackpoint.Variable(3))
    before = assert_writes_as_uncached(ckpt, tmp_path, "before")
    change(m)
    assert assert_writes_as_uncached(ckpt, tmp_path, "after") != before


def test_the_values_of_a_kept_walk_are_read_at_each_save(tmp_path):
    m = model()
    ckpt = trackpoint.Checkpoint(model=m)
    ckpt.write(str(tmp_path / "a"))
    m.step.assign(41)
    m.layers[0].w.assign([7.0, 8.0, 9.0])
    path = ckpt.write(str(tmp_path / "b"))
    reader = trackpoint.load_checkpoint(path)
    assert int(reader.get_tensor("model/step/.ATTRIBUTES/VARIABLE_VALUE")) == 41
    assert reader.get_tensor("model/layers/0/w/.ATTRIBUTES/VARIABLE_VALUE").tolist() == [7, 8, 9]


def test_an_async_save_copies_the_values_of_a_kept_walk(tmp_path):
    m = model()
    ckpt = trackpoint.Checkpoint(model=m)
    options = trackpoint.CheckpointOptions(enable_async=True)
    ckpt.write(str(tmp_path / "a"), options)
    ckpt.sync()
    m.step.assign(5)
    path = ckpt.write(str(tmp_path / "b"), options)
    m.step.assign(6)  # after the snapshot: not in this checkpoint
    ckpt.sync()
    assert int(trackpoint.load_checkpoint(path).get_tensor(
        "model/step/.ATTRIBUTES/VARIABLE_VALUE")) == 5


def test_a_list_changed_behind_its_wrapper_still_refuses_to_save(tmp_path):
    plain = [trackpoint.Variable(1.0)]
    m = trackpoint.AutoTrackable()
    m.items = plain
    ckpt = trackpoint.Checkpoint(model=m)
    ckpt.write(str(tmp_path / "a"))
    plain.append(trackpoint.Variable(2.0))  # not through m.items: no notice
    with pytest.raises(ValueError, match="modified outside the wrapper"):
        ckpt.write(str(tmp_path / "b"))


def test_a_dict_changed_behind_its_wrapper_still_refuses_to_save(tmp_path):
    plain = {"a": trackpoint.Variable(1.0)}
    m = trackpoint.AutoTrackable()
    m.table = plain
    ckpt = trackpoint.Checkpoint(model=m)
    ckpt.write(str(tmp_path / "a"))
    plain["a"] = trackpoint.Variable(2.0)
    with pytest.raises(ValueError, match="modified outside the wrapper"):
        ckpt.write(str(tmp_path / "b"))


def test_a_plain_value_assigned_after_a_save_is_refused(tmp_path):
    m = model()
    ckpt = trackpoint.Checkpoint(model=m)
    ckpt.write(str(tmp_path / "a"))
    m.epoch = 3
    with pytest.raises(trackpoint.errors.InvalidArgumentError, match="model/epoch"):
        ckpt.write(str(tmp_path / "b"))


def test_a_plain_value_added_to_a_list_after_a_save_is_refused(tmp_path):
    m = model()
    m.names = []
    ckpt = trackpoint.Checkpoint(model=m)
    ckpt.write(str(tmp_path / "a"))
    m.names.append("x")
    with pytest.raises(trackpoint.errors.InvalidArgumentError, match="model/names"):
        ckpt.write(str(tmp_path / "b"))


class Dynamic(trackpoint.Trackable):
    """Children computed at each call, with no notice of changes."""

    def __init__(self):
        self.values = [trackpoint.Variable([1.0])]

    def _trackable_children(self):
        return {str(i): v for i, v in enumerate(self.values)}


class DynamicAuto(trackpoint.AutoTrackable):
    def _trackable_children(self):
        return {**super()._trackable_children(), **self.__dict__.get("_self_dynamic", {})}


def test_objects_that_do_not_announce_changes_are_walked_at_every_save(tmp_path):
    m = model()
    m.dynamic = Dynamic()
    m.auto = DynamicAuto()
    m.arrays = [np.zeros(2, np.float32)]  # an adapter, not an announcing class
    ckpt = trackpoint.Checkpoint(model=m)
    before = assert_writes_as_uncached(ckpt, tmp_path, "before")
    assert ckpt._walk_cache().value is None
    m.dynamic.values.append(trackpoint.Variable([2.0]))
    object.__setattr__(m.auto, "_self_dynamic", {"d": trackpoint.Variable([3.0])})
    m.arrays[0][:] = 4.0
    after = assert_writes_as_uncached(ckpt, tmp_path, "after")
    assert "model/dynamic/1/.ATTRIBUTES/VARIABLE_VALUE" in after
    assert "model/auto/d/.ATTRIBUTES/VARIABLE_VALUE" in after
    assert after != before


def test_a_subclass_overriding_no_walked_method_keeps_the_notices():
    assert structure.announced(Layer(1.0))
    assert structure.announced(trackpoint.Checkpoint())
    assert not structure.announced(DynamicAuto())
    assert not structure.announced(Dynamic())


def test_a_weakly_held_root_is_not_kept_alive_by_a_save(tmp_path):
    m = model()
    ckpt = trackpoint.Checkpoint(root=weakref.ref(m))
    ckpt.write(str(tmp_path / "a"))
    alive = weakref.ref(m)
    del m
    gc.collect()
    assert alive() is None
    with pytest.raises(ValueError, match="no longer exists"):
        ckpt.write(str(tmp_path / "b"))


def test_a_kept_walk_does_not_keep_replaced_objects_alive(tmp_path):
    m = model()
    ckpt = trackpoint.Checkpoint(model=m)
    ckpt.write(str(tmp_path / "a"))
    old = weakref.ref(m.layers[0].w.numpy())
    m.layers[0].w = trackpoint.Variable(np.zeros(3, np.float32))
    gc.collect()
    assert old() is None  # the change emptied the cache that held the old array
