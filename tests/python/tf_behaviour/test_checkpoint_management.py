"""TensorFlow's behaviour of checkpoint state files and CheckpointManager, as
TensorFlow 2.21's tensorflow/python/checkpoint/checkpoint_management_test.py
checks it: the same cases, with TensorFlow's expected values, against
trackpoint.

Cases of that file that cannot apply here, and why:
- LatestCheckpointWithRelativePaths.testNameCollision: TF1 ``Saver`` (graph
  mode, sessions, sharded V1 saving, its "collides with" check); trackpoint
  has no Saver. (testRelativePath is kept, with ``Checkpoint.save`` writing
  the history instead of a Saver.)
- SaverUtilsTest (testCheckpointExists, testGetCheckpointMtimes,
  testRemoveCheckpoint): TF1 ``Saver`` in graph mode, V1 and V2 write
  formats, and the deprecated ``checkpoint_exists`` / ``get_checkpoint_mtimes``
  / ``remove_checkpoint`` functions, which trackpoint does not provide.
- CheckpointStateTest.testAbsPath, testRelPath, testAllModelCheckpointPaths
  call TF's internal ``generate_checkpoint_state_proto``; the same behaviour
  is checked through ``update_checkpoint_state`` and the file it writes. In
  testAllModelCheckpointPaths TF's expected length is read from the caller's
  list, which TF's function extends in place; trackpoint leaves its
  arguments alone, so the lengths TF's run produces (1, 1, 2) are written out.
- testUpdateCheckpointStateSaveRelativePaths calls TF's internal
  ``update_checkpoint_state_internal(save_relative_paths=True)``; trackpoint
  takes the same flag as a keyword of ``update_checkpoint_state``.
- ``run_in_graph_and_eager_modes``: only the eager half applies.
"""

import contextlib
import logging
import os
import pathlib

import numpy as np
import pytest

import trackpoint
from trackpoint import manager as manager_module


def exists(prefix) -> bool:
    """TF's checkpoint_exists for a V2 checkpoint."""
    return os.path.exists(os.fspath(prefix) + ".index")


@contextlib.contextmanager
def working_directory(path):
    cwd = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(cwd)


@pytest.fixture
def clock(monkeypatch):
    """TF's tests mock checkpoint_management.time; trackpoint's manager reads _now."""
    now = [0.0]
    monkeypatch.setattr(manager_module, "_now", lambda: now[0])
    return now


def variable(value, dtype=None):
    return trackpoint.Variable(np.asarray(value, dtype=dtype or np.float32))


# ---- LatestCheckpointWithRelativePaths -------------------------------------------------


def test_relative_path(tmp_path):
    with working_directory(tmp_path):
        os.mkdir("train")
        v0 = variable(0.0)
        ckpt = trackpoint.Checkpoint(v0=v0)
        for value in (0.0, 1.0, 2.0):
            v0.assign(np.float32(value))
            ckpt.save(os.path.join("train", "snapshot"))
        v0 = variable(-1.0)
        name = trackpoint.latest_checkpoint("train")
        assert name is not None
        trackpoint.Checkpoint(v0=v0).restore(name)
        assert float(v0.numpy()) == 2.0


# ---- CheckpointStateTest ---------------------------------------------------------------


def raw_state(directory) -> list:
    """The (field, value) lines of a state file as written."""
    lines = (pathlib.Path(directory) / "checkpoint").read_text().splitlines()
    return [tuple(part.strip() for part in line.split(":", 1)) for line in lines]


def test_abs_path(tmp_path):
    save_dir = tmp_path / "abs_paths"
    save_dir.mkdir()
    abs_path = os.path.join(save_dir, "model-0")
    trackpoint.update_checkpoint_state(save_dir, abs_path)
    assert raw_state(save_dir) == [("model_checkpoint_path", f'"{abs_path}"'),
                                   ("all_model_checkpoint_paths", f'"{abs_path}"')]
    ckpt = trackpoint.get_checkpoint_state(save_dir)
    assert ckpt.model_checkpoint_path == abs_path
    assert os.path.isabs(ckpt.model_checkpoint_path)
    assert len(ckpt.all_model_checkpoint_paths) == 1
    assert ckpt.all_model_checkpoint_paths[-1] == abs_path


