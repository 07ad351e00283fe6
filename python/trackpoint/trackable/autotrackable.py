"""AutoTrackable: objects whose trackable attributes become checkpoint children,
like tf.Module. The list, dict and tuple wrappers are in data_structures.py."""

from __future__ import annotations

from .base import Trackable
from .structure import announces_changes, changed
from .data_structures import (
    DictWrapper,
    ListWrapper,
    NoDependency,
    TupleWrapper,
    as_trackable,
    wrap_value,
)

__all__ = ["AutoTrackable", "DictWrapper", "ListWrapper", "NoDependency", "TupleWrapper",
           "as_trackable", "wrap_value"]


@announces_changes
class AutoTrackable(Trackable):
    """An object whose attributes holding trackables (or lists/dicts of them)
    are its children, in the order they were first assigned.

    Example::

        class Model(trackpoint.AutoTrackable):
            def __init__(self):
                self.dense = Dense()                            # child "dense"
                self.layers = [Dense(), Dense()]                # "layers/0", "layers/1"
                self.step = trackpoint.Variable(0, dtype="int64")
    """

    def __setattr__(self, name: str, value) -> None:
        if name.startswith("_self_"):
            object.__setattr__(self, name, value)
            return
        untracked = self._untracked()
        keep_out = isinstance(value, NoDependency)
        (untracked.add if keep_out else untracked.discard)(name)
        value = wrap_value(value)
        object.__setattr__(self, name, value)  # framework objects stay themselves
        children = self._children()
        trackable = None if keep_out else as_trackable(value)
        if trackable is not None or name in children or not name.startswith("_"):
            changed()  # a private plain value (configuration) changes nothing saved
        if trackable is not None:
            is_new = children.get(name) is not trackable
            children[name] = trackable  # keeps its first position when reassigned
            if is_new:
                self._handle_new_child(name, trackable)
        else:
            children.pop(name, None)

    def __delattr__(self, name: str) -> None:
        object.__delattr__(self, name)
        changed()
        self._children().pop(name, None)
        self._untracked().discard(name)

    def _untracked(self) -> set:
        """Names of attributes assigned as NoDependency(value): never saved."""
        try:
            return self._self_untracked
        except AttributeError:
            untracked = set()
            object.__setattr__(self, "_self_untracked", untracked)
            return untracked

    def _children(self) -> dict:
        try:
            return self._self_children
        except AttributeError:
            children = {}
            object.__setattr__(self, "_self_children", children)
            return children

    def _trackable_children(self) -> dict:
        return dict(self._children())
