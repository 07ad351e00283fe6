"""TensorFlow's tensorflow/python/checkpoint/checkpoint_test.py, for trackpoint.

Every case of TF's file that means something without TensorFlow is here,
under TF's test name (``test_<TF name>``), with TF's expected values.

Not applicable (TF's case -> why):

- InterfaceTests.testAddVariable, testShapeDtype: ``add_variable`` with
  initializers and variable scopes is a TF-internal helper (the local names
  and escaping it checks are covered by testVariableNameEscaping,
  testNumberedPath, testLocalNameValidation below).
- testMoreComplexSaveableReturnedWithGlobalName, TemplateTests,
  SerializeToTensorTest.test_reference_variable: TF1 graph mode, sessions,
  ``tf.compat.v1.train.Saver`` over SaveableObjects, templates and reference
  variables.
- testFreezing: ``frozen_saver`` builds a graph-mode saver.
- test_write_checkpoint_path_{str,tensor,tensor_does_not_exist}_from_function:
  ``tf.function`` and tensor paths.
- test_save_in_graph_but_no_session: graph mode.
- testPassingCheckpointOptions, its device part: ops placed on devices.
- testMoreComplexSaveableReturned uses ``_gather_saveables_for_checkpoint``
  (TF-internal SaveableObject); the same behaviour (one saved tensor restored
  into two variables) is tested through ``_serialize_to_tensors``.

Object paths in messages: TF writes ``(root).v1``, trackpoint
``v1/.ATTRIBUTES/VARIABLE_VALUE`` (its slash-separated paths, chosen on
another branch); testPartialRestoreWarningAttribute and testAttributeException
check that the same objects are named, in trackpoint's form.

The ``_async`` variants run with ``CheckpointOptions(enable_async=True)``.
"""

import copy
import logging
import os
import pathlib
import weakref

import numpy as np
import pytest

import trackpoint
from trackpoint import _core

from conftest import FIXTURES

ASYNC = [pytest.param(False, id="sync"), pytest.param(True, id="async")]


def _options(enable_async):
    return trackpoint.CheckpointOptions(enable_async=enable_async)


def _keys(root):
    """The checkpoint keys root's values are saved under."""
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        path = trackpoint.Checkpoint(root).write(os.path.join(d, "c"))
        return [k for k in trackpoint.load_checkpoint(path).get_variable_to_shape_map()
                if k != "_CHECKPOINTABLE_OBJECT_GRAPH"]


class _Children(trackpoint.Trackable):
    """A trackable whose children have arbitrary local names."""

    def __init__(self, **children):
        self._children_by_name = dict(children)

    def _trackable_children(self):
        return dict(self._children_by_name)


# ---- InterfaceTests ---------------------------------------------------------------------

def test_testInitNotCalled():
    class NoInit(trackpoint.AutoTrackable):
        def __init__(self):
            pass

    obj = NoInit()
    obj.var = trackpoint.Variable(0.0)
    assert _keys(obj) == ["var/.ATTRIBUTES/VARIABLE_VALUE"]


# ---- CheckpointingTests -------------------------------------------------------------------

class _OwnsMirroredVariables(trackpoint.Trackable):
    """Saves one tensor and restores it into two variables."""

    def __init__(self):
        self.non_dep_variable = trackpoint.Variable(6.0)
        self.mirrored = trackpoint.Variable(15.0)

    def _serialize_to_tensors(self):
        return {"VARIABLE_VALUE": self.non_dep_variable.numpy()}

    def _restore_from_tensors(self, tensors):
        self.non_dep_variable.assign(tensors["VARIABLE_VALUE"])
        self.mirrored.assign(tensors["VARIABLE_VALUE"])


