"""The containers the converter reads (sources): TensorFlow checkpoints,
safetensors, ``.npz`` and PyTorch state_dict files, and how a path's format
is found.

A source lists keys, gives each key's dtype and shape without reading its
data, and reads one tensor at a time as a numpy array (bfloat16 and float8
as ml_dtypes arrays, strings as object arrays of bytes).
"""

from __future__ import annotations

import os
import zipfile
from typing import NamedTuple

import numpy as np

from .._restore import OBJECT_GRAPH_KEY
from ..bundle import BundleReader
from ..dtypes import TORCH_BIT_VIEWS, DType, as_dtype
from ..errors import DataLossError, InvalidArgumentError, NotFoundError, UnimplementedError
from ..state_file import latest_checkpoint
from . import _safetensors

__all__ = [
    "FORMATS",
    "CheckpointSource",
    "Source",
    "TensorSpec",
    "detect_format",
    "normalize_format",
    "open_source",
]

FORMATS = ("tf", "safetensors", "npz", "torch")
_ALIASES = {"checkpoint": "tf", "tensorflow": "tf", "pt": "torch", "pytorch": "torch"}
_EXTENSIONS = {
    ".safetensors": "safetensors",
    ".npz": "npz",
    ".pt": "torch",
    ".pth": "torch",
    ".bin": "torch",
}



class TensorSpec(NamedTuple):
    """A tensor's type and shape, and the bytes its data takes in the source."""

    dtype: DType
    shape: tuple
    nbytes: int


def _num_elements(shape) -> int:
    return int(np.prod(shape, dtype=object))


# ---- finding the format --------------------------------------------------------------------


def _checkpoint_prefix(path: str) -> str | None:
    """The TensorFlow checkpoint prefix a path names, or None if it names none."""
    if os.path.isdir(path):
        return latest_checkpoint(path)
    if os.path.exists(path + ".index"):
        return path
    if path.endswith(".index") and os.path.isfile(path):
        return path[: -len(".index")]
    base, dot, _ = path.rpartition(".data-")
    if dot and os.path.isfile(path) and os.path.exists(base + ".index"):
        return base
    return None


_TABLE_MAGIC = (0xDB4775248B80FB57).to_bytes(8, "little")


def _sniff(path: str) -> str | None:
    """The format of an existing file, from its first bytes."""
    try:
        with open(path, "rb") as f:
            head = f.read(16)
            if head[:2] == b"PK":
                names = zipfile.ZipFile(f).namelist()
                if any(n.endswith("data.pkl") for n in names):
                    return "torch"
                if names and all(n.endswith(".npy") for n in names):
                    return "npz"
                return None
            if len(head) >= 9 and head[8:9] == b"{":
                return "safetensors"
            # A TF1 V1-format checkpoint is one sorted-table file: its last
            # 8 bytes are the table magic number.
            f.seek(0, os.SEEK_END)
            if f.tell() >= 48:
                f.seek(-8, os.SEEK_END)
                if f.read(8) == _TABLE_MAGIC:
                    return "tf"
    except (OSError, zipfile.BadZipFile):
        return None
    return None


def normalize_format(name: str) -> str:
    fmt = _ALIASES.get(name.lower(), name.lower())
    if fmt not in FORMATS:
        raise InvalidArgumentError(f"unknown format {name!r}: expected one of {', '.join(FORMATS)}")
    return fmt


def detect_format(path: str, *, reading: bool) -> str:
    """The format of a path: by extension, then (for a file to read) by its bytes;
    anything else is a TensorFlow checkpoint prefix."""
    ext = os.path.splitext(path)[1].lower()
    if ext in _EXTENSIONS:
        return _EXTENSIONS[ext]
    if reading and _checkpoint_prefix(path) is None and os.path.isfile(path):
        sniffed = _sniff(path)
        if sniffed is None:
            raise InvalidArgumentError(f"cannot tell the format of {path}; name it with --from")
        return sniffed
    return "tf"


# ---- sources --------------------------------------------------------------------------------


