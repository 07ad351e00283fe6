"""AutoTrackable: objects whose trackable attributes become checkpoint children,
like tf.Module; and the list/dict wrappers that track their elements."""

from __future__ import annotations

from .base import Trackable

__all__ = ["AutoTrackable", "ListWrapper", "DictWrapper", "wrap_value"]


def wrap_value(value):
    """What an attribute, list element or dict value is stored as: lists and
    dicts become tracked wrappers; everything else stays as it is."""
    if type(value) is list:
        return ListWrapper(value)
    if type(value) is dict:
        return DictWrapper(value)
    return value


def as_trackable(value):
    """The trackable for a stored value: itself, or its adapter (torch modules
    and optimizers, numpy arrays); None when it is not checkpointable."""
    if isinstance(value, Trackable):
        return value
    from ..adapters import adapt

    adapted = adapt(value)
    return adapted if isinstance(adapted, Trackable) else None


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
        value = wrap_value(value)
        object.__setattr__(self, name, value)  # framework objects stay themselves
        children = self._children()
        trackable = as_trackable(value)
        if trackable is not None:
            is_new = children.get(name) is not trackable
            children[name] = trackable  # keeps its first position when reassigned
            if is_new:
                self._handle_new_child(name, trackable)
        else:
            children.pop(name, None)

    def __delattr__(self, name: str) -> None:
        object.__delattr__(self, name)
        self._children().pop(name, None)

    def _children(self) -> dict:
        try:
            return self._self_children
        except AttributeError:
            children = {}
            object.__setattr__(self, "_self_children", children)
            return children

    def _trackable_children(self) -> dict:
        return dict(self._children())


class ListWrapper(list, Trackable):
    """A list that tracks its trackable elements as children "0", "1", ...

    Elements are kept as given (a torch module stays a module); nested lists
    and dicts become wrappers."""

    def __init__(self, items=()):
        super().__init__(wrap_value(v) for v in items)

    def _trackable_children(self) -> dict:
        children = {}
        for i, v in enumerate(self):
            trackable = as_trackable(v)
            if trackable is not None:
                children[str(i)] = trackable
        # Adapters live as long as the list holds their objects.
        object.__setattr__(self, "_self_adapters", children)
        return children

    def _track_new(self, name: str, value) -> None:
        trackable = as_trackable(value)
        if trackable is not None:
            self._handle_new_child(name, trackable)

    def __setitem__(self, index, value):
        if isinstance(index, slice):
            super().__setitem__(index, [wrap_value(v) for v in value])
            return
        value = wrap_value(value)
        super().__setitem__(index, value)
        self._track_new(str(index % len(self)), value)

    def append(self, value) -> None:
        value = wrap_value(value)
        super().append(value)
        self._track_new(str(len(self) - 1), value)

    def extend(self, values) -> None:
        for v in values:
            self.append(v)

    def insert(self, index, value) -> None:
        super().insert(index, wrap_value(value))

    def __iadd__(self, values):
        self.extend(values)
        return self

    def __eq__(self, other):
        return list.__eq__(self, other)

    __hash__ = None

    def __repr__(self) -> str:
        return f"ListWrapper({list.__repr__(self)})"


class DictWrapper(dict, Trackable):
    """A dict that tracks its trackable values as children named by their keys.

    Keys must be strings for the dict to be saved. Values are kept as given."""

    def __init__(self, items=()):
        super().__init__()
        for k, v in dict(items).items():
            dict.__setitem__(self, k, wrap_value(v))

    def _trackable_children(self) -> dict:
        children = {}
        for k, v in self.items():
            trackable = as_trackable(v)
            if trackable is None:
                continue
            if not isinstance(k, str):
                raise ValueError(
                    f"cannot save a dict with the non-string key {k!r}: checkpoint names "
                    "are strings"
                )
            children[k] = trackable
        object.__setattr__(self, "_self_adapters", children)
        return children

    def __setitem__(self, key, value) -> None:
        value = wrap_value(value)
        dict.__setitem__(self, key, value)
        trackable = as_trackable(value)
        if trackable is not None and isinstance(key, str):
            self._handle_new_child(key, trackable)

    def update(self, *args, **kwargs) -> None:
        for k, v in dict(*args, **kwargs).items():
            self[k] = v

    def setdefault(self, key, default=None):
        if key not in self:
            self[key] = default
        return self[key]

    def __eq__(self, other):
        return dict.__eq__(self, other)

    __hash__ = None

    def __repr__(self) -> str:
        return f"DictWrapper({dict.__repr__(self)})"
