"""Tensor element types, as TensorFlow numbers and names them.

A :class:`DType` pairs TensorFlow's type (the number stored in a checkpoint,
the name TensorFlow prints) with the numpy dtype its values come back as.
``bfloat16``, the float8 types and the 4- and 2-bit integer types need the
optional ``ml_dtypes`` package; without it, reading them raises a clear error.

Example::

    >>> from trackpoint import dtypes
    >>> dtypes.float32.as_numpy_dtype
    dtype('float32')
    >>> dtypes.as_dtype("bfloat16").enum
    14
"""

from __future__ import annotations

import builtins

import numpy as np

from .errors import InvalidArgumentError, UnimplementedError

__all__ = ["DType", "as_dtype"]

# torch dtypes numpy holds only through ml_dtypes, by name -> the integer type
# of the same width their bits cross the torch/numpy boundary as (a view, no
# conversion). The one table: adapters, distributed and convert read it.
TORCH_BIT_VIEWS = {
    "bfloat16": "int16",
    "float8_e4m3fn": "uint8",
    "float8_e5m2": "uint8",
    "float8_e4m3fnuz": "uint8",
    "float8_e5m2fnuz": "uint8",
}

# enum value -> (TensorFlow name, numpy dtype name, where numpy finds it).
# Quantized types come back as their plain integer type, as TensorFlow's
# reader returns them.
_TYPES = {
    1: ("float32", "float32"),
    2: ("float64", "float64"),
    3: ("int32", "int32"),
    4: ("uint8", "uint8"),
    5: ("int16", "int16"),
    6: ("int8", "int8"),
    7: ("string", "object"),
    8: ("complex64", "complex64"),
    9: ("int64", "int64"),
    10: ("bool", "bool"),
    11: ("qint8", "int8"),
    12: ("quint8", "uint8"),
    13: ("qint32", "int32"),
    14: ("bfloat16", "ml_dtypes.bfloat16"),
    15: ("qint16", "int16"),
    16: ("quint16", "uint16"),
    17: ("uint16", "uint16"),
    18: ("complex128", "complex128"),
    19: ("float16", "float16"),
    20: ("resource", None),
    21: ("variant", None),
    22: ("uint32", "uint32"),
    23: ("uint64", "uint64"),
    24: ("float8_e5m2", "ml_dtypes.float8_e5m2"),
    25: ("float8_e4m3fn", "ml_dtypes.float8_e4m3fn"),
    26: ("float8_e4m3fnuz", "ml_dtypes.float8_e4m3fnuz"),
    27: ("float8_e4m3b11fnuz", "ml_dtypes.float8_e4m3b11fnuz"),
    28: ("float8_e5m2fnuz", "ml_dtypes.float8_e5m2fnuz"),
    29: ("int4", "ml_dtypes.int4"),
    30: ("uint4", "ml_dtypes.uint4"),
    31: ("int2", "ml_dtypes.int2"),
    32: ("uint2", "ml_dtypes.uint2"),
    33: ("float4_e2m1fn", "ml_dtypes.float4_e2m1fn"),
}


def _numpy_dtype(spec: str | None, tf_name: str) -> np.dtype:
    if spec is None:
        raise UnimplementedError(f"{tf_name} tensors have no numpy equivalent")
    if not spec.startswith("ml_dtypes."):
        return np.dtype(spec)
    try:
        import ml_dtypes
    except ImportError:
        raise UnimplementedError(
            f"{tf_name} tensors need the ml_dtypes package: pip install ml_dtypes"
        ) from None
    return np.dtype(getattr(ml_dtypes, spec.split(".", 1)[1]))


_NUMPY_OF: dict = {}  # enum -> numpy dtype, filled on first use


class DType:
    """A TensorFlow element type.

    Compares equal to another DType of the same type, to its TensorFlow name
    (``dtypes.float32 == "float32"``) and, for non-quantized types, to its
    numpy dtype (``dtypes.float32 == np.float32``).
    """

    __slots__ = ("enum", "name")

    def __init__(self, enum: int):
        if enum not in _TYPES:
            raise InvalidArgumentError(f"unknown TensorFlow dtype number {enum}")
        self.enum = enum
        self.name = _TYPES[enum][0]

    @property
    def as_numpy_dtype(self) -> np.dtype:
        """The numpy dtype of this type's values (object for strings)."""
        cached = _NUMPY_OF.get(self.enum)
        if cached is None:
            cached = _NUMPY_OF[self.enum] = _numpy_dtype(_TYPES[self.enum][1], self.name)
        return cached

    @property
    def is_quantized(self) -> bool:
        return self.name.startswith(("qint", "quint"))

    @property
    def size(self) -> int:
        """Bytes per element in a checkpoint; 0 for strings, resources and
        variants. Needs no ml_dtypes (bfloat16 is 2, the 8-, 4- and 2-bit
        types 1 byte per element).

        Example::

            >>> as_dtype("bfloat16").size, as_dtype("float8_e4m3fn").size, as_dtype("string").size
            (2, 1, 0)
        """
        if self.enum in (7, 20, 21):
            return 0
        if self.name == "bfloat16":
            return 2
        if self.name.startswith(("float8", "float4", "int4", "uint4", "int2", "uint2")):
            return 1
        return self.as_numpy_dtype.itemsize

    def __eq__(self, other: object) -> bool:
        if isinstance(other, DType):
            return self.enum == other.enum
        if isinstance(other, str):
            return self.name == other
        if self.is_quantized or self.enum in (7, 20, 21):
            return False
        try:
            return self.as_numpy_dtype == np.dtype(other)
        except (TypeError, UnimplementedError):
            return False

    def __hash__(self) -> int:
        return hash(self.enum)

    def __repr__(self) -> str:
        return f"trackpoint.dtypes.{self.name}"


_BY_NAME = {name: DType(enum) for enum, (name, _) in _TYPES.items()}
_BY_NAME["half"] = _BY_NAME["float16"]
_BY_NAME["double"] = _BY_NAME["float64"]
_BY_ENUM = {dt.enum: dt for dt in _BY_NAME.values()}
# Module attributes dtypes.float32, dtypes.bool, ... (set last: "bool" then
# shadows the builtin in this module, hence builtins.bool below).
globals().update(_BY_NAME)


def as_dtype(value) -> DType:
    """The DType for a DType, a TensorFlow name or enum number, or a numpy dtype.

    numpy's unicode and bytes dtypes, and object arrays, map to ``string``.
    """
    if isinstance(value, DType):
        return value
    if isinstance(value, np.dtype) and value in _BY_NUMPY:
        return _BY_NUMPY[value]
    if isinstance(value, str) and value in _BY_NAME:
        return _BY_NAME[value]
    if isinstance(value, int) and not isinstance(value, builtins.bool):
        return _BY_ENUM[value] if value in _BY_ENUM else DType(value)
    try:
        np_dtype = np.dtype(value)
    except TypeError:
        raise InvalidArgumentError(f"cannot interpret {value!r} as a dtype") from None
    found = _BY_NUMPY.get(np_dtype)
    if found is None:
        if np_dtype.kind in "OSU":
            found = _BY_NAME["string"]
        elif np_dtype.name in _BY_NAME and not _BY_NAME[np_dtype.name].is_quantized:
            found = _BY_NAME[np_dtype.name]
        else:
            raise InvalidArgumentError(f"numpy dtype {np_dtype} has no TensorFlow equivalent")
        _BY_NUMPY[np_dtype] = found
    return found


# numpy dtype -> DType, filled as types are met (numpy's dtype names are slow).
_BY_NUMPY: dict = {}
