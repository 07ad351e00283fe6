"""``trackpoint inspect`` and ``trackpoint graph``."""

from __future__ import annotations

from .. import _core
from ..convert import OBJECT_GRAPH_KEY, CheckpointSource
from ..inspect_checkpoint import print_tensors
from ._util import (
    UsageError,
    dump_json,
    json_value,
    num_elements,
    open_input,
    require_key,
    shape_text,
)

# ---- inspect --------------------------------------------------------------------------------


def add_inspect(subparsers) -> None:
    p = subparsers.add_parser(
        "inspect",
        help="list the tensors of a checkpoint or file (dtype, shape, bytes)",
        description="List every tensor with its dtype, shape and size in bytes. --tensor and "
        "--all print values as TensorFlow's inspect_checkpoint tool does.",
    )
    p.add_argument(
        "path", help="a checkpoint prefix or directory, or a .safetensors, .npz or PyTorch file"
    )
    p.add_argument(
        "--tensor",
        "-t",
        action="append",
        metavar="NAME",
        default=[],
        help="print this tensor's value (repeatable)",
    )
    p.add_argument("--all", "-a", action="store_true", help="print every tensor's value")
    p.add_argument(
        "--json",
        action="store_true",
        help="machine-readable output (values included for --tensor/--all)",
    )
    p.add_argument(
        "--from",
        dest="format",
        metavar="FORMAT",
        help="the file's format when its name does not tell: tf, safetensors, npz, torch",
    )
    p.set_defaults(run=run_inspect)


def run_inspect(args) -> int:
    with open_input(args.path, args.format) as source:
        for key in args.tensor:
            require_key(source, key)
        keys = source.keys()
        specs = {key: source.spec(key) for key in keys}
        shown = keys if args.all else args.tensor
        if args.json:
            tensors = []
            for key in keys:
                spec = specs[key]
                item = {
                    "key": key,
                    "dtype": spec.dtype.name,
                    "shape": list(spec.shape),
                    "bytes": spec.nbytes,
                }
                if key in shown:
                    item["value"] = json_value(source.read(key))
                tensors.append(item)
            dump_json(
                {
                    "path": source.path,
                    "format": source.format,
                    "tensors": tensors,
                    "total_bytes": sum(s.nbytes for s in specs.values()),
                    "total_elements": sum(num_elements(s.shape) for s in specs.values()),
                }
            )
        elif shown:
            print_tensors(
                [(k, specs[k].dtype.name, list(specs[k].shape)) for k in shown], source.read
            )
        else:
            _print_table(source, specs)
    return 0


def _print_table(source, specs: dict) -> None:
    rows = [(key, s.dtype.name, shape_text(s.shape), str(s.nbytes)) for key, s in specs.items()]
    header = ("KEY", "DTYPE", "SHAPE", "BYTES")
    widths = [max([len(header[i])] + [len(r[i]) for r in rows]) for i in range(4)]
    for row in [header, *rows]:
        print(
            f"{row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]:<{widths[2]}}  "
            f"{row[3]:>{widths[3]}}"
        )
    total_bytes = sum(s.nbytes for s in specs.values())
    total_elements = sum(num_elements(s.shape) for s in specs.values())
    print(
        f"# {len(specs)} tensors, {total_elements} elements, {total_bytes} bytes in "
        f"{source.path} ({source.format})"
    )


# ---- graph ----------------------------------------------------------------------------------


