"""Converting tensors between TensorFlow checkpoints, safetensors, ``.npz`` and
PyTorch state_dict files, with renaming rules and transposes.

Values are copied bit for bit: a conversion never changes an element, only
(optionally) the layout of a tensor you ask to transpose. Types a format
cannot hold are refused, or left out with ``skip_unsupported=True``;
TensorFlow's quantized types (qint8, ...) become their plain integer type
outside TensorFlow checkpoints.

Example::

    from trackpoint.convert import convert

    # TF weights into a PyTorch model: strip ".ATTRIBUTES/VARIABLE_VALUE",
    # '/' -> '.', kernel -> weight (transposed to PyTorch's layout), ...
    report = convert("/runs/tf/ckpt-7", "/tmp/model.pt", preset="tf-to-torch",
                     exclude=[r"^optimizer/"])
    print(report.written)          # [(source key, written key), ...]

    # The model of a trackpoint.Checkpoint(model=..., optimizer=...), as a
    # state_dict that model.load_state_dict() takes as it is ("0.weight", ...):
    convert("/runs/torch/ckpt-7", "/tmp/model.pt", preset="tf-to-torch", root="model")

    convert("/tmp/model.safetensors", "/tmp/ckpt/weights")   # to a TF checkpoint
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable
from typing import Callable, NamedTuple

import numpy as np

from ..dtypes import DType
from ..errors import InvalidArgumentError
from ._sinks import open_sink, sink_supports
from ._sources import (
    FORMATS,
    OBJECT_GRAPH_KEY,
    CheckpointSource,
    Source,
    TensorSpec,
    detect_format,
    normalize_format,
    open_source,
)

__all__ = [
    "FORMATS",
    "OBJECT_GRAPH_KEY",
    "PRESETS",
    "CheckpointSource",
    "ConversionReport",
    "PlannedTensor",
    "Rules",
    "Source",
    "TensorSpec",
    "convert",
    "detect_format",
    "open_source",
    "parse_map",
    "parse_transpose",
    "plan",
    "torch_layout_axes",
]

# Named rule sets: --preset NAME. Patterns match the source key (exclude,
# transpose) or the key as rewritten so far (map, applied in order);
# exclude_dtypes leaves out every tensor of those types.
PRESETS = {
    # TensorFlow / Keras variable names to PyTorch state_dict names. Leaves out
    # what is not model weights: the object graph, optimizer slots, the save
    # counter, attributes other than a variable's value (py_state: JSON and
    # other Python state, a PRNG key's implementation name, ...) and string
    # tensors.
    "tf-to-torch": {
        "exclude": [
            rf"^{OBJECT_GRAPH_KEY}$",
            r"/\.OPTIMIZER_SLOT/",
            r"^save_counter/",
            r"/\.ATTRIBUTES/(?!VARIABLE_VALUE$)",
        ],
        "exclude_dtypes": ["string"],
        "map": [
            r"/\.ATTRIBUTES/VARIABLE_VALUE$=",
            r"/=.",
            r"(^|\.)kernel$=\1weight",
            r"(^|\.)embeddings$=\1weight",
            r"(^|\.)gamma$=\1weight",
            r"(^|\.)beta$=\1bias",
            r"(^|\.)moving_mean$=\1running_mean",
            r"(^|\.)moving_variance$=\1running_var",
        ],
        "transpose": [r"(^|/)kernel(/\.ATTRIBUTES/VARIABLE_VALUE)?$"],
    },
}


def torch_layout_axes(ndim: int) -> tuple:
    """The axes that turn a TensorFlow kernel into PyTorch's layout: a dense
    kernel [in, out] -> [out, in]; a convolution kernel [*spatial, in, out] ->
    [out, in, *spatial]. Tensors of fewer than 2 dimensions are left alone."""
    if ndim < 2:
        return tuple(range(ndim))
    return (ndim - 1, ndim - 2, *range(ndim - 2))


def _compile(pattern: str, what: str) -> re.Pattern:
    try:
        return re.compile(pattern)
    except re.error as e:
        raise InvalidArgumentError(f"bad {what} pattern {pattern!r}: {e}") from None


def _split_rule(text: str) -> tuple:
    """Splits PATTERN=VALUE at the first '=' not escaped by a backslash."""
    match = re.search(r"(?<!\\)=", text)
    if match is None:
        return text, None
    return text[: match.start()], text[match.end() :]


def parse_map(text: str) -> tuple:
    """``"PATTERN=REPLACEMENT"`` -> (compiled pattern, replacement). Write a
    literal '=' in the pattern as ``\\=``."""
    pattern, replacement = _split_rule(text)
    if replacement is None:
        raise InvalidArgumentError(f"--map rule {text!r} is not PATTERN=REPLACEMENT")
    compiled = _compile(pattern, "--map")
    try:
        compiled.sub(replacement, "")  # surfaces a bad \N group reference now
    except (re.error, IndexError) as e:
        raise InvalidArgumentError(f"bad --map replacement {replacement!r}: {e}") from None
    return compiled, replacement


def parse_transpose(text: str) -> tuple:
    """``"PATTERN"`` or ``"PATTERN=AXES"`` (e.g. ``"kernel=1,0"``) -> (pattern, axes or None).
    None means :func:`torch_layout_axes`."""
    pattern, axes_text = _split_rule(text)
    axes = None
    if axes_text is not None:
        try:
            axes = tuple(int(a) for a in axes_text.split(","))
        except ValueError:
            raise InvalidArgumentError(
                f"--transpose {text!r}: axes must be comma-separated integers"
            ) from None
    return _compile(pattern, "--transpose"), axes


@dataclasses.dataclass
class Rules:
    """What to leave out, how to rename, what to transpose."""

    exclude: list = dataclasses.field(default_factory=list)  # [re.Pattern]
    map: list = dataclasses.field(default_factory=list)  # [(re.Pattern, str)]
    transpose: list = dataclasses.field(default_factory=list)  # [(re.Pattern, axes | None)]
    exclude_dtypes: set = dataclasses.field(default_factory=set)  # {dtype name}
    root: str | None = None  # keep only keys under this object path, without it

    @classmethod
    def build(
        cls,
        *,
        map: Iterable[str] = (),
        exclude: Iterable[str] = (),
        transpose: Iterable[str] = (),
        preset: str | None = None,
        root: str | None = None,
    ) -> Rules:
        """Rules from command-line style strings; a preset's rules come first.

        Example::

            >>> rules = Rules.build(preset="tf-to-torch", root="model")
            >>> rules.rename("model/0/weight/.ATTRIBUTES/VARIABLE_VALUE")
            '0.weight'
        """
        rules = cls()
        if preset is not None:
            if preset not in PRESETS:
                raise InvalidArgumentError(
                    f"unknown preset {preset!r}: expected one of {', '.join(PRESETS)}"
                )
            p = PRESETS[preset]
            map, exclude, transpose = (
                [*p["map"], *map],
                [*p["exclude"], *exclude],
                [*p["transpose"], *transpose],
            )
            rules.exclude_dtypes = set(p.get("exclude_dtypes", ()))
        rules.exclude = [_compile(e, "--exclude") for e in exclude]
        rules.map = [parse_map(m) for m in map]
        rules.transpose = [parse_transpose(t) for t in transpose]
        if root is not None:
            rules.root = root.strip("/")
            if not rules.root:
                raise InvalidArgumentError(f"--root {root!r} names no object")
        return rules

    def under_root(self, key: str) -> bool:
        """Whether key lies under the root object (always, without a root)."""
        return self.root is None or key.startswith(self.root + "/")

    def excluded(self, key: str) -> bool:
        return not self.under_root(key) or any(p.search(key) for p in self.exclude)

    def rename(self, key: str) -> str:
        """key without the root's path, then rewritten by each map rule in order."""
        if self.root is not None and self.under_root(key):
            key = key[len(self.root) + 1 :]
        for pattern, replacement in self.map:
            key = pattern.sub(replacement, key)
        return key

    def axes(self, key: str, ndim: int) -> tuple | None:
        """The permutation for key's tensor, or None to leave it as it is."""
        for pattern, axes in self.transpose:
            if pattern.search(key):
                axes = torch_layout_axes(ndim) if axes is None else axes
                if sorted(axes) != list(range(ndim)):
                    raise InvalidArgumentError(
                        f"--transpose axes {','.join(map(str, axes))} do not fit {key!r}, which "
                        f"has {ndim} dimensions"
                    )
                return None if axes == tuple(range(ndim)) else tuple(axes)
        return None


