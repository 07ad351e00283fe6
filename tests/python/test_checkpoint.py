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


# ---- Checkpoint(root): TensorFlow's graph, byte for byte (tests/fixtures/root_graph) ----

import base64  # noqa: E402
import json  # noqa: E402
import weakref  # noqa: E402

ROOT_GRAPH = FIXTURES / "root_graph"


def _root_manifest():
    manifest = json.loads((ROOT_GRAPH / "manifest.json").read_text())
    return {entry["prefix"]: entry for entry in manifest["checkpoints"]}


def _fixture_value(record):
    if record["dtype"] == "string":
        flat = [base64.b64decode(s) for s in record["base64"]]
        return flat[0] if record["shape"] == [] else flat
    dtype = trackpoint.dtypes.as_dtype(record["dtype"]).as_numpy_dtype
    return np.frombuffer(bytes.fromhex(record["hex"]), dtype).reshape(record["shape"])


class _Block(trackpoint.AutoTrackable):
    def __init__(self):
        self.w = trackpoint.Variable(np.array([[1.0, 2.0], [3.0, 4.0]], np.float32))


def _root_model(with_block=True, with_note=True):
    """The tf.Module of generate_root_graph.py, with its values."""
    m = trackpoint.AutoTrackable()
    m.a = trackpoint.Variable(np.float32(1.5))
    m.b = trackpoint.Variable(np.array([2.0, -3.25], np.float64))
    if with_block:
        m.block = _Block()
    m.step = trackpoint.Variable(np.int64(7))
    if with_note:
        m.note = trackpoint.Variable(b"hello")
    return m


class _MultiTensor(trackpoint.Trackable):
    """Saves two tensors itself, as TensorFlow's SerializeToTensorTest."""

    def __init__(self, v1, v2):
        self.v1, self.v2 = np.int32(v1), np.int32(v2)

    def _serialize_to_tensors(self):
        return {"v1": self.v1, "v2": self.v2}

    def _restore_from_tensors(self, tensors):
        self.v1, self.v2 = tensors["v1"][()], tensors["v2"][()]


def _root_checkpoints():
    """prefix in root_graph/ -> (a trackpoint Checkpoint of the same structure
    and values, "write" or "save")."""
    extra = trackpoint.Variable(np.int32(5))
    zeta = trackpoint.Variable(np.array([1, 2, 3], np.int32))
    return {
        "root/ckpt": (trackpoint.Checkpoint(root=_root_model()), "write"),
        "root_extra/ckpt": (trackpoint.Checkpoint(root=_root_model(), extra=extra, zeta=zeta),
                            "write"),
        "root_saved/ckpt-1": (trackpoint.Checkpoint(root=_root_model(), extra=extra), "save"),
        "root_variable/ckpt": (trackpoint.Checkpoint(root=trackpoint.Variable(np.float32(4.5))),
                               "write"),
        "root_multi/ckpt": (trackpoint.Checkpoint(root=_MultiTensor(1, 2),
                                                  child=_MultiTensor(3, 4)), "write"),
    }


def _graph_of(prefix):
    from trackpoint import _core

    reader = trackpoint.bundle.BundleReader(prefix)
    nodes = _core.parse_object_graph(reader.read("_CHECKPOINTABLE_OBJECT_GRAPH")[()])
    return [{"children": [list(c) for c in n["children"]],
             "attributes": [[a[0], a[2]] for a in n["attributes"]]} for n in nodes]


@pytest.mark.parametrize("name", sorted(_root_checkpoints()))
def test_root_checkpoint_writes_tensorflows_graph_and_bytes(tmp_path, name):
    ckpt, method = _root_checkpoints()[name]
    directory, base = name.split("/")
    if method == "save":
        path = ckpt.save(tmp_path / base.rsplit("-", 1)[0])
        assert path == str(tmp_path / base)
    else:
        path = ckpt.write(tmp_path / base)
    assert _graph_of(path) == _root_manifest()[name]["nodes"]  # node 0 has the "root" self-edge
    for suffix in (".index", ".data-00000-of-00001"):
        theirs = (ROOT_GRAPH / (name + suffix)).read_bytes()
        assert (tmp_path / (base + suffix)).read_bytes() == theirs, suffix
    if method == "save":
        assert (tmp_path / "checkpoint").read_text() == (ROOT_GRAPH / directory / "checkpoint").read_text()