def test_rel_path(tmp_path):
    with working_directory(tmp_path):
        os.mkdir("train")
        model = os.path.join("train", "model-0")
        trackpoint.update_checkpoint_state("train", model)
        # model_checkpoint_path has no "train" directory part.
        assert raw_state("train") == [("model_checkpoint_path", '"model-0"'),
                                      ("all_model_checkpoint_paths", '"model-0"')]


@pytest.mark.parametrize("paths, length", [(None, 1), ([], 1), (["model-2"], 2)])
def test_all_model_checkpoint_paths(tmp_path, paths, length):
    save_dir = tmp_path / "all_models_test"
    save_dir.mkdir()
    abs_path = os.path.join(save_dir, "model-0")
    trackpoint.update_checkpoint_state(save_dir, abs_path, all_model_checkpoint_paths=paths)
    stored = [value for field, value in raw_state(save_dir)]
    assert stored[0] == f'"{abs_path}"'  # kept absolute
    ckpt = trackpoint.get_checkpoint_state(save_dir)
    assert ckpt.model_checkpoint_path == abs_path
    assert len(ckpt.all_model_checkpoint_paths) == length
    assert ckpt.all_model_checkpoint_paths[-1] == abs_path


@pytest.mark.parametrize("as_path", [str, pathlib.Path])
def test_update_checkpoint_state(tmp_path, as_path):  # and testFSPath
    save_dir = tmp_path / "update_checkpoint_state"
    save_dir.mkdir()
    with working_directory(save_dir):
        os.mkdir("train")
        abs_path = os.path.join(save_dir, "model-0")
        rel_path = os.path.join("train", "model-2")
        trackpoint.update_checkpoint_state("train", rel_path,
                                           all_model_checkpoint_paths=[abs_path, rel_path])
        ckpt = trackpoint.get_checkpoint_state(as_path("train"))
        assert ckpt.model_checkpoint_path == rel_path
        assert len(ckpt.all_model_checkpoint_paths) == 2
        assert ckpt.all_model_checkpoint_paths[-1] == rel_path
        assert ckpt.all_model_checkpoint_paths[0] == abs_path


def test_update_checkpoint_state_save_relative_paths(tmp_path):
    save_dir = str(tmp_path)
    abs_path2, rel_path2 = os.path.join(save_dir, "model-2"), "model-2"
    abs_path0, rel_path0 = os.path.join(save_dir, "model-0"), "model-0"
    trackpoint.update_checkpoint_state(save_dir, abs_path2,
                                       all_model_checkpoint_paths=[rel_path0, abs_path2],
                                       save_relative_paths=True)
    # The file holds relative paths.
    assert raw_state(save_dir) == [("model_checkpoint_path", f'"{rel_path2}"'),
                                   ("all_model_checkpoint_paths", f'"{rel_path0}"'),
                                   ("all_model_checkpoint_paths", f'"{rel_path2}"')]
    # get_checkpoint_state returns absolute ones.
    ckpt = trackpoint.get_checkpoint_state(save_dir)
    assert ckpt.model_checkpoint_path == abs_path2
    assert ckpt.all_model_checkpoint_paths == [abs_path0, abs_path2]


def test_checkpoint_state_fails_when_incomplete(tmp_path):
    (tmp_path / "checkpoint").write_text("")
    with pytest.raises(ValueError):
        trackpoint.get_checkpoint_state(tmp_path)


def test_checkpoint_completes_relative_paths(tmp_path):
    (tmp_path / "checkpoint").write_text("""
        model_checkpoint_path: "./model.ckpt-687529"
        all_model_checkpoint_paths: "./model.ckpt-687500"
        all_model_checkpoint_paths: "./model.ckpt-687529"
        """)
    ckpt = trackpoint.get_checkpoint_state(tmp_path)
    assert ckpt.model_checkpoint_path == os.path.join(tmp_path, "./model.ckpt-687529")
    assert ckpt.all_model_checkpoint_paths == [os.path.join(tmp_path, "./model.ckpt-687500"),
                                               os.path.join(tmp_path, "./model.ckpt-687529")]


