"""Reading checkpoints by key, with TensorFlow's names: ``load_checkpoint``,
``list_variables``, ``load_variable`` and ``CheckpointReader``.

Works on the checkpoints TensorFlow or trackpoint write (the V2 tensor
bundle, object-based or name-based), and on TensorFlow's old single-file V1
format (see BundleReader), without TensorFlow.

Example::

    import trackpoint
    for name, shape in trackpoint.list_variables("/tmp/run"):
        print(name, shape)
    kernel = trackpoint.load_variable("/tmp/run", "model/dense/kernel/.ATTRIBUTES/VARIABLE_VALUE")
"""

from __future__ import annotations

import os
import stat
import sys

import numpy as np

from . import _core
from ._paths import local_path
from .bundle import BundleReader
from .errors import DataLossError, NotFoundError, from_os_error
from .state_file import latest_checkpoint

__all__ = ["CheckpointReader", "load_checkpoint", "list_variables", "load_variable"]


class CheckpointReader:
    """Reads the tensors of one checkpoint (as ``tf.train.load_checkpoint`` returns).

    ``get_tensor`` returns numpy arrays: a 0-d numeric tensor as a numpy
    scalar, a string tensor as an object array of ``bytes`` (a 0-d one as
    ``bytes``), bfloat16 and float8 as ``ml_dtypes`` arrays. Every read checks
    the CRC32C of the bytes it reads.

    Example::

        reader = trackpoint.load_checkpoint("/tmp/run/ckpt-3")
        shapes = reader.get_variable_to_shape_map()
        value = reader.get_tensor("save_counter/.ATTRIBUTES/VARIABLE_VALUE")
    """

    def __init__(self, prefix, *, mmap: bool = False, mmap_min_bytes: int = 1 << 20):
        self._bundle = _open_bundle(local_path(prefix))
        self._mmap = (mmap and sys.byteorder == "little" and not self._bundle.big_endian
                      and self._bundle.format == "v2")
        self._mmap_min_bytes = mmap_min_bytes

    @property
    def prefix(self) -> str:
        return self._bundle.prefix

    def has_tensor(self, name: str) -> bool:
        return name in self._bundle

    def get_tensor(self, name: str):
        """The value under ``name``; NotFoundError when there is none.

        With ``mmap=True``, a plain (unpartitioned) fixed-size tensor of at
        least ``mmap_min_bytes`` comes back as a read-only ``numpy.memmap``
        of the data file: no copy, pages read on demand. Its CRC32C is
        checked once, when the view is made."""
        if self._mmap:
            view = self._mapped(name)
            if view is not None:
                return view
        value = self._bundle.read(name)
        return value[()] if value.ndim == 0 else value

    def _mapped(self, name: str):
        entry = self._bundle.entry(name)
        if entry.slices or entry.dtype.size == 0 or entry.size < max(self._mmap_min_bytes, 1):
            return None
        path = self._bundle.data_filename(entry.shard_id)
        itemsize = np.dtype(entry.dtype.as_numpy_dtype).itemsize
        if int(np.prod(entry.shape, dtype=object)) * itemsize != entry.size:
            raise DataLossError(f"tensor {name!r} in {self.prefix}: the index says {entry.size} "
                                f"bytes for shape {list(entry.shape)} of {entry.dtype.name}")
        try:
            with open(path, "rb") as f:
                st = os.fstat(f.fileno())
                if not stat.S_ISREG(st.st_mode):
                    raise DataLossError(f"cannot map tensor {name!r}: its data file {path} "
                                        f"is not a regular file")
                if entry.offset + entry.size > st.st_size:
                    raise DataLossError(
                        f"tensor {name!r} needs bytes [{entry.offset}, "
                        f"{entry.offset + entry.size}) of {path}, which holds {st.st_size} "
                        f"bytes (data file truncated)")
                view = np.memmap(f, dtype=entry.dtype.as_numpy_dtype, mode="r",
                                 offset=entry.offset, shape=entry.shape)
        except OSError as e:
            raise from_os_error(e, f"cannot map tensor {name!r} from {path}") from e
        if _core.crc32c(view.reshape(-1).view(np.uint8)) != _core.crc32c_unmask(entry.crc32c):
            raise DataLossError(f"checksum mismatch for tensor {name!r} in {path} "
                                f"at offset {entry.offset} (data corrupted)")
        return view

    def get_variable_to_shape_map(self) -> dict:
        """Every key to its shape, a list of ints."""
        return {key: list(self._bundle.entry(key).shape) for key in self._bundle.keys()}

    def get_variable_to_dtype_map(self) -> dict:
        """Every key to its :class:`~trackpoint.dtypes.DType`."""
        return {key: self._bundle.entry(key).dtype for key in self._bundle.keys()}

    def keys(self) -> list:
        """Every key, sorted."""
        return self._bundle.keys()

    def debug_string(self) -> bytes:
        """One line ``b"<key> (<DT_TYPE>) [<dims>]\\n"`` per tensor, as
        TensorFlow's ``debug_string()`` returns it (bytes, in key order).

        Example::

            >>> print(reader.debug_string().decode())
            v0 (DT_FLOAT) [2,3]
            v1 (DT_FLOAT) [3,2,1]
        """
        return self._bundle.debug_string()

    def __repr__(self) -> str:
        return f"CheckpointReader({self.prefix!r})"


def _open_bundle(prefix: str):
    try:
        return BundleReader(prefix)
    except NotFoundError as e:
        # TensorFlow's words, which its tests and users match on.
        raise NotFoundError(
            f"Unsuccessful TensorSliceReader constructor: Failed to find any matching "
            f"files for {prefix} ({e})"
        ) from None


def _resolve(ckpt_dir_or_file) -> str:
    path = local_path(ckpt_dir_or_file)
    if os.path.isdir(path):
        latest = latest_checkpoint(path)
        if latest is None:
            raise ValueError(f"Couldn't find 'checkpoint' file or checkpoints in given directory {path}")
        return latest
    return path


def load_checkpoint(ckpt_dir_or_file, *, mmap: bool = False) -> CheckpointReader:
    """A :class:`CheckpointReader` for a checkpoint prefix, or for the latest
    checkpoint of a directory. ``mmap=True`` makes ``get_tensor`` return
    zero-copy read-only views of large tensors (see CheckpointReader).

    Raises ValueError for a directory without checkpoints and NotFoundError
    (a FileNotFoundError) for a prefix without an ``.index`` file.
    """
    return CheckpointReader(_resolve(ckpt_dir_or_file), mmap=mmap)


def list_variables(ckpt_dir_or_file) -> list:
    """``[(key, shape), ...]`` for every tensor in the checkpoint, sorted by key."""
    reader = load_checkpoint(ckpt_dir_or_file)
    shapes = reader.get_variable_to_shape_map()
    return [(name, shapes[name]) for name in sorted(shapes)]


def load_variable(ckpt_dir_or_file, name: str):
    """The value of one tensor. A trailing ``":0"`` on ``name`` is ignored, as
    TensorFlow ignores it."""
    if name.endswith(":0"):
        name = name[:-2]
    return load_checkpoint(ckpt_dir_or_file).get_tensor(name)
