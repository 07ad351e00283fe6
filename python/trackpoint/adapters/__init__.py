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

import numpy as np

from ._cache import cached_adapter

__all__ = ["adapt", "cached_adapter"]

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
