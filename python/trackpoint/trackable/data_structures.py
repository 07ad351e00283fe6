"""Tracked lists, dicts and tuples: the containers an AutoTrackable's
attributes may hold, with TensorFlow's rules for what can still be saved.

A list or dict assigned to an attribute is wrapped, not copied: the wrapper
works on the same list or dict object (``l = []; m.l = l; m.l.append(v)``
leaves ``v`` in ``l`` too), and its trackable elements are children named by
position ("0", "1", ...) or by key. Lists and dicts inside become wrappers in
place. A tuple holding trackables (or lists/dicts) keeps its type (a
namedtuple stays that namedtuple) and is tracked through an adapter.

Restoring matches list elements by position, so a list may only grow once
something trackable is in it. Saving then refuses (ValueError), as
TensorFlow does, a list in which a trackable element was replaced, removed
or moved (``insert``, ``del``, ``pop``, ``remove``, ``clear``, slice
assignment, ``sort``, ``reverse``, ``*= 0``), and any list or dict changed
through the original object rather than the wrapper: its positions may have
shifted, and a restore would put values into the wrong objects. Dicts are
matched by key, so replacing or deleting their values is fine; a non-string
key that maps to something trackable cannot be saved.

Example::

    m = trackpoint.AutoTrackable()
    m.layers = []                       # a ListWrapper
    m.layers.append(Dense())            # saved as m/layers/0/...
    m.layers.insert(0, Dense())         # saving m now raises ValueError
"""

from __future__ import annotations

import copy
from types import GenericAlias

from .base import Trackable
from .registry import adapt, cached_adapter
from .structure import announces_changes, changed

__all__ = ["DictWrapper", "ListWrapper", "NoDependency", "TupleWrapper", "as_trackable",
           "wrap_value"]


class NoDependency:
    """Marks a value to be stored as it is and never tracked nor saved.

    Example::

        m.cache = trackpoint.NoDependency([])   # m.cache is that plain list
    """

    def __init__(self, value):
        self.value = value


def wrap_value(value):
    """What an attribute, list element or dict value is stored as: lists and
    dicts become tracked wrappers (of the same object), tuples holding
    something to track are rebuilt with wrapped elements; everything else
    stays as it is (a ``NoDependency``'s value unwrapped)."""
    if isinstance(value, NoDependency):
        return value.value
    if type(value) is list:
        return ListWrapper(value)
    if type(value) is dict:
        return DictWrapper(value)
    if isinstance(value, tuple):
        return _wrap_tuple(value)
    return value


def as_trackable(value):
    """The trackable for a stored value: itself, or its adapter (tuples,
    torch modules and optimizers, numpy arrays, ...); None when it is not
    checkpointable."""
    if isinstance(value, Trackable):
        return value
    if isinstance(value, tuple):
        return cached_adapter(value, TupleWrapper) if _tuple_needs_tracking(value) else None
    adapted = adapt(value)
    return adapted if isinstance(adapted, Trackable) else None


def _is_trackable(value) -> bool:
    return as_trackable(value) is not None


def _children_of(items, cache: dict) -> dict:
    """name -> trackable for (name, value) pairs, reusing the adapters in
    cache (which then holds exactly those, keeping them alive)."""
    children = {}
    for name, value in items:
        trackable = as_trackable(value)
        if trackable is not None:
            children[name] = trackable
    cache.clear()
    cache.update(children)
    return children


# ---- lists -----------------------------------------------------------------------------------
def _same_items(a, b) -> bool:
    return len(a) == len(b) and all(x is y for x, y in zip(a, b))


