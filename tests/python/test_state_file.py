"""The checkpoint state file: get_checkpoint_state and latest_checkpoint."""

import logging
import os
import signal
import threading
import time

import numpy as np
import pytest

import trackpoint
from trackpoint import state_file
from trackpoint.state_file import CheckpointState

from conftest import FIXTURES, load_expected


def test_reads_a_tensorflow_manager_directory():
    state = trackpoint.get_checkpoint_state(FIXTURES / "manager")
    expected = load_expected("manager")
    base = str(FIXTURES / "manager")
    assert state.model_checkpoint_path == f"{base}/{expected['latest_checkpoint']}"
    assert state.all_model_checkpoint_paths == [
        f"{base}/{p}" for p in expected["all_model_checkpoint_paths"]
    ]
    assert len(state.all_model_checkpoint_timestamps) == 3
    assert all(t > 1.7e9 for t in state.all_model_checkpoint_timestamps)
    assert state.last_preserved_timestamp > 1.7e9


def test_reads_a_tf1_saver_state():
    prefix = trackpoint.latest_checkpoint(FIXTURES / "tf1_partitioned")
    assert prefix == str(FIXTURES / "tf1_partitioned" / "model.ckpt-7")


def test_missing_state_file_is_none(tmp_path):
    assert trackpoint.get_checkpoint_state(tmp_path) is None
    assert trackpoint.latest_checkpoint(tmp_path) is None


def test_escapes_and_absolute_paths(tmp_path):
    (tmp_path / "checkpoint").write_text(
        'model_checkpoint_path: "caf\\303\\251-\\"q\\"-2"\n'
        'all_model_checkpoint_paths: "/abs/ckpt-1"\n'
        "all_model_checkpoint_paths: 'caf\\303\\251-\\\"q\\\"-2'\n"
        "all_model_checkpoint_timestamps: 1.0\n"
        "all_model_checkpoint_timestamps: 2.5e3\n"
    )
    state = trackpoint.get_checkpoint_state(tmp_path)
    assert state.model_checkpoint_path == str(tmp_path / 'café-"q"-2')
    assert state.all_model_checkpoint_paths == ["/abs/ckpt-1", str(tmp_path / 'café-"q"-2')]
    assert state.all_model_checkpoint_timestamps == [1.0, 2500.0]
    assert state.last_preserved_timestamp == 0.0


def test_latest_checkpoint_requires_the_index_file(tmp_path, caplog):
    (tmp_path / "checkpoint").write_text('model_checkpoint_path: "ckpt-9"\n')
    with caplog.at_level(logging.ERROR, logger="trackpoint"):
        assert trackpoint.latest_checkpoint(tmp_path) is None
    assert "ckpt-9" in caplog.text
    (tmp_path / "ckpt-9.index").write_bytes(b"")
    assert trackpoint.latest_checkpoint(tmp_path) == str(tmp_path / "ckpt-9")


def test_unparsable_state_warns_and_returns_none(tmp_path, caplog):
    (tmp_path / "checkpoint").write_text("model_checkpoint_path ckpt-1\n")
    with caplog.at_level(logging.WARNING, logger="trackpoint"):
        assert trackpoint.get_checkpoint_state(tmp_path) is None
    assert "cannot parse" in caplog.text


def test_state_without_a_path_is_value_error(tmp_path):
    (tmp_path / "checkpoint").write_text("all_model_checkpoint_timestamps: 1.0\n")
    with pytest.raises(ValueError, match="Invalid checkpoint state"):
        trackpoint.get_checkpoint_state(tmp_path)


def test_state_is_a_plain_dataclass():
    s = CheckpointState(model_checkpoint_path="a")
    assert s.all_model_checkpoint_paths == [] and s.last_preserved_timestamp == 0.0


# ---- checkpoints_iterator ---------------------------------------------------------------



def _writer(directory, count, pause):
    ckpt = trackpoint.Checkpoint(w=trackpoint.Variable(np.zeros(1 << 16, np.float32)))
    manager = trackpoint.CheckpointManager(ckpt, directory, max_to_keep=None)
    for k in range(1, count + 1):
        ckpt.w.assign(np.full(1 << 16, k, np.float32))
        manager.save()
        time.sleep(pause)


