"""numpy arrays as checkpoint variables, restored in place."""

from __future__ import annotations

import numpy as np

from ..dtypes import as_dtype
from ..trackable.base import Trackable
from ..trackable.registry import cached_adapter, register
from ..trackable.variable import VARIABLE_VALUE

__all__ = ["NumpyArray"]


class NumpyArray(Trackable):
    """Wraps a numpy array: saved like a variable (``VARIABLE_VALUE``),
    restored by writing into the same array, so references to it see the
    restored values.

    Example::

        weights = np.zeros((3, 3), np.float32)
        ckpt = trackpoint.Checkpoint(weights=weights)   # wrapped automatically
        ckpt.restore(path)                              # fills `weights` in place
    """

    def __init__(self, array: np.ndarray):
        if not array.flags.writeable:
            raise ValueError("cannot track a read-only numpy array: restore writes into it")
        self.array = array

    def _wrapped(self):
        return self.array

    def __array__(self, dtype=None, copy=None):
        return self.array if dtype is None else self.array.astype(dtype)

    def _serialize_to_tensors(self) -> dict:
        return {VARIABLE_VALUE: self.array}

    def _tensor_names(self) -> list:
        return [VARIABLE_VALUE]

    def _tensor_specs(self) -> dict:
        return {VARIABLE_VALUE: (as_dtype(self.array.dtype), self.array.shape)}

    def _restore_buffers(self) -> dict:
        return {} if self.array.dtype == object else {VARIABLE_VALUE: self.array}

    def _restore_from_tensors(self, tensors: dict) -> None:
        value = tensors[VARIABLE_VALUE]
        if value is not self.array:
            self.array[...] = value


register(lambda value: isinstance(value, np.ndarray),
         lambda array: cached_adapter(array, NumpyArray))
