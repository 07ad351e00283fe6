"""Checkpoint: save/write/restore/read, numbering, the state file, deferred
restoration, the restore statuses and the unused-value warning."""

import logging
import os

import numpy as np
import pytest

import trackpoint
from trackpoint import errors

from conftest import FIXTURES


class Dense(trackpoint.AutoTrackable):
    def __init__(self, n_in, n_out, seed=0):
        rng = np.random.default_rng(seed)
        self.kernel = trackpoint.Variable(rng.standard_normal((n_in, n_out)).astype(np.float32))
        self.bias = trackpoint.Variable(np.zeros(n_out, np.float32))


def make_model(seed=0):
    m = trackpoint.AutoTrackable()
    m.layers = [Dense(3, 4, seed), Dense(4, 2, seed + 1)]
    m.table = {"a/b": trackpoint.Variable([1, 2, 3]), "x.y": trackpoint.Variable(["s", "t"])}
    m.step = trackpoint.Variable(0, dtype="int64")
    return m


def assert_same_values(a, b):
    assert a.layers[0].kernel.numpy().tobytes() == b.layers[0].kernel.numpy().tobytes()
    assert a.layers[1].bias.numpy().tobytes() == b.layers[1].bias.numpy().tobytes()
    assert a.table["a/b"].numpy().tolist() == b.table["a/b"].numpy().tolist()
    assert a.table["x.y"].numpy().tolist() == b.table["x.y"].numpy().tolist()
    assert int(a.step) == int(b.step)


def test_save_numbers_checkpoints_and_updates_the_state_file(tmp_path):
    ckpt = trackpoint.Checkpoint(model=make_model())
    assert ckpt.save(tmp_path / "ckpt") == str(tmp_path / "ckpt-1")
    assert ckpt.save(tmp_path / "ckpt") == str(tmp_path / "ckpt-2")
    assert int(ckpt.save_counter) == 2
    assert (tmp_path / "checkpoint").read_text() == (
        'model_checkpoint_path: "ckpt-2"\nall_model_checkpoint_paths: "ckpt-2"\n'
    )
    assert trackpoint.latest_checkpoint(tmp_path) == str(tmp_path / "ckpt-2")
    reader = trackpoint.load_checkpoint(tmp_path)
    assert reader.get_tensor("save_counter/.ATTRIBUTES/VARIABLE_VALUE") == 2


def test_write_touches_no_counter_and_no_state_file(tmp_path):
    ckpt = trackpoint.Checkpoint(model=make_model())
    assert ckpt.write(tmp_path / "w") == str(tmp_path / "w")
    assert sorted(os.listdir(tmp_path)) == ["w.data-00000-of-00001", "w.index"]
    keys = trackpoint.load_checkpoint(tmp_path / "w").get_variable_to_shape_map()
    assert "save_counter/.ATTRIBUTES/VARIABLE_VALUE" not in keys
    assert "model/layers/0/kernel/.ATTRIBUTES/VARIABLE_VALUE" in keys
    assert "model/table/a.Sb/.ATTRIBUTES/VARIABLE_VALUE" in keys
    assert "model/table/x..y/.ATTRIBUTES/VARIABLE_VALUE" in keys


def test_round_trip_into_fresh_objects(tmp_path):
    model = make_model(seed=1)
    model.step.assign(41)
    path = trackpoint.Checkpoint(model=model).save(tmp_path / "ckpt")
    fresh = make_model(seed=2)
    ckpt = trackpoint.Checkpoint(model=fresh)
    ckpt.restore(path).assert_consumed()
    assert_same_values(model, fresh)
    assert int(ckpt.save_counter) == 1


def test_shared_variable_is_saved_once(tmp_path):
    shared = trackpoint.Variable([1.0, 2.0])
    a, b = trackpoint.AutoTrackable(), trackpoint.AutoTrackable()
    a.v, b.w = shared, shared
    trackpoint.Checkpoint(a=a, b=b).write(tmp_path / "c")
    keys = trackpoint.load_checkpoint(tmp_path / "c").get_variable_to_shape_map()
    assert sorted(keys) == ["_CHECKPOINTABLE_OBJECT_GRAPH", "a/v/.ATTRIBUTES/VARIABLE_VALUE"]
    a2, b2 = trackpoint.AutoTrackable(), trackpoint.AutoTrackable()
    a2.v = trackpoint.Variable([0.0, 0.0])
    b2.w = a2.v
    trackpoint.Checkpoint(a=a2, b=b2).read(tmp_path / "c").assert_consumed()
    assert b2.w.numpy().tolist() == [1.0, 2.0]


