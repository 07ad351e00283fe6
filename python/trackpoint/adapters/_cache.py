"""The adapter cache: one live adapter per framework object (see ``adapt``)."""

from __future__ import annotations

import weakref

# id(framework object) -> weak reference to its adapter. The adapter holds the
# object, so while the adapter lives the id cannot be reused; the weakref's
# callback drops the entry when the adapter goes. (A WeakKeyDictionary keyed
# by the object would keep it alive through its value, and arrays compare
# elementwise, which dict lookups cannot use.)
_adapters: dict = {}


def cached_adapter(obj, make):
    """The live adapter of obj if there is one (its ``_wrapped()`` is obj), else make(obj)."""
    key = id(obj)
    ref = _adapters.get(key)
    adapter = ref() if ref is not None else None
    if adapter is not None and adapter._wrapped() is obj:
        return adapter
    adapter = make(obj)

    def forget(dead_ref, key=key):
        if _adapters.get(key) is dead_ref:
            del _adapters[key]

    _adapters[key] = weakref.ref(adapter, forget)
    return adapter
