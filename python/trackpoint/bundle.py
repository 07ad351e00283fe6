"""Low-level access to tensor bundles: one checkpoint prefix, keys to tensors.

Most code wants :func:`trackpoint.load_checkpoint` (reading) or
``trackpoint.Checkpoint`` (object-based saving). This module is the layer
under them: it writes and reads named tensors in TensorFlow's bundle format
with no object graph.

Example::

    import numpy as np
    from trackpoint.bundle import BundleWriter, BundleReader

    with BundleWriter("/tmp/run/weights") as w:
        w.add("dense/kernel", np.ones((3, 4), np.float32))
        w.add("vocab", [b"a", b"b"])
    r = BundleReader("/tmp/run/weights")
    r.read("dense/kernel").shape   # (3, 4)
"""

from __future__ import annotations

import bisect
import os
from typing import NamedTuple, Sequence

import numpy as np

from . import _core
from ._device import DeviceBuffer, StagedTensor, checked_dtype
from ._paths import local_path
from .dtypes import DType, as_dtype
from .errors import InvalidArgumentError, NotFoundError

__all__ = ["BundleWriter", "BundleReader", "BundleEntry", "DeviceBuffer", "FULL_EXTENT"]

# The length of an extent that spans its whole dimension.
FULL_EXTENT = -1


class BundleEntry(NamedTuple):
    """What the index records for one tensor key."""

    dtype: DType
    shape: tuple
    shard_id: int
    offset: int
    size: int
    crc32c: int  # masked, as stored
    slices: tuple  # one tuple of (start, length) per dimension, per stored slice


def _as_bytes_view(array: np.ndarray) -> np.ndarray:
    """A flat uint8 view of a C-contiguous array (no copy)."""
    return array.reshape(-1).view(np.uint8)


def _as_string_element(x) -> bytes:
    if isinstance(x, str):
        return x.encode("utf-8")
    if isinstance(x, (bytes, bytearray, memoryview)):
        return bytes(x)
    raise InvalidArgumentError(f"string tensors hold bytes or str, not {type(x).__name__}")


def prepare_value(value, dtype) -> tuple[DType, np.ndarray]:
    """The (dtype, array) to store for a value; strings as an object array of bytes."""
    if (type(value) is np.ndarray and value.dtype.kind not in "OSU"
            and value.flags.c_contiguous):  # the common case, no copy
        target = as_dtype(value.dtype if dtype is None else dtype)
        if target.as_numpy_dtype == value.dtype:
            return target, value
    target = as_dtype(dtype) if dtype is not None else None
    if isinstance(value, (bytes, str)):
        array = np.array(value, dtype=object)
    else:
        array = np.asarray(value)
    if target is None:
        target = as_dtype(array.dtype)
    if target.name == "string":
        flat = [_as_string_element(x) for x in array.reshape(-1)]
        out = np.empty(len(flat), dtype=object)
        out[:] = flat
        return target, out.reshape(array.shape)
    return target, np.asarray(array, dtype=target.as_numpy_dtype, order="C")


