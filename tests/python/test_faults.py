"""I/O faults during a save, injected into the C++ file layer
(``_core_testing.set_io_fault``) and into the state-file write: the save fails with
a clean error (ResourceExhaustedError for a full disk, UnavailableError for
EIO), the previous checkpoint stays the latest and reads, and nothing of the
failed save is left in the directory."""

from __future__ import annotations

import errno
import gc
import os

import numpy as np
import pytest

import trackpoint
from trackpoint import _core_testing, cli, state_file
from trackpoint.errors import ResourceExhaustedError, UnavailableError


@pytest.fixture(autouse=True)
def disarm():
    yield
    _core_testing.set_io_fault("none", 0)


def _model():
    model = trackpoint.AutoTrackable()
    model.big = trackpoint.Variable(np.zeros(1 << 14, np.float32))  # 64 KiB
    model.small = trackpoint.Variable(np.zeros(3, np.int64))
    model.label = trackpoint.Variable("")
    return model


def _fill(model, k):
    model.big.assign(np.full(1 << 14, k, np.float32))
    model.small.assign(np.full(3, k, np.int64))
    model.label.assign(f"save {k}")


def _check(prefix, k, *, written=False):
    """The checkpoint restores whole, with every value from save k (written:
    by Checkpoint.write, so without a save_counter)."""
    model = _model()
    ckpt = trackpoint.Checkpoint(model=model)
    (ckpt.read(prefix) if written else ckpt.restore(prefix)).assert_consumed()
    assert (np.asarray(model.big) == k).all()
    assert (np.asarray(model.small) == k).all()
    assert model.label.numpy() == f"save {k}".encode()


def _listing(directory):
    return sorted(os.listdir(directory))


# (fault, bytes written before it strikes, expected error). The data file of
# a save is ~64 KiB and its index ~0.5 KiB; byte budgets land the fault in
# the data, in the index, and (for fsync/rename/dirsync) at the last moment.
FAULTS = [
    ("enospc", 0, ResourceExhaustedError),
    ("enospc", 40_000, ResourceExhaustedError),
    ("enospc", 65_600, ResourceExhaustedError),
    ("eio", 0, UnavailableError),
    ("eio", 65_600, UnavailableError),
    ("fsync", 0, UnavailableError),
    ("fsync", 65_600, UnavailableError),
    ("rename", 0, UnavailableError),
    ("rename", 65_600, UnavailableError),
    ("dirsync", 0, UnavailableError),
]


@pytest.mark.parametrize("fault,after,error", FAULTS, ids=[f"{f}@{n}" for f, n, _ in FAULTS])
def test_a_failed_save_keeps_the_previous_checkpoint(tmp_path, fault, after, error):
    model = _model()
    ckpt = trackpoint.Checkpoint(model=model)
    manager = trackpoint.CheckpointManager(ckpt, tmp_path, max_to_keep=3)
    _fill(model, 1)
    first = manager.save()
    before = _listing(tmp_path)

    _fill(model, 2)
    _core_testing.set_io_fault(fault, after)
    with pytest.raises(error) as raised:
        manager.save()
    _core_testing.set_io_fault("none", 0)
    assert isinstance(raised.value, OSError)  # both are OSErrors too
    if fault == "enospc":
        assert "No space left on device" in str(raised.value)

    assert trackpoint.latest_checkpoint(tmp_path) == first
    assert manager.latest_checkpoint == first
    assert manager.checkpoints == [first]
    assert _listing(tmp_path) == before  # no temporary file, no half checkpoint
    _check(first, 1)

    # The disk works again: saving goes on.
    _fill(model, 3)
    latest = manager.save()
    assert trackpoint.latest_checkpoint(tmp_path) == latest
    _check(latest, 3)
    manager.close()


def test_a_failed_save_leaves_a_new_manager_nothing_to_clean(tmp_path):
    model = _model()
    manager = trackpoint.CheckpointManager(trackpoint.Checkpoint(model=model), tmp_path, 3)
    _fill(model, 1)
    manager.save()
    _core_testing.set_io_fault("enospc", 30_000)
    with pytest.raises(ResourceExhaustedError):
        manager.save()
    _core_testing.set_io_fault("none", 0)
    manager.close()
    before = _listing(tmp_path)
    trackpoint.CheckpointManager(trackpoint.Checkpoint(model=_model()), tmp_path, 3).close()
    assert _listing(tmp_path) == before