def test_checkpoint_save_and_manager_write_relative_paths(tmp_path):
    # What TF's Checkpoint.save and CheckpointManager write (TF 2.21 run).
    trackpoint.Checkpoint().save(tmp_path / "a" / "ckpt")
    assert raw_state(tmp_path / "a") == [("model_checkpoint_path", '"ckpt-1"'),
                                         ("all_model_checkpoint_paths", '"ckpt-1"')]
    manager = trackpoint.CheckpointManager(trackpoint.Checkpoint(), tmp_path / "b",
                                           max_to_keep=2)
    manager.save()
    assert raw_state(tmp_path / "b")[:2] == [("model_checkpoint_path", '"ckpt-1"'),
                                             ("all_model_checkpoint_paths", '"ckpt-1"')]


# ---- CheckpointManagerTest -------------------------------------------------------------


def test_deletion(tmp_path):
    manager = trackpoint.CheckpointManager(trackpoint.Checkpoint(), tmp_path, max_to_keep=3)
    first, second, third, fourth = (manager.save() for _ in range(4))
    assert exists(fourth) and exists(third) and exists(second)
    assert not exists(first)


def test_keep_all(tmp_path):
    checkpoint = trackpoint.Checkpoint()
    manager = trackpoint.CheckpointManager(checkpoint, tmp_path, max_to_keep=None)
    first, second, third = (manager.save() for _ in range(3))
    assert exists(third) and exists(second) and exists(first)
    assert manager.latest_checkpoint == third
    assert manager.checkpoints == [first, second, third]
    del manager
    manager = trackpoint.CheckpointManager(checkpoint, tmp_path, max_to_keep=None)
    fourth = manager.save()
    assert manager.checkpoints == [first, second, third, fourth]
    del manager
    manager = trackpoint.CheckpointManager(checkpoint, tmp_path, max_to_keep=3)
    assert manager.checkpoints == [first, second, third, fourth]
    assert all(exists(p) for p in (first, second, third, fourth))
    fifth = manager.save()
    assert manager.checkpoints == [third, fourth, fifth]
    assert exists(fifth) and exists(fourth) and exists(third)
    assert not exists(second) and not exists(first)


def test_save_restore_state(tmp_path, clock):
    directory = str(tmp_path)
    clock[0] = 3.0
    checkpoint = trackpoint.Checkpoint()
    first_manager = trackpoint.CheckpointManager(checkpoint, directory, max_to_keep=2)
    first_time = 10000.0
    first_name = os.path.join(directory, "ckpt-1")
    clock[0] = first_time
    first_manager.save()
    second_time = first_time + 3610.0
    second_name = os.path.join(directory, "ckpt-2")
    clock[0] = second_time
    first_manager.save()
    state = trackpoint.get_checkpoint_state(directory)
    assert state.all_model_checkpoint_timestamps == [first_time, second_time]
    assert first_manager.checkpoints == [first_name, second_name]
    assert first_manager.latest_checkpoint == second_name
    del first_manager

    second_manager = trackpoint.CheckpointManager(
        checkpoint, directory, max_to_keep=2, keep_checkpoint_every_n_hours=1.5)
    assert second_manager.checkpoints == [first_name, second_name]
    assert second_manager.latest_checkpoint == second_name
    third_name = os.path.join(directory, "ckpt-3")
    third_time = second_time + 3600.0 * 0.2
    clock[0] = third_time
    second_manager.save()
    assert exists(first_name) and exists(second_name)
    assert second_manager.checkpoints == [second_name, third_name]
    state = trackpoint.get_checkpoint_state(directory)
    assert state.last_preserved_timestamp == first_time
    fourth_time = third_time + 3600.0 * 0.5
    clock[0] = fourth_time
    fourth_name = os.path.join(directory, "ckpt-4")
    second_manager.save()
    assert exists(first_name) and not exists(second_name)
    assert second_manager.checkpoints == [third_name, fourth_name]
    fifth_time = fourth_time + 3600.0 * 0.5
    clock[0] = fifth_time
    fifth_name = os.path.join(directory, "ckpt-5")
    second_manager.save()
    assert second_manager.checkpoints == [fourth_name, fifth_name]
    state = trackpoint.get_checkpoint_state(directory)
    assert state.last_preserved_timestamp == first_time
    del second_manager
    third_manager = trackpoint.CheckpointManager(
        checkpoint, directory, max_to_keep=2, keep_checkpoint_every_n_hours=1.5)
    assert third_manager.latest_checkpoint == fifth_name
    clock[0] += 10.0
    third_manager.save()
    sixth_name = os.path.join(directory, "ckpt-6")
    state = trackpoint.get_checkpoint_state(directory)
    assert state.last_preserved_timestamp == fourth_time
    assert exists(first_name) and exists(fourth_name)
    assert exists(fifth_name) and exists(sixth_name)
    assert not exists(second_name) and not exists(third_name)
    assert third_manager.checkpoints == [fifth_name, sixth_name]