class BundleWriter:
    """Writes one bundle: ``<prefix>.index`` and ``<prefix>.data-NNNNN-of-NNNNN``.

    Tensors may be added in any order; their bytes go to the data file in that
    order. ``finish()`` writes the index and renames every file into place;
    leaving the ``with`` block by an exception, or dropping an unfinished
    writer, deletes the temporary files instead.

    Args:
        prefix: the checkpoint prefix (its directory is created).
        num_shards: number of data files; ``add(..., shard=i)`` picks one.
        data_alignment: each payload starts at a multiple of this (1 = dense,
            as TensorFlow writes).
        sync: fsync files and directory before returning from ``finish()``.
    """

    def __init__(self, prefix, *, num_shards: int = 1, data_alignment: int = 1, sync: bool = True):
        self._writer = _core.BundleWriter.open(
            local_path(prefix), num_shards=num_shards, data_alignment=data_alignment, sync=sync
        )

    def add(self, key: str, value, *, dtype=None, shard: int = 0) -> None:
        """Adds a tensor: a numpy array (or anything ``np.asarray`` takes), or
        bytes/str values for a string tensor. ``dtype`` (a DType, TensorFlow
        name or numpy dtype) converts the value first, and names quantized
        types (``"qint8"``) that numpy cannot express. A
        :class:`DeviceBuffer` is staged from device
        memory (its own dtype and shape)."""
        if isinstance(value, (DeviceBuffer, StagedTensor)):
            target = checked_dtype(key, value, dtype)
            self._writer.add_batch([(key, target.enum, list(value.shape), value._batch_data(), shard)])
            return
        target, array = prepare_value(value, dtype)
        if target.name == "string":
            self._writer.add_strings(key, list(array.shape), list(array.reshape(-1)), shard)
        else:
            self._writer.add(key, target.enum, list(array.shape), _as_bytes_view(array), shard)

    def add_many(self, items) -> None:
        """Adds many tensors in one call: ``(key, value, dtype)`` tuples
        (``dtype`` may be None), all written with the GIL released once.
        A :class:`DeviceBuffer` value is staged from
        device memory through pinned buffers, chunk by chunk."""
        batch = []
        for key, value, dtype in items:
            if isinstance(value, (DeviceBuffer, StagedTensor)):
                target = checked_dtype(key, value, dtype)
                batch.append((key, target.enum, list(value.shape), value._batch_data(), 0))
                continue
            target, array = prepare_value(value, dtype)
            data = list(array.reshape(-1)) if target.name == "string" else _as_bytes_view(array)
            batch.append((key, target.enum, list(array.shape), data, 0))
        self._writer.add_batch(batch)

    def add_slice(
        self,
        key: str,
        full_shape: Sequence[int],
        extents: Sequence[tuple[int, int]],
        value,
        *,
        dtype=None,
        shard: int = 0,
    ) -> None:
        """Adds one slice of a partitioned tensor of shape ``full_shape``.

        ``extents`` holds a ``(start, length)`` per dimension (length
        ``FULL_EXTENT`` for a whole dimension) and ``value`` only the slice's
        elements. The reader assembles the full tensor from its slices.
        """
        target, array = prepare_value(value, dtype)
        if target.name == "string":
            raise InvalidArgumentError(f"key {key!r}: partitioned string tensors are not supported")
        self._writer.add_slice(
            key, list(full_shape), [tuple(e) for e in extents], target.enum,
            _as_bytes_view(array), shard,
        )

    def finish(self) -> None:
        """Writes the index and moves every file into place."""
        self._writer.finish()

    def __enter__(self) -> "BundleWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.finish()
        else:
            self._writer = None  # deletes the temporary files


def _may_be_v1(path: str) -> bool:
    """Whether path could be a V1 checkpoint: an existing file that is not
    one of a bundle's own files."""
    name = os.path.basename(path)
    return os.path.isfile(path) and not name.endswith(".index") and ".data-" not in name


