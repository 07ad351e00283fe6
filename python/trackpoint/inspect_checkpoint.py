"""TensorFlow's ``inspect_checkpoint`` tool, without TensorFlow.

:func:`print_tensors_in_checkpoint_file` prints what
``tensorflow.python.tools.inspect_checkpoint`` prints, line for line: the
``"tensor: NAME (DTYPE) SHAPE"`` headers, the values as numpy prints them,
the debug listing (``NAME (DT_FLOAT) [2,3]``) and the parameter count.

Example::

    from trackpoint.inspect_checkpoint import print_tensors_in_checkpoint_file

    print_tensors_in_checkpoint_file("/tmp/run/ckpt-3", None, all_tensors=True)
    # tensor: model/w/.ATTRIBUTES/VARIABLE_VALUE (float32) [2, 3]
    # [[0. 1. 2.]
    #  [3. 4. 5.]]
    # ...
    # # Total number of params: 7
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Callable

from .errors import CheckpointError, DataLossError, NotFoundError, UnimplementedError
from .reader import load_checkpoint

__all__ = ["print_tensors_in_checkpoint_file"]

# TensorFlow's enum names where they are not "DT_" + the upper-cased name.
_ENUM_NAMES = {"float32": "DT_FLOAT", "float64": "DT_DOUBLE", "float16": "DT_HALF"}


def _enum_name(dtype_name: str) -> str:
    return _ENUM_NAMES.get(dtype_name, "DT_" + dtype_name.upper())


def _header(key: str, dtype_name: str, shape) -> str:
    return f"tensor: {key} ({dtype_name}) {list(shape)}"


def _value_text(get: Callable[[str], object], key: str) -> str:
    try:
        value = get(key)
    except UnimplementedError:  # e.g. bfloat16 without ml_dtypes
        return "<not convertible to a numpy dtype>"
    if getattr(value, "ndim", None) == 0:
        value = value[()]
    return str(value)


def print_tensors(
    entries: Iterable[tuple],
    get: Callable[[str], object],
    *,
    values: bool = True,
    count_exclude_pattern: str = "",
) -> None:
    """Prints ``tensor: KEY (DTYPE) SHAPE`` (and, with ``values``, the value)
    for each ``(key, dtype name, shape)`` in entries, sorted by key, then the
    parameter count. ``get(key)`` returns a value as a numpy array."""
    entries = sorted(entries)
    for key, dtype_name, shape in entries:
        print(_header(key, dtype_name, shape))
        if values:
            print(_value_text(get, key))
    _print_param_count(entries, count_exclude_pattern)


def _print_param_count(entries: list, count_exclude_pattern: str) -> None:
    counted = entries
    if count_exclude_pattern:
        pattern = re.compile(count_exclude_pattern)
        excluded = [e for e in entries if pattern.search(e[0])]
        counted = [e for e in entries if not pattern.search(e[0])]
        excluded_params = sum(math.prod(e[2]) for e in excluded)
        print(
            f"# Excluding {len(excluded)} tensors ({excluded_params} params) that match "
            f"{count_exclude_pattern} when counting."
        )
    print(f"# Total number of params: {sum(math.prod(e[2]) for e in counted)}")


def print_tensors_in_checkpoint_file(
    file_name, tensor_name, all_tensors, all_tensor_names=False, count_exclude_pattern=""
):
    """Prints tensors of a checkpoint as TensorFlow's function of this name does.

    Args:
        file_name: the checkpoint prefix (a directory also works: its latest
            checkpoint).
        tensor_name: the key of one tensor to print, or None/"".
        all_tensors: print every tensor's name, dtype, shape and value.
        all_tensor_names: print every tensor's name, dtype and shape.
        count_exclude_pattern: a regex; matching keys are left out of the
            parameter count.

    With neither flag nor a tensor name it prints the debug listing (one
    ``KEY (DT_TYPE) [d0,d1]`` line per key). Like TensorFlow's, it prints
    errors (a missing checkpoint, a missing tensor) instead of raising them.
    """
    try:
        reader = load_checkpoint(file_name)
        shapes = reader.get_variable_to_shape_map()
        dtypes = reader.get_variable_to_dtype_map()
        entries = [(key, dtypes[key].name, shapes[key]) for key in shapes]
        if all_tensors or all_tensor_names:
            print_tensors(
                entries,
                reader.get_tensor,
                values=bool(all_tensors),
                count_exclude_pattern=count_exclude_pattern,
            )
            return
        if not tensor_name:
            lines = [
                f"{key} ({_enum_name(dtypes[key].name)}) [{','.join(map(str, shapes[key]))}]"
                for key in reader.keys()
            ]
            print("".join(line + "\n" for line in lines))
        elif not reader.has_tensor(tensor_name):
            print(f"Tensor {tensor_name} not found in checkpoint")
            return
        else:
            print(_header(tensor_name, dtypes[tensor_name].name, shapes[tensor_name]))
            print(_value_text(reader.get_tensor, tensor_name))
        _print_param_count(sorted(entries), count_exclude_pattern)
    except (CheckpointError, OSError, ValueError) as e:
        print(str(e))
        name = str(file_name)
        if isinstance(e, (DataLossError, NotFoundError)) and any(
            ext in name for ext in (".index", ".meta", ".data")
        ):
            prefix = name.rsplit(".", 1)[0]
            print(
                f"({name} looks like one file of a checkpoint: pass the checkpoint's "
                f"prefix instead, e.g. {prefix})"
            )
