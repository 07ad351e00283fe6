"""tf.train.experimental: sharding policies for CheckpointOptions, and PythonState.

``CheckpointOptions(experimental_sharding_callback=policy)`` decides how a
save spreads its tensors over data files. Each *shard* is a dict
``{checkpoint key: {slice spec: array}}`` written as one data file; the
files are then merged under the checkpoint's prefix, as TensorFlow does, so
``MaxShardSizePolicy`` gives the same files, byte for byte, as TensorFlow's
for the same tensors.

Example::

    from trackpoint.experimental import MaxShardSizePolicy

    options = trackpoint.CheckpointOptions(
        experimental_sharding_callback=MaxShardSizePolicy(max_shard_size=64 << 20))
    ckpt.save("/tmp/run/ckpt", options=options)   # ckpt-1.data-00000-of-0000N, ...

A slice spec is TensorFlow's ``SaveSliceInfo`` string: the full shape, a
space, then ``offset,length`` per dimension joined by ``:``
(``"64 48 0,64:0,16"``); ``""`` for a whole tensor.
"""

from __future__ import annotations

import abc
import dataclasses
import logging
import math
import os
import shutil

import numpy as np

from . import _core
from ._restore import OBJECT_GRAPH_KEY
from .bundle import BundleWriter, prepare_value
from .dtypes import DType
from .errors import InvalidArgumentError, UnimplementedError
from .trackable.python_state import PythonState

__all__ = ["MaxShardSizePolicy", "PythonState", "ShardByTaskPolicy", "ShardableTensor",
           "ShardingCallback", "write_sharded"]

_log = logging.getLogger("trackpoint")

# The one task a single process saves from (TensorFlow's default device).
_DEVICE = "/job:localhost/replica:0/task:0/device:CPU:0"


@dataclasses.dataclass(frozen=True)
class ShardableTensor:
    """One tensor a save writes, as a sharding callback receives it.

    ``tensor`` is a numpy array (strings: an object array of bytes),
    ``dtype`` a :class:`trackpoint.dtypes.DType`, ``shape`` a tuple,
    ``slice_spec`` ``""`` (trackpoint saves whole tensors),
    ``checkpoint_key`` the key in the checkpoint. ``_tensor_save_spec`` and
    ``trackable`` exist for TensorFlow's field names and are None.
    """

    _tensor_save_spec: object
    tensor: np.ndarray
    dtype: DType
    device: str
    name: str
    shape: tuple
    slice_spec: str
    checkpoint_key: str
    trackable: object


class ShardingCallback(abc.ABC):
    """Base class of sharding policies: ``description`` and
    ``__call__(shardable_tensors) -> [shard, ...]`` with each shard a dict
    ``{checkpoint key: {slice spec: array}}``.

    Example, every tensor in its own file::

        class OnePerFile(ShardingCallback):
            @property
            def description(self):
                return "one tensor per data file"

            def __call__(self, shardable_tensors):
                return [{t.checkpoint_key: {t.slice_spec: t.tensor}}
                        for t in shardable_tensors]

    A callback must keep every tensor, with its dtype; it may split tensors
    into slices (arrays of the slice's shape under their slice spec).
    """

    @property
    @abc.abstractmethod
    def description(self) -> str:
        """A short text describing the policy."""

    @abc.abstractmethod
    def __call__(self, shardable_tensors) -> list:
        """The shards for ``shardable_tensors``."""


class ShardByTaskPolicy(ShardingCallback):
    """One shard per device task. A trackpoint process saves from one task,
    so this is one data file: what a save without a callback writes.

    Example::

        CheckpointOptions(experimental_sharding_callback=ShardByTaskPolicy())
    """

    @property
    def description(self) -> str:
        return "Tensors in one shard per device task."

    def __call__(self, shardable_tensors) -> list:
        shard: dict = {}
        for t in shardable_tensors:
            shard.setdefault(t.checkpoint_key, {})[t.slice_spec] = t.tensor
        return [shard]


def slice_spec(full_shape, offset, shape) -> str:
    """TensorFlow's slice spec string for a slice of a tensor.

    >>> slice_spec((64, 48), (0, 16), (64, 32))
    '64 48 0,64:16,32'
    """
    dims = " ".join(str(int(d)) for d in full_shape)
    extents = ":".join(f"{int(o)},{int(n)}" for o, n in zip(offset, shape))
    return f"{dims} {extents}".strip()


