"""Adapters: framework objects as trackables.

``adapt(value)`` turns a value a Checkpoint or AutoTrackable receives into a
trackable when an adapter knows its type, and returns other values unchanged:

- a numpy array becomes :class:`~trackpoint.adapters.numpy.NumpyArray`
  (saved as a variable, restored in place);
- a ``torch.nn.Module`` or ``torch.optim.Optimizer`` its adapter in
  :mod:`trackpoint.adapters.torch` (only when torch is already imported:
  ``import trackpoint`` never imports a framework).
"""

from __future__ import annotations

import sys

import numpy as np

__all__ = ["adapt"]


def adapt(value):
    """The trackable for ``value``, or ``value`` itself when no adapter applies."""
    if isinstance(value, np.ndarray):
        from .numpy import NumpyArray

        return NumpyArray(value)
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(value, (torch.nn.Module, torch.optim.Optimizer)):
        from . import torch as torch_adapter

        return torch_adapter.adapt(value)
    return value
