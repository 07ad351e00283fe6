"""The one bridge between torch tensors and trackpoint: numpy views of a
tensor's memory (bfloat16 and float8 through the bit views of
:data:`trackpoint.dtypes.TORCH_BIT_VIEWS`), dtype names and specs, and the
staging of CUDA tensors through pinned host buffers (:mod:`trackpoint._device`).

The torch adapters (:mod:`trackpoint.adapters.torch`,
:mod:`trackpoint.adapters.stateful`) and distributed's sliced tensors
(:mod:`trackpoint.distributed.sharded`) go through these functions, so a
tensor is viewed and staged one way everywhere. Torch is imported only when a
function is called with a tensor (``import trackpoint`` never imports it).

Example::

    t = torch.arange(4, dtype=torch.bfloat16)
    a = to_numpy(t)                  # an ml_dtypes.bfloat16 view of t's memory
    assert from_numpy(a).dtype == torch.bfloat16
    assert dtype_name(t) == "bfloat16"
"""

from __future__ import annotations

import sys

import numpy as np

from .._device import DeviceBuffer
from ..dtypes import TORCH_BIT_VIEWS, as_dtype
from ..errors import InvalidArgumentError
from ..trackable.variable import VARIABLE_VALUE

__all__ = [
    "copy_into",
    "device_buffer",
    "dtype_name",
    "from_numpy",
    "is_tensor",
    "live_buffer",
    "saved_value",
    "spec",
    "to_numpy",
    "torch_module",
]


def torch_module():
    """The ``torch`` module, imported on first use."""
    import torch

    return torch


def is_tensor(value) -> bool:
    """Whether value is a torch tensor; False without importing torch when
    torch was never imported (then nothing can be a tensor).

    Example::

        assert is_tensor(torch.zeros(2)) and not is_tensor(np.zeros(2))
    """
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, torch.Tensor)


# ---- dtypes ------------------------------------------------------------------------------
def dtype_name(tensor) -> str:
    """The dtype's name without ``torch.``: ``"float32"``, ``"bfloat16"``."""
    return str(tensor.dtype).rsplit(".", 1)[-1]


def to_numpy(tensor) -> np.ndarray:
    """A CPU numpy array with the tensor's value (no copy for a dense CPU tensor)."""
    torch = torch_module()
    if tensor.layout != torch.strided:
        raise ValueError(f"cannot save a {tensor.layout} tensor: only dense tensors are supported")
    t = tensor.detach()
    if t.device.type != "cpu":
        t = t.to("cpu")
    t = t.resolve_conj().resolve_neg()
    name = dtype_name(t)
    int_name = TORCH_BIT_VIEWS.get(name)
    if int_name is None:
        return t.numpy()
    import ml_dtypes

    return t.view(getattr(torch, int_name)).numpy().view(getattr(ml_dtypes, name))


def from_numpy(array: np.ndarray):
    """A CPU tensor sharing the (C-contiguous) array's memory."""
    torch = torch_module()
    if not array.flags.c_contiguous:
        array = np.array(array, order="C")  # (np.ascontiguousarray makes 0-d arrays 1-d)
    name = array.dtype.name
    if name in TORCH_BIT_VIEWS:
        int_name = TORCH_BIT_VIEWS[name]
        return torch.from_numpy(array.view(int_name)).view(getattr(torch, name))
    return torch.from_numpy(array)


# The tensors staged as device memory, and the staging kind they use: CUDA
# tensors, through the CUDA runtime. (Tests replace both to stage CPU tensors
# through the fake backend, which takes host memory for device memory.)
def _is_staged(tensor) -> bool:
    return tensor.device.type == "cuda"


_STAGING_KIND = "cuda"


def device_buffer(tensor, for_restore: bool = False) -> DeviceBuffer:
    """A DeviceBuffer over a dense CUDA tensor's memory. A saved tensor that
    is not contiguous (or carries a conj/neg bit) is copied to a contiguous
    one on the device first; a restore target that is not gets a scratch
    tensor, copied into it by ``copy_into``. Synchronizes the tensor's
    current stream, so that queued kernels touching it have finished."""
    torch = torch_module()
    if tensor.layout != torch.strided:
        raise ValueError(f"cannot save a {tensor.layout} tensor: only dense tensors are supported")
    dtype, shape = spec(tensor)
    t = tensor.detach()
    if for_restore:
        if not t.is_contiguous() or t.is_conj() or t.is_neg():
            t = torch.empty(t.shape, dtype=t.dtype, device=t.device)
    else:
        t = t.resolve_conj().resolve_neg().contiguous()
    if t.device.type == "cuda":
        torch.cuda.current_stream(t.device).synchronize()
    return DeviceBuffer(t.data_ptr(), t.numel() * t.element_size(), dtype, shape,
                        kind=_STAGING_KIND, index=t.device.index or 0, keepalive=t)


def saved_value(tensor):
    """What a save writes for a tensor: a DeviceBuffer for a CUDA tensor
    (staged through pinned buffers), else a numpy array (see to_numpy)."""
    if _is_staged(tensor):
        return device_buffer(tensor)
    return to_numpy(tensor)


def spec(tensor) -> tuple:
    """(DType, shape) of a torch tensor."""
    name = dtype_name(tensor)
    try:
        dtype = as_dtype(name)
    except InvalidArgumentError:
        raise InvalidArgumentError(
            f"torch.{name} tensors have no TensorFlow equivalent and cannot be checkpointed"
        ) from None
    return dtype, tuple(tensor.shape)


def live_buffer(tensor) -> dict:
    """{VARIABLE_VALUE: a numpy view of the tensor's memory} for a dense,
    contiguous CPU tensor, which a restore then reads straight into; for a
    dense CUDA tensor a DeviceBuffer (see device_buffer); else {}."""
    torch = torch_module()
    if _is_staged(tensor) and tensor.layout == torch.strided:
        try:
            return {VARIABLE_VALUE: device_buffer(tensor, for_restore=True)}
        except InvalidArgumentError:  # no TensorFlow dtype: the restore says so
            return {}
    if (
        tensor.device.type != "cpu"
        or tensor.layout != torch.strided
        or not tensor.is_contiguous()
        or tensor.is_conj()
        or tensor.is_neg()
    ):
        return {}
    try:
        return {VARIABLE_VALUE: to_numpy(tensor)}
    except (TypeError, ImportError):  # a dtype numpy cannot view
        return {}


def copy_into(tensor, array) -> None:
    """Writes array into tensor in place, on the tensor's device. When the
    restore already read into the tensor's own memory (``live_buffer``),
    only tells autograd that the tensor changed; when it read into a scratch
    CUDA tensor, copies that on the device."""
    torch = torch_module()
    if isinstance(array, DeviceBuffer):
        staged = array.keepalive
        if staged.data_ptr() == tensor.data_ptr() and staged.shape == tensor.shape:
            torch.autograd.graph.increment_version(tensor)
            return
        with torch.no_grad():
            tensor.copy_(staged)
        return
    if (
        array.size
        and tensor.device.type == "cpu"
        and array.__array_interface__["data"][0] == tensor.data_ptr()
        and array.nbytes == tensor.numel() * tensor.element_size()
    ):
        torch.autograd.graph.increment_version(tensor)
        return
    with torch.no_grad():
        tensor.copy_(from_numpy(array))