@announces_changes
class ListWrapper(list, Trackable):
    """A list that tracks its trackable elements as children "0", "1", ...

    It operates on the list it was given (the same object), so the wrapper
    and that list always hold the same elements. See the module docstring
    for the changes after which it can no longer be saved."""

    def __init__(self, wrapped=None):
        storage = wrapped if type(wrapped) is list else list(wrapped or ())
        for i, value in enumerate(storage):
            w = wrap_value(value)
            if w is not value:
                storage[i] = w
        object.__setattr__(self, "_self_storage", storage)
        object.__setattr__(self, "_self_snapshot", list(storage))
        object.__setattr__(self, "_self_external", False)
        object.__setattr__(self, "_self_mutation", None)  # the operation that moved elements
        object.__setattr__(self, "_self_adapters", {})
        list.__init__(self, storage)

    # ---- bookkeeping -------------------------------------------------------------------
    def _check_external(self, quick: bool = False) -> None:
        """Notices (for good) a change made through the wrapped list itself;
        quick compares lengths and last elements only (for appends)."""
        storage, snapshot = self._self_storage, self._self_snapshot
        if quick:
            changed = len(storage) != len(snapshot) or (storage and storage[-1] is not snapshot[-1])
        else:
            changed = not _same_items(storage, snapshot)
        if changed:
            object.__setattr__(self, "_self_external", True)
            self._updated()

    def _updated(self) -> None:
        """After a change: the list's own slots (what C code such as numpy
        reads) and the snapshot take the storage's elements."""
        changed()
        list.__setitem__(self, slice(None), self._self_storage)
        object.__setattr__(self, "_self_snapshot", list(self._self_storage))

    def _mutated(self, operation: str) -> None:
        if self._self_mutation is None:
            object.__setattr__(self, "_self_mutation", operation)

    def _has_trackable(self) -> bool:
        return any(_is_trackable(v) for v in self._self_storage)

    def _track_new(self, before: list) -> None:
        """Tracks the elements now at positions that held something else
        before: a restore waiting for that position receives them."""
        for i, value in enumerate(self._self_storage):
            if i >= len(before) or before[i] is not value:
                trackable = as_trackable(value)
                if trackable is not None:
                    self._handle_new_child(str(i), trackable)

    def _replace(self, operation: str, change) -> None:
        """Runs change(storage) for an assignment: replacing a trackable
        element makes the list unsaveable."""
        self._check_external()
        before = list(self._self_storage)
        change(self._self_storage)
        after = self._self_storage
        if any(i >= len(after) or after[i] is not old
               for i, old in enumerate(before) if _is_trackable(old)):
            self._mutated(operation)
        self._updated()
        if self._self_mutation is None:
            self._track_new(before)

    def _rearrange(self, operation: str, change) -> None:
        """Runs change(storage) for an operation that removes or moves
        elements: the list becomes unsaveable if it holds anything trackable
        (even when nothing actually moved)."""
        self._check_external()
        before = list(self._self_storage)
        if self._has_trackable():
            self._mutated(operation)
        out = change(self._self_storage)
        self._updated()
        if self._self_mutation is None:  # else positions no longer say which object is which
            self._track_new(before)
        return out

    def _trackable_children(self) -> dict:
        self._check_external()
        if self._self_mutation is not None:
            raise ValueError(
                f"Unable to save the object {self!r}: A list element was replaced, deleted or "
                f"moved ({self._self_mutation}) after it was tracked. Lists are restored by "
                "position, so once a list holds trackables it may only be appended to; "
                "build a new list instead, or wrap this one in trackpoint.NoDependency if "
                "it need not be saved."
            )
        if self._self_external:
            raise ValueError(
                f"Unable to save the object {self!r}: The wrapped list was modified outside "
                f"the wrapper (it now holds {self._self_storage!r}, it held "
                f"{self._self_snapshot!r} after the wrapper's last change), so its positions "
                "cannot be trusted for restoring. Change the list through the attribute it "
                "was assigned to, or wrap it in trackpoint.NoDependency if it need not be saved."
            )
        return _children_of(((str(i), v) for i, v in enumerate(self._self_storage)),
                            self._self_adapters)

    # ---- growing (always allowed) ----------------------------------------------------------
    def append(self, value) -> None:
        self._check_external(quick=True)
        value = wrap_value(value)
        changed()
        self._self_storage.append(value)
        list.append(self, value)
        self._self_snapshot.append(value)
        trackable = as_trackable(value)
        if trackable is not None:
            self._handle_new_child(str(len(self._self_storage) - 1), trackable)

    def extend(self, values) -> None:
        for value in list(values):
            self.append(value)

    def __iadd__(self, values):
        self.extend(values)
        return self

    def __imul__(self, n):
        if n > 0:
            self.extend(list(self._self_storage) * (n - 1))
        else:
            self._rearrange("__imul__", lambda s: s.clear())
        return self

    # ---- replacing, removing, moving -------------------------------------------------------
    def __setitem__(self, index, value):
        if isinstance(index, slice):
            values = [wrap_value(v) for v in value]
            self._replace("__setslice__", lambda s: s.__setitem__(index, values))
        else:
            value = wrap_value(value)
            self._replace("__setitem__", lambda s: s.__setitem__(index, value))

    def __delitem__(self, index):
        operation = "__delslice__" if isinstance(index, slice) else "__delitem__"
        self._rearrange(operation, lambda s: s.__delitem__(index))

    def insert(self, index, value) -> None:
        value = wrap_value(value)
        self._rearrange("insert", lambda s: s.insert(index, value))

    def pop(self, index=-1):
        return self._rearrange("pop", lambda s: s.pop(index))

    def remove(self, value) -> None:
        self._rearrange("remove", lambda s: s.remove(value))

    def clear(self) -> None:
        self._rearrange("clear", lambda s: s.clear())

    def sort(self, *, key=None, reverse=False) -> None:
        self._rearrange("sort", lambda s: s.sort(key=key, reverse=reverse))

    def reverse(self) -> None:
        self._rearrange("reverse", lambda s: s.reverse())

    # ---- reading (from the wrapped list, which may have changed on its own) ----------------
    def __getitem__(self, index):
        return self._self_storage[index]  # a slice is a plain list

    def __len__(self) -> int:
        return len(self._self_storage)

    def __iter__(self):
        return iter(self._self_storage)

    def __reversed__(self):
        return reversed(self._self_storage)

    def __contains__(self, value) -> bool:
        return value in self._self_storage

    def index(self, *args) -> int:
        return self._self_storage.index(*args)

    def count(self, value) -> int:
        return self._self_storage.count(value)

    def __sizeof__(self) -> int:
        return list.__sizeof__(self) + self._self_storage.__sizeof__()

    # ---- comparing and combining: as the plain list it holds -------------------------------
    @staticmethod
    def _plain(other):
        return other._self_storage if isinstance(other, ListWrapper) else other

    def __eq__(self, other):
        return self._self_storage == self._plain(other)

    def __ne__(self, other):
        return self._self_storage != self._plain(other)

    def __lt__(self, other):
        return self._self_storage < self._plain(other)

    def __le__(self, other):
        return self._self_storage <= self._plain(other)

    def __gt__(self, other):
        return self._self_storage > self._plain(other)

    def __ge__(self, other):
        return self._self_storage >= self._plain(other)

    __hash__ = None  # as a list

    def __add__(self, other):
        return self._self_storage + self._plain(other)

    def __radd__(self, other):
        return self._plain(other) + self._self_storage

    def __mul__(self, n):
        return self._self_storage * n

    def __rmul__(self, n):
        return n * self._self_storage

    __class_getitem__ = classmethod(GenericAlias)

    # ---- copies keep the wrapper's state (an unsaveable list stays unsaveable) -------------
    def _copy_state_to(self, other: ListWrapper) -> ListWrapper:
        self._check_external()
        object.__setattr__(other, "_self_external", self._self_external)
        object.__setattr__(other, "_self_mutation", self._self_mutation)
        return other

    def copy(self) -> ListWrapper:
        return self._copy_state_to(ListWrapper(list(self._self_storage)))

    def __copy__(self) -> ListWrapper:
        return self.copy()

    def __deepcopy__(self, memo) -> ListWrapper:
        result = ListWrapper.__new__(ListWrapper)
        memo[id(self)] = result
        ListWrapper.__init__(result, copy.deepcopy(self._self_storage, memo))
        return self._copy_state_to(result)

    def __reduce__(self):
        return ListWrapper, (list(self._self_storage),)

    def __repr__(self) -> str:
        return f"ListWrapper({self._self_storage!r})"


