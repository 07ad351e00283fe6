"""Crash consistency of saves, explored (tests/python/crashsim.py): every crash
state the file-system model allows for a recorded save is rebuilt and checked
in a fresh process. Each scenario prints: states generated, unique states
checked, broken."""

from __future__ import annotations

import os

import crashsim
import pytest

STRACE_PROBLEM = crashsim.strace_usable()
needs_strace = pytest.mark.skipif(STRACE_PROBLEM is not None, reason=str(STRACE_PROBLEM))

SCENARIOS = [
    "manager_deletes",
    "async_save",
    "best_fn",
    "tensor_in_pieces",
    "first_save_new_dir",
    "write_over_prefix",
    "write_new_dir",
    "multi_process_merge",
    "merge_over_prefix",
]


@needs_strace
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_crash_state_holds_the_old_or_the_new_checkpoint(tmp_path, scenario, capsys):
    if scenario in ("multi_process_merge", "merge_over_prefix"):
        pytest.importorskip("torch.distributed")
    result = crashsim.explore(scenario, str(tmp_path))
    with capsys.disabled():
        print(
            f"\ncrash explorer {scenario}: {result['ops']} operations, "
            f"{result['generated']} states generated, {result['unique']} unique states "
            f"checked, {len(result['broken'])} broken, {len(result['leaked'])} leaving "
            f"unlisted files; outcomes {result['outcomes']}"
        )
    # The exploration reached both sides of the commit.
    assert result["outcomes"].get("new", 0) >= 1
    assert result["outcomes"].get("old", 0) >= 1
    if scenario == "write_over_prefix":
        # The window the format leaves (no index; the new one complete under a
        # temporary name, which `trackpoint verify` reports) is reached; the old
        # and the new bundle are never mixed.
        assert result["outcomes"].get("window", 0) >= 1
    if scenario == "merge_over_prefix":
        # Two merged data files over a one-file checkpoint: no name is reused,
        # the new index replaces the old one in one rename, and there is no window.
        assert set(result["outcomes"]) == {"old", "new"}
    broken = "\n".join(f"  {desc}: {problem}" for desc, problem in result["broken"])
    assert not result["broken"], f"broken crash states of {scenario}:\n{broken}\n" + "\n".join(
        result["trace"]
    )
    # Every state is sound; files a crash leaves behind that nothing deletes are
    # the next thing checked.
    _assert_nothing_leaked(result)


# ---- the parts of the explorer, without a disk or strace ------------------------------------

TRACE = """\
100 openat(AT_FDCWD</w>, "d/a.tmp", O_WRONLY|O_CREAT|O_TRUNC|O_CLOEXEC, 0644) = 3</w/d/a.tmp>
100 write(3</w/d/a.tmp>, ""..., 8) = 8
100 pwrite64(3</w/d/a.tmp>, ""..., 16, 8 <unfinished ...>
101 pwrite64(3</w/d/a.tmp>, ""..., 16, 24 <unfinished ...>
101 <... pwrite64 resumed>)      = 16
100 <... pwrite64 resumed>)   = 16
100 lseek(3</w/d/a.tmp>, 40, SEEK_SET) = 40
100 write(3</w/d/a.tmp>, ""..., 2) = 2
100 fsync(3</w/d/a.tmp>)          = 0
100 rename("d/a.tmp", "d/a") = 0
100 unlink("/elsewhere/x") = 0
100 openat(AT_FDCWD</w>, "d", O_RDONLY|O_CLOEXEC|O_DIRECTORY) = 4</w/d>
100 fsync(4</w/d>)    = 0
100 truncate("/nonexistent-trackpoint-crashsim-marker-returned", 0) = -1 ENOENT (No such file or directory)
"""


def test_the_trace_parser_joins_resumed_calls_and_tracks_offsets():
    ops = crashsim.ops_from_trace(TRACE, "/w/d", "/w")
    assert [op.describe() for op in ops] == [
        "open a.tmp",
        "write a.tmp [0, +8)",
        "write a.tmp [8, +16)",
        "write a.tmp [24, +16)",
        "write a.tmp [40, +2)",
        "fsync a.tmp",
        "rename a.tmp -> a",
        "fsync d",
        "mark returned",
    ]


def _states(ops):
    fs0 = crashsim.Fs({}, {"/w/d"}, {}, {})
    inodes, _ = crashsim.assign_inodes(ops, fs0)
    creates = [op.kind == "open" for op in ops]
    out = []
    for k, variant, desc, after in crashsim.crash_states(ops, inodes, creates, fs0):
        fs = crashsim.replay(ops, inodes, creates, fs0, k, variant)
        out.append(
            (
                desc,
                after,
                {os.path.basename(p): (fs.size[i], fs.runs[i]) for p, i in fs.names.items()},
            )
        )
    return out


def test_the_model_loses_unsynced_data_behind_a_rename():
    Op = crashsim.Op
    ops = [
        Op("open", "/w/d/a.tmp", flags="O_CREAT|O_TRUNC"),
        Op("write", "/w/d/a.tmp", offset=0, length=10),
        Op("rename", "/w/d/a.tmp", dst="/w/d/a"),
        Op("fsync", "/w/d"),
    ]
    named = [(desc, files["a"]) for desc, _, files in _states(ops) if "a" in files]
    assert ("prefix 4, lost: write a.tmp [0, +10)", (0, [])) in named
    assert any(size == 10 and runs[0][2] == "Z" for _, (size, runs) in named)  # zero-filled
    assert any(size == 5 for _, (size, _) in named)  # half written


def test_the_model_keeps_what_a_barrier_forced():
    Op = crashsim.Op
    ops = [
        Op("open", "/w/d/a.tmp", flags="O_CREAT|O_TRUNC"),
        Op("write", "/w/d/a.tmp", offset=0, length=10),
        Op("fsync", "/w/d/a.tmp"),
        Op("rename", "/w/d/a.tmp", dst="/w/d/a"),
        Op("fsync", "/w/d"),
        Op("mark", "returned"),
    ]
    states = _states(ops)
    for desc, _, files in states:
        if "a" in files:  # whenever the name is there, so are its bytes
            assert files["a"] == (10, [(0, 10, files["a"][1][0][2], 0)]), desc
    after = [files for _, after, files in states if after]
    assert after and all(set(files) == {"a"} for files in after)


def _assert_nothing_leaked(result):
    """Every file of a checkpoint the state file no longer lists is gone
    once a new manager has started (a crash mid-deletion included)."""
    leaked = "\n".join(f"  {desc}: {names}" for desc, names in result["leaked"])
    assert not result["leaked"], (
        f"in {len(result['leaked'])} crash states files of a checkpoint the state file "
        f"no longer lists remain, and no new manager deletes them:\n{leaked}"
    )


def test_the_parser_keeps_the_bytes_of_writes_shown_whole():
    trace = (
        '7 openat(AT_FDCWD</w>, "d/s", O_WRONLY|O_CREAT|O_TRUNC, 0666) = 3</w/d/s>\n'
        '7 write(3</w/d/s>, "ab\\n\\0\\377\\"", 6) = 6\n'
        '7 write(3</w/d/s>, "abcd"..., 4096) = 4096\n'
    )
    writes = [op for op in crashsim.ops_from_trace(trace, "/w/d", "/w") if op.kind == "write"]
    assert [(op.offset, op.length, op.data) for op in writes] == [
        (0, 6, b'ab\n\x00\xff"'),
        (6, 4096, None),
    ]