@pytest.mark.parametrize("enable_async", ASYNC)
def test_testMoreComplexSaveableReturned(tmp_path, enable_async):
    v = _OwnsMirroredVariables()
    checkpoint = trackpoint.Checkpoint(v=v)
    v.non_dep_variable.assign(42.0)
    save_path = checkpoint.save(tmp_path / "ckpt", options=_options(enable_async))
    checkpoint.sync()
    v.non_dep_variable.assign(43.0)
    v.mirrored.assign(44.0)
    checkpoint.restore(save_path).assert_consumed().initialize_or_restore()
    assert (float(v.non_dep_variable), float(v.mirrored)) == (42.0, 42.0)
    v.non_dep_variable.assign(44.0)
    save_path = checkpoint.save(tmp_path / "ckpt", options=_options(enable_async))
    checkpoint.sync()
    v.non_dep_variable.assign(45.0)
    checkpoint.restore(save_path).assert_consumed().initialize_or_restore()
    assert (float(v.non_dep_variable), float(v.mirrored)) == (44.0, 44.0)


@pytest.mark.parametrize("enable_async", ASYNC)
def test_testAssertConsumedNoCheckpoint(tmp_path, enable_async):
    ckpt = trackpoint.Checkpoint(v=trackpoint.Variable(0.0))
    save_path = ckpt.save(tmp_path / "ckpt", options=_options(enable_async))
    status = ckpt.restore(save_path=save_path)
    del ckpt
    status.assert_consumed()


def test_testDeepCopyCheckpoint(tmp_path):
    v = trackpoint.Variable(1.0)
    original_ckpt = trackpoint.Checkpoint(v=v)
    copied_ckpt = copy.deepcopy(original_ckpt)
    copied_ckpt.v.assign(2.0)
    assert float(v) == 1.0
    save_path = copied_ckpt.save(tmp_path / "ckpt")
    original_ckpt.restore(save_path=save_path).assert_consumed()
    assert float(v) == 2.0


def test_testPassingCheckpointOptions(tmp_path):
    options = trackpoint.CheckpointOptions(experimental_io_device="/job:localhost/device:CPU:0")
    ckpt = trackpoint.Checkpoint(v=trackpoint.Variable(0.0))
    save_path = ckpt.save(tmp_path / "ckpt", options=options)
    status = ckpt.restore(save_path=save_path, options=options)
    del ckpt
    status.assert_consumed()


@pytest.mark.parametrize("enable_async", ASYNC)
def test_testCustomNumbering(tmp_path, enable_async):
    prefix = str(tmp_path / "ckpt")
    step = trackpoint.Variable(0, dtype="int64")
    checkpoint = trackpoint.Checkpoint(step=step)
    for i in range(5):
        path = checkpoint.write(f"{prefix}-{int(step)}", options=_options(enable_async))
        assert path.endswith(f"-{2 * i}")
        step.assign_add(2)
    checkpoint.sync()


def _v1_v2_checkpoint(tmp_path):
    original_root = trackpoint.Checkpoint(v1=trackpoint.Variable(2.0),
                                          v2=trackpoint.Variable(3.0))
    return original_root.save(tmp_path / "ckpt")


def test_testPartialRestoreWarningAttribute(tmp_path, caplog):
    save_path = _v1_v2_checkpoint(tmp_path)
    partial_root = trackpoint.Checkpoint(v1=trackpoint.Trackable(),
                                         v2=trackpoint.Variable(0.0))
    weak_partial_root = weakref.ref(partial_root)
    with caplog.at_level(logging.WARNING, logger="trackpoint"):
        partial_root.restore(save_path)
        assert float(partial_root.v2) == 3.0
        del partial_root
        assert weak_partial_root() is None
    messages = caplog.text
    assert "v1/.ATTRIBUTES/VARIABLE_VALUE" in messages  # TF: "(root).v1"
    assert "v2" not in messages  # TF: no "(root).v2"
    assert "expect_partial()" in messages


def test_testAttributeException(tmp_path):
    save_path = _v1_v2_checkpoint(tmp_path)
    partial_root = trackpoint.Checkpoint(v1=trackpoint.Trackable(),
                                         v2=trackpoint.Variable(0.0))
    status = partial_root.restore(save_path)
    # TF: r"Unused attributes(.|\n)*\(root\).v1"
    with pytest.raises(AssertionError, match=r"Unused attributes(.|\n)*v1/.ATTRIBUTES"):
        status.assert_consumed()


