"""Several processes on one checkpoint directory: one writer at a time (the
CheckpointManager's directory lock), and readers that run concurrently with
the writer without ever seeing a partial checkpoint."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import trackpoint
from trackpoint import _dirlock
from trackpoint.errors import FailedPreconditionError, NotFoundError


def _checkpoint(value=0.0):
    return trackpoint.Checkpoint(v=trackpoint.Variable(np.float32(value)))


# A second process: builds a manager on argv[1], optionally saves, prints the
# outcome as JSON.
OTHER = textwrap.dedent("""
    import json, sys
    import numpy as np
    import trackpoint
    directory, action = sys.argv[1], sys.argv[2]
    try:
        m = trackpoint.CheckpointManager(
            trackpoint.Checkpoint(v=trackpoint.Variable(np.float32(7))), directory, max_to_keep=5)
        if action == "save":
            m.restore_or_initialize()  # continue the numbering
            m.save()
        print(json.dumps({"ok": True}))
    except Exception as e:
        print(json.dumps({"ok": False, "type": type(e).__name__, "message": str(e)}))
""")


def _other_process(directory, action="save") -> dict:
    out = subprocess.run(
        [sys.executable, "-c", OTHER, str(directory), action],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_second_process_cannot_save_into_a_managed_directory(tmp_path):
    m = trackpoint.CheckpointManager(_checkpoint(), tmp_path, max_to_keep=5)
    m.save()
    refused = _other_process(tmp_path)
    assert not refused["ok"]
    assert refused["type"] == "FailedPreconditionError"
    assert str(tmp_path) in refused["message"]
    assert f"process {os.getpid()}" in refused["message"]
    assert trackpoint.latest_checkpoint(tmp_path) == str(tmp_path / "ckpt-1")
    m.close()
    assert _other_process(tmp_path) == {"ok": True}  # released: now it may
    assert trackpoint.latest_checkpoint(tmp_path) == str(tmp_path / "ckpt-2")


def test_the_lock_is_refused_in_this_process_when_another_holds_it(tmp_path):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent("""
            import sys, numpy as np, trackpoint
            m = trackpoint.CheckpointManager(
                trackpoint.Checkpoint(v=trackpoint.Variable(np.float32(1))), sys.argv[1], 3)
            m.save()
            print("saved", flush=True)
            sys.stdin.readline()
        """),
            str(tmp_path),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "saved"
        m = trackpoint.CheckpointManager(_checkpoint(), tmp_path, max_to_keep=3)
        with pytest.raises(FailedPreconditionError, match=f"process {holder.pid}"):
            m.save()
        assert m.checkpoints == [str(tmp_path / "ckpt-1")]  # nothing changed
        holder.stdin.close()
        holder.wait(timeout=60)
        assert m.save() == str(tmp_path / "ckpt-1")  # the holder is gone
    finally:
        holder.kill()
        holder.wait()


def test_a_first_save_waits_out_a_brief_hold_by_another_process(tmp_path):
    # A manager being constructed in another process (another rank of a job)
    # holds the lock for a moment to clean up; a save meanwhile must not fail.
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent("""
            import sys, time
            from trackpoint import _dirlock
            key = _dirlock.acquire(sys.argv[1])
            print("held", flush=True)
            time.sleep(0.5)
            _dirlock.release(key)
            time.sleep(30)
        """),
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        m = trackpoint.CheckpointManager(_checkpoint(3.0), tmp_path, max_to_keep=3)
        assert m.save() == str(tmp_path / "ckpt-1")
        assert trackpoint.load_variable(tmp_path, "v/.ATTRIBUTES/VARIABLE_VALUE") == 3.0
    finally:
        holder.kill()
        holder.wait()


def test_managers_of_one_process_share_the_lock(tmp_path):
    ckpt = _checkpoint()
    first = trackpoint.CheckpointManager(ckpt, tmp_path, max_to_keep=5)
    first.save()
    second = trackpoint.CheckpointManager(ckpt, tmp_path, max_to_keep=5)
    second.save()  # TensorFlow's usage: a new manager while the old one lives
    first.close()
    assert not _other_process(tmp_path)["ok"]  # second still holds it
    second.close()
    assert _other_process(tmp_path)["ok"]


def test_garbage_collection_and_with_blocks_release_the_lock(tmp_path):
    m = trackpoint.CheckpointManager(_checkpoint(), tmp_path, max_to_keep=5)
    m.save()
    del m
    gc.collect()
    assert _other_process(tmp_path)["ok"]
    with trackpoint.CheckpointManager(_checkpoint(), tmp_path, max_to_keep=5) as m:
        m.save()
        assert not _other_process(tmp_path)["ok"]
    assert _other_process(tmp_path)["ok"]
    with pytest.raises(FailedPreconditionError, match="closed"):
        m.save()


def test_the_lock_adds_no_file_to_the_directory(tmp_path):
    with trackpoint.CheckpointManager(_checkpoint(), tmp_path, max_to_keep=5) as m:
        m.save()
        assert sorted(os.listdir(tmp_path)) == [
            "checkpoint",
            "ckpt-1.data-00000-of-00001",
            "ckpt-1.index",
        ]


def test_a_manager_built_while_another_process_saves_leaves_its_files_alone(tmp_path):
    with trackpoint.CheckpointManager(_checkpoint(), tmp_path, max_to_keep=5) as m:
        m.save()
        # What a save in progress looks like to another process.
        in_flight = tmp_path / "ckpt-2.data-00000-of-00001.tempstate123"
        in_flight.write_bytes(b"being written")
        assert _other_process(tmp_path, action="construct") == {"ok": True}
        assert in_flight.exists()
    # Nobody holds the directory now: the file is a leftover and goes.
    assert _other_process(tmp_path, action="construct") == {"ok": True}
    assert not in_flight.exists()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
@pytest.mark.filterwarnings("ignore:os.fork")
def test_a_forked_child_does_not_inherit_the_lock(tmp_path):
    m = trackpoint.CheckpointManager(_checkpoint(), tmp_path, max_to_keep=5)
    m.save()
    pid = os.fork()
    if pid == 0:
        # The child is refused like any other process. It makes system calls
        # only: other threads' locks are not safe to take after fork().
        try:
            _dirlock.acquire(str(tmp_path))
            os._exit(1)
        except FailedPreconditionError:
            os._exit(0)
        except Exception:  # noqa: BLE001 -- any other outcome fails the test
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    m.save()  # the parent still holds it
    m.close()
    assert _other_process(tmp_path)["ok"]


# ---- readers concurrent with a writer -----------------------------------------------------

WRITER = textwrap.dedent("""
    import sys
    import numpy as np
    import trackpoint
    directory, saves, keep = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    model = trackpoint.AutoTrackable()
    model.big = trackpoint.Variable(np.zeros(1 << 16, np.float32))
    model.small = [trackpoint.Variable(np.zeros(n, np.int64)) for n in (1, 7, 300)]
    model.label = trackpoint.Variable("")
    ckpt = trackpoint.Checkpoint(model=model)
    manager = trackpoint.CheckpointManager(ckpt, directory,
                                           max_to_keep=None if keep == "all" else int(keep))
    for k in range(1, saves + 1):
        model.big.assign(np.full(1 << 16, k, np.float32))
        for t in model.small:
            t.assign(np.full(t.shape, k, np.int64))
        model.label.assign(f"save {k}")
        manager.save()
    manager.close()