def test_continue_from_unmanaged(tmp_path):
    prefix = os.path.join(tmp_path, "unusual_prefix")
    checkpoint = trackpoint.Checkpoint()
    first = checkpoint.save(prefix)
    second = checkpoint.save(prefix)
    del checkpoint
    checkpoint = trackpoint.Checkpoint()
    manager = trackpoint.CheckpointManager(checkpoint, tmp_path, max_to_keep=2)
    checkpoint.restore(manager.latest_checkpoint)
    assert int(checkpoint.save_counter) == 2
    third = manager.save()
    assert manager.checkpoints == [third]
    fourth = manager.save()
    assert manager.checkpoints == [third, fourth]
    fifth = manager.save()
    assert manager.checkpoints == [fourth, fifth]
    assert exists(first) and exists(second)
    assert not exists(third)
    assert exists(fourth) and exists(fifth)


def test_clock_reset(tmp_path, clock, caplog):
    directory = str(tmp_path)
    clock[0] = 10000.0
    checkpoint = trackpoint.Checkpoint()
    first_manager = trackpoint.CheckpointManager(
        checkpoint, directory, max_to_keep=1, keep_checkpoint_every_n_hours=1.0)
    first = first_manager.save()
    clock[0] += 3600.0
    second = first_manager.save()
    clock[0] += 3600.0
    third = first_manager.save()
    assert not exists(first)
    assert exists(second) and exists(third)
    assert first_manager.checkpoints == [third]
    state = trackpoint.get_checkpoint_state(directory)
    assert state.last_preserved_timestamp == 13600.0
    # The clock goes back in time.
    clock[0] = 5000.0
    del first_manager
    with caplog.at_level(logging.WARNING, logger="trackpoint"):
        second_manager = trackpoint.CheckpointManager(checkpoint, directory, max_to_keep=1)
    assert "behind the last preserved checkpoint timestamp" in caplog.text
    # Not sure whether they were preserved: they are kept.
    assert exists(second)
    # Known, but never deleted, so not in the state file on save.
    assert second_manager.latest_checkpoint == third
    assert second_manager.checkpoints == []
    clock[0] += 10.0
    fourth = second_manager.save()
    assert exists(second) and exists(third)
    assert second_manager.latest_checkpoint == fourth
    assert second_manager.checkpoints == [fourth]
    clock[0] += 10.0
    fifth = second_manager.save()
    assert exists(second) and exists(third)
    assert second_manager.checkpoints == [fifth]
    state = trackpoint.get_checkpoint_state(directory)
    assert state.last_preserved_timestamp == 5000.0
    assert state.all_model_checkpoint_timestamps == [5020.0]


def test_custom_numbering(tmp_path):
    step = variable(0, np.int64)
    checkpoint = trackpoint.Checkpoint(step=step)
    manager = trackpoint.CheckpointManager(checkpoint, tmp_path, max_to_keep=2)
    for i in range(5):
        path = manager.save(checkpoint_number=step)
        assert path.endswith(f"-{2 * i}")
        step.assign_add(2)
    assert int(checkpoint.save_counter) == 5
    last_path = manager.save(checkpoint_number=32)
    assert "-32" in last_path
    assert manager.latest_checkpoint == last_path
    assert trackpoint.latest_checkpoint(tmp_path) == last_path
    state = trackpoint.get_checkpoint_state(tmp_path)
    assert state.all_model_checkpoint_paths == [path, last_path]


