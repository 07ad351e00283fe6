"""Durability of CheckpointManager saves and hostile inputs (issue 14).

One test (or a few) per problem of the issue, numbered as there; each failed
before the fix, except two guards: test_7_kept_by_hours_... (adoption must
not reach checkpoints TensorFlow keeps) and test_8_restore_of_a_chain_...
(restore matching was already iterative). Faults are injected by replacing ``os`` functions where
trackpoint calls them (the state file, metrics file and directory paths are
Python), or made real (a FIFO, a /dev/zero link, a truncated shard, a killed
process). A fresh process checks what a restart would find.
"""

import errno
import glob
import os
import pathlib
import resource
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import trackpoint
from trackpoint import _core, state_file
from trackpoint import manager as manager_module
from trackpoint.bundle import BundleWriter
from trackpoint.errors import (
    CheckpointError,
    DataLossError,
    FailedPreconditionError,
    InvalidArgumentError,
    PermissionDeniedError,
    ResourceExhaustedError,
    UnavailableError,
)

KEY = "v/.ATTRIBUTES/VARIABLE_VALUE"
PACKAGE_PARENT = str(pathlib.Path(trackpoint.__file__).resolve().parent.parent)


def python(code: str, *args, timeout=120, limit_bytes=None):
    """Runs code in a fresh interpreter that imports this trackpoint."""
    env = dict(os.environ, PYTHONPATH=PACKAGE_PARENT)

    def limit():
        if limit_bytes is not None:
            resource.setrlimit(resource.RLIMIT_AS, (limit_bytes, limit_bytes))

    return subprocess.run([sys.executable, "-c", textwrap.dedent(code), *map(str, args)],
                          check=False, capture_output=True, text=True, env=env, timeout=timeout,
                          preexec_fn=limit)


FRESH_LATEST = """
    import sys, trackpoint
    path = trackpoint.latest_checkpoint(sys.argv[1])
    value = trackpoint.load_checkpoint(path).get_tensor("v/.ATTRIBUTES/VARIABLE_VALUE")
    print(path, float(value))
"""


def fresh_latest(directory):
    """(latest checkpoint path, its value of v) as a new process sees them."""
    proc = python(FRESH_LATEST, directory)
    assert proc.returncode == 0, proc.stderr
    path, value = proc.stdout.split()
    return path, float(value)


def make_manager(directory, value=1.0, **kwargs):
    ckpt = trackpoint.Checkpoint(v=trackpoint.Variable(np.float32(value)))
    kwargs.setdefault("max_to_keep", 2)
    return ckpt, trackpoint.CheckpointManager(ckpt, directory, **kwargs)


def fd_path(fd: int) -> str:
    return os.readlink(f"/proc/self/fd/{fd}")


def temporary_files(directory) -> list:
    return [n for n in os.listdir(directory) if ".tmp" in n or ".tempstate" in n]


# ---- 1. a failed directory fsync after the state file's rename ---------------------------


def test_1_directory_fsync_failure_after_the_rename_keeps_the_new_checkpoint(
        tmp_path, monkeypatch):
    ckpt, manager = make_manager(tmp_path)
    manager.save()
    ckpt.v.assign(np.float32(2.0))
    renamed = []
    real_replace, real_fsync = os.replace, os.fsync

    def replace(src, dst, *a, **k):
        real_replace(src, dst, *a, **k)
        if os.path.basename(dst) == "checkpoint":
            renamed.append(dst)

    def fsync(fd):
        if renamed and os.path.isdir(fd_path(fd)):
            raise OSError(errno.EIO, "Input/output error")
        real_fsync(fd)

    monkeypatch.setattr(os, "replace", replace)
    monkeypatch.setattr(os, "fsync", fsync)
    path = manager.save()  # committed: not a failure
    monkeypatch.undo()
    assert path == str(tmp_path / "ckpt-2")
    assert int(ckpt.save_counter) == 2
    assert os.path.exists(path + ".index")
    assert fresh_latest(tmp_path) == (path, 2.0)
    assert manager.cleanup_errors and str(tmp_path) in manager.cleanup_errors[0]
    assert "cannot fsync directory" in manager.cleanup_errors[0]
    # A new manager resumes from it.
    ckpt2, manager2 = make_manager(tmp_path, value=0.0)
    assert manager2.restore_or_initialize() == path
    assert float(ckpt2.v.numpy()) == 2.0