def test_iterator_yields_each_new_checkpoint_once_and_complete(tmp_path, monkeypatch):
    monkeypatch.setattr(state_file, "_POLL_SECONDS", 0.01)
    thread = threading.Thread(target=_writer, args=(tmp_path, 6, 0.15))
    thread.start()
    seen = []
    for path in trackpoint.checkpoints_iterator(tmp_path, timeout=2.0):
        # Complete the moment it is yielded: every tensor reads and verifies.
        reader = trackpoint.load_checkpoint(path)
        k = int(path.rsplit("-", 1)[1])
        assert (reader.get_tensor("w/.ATTRIBUTES/VARIABLE_VALUE") == k).all()
        seen.append(k)
    thread.join()
    assert seen == sorted(set(seen))  # each once, in order
    assert seen[-1] == 6 and len(seen) >= 3


def test_iterator_timeout_and_timeout_fn(tmp_path, monkeypatch):
    monkeypatch.setattr(state_file, "_POLL_SECONDS", 0.01)
    start = time.time()
    assert list(trackpoint.checkpoints_iterator(tmp_path, timeout=0.2)) == []
    assert time.time() - start >= 0.15
    calls = []

    def timeout_fn():
        calls.append(1)
        if len(calls) == 1:  # keep waiting once, and let a checkpoint arrive meanwhile
            _writer(tmp_path, 1, 0)
        return len(calls) >= 3

    assert [os.path.basename(p) for p in
            trackpoint.checkpoints_iterator(tmp_path, timeout=0.1, timeout_fn=timeout_fn)] == ["ckpt-1"]
    assert len(calls) == 3


def test_iterator_min_interval(tmp_path, monkeypatch):
    monkeypatch.setattr(state_file, "_POLL_SECONDS", 0.01)
    _writer(tmp_path, 1, 0)
    it = trackpoint.checkpoints_iterator(tmp_path, min_interval_secs=0.3, timeout=0.05)
    first = next(it)
    start = time.time()
    assert list(it) == []  # nothing new; but the interval is honoured first
    assert time.time() - start >= 0.25
    assert first.endswith("ckpt-1")


# ---- hostile state files (regressions of tests/fuzz/state_file_fuzzer.py; the inputs
# are in tests/fuzz/regressions/state_file/) ----------------------------------------------

REGRESSIONS = FIXTURES.parent / "fuzz" / "regressions" / "state_file"


def test_long_blank_runs_do_not_hang_the_parser():
    # A lazy-value regex backtracked quadratically here: ~30 s for this one
    # 60 KB line (milliseconds now). The alarm is a hang guard, not a timing.
    text = (REGRESSIONS / "blank_run_backtracking").read_text()

    def hung(*_):
        raise TimeoutError("parsing one 60 KB line took over 10 s")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(10)
    try:
        state = state_file._parse_state(text)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert state.model_checkpoint_path == "a" + " " * 60000 + "x"


def test_non_utf8_path_bytes_are_written_back_escaped(tmp_path):
    # "\x82" is a byte that is not UTF-8: it reads as a surrogate escape and
    # used to make update_checkpoint_state raise UnicodeEncodeError.
    text = (REGRESSIONS / "non_utf8_path_round_trip").read_text()
    state = state_file._parse_state(text)
    assert state.model_checkpoint_path == "\udc82"
    written = state_file._format_state(state)
    assert written == 'model_checkpoint_path: "\\202"\n'
    assert state_file._parse_state(written) == state
    (tmp_path / "checkpoint").write_text(text)
    latest = trackpoint.get_checkpoint_state(tmp_path).model_checkpoint_path
    trackpoint.update_checkpoint_state(tmp_path, latest, save_relative_paths=True)
    assert (tmp_path / "checkpoint").read_text() == (
        'model_checkpoint_path: "\\202"\nall_model_checkpoint_paths: "\\202"\n')
