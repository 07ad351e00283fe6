"""The adapter registry: how a framework object (a numpy array, a torch
module, an object with ``state_dict()``) becomes a trackable.

The core (:mod:`trackpoint.trackable.data_structures`, and so ``Checkpoint``
and ``AutoTrackable``) asks :func:`adapt` and knows no framework; the
adapter modules register themselves here (:mod:`trackpoint.adapters` lists
the built-in ones). An adapter is a predicate and a factory: the first
registered predicate that accepts a value picks the factory. Fallbacks
(``fallback=True``, e.g. "anything with ``state_dict()``") are tried after
all others.

A framework's adapters can be registered by module name
(:func:`register_lazy`): the module is imported, and registers itself, only
once that framework is in ``sys.modules``, so ``import trackpoint`` imports
no framework.

Each framework object gets one live adapter (:func:`cached_adapter`), so an
object reached twice is one node of the checkpoint.

Example::

    class Box:                                   # a user type
        def __init__(self, array): self.array = array

    register(lambda v: isinstance(v, Box), lambda box: NumpyArray(box.array))
    assert isinstance(adapt(Box(np.zeros(2))), NumpyArray)
"""

from __future__ import annotations

import importlib
import sys
import weakref
from typing import Any, Callable

__all__ = ["adapt", "cached_adapter", "register", "register_lazy"]

# (predicate, factory) pairs, in registration order; fallbacks after them.
_adapters: list = []
_fallbacks: list = []
# framework module name -> adapter modules to import once it is imported.
_pending: dict = {}


def register(predicate: Callable[[Any], bool], factory: Callable[[Any], Any], *,
             fallback: bool = False) -> None:
    """Adapts values that ``predicate`` accepts with ``factory(value)``.

    Example::

        register(lambda v: isinstance(v, MyModel), MyModelAdapter)
    """
    (_fallbacks if fallback else _adapters).append((predicate, factory))


def register_lazy(framework: str, module: str) -> None:
    """Imports ``module`` (which then calls :func:`register`) the first time
    a value is adapted while ``framework`` is in ``sys.modules``.

    Example::

        register_lazy("torch", "trackpoint.adapters.torch")
    """
    _pending.setdefault(framework, []).append(module)


def _resolve_pending() -> None:
    for framework in [f for f in _pending if f in sys.modules]:
        for module in _pending.pop(framework):
            importlib.import_module(module)


def adapt(value):
    """The trackable for ``value`` from the first adapter that accepts it,
    or ``value`` itself when none does.

    Example::

        layer = torch.nn.Linear(2, 2)
        assert adapt(layer) is adapt(layer)        # one adapter per object
        assert adapt("text") == "text"             # no adapter: unchanged
    """
    if _pending:
        _resolve_pending()
    for predicate, factory in _adapters:
        if predicate(value):
            return factory(value)
    for predicate, factory in _fallbacks:
        if predicate(value):
            return factory(value)
    return value


# id(framework object) -> weak reference to its adapter. The adapter holds the
# object, so while the adapter lives the id cannot be reused; the weakref's
# callback drops the entry when the adapter goes. (A WeakKeyDictionary keyed
# by the object would keep it alive through its value, and arrays compare
# elementwise, which dict lookups cannot use.)
_live: dict = {}


def cached_adapter(obj, make):
    """The live adapter of obj if there is one (its ``_wrapped()`` is obj),
    else ``make(obj)``, remembered while it lives.

    Example::

        a = np.zeros(3)
        assert cached_adapter(a, NumpyArray) is cached_adapter(a, NumpyArray)
    """
    key = id(obj)
    ref = _live.get(key)
    adapter = ref() if ref is not None else None
    if adapter is not None and adapter._wrapped() is obj:
        return adapter
    adapter = make(obj)

    def forget(dead_ref, key=key):
        if _live.get(key) is dead_ref:
            del _live[key]

    _live[key] = weakref.ref(adapter, forget)
    return adapter