def test_deferred_restoration_of_objects_added_later(tmp_path):
    path = trackpoint.Checkpoint(model=make_model(seed=3)).write(tmp_path / "c")
    model = trackpoint.AutoTrackable()
    status = trackpoint.Checkpoint(model=model).read(path)
    status.assert_existing_objects_matched()
    with pytest.raises(AssertionError, match="Unresolved object"):
        status.assert_consumed()
    # Created after the restore: each receives its checkpoint value when added.
    model.layers = [Dense(3, 4, seed=9), Dense(4, 2, seed=9)]
    model.table = {}
    model.table["a/b"] = trackpoint.Variable([0, 0, 0])
    model.table["x.y"] = trackpoint.Variable(["", ""])
    model.step = trackpoint.Variable(0, dtype="int64")
    status.assert_consumed()
    assert_same_values(model, make_model(seed=3))


def test_assert_existing_objects_matched_fails_for_an_extra_variable(tmp_path):
    path = trackpoint.Checkpoint(model=make_model()).write(tmp_path / "c")
    model = make_model()
    model.extra = trackpoint.Variable(1.0)
    status = trackpoint.Checkpoint(model=model).read(path)
    with pytest.raises(AssertionError, match="not restored"):
        status.assert_existing_objects_matched()
    with pytest.raises(AssertionError):
        status.assert_consumed()
    status.assert_nontrivial_match()


def test_assert_nontrivial_match(tmp_path):
    path = trackpoint.Checkpoint(model=make_model()).write(tmp_path / "c")
    status = trackpoint.Checkpoint(other=trackpoint.Variable(1.0)).read(path)
    with pytest.raises(AssertionError, match="Nothing except the root"):
        status.assert_nontrivial_match()
    status.expect_partial()
    # restore() also binds save_counter, which counts as a match only if the
    # checkpoint has one.
    saved = trackpoint.Checkpoint(model=make_model()).save(tmp_path / "s")
    trackpoint.Checkpoint(other=trackpoint.Variable(1.0)).restore(saved).expect_partial() \
        .assert_nontrivial_match()


def test_shape_mismatch_names_the_key_and_both_shapes(tmp_path):
    path = trackpoint.Checkpoint(model=make_model()).write(tmp_path / "c")
    model = make_model()
    model.layers[0].kernel = trackpoint.Variable(np.zeros((4, 3), np.float32))
    with pytest.raises(errors.InvalidArgumentError) as info:
        trackpoint.Checkpoint(model=model).read(path)
    message = str(info.value)
    assert "'model/layers/0/kernel/.ATTRIBUTES/VARIABLE_VALUE'" in message
    assert "checkpoint has float32[3, 4], object has float32[4, 3]" in message


def test_unused_values_are_logged_unless_expect_partial(tmp_path, caplog):
    path = trackpoint.Checkpoint(model=make_model()).write(tmp_path / "c")
    import gc

    with caplog.at_level(logging.WARNING, logger="trackpoint"):
        status = trackpoint.Checkpoint(model=trackpoint.AutoTrackable()).read(path)
        del status
        gc.collect()
    assert "were not restored" in caplog.text
    assert "model/layers/0/kernel" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="trackpoint"):
        trackpoint.Checkpoint(model=trackpoint.AutoTrackable()).read(path).expect_partial()
        gc.collect()
    assert "were not restored" not in caplog.text


def test_restore_none_gives_an_initialization_only_status():
    status = trackpoint.Checkpoint(v=trackpoint.Variable(1.0)).restore(None)
    assert isinstance(status, trackpoint.InitializationOnlyStatus)
    for method in ("assert_consumed", "assert_existing_objects_matched", "assert_nontrivial_match"):
        with pytest.raises(AssertionError):
            getattr(status, method)()
    status.initialize_or_restore()
    status.run_restore_ops()


def test_missing_checkpoint_hints_at_the_number_suffix(tmp_path):
    trackpoint.Checkpoint(v=trackpoint.Variable(1.0)).save(tmp_path / "ckpt")
    with pytest.raises(FileNotFoundError, match="<prefix>-<N>"):
        trackpoint.Checkpoint(v=trackpoint.Variable(1.0)).restore(tmp_path / "ckpt")


def test_non_trackable_values_are_rejected():
    with pytest.raises(ValueError, match="trackable"):
        trackpoint.Checkpoint(x=3)
    with pytest.raises(ValueError):
        trackpoint.Checkpoint(root="not trackable")


def test_python_state_round_trips_and_goes_last(tmp_path):
    ckpt = trackpoint.Checkpoint(config=trackpoint.JsonState({"lr": 0.5, "tags": ["a"]}),
                                 w=trackpoint.Variable([1.0]))
    path = ckpt.write(tmp_path / "c")
    reader = trackpoint.bundle.BundleReader(path)
    assert reader.entry("config/.ATTRIBUTES/py_state").offset > reader.entry(
        "w/.ATTRIBUTES/VARIABLE_VALUE").offset
    other = trackpoint.Checkpoint(config=trackpoint.JsonState(None), w=trackpoint.Variable([0.0]))
    other.read(path).assert_consumed()
    assert other.config.value == {"lr": 0.5, "tags": ["a"]}


