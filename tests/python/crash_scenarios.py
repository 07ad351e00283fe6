"""Scenarios of the crash explorer (crashsim.py) and the syscall fault tests,
and the script their subprocesses run: ``setup`` writes the checkpoints a
save starts from, ``save`` the save to record (``rank``: one process of a
multi-process one), ``faultsave`` a save under strace fault injection, and
``check`` checks rebuilt directories in a fresh process.

    crash_scenarios.py setup|save|faultsave SCENARIO WORLD
    crash_scenarios.py check SPEC.json
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import subprocess
import sys

STRACE = "/usr/bin/strace"
MARKER = "/nonexistent-trackpoint-crashsim-marker-"

# ---- scenarios --------------------------------------------------------------------------
# Each: how the directory looks before (setup), what the recorded process does (save),
# which checkpoint is the old and which the new one, and the value each holds.

BIG = 1 << 14  # float32 elements of the big tensor (64 KiB)
PIECES = 2 << 20  # 8 MiB: written in 2 MiB pieces by several threads with pwrite


@dataclasses.dataclass
class Scenario:
    name: str
    kind: str = "manager"  # or "write": Checkpoint.write to a fixed prefix
    run_dir: str = "run"  # the checkpoint directory, relative to the world
    old: str | None = "ckpt-2"  # basename of the previous latest checkpoint
    new: str = "ckpt-3"
    values: dict = dataclasses.field(
        default_factory=lambda: {"ckpt-1": 1, "ckpt-2": 2, "ckpt-3": 3}
    )
    big: int = BIG
    manager_kwargs: dict = dataclasses.field(default_factory=lambda: {"max_to_keep": 2})
    async_save: bool = False
    metrics: dict = dataclasses.field(default_factory=dict)  # basename -> metrics dict
    best: str | None = None  # best_checkpoint() a new manager must report
    ranks: int = 1  # > 1: that many processes save together (torch.distributed, gloo)


SCENARIOS = {
    s.name: s
    for s in [
        Scenario("manager_deletes"),
        Scenario("async_save", async_save=True),
        Scenario(
            "best_fn",
            manager_kwargs={"max_to_keep": 1, "keep_best": 1},
            metrics={"ckpt-1": {"acc": 0.9}, "ckpt-2": {"acc": 0.5}, "ckpt-3": {"acc": 0.7}},
            best="ckpt-1",
        ),
        Scenario("tensor_in_pieces", big=PIECES),
        Scenario("first_save_new_dir", run_dir="new/run", old=None, new="ckpt-1"),
        Scenario("write_over_prefix", kind="write", old="p", new="p", values={"p@old": 1, "p": 2}),
        Scenario(
            "write_new_dir",
            kind="write",
            run_dir="new/run",
            old=None,
            new="p",
            values={"p": 2},
        ),
        Scenario("multi_process_merge", ranks=2),
        Scenario(
            "merge_over_prefix",
            kind="write",
            old="p",
            new="p",
            values={"p@old": 1, "p": 2},
            ranks=2,
        ),
    ]
}


def _model(big):
    import numpy as np

    import trackpoint

    model = trackpoint.AutoTrackable()
    model.big = trackpoint.Variable(np.zeros(big, np.float32))
    model.small = trackpoint.Variable(np.zeros(3, np.int64))
    model.label = trackpoint.Variable("")
    return model


def _fill(model, k, big):
    import numpy as np

    model.big.assign(np.arange(big, dtype=np.float32) + k)
    model.small.assign(np.full(3, k, np.int64))
    model.label.assign(f"save {k}")


def _holds(model, k, big) -> str | None:
    """None when the model holds save k's values, else what differs."""
    import numpy as np

    if not np.array_equal(np.asarray(model.big), np.arange(big, dtype=np.float32) + k):
        return f"big is not save {k}'s"
    if not (np.asarray(model.small) == k).all():
        return f"small is {np.asarray(model.small)}, not save {k}'s"
    if model.label.numpy() != f"save {k}".encode():
        return f"label is {model.label.numpy()!r}, not save {k}'s"
    return None


def _manager(s: Scenario, ckpt, directory):
    import trackpoint

    kwargs = dict(s.manager_kwargs)
    if "keep_best" in kwargs:
        kwargs["best_fn"] = lambda m: m["acc"]
    return trackpoint.CheckpointManager(ckpt, directory, **kwargs)