class PlannedTensor(NamedTuple):
    """One tensor of a conversion: where it comes from, where it goes."""

    source_key: str
    key: str
    dtype: DType
    shape: tuple  # after the transpose
    axes: tuple | None
    nbytes: int


@dataclasses.dataclass
class ConversionReport:
    source: str
    source_format: str
    destination: str
    destination_format: str
    written: list = dataclasses.field(default_factory=list)  # [(source key, key)]
    skipped: list = dataclasses.field(default_factory=list)  # [(source key, reason)]
    excluded: list = dataclasses.field(default_factory=list)  # [source key]
    notes: list = dataclasses.field(default_factory=list)
    nbytes: int = 0
    plan: list = dataclasses.field(default_factory=list)  # [PlannedTensor]


def plan(
    source: Source, dst_format: str, rules: Rules, *, skip_unsupported: bool = False
) -> ConversionReport:
    """Works out what a conversion does, without writing anything."""
    report = ConversionReport(source.path, source.format, "", dst_format)
    keys = source.keys()
    if rules.root is not None and not any(rules.under_root(key) for key in keys):
        _no_key_under_root(source, rules.root, keys)
    renamed_any = False
    targets: dict = {}
    for key in keys:
        if rules.excluded(key):
            report.excluded.append(key)
            continue
        if key == OBJECT_GRAPH_KEY and dst_format != "tf":
            report.notes.append(
                "the object graph is not converted (only a TensorFlow checkpoint can hold it)"
            )
            continue
        spec = source.spec(key)
        if spec.dtype.name in rules.exclude_dtypes:
            report.excluded.append(key)
            continue
        if not sink_supports(dst_format, spec.dtype):
            if not skip_unsupported:
                raise InvalidArgumentError(
                    f"{key!r} is {spec.dtype.name}, which {dst_format} files cannot hold "
                    "(leave such tensors out with --skip-unsupported, or --exclude them)"
                )
            report.skipped.append((key, f"{dst_format} has no {spec.dtype.name} type"))
            continue
        new_key = key if key == OBJECT_GRAPH_KEY else rules.rename(key)
        if not new_key:
            raise InvalidArgumentError(f"--map turns {key!r} into an empty name")
        if new_key in targets:
            raise InvalidArgumentError(
                f"--map sends both {targets[new_key].source_key!r} and {key!r} to {new_key!r}"
            )
        axes = rules.axes(key, len(spec.shape))
        if axes is not None and spec.dtype.name == "string":
            raise InvalidArgumentError(f"cannot transpose string tensor {key!r}")
        shape = tuple(spec.shape[a] for a in axes) if axes else spec.shape
        renamed_any = renamed_any or new_key != key or axes is not None
        targets[new_key] = PlannedTensor(key, new_key, spec.dtype, shape, axes, spec.nbytes)
    if OBJECT_GRAPH_KEY in targets and (renamed_any or report.excluded):
        del targets[OBJECT_GRAPH_KEY]
        report.notes.append(
            "the object graph was dropped because keys were renamed, transposed "
            "or excluded: the result is a name-based checkpoint"
        )
    report.plan = list(targets.values())
    return report


