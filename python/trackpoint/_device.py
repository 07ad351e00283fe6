"""Tensors in accelerator memory, as the bundle layer sees them.

A :class:`DeviceBuffer` names a tensor's bytes on a device: an address, a
byte count, the device, and the tensor's dtype and shape. A save stages those
bytes to the host in chunks through a pool of pinned buffers, checksumming
and writing each chunk while the next one is copied; a restore reads each
chunk from the data file into a pinned buffer and copies it to the device
while the next one is read, verifying the CRC32C at the end
(``cpp/src/staging``). Each device gets one pool, 4 x 16 MiB of pinned memory,
the first time one of its tensors is staged.

Kind ``"cuda"`` uses the CUDA runtime, loaded when first needed; without one
the save or restore raises :class:`~trackpoint.errors.UnavailableError`
naming the tensor and the reason (``trackpoint._core.cuda_unavailable_reason()``).
Kind ``"fake"`` takes a host address as device memory, so that the staging
path is tested on machines without a GPU.

``trackpoint.bundle.DeviceBuffer`` is the public name. Framework adapters
make these: torch CUDA tensors (:mod:`trackpoint.adapters.torch`), DLPack
arrays on a CUDA device (:mod:`trackpoint.adapters.dlpack`). A trackable may
return one from ``_serialize_to_tensors`` and from ``_restore_buffers``.

Example, a "device" that is host memory::

    host = np.arange(6, dtype=np.float32)
    buf = DeviceBuffer(host.ctypes.data, host.nbytes, "float32", (2, 3),
                       kind="fake", keepalive=host)
    np.asarray(buf)          # staged copy: [[0, 1, 2], [3, 4, 5]]
"""

from __future__ import annotations

import numpy as np

from . import _core
from .dtypes import DType, as_dtype
from .errors import InvalidArgumentError

__all__ = ["DeviceBuffer", "StagedTensor"]

KINDS = ("cuda", "fake")


class DeviceBuffer:
    """A tensor's bytes in device memory, C-contiguous, row-major.

    Args:
        ptr: the device address of the first byte.
        nbytes: the tensor's size in bytes (elements times element size).
        dtype: the tensor's dtype (a DType, TensorFlow name or numpy dtype).
        shape: the tensor's shape.
        kind: ``"cuda"`` or ``"fake"`` (host memory posing as a device).
        index: the device number.
        keepalive: an object that owns the memory, held as long as this is.

    The memory must stay allocated, and (for a save) unchanged, until the
    save or restore that uses it returns; work still queued on the device
    that writes it must have finished (the adapters synchronize first).
    """

    __slots__ = ("dtype", "index", "keepalive", "kind", "nbytes", "ptr", "shape")

    def __init__(self, ptr: int, nbytes: int, dtype, shape, *, kind: str = "cuda",
                 index: int = 0, keepalive=None):
        if kind not in KINDS:
            raise InvalidArgumentError(f"unknown device kind {kind!r} (expected one of {KINDS})")
        if int(nbytes) < 0 or (int(ptr) == 0 and int(nbytes) > 0):
            raise InvalidArgumentError(f"bad device buffer: {nbytes} bytes at address {ptr:#x}")
        self.ptr = int(ptr)
        self.nbytes = int(nbytes)
        self.dtype: DType = as_dtype(dtype)
        self.shape = tuple(int(d) for d in shape)
        self.kind = kind
        self.index = int(index)
        self.keepalive = keepalive

    @property
    def device(self) -> str:
        """``"cuda:0"``, ``"fake:0"``."""
        return f"{self.kind}:{self.index}"

    def _batch_data(self) -> tuple:
        """How ``_core`` takes a device tensor: (ptr, nbytes, kind, index)."""
        return (self.ptr, self.nbytes, self.kind, self.index)

    def copy_to_host(self, out: np.ndarray | None = None) -> np.ndarray:
        """The bytes, staged into ``out`` (a flat uint8 array of ``nbytes``)
        or a new one, which is returned."""
        if out is None:
            out = np.empty(self.nbytes, dtype=np.uint8)
        if out.dtype != np.uint8 or out.shape != (self.nbytes,) or not out.flags.c_contiguous:
            raise InvalidArgumentError(
                f"staging {self.nbytes} bytes from {self.device} needs a flat uint8 array of "
                f"that size, got {out.dtype}{list(out.shape)}"
            )
        _core.device_to_host(self.kind, self.index, self.ptr, out)
        return out

    def copy_from_host(self, data: np.ndarray) -> None:
        """Stages the C-contiguous array ``data`` (``nbytes`` bytes) into this memory."""
        flat = np.ascontiguousarray(data).reshape(-1).view(np.uint8)
        if flat.size != self.nbytes:
            raise InvalidArgumentError(
                f"{flat.size} bytes given for a device buffer of {self.nbytes} on {self.device}"
            )
        _core.host_to_device(self.kind, self.index, self.ptr, flat)

    def __array__(self, dtype=None, copy=None):
        array = self.copy_to_host().view(self.dtype.as_numpy_dtype).reshape(self.shape)
        return array if dtype is None else array.astype(dtype)

    def __repr__(self) -> str:
        return (f"<DeviceBuffer {self.dtype.name}{list(self.shape)} on {self.device} "
                f"at {self.ptr:#x}>")


class StagedTensor:
    """A device tensor's bytes staged to the host (an async save's snapshot):
    a flat uint8 array with the tensor's dtype and shape, written as is, so
    bfloat16 and float8 need no numpy type."""

    __slots__ = ("data", "dtype", "shape")

    def __init__(self, data: np.ndarray, dtype, shape):
        self.data = data
        self.dtype: DType = as_dtype(dtype)
        self.shape = tuple(shape)

    def _batch_data(self) -> np.ndarray:
        return self.data

    def __array__(self, dtype=None, copy=None):
        array = self.data.view(self.dtype.as_numpy_dtype).reshape(self.shape)
        return array if dtype is None else array.astype(dtype)


def stage(buffer: DeviceBuffer, pooled: np.ndarray | None = None) -> StagedTensor:
    """A host snapshot of buffer, in ``pooled`` when it is a flat uint8 array
    of the right size (else a new one)."""
    if pooled is None or pooled.dtype != np.uint8 or pooled.shape != (buffer.nbytes,):
        pooled = np.empty(buffer.nbytes, dtype=np.uint8)
    return StagedTensor(buffer.copy_to_host(pooled), buffer.dtype, buffer.shape)


def checked_dtype(key: str, value, dtype) -> DType:
    """The dtype to store a DeviceBuffer or StagedTensor under: its own
    (device bytes are not converted)."""
    if dtype is not None and as_dtype(dtype) != value.dtype:
        raise InvalidArgumentError(
            f"cannot save {key!r} as {as_dtype(dtype).name}: it holds {value.dtype.name} "
            "device memory, which is saved as is"
        )
    return value.dtype