""")


def _read_everything(prefix: str) -> int:
    """Reads every tensor (CRC-checked) and restores the whole object graph;
    all of it must come from one save. Returns its number."""
    reader = trackpoint.load_checkpoint(prefix)
    k = int(reader.get_tensor("save_counter/.ATTRIBUTES/VARIABLE_VALUE"))
    assert prefix.endswith(f"-{k}"), prefix
    for key in reader.keys():  # noqa: SIM118 -- a CheckpointReader, not a dict
        if key.startswith(("model/big", "model/small")):
            assert (reader.get_tensor(key) == k).all(), (prefix, key)
    assert reader.get_tensor("model/label/.ATTRIBUTES/VARIABLE_VALUE") == f"save {k}".encode()
    model = trackpoint.AutoTrackable()
    model.big = trackpoint.Variable(np.zeros(1 << 16, np.float32))
    model.small = [trackpoint.Variable(np.zeros(n, np.int64)) for n in (1, 7, 300)]
    model.label = trackpoint.Variable("")
    trackpoint.Checkpoint(model=model).restore(prefix).assert_consumed()
    assert (np.asarray(model.big) == k).all()
    return k


def _race(tmp_path, saves: int, keep: str):
    """Runs the writer while this process reads whatever is latest, again and
    again. Returns (checkpoints read, errors that were a rotated-away path)."""
    directory = tmp_path / "run"
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(directory), str(saves), keep],
        stderr=subprocess.PIPE,
        text=True,
    )
    seen, rotated, last = set(), 0, 0
    try:
        while True:
            done = writer.poll() is not None
            latest = trackpoint.latest_checkpoint(directory)
            if latest is not None:
                try:
                    k = _read_everything(latest)
                except NotFoundError:
                    # A manager keeping few checkpoints deleted this one
                    # between our lookup and our read: never the latest one.
                    assert keep != "all"
                    assert trackpoint.latest_checkpoint(directory) != latest
                    rotated += 1
                else:
                    assert k >= last  # the latest never goes backwards
                    last = k
                    seen.add(k)
            if done:
                break
        assert writer.returncode == 0, writer.stderr.read()
    finally:
        writer.kill()
        writer.wait()
    assert last == saves
    return seen, rotated


def test_readers_never_see_a_partial_checkpoint(tmp_path):
    seen, _ = _race(tmp_path, saves=120, keep="all")
    assert len(seen) >= 5, f"only {len(seen)} checkpoints read: the race was not exercised"


def test_readers_racing_a_rotating_manager_see_only_whole_checkpoints(tmp_path):
    # With max_to_keep=2 a checkpoint can vanish between latest_checkpoint()
    # and the read: that is a NotFoundError for a superseded path, never a
    # DataLossError or a mix of two saves.
    seen, _ = _race(tmp_path, saves=120, keep="2")
    assert len(seen) >= 5