def add_graph(subparsers) -> None:
    p = subparsers.add_parser(
        "graph",
        help="show the object graph of a TF2 checkpoint as a tree",
        description="Show the object graph of an object-based (TF2) checkpoint: each object by "
        "its local name under its parent, the tensors it saved, optimizer slots, and objects "
        "reachable by more than one path (as '-> first/path').",
    )
    p.add_argument("path", help="a checkpoint prefix or directory")
    p.add_argument("--keys", action="store_true", help="show each tensor's checkpoint key")
    p.add_argument(
        "--skip-empty",
        action="store_true",
        help="leave out objects that hold no values (nothing below them does)",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output: the nodes")
    p.set_defaults(run=run_graph)


def _load_graph(source: CheckpointSource) -> list:
    if OBJECT_GRAPH_KEY not in source:
        raise UsageError(
            f"{source.path} has no object graph (it is a name-based checkpoint); "
            "'trackpoint inspect' lists its tensors"
        )
    return _core.parse_object_graph(bytes(source.read(OBJECT_GRAPH_KEY)[()]))


class _FirstPaths:
    """node id -> its first path from the root, breadth first ("" for the
    root), kept as parent links: linear memory however deep the graph (a
    chain of 10^5 objects would otherwise hold 10^10 characters of paths)."""

    def __init__(self, nodes: list):
        self.parent = {0: (None, "")}  # node -> (parent node, edge name)
        frontier = [0]
        while frontier:
            following = []
            for n in frontier:
                for child, name in nodes[n]["children"]:
                    if child not in self.parent:
                        self.parent[child] = (n, name)
                        following.append(child)
            frontier = following

    def is_first_edge(self, child: int, parent: int, name: str) -> bool:
        return self.parent.get(child) == (parent, name)

    def get(self, n: int, default=None, max_parts: int | None = None):
        """The path of n; with max_parts, a longer one keeps its first and
        last parts around "...(K more)..."."""
        if n not in self.parent:
            return default
        parts = []
        while n:
            n, name = self.parent[n]
            parts.append(name)
        parts.reverse()
        if max_parts is not None and len(parts) > max_parts:
            head, tail = max_parts // 4, max_parts - max_parts // 4
            skipped = len(parts) - head - tail
            parts = parts[:head] + [f"...({skipped} more)..."] + parts[-tail:]
        return "/".join(parts)


def run_graph(args) -> int:
    source = CheckpointSource(args.path)
    with source:
        nodes = _load_graph(source)
        paths = _FirstPaths(nodes)

        def tensor_info(key: str, siblings=()) -> dict:
            stored = source.reader.stored_keys(key, siblings)
            if not stored:
                return {"key": key, "missing": True}
            if stored == [key]:
                spec = source.spec(key)
                return {"key": key, "dtype": spec.dtype.name, "shape": list(spec.shape)}
            # A legacy saveable name ("table"): its tensors under suffixed keys.
            tensors = []
            for k in stored:
                spec = source.spec(k)
                tensors.append({"key": k, "suffix": k[len(key):], "dtype": spec.dtype.name,
                                "shape": list(spec.shape)})
            return {"key": key, "tensors": tensors}

        if args.json:
            out = []
            for i, node in enumerate(nodes):
                out.append(
                    {
                        "id": i,
                        "path": paths.get(i),
                        "children": [{"name": name, "id": c} for c, name in node["children"]],
                        "attributes": [
                            {"name": name, **tensor_info(key, _keys_of(node))}
                            for name, _, key in node["attributes"]
                        ],
                        "slot_variables": [
                            {"original_id": o, "slot_name": s, "slot_id": v}
                            for o, s, v in node["slot_variables"]
                        ],
                        "has_checkpoint_values": node["has_checkpoint_values"],
                    }
                )
                if node["registered_saver"]:
                    name, object_name = node["registered_saver"]
                    out[-1]["registered_saver"] = {"name": name, "object_name": object_name}
            dump_json({"path": source.path, "nodes": out})
            return 0
        _print_tree(nodes, paths, tensor_info, args)
    return 0


def _keys_of(node: dict) -> list:
    return [key for _, _, key in node["attributes"]]


def _attribute_texts(name: str, info: dict) -> list:
    """(label, "dtype[shape]" or "MISSING", key) per tensor of one attribute:
    one, or one per suffixed key of a legacy saveable name (``table-keys``)."""
    if info.get("missing"):
        return [(name, "MISSING", info["key"])]
    if "tensors" in info:
        return [(name + t["suffix"], f"{t['dtype']}{shape_text(t['shape'])}", t["key"])
                for t in info["tensors"]]
    return [(name, f"{info['dtype']}{shape_text(info['shape'])}", info["key"])]


# Deeper levels than this are not indented further: their lines say their depth.
_MAX_INDENT = 32
# A path shown in a line ("-> path", a slot's variable) keeps at most this many parts.
_MAX_SHOWN_PARTS = 16


def _print_tree(nodes: list, paths: _FirstPaths, tensor_info, args) -> None:
    """Prints the tree depth first with an explicit stack (no recursion), so
    a graph of any depth prints in memory linear in its size."""

    def holds_values(n: int) -> bool:
        flag = nodes[n]["has_checkpoint_values"]
        return True if flag is None else flag

    def describe(n: int) -> str:
        parts = []
        for name, _, key in nodes[n]["attributes"]:
            info = tensor_info(key, _keys_of(nodes[n]))
            for label, text, shown_key in _attribute_texts(name, info):
                if args.keys:
                    text += f"  ({shown_key})"
                parts.append(text if label == "VARIABLE_VALUE" else f"{label}: {text}")
        if nodes[n]["registered_saver"]:
            # Saved by a registered saver, under keys of its own choosing.
            name, object_name = nodes[n]["registered_saver"]
            parts.append(f"registered saver {name!r} (object name {object_name!r})")
        if not parts and not holds_values(n):
            return "  (no values)"
        return ("  " + ", ".join(parts)) if parts else ""

    def lines_of(n: int) -> list:
        lines = []
        for child, name in nodes[n]["children"]:
            if args.skip_empty and not holds_values(child):
                continue
            lines.append(("child", child, name))
        for original, slot_name, slot in nodes[n]["slot_variables"]:
            shown = paths.get(original, "?", _MAX_SHOWN_PARTS)
            lines.append(("slot", slot, f"slot {slot_name!r} of {shown}"))
        return lines

    print("(root)" + describe(0))
    printed = {0}
    # Each frame: (node, its lines, next line to print, indent, depth).
    stack = [(0, lines_of(0), 0, "", 0)]
    while stack:
        n, lines, i, indent, depth = stack.pop()
        if i == len(lines):
            continue
        stack.append((n, lines, i + 1, indent, depth))
        kind, node, label = lines[i]
        last = i == len(lines) - 1
        branch, deeper = ("└── ", "    ") if last else ("├── ", "│   ")
        marker = f"[depth {depth + 1}] " if depth >= _MAX_INDENT else ""
        if kind == "child" and (node in printed or not paths.is_first_edge(node, n, label)):
            target = paths.get(node, None, _MAX_SHOWN_PARTS) or "(root)"
            print(f"{indent}{branch}{marker}{label} -> {target}")
            continue
        printed.add(node)
        print(f"{indent}{branch}{marker}{label}{describe(node)}")
        if kind == "child":
            below = indent + deeper if depth + 1 < _MAX_INDENT else indent
            stack.append((node, lines_of(node), 0, below, depth + 1))
