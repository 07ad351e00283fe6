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

Each adapter module registers itself with the core's registry
(:mod:`trackpoint.trackable.registry`); the core imports no adapter. The
numpy and ``Stateful`` adapters register when this package is imported; the
torch adapters by module name, imported only once torch is (``import
trackpoint`` never imports a framework). Register your own type the same way
with :func:`register`.

JAX arrays are immutable, so a pytree is not adapted implicitly: wrap it in
:class:`trackpoint.adapters.jax.PyTree` and take the restored tree back from
its ``.tree``.
"""

from __future__ import annotations

from ..trackable.registry import adapt, cached_adapter, register, register_lazy
from . import numpy, stateful  # noqa: F401 -- they register themselves

__all__ = ["adapt", "cached_adapter", "register", "register_lazy"]

register_lazy("torch", "trackpoint.adapters.torch")
