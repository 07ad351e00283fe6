"""Crash-state exploration of a save, in the spirit of ALICE (Pillai et al.,
"All File Systems Are Not Created Equal", OSDI'14).

1. ``record``: a scenario's save runs in a subprocess under strace; the
   file-system calls that touch the scenario's directory become a list of
   operations (create/truncate, write and pwrite at offsets, fsync of a file or
   a directory, rename, unlink, mkdir) plus markers the script emits when
   ``save()`` has returned.
2. ``crash_states``: the file-system model. A crash after the first k
   operations keeps every operation a later barrier forced (a file's fsync
   forces its data, a directory's fsync its entries); of the unforced ones any
   may be lost, and the last bytes of an append may be cut short or read as
   zeros. For each k: the in-order state, each unforced operation dropped on its
   own, each unforced write half-written or zero-filled, all unforced data
   dropped (metadata ahead of data) and all unforced directory entries dropped
   (data ahead of metadata).
3. Each state is rebuilt from a copy of the directory taken before the save
   plus the real bytes (the bundle files are written once: a write's bytes are
   read back from the file it ended in), deduplicated by content hash, and
   checked in one fresh process (``check``): the latest checkpoint is the old
   or the new one and restores fully with the right values (the new one in a
   state after ``save()`` returned), and a new manager recovers and saves;
   files of checkpoints the state file no longer lists are reported apart
   (nothing would ever delete them).

The scenarios, and the script the subprocesses run, are in crash_scenarios.py.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import shutil

from crash_scenarios import MARKER, SCENARIOS, run_script, script_env, strace_usable

__all__ = ["SCENARIOS", "explore", "parse_calls", "run_script", "script_env", "strace_usable"]

TRACED = (
    "openat,write,pwrite64,lseek,fsync,fdatasync,rename,renameat,renameat2,"
    "unlink,unlinkat,mkdir,mkdirat,rmdir,ftruncate,truncate"
)

# ---- recording --------------------------------------------------------------------------

# Writes up to this many bytes are captured from the trace (the state, metrics
# and index files, which a later save may replace before the end); the bytes of
# longer ones are read back from the file they end in.
CAPTURE = 4096


@dataclasses.dataclass
class Op:
    kind: str  # open, write, trunc, fsync, rename, unlink, mkdir, mark
    path: str = ""  # absolute; for fd calls the file's name when the call began
    dst: str = ""  # rename target
    offset: int = 0
    length: int = 0
    flags: str = ""
    data: bytes | None = None  # a write's bytes, when the trace shows them whole

    def describe(self) -> str:
        if self.kind == "rename":
            return f"rename {os.path.basename(self.path)} -> {os.path.basename(self.dst)}"
        if self.kind == "write":
            return f"write {os.path.basename(self.path)} [{self.offset}, +{self.length})"
        return f"{self.kind} {os.path.basename(self.path) or self.path}"


_LINE = re.compile(r"^(\d+)\s+(.*)$")
_CALL = re.compile(r"^(\w+)\((.*)$")
_FD = re.compile(r"^-?\d+<(.*)>$")
_RESULT = re.compile(r"\)\s+= ")
_STR = re.compile(r'"((?:[^"\\]|\\.)*)"')


def _unescape(s: str) -> str:
    return (
        s.encode("latin-1", "backslashreplace")
        .decode("unicode_escape")
        .encode("latin-1")
        .decode("utf-8", "surrogateescape")
    )


def _split_args(text: str) -> list:
    """Top-level comma-separated arguments of a strace call (quotes and braces kept)."""
    args, depth, cur, quoted, i = [], 0, [], False, 0
    while i < len(text):
        c = text[i]
        if quoted:
            cur.append(c)
            if c == "\\":
                cur.append(text[i + 1])
                i += 1
            elif c == '"':
                quoted = False
        elif c == '"':
            quoted = True
            cur.append(c)
        elif c in "{[(":
            depth += 1
            cur.append(c)
        elif c in "}])":
            depth -= 1
            cur.append(c)
        elif c == "," and depth == 0:
            args.append("".join(cur).strip())
            cur = []
        else:
            cur.append(c)
        i += 1
    if cur:
        args.append("".join(cur).strip())
    return args


def parse_calls(trace_text: str) -> list:
    """(tid, syscall, args, result text) of every finished call, in the order the
    calls began ("unfinished ... resumed" pairs joined)."""
    calls, pending = [], {}
    for line in trace_text.splitlines():
        m = _LINE.match(line)
        if not m:
            continue
        tid, rest = int(m.group(1)), m.group(2)
        if rest.startswith("<..."):
            mm = re.match(r"<\.\.\. (\w+) resumed>(.*)$", rest)
            if mm and tid in pending:
                index, head = pending.pop(tid)
                calls[index] = _finish(tid, head + mm.group(2))
            continue
        if rest.endswith("<unfinished ...>"):
            pending[tid] = (len(calls), rest[: -len("<unfinished ...>")])
            calls.append(None)
            continue
        calls.append(_finish(tid, rest))
    return [c for c in calls if c is not None]


def _finish(tid, text):
    m = _CALL.match(text)
    if not m:
        return None
    name, rest = m.group(1), m.group(2)
    ends = list(_RESULT.finditer(rest))
    if not ends:
        return None
    args = _split_args(rest[: ends[-1].start()])
    result = rest[ends[-1].end() :].strip()
    return tid, name, args, result


def _path_arg(arg: str, cwd: str) -> str | None:
    m = _STR.fullmatch(arg.split(" ")[0]) if arg.startswith('"') else None
    if not m:
        return None
    return os.path.normpath(os.path.join(cwd, _unescape(m.group(1))))


def _string_bytes(arg: str) -> bytes | None:
    """The bytes of a string argument strace printed whole (None when cut short)."""
    if len(arg) < 2 or arg[0] != '"' or arg[-1] != '"':
        return None
    return (
        arg[1:-1].encode("latin-1", "backslashreplace").decode("unicode_escape").encode("latin-1")
    )


def _fd_path(arg: str) -> str | None:
    m = _FD.match(arg)
    return m.group(1) if m else None


def _ok(result: str) -> int | None:
    m = re.match(r"^(-?\d+)", result)
    if not m or int(m.group(1)) < 0:
        return None
    return int(m.group(1))


def ops_from_trace(trace_text: str, root: str, cwd: str) -> list:
    """The operations on files under root (absolute), in order, with markers."""
    ops, offsets = [], {}

    def mine(p):
        return p is not None and (p == root or p.startswith(root + os.sep))

    for _, name, args, result in parse_calls(trace_text):
        n = _ok(result)
        if name == "truncate" and MARKER in args[0]:
            ops.append(Op("mark", path=args[0].split(MARKER)[1].rstrip('"')))
            continue
        if n is None:
            continue
        at = (_fd_path(args[0]) or cwd) if name.endswith("at") or name == "renameat2" else cwd
        if name == "openat":
            path = _path_arg(args[1], at)
            if mine(path):
                flags = args[2]
                if "O_CREAT" in flags or "O_TRUNC" in flags:
                    ops.append(Op("open", path=path, flags=flags))
                offsets[path] = 0
        elif name in ("write", "pwrite64"):
            path = _fd_path(args[0])
            if mine(path) and n > 0:
                at = int(args[3]) if name == "pwrite64" else offsets.get(path, 0)
                data = _string_bytes(args[1])
                if data is not None and len(data) < n:
                    data = None
                ops.append(
                    Op(
                        "write",
                        path=path,
                        offset=at,
                        length=n,
                        data=None if data is None else data[:n],
                    )
                )
                if name == "write":
                    offsets[path] = at + n
        elif name == "lseek":
            path = _fd_path(args[0])
            if mine(path):
                offsets[path] = n
        elif name == "ftruncate":
            path = _fd_path(args[0])
            if mine(path):
                ops.append(Op("trunc", path=path, length=int(args[1])))
        elif name in ("fsync", "fdatasync"):
            path = _fd_path(args[0])
            if mine(path):
                ops.append(Op("fsync", path=path))
        elif name in ("rename", "renameat", "renameat2"):
            if name == "rename":
                src, dst = _path_arg(args[0], cwd), _path_arg(args[1], cwd)
            else:
                src, dst = _path_arg(args[1], at), _path_arg(args[3], _fd_path(args[2]) or cwd)
            if mine(src) or mine(dst):
                ops.append(Op("rename", path=src, dst=dst))
                if src in offsets:
                    offsets[dst] = offsets.pop(src)
        elif name in ("unlink", "unlinkat"):
            path = _path_arg(args[0], cwd) if name == "unlink" else _path_arg(args[1], at)
            if mine(path):
                kind = "rmdir" if name == "unlinkat" and "AT_REMOVEDIR" in args[-1] else "unlink"
                ops.append(Op(kind, path=path))
        elif name in ("mkdir", "mkdirat"):
            path = _path_arg(args[0], cwd) if name == "mkdir" else _path_arg(args[1], at)
            if mine(path):
                ops.append(Op("mkdir", path=path))
        elif name == "rmdir":
            path = _path_arg(args[0], cwd)
            if mine(path):
                ops.append(Op("rmdir", path=path))
    return ops


def record(scenario: str, base: str) -> dict:
    """Sets the scenario up under base/world, copies it to base/before, records the
    save; returns {"ops", "world", "before"}."""
    world = os.path.join(base, "world")
    before = os.path.join(base, "before")
    os.makedirs(world)
    r = run_script("setup", scenario, world)
    if r.returncode != 0:
        raise RuntimeError(f"setup of {scenario} failed:\n{r.stderr}")
    shutil.copytree(world, before)
    trace = os.path.join(base, "trace.txt")
    r = run_script(
        "save",
        scenario,
        world,
        cwd=base,
        strace_args=[
            "-f",
            "-qq",
            "-y",
            "-s",
            str(CAPTURE),
            "--seccomp-bpf",
            "-e",
            "trace=" + TRACED,
            "-o",
            trace,
        ],
    )
    if r.returncode != 0:
        raise RuntimeError(f"recorded save of {scenario} failed:\n{r.stderr}")
    with open(trace) as f:
        ops = ops_from_trace(f.read(), os.path.realpath(world), os.path.realpath(base))
    return {"ops": ops, "world": os.path.realpath(world), "before": os.path.realpath(before)}


# ---- the file-system model --------------------------------------------------------------


@dataclasses.dataclass
class Fs:
    """Names and contents. Contents are runs (offset, length, source, source offset):
    source "B:<path>" (the file before the save), "A:<path>" (the file after it),
    "Z" zeros, "?" bytes not known (filled with 0xEE)."""

    names: dict  # absolute path -> inode id
    dirs: set
    size: dict  # inode -> size
    runs: dict  # inode -> list of runs


def _snapshot_fs(root: str, before_root: str):
    names, dirs, size, runs = {}, {root}, {}, {}
    for dirpath, dirnames, filenames in os.walk(before_root):
        rel = os.path.relpath(dirpath, before_root)
        target = os.path.normpath(os.path.join(root, rel))
        dirs.add(target)
        for f in filenames:
            inode = f"old:{os.path.join(rel, f)}"
            names[os.path.join(target, f)] = inode
            n = os.path.getsize(os.path.join(dirpath, f))
            size[inode] = n
            runs[inode] = [(0, n, "B:" + os.path.join(dirpath, f), 0)] if n else []
    return Fs(names, dirs, size, runs)


def assign_inodes(ops: list, fs: Fs) -> list:
    """The inode each op acts on in the full, in-order run (an op's identity for the
    model: writes follow the inode through renames)."""
    names = dict(fs.names)
    dirs = set(fs.dirs)
    inodes = []
    for i, op in enumerate(ops):
        inode = None
        if op.kind == "open":
            inode = names.get(op.path)
            if inode is None:
                inode = names[op.path] = f"new:{i}"
        elif op.kind in ("write", "trunc", "fsync"):
            inode = names.get(op.path) or (op.path if op.path in dirs else None)
        elif op.kind == "rename":
            inode = names.pop(op.path, None)
            if inode is not None:
                names[op.dst] = inode
        elif op.kind == "unlink":
            inode = names.pop(op.path, None)
        elif op.kind == "mkdir":
            dirs.add(op.path)
        inodes.append(inode)
    return inodes, names


def _parents(op: Op) -> set:
    if op.kind == "rename":
        return {os.path.dirname(op.path), os.path.dirname(op.dst)}
    return {os.path.dirname(op.path)}


def is_namespace_op(op: Op, creates: bool) -> bool:
    return op.kind in ("rename", "unlink", "mkdir", "rmdir") or (op.kind == "open" and creates)


def forced(ops: list, inodes: list, k: int, creates: list) -> list:
    """forced[i] for i < k: a later barrier among the first k ops makes op i durable
    (a file's fsync its data, a directory's fsync its entries)."""
    out = [False] * k
    synced_files, synced_dirs = set(), set()
    for i in range(k - 1, -1, -1):
        op = ops[i]
        if op.kind == "fsync":
            if inodes[i] == op.path:  # a directory: its inode is its path
                synced_dirs.add(op.path)
            else:
                synced_files.add(inodes[i])
            out[i] = True
        elif op.kind == "mark":
            out[i] = True
        elif is_namespace_op(op, creates[i]):
            out[i] = bool(_parents(op) & synced_dirs)
        else:  # write, ftruncate, a truncating open of an existing file
            out[i] = inodes[i] in synced_files
    return out


def replay(ops: list, inodes: list, creates: list, base: Fs, k: int, variant: dict) -> Fs:
    """The file system after the first k ops, with variant[i] in {"drop", "half",
    "zero"} changing op i."""
    names = dict(base.names)
    dirs = set(base.dirs)
    size = dict(base.size)
    runs = {key: list(v) for key, v in base.runs.items()}
    for i in range(k):
        op, how, inode = ops[i], variant.get(i), inodes[i]
        if how == "drop" or op.kind in ("fsync", "mark"):
            continue
        if op.kind == "open":
            if creates[i]:
                if os.path.dirname(op.path) in dirs:
                    names[op.path] = inode
                    size[inode], runs[inode] = 0, []
            elif "O_TRUNC" in op.flags:
                size[inode], runs[inode] = 0, []
        elif op.kind == "write":
            if inode not in size:
                continue
            length = op.length // 2 if how == "half" else op.length
            if how == "zero":
                source, src_off = "Z", 0
            elif op.data is not None:
                source, src_off = f"D:{i}", 0
            else:
                source, src_off = f"A:{inode}", op.offset
            runs[inode].append((op.offset, length, source, src_off))
            size[inode] = max(size[inode], op.offset + length)
        elif op.kind == "trunc":
            if inode in size:
                size[inode] = op.length
        elif op.kind == "rename":
            src = names.get(op.path)
            if src is not None and os.path.dirname(op.dst) in dirs:
                del names[op.path]
                names[op.dst] = src
        elif op.kind == "unlink":
            names.pop(op.path, None)
        elif op.kind == "mkdir" and os.path.dirname(op.path) in dirs:
            dirs.add(op.path)
        elif op.kind == "rmdir" and not any(os.path.dirname(p) == op.path for p in names):
            dirs.discard(op.path)
    # Names whose directory chain is missing vanish with it.
    live = {p: ino for p, ino in names.items() if os.path.dirname(p) in dirs}
    return Fs(live, dirs, size, runs)


def crash_states(ops: list, inodes: list, creates: list, base: Fs):
    """Yields (k, variant, description, after_returned) for every crash state the
    model allows."""
    returned_at = next(
        (i for i, op in enumerate(ops) if op.kind == "mark" and op.path == "returned"), len(ops) + 1
    )
    for k in range(len(ops) + 1):
        after = k > returned_at
        yield k, {}, f"prefix {k}", after
        f = forced(ops, inodes, k, creates)
        unforced = [i for i in range(k) if not f[i]]
        for i in unforced:
            yield k, {i: "drop"}, f"prefix {k}, lost: {ops[i].describe()}", after
            if ops[i].kind == "write":
                yield k, {i: "half"}, f"prefix {k}, half: {ops[i].describe()}", after
                yield k, {i: "zero"}, f"prefix {k}, zeros: {ops[i].describe()}", after
        data = {i: "drop" for i in unforced if not is_namespace_op(ops[i], creates[i])}
        meta = {i: "drop" for i in unforced if is_namespace_op(ops[i], creates[i])}
        if data:
            yield k, data, f"prefix {k}, unforced data lost", after
        if meta:
            yield k, meta, f"prefix {k}, unforced directory entries lost", after


def _blob_path(source: str, final_names: dict) -> str | None:
    if source.startswith("B:"):
        return source[2:]
    inode = source[2:]
    return final_names.get(inode)


class Contents:
    """Materializes and hashes file contents (cached per run list)."""

    def __init__(self, final_names: dict, ops: list):
        self.final_names = final_names  # inode -> path after the save
        self.ops = ops  # "D:<i>": the captured bytes of ops[i]
        self._blobs: dict = {}
        self._digests: dict = {}

    def blob(self, source: str) -> bytes | None:
        if source.startswith("D:"):
            return self.ops[int(source[2:])].data
        if source not in self._blobs:
            path = _blob_path(source, self.final_names)
            data = None
            if path is not None and os.path.isfile(path):
                with open(path, "rb") as f:
                    data = f.read()
            self._blobs[source] = data
        return self._blobs[source]

    def bytes_of(self, size: int, runs: list) -> bytes:
        out = bytearray(size)
        for offset, length, source, src_off in runs:
            length = min(length, size - offset)
            if length <= 0:
                continue
            if source == "Z":
                out[offset : offset + length] = bytes(length)
                continue
            data = self.blob(source)
            piece = data[src_off : src_off + length] if data is not None else b""
            if len(piece) < length:
                piece += b"\xee" * (length - len(piece))
            out[offset : offset + length] = piece
        return bytes(out)

    def digest(self, size: int, runs: list) -> str:
        key = (size, tuple(runs))
        if key not in self._digests:
            self._digests[key] = hashlib.sha256(self.bytes_of(size, runs)).hexdigest()
        return self._digests[key]


def state_digest(fs: Fs, contents: Contents, root: str) -> str:
    h = hashlib.sha256()
    for d in sorted(fs.dirs):
        h.update(b"D" + os.path.relpath(d, root).encode() + b"\0")
    for p in sorted(fs.names):
        ino = fs.names[p]
        h.update(b"F" + os.path.relpath(p, root).encode() + b"\0")
        h.update(contents.digest(fs.size[ino], fs.runs[ino]).encode())
    return h.hexdigest()


def materialize(fs: Fs, contents: Contents, root: str, target: str, store: str) -> None:
    """Writes the state under target: each distinct content once into store, then
    hard-linked (saves and writes only ever rename over or unlink these names)."""
    for d in sorted(fs.dirs):
        os.makedirs(os.path.join(target, os.path.relpath(d, root)), exist_ok=True)
    for p, ino in fs.names.items():
        size, runs = fs.size[ino], fs.runs[ino]
        stored = os.path.join(store, contents.digest(size, runs))
        if not os.path.exists(stored):
            with open(stored, "wb") as f:
                f.write(contents.bytes_of(size, runs))
        os.link(stored, os.path.join(target, os.path.relpath(p, root)))


def explore(scenario: str, base: str, batch: int = 40) -> dict:
    """Records the scenario, generates its crash states, checks the unique ones;
    returns {"generated", "unique", "broken": [(description, problem)], ...}."""
    rec = record(scenario, base)
    ops, root = rec["ops"], rec["world"]
    start = next(i for i, op in enumerate(ops) if op.kind == "mark" and op.path == "start")
    ops = ops[start:]
    fs0 = _snapshot_fs(root, rec["before"])
    inodes, _ = assign_inodes(ops, fs0)
    creates = []
    names = dict(fs0.names)
    for op, ino in zip(ops, inodes):  # does an open create a new name?
        creates.append(op.kind == "open" and ino.startswith("new:") and op.path not in names)
        if op.kind == "open":
            names[op.path] = ino
        elif op.kind == "rename" and op.path in names:
            names[op.dst] = names.pop(op.path)
        elif op.kind == "unlink":
            names.pop(op.path, None)
    _, end_names = assign_inodes(ops, fs0)
    final_names = {ino: p for p, ino in end_names.items() if ino.startswith("new:")}
    contents = Contents(final_names, ops)
    seen, generated = {}, 0
    for k, variant, desc, after in crash_states(ops, inodes, creates, fs0):
        generated += 1
        fs = replay(ops, inodes, creates, fs0, k, variant)
        digest = state_digest(fs, contents, root)
        if digest in seen:
            # The same bytes must meet the stricter of the two expectations.
            if after and not seen[digest]["after"]:
                seen[digest].update(after=True, desc=desc)
            continue
        seen[digest] = {"desc": desc, "after": after, "fs": fs}
    states_dir = os.path.join(base, "states")
    store = os.path.join(base, "store")
    os.makedirs(states_dir)
    os.makedirs(store)
    items = list(seen.values())
    broken, leaked, outcomes = [], [], {}
    for start_i in range(0, len(items), batch):
        chunk = items[start_i : start_i + batch]
        spec = {"scenario": scenario, "states": []}
        for j, item in enumerate(chunk):
            target = os.path.join(states_dir, f"s{start_i + j}")
            materialize(item["fs"], contents, root, target, store)
            spec["states"].append({"dir": target, "after": item["after"], "desc": item["desc"]})
        spec_path = os.path.join(base, f"spec{start_i}.json")
        with open(spec_path, "w") as f:
            json.dump(spec, f)
        r = run_script("check", spec_path)
        if r.returncode != 0:
            raise RuntimeError(f"checker failed:\n{r.stdout}\n{r.stderr}")
        results = json.loads(r.stdout.strip().splitlines()[-1])
        for st, res in zip(spec["states"], results):
            outcomes[res["outcome"]] = outcomes.get(res["outcome"], 0) + 1
            if res["problem"]:
                broken.append((st["desc"], res["problem"]))
            if res["unlisted"]:
                leaked.append((st["desc"], res["unlisted"]))
        for st in spec["states"]:
            shutil.rmtree(st["dir"])
    return {
        "scenario": scenario,
        "ops": len(ops),
        "generated": generated,
        "unique": len(items),
        "broken": broken,
        "leaked": leaked,
        "outcomes": outcomes,
        "trace": [op.describe() for op in ops],
    }
