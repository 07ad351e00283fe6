"""Adapters: framework objects as trackables.

``adapt(value)`` turns a value a Checkpoint or AutoTrackable receives into a
trackable when an adapter knows its type, and returns other values unchanged:

- a numpy array becomes :class:`~trackpoint.adapters.numpy.NumpyArray`
  (saved as a variable, restored in place);
- a ``torch.nn.Module``, ``torch.optim.Optimizer`` or ``torch.Tensor`` its
  adapter in :mod:`trackpoint.adapters.torch`, the same one each time for the
  same object (only when torch is already imported: ``import trackpoint``
  never imports a framework); a ``torch.Generator`` its RNG state;
- any other object with ``state_dict()`` and ``load_state_dict()`` (LR
  schedulers, ``torch.amp.GradScaler``, user classes: PyTorch's
  ``Stateful``) :class:`~trackpoint.adapters.stateful.Stateful`, which calls
  them at save and at restore.

JAX arrays are immutable, so a pytree is not adapted implicitly: wrap it in
:class:`trackpoint.adapters.jax.PyTree` and take the restored tree back from
its ``.tree``.
"""

from __future__ import annotations

import sys
import weakref

import numpy as np

__all__ = ["adapt", "cached_adapter"]

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


def adapt(value):
    """The trackable for ``value`` (the same one while it lives), or
    ``value`` itself when no adapter applies."""
    if isinstance(value, np.ndarray):
        from .numpy import NumpyArray

        return cached_adapter(value, NumpyArray)
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(
        value, (torch.nn.Module, torch.optim.Optimizer, torch.Tensor, torch.Generator)
    ):
        from . import torch as torch_adapter

        return torch_adapter.adapt(value)
    from .stateful import Stateful, is_stateful

    if is_stateful(value):
        return cached_adapter(value, Stateful)
    return value