class BundleReader:
    """Reads one bundle. Every read verifies the tensor's CRC32C.

    Also reads TensorFlow's old V1 format (``SaverDef.V1``: one file at
    ``prefix``, no ``.index``), tensors of the common fixed-size types and
    strings, partitioned ones assembled (``format`` is then ``"v1"``). Its
    files have no per-tensor checksums.

    Raises :class:`~trackpoint.errors.NotFoundError` when neither
    ``<prefix>.index`` nor a V1 file ``prefix`` exists and
    :class:`~trackpoint.errors.DataLossError` when the file is not a valid
    index.
    """

    def __init__(self, prefix):
        prefix = local_path(prefix)
        self.format = "v2"
        try:
            self._reader = _core.BundleReader.open(prefix)
        except NotFoundError:
            if not _may_be_v1(prefix):
                raise
            self._reader = _core.V1Reader.open(prefix)
            self.format = "v1"

    @property
    def prefix(self) -> str:
        return self._reader.prefix

    @property
    def num_shards(self) -> int:
        return self._reader.num_shards

    @property
    def big_endian(self) -> bool:
        """Whether the bundle was written on a big-endian host."""
        return self._reader.big_endian

    def data_filename(self, shard_id: int) -> str:
        return f"{self.prefix}.data-{shard_id:05d}-of-{self.num_shards:05d}"

    def keys(self) -> list[str]:
        """Every tensor key, in byte order (slices of partitioned tensors hidden)."""
        return self._reader.keys()

    def __contains__(self, key: str) -> bool:
        return self._reader.has_key(key)

    def keys_under(self, prefix: str) -> list[str]:
        """The keys that start with ``prefix``, in byte order."""
        keys = self.__dict__.get("_keys")
        if keys is None:
            keys = self._keys = self.keys()
        start = bisect.bisect_left(keys, prefix)
        end = start
        while end < len(keys) and keys[end].startswith(prefix):
            end += 1
        return keys[start:end]

    def stored_keys(self, checkpoint_key: str, siblings=()) -> list[str]:
        """The keys that hold the value an object-graph attribute names.

        Usually the attribute's ``checkpoint_key`` itself. TensorFlow's
        objects with a legacy saveable name record one attribute (``table``,
        ``ITERATOR``) whose key the stored keys extend by a suffix
        (``table-keys`` and ``table-values``, ``ITERATOR_STATE``): then those
        keys, leaving out any that extend a longer key among ``siblings`` (the
        other attributes' keys of the same object). Empty when none is stored.

        Example::

            reader.stored_keys("mutable/.ATTRIBUTES/table")
            # ['mutable/.ATTRIBUTES/table-keys', 'mutable/.ATTRIBUTES/table-values']
        """
        if checkpoint_key in self:
            return [checkpoint_key]
        longer = [s for s in siblings if s != checkpoint_key and s.startswith(checkpoint_key)]
        return [k for k in self.keys_under(checkpoint_key)
                if not any(k.startswith(s) for s in longer)]

    def debug_string(self) -> bytes:
        """``b"<key> (DT_FLOAT) [2,3]\\n"`` per index entry, as TensorFlow's
        ``CheckpointReader.debug_string()`` returns it (byte order; the
        stored slices of a partitioned tensor under their raw slice keys)."""
        return self._reader.debug_string()

    def entry(self, key: str) -> BundleEntry:
        dtype, shape, shard_id, offset, size, crc, slices = self._reader.entry(key)
        return BundleEntry(
            as_dtype(dtype), tuple(shape), shard_id, offset, size, crc,
            tuple(tuple(s) for s in slices),
        )

    def entries(self, keys) -> list:
        """The BundleEntry of each key (NotFoundError for a missing one)."""
        return [
            BundleEntry(as_dtype(dtype), tuple(shape), shard_id, offset, size, crc,
                        tuple(tuple(s) for s in slices))
            for dtype, shape, shard_id, offset, size, crc, slices in self._reader.entries(list(keys))
        ]

    def raw_entries(self, keys) -> list:
        """Like entries(), as plain tuples (dtype number, dims, shard_id,
        offset, size, crc32c, slices): cheaper for many keys."""
        return self._reader.entries(list(keys))

    def close_data_files(self) -> None:
        """Closes the data files opened by reads so far; the index stays in
        memory and a later read opens them again. Not during a read."""
        self._reader.close_data_files()

    def check_stored(self, key: str) -> None:
        """DataLossError unless the bytes the index claims for ``key`` lie in
        its data file(s); call before sizing a buffer by its entry's shape."""
        self._reader.check_stored(key)

    def read_into_many(self, requests) -> None:
        """Reads ``(key, array)`` pairs, each straight into its C-contiguous
        array of the tensor's dtype and shape, in parallel with the GIL released.
        A :class:`DeviceBuffer` destination is filled
        through pinned buffers, chunk by chunk, its CRC32C verified at the
        end. On an error the destinations' contents are unspecified."""
        self._reader.read_many([
            (key, dst._batch_data() if isinstance(dst, DeviceBuffer) else _as_bytes_view(dst))
            for key, dst in requests
        ])

    def read(self, key: str) -> np.ndarray:
        """The tensor under ``key`` as a new numpy array: an object array of
        bytes for strings, and for variants (tf.data iterator state) an
        object array holding each element's serialized
        ``VariantTensorDataProto``, every checksum verified."""
        dtype, shape, *_ = self._reader.entry(key)
        dtype = as_dtype(dtype)
        if dtype.name in ("string", "variant"):
            read = self._reader.read_strings if dtype.name == "string" else self._reader.read_variants
            items = read(key)
            out = np.empty(len(items), dtype=object)
            out[:] = items
            return out.reshape(shape)
        self.check_stored(key)  # before sizing a buffer by the index
        out = np.empty(shape, dtype=dtype.as_numpy_dtype)
        self._reader.read_into(key, _as_bytes_view(out))
        return out
