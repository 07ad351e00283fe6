"""What a Checkpoint can hold: the Trackable protocol and the built-in trackables."""

from .autotrackable import AutoTrackable, DictWrapper, ListWrapper, NoDependency
from .base import Trackable
from .python_state import JsonState, PythonState
from .variable import Variable

__all__ = [
    "AutoTrackable", "DictWrapper", "JsonState", "ListWrapper", "NoDependency", "PythonState",
    "Trackable", "Variable",
]
