"""Notice of changes to the object graph's structure, so that a save can reuse
the walk and the plan of the previous one.

A save walks every reachable object for its children, its tensors and its
plain values, and plans the keys from that. Between two saves of the same
model the walk usually finds exactly what it found before. The classes
defined here (AutoTrackable and its subclasses, the tracked lists and dicts,
Variable, a Checkpoint's root) change their structure only through their own
methods, and each such change calls :func:`changed`, which empties every
:class:`Cache`. A graph made only of such objects can therefore keep what the
walk produced in a Cache and skip the walk while the cache still holds it.

Objects of other classes (adapters of torch modules and optimizers, user
Trackables, tuples) can change without notice, so a graph holding one is
walked at every save: their classes are not :func:`announced`.

What a cache cannot see, and the save therefore checks itself each time: a
tracked list or dict changed through the plain list or dict it wraps (its
``_check_external``, which then calls :func:`changed`).
"""

from __future__ import annotations

import weakref

__all__ = ["Cache", "announces_changes", "announced", "changed"]

# What a walk reads from an object: a class that overrides none of these
# from an announcing class keeps that class's notices.
_PROTOCOL = (
    "__setattr__", "__delattr__", "_track_trackable", "_trackable_children",
    "_serialize_to_tensors", "_tensor_specs", "_slot_variables", "_slot_names",
    "_checkpoint_full_name",
)

_announcing: list = []  # classes that call changed() for every change of theirs
_verdicts: dict = {}  # class -> whether it is announced
_filled = weakref.WeakSet()  # the caches that hold something


class Cache:
    """One value derived from object graphs' structure, dropped (``value``
    becomes None) by any change of structure anywhere."""

    __slots__ = ("value", "__weakref__")

    def __init__(self):
        self.value = None

    def keep(self, value) -> None:
        self.value = value
        _filled.add(self)


def changed() -> None:
    """Called by the announcing classes on each change of their structure:
    an attribute set or deleted, a child tracked, an element of a tracked
    list or dict added, replaced or removed."""
    if _filled:
        for cache in list(_filled):
            cache.value = None
        _filled.clear()


def announces_changes(cls):
    """Class decorator: cls calls changed() for every change of its structure."""
    _announcing.append(cls)
    _verdicts.clear()
    return cls


def announced(obj) -> bool:
    """Whether obj's class announces its changes: an announcing class, or a
    subclass that overrides none of the methods a walk reads."""
    cls = type(obj)
    verdict = _verdicts.get(cls)
    if verdict is None:
        verdict = _verdicts[cls] = any(
            issubclass(cls, base) and all(getattr(cls, name, None) is getattr(base, name, None)
                                          for name in _PROTOCOL)
            for base in _announcing
        )
    return verdict
