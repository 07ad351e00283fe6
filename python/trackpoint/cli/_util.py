"""Helpers shared by the subcommands: errors, names and JSON values."""

from __future__ import annotations

import base64
import difflib
import json
import math
import sys

import numpy as np

from ..convert import TensorSpec, open_source

__all__ = [
    "UsageError",
    "dump_json",
    "json_value",
    "open_input",
    "require_key",
    "shape_text",
    "spec_text",
]


class UsageError(Exception):
    """A mistake on the command line: printed as one line, exit status 2."""


def shape_text(shape) -> str:
    return str(list(shape))


def spec_text(spec: TensorSpec) -> str:
    """``float32[2, 3]``."""
    return f"{spec.dtype.name}{shape_text(spec.shape)}"


def num_elements(shape) -> int:
    return math.prod(shape)


def open_input(path: str, fmt: str | None = None):
    """A convert.Source for path (any format the converter reads)."""
    return open_source(path, fmt)


def require_key(source, key: str) -> None:
    """UsageError naming the closest keys when source has no such key."""
    if key in source:
        return
    close = difflib.get_close_matches(key, source.keys(), n=3, cutoff=0.5)
    if not close:
        close = [k for k in source.keys() if k.startswith(key.rstrip("/") + "/")][:3]
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    raise UsageError(f"no tensor {key!r} in {source.path}{hint}")


# ml_dtypes' integer types (numpy kind "V").
_SMALL_INTS = ("int4", "uint4", "int2", "uint2")


def _float(x: float):
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return x


def _string(b: bytes):
    try:
        return b.decode("utf-8")
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(b).decode("ascii")}


def json_value(array: np.ndarray):
    """A tensor as JSON: nested lists; floats that JSON cannot hold as "nan",
    "inf", "-inf"; complex numbers as [real, imag]; strings as text, or
    {"base64": ...} when they are not UTF-8."""
    array = np.asarray(array)
    if array.dtype == object:
        flat = [_string(bytes(x)) for x in array.reshape(-1)]
    elif array.dtype.kind == "c":
        flat = [[_float(float(z.real)), _float(float(z.imag))] for z in array.reshape(-1)]
    elif array.dtype.kind == "b":
        flat = [bool(x) for x in array.reshape(-1)]
    elif array.dtype.kind in "iu" or array.dtype.name in _SMALL_INTS:
        flat = [int(x) for x in array.astype(np.int64).reshape(-1).tolist()]
    else:  # float, including the ml_dtypes types
        flat = [_float(x) for x in array.astype(np.float64).reshape(-1).tolist()]
    return _nest(flat, array.shape)


def _nest(flat: list, shape: tuple):
    if not shape:
        return flat[0]
    if len(shape) == 1:
        return flat
    step = len(flat) // shape[0] if shape[0] else 0
    return [_nest(flat[i * step : (i + 1) * step], shape[1:]) for i in range(shape[0])]


def dump_json(obj) -> None:
    json.dump(obj, sys.stdout, ensure_ascii=False, separators=(",", ":"))
    sys.stdout.write("\n")