# ---- 2. failures while deleting old checkpoints ----------------------------------------


@pytest.mark.parametrize("code", [errno.EIO, errno.EACCES, errno.EROFS])
def test_2_failed_deletion_does_not_fail_the_save_nor_take_the_number_back(
        tmp_path, monkeypatch, code):
    ckpt, manager = make_manager(tmp_path, max_to_keep=1)
    first = manager.save()
    real_unlink = os.unlink

    def unlink(name, *a, **k):
        if os.fspath(name) == first + ".index":
            raise OSError(code, os.strerror(code), name)
        real_unlink(name, *a, **k)

    monkeypatch.setattr(os, "unlink", unlink)
    ckpt.v.assign(np.float32(2.0))
    second = manager.save()
    monkeypatch.undo()
    assert second == str(tmp_path / "ckpt-2")
    assert int(ckpt.save_counter) == 2
    assert manager.latest_checkpoint == second
    assert fresh_latest(tmp_path) == (second, 2.0)
    assert len(manager.cleanup_errors) == 1
    assert first + ".index" in manager.cleanup_errors[0]
    # It stays listed (a later manager would adopt it) and the next save deletes it.
    state = trackpoint.get_checkpoint_state(tmp_path)
    assert state.all_model_checkpoint_paths == [first, second]
    assert os.path.exists(first + ".index")
    third = manager.save()
    assert third == str(tmp_path / "ckpt-3")
    assert not glob.glob(first + ".*") and not glob.glob(second + ".*")
    assert trackpoint.get_checkpoint_state(tmp_path).all_model_checkpoint_paths == [third]


def test_2_nul_byte_in_a_hostile_state_file_does_not_fail_the_save(tmp_path):
    _ckpt, manager = make_manager(tmp_path, max_to_keep=1)
    manager.save()
    stamp = manager_module._now()
    (tmp_path / "checkpoint").write_text(
        'model_checkpoint_path: "ckpt-1"\n'
        'all_model_checkpoint_paths: "ckpt-\\000x"\n'
        'all_model_checkpoint_paths: "ckpt-1"\n'
        f"all_model_checkpoint_timestamps: {stamp}\n"
        f"all_model_checkpoint_timestamps: {stamp}\n"
    )
    manager.close()
    ckpt2, manager2 = make_manager(tmp_path, max_to_keep=1)
    manager2.restore_or_initialize()
    path = manager2.save()
    assert path == str(tmp_path / "ckpt-2")
    assert int(ckpt2.save_counter) == 2
    assert any("null" in e or "NUL" in e for e in manager2.cleanup_errors)
    assert trackpoint.latest_checkpoint(tmp_path) == path
    assert not os.path.exists(tmp_path / "ckpt-1.index")


# ---- 3. failures while writing the state file ------------------------------------------


class _FailingFile:
    """A file whose write() or close() fails with code (an NFS close can fail)."""

    def __init__(self, f, where, code):
        self._f, self._where, self._code = f, where, code

    def __getattr__(self, name):
        return getattr(self._f, name)

    def write(self, data):
        if self._where == "write":
            raise OSError(self._code, os.strerror(self._code))
        return self._f.write(data)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._f.close()
        if self._where == "close" and exc[0] is None:
            raise OSError(self._code, os.strerror(self._code))


