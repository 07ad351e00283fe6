"""``trackpoint convert``."""

from __future__ import annotations

import sys

from ..convert import PRESETS, convert
from ._progress import Progress
from ._util import shape_text


def add_convert(subparsers) -> None:
    p = subparsers.add_parser(
        "convert",
        help="convert between TF checkpoints, safetensors, .npz and PyTorch files",
        description="Copy the tensors of SRC into a new DST, bit for bit, optionally renamed, "
        "filtered and transposed. Formats follow from the names (.safetensors, .npz, "
        ".pt/.pth/.bin; anything else is a TensorFlow checkpoint prefix) unless --from/--to "
        "say otherwise. Rules apply in this order: --exclude (source keys), --map (each kept "
        "key, in order), --transpose (source keys); a --preset's rules come before yours.",
        epilog="Examples: TF weights into a PyTorch model: trackpoint convert run/ckpt-7 "
        "model.pt --preset tf-to-torch --exclude '^optimizer/'. The model of a "
        "Checkpoint(model=..., optimizer=...) as a state_dict that load_state_dict takes "
        "as it is: trackpoint convert run/ckpt-7 model.pt --preset tf-to-torch --root model",
    )
    p.add_argument("src", help="what to read: a checkpoint prefix or directory, or a file")
    p.add_argument("dst", help="what to write: a checkpoint prefix, or a file")
    p.add_argument(
        "--from",
        dest="src_format",
        metavar="FORMAT",
        help="SRC's format: tf, safetensors, npz, torch",
    )
    p.add_argument("--to", dest="dst_format", metavar="FORMAT", help="DST's format (same names)")
    p.add_argument(
        "--map",
        action="append",
        default=[],
        metavar="PATTERN=REPLACEMENT",
        help="rename keys with re.sub(PATTERN, REPLACEMENT, key) (\\1 for groups; "
        "write a literal '=' in PATTERN as \\=); repeatable, applied in order",
    )
    p.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="REGEX",
        help="leave out source keys matching REGEX (re.search); repeatable",
    )
    p.add_argument(
        "--transpose",
        action="append",
        default=[],
        metavar="REGEX[=AXES]",
        help="permute tensors whose source key matches: AXES like 1,0; without AXES, "
        "TF's kernel layout becomes PyTorch's ([in,out] -> [out,in]; conv "
        "[h,w,in,out] -> [out,in,h,w]); repeatable",
    )
    p.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        help="a named rule set; tf-to-torch: drops the object graph, optimizer slots, "
        "save_counter, string tensors and attributes other than VARIABLE_VALUE (py_state "
        "JSON, ...), strips /.ATTRIBUTES/VARIABLE_VALUE, '/' -> '.', "
        "kernel/embeddings/gamma -> weight, beta -> bias, moving_mean/variance -> "
        "running_mean/var, transposes kernels",
    )
    p.add_argument(
        "--root",
        metavar="NAME",
        help="keep only the keys under this object (e.g. model, or model/encoder) and "
        "strip it from their names, before the --map rules: model/0/weight/... -> "
        "0/weight/... (0.weight with --preset tf-to-torch)",
    )
    p.add_argument(
        "--skip-unsupported",
        action="store_true",
        help="leave out tensors whose dtype DST's format cannot hold (default: fail)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace DST if it exists")
    p.add_argument(
        "--dry-run", "-n", action="store_true", help="print what would be written, write nothing"
    )
    p.set_defaults(run=run_convert)


def run_convert(args) -> int:
    with Progress(None, "convert") as progress:
        report = convert(
            args.src,
            args.dst,
            src_format=args.src_format,
            dst_format=args.dst_format,
            map=args.map,
            exclude=args.exclude,
            transpose=args.transpose,
            preset=args.preset,
            root=args.root,
            skip_unsupported=args.skip_unsupported,
            overwrite=args.overwrite,
            dry_run=args.dry_run,
            progress=progress.advance_to,
        )
    for key, reason in report.skipped:
        print(f"trackpoint: warning: skipped {key!r}: {reason}", file=sys.stderr)
    for note in report.notes:
        print(f"trackpoint: note: {note}", file=sys.stderr)
    if args.dry_run:
        for t in report.plan:
            extra = f"  (transposed {','.join(map(str, t.axes))})" if t.axes else ""
            arrow = t.source_key if t.source_key == t.key else f"{t.source_key} -> {t.key}"
            print(f"{arrow}  {t.dtype.name}{shape_text(t.shape)}{extra}")
        print(
            f"# would write {len(report.plan)} tensors ({sum(t.nbytes for t in report.plan)} "
            f"bytes) to {args.dst} ({report.destination_format}); "
            f"{len(report.excluded)} excluded, {len(report.skipped)} skipped"
        )
        return 0
    print(
        f"wrote {len(report.written)} tensors ({report.nbytes} bytes) from {report.source} "
        f"({report.source_format}) to {report.destination} ({report.destination_format}); "
        f"{len(report.excluded)} excluded, {len(report.skipped)} skipped"
    )
    return 0