def _mark(name: str) -> None:
    """A call the trace shows (truncate of a path that does not exist, a call
    nothing else makes) at this point of the script."""
    try:
        os.truncate(MARKER + name, 0)
    except FileNotFoundError:
        pass


def run_setup(s: Scenario, world: str) -> None:
    # The previous checkpoints of a multi-process scenario are written by one
    # process: what matters is what the save over them does.
    import trackpoint

    run = os.path.join(world, s.run_dir)
    model = _model(s.big)
    ckpt = trackpoint.Checkpoint(model=model)
    if s.kind == "write" and s.old is not None:
        _fill(model, s.values["p@old"], s.big)
        ckpt.write(os.path.join(run, "p"))
        return
    if s.old is None:
        os.makedirs(os.path.dirname(run) or world, exist_ok=True)
        return
    with _manager(s, ckpt, run) as manager:
        for n in range(1, int(s.old.split("-")[1]) + 1):
            _fill(model, n, s.big)
            manager.save(metrics=s.metrics.get(f"ckpt-{n}"))


def run_save(s: Scenario, world: str) -> None:
    if s.ranks > 1:
        return _run_ranks(s, world)
    import trackpoint

    run = os.path.join(world, s.run_dir)
    model = _model(s.big)
    ckpt = trackpoint.Checkpoint(model=model)
    if s.kind == "write":
        _fill(model, s.values[s.new], s.big)
        _mark("start")
        ckpt.write(os.path.join(run, s.new))
        _mark("returned")
        return
    manager = _manager(s, ckpt, run)
    manager.restore_or_initialize()
    _fill(model, s.values[s.new], s.big)
    options = trackpoint.CheckpointOptions(enable_async=True) if s.async_save else None
    _mark("start")
    path = manager.save(options=options, metrics=s.metrics.get(s.new))
    if s.async_save:
        manager.sync()
    _mark("returned")
    assert os.path.basename(path) == s.new, path
    manager.close()


