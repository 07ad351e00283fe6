"""Reading checkpoints by key, with TensorFlow's names: ``load_checkpoint``,
``list_variables``, ``load_variable`` and ``CheckpointReader``.

Works on any checkpoint TensorFlow or trackpoint wrote, without TensorFlow.

Example::

    import trackpoint
    for name, shape in trackpoint.list_variables("/tmp/run"):
        print(name, shape)
    kernel = trackpoint.load_variable("/tmp/run", "model/dense/kernel/.ATTRIBUTES/VARIABLE_VALUE")
"""

from __future__ import annotations

import os

import numpy as np

from .bundle import BundleReader
from .dtypes import DType
from .errors import NotFoundError
from .management import latest_checkpoint

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

    def __init__(self, prefix):
        self._bundle = BundleReader(prefix)

    @property
    def prefix(self) -> str:
        return self._bundle.prefix

    def has_tensor(self, name: str) -> bool:
        return name in self._bundle

    def get_tensor(self, name: str):
        """The value under ``name``; NotFoundError when there is none."""
        value = self._bundle.read(name)
        return value[()] if value.ndim == 0 else value

    def get_variable_to_shape_map(self) -> dict:
        """Every key to its shape, a list of ints."""
        return {key: list(self._bundle.entry(key).shape) for key in self._bundle.keys()}

    def get_variable_to_dtype_map(self) -> dict:
        """Every key to its :class:`~trackpoint.dtypes.DType`."""
        return {key: self._bundle.entry(key).dtype for key in self._bundle.keys()}

    def keys(self) -> list:
        """Every key, sorted."""
        return self._bundle.keys()

    def __repr__(self) -> str:
        return f"CheckpointReader({self.prefix!r})"


def _resolve(ckpt_dir_or_file) -> str:
    path = os.fspath(ckpt_dir_or_file)
    if os.path.isdir(path):
        latest = latest_checkpoint(path)
        if latest is None:
            raise ValueError(f"Couldn't find 'checkpoint' file or checkpoints in given directory {path}")
        return latest
    return path


def load_checkpoint(ckpt_dir_or_file) -> CheckpointReader:
    """A :class:`CheckpointReader` for a checkpoint prefix, or for the latest
    checkpoint of a directory.

    Raises ValueError for a directory without checkpoints and NotFoundError
    (a FileNotFoundError) for a prefix without an ``.index`` file.
    """
    return CheckpointReader(_resolve(ckpt_dir_or_file))


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