@pytest.mark.parametrize("name", ["root/ckpt", "root_extra/ckpt", "root_saved/ckpt-1"])
def test_root_checkpoint_restores_tensorflows_files(name):
    m = _root_model()
    for v in (m.a, m.b, m.block.w, m.step):
        v.assign(np.zeros_like(v.numpy()))
    m.note.assign(b"")
    extra, zeta = trackpoint.Variable(np.int32(0)), trackpoint.Variable(np.zeros(3, np.int32))
    kwargs = {"root/ckpt": {}, "root_extra/ckpt": {"extra": extra, "zeta": zeta},
              "root_saved/ckpt-1": {"extra": extra}}[name]
    ckpt = trackpoint.Checkpoint(root=m, **kwargs)
    # restore() creates save_counter, which a write() does not save: read() those.
    load = ckpt.restore if name == "root_saved/ckpt-1" else ckpt.read
    load(str(ROOT_GRAPH / name)).assert_consumed()
    values = _root_manifest()[name]["values"]
    live = {"a": m.a, "b": m.b, "block/w": m.block.w, "step": m.step, "note": m.note,
            "extra": extra, "zeta": zeta, "save_counter": ckpt.save_counter}
    for key, record in values.items():
        got = live[key.split("/.ATTRIBUTES")[0]].numpy()
        assert np.asarray(got).tolist() == np.asarray(_fixture_value(record)).tolist(), key
    assert int(ckpt.save_counter) == (1 if name == "root_saved/ckpt-1" else 0)


def test_root_variable_and_multi_tensor_roots_restore_from_node_0():
    v = trackpoint.Variable(np.float32(0))
    trackpoint.Checkpoint(root=v).read(ROOT_GRAPH / "root_variable/ckpt").assert_consumed()
    assert float(v) == 4.5
    root, child = _MultiTensor(0, 0), _MultiTensor(0, 0)
    trackpoint.Checkpoint(root=root, child=child).read(
        ROOT_GRAPH / "root_multi/ckpt").assert_consumed()
    assert (root.v1, root.v2, child.v1, child.v2) == (1, 2, 3, 4)


def test_children_added_to_the_root_after_restore_receive_their_values():
    m = _root_model(with_block=False, with_note=False)
    status = trackpoint.Checkpoint(m).read(str(ROOT_GRAPH / "root/ckpt"))
    status.assert_existing_objects_matched()
    with pytest.raises(AssertionError):
        status.assert_consumed()
    m.note = trackpoint.Variable(b"")
    m.block = trackpoint.AutoTrackable()
    m.block.w = trackpoint.Variable(np.zeros((2, 2), np.float32))
    assert m.note.numpy()[()] == b"hello"
    assert m.block.w.numpy().tolist() == [[1.0, 2.0], [3.0, 4.0]]
    status.assert_consumed()


def test_save_counter_of_a_root_checkpoint_is_restored():
    ckpt = trackpoint.Checkpoint(root=trackpoint.AutoTrackable())
    ckpt.restore(str(ROOT_GRAPH / "root_saved/ckpt-1")).expect_partial()
    assert int(ckpt.save_counter) == 1


def test_saved_model_directory_written_by_tensorflow():
    saved = ROOT_GRAPH / "saved_model"
    model = trackpoint.AutoTrackable()
    model.v = trackpoint.Variable(np.float32(0))
    ckpt = trackpoint.Checkpoint(model)
    with pytest.raises(errors.NotFoundError, match="Error when restoring from checkpoint or SavedModel"):
        ckpt.restore(str(saved) + "no")
    ckpt.restore(saved).expect_partial()
    assert float(model.v) == 2.0
    model.deferred_variable = trackpoint.Variable(np.float32(1))  # deferred restoration
    assert float(model.deferred_variable) == 5.0


def test_root_keyword_already_a_child_of_root_is_refused():
    model = trackpoint.AutoTrackable()
    model.v = trackpoint.Variable(3.0)
    with pytest.raises(ValueError, match=r"root\.v already exists"):
        trackpoint.Checkpoint(model, v=trackpoint.Variable(5.0))
    model.root = trackpoint.AutoTrackable()
    with pytest.raises(ValueError, match=r"root\.root already exists"):
        trackpoint.Checkpoint(model)
    del model.root
    # The same object under the same name is not attached twice.
    ckpt = trackpoint.Checkpoint(model, v=model.v)
    assert [name for name, _ in _graph_of_root(ckpt)] == ["v", "root"]


