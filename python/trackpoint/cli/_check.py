"""``trackpoint verify`` and ``trackpoint diff``."""

from __future__ import annotations

import os
import re

import numpy as np

from .. import _core
from ..convert import OBJECT_GRAPH_KEY, CheckpointSource
from ..errors import CheckpointError, DataLossError
from ..state_file import get_checkpoint_state
from ._progress import Progress
from ._util import dump_json, num_elements, open_input, spec_text

# ---- verify ---------------------------------------------------------------------------------


def add_verify(subparsers) -> None:
    p = subparsers.add_parser(
        "verify",
        help="read every tensor of a checkpoint and check every CRC32C",
        description="Read every tensor of a TensorFlow checkpoint, checking the CRC32C of each "
        "(and of each slice of a partitioned tensor), and check that the object graph parses "
        "and names only keys that exist. Prints one line per bad tensor; exit status 1 if any.",
    )
    p.add_argument("path", help="a checkpoint prefix or directory")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(run=run_verify)


def run_verify(args) -> int:
    found = interrupted_overwrite(args.path)
    if found is not None:
        return _verify_report(args, found[0], [("(index)", found[1])], 0, 0)
    try:
        source = CheckpointSource(args.path)
    except DataLossError as e:  # a corrupt index is a finding, not a usage error
        return _verify_report(args, args.path, [("(index)", str(e))], 0, 0)
    with source:
        keys = source.keys()
        specs = {key: source.spec(key) for key in keys}
        bad = []
        checked = 0
        with Progress(sum(s.nbytes for s in specs.values()), "verify") as progress:
            for key in keys:
                try:
                    value = source.read(key)
                except CheckpointError as e:
                    bad.append((key, str(e)))
                else:
                    checked += specs[key].nbytes
                    if key == OBJECT_GRAPH_KEY:
                        bad.extend(_check_graph(source, value))
                progress.update(specs[key].nbytes)
        return _verify_report(args, source.path, bad, len(keys), checked)


def interrupted_overwrite(path: str):
    """(prefix, finding) when ``path`` (a prefix, or a directory whose state file
    names one) has no index because a write over an existing checkpoint stopped
    between removing the old index and renaming its new one in; else None.

    Such a write leaves its new index, complete and durable, under a temporary
    name, and each data file either the old one or the new one.

    Example::

        interrupted_overwrite("/tmp/run/ckpt")   # None, or ("/tmp/run/ckpt", "interrupted ...")
    """
    prefix = os.fspath(path)
    if os.path.isdir(prefix):
        try:
            state = get_checkpoint_state(prefix)
        except ValueError:
            return None
        if state is None:
            return None
        prefix = state.model_checkpoint_path
    if os.path.exists(prefix + ".index"):
        return None
    directory, base = os.path.split(prefix)
    names = sorted(_listdir(directory or "."))
    stem = re.escape(base)
    indexes = [n for n in names if re.fullmatch(stem + r"\.index\.tempstate\d+", n)]
    if not indexes:
        return None
    data = [n for n in names if re.fullmatch(stem + r"\.data-\d{5}-of-\d{5}\.tempstate\d+", n)]
    parts_dir = prefix + "_temp"  # where a multi-process save keeps its parts
    parts = sorted(n for n in _listdir(parts_dir) if ".data-" in n and ".tempstate" not in n)
    if parts:
        where = (
            f"the data files of a multi-process save are still in {parts_dir} "
            f"({', '.join(parts)}): save again"
        )
    elif data:
        where = (
            f"data files still under temporary names: {', '.join(data)}. Renaming the "
            "temporary files to their final names (data files first, then the index) "
            "completes the new checkpoint, if only one write was interrupted"
        )
    else:
        where = (
            "every data file is already the new one: renaming the index to "
            f"{base}.index completes the new checkpoint, if only one write was interrupted"
        )
    return prefix, (
        f"interrupted overwrite of {prefix}: a write over it stopped after removing "
        f"{base}.index and before renaming its new index in, so the checkpoint that was "
        f"there is gone and the new one is incomplete; its index is complete at "
        f"{', '.join(indexes)}; {where}"
    )


def _listdir(path: str) -> list:
    try:
        return os.listdir(path)
    except OSError:
        return []


def _check_graph(source, value) -> list:
    try:
        nodes = _core.parse_object_graph(bytes(value[()]))
    except (CheckpointError, ValueError) as e:
        return [(OBJECT_GRAPH_KEY, f"cannot parse the object graph: {e}")]
    bad = []
    for i, node in enumerate(nodes):
        siblings = [key for _, _, key in node["attributes"]]
        for name, _, key in node["attributes"]:
            # A legacy saveable name ("table") is stored under suffixed keys.
            if not source.reader.stored_keys(key, siblings):
                message = (
                    f"node {i} attribute {name!r} names key {key!r}, which the "
                    "checkpoint does not hold (nor any key extending it)"
                )
                bad.append((OBJECT_GRAPH_KEY, message))
    return bad


def _verify_report(args, path: str, bad: list, count: int, nbytes: int) -> int:
    if args.json:
        dump_json(
            {
                "path": path,
                "ok": not bad,
                "tensors": count,
                "bytes": nbytes,
                "errors": [{"key": k, "error": msg} for k, msg in bad],
            }
        )
    else:
        for key, message in bad:
            print(f"BAD {key}: {message}")
        if bad:
            print(f"FAILED: {len(bad)} problem(s) in {path}")
        else:
            print(f"OK: {count} tensors, {nbytes} bytes verified in {path}")
    return 1 if bad else 0


# ---- diff -----------------------------------------------------------------------------------


