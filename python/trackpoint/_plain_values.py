"""The check that no plain Python value is silently left out of a save.

TensorFlow saves an object's trackable attributes and ignores the rest, so
``model.epoch = 3`` is lost at restore without a word. trackpoint refuses to
save such values instead: numbers, strings, bools, bytes and lists, tuples
and dicts of them held by a public attribute of an AutoTrackable (or a
Checkpoint), or as an item of a tracked list or dict. The error names every
path ("model/epoch") and the fix: ``trackpoint.JsonState(...)`` for state, a
leading underscore for configuration. None, functions, classes and modules
are not state and are not checked.
"""

from __future__ import annotations

import numbers
import types

from .errors import InvalidArgumentError
from .trackable.autotrackable import AutoTrackable, as_trackable
from .trackable.base import Trackable

__all__ = ["container_of", "is_configuration", "join", "refuse", "unsaved_values"]

_PLAIN = (bool, numbers.Number, str, bytes, bytearray)


def _plain_leaves(value, path: str) -> tuple[list, bool]:
    """(paths of the plain values in value, whether value is nothing but plain
    values). Trackables and adaptable objects are children, checked when they
    are visited; None and other objects (functions, classes, modules) are not
    state."""
    if value is None or isinstance(value, (type, types.ModuleType, types.FunctionType,
                                           types.MethodType, types.BuiltinFunctionType)):
        return [], False
    if type(value) in (list, dict):
        return [], False  # tracking wraps every list and dict but a NoDependency's
    if isinstance(value, Trackable) or (
            not isinstance(value, _PLAIN) and as_trackable(value) is not None):
        return [], False  # a child (a tracked tuple too): checked when visited
    if isinstance(value, _PLAIN):
        return [path], True
    if isinstance(value, (list, tuple, dict)):
        return _plain_items(value, path)
    return [], False


def _plain_items(container, path: str) -> tuple[list, bool]:
    """_plain_leaves of a container's items; the container's own path when
    it holds nothing else."""
    items = container.items() if isinstance(container, dict) else enumerate(container)
    found, only_plain = [], len(container) > 0
    for k, v in items:
        if isinstance(k, str) and k.startswith("_"):
            continue  # configuration, as an attribute named so
        if isinstance(v, Trackable):  # the usual item: a child, checked when visited
            only_plain = False
            continue
        sub, plain = _plain_leaves(v, join(path, str(k)))
        found += sub
        only_plain = only_plain and plain
    return ([path or "(root)"] if only_plain else found), only_plain


def unsaved_values(obj: Trackable, path: str) -> list:
    """Paths of plain Python values obj holds that a checkpoint would not
    save: public attributes of an AutoTrackable, items of a tracked list,
    tuple or dict."""
    if isinstance(obj, AutoTrackable):
        found = []
        untracked = obj._untracked()  # assigned as NoDependency(value): not state
        for name, v in vars(obj).items():
            if not name.startswith("_") and name not in untracked:
                found += _plain_leaves(v, join(path, name))[0]
        return found
    container = container_of(obj)
    return [] if container is None else _plain_items(container, path)[0]


def container_of(obj):
    """The list, tuple or dict a tracked container node stands for (the
    wrapper itself, or the tuple a TupleWrapper adapts); None for others."""
    if isinstance(obj, (list, tuple, dict)):
        return obj
    wrapped = getattr(obj, "_wrapped", None)
    value = wrapped() if callable(wrapped) else None
    return value if isinstance(value, tuple) else None


def is_configuration(obj, name: str, parent_is_configuration: bool) -> bool:
    """Whether a tracked container reached by the edge name is configuration,
    which is not checked for plain values: its name starts with "_", or it
    is inside such a container."""
    if container_of(obj) is None:
        return False
    return name.startswith("_") or parent_is_configuration


def join(path: str, name: str) -> str:
    """path/name ("name" under the root)."""
    return f"{path}/{name}" if path else name


def refuse(found: list) -> None:
    """Raises the error naming the paths found (the first ten)."""
    shown = ", ".join(found[:10]) + (f" and {len(found) - 10} more" if len(found) > 10 else "")
    raise InvalidArgumentError(
        f"cannot save {shown}: plain Python values (numbers, strings, bytes, containers of "
        "them) are not saved by a checkpoint and would be lost at restore. Wrap the value in "
        "trackpoint.JsonState(...) (it is then saved and restored as JSON), or, if it is "
        "configuration rather than state, name the attribute with a leading underscore"
    )
