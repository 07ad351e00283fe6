"""A PyTorch training run (examples/resume_torch.py: a transformer, AdamW, a
warmup + cosine LambdaLR, a GradScaler, dropout, a data torch.Generator,
numpy and Python randomness, an epoch counter in a dict) SIGKILLed at random
points several times and resumed with CheckpointManager.restore_or_initialize()
gives the losses and final parameters of a run never interrupted, bit for bit."""

import os
import pathlib
import random
import re
import signal
import subprocess
import sys
import time

import pytest

pytest.importorskip("torch")

EXAMPLE = pathlib.Path(__file__).resolve().parents[2] / "examples" / "resume_torch.py"
STEPS, EVERY, KILLS = 36, 3, 3
LINE = re.compile(r"^(\d+) (-?0x[0-9a-f.]+p[+-]\d+)$")


def start(run_dir):
    return subprocess.Popen(
        [sys.executable, str(EXAMPLE), str(run_dir), "--steps", str(STEPS), "--every", str(EVERY)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def logged(run_dir) -> list:
    """(step, loss hex) of every line of the run's losses.txt."""
    path = run_dir / "losses.txt"
    if not path.exists():
        return []
    lines = path.read_text().splitlines()
    out = []
    for line in lines:
        match = LINE.match(line)
        assert match, f"malformed loss line {line!r}"
        out.append((int(match[1]), match[2]))
    return out


def kill_after(proc, run_dir, lines: int, delay: float) -> bool:
    """SIGKILLs proc once losses.txt has ``lines`` lines (plus delay seconds,
    which may land inside a save). False when proc ended first."""
    while len(logged(run_dir)) < lines:
        if proc.poll() is not None:
            return False
        time.sleep(0.002)
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    return proc.returncode == -signal.SIGKILL


def test_killed_and_resumed_run_equals_uninterrupted_run(tmp_path):
    seed = int(os.environ.get("TRACKPOINT_RESUME_SEED", random.randrange(2**32)))
    rng = random.Random(seed)
    reference_dir, resumed_dir = tmp_path / "reference", tmp_path / "resumed"
    reference = start(reference_dir)  # runs alongside the interrupted ones

    kills = 0
    for _ in range(KILLS):
        done = len(logged(resumed_dir))
        # A point a few steps into what this run will do (it first repeats
        # the steps since its checkpoint).
        target = done + rng.randrange(1, 8)
        if kill_after(start(resumed_dir), resumed_dir, target, rng.uniform(0, 0.02)):
            kills += 1
    final = start(resumed_dir)
    _, err = final.communicate()
    assert final.returncode == 0, err
    _, err = reference.communicate()
    assert reference.returncode == 0, err

    expected = dict(logged(reference_dir))
    assert sorted(expected) == list(range(1, STEPS + 1))
    got = logged(resumed_dir)
    assert kills >= KILLS - 1, f"seed {seed}: only {kills} runs were killed while training"
    assert len(got) > STEPS  # steps after a checkpoint were run again after each kill
    assert {step for step, _ in got} == set(expected)
    for step, loss in got:  # every attempt at every step, repeats included
        assert loss == expected[step], f"seed {seed}: step {step} diverged"
    assert (resumed_dir / "final.txt").read_bytes() == (reference_dir / "final.txt").read_bytes()