@pytest.mark.parametrize("failing", ["write", "fsync", "replace"])
def test_a_failed_state_file_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch, failing):
    # The state file is written by Python (write_atomically): a full disk
    # there fails the save too, and the new, unrecorded checkpoint goes.
    model = _model()
    manager = trackpoint.CheckpointManager(trackpoint.Checkpoint(model=model), tmp_path, 3)
    _fill(model, 1)
    first = manager.save()
    before = _listing(tmp_path)

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    if failing == "replace":
        monkeypatch.setattr(state_file.os, "replace", full_disk)
    elif failing == "fsync":
        monkeypatch.setattr(state_file.os, "fsync", full_disk)
    else:
        real_open = open

        def open_failing_writes(path, mode="r", *args, **kwargs):
            f = real_open(path, mode, *args, **kwargs)
            if "w" in mode and ".tmp" in os.fspath(path):
                f.write = full_disk
            return f

        monkeypatch.setattr("builtins.open", open_failing_writes)
    _fill(model, 2)
    with pytest.raises(OSError, match="No space left"):
        manager.save()
    monkeypatch.undo()

    assert trackpoint.latest_checkpoint(tmp_path) == first
    assert manager.latest_checkpoint == first
    assert manager.checkpoints == [first]
    assert _listing(tmp_path) == before
    _check(first, 1)
    _fill(model, 3)
    _check(manager.save(), 3)
    manager.close()


def test_checkpoint_write_under_faults_leaves_no_file(tmp_path):
    # Checkpoint.write (no manager, no state file): the same guarantees.
    model = _model()
    _fill(model, 1)
    for fault in ("enospc", "eio", "fsync", "rename", "dirsync"):
        _core_testing.set_io_fault(fault, 10_000 if fault in ("enospc", "eio") else 0)
        with pytest.raises((ResourceExhaustedError, UnavailableError)):
            trackpoint.Checkpoint(model=model).write(tmp_path / "ckpt")
        _core_testing.set_io_fault("none", 0)
        assert _listing(tmp_path) == [], fault


def _contents(directory):
    return {name: (directory / name).read_bytes() for name in _listing(directory)}


# Where a fault strikes while a checkpoint is written over an existing one:
# (fault, its byte budget from the old data file's size D and index's size I).
OVERWRITE_FAULTS = {
    "data": ("enospc", lambda d, i: d // 2),
    "data fsync": ("fsync", lambda d, i: 0),
    "index": ("enospc", lambda d, i: d + i // 2),
    "index eio": ("eio", lambda d, i: d + 1),
    "index fsync": ("fsync", lambda d, i: d + 1),
}


@pytest.mark.parametrize("where", list(OVERWRITE_FAULTS))
def test_a_failed_overwrite_keeps_the_old_checkpoint(tmp_path, where):
    # Checkpoint.write over an existing prefix: a fault while the new data or
    # index is written leaves the old checkpoint byte for byte.
    model = _model()
    _fill(model, 1)
    prefix = tmp_path / "ckpt"
    trackpoint.Checkpoint(model=model).write(prefix)
    before = _contents(tmp_path)
    fault, budget = OVERWRITE_FAULTS[where]
    _fill(model, 2)  # the same file sizes as save 1
    _core_testing.set_io_fault(fault, budget(len(before["ckpt.data-00000-of-00001"]),
                                      len(before["ckpt.index"])))
    with pytest.raises((ResourceExhaustedError, UnavailableError)):
        trackpoint.Checkpoint(model=model).write(prefix)
    _core_testing.set_io_fault("none", 0)

    assert _contents(tmp_path) == before  # no temporary file either
    _check(prefix, 1, written=True)
    assert cli.main(["verify", str(prefix)]) == 0  # every CRC32C
    trackpoint.Checkpoint(model=model).write(prefix)
    _check(prefix, 2, written=True)


def test_a_failed_write_dropped_late_spares_its_retry(tmp_path):
    # The failed write's exception (its traceback holding the writer) outlives
    # a successful retry at the same prefix: letting it go deletes nothing.
    model = _model()
    _fill(model, 1)
    _core_testing.set_io_fault("dirsync", 0)  # after every file was renamed into place
    with pytest.raises(UnavailableError) as raised:
        trackpoint.Checkpoint(model=model).write(tmp_path / "ckpt")
    _core_testing.set_io_fault("none", 0)
    assert _listing(tmp_path) == []
    trackpoint.Checkpoint(model=model).write(tmp_path / "ckpt")
    after = _listing(tmp_path)
    del raised
    gc.collect()
    assert _listing(tmp_path) == after
    _check(tmp_path / "ckpt", 1, written=True)


def test_unknown_fault_kind_is_a_value_error():
    with pytest.raises(ValueError, match="unknown I/O fault"):
        _core_testing.set_io_fault("gremlins", 0)