def _no_key_under_root(source: Source, root: str, keys) -> None:
    tops = sorted({key.split("/")[0] for key in keys if key != OBJECT_GRAPH_KEY})
    raise InvalidArgumentError(
        f"--root {root!r}: no key of {source.path} is under it (its top-level names: "
        f"{', '.join(tops) or 'none'})"
    )


def convert(
    src,
    dst,
    *,
    src_format: str | None = None,
    dst_format: str | None = None,
    map: Iterable[str] = (),
    exclude: Iterable[str] = (),
    transpose: Iterable[str] = (),
    preset: str | None = None,
    root: str | None = None,
    skip_unsupported: bool = False,
    overwrite: bool = False,
    dry_run: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> ConversionReport:
    """Converts the tensors of ``src`` into a new file or checkpoint ``dst``.

    Formats: ``"tf"`` (a checkpoint prefix; a directory as a source means its
    latest checkpoint), ``"safetensors"``, ``"npz"``, ``"torch"`` (a state_dict
    saved with ``torch.save``). By default they follow from the paths
    (``.safetensors``, ``.npz``, ``.pt``/``.pth``/``.bin``; anything else is a
    TensorFlow checkpoint prefix).

    Rules (strings, as on the command line): ``exclude`` regexes leave out
    the source keys they match; ``map`` rules ``"PATTERN=REPLACEMENT"`` rewrite
    each kept key with ``re.sub``, in order; ``transpose`` entries
    ``"PATTERN"`` or ``"PATTERN=AXES"`` permute the tensors whose source key
    matches (default axes: :func:`torch_layout_axes`). ``preset`` adds a named
    rule set from :data:`PRESETS` before them. ``root`` (an object path such
    as ``"model"``) keeps only the keys under it and strips it before the map
    rules: ``model/0/weight/...`` becomes ``0/weight/...`` (``0.weight`` with
    the tf-to-torch preset).

    ``progress(done, total)`` is called after each tensor with the bytes
    written so far and the bytes to write. The
    destination appears only once complete; on error nothing is left behind.
    Raises AlreadyExistsError when ``dst`` exists and not ``overwrite``.
    """
    rules = Rules.build(map=map, exclude=exclude, transpose=transpose, preset=preset, root=root)
    dst = str(dst)
    dst_fmt = normalize_format(dst_format) if dst_format else detect_format(dst, reading=False)
    with open_source(src, src_format) as source:
        report = plan(source, dst_fmt, rules, skip_unsupported=skip_unsupported)
        report.destination = dst
        if dry_run:
            return report
        sink = open_sink(dst, dst_fmt, overwrite=overwrite)
        planned = {p.key: p for p in report.plan}
        try:
            order = sink.begin({k: (p.dtype, p.shape) for k, p in planned.items()})
            total = sum(p.nbytes for p in report.plan)
            for key in order:
                p = planned[key]
                array = source.read(p.source_key)
                if p.axes is not None:
                    array = np.asarray(np.transpose(array, p.axes), order="C")
                sink.add(key, p.dtype, array)
                report.written.append((p.source_key, key))
                report.nbytes += p.nbytes
                if progress is not None:
                    progress(report.nbytes, total)
            sink.finish()
        except BaseException:
            sink.abort()
            raise
    return report
