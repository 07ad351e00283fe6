"""Tensors partitioned across processes: each process holds one slice.

A :class:`ShardedTensor` is this process's slice of a tensor whose full
shape every process knows. A multi-process save stores the slices as
TensorFlow stores partitioned variables: one full entry under the tensor's
key listing the slices, and one slice entry per slice. Readers (and
TensorFlow) assemble the full tensor; a restore into a different
partitioning, or a different number of processes, reads only the slices
each process needs.

Example::

    import numpy as np
    from trackpoint.distributed import ShardedTensor, even_split

    offsets, shape = even_split((1000, 64), rank, world_size)   # rows
    local = np.zeros(shape, np.float32)
    model.embedding = ShardedTensor(local, (1000, 64), offsets, name="embedding")
"""

from __future__ import annotations

import numpy as np

from ..adapters.torch_bridge import dtype_name as torch_dtype_name
from ..adapters.torch_bridge import from_numpy as torch_from_numpy
from ..adapters.torch_bridge import is_tensor as is_torch
from ..adapters.torch_bridge import to_numpy as torch_as_numpy
from ..dtypes import DType, as_dtype
from ..errors import InvalidArgumentError
from ..trackable.base import Trackable
from ..trackable.variable import VARIABLE_VALUE

__all__ = ["LocalSlice", "LocalSlices", "ShardedTensor", "even_split"]


def even_split(full_shape, rank: int, world_size: int, axis: int = 0) -> tuple:
    """``(offsets, shape)`` of part ``rank`` of ``world_size`` nearly equal
    parts along ``axis`` (the first ``size % world_size`` parts one longer,
    as ``numpy.array_split``)."""
    full_shape = tuple(int(d) for d in full_shape)
    if not 0 <= rank < world_size:
        raise InvalidArgumentError(f"rank {rank} out of range for world size {world_size}")
    size = full_shape[axis]
    base, extra = divmod(size, world_size)
    start = rank * base + min(rank, extra)
    length = base + (1 if rank < extra else 0)
    offsets = [0] * len(full_shape)
    offsets[axis] = start
    shape = list(full_shape)
    shape[axis] = length
    return tuple(offsets), tuple(shape)


class LocalSlice:
    """A value a trackable returns from ``_serialize_to_tensors`` when it holds
    only one slice of the tensor: ``value`` (numpy array or torch tensor) is
    the box starting at ``offsets`` of a tensor of shape ``full_shape``.

    A multi-process save writes it as a slice; a single-process save accepts
    it only when it covers the whole tensor.
    """

    __slots__ = ("dtype", "full_shape", "offsets", "value")

    def __init__(self, value, full_shape, offsets, dtype: DType | None = None):
        self.value = value
        self.full_shape = tuple(int(d) for d in full_shape)
        self.offsets = tuple(int(o) for o in offsets)
        self.dtype = dtype

    @property
    def shape(self) -> tuple:
        return tuple(int(d) for d in self.value.shape)

    @property
    def is_full(self) -> bool:
        return self.shape == self.full_shape

    def numpy(self) -> np.ndarray:
        """The slice's values as a numpy array (a view where possible)."""
        return torch_as_numpy(self.value) if is_torch(self.value) else np.asarray(self.value)

    def __array__(self, dtype=None, copy=None):
        if not self.is_full:
            raise InvalidArgumentError(
                f"a slice {list(self.shape)} at {list(self.offsets)} of a tensor of shape "
                f"{list(self.full_shape)} cannot be saved by one process alone: save with "
                "trackpoint.CheckpointOptions(experimental_coordinator=...) or "
                "trackpoint.distributed.save"
            )
        array = self.numpy()
        return array if dtype is None else array.astype(dtype)


class LocalSlices:
    """Several slices of one tensor held by this process (a ``jax.Array``'s
    addressable shards, say): what ``_serialize_to_tensors`` returns when one
    :class:`LocalSlice` is not enough. ``slices`` are LocalSlices of the same
    full shape and dtype, distinct and not overlapping; several processes may
    hold the same slice (a replicated shard): one of them writes it.

    Example::

        LocalSlices([LocalSlice(rows_0_4, (8, 3), (0, 0)),
                     LocalSlice(rows_4_8, (8, 3), (4, 0))], (8, 3))
    """

    __slots__ = ("dtype", "full_shape", "slices")

    def __init__(self, slices, full_shape, dtype: DType | None = None):
        self.slices = list(slices)
        self.full_shape = tuple(int(d) for d in full_shape)
        self.dtype = dtype
        for s in self.slices:
            if s.full_shape != self.full_shape:
                raise InvalidArgumentError(
                    f"a slice of a tensor of shape {list(s.full_shape)} among the slices "
                    f"of a tensor of shape {list(self.full_shape)}"
                )

    def __array__(self, dtype=None, copy=None):
        if len(self.slices) == 1:
            return self.slices[0].__array__(dtype)
        boxes = [list(zip(s.offsets, s.shape)) for s in self.slices]
        raise InvalidArgumentError(
            f"the slices {boxes} of a tensor of shape {list(self.full_shape)} cannot be "
            "saved by one process alone: save with "
            "trackpoint.CheckpointOptions(experimental_coordinator=...) or "
            "trackpoint.distributed.save"
        )