def _graph_of_root(ckpt):
    return list(ckpt._graph_root()._trackable_children().items())


def test_weakref_root_is_not_kept_alive(tmp_path):
    root = trackpoint.AutoTrackable()
    root.v = trackpoint.Variable(1)
    ckpt = trackpoint.Checkpoint(root=weakref.ref(root))
    path = ckpt.save(tmp_path / "ckpt")
    assert "v/.ATTRIBUTES/VARIABLE_VALUE" in dict(trackpoint.list_variables(path))
    root.v.assign(2)
    ckpt.restore(path)
    assert int(root.v) == 1
    dead_v, dead_root = weakref.ref(root.v), weakref.ref(root)
    del root
    assert dead_root() is None and dead_v() is None
    with pytest.raises(ValueError, match="weak reference"):
        ckpt.save(tmp_path / "ckpt")


# ---- pending restorations: no reference cycles, no open files ---------------------------

def _open_fds_on(prefix):
    """Descriptors of this process open on the checkpoint's files."""
    out = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(str(prefix)):
            out.append(target)
    return out


class _WithDel(trackpoint.AutoTrackable):
    deleted = 0

    def __del__(self):
        type(self).deleted += 1


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
def test_pending_restorations_keep_no_file_open(tmp_path):
    source = trackpoint.AutoTrackable()
    source.v = trackpoint.Variable(np.arange(4.0))
    source.later = trackpoint.AutoTrackable()
    source.later.w = trackpoint.Variable(np.ones(3, np.float32))
    path = trackpoint.Checkpoint(source).save(tmp_path / "ckpt")
    target = trackpoint.AutoTrackable()
    target.later = trackpoint.AutoTrackable()
    status = trackpoint.Checkpoint(target).restore(path)
    assert _open_fds_on(path) == []  # v and later/w are pending, no file is open
    target.v = trackpoint.Variable(np.zeros(4))
    assert target.v.numpy().tolist() == [0.0, 1.0, 2.0, 3.0]
    assert _open_fds_on(path) == []
    target.later.w = trackpoint.Variable(np.zeros(3, np.float32))
    assert target.later.w.numpy().tolist() == [1.0, 1.0, 1.0]
    status.assert_consumed()
    # Name-based restores (TF1 checkpoints) keep no file open either.
    tf1 = FIXTURES / "tf1_partitioned" / "model.ckpt-7"
    ckpt = trackpoint.Checkpoint(step=trackpoint.Variable(0, dtype="int64", name="global_step"))
    ckpt.restore(tf1)
    assert _open_fds_on(tf1) == []


def test_pending_restorations_make_no_reference_cycle(tmp_path, no_cyclic_gc):
    # TensorFlow's test_deferred_dependency_avoids_reference_cycles, with the
    # cycle collector off so that only reference counting frees objects.
    _WithDel.deleted = 0
    x = trackpoint.AutoTrackable()
    x.v = trackpoint.Variable(100.0)
    x.has_del = _WithDel()
    checkpoint = trackpoint.Checkpoint(x)
    path = checkpoint.save(tmp_path / "ckpt")
    assert _WithDel.deleted == 0
    del checkpoint, x
    assert _WithDel.deleted == 1

    no_v = trackpoint.AutoTrackable()
    no_v.has_del = _WithDel()
    checkpoint = trackpoint.Checkpoint(no_v)
    checkpoint.restore(path).expect_partial()  # "v" stays pending on no_v
    assert "v" in no_v._deferred()
    dead = [weakref.ref(o) for o in (no_v, checkpoint, checkpoint.save_counter)]
    del checkpoint, no_v
    assert _WithDel.deleted == 2
    assert [r() for r in dead] == [None, None, None]


def test_objects_restored_while_the_status_lives_are_freed_with_it(tmp_path, no_cyclic_gc):
    path = trackpoint.Checkpoint(model=make_model()).write(tmp_path / "c")
    model = make_model(seed=3)
    status = trackpoint.Checkpoint(model=model).read(path)
    kernel = weakref.ref(model.layers[0].kernel)
    status.assert_consumed()
    del model
    assert kernel() is not None  # the status keeps what it matched, for its assertions
    status.assert_consumed()
    del status
    assert kernel() is None


