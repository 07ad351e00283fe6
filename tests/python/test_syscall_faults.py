"""Every file-system call of a manager save failed in turn, by strace's syscall
fault injection (``-e inject=SYSCALL:error=ERRNO:when=N``), in a subprocess
saving into a directory that holds a previous checkpoint. Each time: save()
raised a trackpoint error (CheckpointError) or committed; a fresh process finds
the previous checkpoint as the latest (or the new one, if save() committed) and
restores it; no temporary file is left.

The calls are enumerated from a recorded trace of the same save (N counts the
calls of that syscall by the saving thread, and each faulted run checks that
the call it failed is the one aimed at)."""

from __future__ import annotations

import concurrent.futures
import itertools
import json
import os
import re
import shutil

import crashsim
import pytest

STRACE_PROBLEM = crashsim.strace_usable()
pytestmark = pytest.mark.skipif(STRACE_PROBLEM is not None, reason=str(STRACE_PROBLEM))

# ckpt-1 (the best) and ckpt-2 saved with metrics; the save writes ckpt-3, deletes ckpt-2.
SCENARIO = "best_fn"
SYSCALLS = (
    "openat,write,pwrite64,lseek,fsync,fdatasync,rename,unlink,mkdir,close,flock,"
    "newfstatat,getdents64,ftruncate,truncate"
)
ERRNOS = ["ENOSPC", "EIO", "EACCES", "EROFS", "EXDEV", "EMFILE"]
_RUN_NUMBERS = itertools.count()
TEMP = re.compile(r".*(\.tempstate\d+|\.tmp[0-9a-f]{32})$")


def _short(path: str, world: str) -> str:
    rel = os.path.relpath(path, world)
    return re.sub(r"(\.tempstate)\d+|(\.tmp)[0-9a-f]{32}", r"\1\2*", rel)


def _call_desc(name, args, world) -> str | None:
    """The call and the first path under world it names, as in
    ``fsync run/ckpt-3.index.tempstate*`` (None if it names none)."""
    paths = [crashsim._fd_path(a) or crashsim._path_arg(a, "/") for a in args[:2]]
    mine = [p for p in paths if p and (p == world or p.startswith(world + os.sep))]
    return f"{name} {_short(mine[0], world)}" if mine else None


def _targets(trace_text: str, world: str) -> list:
    """(syscall, N, description, phase) for every call of the save (between the
    markers, by the saving thread) that touches the world. Phases: lock (taking
    the directory), bundle (the C++ writer, through its last directory fsync),
    metrics (the metrics file), state (the `checkpoint` state file, through the
    directory fsync after its rename), delete (old checkpoints)."""
    calls = crashsim.parse_calls(trace_text)
    marks = [
        (i, tid)
        for i, (tid, name, args, _) in enumerate(calls)
        if name == "truncate" and crashsim.MARKER in args[0]
    ]
    (start, tid), (end, _) = marks[0], marks[-1]
    counts, found = {}, []
    for i, (t, name, args, _) in enumerate(calls):
        if t != tid:
            continue
        counts[name] = counts.get(name, 0) + 1
        desc = _call_desc(name, args, world) if start < i < end else None
        if desc is not None:
            found.append((name, counts[name], desc))
    descs = [d for _, _, d in found]
    return [(name, n, desc, phase) for (name, n, desc), phase in zip(found, _phases(descs))]


def _phases(descs: list) -> list:
    def first(pred, after=-1):
        return next((i for i, d in enumerate(descs) if i > after and pred(d)), len(descs))

    def dir_synced_after(i):  # the close of the directory fsynced after call i
        return first(lambda d: d == "close run", i)

    bundle_start = first(lambda d: ".tempstate" in d)
    bundle_end = dir_synced_after(
        first(lambda d: d.startswith("rename") and ".index.tempstate" in d)
    )
    metrics_end = dir_synced_after(
        first(lambda d: d.startswith("rename") and "metrics.json.tmp" in d)
    )
    state_end = dir_synced_after(first(lambda d: d.startswith("rename") and "checkpoint.tmp" in d))
    out = []
    for i, d in enumerate(descs):
        if i < bundle_start:
            out.append("lock")
        elif i <= bundle_end:
            out.append("bundle")
        elif i <= metrics_end < len(descs):
            out.append("metrics")
        elif i <= state_end:
            out.append("state")
        else:
            out.append("delete")
    return out


def _strace(extra: list) -> list:
    return ["-f", "-qq", "-y", "-s", "0", "--seccomp-bpf", *extra]


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    base = str(tmp_path_factory.mktemp("faults"))
    world = os.path.join(base, "before")
    os.makedirs(world)
    r = crashsim.run_script("setup", SCENARIO, world)
    assert r.returncode == 0, r.stderr
    run = os.path.join(base, "record")
    shutil.copytree(world, run)
    trace = os.path.join(base, "trace.txt")
    r = crashsim.run_script(
        "faultsave", SCENARIO, run, strace_args=_strace(["-e", "trace=" + SYSCALLS, "-o", trace])
    )
    assert r.returncode == 0 and '"committed": true' in r.stdout, r.stdout + r.stderr
    with open(trace) as f:
        targets = _targets(f.read(), os.path.realpath(run))
    return base, world, os.path.realpath(run), targets