class ShardedTensor(Trackable):
    """This process's slice of a tensor partitioned across processes.

    Args:
        local: the slice, a numpy array or a torch tensor (restores write
            into it in place).
        full_shape: the shape of the whole tensor.
        offsets: where the slice starts in each dimension (default: all 0).
        name: TensorFlow's variable name (the full name in the checkpoint).

    It checkpoints like a variable of the full shape (key
    ``<path>/.ATTRIBUTES/VARIABLE_VALUE``), so TensorFlow restores it into a
    ``tf.Variable`` of the full shape. A restore takes this slice out of the
    checkpoint, whatever partitioning it was saved with.
    """

    def __init__(self, local, full_shape, offsets=None, name: str | None = None):
        if not is_torch(local):
            local = np.asarray(local)
        shape = tuple(int(d) for d in local.shape)
        full_shape = tuple(int(d) for d in full_shape)
        offsets = tuple(int(o) for o in offsets) if offsets is not None else (0,) * len(shape)
        if not (len(shape) == len(full_shape) == len(offsets)) or any(
            o < 0 or o + n > d for o, n, d in zip(offsets, shape, full_shape)
        ):
            raise InvalidArgumentError(
                f"a slice of shape {list(shape)} at offsets {list(offsets)} does not fit in "
                f"a tensor of shape {list(full_shape)}"
            )
        self._self_local = local
        self._self_full_shape = full_shape
        self._self_offsets = offsets
        dtype_name = torch_dtype_name(local) if is_torch(local) else local.dtype
        self._self_dtype = as_dtype(dtype_name)
        self._self_name = name or "Variable"

    @property
    def local(self):
        """The slice this process holds (the object passed in)."""
        return self._self_local

    @property
    def full_shape(self) -> tuple:
        return self._self_full_shape

    @property
    def offsets(self) -> tuple:
        return self._self_offsets

    @property
    def shape(self) -> tuple:
        """The local slice's shape."""
        return tuple(int(d) for d in self._self_local.shape)

    @property
    def dtype(self) -> DType:
        return self._self_dtype

    @property
    def extents(self) -> list:
        """``(start, length)`` per dimension: the slice as a box."""
        return list(zip(self._self_offsets, self.shape))

    def numpy(self) -> np.ndarray:
        """The local slice as a numpy array (a view of a CPU tensor)."""
        return LocalSlice(self._self_local, self._self_full_shape, self._self_offsets).numpy()

    def __repr__(self) -> str:
        return (
            f"<trackpoint.distributed.ShardedTensor '{self._self_name}' "
            f"slice={self.extents} of {list(self._self_full_shape)} "
            f"dtype={self._self_dtype.name}>"
        )

    # ---- Trackable --------------------------------------------------------------------
    def _serialize_to_tensors(self) -> dict:
        return {
            VARIABLE_VALUE: LocalSlice(
                self._self_local, self._self_full_shape, self._self_offsets, self._self_dtype
            )
        }

    def _tensor_names(self) -> list:
        return [VARIABLE_VALUE]

    def _tensor_specs(self) -> dict:
        return {VARIABLE_VALUE: (self._self_dtype, self._self_full_shape)}

    def _checkpoint_full_name(self) -> str:
        return self._self_name

    def _restore_from_tensors(self, tensors: dict) -> None:
        """Takes this slice out of the full tensor (a restore without region reads)."""
        full = tensors[VARIABLE_VALUE]
        box = tuple(slice(o, o + n) for o, n in self.extents)
        self._assign_local(np.asarray(full)[box])

    # ---- region restores (trackpoint.distributed.restore) --------------------------------
    def _region_buffer(self) -> np.ndarray | None:
        """A writable, C-contiguous numpy view of the local slice, or None."""
        if is_torch(self._self_local):
            t = self._self_local
            if (t.device.type != "cpu" or not t.is_contiguous() or t.requires_grad
                    or t.is_conj() or t.is_neg()):  # to_numpy would copy these
                return None
            array = torch_as_numpy(t)
        else:
            array = self._self_local
        if (
            array.flags.c_contiguous
            and array.flags.writeable
            and array.dtype == self._self_dtype.as_numpy_dtype
        ):
            return array
        return None

    def _assign_local(self, array: np.ndarray) -> None:
        local = self._self_local
        if is_torch(local):
            import torch

            array = np.ascontiguousarray(array, dtype=self._self_dtype.as_numpy_dtype)
            source = torch_from_numpy(array)
            with torch.no_grad():
                local.copy_(source.reshape(local.shape))
        else:
            local[...] = array
