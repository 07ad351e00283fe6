"""CheckpointManager: parity with TensorFlow's manager (replaying recorded
observations), crash safety under SIGKILL, and the extras (best N, every Nth)."""

import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest

import trackpoint
from trackpoint import _core_testing, state_file
from trackpoint import manager as manager_module
from trackpoint.errors import ResourceExhaustedError

from conftest import FIXTURES

SCENARIOS = json.loads((FIXTURES / "manager_parity" / "scenarios.json").read_text())["scenarios"]


def _new_checkpoint():
    return trackpoint.Checkpoint(v=trackpoint.Variable(0.0),
                                 step=trackpoint.Variable(0, dtype="int64"))


def _base(path):
    return None if path is None else os.path.basename(path)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_same_behaviour_as_tensorflows_manager(tmp_path, monkeypatch, name):
    clock = [0.0]
    monkeypatch.setattr(manager_module, "_now", lambda: clock[0])
    checkpoints, managers = {}, []
    init_calls = []
    for i, step in enumerate(SCENARIOS[name]["steps"]):
        where = f"{name} step {i} ({step['op']})"
        clock[0] = step["time"]
        ckpt = checkpoints.setdefault(step["checkpoint"], _new_checkpoint())
        for var, value in step["before"].items():
            getattr(ckpt, var).assign(value)
        init_before = len(init_calls)
        if step["op"] == "new_manager":
            kwargs = dict(step["kwargs"])
            if kwargs.pop("step_counter", None):
                kwargs["step_counter"] = ckpt.step
            if kwargs.pop("init_fn", None):
                kwargs["init_fn"] = lambda: init_calls.append(1)
            managers.append(trackpoint.CheckpointManager(ckpt, tmp_path, **kwargs))
            result = None
        elif step["op"] == "save":
            result = managers[step["manager"]].save(**step["kwargs"])
        elif step["op"] == "restore_or_initialize":
            result = managers[step["manager"]].restore_or_initialize()
        elif step["op"] == "checkpoint_save":
            result = ckpt.save(tmp_path / step["kwargs"]["prefix"])
        else:
            raise AssertionError(f"unknown op {step['op']}")
        assert _base(result) == step["return"], where
        if "init_fn_called" in step and step["op"] == "restore_or_initialize":
            assert (len(init_calls) > init_before) == step["init_fn_called"], where
        if "restored" in step:
            restored = step["restored"]
            assert float(ckpt.v) == restored["v"], where
            assert int(ckpt.step) == restored["step"], where
        counter = ckpt._children().get("save_counter")
        assert (None if counter is None else int(counter)) == step["save_counter"], where
        assert sorted(os.listdir(tmp_path)) == step["files"], where
        if step["manager"] is not None and step["checkpoints"] is not None:
            m = managers[step["manager"]]
            assert [_base(p) for p in m.checkpoints] == step["checkpoints"], where
            assert _base(m.latest_checkpoint) == step["latest_checkpoint"], where
        state = tmp_path / "checkpoint"
        assert (state.read_text() if state.exists() else None) == step["state_exact"], where


def test_state_file_written_by_the_manager_is_relative_and_tensorflow_shaped(tmp_path):
    ckpt = _new_checkpoint()
    m = trackpoint.CheckpointManager(ckpt, tmp_path, max_to_keep=2)
    for _ in range(3):
        m.save()
    state = trackpoint.get_checkpoint_state(tmp_path)
    assert state.all_model_checkpoint_paths == [str(tmp_path / "ckpt-2"), str(tmp_path / "ckpt-3")]
    text = (tmp_path / "checkpoint").read_text()
    assert str(tmp_path) not in text and 'model_checkpoint_path: "ckpt-3"' in text