def test_numpy_arrays_are_restored_in_place(tmp_path):
    weights = np.arange(6, dtype=np.float64).reshape(2, 3)
    path = trackpoint.Checkpoint(w=weights).write(tmp_path / "c")
    target = np.zeros((2, 3))
    trackpoint.Checkpoint(w=target).read(path).assert_consumed()
    np.testing.assert_array_equal(target, weights)


def test_root_with_attached_objects(tmp_path):
    root = make_model(seed=4)
    extra = trackpoint.Variable(7)
    path = trackpoint.Checkpoint(root=root, extra=extra).write(tmp_path / "c")
    keys = trackpoint.load_checkpoint(path).get_variable_to_shape_map()
    assert "layers/0/kernel/.ATTRIBUTES/VARIABLE_VALUE" in keys
    assert "extra/.ATTRIBUTES/VARIABLE_VALUE" in keys
    fresh, extra2 = make_model(seed=5), trackpoint.Variable(0)
    trackpoint.Checkpoint(root=fresh, extra=extra2).read(path).assert_consumed()
    assert_same_values(root, fresh)
    assert int(extra2) == 7


def test_write_callbacks(tmp_path):
    seen = []
    options = trackpoint.CheckpointOptions(
        experimental_write_callbacks=[lambda p: seen.append(p), lambda: seen.append("no-arg")])
    path = trackpoint.Checkpoint(v=trackpoint.Variable(1.0)).save(tmp_path / "c", options=options)
    assert seen == [path, "no-arg"]


def test_name_based_restore_of_a_tf1_saver_checkpoint():
    prefix = FIXTURES / "tf1_partitioned" / "model.ckpt-7"
    reader = trackpoint.load_checkpoint(prefix)
    model = trackpoint.AutoTrackable()
    model.kernel = trackpoint.Variable(np.zeros((4, 2), np.float32), name="dense/kernel")
    model.bias = trackpoint.Variable(np.zeros(2, np.float32), name="dense/bias")
    model.emb = trackpoint.Variable(np.zeros((10, 4), np.float32), name="emb")
    step = trackpoint.Variable(0, dtype="int64", name="global_step")
    ckpt = trackpoint.Checkpoint(model=model, step=step)
    status = ckpt.restore(prefix)
    assert isinstance(status, trackpoint.NameBasedSaverStatus)
    status.assert_consumed()
    np.testing.assert_array_equal(model.emb.numpy(), reader.get_tensor("emb"))
    np.testing.assert_array_equal(model.kernel.numpy(), reader.get_tensor("dense/kernel"))
    assert int(step) == reader.get_tensor("global_step")
    # A variable added afterwards inherits the pending name-based restore.
    late = trackpoint.Variable(np.zeros(2, np.float32), name="dense/bias")
    model.late = late
    np.testing.assert_array_equal(late.numpy(), reader.get_tensor("dense/bias"))
    model.unknown = trackpoint.Variable(1.0, name="nope")
    with pytest.raises(AssertionError, match="nope"):
        status.assert_consumed()


def test_status_messages_name_object_paths(tmp_path):
    path = trackpoint.Checkpoint(model=make_model()).write(tmp_path / "c")
    model = make_model()
    model.layers[1].extra = trackpoint.Variable(1.0)
    status = trackpoint.Checkpoint(model=model).read(path)
    with pytest.raises(AssertionError) as info:
        status.assert_existing_objects_matched()
    assert "model/layers/1/extra" in str(info.value)
    assert "<trackpoint" not in str(info.value)

    fewer = make_model()
    del fewer.layers[1].bias
    status = trackpoint.Checkpoint(model=fewer).read(path)
    with pytest.raises(AssertionError) as info:
        status.assert_consumed()
    assert "model/layers/1/bias" in str(info.value)


def test_unused_attribute_is_named_by_its_key(tmp_path, caplog):
    import gc

    class Two(trackpoint.Trackable):
        def _serialize_to_tensors(self):
            return {"a": np.zeros(1), "b": np.ones(1)}

    class One(trackpoint.Trackable):
        def _serialize_to_tensors(self):
            return {"a": np.zeros(1)}

    path = trackpoint.Checkpoint(t=Two()).write(tmp_path / "c")
    status = trackpoint.Checkpoint(t=One()).read(path)
    with pytest.raises(AssertionError, match="t/.ATTRIBUTES/b"):
        status.assert_consumed()
    with caplog.at_level(logging.WARNING, logger="trackpoint"):
        del status
        gc.collect()
    assert "t/.ATTRIBUTES/b" in caplog.text
