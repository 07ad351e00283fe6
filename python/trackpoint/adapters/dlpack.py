"""Arrays of any framework, through DLPack, as checkpoint variables.

:class:`DLPackArray` wraps an object with ``__dlpack__`` and
``__dlpack_device__`` (a CuPy array, a JAX array, a torch tensor, ...). It
is saved like a variable (``VARIABLE_VALUE``):

- on a CUDA device, its memory is staged to the host chunk by chunk through
  a pool of pinned buffers, each chunk checksummed and written while the
  next is copied (``trackpoint._device``); no framework call is involved,
  and bfloat16/float8 need no numpy type. The array is exported with
  ``__dlpack__()`` and no stream, which by the DLPack protocol makes its
  pending writes visible to the legacy default stream; the staging copies
  are ordered after that stream's work.
- on the CPU, it is read through ``numpy.from_dlpack`` (no copy).

A restore writes the checkpoint's value back into the same memory, so every
reference to the array sees it. That suits mutable arrays (CuPy, torch).
**JAX arrays are immutable**: restoring into one is refused; checkpoint JAX
state with :class:`trackpoint.adapters.jax.PyTree`, whose restore builds new
arrays. Device arrays must be C-contiguous.

Example::

    import cupy
    weights = cupy.zeros((1024, 1024), cupy.float32)
    ckpt = trackpoint.Checkpoint(weights=DLPackArray(weights))
    path = ckpt.save("/tmp/run/ckpt")
    ckpt.restore(path)          # fills `weights` in place, on the GPU
"""

from __future__ import annotations

import numpy as np

from .. import _core
from .._device import DeviceBuffer
from ..dtypes import DType, as_dtype
from ..errors import InvalidArgumentError, UnimplementedError
from ..trackable.base import Trackable
from ..trackable.variable import VARIABLE_VALUE

__all__ = ["DLPackArray"]

# DLPack device types (dlpack.h DLDeviceType).
_CPU = 1
_CUDA = 2
_CUDA_MANAGED = 13

# The staging kind of each DLPack device type whose memory is staged. Tests
# map CUDA to "fake" to stage host memory posing as a CUDA array.
_STAGING_KIND = {_CUDA: "cuda", _CUDA_MANAGED: "cuda"}

# (DLPack type code, bits) -> TensorFlow dtype name (dlpack.h DLDataTypeCode).
_DTYPES = {
    (0, 8): "int8", (0, 16): "int16", (0, 32): "int32", (0, 64): "int64",
    (1, 8): "uint8", (1, 16): "uint16", (1, 32): "uint32", (1, 64): "uint64",
    (2, 16): "float16", (2, 32): "float32", (2, 64): "float64",
    (4, 16): "bfloat16",
    (5, 64): "complex64", (5, 128): "complex128",
    (6, 8): "bool",
    (9, 8): "float8_e4m3b11fnuz", (10, 8): "float8_e4m3fn", (11, 8): "float8_e4m3fnuz",
    (12, 8): "float8_e5m2", (13, 8): "float8_e5m2fnuz",
}


def _is_jax(array) -> bool:
    return type(array).__module__.split(".", 1)[0] in ("jax", "jaxlib")


class _Layout:
    """Where a DLPack array's elements are and what they are."""

    __slots__ = ("contiguous", "device_id", "device_type", "dtype", "itemsize", "ptr", "shape")

    def __init__(self, array):
        ptr, device_type, device_id, code, bits, lanes, shape, strides = (
            _core.dlpack_describe(array))
        name = _DTYPES.get((code, bits)) if lanes == 1 else None
        if name is None:
            raise InvalidArgumentError(
                f"cannot checkpoint a DLPack array of type code {code}, {bits} bits, "
                f"{lanes} lanes: it has no TensorFlow dtype"
            )
        self.ptr = ptr
        self.device_type = device_type
        self.device_id = device_id
        self.dtype: DType = as_dtype(name)
        self.itemsize = bits // 8  # no numpy type needed for bfloat16/float8
        self.shape = tuple(shape)
        expected, contiguous = 1, True
        for dim, stride in zip(reversed(self.shape), reversed(strides)):
            if dim != 1 and stride != expected:
                contiguous = False
            expected *= dim
        self.contiguous = contiguous

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * self.itemsize


class DLPackArray(Trackable):
    """A DLPack-capable array as a variable, restored in place (see the module docstring)."""

    def __init__(self, array):
        if not (hasattr(array, "__dlpack__") and hasattr(array, "__dlpack_device__")):
            raise TypeError(
                f"{type(array).__name__} has no __dlpack__/__dlpack_device__: not a DLPack array"
            )
        self._self_array = array

    def _wrapped(self):
        return self._self_array

    @property
    def array(self):
        """The wrapped array."""
        return self._self_array

    def __repr__(self) -> str:
        return f"<trackpoint DLPackArray of {type(self._self_array).__name__}>"

    def _device_type(self) -> int:
        return int(self._self_array.__dlpack_device__()[0])

    def _device_buffer(self, layout: _Layout, what: str) -> DeviceBuffer:
        kind = _STAGING_KIND.get(layout.device_type)
        if kind is None:
            raise UnimplementedError(
                f"cannot {what} a DLPack array on device type {layout.device_type}: "
                "only CPU and CUDA memory are supported"
            )
        if not layout.contiguous:
            raise InvalidArgumentError(
                f"cannot {what} a non-contiguous DLPack array on a device: make it "
                "C-contiguous first"
            )
        return DeviceBuffer(layout.ptr, layout.nbytes, layout.dtype, layout.shape, kind=kind,
                            index=layout.device_id, keepalive=self._self_array)

    def _serialize_to_tensors(self) -> dict:
        if self._device_type() == _CPU:
            return {VARIABLE_VALUE: np.from_dlpack(self._self_array)}
        return {VARIABLE_VALUE: self._device_buffer(_Layout(self._self_array), "save")}

    def _tensor_names(self) -> list:
        return [VARIABLE_VALUE]

    def _tensor_specs(self) -> dict:
        layout = _Layout(self._self_array)
        return {VARIABLE_VALUE: (layout.dtype, layout.shape)}

    def _writable_host_view(self) -> np.ndarray:
        if _is_jax(self._self_array):
            raise InvalidArgumentError(
                "cannot restore into a JAX array: JAX arrays are immutable; checkpoint JAX "
                "state with trackpoint.adapters.jax.PyTree, whose restore builds new arrays"
            )
        view = np.from_dlpack(self._self_array)
        if not view.flags.writeable:
            raise InvalidArgumentError(
                f"cannot restore into a read-only {type(self._self_array).__name__} array"
            )
        return view

    def _restore_buffers(self) -> dict:
        if self._device_type() == _CPU:
            view = self._writable_host_view()
            return {VARIABLE_VALUE: view} if view.flags.c_contiguous else {}
        if _is_jax(self._self_array):
            self._writable_host_view()  # raises
        return {VARIABLE_VALUE: self._device_buffer(_Layout(self._self_array), "restore")}

    def _restore_from_tensors(self, tensors: dict) -> None:
        value = tensors[VARIABLE_VALUE]
        if isinstance(value, DeviceBuffer):
            return  # read straight into the array's device memory
        if self._device_type() == _CPU:
            view = self._writable_host_view()
            if value is not view:
                view[...] = value
            return
        self._device_buffer(_Layout(self._self_array), "restore").copy_from_host(value)