class Source:
    """A container of named tensors, read one at a time."""

    format = ""

    def __init__(self, path: str):
        self.path = path

    def keys(self) -> list:
        raise NotImplementedError

    def spec(self, key: str) -> TensorSpec:
        raise NotImplementedError

    def read(self, key: str) -> np.ndarray:
        raise NotImplementedError

    def __contains__(self, key: str) -> bool:
        return key in set(self.keys())

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class CheckpointSource(Source):
    """A TensorFlow checkpoint: a prefix, an ``.index``/``.data`` file, or a
    directory (its latest checkpoint)."""

    format = "tf"

    def __init__(self, path: str):
        super().__init__(path)
        prefix = _checkpoint_prefix(path)
        if prefix is None and os.path.isdir(path):
            raise NotFoundError(
                f"no checkpoint in directory {path} (no 'checkpoint' state file naming one)"
            )
        self.reader = BundleReader(prefix or path)
        self.path = self.reader.prefix

    def keys(self) -> list:
        return self.reader.keys()

    def __contains__(self, key: str) -> bool:
        return key in self.reader

    def spec(self, key: str) -> TensorSpec:
        entry = self.reader.entry(key)
        size = entry.dtype.size
        nbytes = _num_elements(entry.shape) * size if size else entry.size
        return TensorSpec(entry.dtype, tuple(entry.shape), nbytes)

    def read(self, key: str) -> np.ndarray:
        return self.reader.read(key)


class SafetensorsSource(Source):
    format = "safetensors"

    def __init__(self, path: str):
        super().__init__(path)
        try:
            self._file = open(path, "rb")
        except FileNotFoundError:
            raise NotFoundError(f"{path} does not exist") from None
        try:
            size = os.fstat(self._file.fileno()).st_size
            self._entries, self.metadata, _ = _safetensors.read_header(self._file, size, path)
        except BaseException:
            self._file.close()
            raise

    def keys(self) -> list:
        return sorted(self._entries)

    def __contains__(self, key: str) -> bool:
        return key in self._entries

    def spec(self, key: str) -> TensorSpec:
        dtype, shape, begin, end = self._lookup(key)
        return TensorSpec(dtype, shape, end - begin)

    def _lookup(self, key: str):
        if key not in self._entries:
            raise NotFoundError(f"key {key!r} not found in {self.path}")
        return self._entries[key]

    def read(self, key: str) -> np.ndarray:
        dtype, shape, begin, end = self._lookup(key)
        out = np.empty(shape, dtype=dtype.as_numpy_dtype)
        self._file.seek(begin)
        view = memoryview(out.reshape(-1).view(np.uint8))
        if self._file.readinto(view) != end - begin:
            raise DataLossError(f"{self.path} is truncated (tensor {key!r})")
        return out

    def close(self) -> None:
        self._file.close()


class NpzSource(Source):
    format = "npz"

    def __init__(self, path: str):
        super().__init__(path)
        if not os.path.exists(path):
            raise NotFoundError(f"{path} does not exist")
        try:
            self._npz = np.load(path, allow_pickle=False)
        except (ValueError, OSError, zipfile.BadZipFile) as e:
            raise InvalidArgumentError(f"{path} is not a readable .npz file ({e})") from None
        if not isinstance(self._npz, np.lib.npyio.NpzFile):
            raise InvalidArgumentError(f"{path} is a single .npy array, not an .npz archive")
        self._specs = {}
        members = set(self._npz.zip.namelist())
        for key in self._npz.files:
            with self._npz.zip.open(key + ".npy" if key + ".npy" in members else key) as f:
                version = np.lib.format.read_magic(f)
                read = (
                    np.lib.format.read_array_header_1_0
                    if version == (1, 0)
                    else np.lib.format.read_array_header_2_0
                )
                shape, _, dtype = read(f)
            self._specs[key] = (shape, dtype)

    def keys(self) -> list:
        return sorted(self._specs)

    def __contains__(self, key: str) -> bool:
        return key in self._specs

    def spec(self, key: str) -> TensorSpec:
        if key not in self._specs:
            raise NotFoundError(f"key {key!r} not found in {self.path}")
        shape, dtype = self._specs[key]
        if dtype.kind in "OV" or dtype.hasobject:
            raise UnimplementedError(
                f"{self.path}: array {key!r} has numpy dtype {dtype}, which "
                "trackpoint cannot convert"
            )
        tf_dtype = as_dtype(dtype)
        nbytes = _num_elements(shape) * dtype.itemsize
        return TensorSpec(tf_dtype, tuple(shape), nbytes)

    def read(self, key: str) -> np.ndarray:
        self.spec(key)
        array = self._npz[key]
        if array.dtype.kind in "SU":
            flat = [
                x.encode("utf-8") if isinstance(x, str) else bytes(x)
                for x in array.reshape(-1).tolist()
            ]
            out = np.empty(len(flat), dtype=object)
            out[:] = flat
            return out.reshape(array.shape)
        return array

    def close(self) -> None:
        self._npz.close()