def test_testSilencePartialWarning(tmp_path, caplog):
    save_path = _v1_v2_checkpoint(tmp_path)
    partial_root = trackpoint.Checkpoint(v1=trackpoint.Variable(0.0))
    weak_partial_root = weakref.ref(partial_root)
    weak_v1 = weakref.ref(partial_root.v1)
    partial_root.restore(save_path).expect_partial()
    assert float(partial_root.v1) == 2.0
    with caplog.at_level(logging.WARNING, logger="trackpoint"):
        del partial_root
        assert weak_partial_root() is None
        assert weak_v1() is None
    assert caplog.text == ""


@pytest.mark.parametrize("name,key", [
    ("a/b/c", "a.Sb.Sc"), ("b", "b"), ("c/", "c.S"), ("d/.S", "d.S..S"),
    ("d/.ATTRIBUTES/f", "d.S..ATTRIBUTES.Sf"),
])
def test_testVariableNameEscaping(name, key):
    root = _Children(**{name: trackpoint.Variable(np.zeros((1, 2)))})
    assert _keys(root) == [key + "/.ATTRIBUTES/VARIABLE_VALUE"]


def test_testNumberedPath():
    root = trackpoint.AutoTrackable()
    root.leaf = trackpoint.AutoTrackable()
    root.leaf.v = trackpoint.Variable(0.0)
    assert _keys(root) == ["leaf/v/.ATTRIBUTES/VARIABLE_VALUE"]


def test_testLocalNameValidation():
    leaf = trackpoint.AutoTrackable()
    leaf.a = trackpoint.Variable(0.0)
    root = _Children(**{".ATTRIBUTES": leaf})
    assert _keys(root) == ["..ATTRIBUTES/a/.ATTRIBUTES/VARIABLE_VALUE"]


class _Dependency(trackpoint.AutoTrackable):
    def build(self):
        self.var = trackpoint.Variable(0.0)


def test_testLateDependencyTracking(tmp_path):
    class LateDependencies(trackpoint.Checkpoint):
        def add_dep(self):
            self.dep = _Dependency()
            self.dep.build()

    original = LateDependencies()
    original.add_dep()
    original.dep.var.assign(123.0)
    save_path = original.save(tmp_path / "ckpt")
    load_into = LateDependencies()
    status = load_into.restore(save_path)
    status.assert_existing_objects_matched()
    with pytest.raises(AssertionError):
        status.assert_consumed()
    load_into.add_dep()
    status.assert_consumed()
    status.assert_existing_objects_matched().run_restore_ops()
    assert float(load_into.dep.var) == 123.0


def test_testDepAfterVar(tmp_path):
    class DepAfterVar(trackpoint.Checkpoint):
        def add_dep(self):
            dep = _Dependency()
            dep.build()
            self.dep = dep

    dep_after_var = DepAfterVar()
    dep_after_var.add_dep()
    dep_after_var.dep.var.assign(-14.0)
    save_path = dep_after_var.save(tmp_path / "ckpt")
    loaded_dep_after_var = DepAfterVar()
    status = loaded_dep_after_var.restore(save_path)
    loaded_dep_after_var.add_dep()
    status.assert_consumed()
    status.run_restore_ops()
    assert float(loaded_dep_after_var.dep.var) == -14.0