# ---- dicts -----------------------------------------------------------------------------------
def _same_entries(a: dict, b: dict) -> bool:
    return len(a) == len(b) and all(k in b and b[k] is v for k, v in a.items())


@announces_changes
class DictWrapper(dict, Trackable):
    """A dict that tracks its trackable values as children named by their keys.

    It operates on the dict it was given (the same object). Values may be
    replaced and deleted; a change made through the original dict rather
    than the wrapper, or a non-string key mapping to something trackable,
    makes it unsaveable."""

    def __init__(self, wrapped=None, **kwargs):
        storage = wrapped if type(wrapped) is dict else dict(wrapped or ())
        storage.update(kwargs)
        for key, value in list(storage.items()):
            w = wrap_value(value)
            if w is not value:
                storage[key] = w
        object.__setattr__(self, "_self_storage", storage)
        object.__setattr__(self, "_self_snapshot", dict(storage))
        object.__setattr__(self, "_self_external", False)
        object.__setattr__(self, "_self_adapters", {})
        dict.__init__(self, storage)

    # ---- bookkeeping -------------------------------------------------------------------
    def _check_external(self, quick: bool = False) -> None:
        storage, snapshot = self._self_storage, self._self_snapshot
        changed = (len(storage) != len(snapshot)) if quick else not _same_entries(storage, snapshot)
        if changed:
            object.__setattr__(self, "_self_external", True)
            self._updated()

    def _updated(self) -> None:
        changed()
        dict.clear(self)
        dict.update(self, self._self_storage)
        object.__setattr__(self, "_self_snapshot", dict(self._self_storage))

    def _change(self, change):
        self._check_external()
        out = change(self._self_storage)
        self._updated()
        return out

    def _trackable_children(self) -> dict:
        self._check_external()
        if self._self_external:
            raise ValueError(
                f"Unable to save the object {self!r}: The wrapped dictionary was modified "
                "outside the wrapper (through the dict object that was assigned), so the "
                "checkpoint may not hold what the wrapper tracks. Change it through the "
                "attribute it was assigned to, or wrap it in trackpoint.NoDependency if it "
                "need not be saved."
            )
        for key, value in self._self_storage.items():
            if not isinstance(key, str) and _is_trackable(value):
                raise ValueError(
                    f"Unable to save the object {self!r}: it holds a non-string key {key!r} "
                    "which maps to a trackable object or mutable data structure; checkpoint "
                    "names are strings."
                )
        return _children_of(self._self_storage.items(), self._self_adapters)

    # ---- writing -------------------------------------------------------------------------
    def __setitem__(self, key, value) -> None:
        self._check_external(quick=True)
        value = wrap_value(value)
        changed()
        self._self_storage[key] = value
        dict.__setitem__(self, key, value)
        self._self_snapshot[key] = value
        trackable = as_trackable(value)
        if trackable is not None and isinstance(key, str):
            self._handle_new_child(key, trackable)

    def __delitem__(self, key) -> None:
        self._change(lambda s: s.__delitem__(key))

    def update(self, *args, **kwargs) -> None:
        for key, value in dict(*args, **kwargs).items():
            self[key] = value

    def setdefault(self, key, default=None):
        if key not in self._self_storage:
            self[key] = default
        return self._self_storage[key]

    def pop(self, *args):
        return self._change(lambda s: s.pop(*args))

    def popitem(self):
        return self._change(lambda s: s.popitem())

    def clear(self) -> None:
        self._change(lambda s: s.clear())

    def __ior__(self, other):
        self.update(other)
        return self

    # ---- reading -------------------------------------------------------------------------
    def __getitem__(self, key):
        return self._self_storage[key]

    def get(self, key, default=None):
        return self._self_storage.get(key, default)

    def __contains__(self, key) -> bool:
        return key in self._self_storage

    def __iter__(self):
        return iter(self._self_storage)

    def __reversed__(self):
        return reversed(self._self_storage)

    def __len__(self) -> int:
        return len(self._self_storage)

    def keys(self):
        return self._self_storage.keys()

    def values(self):
        return self._self_storage.values()

    def items(self):
        return self._self_storage.items()

    def __sizeof__(self) -> int:
        return dict.__sizeof__(self) + self._self_storage.__sizeof__()

    @staticmethod
    def _plain(other):
        return other._self_storage if isinstance(other, DictWrapper) else other

    def __eq__(self, other):
        return self._self_storage == self._plain(other)

    def __ne__(self, other):
        return self._self_storage != self._plain(other)

    __hash__ = None  # as a dict

    def __or__(self, other):
        return self._self_storage | self._plain(other)

    def __ror__(self, other):
        return self._plain(other) | self._self_storage

    __class_getitem__ = classmethod(GenericAlias)

    @classmethod
    def fromkeys(cls, keys, value=None) -> DictWrapper:
        return cls(dict.fromkeys(keys, value))

    # ---- copies keep the wrapper's state -------------------------------------------------
    def _copy_state_to(self, other: DictWrapper) -> DictWrapper:
        self._check_external()
        object.__setattr__(other, "_self_external", self._self_external)
        return other

    def copy(self) -> DictWrapper:
        return self._copy_state_to(DictWrapper(dict(self._self_storage)))

    def __copy__(self) -> DictWrapper:
        return self.copy()

    def __deepcopy__(self, memo) -> DictWrapper:
        result = DictWrapper.__new__(DictWrapper)
        memo[id(self)] = result
        DictWrapper.__init__(result, copy.deepcopy(self._self_storage, memo))
        return self._copy_state_to(result)

    def __reduce__(self):
        return DictWrapper, (dict(self._self_storage),)

    def __repr__(self) -> str:
        return f"DictWrapper({self._self_storage!r})"