def test_custom_checkpoint_prefix(tmp_path):
    checkpoint = trackpoint.Checkpoint()
    manager = trackpoint.CheckpointManager(checkpoint, tmp_path, max_to_keep=2,
                                           checkpoint_name="ckpt_name")
    assert os.path.basename(manager.save(checkpoint_number=5)) == "ckpt_name-5"
    manager = trackpoint.CheckpointManager(checkpoint, tmp_path, max_to_keep=2)
    assert os.path.basename(manager.save(checkpoint_number=5)) == "ckpt-5"


def test_restore_or_initialize(tmp_path):
    init_v = variable(2.0)
    init_path = trackpoint.Checkpoint(v=init_v).save(os.path.join(tmp_path, "init"))
    v = variable(1.0)
    checkpoint = trackpoint.Checkpoint(v=v)
    manager = trackpoint.CheckpointManager(
        checkpoint, os.path.join(tmp_path, "ckpt"), max_to_keep=None,
        init_fn=lambda: checkpoint.restore(init_path))
    # The first call runs init_fn.
    assert manager.restore_or_initialize() is None
    assert float(v.numpy()) == 2.0
    # After a save, the second call restores from it.
    manager.save()
    assert manager.restore_or_initialize() is not None


def test_checkpoint_manager_fspath_directory(tmp_path):
    directory = pathlib.Path(tmp_path)
    checkpoint = trackpoint.Checkpoint(v=variable(0.0))
    manager = trackpoint.CheckpointManager(checkpoint, directory, max_to_keep=2,
                                           checkpoint_name="ckpt_name")
    assert manager.save() == str(directory / "ckpt_name-1")
    assert manager.restore_or_initialize() == str(directory / "ckpt_name-1")


def test_latest_checkpoint_fspath_directory(tmp_path):
    directory = pathlib.Path(tmp_path)
    manager = trackpoint.CheckpointManager(trackpoint.Checkpoint(), directory, max_to_keep=2,
                                           checkpoint_name="ckpt_name")
    manager.save()
    assert trackpoint.latest_checkpoint(directory) == str(directory / "ckpt_name-1")


def test_checkpoint_interval(tmp_path):
    step_counter = variable(0, np.int32)
    manager = trackpoint.CheckpointManager(
        trackpoint.Checkpoint(v=variable(1.0)), tmp_path, max_to_keep=None,
        step_counter=step_counter, checkpoint_interval=2)
    # step 0: an initial checkpoint.
    assert exists(manager.save(check_interval=True))
    # step 1: none.
    step_counter.assign_add(1)
    assert manager.save(check_interval=True) is None
    # step 2: saved.
    step_counter.assign_add(1)
    assert exists(manager.save(check_interval=True))
    # the same step again: none.
    assert manager.save(check_interval=True) is None
    # step 3: none.
    step_counter.assign_add(1)
    assert manager.save(check_interval=True) is None
    # check_interval=False always saves.
    assert exists(manager.save(check_interval=False))


def test_checkpoint_interval_with_last_checkpoint_step(tmp_path):
    step_counter = variable(1, np.int32)
    manager = trackpoint.CheckpointManager(
        trackpoint.Checkpoint(v=variable(1.0)), tmp_path, max_to_keep=None,
        step_counter=step_counter, checkpoint_interval=2, last_checkpoint_step=1)
    assert manager.save(check_interval=True) is None  # step 1
    step_counter.assign_add(1)
    assert manager.save(check_interval=True) is None  # step 2: the interval starts at 1
    step_counter.assign_add(1)
    assert exists(manager.save(check_interval=True))  # step 3


def test_checkpoint_interval_with_restore(tmp_path):
    step_counter = variable(0, np.int32)
    checkpoint = trackpoint.Checkpoint(v=variable(1.0))
    checkpoint.save(os.path.join(tmp_path, "ckpt"))
    manager = trackpoint.CheckpointManager(checkpoint, tmp_path, max_to_keep=None,
                                           step_counter=step_counter, checkpoint_interval=2)
    assert manager.restore_or_initialize() is not None
    # step 0, restored at the same step: nothing saved.
    assert manager.save() is None
