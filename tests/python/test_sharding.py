"""Sharding policies (trackpoint.experimental) against TensorFlow 2.21: the
same data files and index, byte for byte, as TF writes for the same tensors
and policy (fixtures in tests/fixtures/tf_train/sharding/ and multishard/,
written by generate_tf_train.py and generate.py)."""

import json
import logging
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

import trackpoint
from trackpoint.bundle import BundleReader
from trackpoint.experimental import (
    MaxShardSizePolicy,
    PythonState,
    ShardableTensor,
    ShardByTaskPolicy,
    ShardingCallback,
)
from conftest import TF_PYTHON, needs_tf

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SHARDING = FIXTURES / "tf_train" / "sharding"


def sharding_values():
    """generate_tf_train.sharding_variables(), the same values."""
    return {
        "cube": np.arange(6 * 5 * 4, dtype=np.float32).reshape(6, 5, 4) / 3.0,
        "half": (np.arange(70, dtype=np.float16) - 35).reshape(7, 10),
        "flags": np.arange(33) % 3 == 0,
        "wide": np.arange(2 * 90, dtype=np.int64).reshape(2, 90) * 7 - 3,
        "note": np.array(b"x" * 700, dtype=object),
        "words": np.array([b"a", b"bb", b"", b"dddd"], dtype=object),
        "c64": (np.arange(12) + 1j * np.arange(12)).astype(np.complex64).reshape(3, 4),
        "one": np.float64(2.5),
    }


def sharding_checkpoint():
    variables = {k: trackpoint.Variable(v) for k, v in sharding_values().items()}
    module = trackpoint.AutoTrackable()
    module.inner = variables.pop("cube")
    return trackpoint.Checkpoint(model=module, **variables)


def files_of(directory: Path, stem: str) -> dict:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())
            if p.name.startswith(stem + ".")}


def options(policy):
    return trackpoint.CheckpointOptions(experimental_sharding_callback=policy)