def test_testOverlappingRestores(tmp_path):
    save_root = trackpoint.Checkpoint()
    save_root.dep = trackpoint.AutoTrackable()
    save_root.dep.var = trackpoint.Variable(0.0)
    save_root.dep.var.assign(12.0)
    first_path = save_root.save(tmp_path / "first")
    save_root.dep.var.assign(13.0)
    second_path = save_root.save(tmp_path / "second")

    first_root, second_root = trackpoint.Checkpoint(), trackpoint.Checkpoint()
    first_status = first_root.restore(first_path)
    second_status = second_root.restore(second_path)
    load_dep = trackpoint.AutoTrackable()
    load_dep.var = trackpoint.Variable(0.0)
    first_root.dep = load_dep
    first_status.assert_consumed()
    assert float(load_dep.var) == 12.0
    second_root.dep = load_dep
    second_status.assert_consumed()
    assert float(load_dep.var) == 13.0

    # The other order: the last restore() decides the value.
    first_root, second_root = trackpoint.Checkpoint(), trackpoint.Checkpoint()
    second_status = second_root.restore(second_path)
    first_status = first_root.restore(first_path)
    load_dep = trackpoint.AutoTrackable()
    load_dep.var = trackpoint.Variable(0.0)
    first_root.dep = load_dep
    first_status.assert_consumed()
    assert float(load_dep.var) == 12.0
    second_root.dep = load_dep
    second_status.assert_consumed()
    assert float(load_dep.var) == 12.0


def test_testAmbiguousLoad(tmp_path):
    save_root = trackpoint.Checkpoint()
    save_root.dep_one = trackpoint.AutoTrackable()
    save_root.dep_two = trackpoint.AutoTrackable()
    dep_three = trackpoint.AutoTrackable()
    save_root.dep_one.dep_three = dep_three
    save_root.dep_two.dep_three = dep_three
    dep_three.var = trackpoint.Variable(0.0)
    save_path = save_root.save(tmp_path / "ckpt")
    load_root = trackpoint.Checkpoint()
    status = load_root.restore(save_path)
    load_root.dep_one = trackpoint.AutoTrackable()
    load_root.dep_two = trackpoint.AutoTrackable()
    load_root.dep_one.dep_three = trackpoint.AutoTrackable()
    load_root.dep_two.dep_three = trackpoint.AutoTrackable()
    load_root.dep_one.dep_three.var = trackpoint.Variable(0.0)
    load_root.dep_two.dep_three.var = trackpoint.Variable(0.0)
    with pytest.raises(AssertionError):
        status.assert_consumed()
    with pytest.raises(AssertionError):
        status.assert_existing_objects_matched()


def test_testObjectsCombined(tmp_path):
    save_root = trackpoint.Checkpoint()
    save_root.dep_one = trackpoint.AutoTrackable()
    save_root.dep_two = trackpoint.AutoTrackable()
    save_root.dep_one.var1 = trackpoint.Variable(32.0, dtype="float64")
    save_root.dep_two.var2 = trackpoint.Variable(64.0, dtype="float64")
    save_path = save_root.save(tmp_path / "ckpt")
    load_root = trackpoint.Checkpoint()
    load_root.dep_one = trackpoint.AutoTrackable()
    load_root.dep_two = load_root.dep_one
    v1 = load_root.dep_one.var1 = trackpoint.Variable(0.0, dtype="float64")
    v2 = load_root.dep_one.var2 = trackpoint.Variable(0.0, dtype="float64")
    load_root.restore(save_path).assert_consumed().assert_existing_objects_matched()
    assert (float(v1), float(v2)) == (32.0, 64.0)


def test_testEmptyContainersIgnored(tmp_path):
    save_root = trackpoint.Checkpoint(a=[])
    path = save_root.save(tmp_path / "ckpt")
    load_root = trackpoint.Checkpoint(b=[])
    load_root.dep = []
    load_root.dep.append([])
    status = load_root.restore(path)
    status.assert_consumed()
    status.assert_existing_objects_matched()
    status.assert_nontrivial_match()


def test_testDependencyLoop(tmp_path):
    first = trackpoint.Checkpoint()
    second = trackpoint.Checkpoint()
    first.second = second
    second.first = first
    first.v = trackpoint.Variable([3.0, 1.0, 4.0])
    second.v = trackpoint.Variable([1.0, 1.0, 2.0, 3.0])
    save_path = first.save(tmp_path / "ckpt")

    # Deferred loading.
    first_load = trackpoint.Checkpoint()
    status = first_load.restore(save_path)
    second_load = trackpoint.AutoTrackable()
    first_load.second = second_load
    second_load.first = first_load
    with pytest.raises(AssertionError):
        status.assert_consumed()
    first_load.v = trackpoint.Variable(np.zeros(3, np.float32))
    second_load.v = trackpoint.Variable(np.zeros(4, np.float32))
    status.assert_consumed()
    assert first_load.v.numpy().tolist() == [3.0, 1.0, 4.0]
    assert second_load.v.numpy().tolist() == [1.0, 1.0, 2.0, 3.0]

    # Loading into variables that exist already.
    first_load.v.assign([2.0, 7.0, 1.0])
    second_load.v.assign([2.0, 7.0, 1.0, 8.0])
    first_load.restore(save_path).assert_consumed()
    assert first_load.v.numpy().tolist() == [3.0, 1.0, 4.0]
    assert second_load.v.numpy().tolist() == [1.0, 1.0, 2.0, 3.0]