def _run_one(base, before, index, target, errno_name):
    name, n, desc, phase = target
    world = os.path.join(base, f"w{index}")
    shutil.copytree(before, world)
    trace = os.path.join(base, f"t{index}.txt")
    r = crashsim.run_script(
        "faultsave",
        SCENARIO,
        world,
        strace_args=_strace(
            ["-e", f"trace={name}", "-e", f"inject={name}:error={errno_name}:when={n}", "-o", trace]
        ),
    )
    with open(trace) as f:
        injected = [line for line in f if "(INJECTED)" in line]
    lines = [line for line in r.stdout.splitlines() if line.startswith("RESULT ")]
    result = (
        json.loads(lines[-1][7:])
        if lines
        else {
            "committed": False,
            "error": f"the process died: {r.stderr.strip()[-400:]}",
            "checkpoint_error": False,
        }
    )
    hit = crashsim.parse_calls(injected[0].replace(" (INJECTED)", "")) if injected else []
    aimed = (
        len(injected) == 1
        and len(hit) == 1
        and _call_desc(hit[0][1], hit[0][2], os.path.realpath(world)) == desc
    )
    run_dir = os.path.join(world, "run")
    return {
        "case": f"{desc} [{name}#{n}] {errno_name}",
        "phase": phase,
        "world": world,
        "result": result,
        "aimed": aimed,
        "injected": injected,
        "temps": sorted(x for x in os.listdir(run_dir) if TEMP.fullmatch(x)),
    }


def _check_all(base, runs) -> list:
    """Checks every faulted directory in one fresh process; returns the problems."""
    spec = {
        "scenario": SCENARIO,
        "states": [
            {
                "dir": run["world"],
                "after": False,
                "desc": run["case"],
                "expect": "new" if run["result"]["committed"] else "old",
            }
            for run in runs
        ],
    }
    path = os.path.join(base, f"spec-{len(runs)}-{os.getpid()}.json")
    with open(path, "w") as f:
        json.dump(spec, f)
    r = crashsim.run_script("check", path)
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def _problems(run, checked) -> list:
    out = []
    result = run["result"]
    if not run["aimed"]:
        out.append(f"the injection missed its call: {run['injected']}")
    if not result["committed"] and not result["checkpoint_error"]:
        out.append(f"save() raised a non-trackpoint error: {result['error']}")
    if run["temps"]:
        out.append(f"temporary files left: {run['temps']}")
    if checked["problem"]:
        out.append(
            f"from a fresh process: {checked['problem']} (save() "
            f"{'committed' if result['committed'] else 'raised ' + str(result['error'])})"
        )
    return out


# Known bugs by phase of the save (phase -> reason): a fault in such a phase
# makes the test xfail instead of failing. None are known.
KNOWN: dict = {}


def _run_cases(recorded, cases, capsys):
    base, before, _, _ = recorded
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        runs = list(
            pool.map(lambda ic: _run_one(base, before, ic[0], *ic[1]), zip(_RUN_NUMBERS, cases))
        )
    checked = _check_all(base, runs)
    unknown, known = [], []
    for run, c in zip(runs, checked):
        problems = _problems(run, c)
        if problems:
            (known if run["phase"] in KNOWN and run["aimed"] else unknown).append(
                (run["case"], run["phase"], problems)
            )
        shutil.rmtree(run["world"])
    committed = sum(run["result"]["committed"] for run in runs)
    with capsys.disabled():
        print(
            f"\nsyscall faults: {len(runs)} runs, {committed} committed, "
            f"{len(runs) - committed} raised, {len(known)} known-bug cases, "
            f"{len(unknown)} other failures"
        )
    text = "\n".join(f"  [{phase}] {case}: {'; '.join(p)}" for case, phase, p in unknown + known)
    assert not unknown, f"save faults not handled:\n{text}"
    if known:
        reasons = "; ".join(KNOWN[p] for p in sorted({phase for _, phase, _ in known}))
        pytest.xfail(f"{len(known)} faulted calls hit known bugs ({reasons}):\n{text}")


def test_the_recorded_save_touches_every_kind_of_call(recorded):
    _, _, _, targets = recorded
    kinds = {name for name, _, _, _ in targets}
    assert {"openat", "write", "fsync", "rename", "unlink", "close"} <= kinds, targets
    assert [phase for *_, phase in targets].count("state") >= 5


def test_every_call_of_a_save_failed_with_eio(recorded, capsys):
    _, _, _, targets = recorded
    _run_cases(recorded, [(t, "EIO") for t in targets], capsys)


def test_every_call_of_a_save_failed_with_another_errno(recorded, capsys):
    """The other errnos in rotation, one per call."""
    _, _, _, targets = recorded
    others = [e for e in ERRNOS if e != "EIO"]
    _run_cases(recorded, [(t, others[i % len(others)]) for i, t in enumerate(targets)], capsys)


def _key_calls(targets):
    wanted = [
        ("openat", ".data-"),
        ("write", ".data-"),
        ("fsync", ".index.tempstate"),
        ("rename", ".index.tempstate"),
        ("write", "checkpoint.tmp"),
        ("rename", "checkpoint.tmp"),
    ]
    out = []
    for name, part in wanted:
        out += [t for t in targets if t[0] == name and part in t[2]][:1]
    return out


@pytest.mark.parametrize("errno_name", ERRNOS)
def test_every_errno_on_the_key_calls(recorded, errno_name, capsys):
    _, _, _, targets = recorded
    _run_cases(recorded, [(t, errno_name) for t in _key_calls(targets)], capsys)
