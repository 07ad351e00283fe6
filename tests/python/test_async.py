"""Asynchronous saves (CheckpointOptions(enable_async=True)): snapshot
semantics, one save in flight, errors surfacing later, and the state file
moving only once the data is durable."""

import threading

import numpy as np
import pytest

import trackpoint
from trackpoint import _saver

ASYNC = trackpoint.CheckpointOptions(enable_async=True)


@pytest.fixture
def gate(monkeypatch):
    """Holds background writes until released; counts them."""
    state = {"release": threading.Event(), "started": threading.Event(), "calls": 0,
             "fail": None}
    real = _saver.write_items

    def gated(items, prefix):
        state["calls"] += 1
        state["started"].set()
        assert state["release"].wait(30)
        if state["fail"] is not None:
            error, state["fail"] = state["fail"], None
            raise error
        return real(items, prefix)

    monkeypatch.setattr(_saver, "write_items", gated)
    monkeypatch.setattr("trackpoint.checkpoint.write_items", gated)
    return state


def test_save_returns_before_writing_and_saves_the_snapshot(tmp_path, gate):
    w = trackpoint.Variable(np.arange(4, dtype=np.float32))
    ckpt = trackpoint.Checkpoint(w=w)
    path = ckpt.save(tmp_path / "ckpt", options=ASYNC)
    assert path == str(tmp_path / "ckpt-1")
    assert gate["started"].wait(30)
    # Not written yet: no files, the state file does not name it.
    assert not (tmp_path / "ckpt-1.index").exists()
    assert trackpoint.latest_checkpoint(tmp_path) is None
    w.assign(np.full(4, -1, np.float32))  # training goes on
    gate["release"].set()
    ckpt.sync()
    assert trackpoint.latest_checkpoint(tmp_path) == path
    saved = trackpoint.load_variable(path, "w/.ATTRIBUTES/VARIABLE_VALUE")
    assert saved.tolist() == [0, 1, 2, 3]  # the values at save() time


def test_one_save_in_flight(tmp_path, gate):
    ckpt = trackpoint.Checkpoint(w=trackpoint.Variable([1.0]))
    ckpt.save(tmp_path / "ckpt", options=ASYNC)
    assert gate["started"].wait(30)
    second = threading.Thread(target=ckpt.save, args=(tmp_path / "ckpt",), kwargs={"options": ASYNC})
    second.start()
    second.join(0.3)
    assert second.is_alive()  # waits for the first write
    gate["release"].set()
    second.join(30)
    ckpt.sync()
    assert gate["calls"] == 2
    assert trackpoint.latest_checkpoint(tmp_path) == str(tmp_path / "ckpt-2")


def test_background_error_is_raised_at_the_next_call_never_lost(tmp_path, gate):
    ckpt = trackpoint.Checkpoint(w=trackpoint.Variable([1.0]))
    ckpt.save(tmp_path / "ckpt", options=ASYNC)
    gate["fail"] = OSError(28, "No space left on device")
    gate["release"].set()
    with pytest.raises(OSError, match="No space left"):
        ckpt.sync()
    ckpt.sync()  # raised once
    assert trackpoint.latest_checkpoint(tmp_path) is None
    gate["fail"] = OSError(5, "I/O error")
    ckpt.save(tmp_path / "ckpt", options=ASYNC)
    with pytest.raises(OSError, match="I/O error"):
        ckpt.save(tmp_path / "ckpt", options=ASYNC)  # the next save reports it


def test_restore_waits_for_the_pending_save(tmp_path, gate):
    w = trackpoint.Variable([5.0])
    ckpt = trackpoint.Checkpoint(w=w)
    path = ckpt.write(tmp_path / "c", options=ASYNC)
    threading.Timer(0.2, gate["release"].set).start()
    w.assign([0.0])
    ckpt.read(path).assert_consumed()
    assert float(w.numpy()[0]) == 5.0


def test_manager_records_after_the_background_write(tmp_path, gate):
    ckpt = trackpoint.Checkpoint(w=trackpoint.Variable([1.0]))
    manager = trackpoint.CheckpointManager(ckpt, tmp_path, max_to_keep=1)
    gate["release"].set()
    for _ in range(3):
        manager.save(options=ASYNC)
    manager.wait_until_finished()
    assert manager.checkpoints == [str(tmp_path / "ckpt-3")]
    assert sorted(p.name for p in tmp_path.glob("*.index")) == ["ckpt-3.index"]
    assert trackpoint.latest_checkpoint(tmp_path) == str(tmp_path / "ckpt-3")


def test_a_failed_background_save_takes_no_number(tmp_path, gate):
    # Its error surfaces at the next call, which gives its number back first:
    # the next save takes it (the path the failed save returned never appears).
    ckpt = trackpoint.Checkpoint(w=trackpoint.Variable([1.0]))
    manager = trackpoint.CheckpointManager(ckpt, tmp_path, max_to_keep=3)
    gate["release"].set()
    first = manager.save(options=ASYNC)
    manager.sync()
    gate["fail"] = OSError(28, "No space left on device")
    assert manager.save(options=ASYNC) == str(tmp_path / "ckpt-2")
    with pytest.raises(OSError, match="No space left"):
        manager.save(options=ASYNC)  # reports the failure, saves nothing
    assert int(ckpt.save_counter) == 1
    assert manager.save(options=ASYNC) == str(tmp_path / "ckpt-2")
    manager.sync()
    assert manager.checkpoints == [first, str(tmp_path / "ckpt-2")]
    assert trackpoint.latest_checkpoint(tmp_path) == str(tmp_path / "ckpt-2")
    # Checkpoint.save alone, its failure surfacing in sync().
    gate["fail"] = OSError(5, "I/O error")
    assert ckpt.save(tmp_path / "ckpt", options=ASYNC) == str(tmp_path / "ckpt-3")
    with pytest.raises(OSError, match="I/O error"):
        ckpt.sync()
    assert int(ckpt.save_counter) == 2
    assert ckpt.save(tmp_path / "ckpt", options=ASYNC) == str(tmp_path / "ckpt-3")
    ckpt.sync()
    saved = trackpoint.load_variable(str(tmp_path / "ckpt-3"),
                                     "save_counter/.ATTRIBUTES/VARIABLE_VALUE")
    assert int(saved) == 3
    manager.close()