def _state_fault(monkeypatch, where, code):
    """Makes `where` fail with `code` for the state file's temporary file."""
    real_open, real_fsync, real_replace = open, os.fsync, os.replace
    is_state_tmp = lambda p: os.path.basename(os.fspath(p)).startswith("checkpoint.tmp")

    def fake_open(file, mode="r", *a, **k):
        if is_state_tmp(file):
            if where == "open":
                raise OSError(code, os.strerror(code), file)
            if where in ("write", "close"):
                return _FailingFile(real_open(file, mode, *a, **k), where, code)
        return real_open(file, mode, *a, **k)

    def fsync(fd):
        if where == "fsync" and is_state_tmp(fd_path(fd)):
            raise OSError(code, os.strerror(code))
        real_fsync(fd)

    def replace(src, dst, *a, **k):
        if where == "rename" and is_state_tmp(src):
            raise OSError(code, os.strerror(code), src, dst)
        real_replace(src, dst, *a, **k)

    monkeypatch.setattr(state_file, "open", fake_open, raising=False)
    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)


@pytest.mark.parametrize("where, code, expected", [
    ("open", errno.EACCES, PermissionDeniedError),
    ("open", errno.EMFILE, ResourceExhaustedError),
    ("write", errno.ENOSPC, ResourceExhaustedError),
    ("fsync", errno.EIO, UnavailableError),
    ("close", errno.EIO, UnavailableError),
    ("rename", errno.EROFS, PermissionDeniedError),
    ("rename", errno.EISDIR, InvalidArgumentError),
    ("rename", errno.EXDEV, UnavailableError),
])
def test_3_state_file_failures_raise_trackpoint_errors_and_keep_the_previous(
        tmp_path, monkeypatch, where, code, expected):
    ckpt, manager = make_manager(tmp_path)
    first = manager.save()
    ckpt.v.assign(np.float32(2.0))
    _state_fault(monkeypatch, where, code)
    with pytest.raises(expected) as info:
        manager.save()
    monkeypatch.undo()
    assert isinstance(info.value, CheckpointError)
    assert str(tmp_path / "checkpoint.tmp") in str(info.value)
    assert int(ckpt.save_counter) == 1
    assert manager.latest_checkpoint == first and manager.checkpoints == [first]
    assert fresh_latest(tmp_path) == (first, 1.0)
    assert temporary_files(tmp_path) == []
    assert not glob.glob(str(tmp_path / "ckpt-2*"))
    assert manager.save() == str(tmp_path / "ckpt-2")  # the number was given back


def test_3_state_file_of_update_checkpoint_state_on_a_directory(tmp_path):
    (tmp_path / "checkpoint").mkdir()
    with pytest.raises(InvalidArgumentError, match="checkpoint"):
        trackpoint.update_checkpoint_state(tmp_path, str(tmp_path / "ckpt-1"))
    assert temporary_files(tmp_path) == []


def test_3_metrics_file_failure_is_a_trackpoint_error_and_removes_the_new_files(
        tmp_path, monkeypatch):
    ckpt, manager = make_manager(tmp_path, best_fn=lambda m: m["a"], keep_best=1)
    first = manager.save(metrics={"a": 1})
    real_fsync = os.fsync

    def fsync(fd):
        if ".metrics.json.tmp" in fd_path(fd):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(ResourceExhaustedError, match="ckpt-2.metrics.json"):
        manager.save(metrics={"a": 2})
    monkeypatch.undo()
    assert int(ckpt.save_counter) == 1
    assert trackpoint.latest_checkpoint(tmp_path) == first
    assert not glob.glob(str(tmp_path / "ckpt-2*"))


# ---- 4. mmap of a truncated shard ------------------------------------------------------


