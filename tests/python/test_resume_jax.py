"""A JAX + optax training run (examples/resume_jax.py: an MLP, adam, typed
PRNG keys for the data and the dropout noise) killed with SIGKILL at random
points and resumed with CheckpointManager.restore_or_initialize(): its losses
and final state equal those of a run never interrupted, bit for bit.

The runs share a JAX compilation cache in tmp_path only to spend less time
compiling; every run executes the same compiled code either way.
"""

import os
import pathlib
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import trackpoint

pytest.importorskip("jax")
pytest.importorskip("optax")

EXAMPLE = pathlib.Path(__file__).resolve().parents[2] / "examples" / "resume_jax.py"
STEPS = 40
NOT_STATE = {"_CHECKPOINTABLE_OBJECT_GRAPH", "save_counter/.ATTRIBUTES/VARIABLE_VALUE"}


def environment(cache):
    package_root = str(pathlib.Path(trackpoint.__file__).resolve().parents[1])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([package_root, env.get("PYTHONPATH", "")])
    env["JAX_PLATFORMS"] = "cpu"
    env["JAX_COMPILATION_CACHE_DIR"] = str(cache)
    env["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
    env["JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"] = "0"
    return env


def command(directory, steps=STEPS):
    return [sys.executable, str(EXAMPLE), "--dir", str(directory), "--steps", str(steps)]


def losses(log: pathlib.Path) -> list:
    """(step, loss hex) of every complete loss line (a killed run may leave half a line)."""
    text = log.read_text()
    lines = text.split("\n")[:-1]  # the last piece has no newline yet
    return [tuple(line.split()) for line in lines if line and not line.startswith("#")]


def run(directory, log, env, steps=STEPS) -> None:
    with open(log, "w") as out:
        done = subprocess.run(
            command(directory, steps),
            stdout=out,
            stderr=subprocess.PIPE,
            env=env,
            timeout=600,
            check=False,
        )
    assert done.returncode == 0, done.stderr.decode()[-3000:]


def run_and_kill(directory, log, env, new_lines: int, delay: float) -> None:
    """Starts a run and SIGKILLs it once it has logged new_lines losses, delay seconds later."""
    with open(log, "w") as out:
        proc = subprocess.Popen(command(directory), stdout=out, stderr=subprocess.DEVNULL, env=env)
    try:
        while proc.poll() is None and len(losses(log)) < new_lines:
            time.sleep(0.001)
        time.sleep(delay)
        proc.kill()
    finally:
        proc.wait(timeout=600)
    assert proc.returncode == -signal.SIGKILL, f"the run ended ({proc.returncode}) before the kill"


def final_state(directory) -> dict:
    reader = trackpoint.load_checkpoint(str(pathlib.Path(directory) / f"ckpt-{STEPS}"))
    names = sorted(set(reader.get_variable_to_shape_map()) - NOT_STATE)  # how many saves varies
    return {name: np.asarray(reader.get_tensor(name)) for name in names}


def assert_same_state(a: dict, b: dict) -> None:
    assert sorted(a) == sorted(b)
    for name, value in a.items():
        assert value.dtype == b[name].dtype, name
        assert value.shape == b[name].shape, name
        assert value.tobytes() == b[name].tobytes(), name


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted run: {step: loss hex}, its final checkpoint's tensors, the environment."""
    root = tmp_path_factory.mktemp("reference")
    env = environment(root / "jax-cache")
    run(root / "run", root / "log", env)
    steps = dict(losses(root / "log"))
    assert sorted(int(s) for s in steps) == list(range(1, STEPS + 1))
    return steps, final_state(root / "run"), env


def test_killed_and_resumed_run_equals_an_uninterrupted_one(reference, tmp_path):
    expected, expected_state, env = reference
    chooser = random.Random(13)
    seen = set()
    logs = [tmp_path / f"log-{i}" for i in range(4)]
    for log in logs[:3]:
        run_and_kill(tmp_path / "run", log, env, chooser.randint(1, 8), chooser.uniform(0, 0.01))
    run(tmp_path / "run", logs[3], env)

    for log in logs:
        for step, loss in losses(log):
            assert loss == expected[step], f"step {step} in {log.name}"
            seen.add(int(step))
    assert sorted(seen) == list(range(1, STEPS + 1))
    assert "# resumed from" in logs[3].read_text()
    assert_same_state(final_state(tmp_path / "run"), expected_state)
    # The final state includes the typed keys: their data and their implementation.
    assert expected_state["rng/data/.ATTRIBUTES/PRNG_IMPL"].item() == b"threefry2x32"
    assert expected_state["rng/data/.ATTRIBUTES/VARIABLE_VALUE"].dtype == np.uint32
    assert "opt_state/0/mu/hidden/w/.ATTRIBUTES/VARIABLE_VALUE" in expected_state


def test_example_continues_a_finished_run(reference, tmp_path):
    """The README usage: run to step 20, then ask for 40; it continues at step 21."""
    expected, expected_state, env = reference
    run(tmp_path / "run", tmp_path / "first", env, steps=20)
    run(tmp_path / "run", tmp_path / "second", env)
    first, second = losses(tmp_path / "first"), losses(tmp_path / "second")
    assert [int(s) for s, _ in first] == list(range(1, 21))
    assert [int(s) for s, _ in second] == list(range(21, STEPS + 1))
    assert dict(first + second) == expected
    assert "at step 20" in (tmp_path / "second").read_text()
    assert_same_state(final_state(tmp_path / "run"), expected_state)