def test_testRestoreOnAssign(tmp_path):
    first = trackpoint.Checkpoint()
    first.var1 = trackpoint.Variable(0.0, name="outside_var")
    first.var2 = trackpoint.Variable(0.0, name="blah")
    first.var1.assign(4.0)
    first.var2.assign(8.0)
    save_path = first.save(tmp_path / "ckpt")

    second = trackpoint.Checkpoint()
    second.var2 = trackpoint.Variable(0.0, name="blah")
    status = second.restore(save_path)
    recreated_var1 = trackpoint.Variable(0.0, name="outside_var")
    status.run_restore_ops()
    assert float(second.var2) == 8.0
    recreated_var1.assign(-2.0)
    assert float(recreated_var1) == -2.0
    second.var1 = recreated_var1
    status.run_restore_ops()
    assert float(recreated_var1) == 4.0


def test_testCheckpointState(tmp_path):
    obj = trackpoint.AutoTrackable()
    obj.var = trackpoint.Variable(0.0, name="v")
    saver = trackpoint.Checkpoint(obj=obj)
    for _ in range(10):
        saver.save(tmp_path / "ckpt")
    expected = {"checkpoint"} | {f"ckpt-{n}.index" for n in range(1, 11)}
    assert expected - set(os.listdir(tmp_path)) == set()


def test_testCheckpointStateChangingVarList(tmp_path):
    prefix = str(tmp_path / "ckpt")
    obj = trackpoint.AutoTrackable()
    obj.var = trackpoint.Variable(0.0, name="v")
    checkpoint = trackpoint.Checkpoint(obj=obj)
    looped_variables = []
    for iteration in range(10):
        new_variable = trackpoint.Variable(iteration)
        setattr(checkpoint, f"var_{iteration}", new_variable)
        checkpoint.save(prefix)
        looped_variables.append(new_variable)
    expected = {"checkpoint"} | {f"ckpt-{n}.index" for n in range(1, 11)}
    assert expected - set(os.listdir(tmp_path)) == set()
    assert trackpoint.latest_checkpoint(str(tmp_path)) == prefix + "-10"
    # Only the most recent checkpoint is listed; all are on disk.
    assert list(trackpoint.get_checkpoint_state(str(tmp_path)).all_model_checkpoint_paths) == [
        prefix + "-10"]
    for v in looped_variables:
        v.assign(314)
    checkpoint.restore(prefix + "-6").run_restore_ops()
    assert [int(checkpoint.var_9), int(checkpoint.var_8), int(checkpoint.var_6)] == [314] * 3
    assert [int(checkpoint.var_5), int(checkpoint.var_1), int(checkpoint.var_0)] == [5, 1, 0]
    checkpoint.restore(prefix + "-10").run_restore_ops()
    assert [int(checkpoint.var_9), int(checkpoint.var_8)] == [9, 8]
    assert [int(checkpoint.var_1), int(checkpoint.var_0)] == [1, 0]


class _NonLayerTrackable(trackpoint.AutoTrackable):
    def __init__(self):
        self.a_variable = trackpoint.Variable(0.0)


