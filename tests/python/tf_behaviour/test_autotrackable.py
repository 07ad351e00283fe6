"""TensorFlow's tensorflow/python/trackable/autotrackable_test.py, for
trackpoint.AutoTrackable and the list/dict wrappers it assigns.

Cases that cannot apply: testMultipleAssignment checks the TF-internal
``_track_trackable(..., overwrite=)`` / ``_lookup_dependency`` API (its
attribute half, reassigning ``root.leaf``, is tested below);
testRemoveDependency's ``_unconditional_checkpoint_dependencies`` is
TF-internal (its ``_trackable_children`` half is tested); testAssertions
compares structures with ``tf.nest`` and TF tensors (the wrapping half is
tested with numpy). ``util.list_objects`` is TensorFlow's internal walk of
every reachable object: trackpoint's is ``trackpoint._restore.reachable_objects``.

Deliberate difference: TensorFlow silently leaves plain Python values out of
a checkpoint; trackpoint refuses to save them. testNestedLists appends the
number 1 to a saved list; here a non-trackable object stands in for it.
"""

import numpy as np
import pytest

import trackpoint
from trackpoint._restore import reachable_objects


def _contains(objects, obj) -> bool:
    return any(o is obj for o in objects)


def test_multiple_assignment():
    root = trackpoint.AutoTrackable()
    root.leaf = trackpoint.AutoTrackable()
    root.leaf = root.leaf
    duplicate_name_dep = trackpoint.AutoTrackable()
    root.leaf = duplicate_name_dep
    assert root._trackable_children()["leaf"] is duplicate_name_dep


def test_remove_dependency():
    root = trackpoint.AutoTrackable()
    root.a = trackpoint.AutoTrackable()
    assert len(root._trackable_children()) == 1
    assert root._trackable_children()["a"] is root.a
    del root.a
    assert not hasattr(root, "a")
    assert len(root._trackable_children()) == 0
    root.a = trackpoint.AutoTrackable()
    assert len(root._trackable_children()) == 1
    assert root._trackable_children()["a"] is root.a


def test_list_basic():
    a, b = trackpoint.AutoTrackable(), trackpoint.AutoTrackable()
    a.l = [b]
    c = trackpoint.AutoTrackable()
    a.l.append(c)
    a_deps = reachable_objects(a)
    assert _contains(a_deps, b) and _contains(a_deps, c)
    assert "l" in a._trackable_children()
    direct = a._trackable_children()["l"]
    assert b in direct and c in direct


def test_mutation_dirties_list(tmp_path):
    a, b = trackpoint.AutoTrackable(), trackpoint.AutoTrackable()
    a.l = [b]
    a.l.insert(0, trackpoint.AutoTrackable())
    checkpoint = trackpoint.Checkpoint(a=a)
    with pytest.raises(ValueError, match="A list element was replaced"):
        checkpoint.save(str(tmp_path / "ckpt"))
    assert not list(tmp_path.iterdir())  # nothing written, no state file


def test_out_of_band_edit_dirties_list(tmp_path):
    a, b = trackpoint.AutoTrackable(), trackpoint.AutoTrackable()
    held_reference = [b]
    a.l = held_reference
    held_reference.append(trackpoint.AutoTrackable())
    checkpoint = trackpoint.Checkpoint(a=a)
    with pytest.raises(ValueError, match="The wrapped list was modified"):
        checkpoint.save(str(tmp_path / "ckpt"))


def test_nested_lists(tmp_path):
    a = trackpoint.AutoTrackable()
    a.l = []
    b = trackpoint.AutoTrackable()
    a.l.append([b])
    c = trackpoint.AutoTrackable()
    a.l[0].append(c)
    a_deps = reachable_objects(a)
    assert _contains(a_deps, b) and _contains(a_deps, c)
    # TensorFlow appends the number 1 here; trackpoint refuses to save a plain
    # value it would drop (see test_stateful.py), so a non-trackable object stands in.
    one = object()
    a.l[0].append(one)
    d = trackpoint.AutoTrackable()
    a.l[0].append(d)
    a_deps = reachable_objects(a)
    assert _contains(a_deps, d) and _contains(a_deps, b) and _contains(a_deps, c)
    assert not _contains(a_deps, one)
    e, f = trackpoint.AutoTrackable(), trackpoint.AutoTrackable()
    a.l1 = [[], [e]]
    a.l1[0].append(f)
    a_deps = reachable_objects(a)
    assert _contains(a_deps, e) and _contains(a_deps, f)
    checkpoint = trackpoint.Checkpoint(a=a)
    checkpoint.save(str(tmp_path / "ckpt"))
    a.l[0].append(trackpoint.NoDependency([]))
    a.l[0][-1].append(5)
    checkpoint.save(str(tmp_path / "ckpt"))
    # Dirtying the inner list makes the root unsaveable.
    a.l[0][1] = 2
    with pytest.raises(ValueError, match="A list element was replaced"):
        checkpoint.save(str(tmp_path / "ckpt"))


