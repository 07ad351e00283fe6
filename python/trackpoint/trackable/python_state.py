"""PythonState: a trackable whose value is a string the object produces from
Python state (saved as a scalar string tensor named ``py_state``)."""

from __future__ import annotations

import json

import numpy as np

from .base import Trackable

__all__ = ["PythonState", "JsonState", "PY_STATE"]

PY_STATE = "py_state"


class PythonState(Trackable):
    """Subclass and implement ``serialize() -> str`` and ``deserialize(str)``.

    TensorFlow stores such values after every tensor of the checkpoint, and so
    does trackpoint.
    """

    def serialize(self) -> str:
        raise NotImplementedError

    def deserialize(self, string_value: str) -> None:
        raise NotImplementedError

    def _serialize_to_tensors(self) -> dict:
        return {PY_STATE: np.array(self.serialize().encode("utf-8"), dtype=object)}

    def _tensor_names(self) -> list:
        return [PY_STATE]

    def _restore_from_tensors(self, tensors: dict) -> None:
        value = tensors[PY_STATE]
        value = value.reshape(-1)[0] if isinstance(value, np.ndarray) else value
        self.deserialize(value.decode("utf-8"))


class JsonState(PythonState):
    """Any JSON-able value (numbers, strings, lists, dicts), saved as JSON.

    Example::

        ckpt = trackpoint.Checkpoint(config=trackpoint.JsonState({"lr": 0.1, "epoch": 3}))
        ckpt.config.value["epoch"] += 1
    """

    def __init__(self, value=None):
        self.value = value

    def serialize(self) -> str:
        return json.dumps(self.value, sort_keys=True)

    def deserialize(self, string_value: str) -> None:
        self.value = json.loads(string_value)