def test_test_restore_after_adding_empty_trackable_data_structure(tmp_path):
    model = _NonLayerTrackable()
    checkpoint = trackpoint.Checkpoint(model=model)
    checkpoint.restore(None).initialize_or_restore()
    save_path = checkpoint.save(tmp_path / "ckpt")
    del model, checkpoint
    model = _NonLayerTrackable()
    model.dict = {"a": 1}
    model.list = {"b": 1}
    checkpoint = trackpoint.Checkpoint(model=model)
    load_status = checkpoint.restore(save_path)
    load_status.assert_existing_objects_matched().run_restore_ops()


@pytest.mark.parametrize("enable_async", ASYNC)
def test_test_inititialize_with_data_structures(tmp_path, enable_async):
    checkpoint = trackpoint.Checkpoint(
        a=[trackpoint.Variable(0.0), trackpoint.Variable(1.0)],
        b={"a": trackpoint.Variable(2.0), "b": trackpoint.Variable(3.0)})
    save_path = checkpoint.save(tmp_path / "ckpt", options=_options(enable_async))
    load_checkpoint = trackpoint.Checkpoint(
        a=[trackpoint.Variable(4.0), trackpoint.Variable(5.0)],
        b={"a": trackpoint.Variable(6.0), "b": trackpoint.Variable(7.0)})
    if enable_async:
        checkpoint.restore(save_path)  # waits for the background write, as in TF's test
    load_checkpoint.restore(save_path)
    assert [float(v) for v in load_checkpoint.a] == [0.0, 1.0]
    assert {k: float(v) for k, v in load_checkpoint.b.items()} == {"a": 2.0, "b": 3.0}


class _Model(trackpoint.AutoTrackable):
    def __init__(self):
        self.v = trackpoint.Variable(2.0)

    def __call__(self, x):
        return self.v.numpy() * x


def test_test_initialize_with_root_object(tmp_path):
    model = _Model()
    input_value = np.array([[3.0]], np.float32)
    expected_output = model(input_value)
    model.deferred_variable = trackpoint.Variable(5.0)
    checkpoint = trackpoint.Checkpoint(model)
    save_path = checkpoint.save(tmp_path / "ckpt")

    new_model = _Model()
    load_checkpoint = trackpoint.Checkpoint(new_model)
    load_checkpoint.restore(save_path)
    np.testing.assert_allclose(new_model(input_value), expected_output)
    new_model.deferred_variable = trackpoint.Variable(1.0)
    assert float(new_model.deferred_variable) == 5


def test_test_initialize_with_root_object_and_kwargs(tmp_path):
    model = _Model()
    model.v.assign(3.0)
    separate_variable = trackpoint.Variable(5.0)
    with pytest.raises(ValueError, match="root.v already exists"):
        trackpoint.Checkpoint(model, v=separate_variable)
    checkpoint = trackpoint.Checkpoint(model, separate_variable=separate_variable)
    save_path = checkpoint.save(tmp_path / "ckpt")

    # Case 1: the same configuration.
    new_model = _Model()
    separate_variable = trackpoint.Variable(1.0)
    load_checkpoint = trackpoint.Checkpoint(new_model, separate_variable=separate_variable)
    load_checkpoint.restore(save_path).assert_consumed()
    assert float(new_model.v) == 3
    assert float(separate_variable) == 5
    assert int(load_checkpoint.save_counter) == 1

    # Case 2: v and separate_variable swapped between the root and the kwargs.
    new_model = trackpoint.AutoTrackable()
    new_model.separate_variable = trackpoint.Variable(200.0)
    v = trackpoint.Variable(100.0)
    load_checkpoint = trackpoint.Checkpoint(new_model, v=v)
    load_checkpoint.restore(save_path).assert_consumed()
    assert float(v) == 3
    assert float(new_model.separate_variable) == 5
    assert int(load_checkpoint.save_counter) == 1

    # Case 3: no root object.
    separate_variable = trackpoint.Variable(200.0)
    v = trackpoint.Variable(100.0)
    load_checkpoint = trackpoint.Checkpoint(v=v, separate_variable=separate_variable)
    load_checkpoint.restore(save_path).assert_consumed()
    assert float(v) == 3
    assert float(separate_variable) == 5
    assert int(load_checkpoint.save_counter) == 1