def test_assignment_wraps_nested_containers():
    a = trackpoint.AutoTrackable()
    a.l = {"k": [np.zeros([2, 2])]}
    assert isinstance(a.l, dict) and isinstance(a.l["k"], list)
    np.testing.assert_array_equal(a.l["k"][0], np.zeros([2, 2]))
    assert "k" in a.l._trackable_children()


# ---- what the list wrapper's rules protect: a restore into the right objects -------------
def test_appending_through_the_attribute_is_saved_and_shared(tmp_path):
    """l = []; m.l = l; m.l.append(v): v is in l and in the checkpoint."""
    m = trackpoint.AutoTrackable()
    held = []
    m.l = held
    v = trackpoint.Variable(np.float32(7.0))
    m.l.append(v)
    assert held == [v] and held[0] is v
    path = trackpoint.Checkpoint(m=m).write(str(tmp_path / "ckpt"))
    assert trackpoint.load_checkpoint(path).get_tensor(
        "m/l/0/.ATTRIBUTES/VARIABLE_VALUE") == np.float32(7.0)


@pytest.mark.parametrize("change", [
    lambda l, v: l.insert(0, v), lambda l, v: l.__delitem__(0), lambda l, v: l.pop(0),
    lambda l, v: l.remove(l[0]), lambda l, v: l.reverse(), lambda l, v: l.sort(key=id),
    lambda l, v: l.__setitem__(0, v), lambda l, v: l.__setitem__(slice(0, 1), [v]),
    lambda l, v: l.clear(), lambda l, v: l.__imul__(0),
])
def test_every_move_of_a_tracked_element_refuses_to_save(tmp_path, change):
    m = trackpoint.AutoTrackable()
    m.l = [trackpoint.Variable(1.0), trackpoint.Variable(2.0)]
    change(m.l, trackpoint.Variable(3.0))
    with pytest.raises(ValueError, match="Unable to save"):
        trackpoint.Checkpoint(m=m).save(str(tmp_path / "ckpt"))
    assert not (tmp_path / "checkpoint").exists()


def test_external_change_of_a_dict_refuses_to_save(tmp_path):
    m = trackpoint.AutoTrackable()
    held = {}
    m.d = held
    held["a"] = trackpoint.Variable(1.0)
    with pytest.raises(ValueError, match="modified outside the wrapper"):
        trackpoint.Checkpoint(m=m).write(str(tmp_path / "ckpt"))


def test_dict_values_may_be_replaced_and_deleted(tmp_path):
    m = trackpoint.AutoTrackable()
    m.d = {"a": trackpoint.Variable(1.0), "b": trackpoint.Variable(2.0)}
    m.d["a"] = trackpoint.Variable(5.0)
    del m.d["b"]
    path = trackpoint.Checkpoint(m=m).write(str(tmp_path / "ckpt"))
    keys = sorted(k for k, _ in trackpoint.list_variables(path))
    assert keys == ["_CHECKPOINTABLE_OBJECT_GRAPH", "m/d/a/.ATTRIBUTES/VARIABLE_VALUE"]
    assert trackpoint.load_variable(path, "m/d/a/.ATTRIBUTES/VARIABLE_VALUE") == 5.0


def test_non_string_key_to_a_trackable_refuses_to_save(tmp_path):
    m = trackpoint.AutoTrackable()
    m.d = {1: trackpoint.Variable(1.0)}
    with pytest.raises(ValueError, match="non-string key"):
        trackpoint.Checkpoint(m=m).write(str(tmp_path / "ckpt"))
    m.e = {1: 5, "x": trackpoint.Variable(1.0)}  # TF 2.21 saves m/e/x, dropping the 5
    del m.d
    with pytest.raises(ValueError, match="cannot save m/e/1:"):  # trackpoint refuses to drop it
        trackpoint.Checkpoint(m=m).write(str(tmp_path / "refused"))
    m.e = {1: None, "x": m.e["x"]}
    path = trackpoint.Checkpoint(m=m).write(str(tmp_path / "ok"))
    assert "m/e/x/.ATTRIBUTES/VARIABLE_VALUE" in dict(trackpoint.list_variables(path))


def test_deferred_restore_into_an_appended_element(tmp_path):
    m = trackpoint.AutoTrackable()
    m.l = [trackpoint.Variable(np.float32(1.0)), trackpoint.Variable(np.float32(2.0))]
    path = trackpoint.Checkpoint(m=m).write(str(tmp_path / "ckpt"))
    fresh = trackpoint.AutoTrackable()
    fresh.l = []
    trackpoint.Checkpoint(m=fresh).read(path)
    fresh.l.append(trackpoint.Variable(np.float32(0.0)))
    fresh.l.append(trackpoint.Variable(np.float32(0.0)))
    assert [float(v.numpy()) for v in fresh.l] == [1.0, 2.0]


def test_no_dependency_attribute_is_not_saved(tmp_path):
    m = trackpoint.AutoTrackable()
    m.v = trackpoint.NoDependency(trackpoint.Variable(1.0))
    m.cache = trackpoint.NoDependency([1, 2])
    assert type(m.cache) is list and isinstance(m.v, trackpoint.Variable)
    assert m._trackable_children() == {}
