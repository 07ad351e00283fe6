"""What a Checkpoint can hold: the Trackable protocol and the built-in trackables."""

from .autotrackable import AutoTrackable, DictWrapper, ListWrapper
from .base import Trackable
from .python_state import JsonState, PythonState
from .variable import Variable

__all__ = [
    "AutoTrackable", "DictWrapper", "JsonState", "ListWrapper", "PythonState",
    "Trackable", "Variable",
]