def _run_ranks(s: Scenario, world: str) -> None:
    """Runs s.ranks processes that save together; each a child of this one."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                os.path.abspath(__file__),
                "rank",
                s.name,
                world,
                str(rank),
                str(port),
            ],
            env=script_env(),
        )
        for rank in range(s.ranks)
    ]
    codes = [p.wait(timeout=300) for p in procs]
    if any(codes):
        raise SystemExit(f"the ranks of {s.name} exited with {codes}")


def run_rank(s: Scenario, world: str, rank: int, port: int) -> None:
    """One process of a multi-process save: its half of the big tensor (a
    ShardedTensor), the small ones replicated; rank 0 merges and records."""
    import datetime

    import numpy as np
    import torch.distributed as dist

    import trackpoint
    from trackpoint.distributed import ShardedTensor, TorchCoordinator, even_split

    dist.init_process_group(
        "gloo",
        init_method=f"tcp://127.0.0.1:{port}",
        rank=rank,
        world_size=s.ranks,
        timeout=datetime.timedelta(seconds=60),
    )
    coordinator = TorchCoordinator(timeout=60)
    options = trackpoint.CheckpointOptions(experimental_coordinator=coordinator)
    offsets, shape = even_split((s.big,), rank, s.ranks)
    local = np.zeros(shape, np.float32)
    model = trackpoint.AutoTrackable()
    model.big = ShardedTensor(local, (s.big,), offsets, name="big")
    model.small = trackpoint.Variable(np.zeros(3, np.int64))
    model.label = trackpoint.Variable("")
    ckpt = trackpoint.Checkpoint(model=model)
    run = os.path.join(world, s.run_dir)
    manager = _manager(s, ckpt, run) if s.kind == "manager" else None

    def fill(k):
        local[...] = (np.arange(s.big, dtype=np.float32) + k)[offsets[0] : offsets[0] + shape[0]]
        model.small.assign(np.full(3, k, np.int64))
        model.label.assign(f"save {k}")

    fill(s.values[s.new])
    if rank == 0:
        _mark("start")
    coordinator.all_gather(None)  # nobody writes before rank 0 marked the start
    if manager is None:
        ckpt.write(os.path.join(run, s.new), options=options)
    else:
        path = manager.save(checkpoint_number=s.values[s.new], options=options)
        assert os.path.basename(path) == s.new, path
        manager.close()
    if rank == 0:
        _mark("returned")
    dist.destroy_process_group()


# ---- running the script -------------------------------------------------------------------


def strace_usable() -> str | None:
    """None when strace can trace a child here, else why not."""
    if not os.path.exists(STRACE):
        return f"{STRACE} is not installed"
    r = subprocess.run(
        [STRACE, "-f", "-qq", "-o", os.devnull, "true"], capture_output=True, text=True, check=False
    )
    if r.returncode != 0:
        return f"strace cannot trace here (ptrace not permitted?): {r.stderr.strip()[:200]}"
    return None


def script_env() -> dict:
    env = dict(os.environ)
    here = os.path.dirname(os.path.abspath(__file__))
    import trackpoint

    package_root = os.path.dirname(os.path.dirname(os.path.abspath(trackpoint.__file__)))
    env["PYTHONPATH"] = os.pathsep.join([package_root, here, env.get("PYTHONPATH", "")])
    env["PYTHONHASHSEED"] = "0"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def run_script(*args, strace_args=None, cwd=None) -> subprocess.CompletedProcess:
    cmd = [sys.executable, os.path.abspath(__file__), *args]
    if strace_args is not None:
        cmd = [STRACE, *strace_args, *cmd]
    return subprocess.run(
        cmd, capture_output=True, text=True, env=script_env(), cwd=cwd, timeout=300, check=False
    )


# ---- checking (in a fresh process) --------------------------------------------------------


def _temp_names(directory: str) -> list:
    temp = re.compile(r".*(\.tempstate\d+|\.tmp[0-9a-f]{32})$")
    try:
        return [n for n in os.listdir(directory) if temp.fullmatch(n)]
    except FileNotFoundError:
        return []


def check_manager_state(s: Scenario, world: str, after: bool) -> tuple:
    """(outcome, problem or None) for one rebuilt directory."""
    import trackpoint

    run = os.path.join(world, s.run_dir)
    latest = trackpoint.latest_checkpoint(run) if os.path.isdir(run) else None
    name = os.path.basename(latest) if latest else None
    allowed = {s.new} if after else {s.old, s.new}
    if name not in allowed:
        return "bad", (
            f"latest checkpoint is {name}, expected one of "
            f"{sorted(map(str, allowed))} (directory: {_listing(run)})"
        )
    model = _model(s.big)
    ckpt = trackpoint.Checkpoint(model=model)
    manager = _manager(s, ckpt, run)
    got = manager.restore_or_initialize()
    if (os.path.basename(got) if got else None) != name:
        return "bad", f"a new manager restored {got}, latest_checkpoint says {latest}"
    if name is not None:
        fresh = _model(s.big)
        trackpoint.Checkpoint(model=fresh).restore(latest).assert_consumed()
        for m in (model, fresh):
            why = _holds(m, s.values[name], s.big)
            if why:
                return "bad", f"{name} restored but {why}"
        if s.best and manager.best_checkpoint() != os.path.join(run, s.best):
            return "bad", f"best_checkpoint() is {manager.best_checkpoint()}, not {s.best}"
    _fill(model, 9, s.big)
    path = manager.save()
    manager.close()
    if trackpoint.latest_checkpoint(run) != path:
        return "bad", f"after a new save, latest is {trackpoint.latest_checkpoint(run)}"
    fresh = _model(s.big)
    trackpoint.Checkpoint(model=fresh).restore(path).assert_consumed()
    why = _holds(fresh, 9, s.big)
    if why:
        return "bad", f"the recovering save {path}: {why}"
    _LEAKS.extend(_unlisted(run))
    return ("new" if name == s.new else "old"), None


_LEAKS: list = []  # files of the state checked last that no manager will ever delete


def _unlisted(run: str) -> list:
    """Files of checkpoints that the state file does not list, once a new manager
    saved: nothing will ever delete them."""
    import trackpoint

    listed = {
        os.path.basename(p) for p in trackpoint.get_checkpoint_state(run).all_model_checkpoint_paths
    }
    out = []
    for name in sorted(os.listdir(run)):
        m = re.fullmatch(r"(ckpt-\d+)(\..*)", name)
        if m and m.group(1) not in listed:
            out.append(name)
    return out


def check_write_state(s: Scenario, world: str, after: bool) -> tuple:
    """A Checkpoint.write over prefix p: p holds the old or the new values, or (the
    window the format cannot close) no index, which `trackpoint verify` names."""
    import trackpoint

    prefix = os.path.join(world, s.run_dir, s.new)
    outcome = None
    if os.path.exists(prefix + ".index"):
        fresh = _model(s.big)
        trackpoint.Checkpoint(model=fresh).read(prefix).assert_consumed()
        if _holds(fresh, s.values["p"], s.big) is None:
            outcome = "new"
        elif not after and _holds(fresh, s.values["p@old"], s.big) is None:
            outcome = "old"
        else:
            return "bad", f"{prefix} reads, but holds neither save's values"
    elif after:
        return "bad", f"no {prefix}.index after write() returned"
    elif s.old is None:
        outcome = "old"  # nothing was there before, nothing is
    else:
        report = _verify(prefix)
        if "interrupted overwrite" not in report:
            return "bad", f"no index, and `trackpoint verify` does not say why: {report!r}"
        outcome = "window"
    model = _model(s.big)
    _fill(model, 9, s.big)
    trackpoint.Checkpoint(model=model).write(prefix)
    fresh = _model(s.big)
    trackpoint.Checkpoint(model=fresh).read(prefix).assert_consumed()
    why = _holds(fresh, 9, s.big)
    if why:
        return "bad", f"rewriting {prefix}: {why}"
    return outcome, None


def _verify(prefix: str) -> str:
    """What `trackpoint verify prefix` prints."""
    import contextlib
    import io

    from trackpoint import cli

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        cli.main(["verify", prefix])
    return out.getvalue().strip()


def _listing(directory):
    try:
        return sorted(os.listdir(directory))
    except FileNotFoundError:
        return "missing"


def run_check(spec_path: str) -> None:
    with open(spec_path) as f:
        spec = json.load(f)
    s = SCENARIOS[spec["scenario"]]
    results = []
    for st in spec["states"]:
        world = st["dir"]
        check = check_write_state if s.kind == "write" else check_manager_state
        _LEAKS.clear()
        try:
            outcome, problem = check(s, world, st["after"])
        except Exception as e:  # noqa: BLE001 -- every failure is a finding
            outcome, problem = "bad", f"{type(e).__name__}: {e}"
        expect = st.get("expect")
        if problem is None and expect is not None and outcome != expect:
            problem = f"the latest checkpoint is the {outcome} one, expected the {expect} one"
        results.append({"outcome": outcome, "problem": problem, "unlisted": list(_LEAKS)})
    print(json.dumps(results))


def run_fault_save(s: Scenario, world: str) -> None:
    """One save of scenario s (under strace, a call of it failed); prints what
    save() did as JSON: {"committed", "error", "checkpoint_error"}."""
    import trackpoint
    from trackpoint.errors import CheckpointError

    model = _model(s.big)
    ckpt = trackpoint.Checkpoint(model=model)
    manager = _manager(s, ckpt, os.path.join(world, s.run_dir))
    manager.restore_or_initialize()
    _fill(model, s.values[s.new], s.big)
    result = {"committed": False, "error": None, "checkpoint_error": False}
    _mark("start")
    try:
        manager.save(metrics=s.metrics.get(s.new))
        result["committed"] = True
    except Exception as e:  # noqa: BLE001 -- what it raised is the finding
        result["error"] = f"{type(e).__name__}: {e}"
        result["checkpoint_error"] = isinstance(e, CheckpointError)
    _mark("returned")
    with contextlib.suppress(Exception):
        manager.close()
    sys.stdout.write("RESULT " + json.dumps(result) + "\n")
    sys.stdout.flush()


def main(argv) -> None:
    logging_quiet()
    command = argv[0]
    if command == "rank":
        run_rank(SCENARIOS[argv[1]], argv[2], int(argv[3]), int(argv[4]))
    elif command == "faultsave":
        run_fault_save(SCENARIOS[argv[1]], argv[2])
    elif command == "check":
        run_check(argv[1])
    elif command == "setup":
        run_setup(SCENARIOS[argv[1]], argv[2])
    elif command == "save":
        run_save(SCENARIOS[argv[1]], argv[2])
    else:
        raise SystemExit(f"unknown command {command}")


def logging_quiet() -> None:
    import logging

    logging.getLogger("trackpoint").setLevel(logging.CRITICAL)


if __name__ == "__main__":
    main(sys.argv[1:])