def add_diff(subparsers) -> None:
    p = subparsers.add_parser(
        "diff",
        help="compare two checkpoints or files key by key",
        description="Compare the tensors of A and B: keys only in A (-), only in B (+), and "
        "keys whose dtype, shape or values differ (~), with the largest absolute difference. "
        "Values are compared bit for bit unless --atol is given. Either side may be any format "
        "'trackpoint convert' reads. Exit status 1 when anything differs.",
    )
    p.add_argument("a", help="the first checkpoint or file")
    p.add_argument("b", help="the second checkpoint or file")
    p.add_argument(
        "--atol",
        type=float,
        metavar="X",
        help="values differ only where |a - b| > X (NaN matches NaN)",
    )
    p.add_argument(
        "--shapes-only", action="store_true", help="compare keys, dtypes and shapes, not values"
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(run=run_diff)


_UINT = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64, 16: np.uint64}


def _numeric(x: np.ndarray) -> np.ndarray:
    if x.dtype.kind == "c":
        return x.astype(np.complex128)
    if x.dtype.kind in "iu" or x.dtype.name in ("int4", "uint4", "int2", "uint2"):
        return x.astype(np.float64) if x.dtype.itemsize < 8 else x.astype(object)
    return x.astype(np.float64)


def compare_values(x: np.ndarray, y: np.ndarray, atol: float | None) -> tuple:
    """(elements that differ, max |x - y| or None for strings and bools)."""
    if x.dtype == object:
        return sum(1 for a, b in zip(x.reshape(-1), y.reshape(-1)) if a != b), None
    if x.dtype.kind == "b":
        return int(np.count_nonzero(x != y)), None
    if x.size == 0:
        return 0, 0.0
    xn, yn = _numeric(x.reshape(-1)), _numeric(y.reshape(-1))
    if xn.dtype == object:  # 64-bit integers: exact
        absdiff = np.array([abs(int(a) - int(b)) for a, b in zip(xn, yn)], dtype=float)
    else:
        with np.errstate(invalid="ignore", over="ignore"):
            absdiff = np.abs(xn - yn).astype(np.float64)
        xnan, ynan = np.isnan(xn), np.isnan(yn)
        absdiff[xnan & ynan] = 0.0
        absdiff[xnan ^ ynan] = np.inf
    if atol is None:
        width = x.dtype.itemsize
        xb = np.ascontiguousarray(x).reshape(-1).view(_UINT[width])
        yb = np.ascontiguousarray(y).reshape(-1).view(_UINT[width])
        differs = xb != yb
        if width == 16:
            differs = differs.reshape(-1, 2).any(axis=1)
    else:
        differs = absdiff > atol
    return int(np.count_nonzero(differs)), float(absdiff.max())


def run_diff(args) -> int:
    with open_input(args.a) as a, open_input(args.b) as b:
        keys_a, keys_b = set(a.keys()), set(b.keys())
        removed = [(k, a.spec(k)) for k in sorted(keys_a - keys_b)]
        added = [(k, b.spec(k)) for k in sorted(keys_b - keys_a)]
        common = sorted(keys_a & keys_b)
        specs = {k: (a.spec(k), b.spec(k)) for k in common}
        changed, identical = [], 0
        total = 0 if args.shapes_only else sum(sa.nbytes + sb.nbytes for sa, sb in specs.values())
        with Progress(total, "diff") as progress:
            for key in common:
                sa, sb = specs[key]
                item = {"key": key}
                if sa.dtype != sb.dtype:
                    item["dtype"] = [sa.dtype.name, sb.dtype.name]
                if sa.shape != sb.shape:
                    item["shape"] = [list(sa.shape), list(sb.shape)]
                if len(item) == 1 and not args.shapes_only:
                    differing, max_abs = compare_values(a.read(key), b.read(key), args.atol)
                    progress.update(sa.nbytes + sb.nbytes)
                    if differing:
                        item.update(differing=differing, elements=num_elements(sa.shape))
                        if max_abs is not None:
                            item["max_abs_diff"] = max_abs
                if len(item) > 1:
                    changed.append(item)
                else:
                    identical += 1
    if args.json:
        dump_json(
            {
                "a": a.path,
                "b": b.path,
                "removed": [
                    {"key": k, "dtype": s.dtype.name, "shape": list(s.shape)} for k, s in removed
                ],
                "added": [
                    {"key": k, "dtype": s.dtype.name, "shape": list(s.shape)} for k, s in added
                ],
                "changed": changed,
                "identical": identical,
            }
        )
    else:
        _print_diff(a, b, removed, added, changed, identical)
    return 1 if removed or added or changed else 0


def _print_diff(a, b, removed, added, changed, identical) -> None:
    print(f"--- {a.path} ({a.format})")
    print(f"+++ {b.path} ({b.format})")
    for key, spec in removed:
        print(f"- {key}  {spec_text(spec)}")
    for key, spec in added:
        print(f"+ {key}  {spec_text(spec)}")
    for item in changed:
        if "dtype" in item:
            print(f"~ {item['key']}  dtype {item['dtype'][0]} -> {item['dtype'][1]}")
        if "shape" in item:
            print(f"~ {item['key']}  shape {item['shape'][0]} -> {item['shape'][1]}")
        if "differing" in item:
            text = f"{item['differing']} of {item['elements']} elements differ"
            if "max_abs_diff" in item:
                text += f", max abs diff {item['max_abs_diff']:.6g}"
            print(f"~ {item['key']}  {text}")
    print(
        f"{len(removed)} removed, {len(added)} added, {len(changed)} changed, {identical} identical"
    )