def test_a_checkpoint_replaced_before_a_deferred_restore_is_refused(tmp_path):
    source = trackpoint.AutoTrackable()
    source.v = trackpoint.Variable(np.float32(1))
    path = trackpoint.Checkpoint(source).write(tmp_path / "ckpt")
    target = trackpoint.AutoTrackable()
    trackpoint.Checkpoint(target).read(path).expect_partial()
    source.v.assign(2.0)
    trackpoint.Checkpoint(source).write(path)  # new files at the same prefix
    with pytest.raises(errors.DataLossError, match="replaced after restore"):
        target.v = trackpoint.Variable(np.float32(0))
    other = trackpoint.Checkpoint(source).write(tmp_path / "other")
    removed = trackpoint.AutoTrackable()
    trackpoint.Checkpoint(removed).read(other).expect_partial()
    os.remove(other + ".index")
    with pytest.raises(errors.NotFoundError, match="removed after restore"):
        removed.v = trackpoint.Variable(np.float32(0))


def test_attribute_set_on_a_root_checkpoint_later_is_saved(tmp_path):
    # TensorFlow leaves such an attribute out; trackpoint saves it (README).
    model = trackpoint.AutoTrackable()
    model.a = trackpoint.Variable(1.0)
    ckpt = trackpoint.Checkpoint(root=model, extra=trackpoint.Variable(2.0))
    ckpt.late = trackpoint.Variable(3.0)
    keys = dict(trackpoint.list_variables(ckpt.write(tmp_path / "c")))
    assert sorted(keys) == ["_CHECKPOINTABLE_OBJECT_GRAPH", "a/.ATTRIBUTES/VARIABLE_VALUE",
                            "extra/.ATTRIBUTES/VARIABLE_VALUE", "late/.ATTRIBUTES/VARIABLE_VALUE"]


def test_attachments_added_to_a_root_checkpoint_after_restore_receive_their_values():
    ckpt = trackpoint.Checkpoint(root=_root_model())
    ckpt.read(ROOT_GRAPH / "root_extra/ckpt").expect_partial()
    ckpt.extra = trackpoint.Variable(np.int32(0))
    ckpt.zeta = trackpoint.Variable(np.zeros(3, np.int32))
    assert int(ckpt.extra) == 5
    assert ckpt.zeta.numpy().tolist() == [1, 2, 3]


def test_deferred_restorations_from_several_threads(tmp_path):
    import threading

    source = trackpoint.AutoTrackable()
    for t in range(4):
        part = trackpoint.AutoTrackable()
        for i in range(50):
            setattr(part, f"v{i}", trackpoint.Variable(np.full(1000, t * 100 + i, np.float32)))
        setattr(source, f"part{t}", part)
    path = trackpoint.Checkpoint(source).write(tmp_path / "c")
    target = trackpoint.AutoTrackable()
    for t in range(4):
        setattr(target, f"part{t}", trackpoint.AutoTrackable())
    trackpoint.Checkpoint(target).read(path)
    errors_seen = []

    def build(t):
        try:
            part = getattr(target, f"part{t}")
            for i in range(50):
                setattr(part, f"v{i}", trackpoint.Variable(np.zeros(1000, np.float32)))
        except BaseException as e:  # noqa: BLE001 -- reported below
            errors_seen.append(e)

    threads = [threading.Thread(target=build, args=(t,)) for t in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors_seen == []
    for t in range(4):
        part = getattr(target, f"part{t}")
        assert [float(getattr(part, f"v{i}").numpy()[999]) for i in range(50)] == [
            t * 100 + i for i in range(50)]
    if os.path.isdir("/proc/self/fd"):
        assert _open_fds_on(path) == []


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


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
def test_name_based_restore_of_a_v1_file_keeps_it_closed():
    v1 = FIXTURES / "tf1_v1format" / "dtypes"
    model = trackpoint.AutoTrackable()
    model.a = trackpoint.Variable(np.zeros((2, 3), np.float32), name="float32")
    status = trackpoint.Checkpoint(model=model).read(v1)
    assert _open_fds_on(v1) == []
    model.b = trackpoint.Variable(np.zeros((3, 2), np.int32), name="scope/nested")  # restored by name
    assert _open_fds_on(v1) == []
    assert model.b.numpy().any()
    status.assert_consumed()