CASES = {
    "max_300": (MaxShardSizePolicy(max_shard_size=300), "write", 9),
    "max_1000": (MaxShardSizePolicy(max_shard_size=1000), "save", 3),
    "max_150": (MaxShardSizePolicy(max_shard_size=150), "write", 17),
    "by_task": (ShardByTaskPolicy(), "write", 1),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_files_are_tensorflows_byte_for_byte(tmp_path, case):
    policy, method, num_shards = CASES[case]
    ckpt = sharding_checkpoint()
    if method == "save":
        path = ckpt.save(tmp_path / "ckpt", options=options(policy))
    else:
        path = ckpt.write(tmp_path / "ckpt", options=options(policy))
    stem = os.path.basename(path)
    ours, theirs = files_of(tmp_path, stem), files_of(SHARDING / case, stem)
    assert sorted(ours) == sorted(theirs)
    assert len([n for n in ours if ".data-" in n]) == num_shards
    for name in theirs:
        assert ours[name] == theirs[name], name
    assert not (tmp_path / f"{stem}_temp").exists()


def test_multishard_fixture_byte_for_byte(tmp_path):
    ckpt = trackpoint.Checkpoint(
        big=trackpoint.Variable(np.arange(64 * 48, dtype=np.float32).reshape(64, 48) * 0.25),
        mid=trackpoint.Variable(np.arange(40 * 10, dtype=np.int32).reshape(40, 10) - 200),
        vec=trackpoint.Variable(np.arange(1500, dtype=np.float64) / 8.0),
        small=trackpoint.Variable(np.array([1.5, -2.5, 3.5], np.float32)),
        names=trackpoint.Variable(np.array([b"alpha", b"", b"gamma"], dtype=object)),
        step=trackpoint.Variable(np.int64(99)),
    )
    ckpt.write(tmp_path / "ckpt", options=options(MaxShardSizePolicy(max_shard_size=4096)))
    ours, theirs = files_of(tmp_path, "ckpt"), files_of(FIXTURES / "multishard", "ckpt")
    assert sorted(ours) == sorted(theirs) and len(theirs) == 8
    for name in theirs:
        assert ours[name] == theirs[name], name


def test_slices_as_tensorflow_cuts_them():
    reader = BundleReader(SHARDING / "max_300" / "ckpt")
    entry = reader.entry("wide/.ATTRIBUTES/VARIABLE_VALUE")
    assert entry.shape == (2, 90) and len(entry.slices) > 1
    cube = reader.entry("model/inner/.ATTRIBUTES/VARIABLE_VALUE")
    assert cube.slices  # 480 bytes split over shards of 300


@pytest.mark.parametrize("case", sorted(CASES))
def test_sharded_checkpoint_restores(tmp_path, case):
    policy, _, _ = CASES[case]
    path = sharding_checkpoint().write(tmp_path / "ckpt", options=options(policy))
    fresh = sharding_checkpoint()
    for v in [fresh.model.inner] + [getattr(fresh, k) for k in sharding_values() if k != "cube"]:
        v.numpy()[...] = np.zeros((), v.numpy().dtype) if v.numpy().dtype != object else b""
    fresh.read(path).assert_consumed()
    for name, want in sharding_values().items():
        got = (fresh.model.inner if name == "cube" else getattr(fresh, name)).numpy()
        if want.dtype == object:
            assert got.tolist() == want.tolist(), name
        else:
            assert got.tobytes() == np.asarray(want).tobytes(), name


def test_no_callback_and_shard_by_task_write_the_same_bytes(tmp_path):
    plain = sharding_checkpoint().write(tmp_path / "a")
    by_task = sharding_checkpoint().write(tmp_path / "b", options=options(ShardByTaskPolicy()))
    assert files_of(tmp_path, "a") == {k.replace("b.", "a.", 1): v
                                       for k, v in files_of(tmp_path, "b").items()}
    assert Path(plain + ".data-00000-of-00001").exists() and by_task


def test_async_save_with_a_policy(tmp_path):
    ckpt = sharding_checkpoint()
    opts = trackpoint.CheckpointOptions(
        enable_async=True, experimental_sharding_callback=MaxShardSizePolicy(max_shard_size=300))
    path = ckpt.write(tmp_path / "ckpt", options=opts)
    ckpt.sync()
    ours, theirs = files_of(tmp_path, "ckpt"), files_of(SHARDING / "max_300", "ckpt")
    assert ours == theirs and path


class OnePerFile(ShardingCallback):
    @property
    def description(self):
        return "one tensor per data file"

    def __call__(self, shardable_tensors):
        self.seen = list(shardable_tensors)
        return [{t.checkpoint_key: {t.slice_spec: t.tensor}} for t in shardable_tensors]


def test_custom_callback_gets_shardable_tensors(tmp_path):
    callback = OnePerFile()
    path = sharding_checkpoint().write(tmp_path / "ckpt", options=options(callback))
    keys = [t.checkpoint_key for t in callback.seen]
    assert keys[-1] == "_CHECKPOINTABLE_OBJECT_GRAPH"
    assert "model/inner/.ATTRIBUTES/VARIABLE_VALUE" in keys
    first = callback.seen[0]
    assert isinstance(first, ShardableTensor) and first.slice_spec == ""
    assert first.shape == first.tensor.shape and first.dtype.name == str(first.tensor.dtype)
    reader = BundleReader(path)
    assert reader.num_shards == len(keys)
    assert sorted({reader.entry(k).shard_id for k in keys}) == list(range(len(keys)))


class Bad(ShardingCallback):
    def __init__(self, change):
        self.change = change

    @property
    def description(self):
        return f"bad: {self.change}"

    def __call__(self, shardable_tensors):
        shard = {t.checkpoint_key: {t.slice_spec: t.tensor} for t in shardable_tensors}
        if self.change == "drop":
            shard.pop(next(iter(shard)))
        elif self.change == "add":
            shard["nope"] = {"": np.zeros(2)}
        elif self.change == "twice":
            return [shard, dict(shard)]
        elif self.change == "reshape":
            shard["c64/.ATTRIBUTES/VARIABLE_VALUE"] = {"": np.zeros((4, 3), np.complex64)}
        elif self.change == "bad slice":
            shard["c64/.ATTRIBUTES/VARIABLE_VALUE"] = {"3 4 0,2:0,4": np.zeros((1, 4))}
        return [shard]


@pytest.mark.parametrize("change, message", [
    ("drop", r"left out \['c64/.ATTRIBUTES/VARIABLE_VALUE'\]"),
    ("add", "returned 'nope', which is not a tensor"),
    ("twice", "twice"),
    ("reshape", r"'c64/.ATTRIBUTES/VARIABLE_VALUE' slice '' of shape \[4, 3\]; expected \[3, 4\]"),
    ("bad slice", r"slice '3 4 0,2:0,4' of shape \[1, 4\]; expected \[2, 4\]"),
])
def test_callback_that_changes_the_tensors_is_refused(tmp_path, change, message):
    with pytest.raises(trackpoint.errors.InvalidArgumentError, match=message):
        sharding_checkpoint().write(tmp_path / "ckpt", options=options(Bad(change)))
    assert not any(p.name.startswith("ckpt.") for p in tmp_path.iterdir())
    assert not (tmp_path / "ckpt_temp").exists()


def test_oversized_scalar_gets_its_own_shard_with_a_warning(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="trackpoint"):
        path = sharding_checkpoint().write(tmp_path / "ckpt",
                                           options=options(MaxShardSizePolicy(150)))
    assert "note/.ATTRIBUTES/VARIABLE_VALUE (700 bytes) cannot be split" in caplog.text
    reader = BundleReader(path)
    note = reader.entry("note/.ATTRIBUTES/VARIABLE_VALUE")
    assert note.shard_id == reader.num_shards - 1  # oversized shards come last


def test_no_slice_fits_raises_instead_of_looping(tmp_path):
    # Every axis of [6, 5, 4] float32 needs more than 64 bytes per cut
    # (TensorFlow 2.21 loops forever on this).
    with pytest.raises(trackpoint.errors.InvalidArgumentError, match="no slice of"):
        sharding_checkpoint().write(tmp_path / "ckpt", options=options(MaxShardSizePolicy(64)))
    assert not (tmp_path / "ckpt_temp").exists()


def test_python_state_is_exported():
    assert PythonState is trackpoint.PythonState


TF_READ = r"""
import json, sys
import tensorflow as tf
r = tf.train.load_checkpoint(sys.argv[1])
keys = sorted(r.get_variable_to_shape_map())
print(json.dumps({k: r.get_tensor(k).tobytes().hex() if hasattr(r.get_tensor(k), "tobytes")
                  else r.get_tensor(k).hex() for k in keys if k != "_CHECKPOINTABLE_OBJECT_GRAPH"}))
"""


@needs_tf
def test_tensorflow_reads_our_sharded_checkpoint(tmp_path):
    # Not one of TF's fixtures: a 2-D string-free set with another limit.
    ckpt = trackpoint.Checkpoint(
        a=trackpoint.Variable(np.arange(300, dtype=np.float32).reshape(15, 20)),
        b=trackpoint.Variable(np.arange(77, dtype=np.int16)))
    path = ckpt.write(tmp_path / "ckpt", options=options(MaxShardSizePolicy(200)))
    script = tmp_path / "read.py"
    script.write_text(TF_READ)
    done = subprocess.run([TF_PYTHON, str(script), path], capture_output=True, text=True,
                          timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got == {"a/.ATTRIBUTES/VARIABLE_VALUE": ckpt.a.numpy().tobytes().hex(),
                   "b/.ATTRIBUTES/VARIABLE_VALUE": ckpt.b.numpy().tobytes().hex()}


TF_WRITE = r"""
import json, sys
import numpy as np
import tensorflow as tf
spec = json.load(open(sys.argv[2]))
def value(dtype, shape, i):
    n = int(np.prod(shape))
    return (np.arange(n) * (i + 3) % 251 - 100).astype(dtype).reshape(shape)
ckpt = tf.train.Checkpoint(**{name: tf.Variable(value(d, s, i))
                              for i, (name, d, s) in enumerate(spec["tensors"])})
policy = tf.train.experimental.MaxShardSizePolicy(max_shard_size=spec["limit"])
ckpt.write(sys.argv[1], options=tf.train.CheckpointOptions(experimental_sharding_callback=policy))
"""

LIVE_TENSORS = [["a4", "float32", [3, 4, 5, 6]], ["b", "int8", [97]], ["c", "float64", [13, 7]],
                ["d", "int32", []], ["e", "uint16", [9, 1, 31]], ["f", "float32", [1, 200]]]


@needs_tf
@pytest.mark.parametrize("limit", [240, 256, 300, 999, 1 << 20])  # 240: a4's smallest cut
def test_same_files_as_tensorflow_live(tmp_path, limit):
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(json.dumps({"tensors": LIVE_TENSORS, "limit": limit}))
    (tmp_path / "tf").mkdir()
    script = tmp_path / "write.py"
    script.write_text(TF_WRITE)
    done = subprocess.run([TF_PYTHON, str(script), str(tmp_path / "tf" / "ckpt"), str(spec_file)],
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]

    def value(dtype, shape, i):
        n = int(np.prod(shape))
        return (np.arange(n) * (i + 3) % 251 - 100).astype(dtype).reshape(shape)

    ckpt = trackpoint.Checkpoint(**{name: trackpoint.Variable(value(d, s, i))
                                    for i, (name, d, s) in enumerate(LIVE_TENSORS)})
    (tmp_path / "ours").mkdir()
    ckpt.write(tmp_path / "ours" / "ckpt", options=options(MaxShardSizePolicy(limit)))
    ours, theirs = files_of(tmp_path / "ours", "ckpt"), files_of(tmp_path / "tf", "ckpt")
    assert sorted(ours) == sorted(theirs)
    for name in theirs:
        assert ours[name] == theirs[name], name


def test_checkpoint_manager_saves_with_the_policy(tmp_path):
    manager = trackpoint.CheckpointManager(sharding_checkpoint(), tmp_path, max_to_keep=2)
    path = manager.save(options=options(MaxShardSizePolicy(max_shard_size=1000)))
    assert os.path.basename(path) == "ckpt-1"
    assert files_of(tmp_path, "ckpt-1") == files_of(SHARDING / "max_1000", "ckpt-1")
    assert trackpoint.latest_checkpoint(tmp_path) == path