def test_test_checkpoint_saved_model_compatibility():
    # The SavedModel was written by TF 2.21's tf.saved_model.save from the same
    # model (tests/fixtures/generate_root_graph.py).
    saved_model_dir = str(FIXTURES / "root_graph" / "saved_model")
    model = _Model()
    input_value = np.array([[3.0]], np.float32)
    expected_output = model(input_value)
    new_model = _Model()
    new_model.v.assign(0.0)
    load_checkpoint = trackpoint.Checkpoint(new_model)
    with pytest.raises(trackpoint.NotFoundError,
                       match="Error when restoring from checkpoint or SavedModel"):
        load_checkpoint.restore(saved_model_dir + "no").expect_partial()
    load_checkpoint.restore(saved_model_dir).expect_partial()
    np.testing.assert_allclose(new_model(input_value), expected_output)
    new_model.deferred_variable = trackpoint.Variable(1.0)
    assert float(new_model.deferred_variable) == 5


def test_test_deferred_dependency_avoids_reference_cycles(tmp_path, no_cyclic_gc):
    delete_counter = 0

    class TrackableWithDel(trackpoint.AutoTrackable):
        def __del__(self):
            nonlocal delete_counter
            delete_counter += 1

    x = trackpoint.AutoTrackable()
    x.v = trackpoint.Variable(100.0)
    x.has_del = TrackableWithDel()
    checkpoint = trackpoint.Checkpoint(x)
    save_path = checkpoint.save(tmp_path / "ckpt")
    assert delete_counter == 0
    del checkpoint
    del x
    assert delete_counter == 1

    no_v = trackpoint.AutoTrackable()
    no_v.has_del = TrackableWithDel()
    checkpoint = trackpoint.Checkpoint(no_v)
    checkpoint.restore(save_path).expect_partial()
    del checkpoint
    del no_v
    assert delete_counter == 2


def test_test_defer_objects_with_values_only(tmp_path):
    # TF counts root._deferred_dependencies; trackpoint's equivalent is _deferred().
    root = trackpoint.AutoTrackable()
    root.branch_with_value = trackpoint.AutoTrackable()
    root.branch_with_value.v = trackpoint.Variable(5.0)
    root.branch_no_value = trackpoint.AutoTrackable()
    root.branch_no_value.child = trackpoint.AutoTrackable()
    root.v = trackpoint.Variable(1.0)
    save_path = trackpoint.Checkpoint(model=root).save(tmp_path / "ckpt")

    new_root = trackpoint.AutoTrackable()
    trackpoint.Checkpoint(model=new_root).restore(save_path)
    assert len(new_root._deferred()) == 2
    new_root.branch_no_value = trackpoint.AutoTrackable()
    assert len(new_root._deferred()) == 2
    new_root.branch_with_value = trackpoint.AutoTrackable()
    assert len(new_root._deferred()) == 1
    new_root.v = trackpoint.Variable(1.0)
    assert len(new_root._deferred()) == 0


def test_test_root_arg(tmp_path):
    root = trackpoint.AutoTrackable()
    root.v = trackpoint.Variable(1)
    w, y = trackpoint.Variable(2), trackpoint.Variable(3)
    root_ckpt = trackpoint.Checkpoint(root=root, w=w, y=y)
    root2 = trackpoint.AutoTrackable()
    root2.w = trackpoint.Variable(4)
    v2, z = trackpoint.Variable(5), trackpoint.Variable(6)
    root2_ckpt = trackpoint.Checkpoint(root=root2, v=v2, z=z)
    root_save_path = root_ckpt.save(tmp_path / "root_ckpt")
    root2_save_path = root2_ckpt.save(tmp_path / "root2_ckpt")
    root_ckpt.restore(root2_save_path)
    root2_ckpt.restore(root_save_path)
    assert (int(root.v), int(w), int(y)) == (5, 4, 3)
    assert (int(root2.w), int(v2), int(z)) == (2, 1, 6)