# ---- tuples ----------------------------------------------------------------------------------
def _tuple_needs_tracking(t: tuple) -> bool:
    return any(type(v) in (list, dict) or _is_trackable(v) for v in t)


def _wrap_tuple(t: tuple) -> tuple:
    """t with its lists and dicts wrapped, as a tuple of the same type; t
    itself when nothing needs wrapping or its type cannot be rebuilt with
    the same elements (then TupleWrapper refuses to save its lists)."""
    wrapped = [wrap_value(v) for v in t]
    if all(w is v for w, v in zip(wrapped, t)):
        return t
    try:
        if type(t) is tuple:
            return tuple(wrapped)
        rebuilt = type(t)(*wrapped) if hasattr(t, "_fields") else type(t)(wrapped)
    except TypeError:
        return t
    if not isinstance(rebuilt, tuple) or not _same_items(rebuilt, wrapped):
        return t
    return rebuilt


class TupleWrapper(Trackable):
    """The trackable of a tuple (or namedtuple) holding trackables: children
    "0", "1", ... and, for a namedtuple, its field names first, each field's
    name and position leading to the same object (as TensorFlow saves them).

    The tuple itself stays the attribute's value, of its own type."""

    def __init__(self, value: tuple):
        self._self_tuple = value
        self._self_adapters = {}

    def _wrapped(self) -> tuple:
        return self._self_tuple

    def __repr__(self) -> str:
        return f"TupleWrapper({self._self_tuple!r})"

    def _trackable_children(self) -> dict:
        t = self._self_tuple
        for i, value in enumerate(t):
            if type(value) in (list, dict):
                raise ValueError(
                    f"Unable to save the tuple {t!r}: element {i} is a {type(value).__name__} "
                    f"that could not be tracked, because {type(t).__name__} cannot be rebuilt "
                    "with tracked elements (its constructor takes other arguments); store a "
                    "list or dict of it instead, or wrap it in trackpoint.NoDependency."
                )
        items = [(str(i), v) for i, v in enumerate(t)]
        if hasattr(t, "_fields"):
            items = [(name, getattr(t, name)) for name in t._fields] + items
        return _children_of(items, self._self_adapters)
