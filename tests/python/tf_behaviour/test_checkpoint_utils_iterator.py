"""TensorFlow's behaviour of ``checkpoints_iterator``, as TensorFlow 2.21's
tensorflow/python/training/checkpoint_utils_iterator_test.py checks it: the
same cases, with TensorFlow's expected values, against trackpoint.

Cases of that file that cannot apply here, and why:
- testReturnsSingleCheckpointIfOneShardedCheckpoint: a TF1 ``Saver`` in a
  graph-mode session, sharding variables by device (``/cpu:0``, ``/cpu:1``).
  trackpoint has neither; the behaviour it checks (a checkpoint of several
  data files counts once) is checked instead on the TensorFlow-written
  7-shard fixture ``tests/fixtures/multishard``.
- ``run_in_graph_and_eager_modes``: only the eager half applies.
"""

import os
import pathlib
import shutil

import numpy as np
import pytest

import trackpoint

FIXTURES = pathlib.Path(__file__).resolve().parent.parent.parent / "fixtures"


def count(iterator) -> int:
    return sum(1 for _ in iterator)


def test_returns_empty_if_no_checkpoints_found(tmp_path):
    checkpoint_dir = os.path.join(tmp_path, "no_checkpoints_found")
    assert count(trackpoint.checkpoints_iterator(checkpoint_dir, timeout=0)) == 0


@pytest.mark.parametrize("as_path", [str, pathlib.Path])
def test_returns_single_checkpoint_if_one_checkpoint_found(tmp_path, as_path):  # + FSPath
    checkpoint_dir = tmp_path / "one_checkpoint_found"
    checkpoint_dir.mkdir()
    a = trackpoint.Variable(np.int32(5))
    trackpoint.Checkpoint(a=a).save(file_prefix=as_path(checkpoint_dir / "model.ckpt"))
    assert count(trackpoint.checkpoints_iterator(as_path(checkpoint_dir), timeout=0)) == 1


def test_returns_single_checkpoint_if_one_sharded_checkpoint(tmp_path):
    checkpoint_dir = tmp_path / "one_checkpoint_found_sharded"
    shutil.copytree(FIXTURES / "multishard", checkpoint_dir)
    assert len(list(checkpoint_dir.glob("ckpt.data-*"))) == 7
    trackpoint.update_checkpoint_state(checkpoint_dir, str(checkpoint_dir / "ckpt"))
    found = list(trackpoint.checkpoints_iterator(checkpoint_dir, timeout=0))
    assert found == [str(checkpoint_dir / "ckpt")]


def test_timeout_fn():
    calls = [0]

    def timeout_fn():
        calls[0] += 1
        return calls[0] > 3

    results = list(trackpoint.checkpoints_iterator(
        "/non-existent-dir", timeout=0.1, timeout_fn=timeout_fn))
    assert results == []
    assert calls[0] == 4
