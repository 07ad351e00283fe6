"""The checkpoint state file: get_checkpoint_state and latest_checkpoint."""

import logging

import pytest

import trackpoint
from trackpoint.management import CheckpointState

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