def test_test_weakref_root(tmp_path, no_cyclic_gc):
    root = trackpoint.AutoTrackable()
    root.v = trackpoint.Variable(1)
    ckpt = trackpoint.Checkpoint(root=weakref.ref(root))
    save_path = ckpt.save(tmp_path / "ckpt")
    root.v.assign(2)
    ckpt.restore(save_path)
    assert int(root.v) == 1
    # TF checks that only its own reference to the variable is left.
    ref = weakref.ref(root.v)
    del root
    assert ref() is None


def test_test_restore_incompatible_shape(tmp_path):
    save_path = trackpoint.Checkpoint(v=trackpoint.Variable([1.0, 1.0])).save(tmp_path / "ckpt")
    with pytest.raises(ValueError, match="incompatible tensor with shape"):
        trackpoint.Checkpoint(v=trackpoint.Variable([1.0])).restore(save_path)


def test_test_save_restore_fspath(tmp_path):
    ckpt = trackpoint.Checkpoint(v=trackpoint.Variable(1.0))
    save_path = pathlib.Path(ckpt.save(pathlib.Path(tmp_path) / "ckpt"))
    w = trackpoint.Variable(0.0)
    trackpoint.Checkpoint(v=w).restore(save_path)
    assert float(w) == 1.0


def test_test_read_write_fspath(tmp_path):
    ckpt = trackpoint.Checkpoint(v=trackpoint.Variable(1.0))
    save_path = pathlib.Path(ckpt.write(pathlib.Path(tmp_path) / "ckpt"))
    w = trackpoint.Variable(0.0)
    trackpoint.Checkpoint(v=w).read(save_path)
    assert float(w) == 1.0


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
def test_test_ckpt_files_closed_after_restoration(tmp_path):
    # TF lists psutil's open_files(); /proc/self/fd shows the same.
    root = trackpoint.AutoTrackable()
    root.v = trackpoint.Variable(1)
    save_path = trackpoint.Checkpoint(root=root).save(tmp_path / "ckpt")
    root2 = trackpoint.AutoTrackable()
    ckpt2 = trackpoint.Checkpoint(root=root2)
    ckpt2.restore(save_path)  # root2.v stays pending
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        assert save_path not in target


# ---- SerializeToTensorTest ----------------------------------------------------------------

class _MultiTensor(trackpoint.Trackable):
    def __init__(self, v1, v2):
        self.v1, self.v2 = trackpoint.Variable(v1), trackpoint.Variable(v2)

    def _serialize_to_tensors(self):
        return {"v1": self.v1.numpy(), "v2": self.v2.numpy()}

    def _restore_from_tensors(self, tensors):
        self.v1.assign(tensors["v1"])
        self.v2.assign(tensors["v2"])


def test_test_keys_and_metadata(tmp_path):
    root = _MultiTensor(1, 2)
    child = _MultiTensor(3, 4)
    ckpt = trackpoint.Checkpoint(root=root, child=child)
    save_path = ckpt.save(tmp_path / "ckpt")

    reader = trackpoint.load_checkpoint(save_path)
    nodes = _core.parse_object_graph(reader.get_tensor("_CHECKPOINTABLE_OBJECT_GRAPH"))
    assert {a[0]: a[2] for a in nodes[0]["attributes"]} == {
        "v1": "/.ATTRIBUTES/v1", "v2": "/.ATTRIBUTES/v2"}
    assert reader.get_tensor("/.ATTRIBUTES/v1") == 1
    assert reader.get_tensor("/.ATTRIBUTES/v2") == 2
    assert {a[0]: a[2] for a in nodes[1]["attributes"]} == {
        "v1": "child/.ATTRIBUTES/v1", "v2": "child/.ATTRIBUTES/v2"}
    assert reader.get_tensor("child/.ATTRIBUTES/v1") == 3
    assert reader.get_tensor("child/.ATTRIBUTES/v2") == 4

    for v in (root.v1, root.v2, child.v1, child.v2):
        v.assign(0)
    ckpt.restore(save_path).assert_consumed().run_restore_ops()
    assert [int(v) for v in (root.v1, root.v2, child.v1, child.v2)] == [1, 2, 3, 4]
