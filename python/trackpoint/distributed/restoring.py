"""Restoring into partitioned state: each process reads only its slices.

An ordinary restore matches checkpoint nodes to live objects and reads
every matched tensor whole. Here, a :class:`ShardedTensor` reads just the
region it holds (C++ ``ReadRegion``: only the stored slices that intersect
it, each checked against its CRC32C), straight into its local buffer when
that is a contiguous CPU array. That works whatever partitioning, and
however many processes, the checkpoint was saved with, and from
checkpoints saved by one process (the tensor stored whole) too. Everything
else is restored as usual.

Example::

    options = trackpoint.CheckpointOptions(experimental_coordinator=coordinator)
    ckpt.restore(trackpoint.latest_checkpoint("/shared/run"), options=options)
    # or, without a coordinator:
    trackpoint.distributed.restore(ckpt, path)
"""

from __future__ import annotations

import os

import numpy as np

from .. import _core
from .._load import read_into
from .._restore import ObjectGraphRestore
from .._saver import graph_root
from ..bundle import BundleReader
from ..errors import InvalidArgumentError
from ..trackable.variable import VARIABLE_VALUE
from .coordinator import Coordinator
from .sharded import ShardedTensor

__all__ = ["read_region", "restore"]


def read_region(reader: BundleReader, key: str, extents, dtype, out: np.ndarray | None = None):
    """Reads the box ``extents`` (``(start, length)`` per dimension) of the
    tensor ``key`` of ``reader``: into ``out`` (a C-contiguous array of the
    box's shape and the tensor's dtype) or a new array, which is returned."""
    shape = tuple(int(n) for _, n in extents)
    if out is None:
        out = np.empty(shape, dtype=dtype.as_numpy_dtype)
    _core.read_region(
        reader._reader, key, [(int(s), int(n)) for s, n in extents], out.reshape(-1).view(np.uint8)
    )
    return out


def _restore_slice(reader: BundleReader, key: str, obj: ShardedTensor) -> None:
    entry = reader.entry(key)
    if entry.dtype != obj.dtype or tuple(entry.shape) != tuple(obj.full_shape):
        raise InvalidArgumentError(
            f"cannot restore {key!r} from {reader.prefix}: checkpoint has "
            f"{entry.dtype.name}{list(entry.shape)}, object has "
            f"{obj.dtype.name}{list(obj.full_shape)}"
        )
    buffer = obj._region_buffer()
    array = read_region(reader, key, obj.extents, obj.dtype, buffer)
    if buffer is None:
        obj._assign_local(array)


class _RegionRestore(ObjectGraphRestore):
    """An object-graph restore in which ShardedTensors read only their region."""

    def _match_attributes(self, n, obj):
        keys = super()._match_attributes(n, obj)
        if keys and isinstance(obj, ShardedTensor):
            _restore_slice(self.reader, keys[VARIABLE_VALUE], obj)
            return None
        # Other partitioned values (JAX pytree leaves) read their own regions.
        restore_regions = getattr(obj, "_restore_regions", None)
        if keys and restore_regions is not None and restore_regions(self.reader, keys):
            return None
        return keys


def restore(checkpoint, save_path, coordinator: Coordinator | None = None, options=None):
    """Restores ``checkpoint`` (a :class:`~trackpoint.Checkpoint`) from
    ``save_path``, each :class:`ShardedTensor` reading only its own region.

    With a coordinator, the processes first check that they all restore the
    same path. Returns the restore status, as ``Checkpoint.restore`` does
    (``save_counter`` is created so that it is restored too).
    """
    path = os.fspath(save_path)
    if coordinator is not None:
        _check_same_path(coordinator, path)
    status = _read(checkpoint, path, options)
    if hasattr(checkpoint, "save_counter"):
        checkpoint.save_counter  # noqa: B018 -- created now, restored from a deferred position
    return status


def _check_same_path(coordinator: Coordinator, path: str) -> None:
    if coordinator.world_size > 1:
        paths = coordinator.all_gather(path)
        if len(set(paths)) > 1:
            raise InvalidArgumentError(
                f"the processes restore different checkpoints: {paths} (by rank)"
            )


def _read(checkpoint, path: str, options):
    sync = getattr(checkpoint, "sync", None)
    if sync is not None:
        sync()
    skip = bool(options and options.experimental_skip_slot_variables)
    # A name-based (TF1) checkpoint has no slices to take regions of: it is
    # read as Checkpoint.read reads it.
    return read_into(graph_root(checkpoint), BundleReader(path), skip_slot_variables=skip,
                     restore_class=_RegionRestore)


def checkpoint_read_hook(checkpoint, save_path, options):
    """What ``Checkpoint.read`` runs with ``experimental_coordinator`` set."""
    path = os.fspath(save_path)
    _check_same_path(options.experimental_coordinator, path)
    return _read(checkpoint, path, options)
