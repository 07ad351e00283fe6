"""PythonState: a trackable whose value is a string the object produces from
Python state (saved as a scalar string tensor named ``py_state``)."""

from __future__ import annotations

import json

import numpy as np

from ..errors import InvalidArgumentError
from .base import Trackable

__all__ = ["PythonState", "JsonState", "PY_STATE", "UnsavableStateError"]

PY_STATE = "py_state"


class UnsavableStateError(InvalidArgumentError):
    """A value in an object's Python state cannot be saved. The saver adds the
    object's path to the message."""


class PythonState(Trackable):
    """Subclass and implement ``serialize()``, returning ``bytes`` or a
    ``str`` (saved as UTF-8), and ``deserialize(bytes)``, as with
    TensorFlow's ``tf.train.experimental.PythonState``: the value is saved at
    save time and handed back, as bytes, at restore time.

    TensorFlow stores such values after every tensor of the checkpoint, and so
    does trackpoint.

    Example, a numpy array saved with numpy's own format::

        class NumpyWrapper(trackpoint.PythonState):
            def __init__(self, array):
                self.array = array

            def serialize(self):
                buffer = io.BytesIO()
                np.save(buffer, self.array, allow_pickle=False)
                return buffer.getvalue()

            def deserialize(self, string_value):
                self.array = np.load(io.BytesIO(string_value), allow_pickle=False)
    """

    def serialize(self) -> bytes | str:
        raise NotImplementedError

    def deserialize(self, string_value: bytes) -> None:
        raise NotImplementedError

    def _serialize_to_tensors(self) -> dict:
        value = self.serialize()
        if isinstance(value, str):
            value = value.encode("utf-8")
        elif not isinstance(value, bytes):
            raise TypeError(
                f"{type(self).__name__}.serialize() returned a {type(value).__name__}; "
                "it must return bytes or str"
            )
        return {PY_STATE: np.array(value, dtype=object)}

    def _tensor_names(self) -> list:
        return [PY_STATE]

    def _restore_from_tensors(self, tensors: dict) -> None:
        value = tensors[PY_STATE]
        value = value.reshape(-1)[0] if isinstance(value, np.ndarray) else value
        self.deserialize(bytes(value))


class JsonState(PythonState):
    """Any JSON-able value (numbers, strings, lists, dicts), saved as JSON.

    The value is serialized when a save takes its snapshot, so a dict you keep
    mutating is saved as it is then; a restore replaces ``.value``.

    ``JsonState(sched.state_dict())`` is a snapshot of the state dict taken at
    construction (a new dict that the scheduler never updates): pass the
    object itself instead (``Checkpoint(scheduler=sched)``), which calls
    ``state_dict()`` at every save and ``load_state_dict()`` at restore (see
    :mod:`trackpoint.adapters.stateful`).

    Example::

        ckpt = trackpoint.Checkpoint(config=trackpoint.JsonState({"lr": 0.1, "epoch": 3}))
        ckpt.config.value["epoch"] += 1      # saved by the next save
    """

    def __init__(self, value=None):
        self.value = value

    def serialize(self) -> str:
        try:
            return json.dumps(self.value, sort_keys=True)
        except (TypeError, ValueError) as e:
            raise UnsavableStateError(f"JsonState value is not JSON data: {e}") from None

    def deserialize(self, string_value: bytes) -> None:
        self.value = json.loads(string_value)