def parse_slice_spec(spec: str, key: str) -> tuple:
    """(full shape, [(start, length), ...]) of a slice spec; ``-`` is a
    whole dimension (length -1)."""
    parts = spec.split()
    try:
        full = tuple(int(d) for d in parts[:-1])
        extents = []
        for extent in parts[-1].split(":"):
            if extent == "-":
                extents.append((0, -1))
            else:
                start, length = extent.split(",")
                extents.append((int(start), int(length)))
    except (ValueError, IndexError):
        raise InvalidArgumentError(f"bad slice spec {spec!r} for {key!r}") from None
    if len(extents) != len(full):
        raise InvalidArgumentError(f"slice spec {spec!r} for {key!r} has {len(extents)} "
                                   f"extents for a rank-{len(full)} shape")
    return full, extents


class _Partitioner:
    """Fills shards of at most ``max_shard_size`` bytes in tensor order,
    splitting a tensor that does not fit the current shard along the axis
    that needs the fewest slices (TensorFlow's MaxShardSizePolicy)."""

    def __init__(self, max_shard_size: int):
        self.max = max_shard_size
        self.shards: list = [{}]
        self.oversized: list = []  # single values bigger than a shard, one shard each
        self.remaining = max_shard_size

    def _new_shard(self) -> None:
        self.shards.append({})
        self.remaining = self.max

    def _put(self, key: str, spec: str, array) -> None:
        self.shards[-1].setdefault(key, {})[spec] = array

    def add(self, t: ShardableTensor) -> None:
        shape = tuple(t.shape)
        if t.checkpoint_key == OBJECT_GRAPH_KEY:
            total, elem = 0, 0  # its size is not known while sharding
        elif t.dtype.name == "string":
            lengths = [len(x) for x in np.asarray(t.tensor, dtype=object).reshape(-1)]
            if len(shape) > 1:
                raise UnimplementedError(
                    f"MaxShardSizePolicy cannot size the rank-{len(shape)} string tensor "
                    f"{t.checkpoint_key!r} (only scalars and vectors of strings)")
            total, elem = sum(lengths), max(lengths, default=0)
        else:
            elem = t.dtype.size
            total = math.prod(shape) * elem
        if not shape:
            self._add_scalar(t, total)
        else:
            self._add_array(t, shape, total, elem)

    def _add_scalar(self, t: ShardableTensor, total: int) -> None:
        if total > self.max:
            _log.warning("%s (%d bytes) cannot be split and is larger than the max shard "
                         "size %d: it gets a shard of its own", t.checkpoint_key, total, self.max)
            self.oversized.append({t.checkpoint_key: {t.slice_spec: t.tensor}})
            return
        if total > self.remaining:
            self._new_shard()
        self._put(t.checkpoint_key, t.slice_spec, t.tensor)
        self.remaining -= total

    def _next_cut(self, left: tuple, elem: int) -> tuple:
        """(axis, length) of the next slice of the part ``left`` still to place."""
        count = math.prod(left)

        def parts_along(axis: int) -> float:
            per_row = (count // left[axis]) * elem
            rows = self.remaining // per_row if per_row else math.inf
            return math.inf if rows == 0 else math.ceil(left[axis] / rows)

        best_axis, best_parts = 0, parts_along(0)
        for axis in range(1, len(left)):
            parts = parts_along(axis)
            if parts < best_parts and count * elem / parts <= self.remaining:
                best_axis, best_parts = axis, int(parts)
        return best_axis, math.ceil(left[best_axis] / best_parts)

    def _add_array(self, t: ShardableTensor, shape: tuple, total: int, elem: int) -> None:
        key = t.checkpoint_key
        offset = [0] * len(shape)
        left = shape
        size = total
        while size > self.remaining:
            axis, length = self._next_cut(left, elem)
            if length == 0:  # not even one row along any axis fits what is left
                if self.remaining == self.max:
                    raise InvalidArgumentError(
                        f"{key!r}: no slice of {list(shape)} fits a shard of "
                        f"{self.max} bytes")
                self._new_shard()
                continue
            cut = list(left)
            cut[axis] = length
            piece = _region(t.tensor, offset, cut)
            spec = slice_spec(shape, offset, cut)
            piece_size = math.prod(cut) * elem
            if piece_size > self.max:
                _log.warning("%s: its smallest slice %s (%d bytes) is larger than the max "
                             "shard size %d: it gets a shard of its own", key, spec,
                             piece_size, self.max)
                self.oversized.append({key: {spec: piece}})
            else:
                self._put(key, spec, piece)
                self.remaining -= piece_size
                if self.remaining == 0:
                    self._new_shard()
            offset[axis] += length
            left = tuple(n - o for n, o in zip(shape, offset))
            size = math.prod(left) * elem
        if math.prod(left) > 0:
            whole = all(o == 0 for o in offset)
            self._put(key, "" if whole else slice_spec(shape, offset, left),
                      t.tensor if whole else _region(t.tensor, offset, left))
        self.remaining -= size

    def result(self) -> list:
        shards = self.shards if self.shards[0] else []
        return shards + self.oversized


def _region(array, offset, shape):
    """The C-contiguous sub-array at offset with shape."""
    index = tuple(slice(o, o + n) for o, n in zip(offset, shape))
    return np.ascontiguousarray(np.asarray(array)[index])


class MaxShardSizePolicy(ShardingCallback):
    """Data files of at most ``max_shard_size`` bytes, as TensorFlow writes
    them: tensors fill shards in save order; one bigger than the room left
    is cut into slices (along the axis needing the fewest). A scalar or a
    slice that alone exceeds the limit gets a shard of its own, and the
    object graph, whose size is unknown while sharding, may push the last
    shard past it.

    Example::

        options = trackpoint.CheckpointOptions(
            experimental_sharding_callback=MaxShardSizePolicy(max_shard_size=4096))
    """

    def __init__(self, max_shard_size: int):
        self.max_shard_size = max_shard_size

    @property
    def description(self) -> str:
        return "Shards of at most max_shard_size bytes; large tensors split into slices."

    def __call__(self, shardable_tensors) -> list:
        partitioner = _Partitioner(int(self.max_shard_size))
        for t in shardable_tensors:
            partitioner.add(t)
        return partitioner.result()


# ---- writing ------------------------------------------------------------------------------


def _shardables(items: list) -> list:
    out = []
    for key, value, dtype in items:
        target, array = prepare_value(value, dtype)
        out.append(ShardableTensor(None, array, target, _DEVICE, key, tuple(array.shape), "",
                                   key, None))
    return out


def _check_shards(shards, originals: list, description: str, prefix: str) -> None:
    known = {t.checkpoint_key: t for t in originals}
    seen = set()
    for shard in shards:
        for key, slices in shard.items():
            if key not in known:
                raise InvalidArgumentError(
                    f"sharding callback ({description}) returned {key!r}, which is not a "
                    f"tensor of the checkpoint {prefix}")
            for spec, value in slices.items():
                if (key, spec.strip()) in seen:
                    raise InvalidArgumentError(
                        f"sharding callback ({description}) returned {key!r} slice "
                        f"{spec!r} twice for {prefix}")
                seen.add((key, spec.strip()))
                _check_shape(key, spec.strip(), value, known[key], description)
    missing = [t.checkpoint_key for t in originals
               if not any(k == t.checkpoint_key for k, _ in seen)]
    if missing:
        raise InvalidArgumentError(
            f"sharding callback ({description}) left out {missing} from {prefix}")


def _check_shape(key: str, spec: str, value, original: ShardableTensor, description) -> None:
    """A whole tensor keeps its shape; a slice has its spec's shape, of the
    original full shape."""
    shape = tuple(np.shape(value))
    if spec:
        full, extents = parse_slice_spec(spec, key)
        want = tuple(d if n == -1 else n for (_, n), d in zip(extents, full))
        bad = full != original.shape or shape != want
    else:
        want, bad = original.shape, shape != original.shape
    if bad:
        raise InvalidArgumentError(
            f"sharding callback ({description}) returned {key!r} slice {spec!r} of shape "
            f"{list(shape)}; expected {list(want)} of a tensor of shape {list(original.shape)}")


def _write_part(path: str, shard: dict, dtype_of: dict) -> None:
    with BundleWriter(path) as writer:
        for key, slices in shard.items():
            for spec, value in slices.items():
                dtype = dtype_of[key]
                spec = spec.strip()
                if not spec:
                    writer.add(key, value, dtype=dtype)
                    continue
                full, extents = parse_slice_spec(spec, key)
                whole = all(s == 0 and (n == -1 or n == d) for (s, n), d in zip(extents, full))
                if whole:
                    writer.add(key, value, dtype=dtype)
                elif dtype.name == "string":
                    raise UnimplementedError(
                        f"{key!r}: slices of string tensors cannot be written ({spec!r})")
                else:
                    writer.add_slice(key, full, extents, value, dtype=dtype)


def write_sharded(items: list, prefix: str, callback) -> str:
    """Writes a save's ``(key, value, dtype)`` items at prefix in the shards
    ``callback`` returns: one part bundle per shard under ``<prefix>_temp/``,
    then merged into ``<prefix>.index`` and ``<prefix>.data-<i>-of-<N>``."""
    originals = _shardables(items)
    description = getattr(callback, "description", type(callback).__name__)
    shards = list(callback(originals))
    _check_shards(shards, originals, description, prefix)
    dtype_of = {t.checkpoint_key: t.dtype for t in originals}
    temp = f"{prefix}_temp"
    os.makedirs(temp, exist_ok=True)
    try:
        parts = [os.path.join(temp, f"part-{i:05d}-of-{len(shards):05d}")
                 for i in range(len(shards))]
        for part, shard in zip(parts, shards):
            _write_part(part, shard, dtype_of)
        _core.merge_bundles(parts, prefix)
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    return prefix
