"""The safetensors file format, read and written directly (streaming, no
safetensors package needed, every dtype the format has).

Layout, all integers little-endian::

    header_size: u64
    header:      header_size bytes of UTF-8 JSON, padded with spaces to a
                 multiple of 8:
                   {"__metadata__": {"<str>": "<str>", ...},          (optional)
                    "<name>": {"dtype": "F32", "shape": [2, 3],
                               "data_offsets": [begin, end]}, ...}
    data:        every tensor's bytes, row-major; offsets count from the start
                 of data, and the tensors tile it without gaps or overlaps

The writer orders tensors by element size (largest first), then by name, so
that each starts at a multiple of its element size.
"""

from __future__ import annotations

import json
import os
import struct
import sys
import uuid

import numpy as np

from ..dtypes import DType, as_dtype
from ..errors import DataLossError, InvalidArgumentError, UnimplementedError

__all__ = ["CODES", "Writer", "code_for", "read_header"]

# safetensors dtype code -> TensorFlow dtype name.
CODES = {
    "BOOL": "bool",
    "U8": "uint8",
    "I8": "int8",
    "U16": "uint16",
    "I16": "int16",
    "F16": "float16",
    "BF16": "bfloat16",
    "U32": "uint32",
    "I32": "int32",
    "F32": "float32",
    "U64": "uint64",
    "I64": "int64",
    "F64": "float64",
    "C64": "complex64",
    "F8_E5M2": "float8_e5m2",
    "F8_E4M3": "float8_e4m3fn",
    "F8_E4M3FNUZ": "float8_e4m3fnuz",
    "F8_E5M2FNUZ": "float8_e5m2fnuz",
}
_BY_NAME = {name: code for code, name in CODES.items()}
# Quantized TensorFlow types keep their values as the plain integer type.
_BY_NAME.update(qint8="I8", quint8="U8", qint16="I16", quint16="U16", qint32="I32")

# A header larger than this is not a real one (the reference reader's limit).
MAX_HEADER_SIZE = 100_000_000


def code_for(dtype: DType) -> str | None:
    """The safetensors code for a dtype, or None when the format has none."""
    return _BY_NAME.get(dtype.name)


def read_header(f, file_size: int, name: str) -> tuple[dict, dict, int]:
    """Parses and checks the header of an open safetensors file.

    Returns ``({key: (dtype, shape, begin, end)}, metadata, data_start)`` with
    begin/end absolute file offsets. Raises DataLossError for a malformed
    file and UnimplementedError for a dtype trackpoint cannot represent.
    """
    if file_size < 8:
        raise DataLossError(f"{name} is not a safetensors file: {file_size} bytes")
    (size,) = struct.unpack("<Q", f.read(8))
    if size > MAX_HEADER_SIZE or 8 + size > file_size:
        raise DataLossError(f"{name}: header size {size} does not fit the file ({file_size} bytes)")
    try:
        header = json.loads(f.read(size).decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise DataLossError(f"{name}: header is not valid JSON ({e})") from None
    if not isinstance(header, dict):
        raise DataLossError(f"{name}: header is not a JSON object")
    metadata = header.pop("__metadata__", None) or {}
    data_start = 8 + size
    data_len = file_size - data_start
    entries = {}
    for key, info in header.items():
        what = f"{name}: tensor {key!r}"
        if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
            raise DataLossError(f"{what}: expected dtype, shape and data_offsets")
        code, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
        if code not in CODES:
            raise UnimplementedError(
                f"{what} has safetensors dtype {code!r}, which trackpoint does not support"
            )
        if not isinstance(shape, list) or not all(
            isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
        ):
            raise DataLossError(f"{what}: bad shape {shape!r}")
        if (
            not isinstance(offsets, list)
            or len(offsets) != 2
            or not all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)
            or not 0 <= offsets[0] <= offsets[1] <= data_len
        ):
            raise DataLossError(
                f"{what}: data_offsets {offsets!r} outside the data ({data_len} bytes)"
            )
        dtype = as_dtype(CODES[code])
        expected = int(np.prod(shape, dtype=object)) * dtype.size
        if offsets[1] - offsets[0] != expected:
            raise DataLossError(
                f"{what}: {offsets[1] - offsets[0]} bytes for "
                f"{dtype.name}{shape} ({expected} expected)"
            )
        entries[key] = (dtype, tuple(shape), data_start + offsets[0], data_start + offsets[1])
    return entries, metadata, data_start


class Writer:
    """Writes one safetensors file, tensor by tensor, in the order ``order``.

    The header is written first, from ``specs`` ({key: (dtype, shape)}); then
    each :meth:`write` appends one tensor's bytes. The file is written under a
    temporary name and renamed into place by :meth:`finish`.
    """

    def __init__(self, path: str, specs: dict, metadata: dict | None = None):
        self.path = path
        self.order = sorted(specs, key=lambda k: (-specs[k][0].size, k))
        header: dict = {}
        if metadata:
            header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
        offset = 0
        self._sizes = {}
        for key in self.order:
            dtype, shape = specs[key]
            code = code_for(dtype)
            if code is None:
                raise InvalidArgumentError(f"safetensors has no {dtype.name} type (tensor {key!r})")
            nbytes = int(np.prod(shape, dtype=object)) * dtype.size
            header[key] = {
                "dtype": code,
                "shape": list(shape),
                "data_offsets": [offset, offset + nbytes],
            }
            self._sizes[key] = nbytes
            offset += nbytes
        text = json.dumps(header, separators=(",", ":")).encode("utf-8")
        text += b" " * (-len(text) % 8)
        self._next = 0
        self._temp = f"{path}.tmp-{uuid.uuid4().hex[:12]}"
        self._file = open(self._temp, "wb")
        try:
            self._file.write(struct.pack("<Q", len(text)) + text)
        except BaseException:
            self.abort()
            raise

    def write(self, key: str, array: np.ndarray) -> None:
        if self._next >= len(self.order) or self.order[self._next] != key:
            raise InvalidArgumentError(f"safetensors writer: {key!r} out of order")
        data = np.asarray(array, order="C")
        if data.dtype.byteorder == ">" or (data.dtype.byteorder == "=" and sys.byteorder == "big"):
            data = data.astype(data.dtype.newbyteorder("<"))
        raw = memoryview(data.reshape(-1).view(np.uint8))
        if raw.nbytes != self._sizes[key]:
            raise InvalidArgumentError(
                f"tensor {key!r}: {raw.nbytes} bytes, header says {self._sizes[key]}"
            )
        self._file.write(raw)
        self._next += 1

    def finish(self) -> None:
        if self._next != len(self.order):
            missing = self.order[self._next]
            self.abort()
            raise InvalidArgumentError(f"safetensors writer: tensor {missing!r} never written")
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        os.replace(self._temp, self.path)

    def abort(self) -> None:
        if not self._file.closed:
            self._file.close()
        if os.path.exists(self._temp):
            os.remove(self._temp)
