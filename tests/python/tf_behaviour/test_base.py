"""TensorFlow's tensorflow/python/trackable/base_test.py, for trackpoint.

Every case of TF's file that means something without TensorFlow is here,
under TF's test name, with TF's expected values (the saved keys of
testAssertConsumedWithUnusedPythonState come from a run of TF 2.21).

Not applicable (TF's case -> why):

- testAddVariableOverwrite: ``_add_variable_with_custom_getter`` with
  variable-scope getters, in separate TF graphs, is TF-internal variable
  creation; trackpoint creates variables directly. (Replacing a declared
  child with ``overwrite=True`` is tested by testOverwrite.)
"""

import pytest

import trackpoint


def test_testOverwrite():
    root = trackpoint.Trackable()
    leaf = trackpoint.Trackable()
    root._track_trackable(leaf, name="leaf")
    ((current_name, current_dependency),) = root._trackable_children().items()
    assert current_dependency is leaf
    assert current_name == "leaf"
    duplicate_name_dep = trackpoint.Trackable()
    with pytest.raises(ValueError, match="already declared as a dependency"):
        root._track_trackable(duplicate_name_dep, name="leaf")
    root._track_trackable(duplicate_name_dep, name="leaf", overwrite=True)
    ((current_name, current_dependency),) = root._trackable_children().items()
    assert current_dependency is duplicate_name_dep
    assert current_name == "leaf"
    assert root._lookup_dependency("leaf") is duplicate_name_dep


def test_track_trackable_children_are_saved_and_restored(tmp_path):
    # What TF's _track_trackable is for: a plain Trackable declaring children.
    root = trackpoint.Trackable()
    root._track_trackable(trackpoint.Variable(3.0), name="v")
    path = trackpoint.Checkpoint(obj=root).write(tmp_path / "c")
    assert "obj/v/.ATTRIBUTES/VARIABLE_VALUE" in dict(trackpoint.list_variables(path))
    fresh = trackpoint.Trackable()
    status = trackpoint.Checkpoint(obj=fresh).read(path)
    v = fresh._track_trackable(trackpoint.Variable(0.0), name="v")  # deferred restoration
    assert float(v) == 3.0
    status.assert_consumed()
    with pytest.raises(TypeError):
        fresh._track_trackable(object(), name="x")


def test_testAssertConsumedWithUnusedPythonState(tmp_path):
    has_config = trackpoint.Trackable()
    has_config.get_config = lambda: {}
    saved = trackpoint.Checkpoint(obj=has_config)
    save_path = saved.save(tmp_path / "ckpt")
    # TF 2.21 saves nothing for get_config: only the counter and the graph.
    assert sorted(dict(trackpoint.list_variables(save_path))) == [
        "_CHECKPOINTABLE_OBJECT_GRAPH", "save_counter/.ATTRIBUTES/VARIABLE_VALUE"]
    restored = trackpoint.Checkpoint(obj=trackpoint.Trackable())
    restored.restore(save_path).assert_consumed()


def test_testBuggyGetConfig(tmp_path):
    class NotSerializable:
        pass

    class GetConfigRaisesError(trackpoint.Trackable):
        def get_config(self):
            return NotSerializable()

    path = trackpoint.Checkpoint(obj=GetConfigRaisesError()).save(tmp_path / "ckpt")
    assert path.endswith("ckpt-1")