def test_deletes_only_inside_its_directory(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    trackpoint.Checkpoint(v=trackpoint.Variable(1.0)).write(outside / "ckpt-1")
    run = tmp_path / "run"
    run.mkdir()
    trackpoint.update_checkpoint_state(
        run, str(outside / "ckpt-1"), [str(outside / "ckpt-1")],
        all_model_checkpoint_timestamps=[time.time()], last_preserved_timestamp=1.0,
        save_relative_paths=False)
    m = trackpoint.CheckpointManager(_new_checkpoint(), run, max_to_keep=1)
    assert m.checkpoints == [str(outside / "ckpt-1")]
    m.save()
    assert (outside / "ckpt-1.index").exists()  # never deleted: not inside `run`
    assert m.checkpoints == [str(run / "ckpt-1")]


def test_keep_best_by_metric_and_every_nth(tmp_path):
    ckpt = _new_checkpoint()
    m = trackpoint.CheckpointManager(ckpt, tmp_path, max_to_keep=2, best_fn=lambda x: x["acc"],
                                     keep_best=1, keep_every_n_steps=4)
    accs = [0.5, 0.9, 0.3, 0.4, 0.6, 0.2, 0.1]
    for acc in accs:
        m.save(metrics={"acc": acc})
    names = [_base(p) for p in m.checkpoints]
    # best (ckpt-2), every 4th (ckpt-4), and the two most recent.
    assert names == ["ckpt-2", "ckpt-4", "ckpt-6", "ckpt-7"]
    assert _base(m.best_checkpoint()) == "ckpt-2"
    assert sorted(p.name for p in tmp_path.glob("*.index")) == [f"{n}.index" for n in names]
    assert json.loads((tmp_path / "ckpt-2.metrics.json").read_text()) == {"acc": 0.9}
    # A new manager recovers the metrics and keeps protecting the best.
    m2 = trackpoint.CheckpointManager(ckpt, tmp_path, max_to_keep=2, best_fn=lambda x: x["acc"],
                                      keep_best=1)
    assert _base(m2.best_checkpoint()) == "ckpt-2"
    m2.save(metrics={"acc": 0.0})
    assert "ckpt-2" in [_base(p) for p in m2.checkpoints]


def test_bad_arguments():
    ckpt = _new_checkpoint()
    with pytest.raises(ValueError):
        trackpoint.CheckpointManager(ckpt, "/tmp/x", max_to_keep=0)
    with pytest.raises(ValueError, match="step_counter"):
        trackpoint.CheckpointManager(ckpt, "/tmp/x", max_to_keep=1, checkpoint_interval=3)
    with pytest.raises(ValueError):
        trackpoint.CheckpointManager(ckpt, "/tmp/x", max_to_keep=1, keep_best=2)


def test_new_manager_removes_leftovers_of_an_interrupted_save(tmp_path):
    ckpt = _new_checkpoint()
    m = trackpoint.CheckpointManager(ckpt, tmp_path, max_to_keep=3)
    m.save()
    leftovers = ["ckpt-2.data-00000-of-00001.tempstate123", "ckpt-2.index.tempstate9",
                 "ckpt-3.data-00000-of-00001", "checkpoint.tmp" + "ab" * 16]
    for name in leftovers:
        (tmp_path / name).write_bytes(b"partial")
    (tmp_path / "notes.txt").write_text("mine")
    trackpoint.CheckpointManager(ckpt, tmp_path, max_to_keep=3)
    assert sorted(os.listdir(tmp_path)) == [
        "checkpoint", "ckpt-1.data-00000-of-00001", "ckpt-1.index", "notes.txt"]


def _saved_counter(prefix):
    return int(trackpoint.load_variable(prefix, "save_counter/.ATTRIBUTES/VARIABLE_VALUE"))


@pytest.mark.parametrize("failing", ["bundle", "state file"])
def test_a_failed_save_takes_no_number(tmp_path, monkeypatch, failing):
    # TensorFlow numbers checkpoints 1, 2, 3, ...: a save that fails (a full
    # disk under the bundle or under the state file) gives its number back.
    ckpt = _new_checkpoint()
    m = trackpoint.CheckpointManager(ckpt, tmp_path, max_to_keep=3)
    first = m.save()
    state = (tmp_path / "checkpoint").read_bytes()

    def full_disk(*args, **kwargs):
        raise ResourceExhaustedError("No space left on device")

    if failing == "bundle":
        _core_testing.set_io_fault("enospc", 0)
    else:
        monkeypatch.setattr(state_file.os, "replace", full_disk)
    try:
        with pytest.raises(ResourceExhaustedError):
            m.save()
    finally:
        _core_testing.set_io_fault("none", 0)
        monkeypatch.undo()
    assert int(ckpt.save_counter) == 1
    assert (tmp_path / "checkpoint").read_bytes() == state
    assert m.checkpoints == [first]

    second = m.save()
    assert _base(second) == "ckpt-2"
    assert int(ckpt.save_counter) == 2
    assert _saved_counter(second) == 2
    assert m.checkpoints == [first, second]
    assert trackpoint.latest_checkpoint(tmp_path) == second
    assert sorted(os.listdir(tmp_path)) == [
        "checkpoint", "ckpt-1.data-00000-of-00001", "ckpt-1.index",
        "ckpt-2.data-00000-of-00001", "ckpt-2.index"]


def test_a_failed_save_does_not_push_the_interval_back(tmp_path):
    # With checkpoint_interval, a save that fails leaves the last saved step
    # alone: the same step may be saved again at once.
    ckpt = _new_checkpoint()
    m = trackpoint.CheckpointManager(ckpt, tmp_path, max_to_keep=3, step_counter=ckpt.step,
                                     checkpoint_interval=10)
    assert _base(m.save()) == "ckpt-1"
    ckpt.step.assign(10)
    _core_testing.set_io_fault("enospc", 0)
    try:
        with pytest.raises(ResourceExhaustedError):
            m.save()
    finally:
        _core_testing.set_io_fault("none", 0)
    assert _base(m.save()) == "ckpt-2"  # step 10, not skipped until step 20
    ckpt.step.assign(15)
    assert m.save() is None


def test_a_failed_checkpoint_save_takes_no_number(tmp_path):
    ckpt = _new_checkpoint()
    ckpt.save(tmp_path / "ckpt")
    _core_testing.set_io_fault("enospc", 0)
    try:
        with pytest.raises(ResourceExhaustedError):
            ckpt.save(tmp_path / "ckpt")
    finally:
        _core_testing.set_io_fault("none", 0)
    assert int(ckpt.save_counter) == 1
    assert trackpoint.latest_checkpoint(tmp_path) == str(tmp_path / "ckpt-1")
    assert ckpt.save(tmp_path / "ckpt") == str(tmp_path / "ckpt-2")
    assert _saved_counter(tmp_path / "ckpt-2") == 2


# ---- SIGKILL at random moments ------------------------------------------------------------

CHILD = r"""
import sys
import numpy as np
import trackpoint

directory = sys.argv[1]
model = trackpoint.AutoTrackable()
model.tensors = [trackpoint.Variable(np.zeros(n, np.float32)) for n in (1 << 18, 1 << 15, 7)]
model.label = trackpoint.Variable("")
ckpt = trackpoint.Checkpoint(model=model)
manager = trackpoint.CheckpointManager(ckpt, directory, max_to_keep=3)
manager.restore_or_initialize()
print("ready", flush=True)
while True:
    k = int(ckpt.save_counter) + 1
    for t in model.tensors:
        t.assign(np.full(t.shape, k, np.float32))
    model.label.assign(f"save {k}")
    manager.save()
    print(k, flush=True)
"""


def _check_complete(prefix):
    """Every tensor reads (CRC verified) and all belong to one save; returns its number."""
    reader = trackpoint.load_checkpoint(prefix)
    k = int(reader.get_tensor("save_counter/.ATTRIBUTES/VARIABLE_VALUE"))
    assert prefix.endswith(f"-{k}")
    for i in range(3):
        values = reader.get_tensor(f"model/tensors/{i}/.ATTRIBUTES/VARIABLE_VALUE")
        assert (values == k).all(), (prefix, i)
    assert reader.get_tensor("model/label/.ATTRIBUTES/VARIABLE_VALUE") == f"save {k}".encode()
    return k


def test_sigkill_at_random_moments_never_leaves_a_broken_latest(tmp_path):
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    directory = tmp_path / "run"
    rng = random.Random(1234)
    last_k = 0
    kills = 0
    for _ in range(30):
        child = subprocess.Popen([sys.executable, str(script), str(directory)],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # Kill at a random moment of the save loop, however slow the start.
        ready = child.stdout.readline()
        assert ready == "ready\n", child.stderr.read()
        time.sleep(rng.uniform(0.0, 0.4))
        child.send_signal(signal.SIGKILL)
        child.wait()
        kills += 1
        latest = trackpoint.latest_checkpoint(directory)
        if latest is None:
            assert last_k == 0
            continue
        k = _check_complete(latest)
        assert k >= last_k
        last_k = k
        # Every checkpoint a reader can find is complete.
        for index in directory.glob("*.index"):
            _check_complete(str(index)[: -len(".index")])
    assert last_k > 5, "the child never got far enough to test anything"
    trackpoint.CheckpointManager(trackpoint.Checkpoint(), directory, max_to_keep=3)
    assert not [n for n in os.listdir(directory) if "tempstate" in n or ".tmp" in n]