def test_4_mmap_of_a_truncated_shard_is_data_loss_naming_the_key(tmp_path):
    ckpt = trackpoint.Checkpoint(v=trackpoint.Variable(np.arange(1 << 19, dtype=np.float32)))
    prefix = ckpt.write(tmp_path / "c")
    (data,) = glob.glob(prefix + ".data-*")
    os.truncate(data, os.path.getsize(data) // 2)
    reader = trackpoint.load_checkpoint(prefix, mmap=True)
    with pytest.raises(DataLossError, match=r"'v/\.ATTRIBUTES/VARIABLE_VALUE'.*truncated") as info:
        reader.get_tensor(KEY)
    assert data in str(info.value)


def test_4_mmap_of_a_missing_shard_is_not_found(tmp_path):
    ckpt = trackpoint.Checkpoint(v=trackpoint.Variable(np.arange(1 << 19, dtype=np.float32)))
    prefix = ckpt.write(tmp_path / "c")
    (data,) = glob.glob(prefix + ".data-*")
    reader = trackpoint.load_checkpoint(prefix, mmap=True)
    os.unlink(data)
    with pytest.raises(trackpoint.errors.NotFoundError, match="VARIABLE_VALUE"):
        reader.get_tensor(KEY)


# ---- 6. the first save into a new directory --------------------------------------------


def test_6_first_save_fsyncs_every_directory_it_creates_and_their_parent(
        tmp_path, monkeypatch):
    synced = []
    real_fsync = os.fsync

    def fsync(fd):
        synced.append(fd_path(fd))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    directory = tmp_path / "a" / "b" / "c"
    _, manager = make_manager(directory)
    manager.save()
    monkeypatch.undo()
    for d in (directory, directory.parent, directory.parent.parent, tmp_path):
        assert str(d) in synced, (d, synced)


def test_6_make_directories_refuses_a_file_in_the_way(tmp_path):
    (tmp_path / "f").write_text("")
    with pytest.raises(trackpoint.errors.AlreadyExistsError, match="f"):
        state_file.make_directories(tmp_path / "f" / "g")
    with pytest.raises(CheckpointError):
        trackpoint.CheckpointManager(trackpoint.Checkpoint(), tmp_path / "f" / "g",
                                     max_to_keep=1).save()


# ---- 7. a kill between the commit and the deletions ------------------------------------

KILLED_SAVE = """
    import os, sys, numpy as np, trackpoint
    directory = sys.argv[1]
    ckpt = trackpoint.Checkpoint(v=trackpoint.Variable(np.float32(1)))
    manager = trackpoint.CheckpointManager(ckpt, directory, max_to_keep=2)
    manager.save(); manager.save()
    real_unlink = os.unlink
    def unlink(name, *a, **k):
        if os.path.basename(os.fspath(name)) == "ckpt-1.index":
            os._exit(17)  # killed: the state file names ckpt-3, nothing deleted yet
        real_unlink(name, *a, **k)
    os.unlink = unlink
    manager.save()
"""


def test_7_checkpoint_left_by_a_kill_after_the_commit_is_adopted_and_deleted(tmp_path):
    proc = python(KILLED_SAVE, tmp_path)
    assert proc.returncode == 17, proc.stderr
    first, third = str(tmp_path / "ckpt-1"), str(tmp_path / "ckpt-3")
    assert os.path.exists(first + ".index")
    assert trackpoint.latest_checkpoint(tmp_path) == third
    _ckpt, manager = make_manager(tmp_path)
    assert first in manager.checkpoints
    manager.restore_or_initialize()
    assert manager.save() == str(tmp_path / "ckpt-4")
    assert not glob.glob(first + ".*") and not glob.glob(str(tmp_path / "ckpt-2.*"))
    assert manager.checkpoints == [third, str(tmp_path / "ckpt-4")]
    assert trackpoint.get_checkpoint_state(tmp_path).all_model_checkpoint_paths == \
        manager.checkpoints


def test_7_kept_by_hours_and_unmanaged_checkpoints_are_never_adopted(tmp_path, monkeypatch):
    clock = [10000.0]
    monkeypatch.setattr(manager_module, "_now", lambda: clock[0])
    other = trackpoint.Checkpoint(v=trackpoint.Variable(np.float32(0)))
    unmanaged = other.write(tmp_path / "ckpt-0")
    _ckpt, manager = make_manager(tmp_path, max_to_keep=1, keep_checkpoint_every_n_hours=1)
    first = manager.save()
    for _ in range(3):
        clock[0] += 3600.0
        manager.save()
    assert manager.checkpoints == [str(tmp_path / "ckpt-4")]
    manager.close()
    _ckpt2, manager2 = make_manager(tmp_path, max_to_keep=1)
    assert manager2.checkpoints == [str(tmp_path / "ckpt-4")]
    manager2.restore_or_initialize()
    clock[0] += 10.0
    manager2.save()
    # TensorFlow's rule: ckpt-1 was not an hour past the manager's start.
    assert not os.path.exists(first + ".index")
    for kept in (unmanaged, str(tmp_path / "ckpt-2"), str(tmp_path / "ckpt-3")):
        assert os.path.exists(kept + ".index"), kept


# ---- 8. unbounded inputs ---------------------------------------------------------------

STATE_READ = """
    import sys, trackpoint
    try:
        trackpoint.latest_checkpoint(sys.argv[1])
    except trackpoint.errors.CheckpointError as e:
        print(type(e).__name__, e)
"""


def test_8_state_file_that_is_a_fifo_is_refused_without_blocking(tmp_path):
    os.mkfifo(tmp_path / "checkpoint")
    proc = python(STATE_READ, tmp_path, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("FailedPreconditionError")
    assert f"{tmp_path / 'checkpoint'} is not a regular file (a FIFO)" in proc.stdout


def test_8_state_file_linked_to_dev_zero_is_refused(tmp_path):
    os.symlink("/dev/zero", tmp_path / "checkpoint")
    proc = python(STATE_READ, tmp_path, timeout=60, limit_bytes=2 << 30)
    assert proc.returncode == 0, proc.stderr
    assert "a character device" in proc.stdout and str(tmp_path / "checkpoint") in proc.stdout


def test_8_state_file_that_is_a_directory_or_too_large_is_refused(tmp_path):
    (tmp_path / "checkpoint").mkdir()
    with pytest.raises(FailedPreconditionError, match="a directory"):
        trackpoint.get_checkpoint_state(tmp_path)
    with pytest.raises(FailedPreconditionError, match="a directory"):
        make_manager(tmp_path)
    (tmp_path / "checkpoint").rmdir()
    with open(tmp_path / "checkpoint", "wb") as f:
        f.truncate(state_file.MAX_STATE_BYTES + 1)
    with pytest.raises(ResourceExhaustedError, match="larger than 16777216 bytes"):
        trackpoint.latest_checkpoint(tmp_path)


def test_8_metrics_file_that_is_a_fifo_is_ignored(tmp_path, caplog):
    _ckpt, manager = make_manager(tmp_path, best_fn=lambda m: m["a"], keep_best=1)
    manager.save(metrics={"a": 1})
    manager.close()
    os.unlink(tmp_path / "ckpt-1.metrics.json")
    os.mkfifo(tmp_path / "ckpt-1.metrics.json")
    proc = python("""
        import sys, trackpoint
        m = trackpoint.CheckpointManager(trackpoint.Checkpoint(), sys.argv[1], max_to_keep=1,
                                         best_fn=lambda m: m["a"], keep_best=1)
        print(m.checkpoints, m.best_checkpoint())
    """, tmp_path, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"['{tmp_path / 'ckpt-1'}'] None"
    assert "not a regular file (a FIFO)" in proc.stderr


def _write_chain(prefix: str, n: int) -> None:
    """A checkpoint whose object graph is a chain of n nodes (root -c-> ... -c->),
    the last holding v = 3.0, written without building the objects."""
    nodes = [{"children": [(i + 1, "c")], "attributes": [], "slot_variables": [],
              "registered_saver": None, "has_checkpoint_values": True} for i in range(n - 1)]
    nodes.append({"children": [], "attributes": [("VARIABLE_VALUE", "", "last/" + KEY[2:])],
                  "slot_variables": [], "registered_saver": None, "has_checkpoint_values": True})
    writer = BundleWriter(prefix)
    writer.add("_CHECKPOINTABLE_OBJECT_GRAPH",
               np.array(_core.serialize_object_graph(nodes), dtype=object))
    writer.add("last/" + KEY[2:], np.float32(3.0))
    writer.finish()


def test_8_graph_of_a_chain_of_100000_objects_prints_in_bounded_memory(tmp_path):
    n = 100_000
    _write_chain(str(tmp_path / "chain"), n)
    proc = subprocess.run(
        [sys.executable, "-m", "trackpoint", "graph", str(tmp_path / "chain")],
        check=False, capture_output=True, text=True, timeout=300,
        env=dict(os.environ, PYTHONPATH=PACKAGE_PARENT),
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30)))
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    assert len(lines) == n
    assert lines[0] == "(root)"
    assert lines[1] == "└── c"
    assert lines[-1].endswith(f"└── [depth {n - 1}] c  float32[]")
    assert max(map(len, lines)) < 200


def test_8_restore_of_a_chain_of_100000_objects(tmp_path):
    n = 100_000
    _write_chain(str(tmp_path / "chain"), n)
    first = node = trackpoint.AutoTrackable()
    for _ in range(n - 3):
        node.c = trackpoint.AutoTrackable()
        node = node.c
    node.c = last = trackpoint.Variable(np.float32(0.0))
    ckpt = trackpoint.Checkpoint(c=first)
    ckpt.read(str(tmp_path / "chain")).assert_consumed()
    assert float(last.numpy()) == 3.0


def test_6_checkpoint_save_into_a_new_directory_fsyncs_it_and_its_parent(
        tmp_path, monkeypatch):
    synced = []
    real_fsync = os.fsync

    def fsync(fd):
        synced.append(fd_path(fd))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    ckpt = trackpoint.Checkpoint(v=trackpoint.Variable(np.float32(1)))
    ckpt.save(tmp_path / "x" / "y" / "ckpt")
    ckpt.write(tmp_path / "z" / "snapshot")
    monkeypatch.undo()
    for d in ("x/y", "x", "z", ""):
        assert str(tmp_path / d) in synced, (d, synced)


def test_3_unreadable_state_file_fails_a_new_manager_instead_of_starting_over(
        tmp_path, monkeypatch, caplog):
    _, manager = make_manager(tmp_path)
    manager.save()
    manager.close()
    real_open = os.open

    def fake_open(path, flags, *a, **k):
        if os.path.basename(os.fspath(path)) == "checkpoint" and not flags & os.O_DIRECTORY:
            raise OSError(errno.EIO, os.strerror(errno.EIO), path)
        return real_open(path, flags, *a, **k)

    monkeypatch.setattr(os, "open", fake_open)
    with pytest.raises(UnavailableError, match=f"cannot read checkpoint state {tmp_path}"):
        make_manager(tmp_path)
    # TensorFlow's reader function logs and reads it as no state.
    assert trackpoint.get_checkpoint_state(tmp_path) is None
    assert "Input/output error" in caplog.text


def test_a_new_manager_removes_what_an_interrupted_deletion_left(tmp_path):
    """A crash while deleting an old checkpoint may make the unlink of its
    data file durable but not that of its index or metrics file: a new
    manager removes such remains of checkpoints the state file no longer
    lists, and nothing of the ones it lists."""
    ckpt = trackpoint.Checkpoint(v=trackpoint.Variable(1.0))
    manager = trackpoint.CheckpointManager(ckpt, str(tmp_path), max_to_keep=3)
    for _ in range(3):
        manager.save()
    manager.close()
    # ckpt-1: deleted but for its index and a metrics file; ckpt-3: listed, data lost.
    trackpoint.update_checkpoint_state(str(tmp_path), "ckpt-3", ["ckpt-2", "ckpt-3"])
    for name in os.listdir(tmp_path):
        if name.startswith(("ckpt-1.data-", "ckpt-3.data-")):
            os.unlink(tmp_path / name)
    (tmp_path / "ckpt-1.metrics.json").write_text("{}")
    (tmp_path / "ckpt-9.metrics.json").write_text("{}")  # unlisted, no checkpoint
    trackpoint.CheckpointManager(ckpt, str(tmp_path), max_to_keep=3).close()
    names = sorted(os.listdir(tmp_path))
    assert not any(n.startswith(("ckpt-1.", "ckpt-9.")) for n in names), names
    assert "ckpt-3.index" in names  # listed: left for the reader to report
    assert any(n.startswith("ckpt-2.data-") for n in names) and "ckpt-2.index" in names