# TensorFlow dtype name -> torch dtype name; the quantized types keep their
# values in the plain integer type.
TORCH = {
    name: name
    for name in (
        "bool",
        "uint8",
        "int8",
        "int16",
        "int32",
        "int64",
        "uint16",
        "uint32",
        "uint64",
        "float16",
        "bfloat16",
        "float32",
        "float64",
        "complex64",
        "complex128",
        "float8_e5m2",
        "float8_e4m3fn",
        "float8_e4m3fnuz",
        "float8_e5m2fnuz",
    )
}
TORCH.update(qint8="int8", quint8="uint8", qint16="int16", quint16="uint16", qint32="int32")


def import_torch():
    try:
        import torch
    except ImportError:
        raise UnimplementedError("PyTorch files need torch: pip install torch") from None
    return torch


class TorchSource(Source):
    """A ``torch.save``d state_dict (nested dicts are flattened with '.'),
    loaded with ``weights_only=True``: no arbitrary unpickling."""

    format = "torch"

    def __init__(self, path: str):
        super().__init__(path)
        torch = import_torch()
        if not os.path.exists(path):
            raise NotFoundError(f"{path} does not exist")
        try:
            try:
                obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
            except RuntimeError:  # the old (non-zip) format cannot be mmapped
                obj = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # torch raises many types for foreign or hostile files
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise InvalidArgumentError(
                f"cannot load {path} as a PyTorch state_dict with weights_only=True: {first}"
            ) from None
        if not isinstance(obj, dict):
            raise InvalidArgumentError(f"{path} holds a {type(obj).__name__}, not a state_dict")
        self._tensors: dict = {}
        self.ignored: list = []
        self._flatten(torch, obj, "")

    def _flatten(self, torch, obj, prefix: str) -> None:
        if isinstance(obj, torch.Tensor):
            self._tensors[prefix] = obj
        elif isinstance(obj, dict):
            for k, v in obj.items():
                self._flatten(torch, v, f"{prefix}.{k}" if prefix else str(k))
        elif isinstance(obj, (list, tuple)):
            for i, v in enumerate(obj):
                self._flatten(torch, v, f"{prefix}.{i}" if prefix else str(i))
        else:
            self.ignored.append(prefix)

    def keys(self) -> list:
        return sorted(self._tensors)

    def __contains__(self, key: str) -> bool:
        return key in self._tensors

    def _tensor(self, key: str):
        if key not in self._tensors:
            raise NotFoundError(f"key {key!r} not found in {self.path}")
        t = self._tensors[key]
        if t.layout != import_torch().strided or t.is_quantized:
            raise UnimplementedError(f"{self.path}: tensor {key!r} is sparse or quantized")
        return t

    def spec(self, key: str) -> TensorSpec:
        t = self._tensor(key)
        name = str(t.dtype).replace("torch.", "")
        if name not in TORCH or TORCH[name] != name:
            raise UnimplementedError(
                f"{self.path}: tensor {key!r} has torch dtype {name}, which "
                "trackpoint cannot convert"
            )
        return TensorSpec(as_dtype(name), tuple(t.shape), t.numel() * t.element_size())

    def read(self, key: str) -> np.ndarray:
        torch = import_torch()
        dtype = self.spec(key).dtype
        t = self._tensor(key).detach().cpu().contiguous()
        if dtype.name in TORCH_BIT_VIEWS:
            bits = t.view(getattr(torch, TORCH_BIT_VIEWS[dtype.name])).numpy()
            return bits.view(dtype.as_numpy_dtype)
        return t.numpy()


def open_source(path: str, fmt: str | None = None) -> Source:
    """A source for path, in the given format or the one ``detect_format`` finds."""
    path = os.fspath(path)
    fmt = normalize_format(fmt) if fmt else detect_format(path, reading=True)
    return {
        "tf": CheckpointSource,
        "safetensors": SafetensorsSource,
        "npz": NpzSource,
        "torch": TorchSource,
    }[fmt](path)
