"""TensorFlow's behaviour as tensorflow/python/training/checkpoint_utils_test.py
defines it, tested on trackpoint.

The checkpoint is the one that file's ``_create_checkpoints`` writes (var1
[1,10], var2 [10,10], var3 [100,100], useful_scope/var4 [9,9], a TF1 Saver at
global_step=0), written by TensorFlow 2.21 with fixed values instead of random
ones: tests/fixtures/tf1_saver/ (tests/fixtures/generate_tf_state.py). The
expected values are what TF's reader returned for it (expected.json).

Cases that cannot apply:

- testInitFromCheckpoint, testInitialValueComesFromCheckpoint,
  testInitWithScopeDoesNotCaptureSuffixes, testRestoreRunsOnSameDevice,
  testInitFromRootCheckpoint, testInitToRootCheckpoint,
  testInitFromPartitionVar, testInitFromCheckpointMissing,
  testNoAdditionalReadOpsForResourceVariables: they test
  ``init_from_checkpoint``, which rewires the initializers of TF1 graph
  variables found through ``variable_scope`` (graph mode, sessions, devices,
  graph ops); trackpoint has no variable scopes nor initializers. Name-based
  restore of such a checkpoint into objects is tested in test_checkpoint.py.
- WaitForNewCheckpointTest.testReturnsNoneAfterTimeout: trackpoint has no
  ``wait_for_new_checkpoint``; the same behaviour (nothing new within the
  timeout: nothing returned) is tested through ``checkpoints_iterator``
  below, without TF's assertions on elapsed time.
"""

import json
import pathlib
import shutil

import numpy as np
import pytest

import trackpoint
from trackpoint import state_file
from trackpoint.errors import NotFoundError

FIXTURE = pathlib.Path(__file__).resolve().parents[2] / "fixtures" / "tf1_saver"
EXPECTED = json.loads((FIXTURE / "expected.json").read_text())
TENSORS = EXPECTED["checkpoints"]["model-0"]["tensors"]


def tf_value(name):
    spec = TENSORS[name]
    return np.frombuffer(bytes.fromhex(spec["hex"]), np.float32).reshape(spec["shape"])


@pytest.fixture
def checkpoint_dir(tmp_path):
    """A copy of the TF-written checkpoint directory (state file included)."""
    d = tmp_path / "ckpt_dir"
    shutil.copytree(FIXTURE, d)
    return d


def test_no_checkpoints(tmp_path):
    # testNoCheckpoints: a directory that does not exist is taken as a prefix.
    with pytest.raises(NotFoundError, match="Unsuccessful TensorSliceReader constructor"):
        trackpoint.load_variable(str(tmp_path) + "/no_checkpoints", "var1")


def test_no_tensor(checkpoint_dir):
    # testNoTensor
    with pytest.raises(NotFoundError, match="Key var5 not found in checkpoint") as info:
        trackpoint.load_variable(checkpoint_dir, "var5")
    assert str(checkpoint_dir / "model-0") in str(info.value)


def test_get_tensor(checkpoint_dir):
    # testGetTensor
    for name in ("var1", "var2", "var3", "useful_scope/var4"):
        value = trackpoint.load_variable(checkpoint_dir, name)
        assert value.dtype == np.float32
        assert value.tobytes() == tf_value(name).tobytes(), name


def test_get_all_variables(checkpoint_dir):
    # testGetAllVariables: TF's exact list.
    assert EXPECTED["list_variables"] == [
        ["useful_scope/var4", [9, 9]], ["var1", [1, 10]], ["var2", [10, 10]],
        ["var3", [100, 100]]]
    assert trackpoint.list_variables(checkpoint_dir) == [
        (name, shape) for name, shape in EXPECTED["list_variables"]]


def test_fs_path(checkpoint_dir):
    # testFSPath: pathlib paths everywhere.
    path = pathlib.Path(checkpoint_dir)
    reader = trackpoint.load_checkpoint(path)
    assert reader.get_tensor("var1").tobytes() == tf_value("var1").tobytes()
    assert trackpoint.load_variable(path, "var1").tobytes() == tf_value("var1").tobytes()
    assert trackpoint.list_variables(path) == [
        (name, shape) for name, shape in EXPECTED["list_variables"]]


def test_latest_checkpoint_of_the_directory_is_tensorflows(checkpoint_dir):
    assert trackpoint.latest_checkpoint(checkpoint_dir) == str(
        checkpoint_dir / EXPECTED["latest_checkpoint"])


def test_returns_none_after_timeout(monkeypatch):
    # WaitForNewCheckpointTest.testReturnsNoneAfterTimeout, through the iterator.
    monkeypatch.setattr(state_file, "_POLL_SECONDS", 0.01)
    assert list(trackpoint.checkpoints_iterator("/non-existent-dir", timeout=0.05)) == []
