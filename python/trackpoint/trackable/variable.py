"""trackpoint.Variable: a mutable, numpy-backed tensor that checkpoints as TensorFlow's tf.Variable."""

from __future__ import annotations

import numpy as np

from ..dtypes import DType, as_dtype
from ..errors import InvalidArgumentError
from .base import Trackable
from .structure import announces_changes

__all__ = ["Variable", "VARIABLE_VALUE"]

VARIABLE_VALUE = "VARIABLE_VALUE"


def _to_array(value, dtype: DType | None) -> np.ndarray:
    if isinstance(value, Variable):
        value = value.numpy()
    if dtype is not None and dtype.name == "string" or (
        dtype is None and isinstance(value, (str, bytes))
    ):
        array = np.array(value, dtype=object)
        flat = [x.encode("utf-8") if isinstance(x, str) else bytes(x) for x in array.reshape(-1)]
        out = np.empty(len(flat), dtype=object)
        out[:] = flat
        return out.reshape(array.shape)
    array = np.array(value, dtype=dtype.as_numpy_dtype if dtype is not None else None)
    if array.dtype.kind in "SU":
        return _to_array(array.astype(object), as_dtype("string"))
    return array


@announces_changes  # a variable's structure (name, dtype, shape, value array) never changes
class Variable(Trackable):
    """A named, mutable tensor held in a numpy array.

    Saved under ``<path>/.ATTRIBUTES/VARIABLE_VALUE`` with TensorFlow's
    ``full_name`` (the name without ``":0"``; TensorFlow's default is
    ``"Variable"``), so TensorFlow restores it into a ``tf.Variable``.

    Example::

        v = trackpoint.Variable([1.0, 2.0])      # float32, like tf.Variable
        v.assign([3.0, 4.0])
        v.numpy()                                # array([3., 4.], dtype=float32)
        s = trackpoint.Variable(["a", "b"])      # a string variable (bytes)
    """

    def __init__(self, initial_value, dtype=None, name: str | None = None, trainable: bool = True):
        dt = as_dtype(dtype) if dtype is not None else None
        array = _to_array(initial_value, dt)
        if dt is None and not isinstance(initial_value, (np.ndarray, np.generic, Variable)):
            # Python numbers become float32 / int32, as in TensorFlow.
            if array.dtype == np.float64:
                array = array.astype(np.float32)
            elif array.dtype == np.int64 and (array.size == 0 or (
                    array.min() >= -2**31 and array.max() < 2**31)):
                array = array.astype(np.int32)
        self._self_value = array
        self._self_dtype = dt if dt is not None else as_dtype(array.dtype)
        self._self_name = name or "Variable"
        self.trainable = trainable

    # ---- TensorFlow's Variable API --------------------------------------------------
    @property
    def name(self) -> str:
        """``"<name>:0"``, as TensorFlow prints variable names."""
        return self._self_name + ":0"

    @property
    def dtype(self) -> DType:
        return self._self_dtype

    @property
    def shape(self) -> tuple:
        return self._self_value.shape

    def numpy(self) -> np.ndarray:
        """The value (the array itself: a 0-d variable gives a 0-d array)."""
        return self._self_value

    def value(self) -> np.ndarray:
        return self._self_value

    read_value = value

    def assign(self, value) -> "Variable":
        """Replaces the value; the shape and dtype must stay the same."""
        array = _to_array(value, self._self_dtype)
        if array.shape != self._self_value.shape:
            raise InvalidArgumentError(
                f"cannot assign a value of shape {list(array.shape)} to variable "
                f"{self.name} of shape {list(self.shape)}"
            )
        self._self_value[...] = array
        return self

    def assign_add(self, delta) -> "Variable":
        return self.assign(self._self_value + np.asarray(delta, self._self_value.dtype))

    def assign_sub(self, delta) -> "Variable":
        return self.assign(self._self_value - np.asarray(delta, self._self_value.dtype))

    def __array__(self, dtype=None, copy=None):
        return self._self_value if dtype is None else self._self_value.astype(dtype)

    def __int__(self) -> int:
        return int(self._self_value)

    def __index__(self) -> int:
        return int(self._self_value)

    def __float__(self) -> float:
        return float(self._self_value)

    def __repr__(self) -> str:
        return (f"<trackpoint.Variable '{self.name}' shape={list(self.shape)} "
                f"dtype={self.dtype.name}, numpy={self._self_value!r}>")

    # ---- Trackable --------------------------------------------------------------------
    def _serialize_to_tensors(self) -> dict:
        return {VARIABLE_VALUE: self._self_value}

    def _tensor_names(self) -> list:
        return [VARIABLE_VALUE]

    def _checkpoint_full_name(self) -> str:
        return self._self_name

    def _tensor_specs(self) -> dict:
        return {VARIABLE_VALUE: (self._self_dtype, self._self_value.shape)}

    def _restore_buffers(self) -> dict:
        if self._self_value.dtype == object:
            return {}
        return {VARIABLE_VALUE: self._self_value}

    def _restore_from_tensors(self, tensors: dict) -> None:
        value = tensors[VARIABLE_VALUE]
        if value is not self._self_value:
            self._self_value[...] = value
