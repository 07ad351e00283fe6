"""RNGState: the process's random number generators as one trackable.

Each generator's state is read when a save takes its snapshot and set back at
restore, so a resumed run draws the same numbers as one never interrupted.
Children (saved only for the sources that exist at save time):

    rng/python/...                 Python's ``random`` (uint32[625] + JSON)
    rng/numpy/...                  numpy's global RandomState (``np.random.*``)
    rng/numpy_generators/0/...     each ``numpy.random.Generator`` given
    rng/torch/.ATTRIBUTES/VARIABLE_VALUE    torch's CPU RNG (when torch is imported)
    rng/cuda/0/.ATTRIBUTES/VARIABLE_VALUE   each CUDA device's RNG (when CUDA is available)
"""

from __future__ import annotations

import random
import sys

import numpy as np

from .adapters.stateful import Stateful
from .trackable.base import Trackable

__all__ = ["RNGState"]


class _PythonRandom:
    """Python's global ``random`` as a state dict."""

    def state_dict(self) -> dict:
        version, internal, gauss_next = random.getstate()
        return {"version": version, "state": np.array(internal, dtype=np.uint32),
                "gauss_next": gauss_next}

    def load_state_dict(self, state: dict) -> None:
        internal = tuple(int(x) for x in np.asarray(state["state"]).reshape(-1))
        random.setstate((state["version"], internal, state["gauss_next"]))


class _NumpyRandom:
    """numpy's global RandomState, or a given RandomState or Generator, as a state dict."""

    def __init__(self, generator=None):
        self.generator = generator

    def state_dict(self) -> dict:
        g = self.generator
        if g is None:
            return np.random.get_state(legacy=False)
        if isinstance(g, np.random.RandomState):
            return g.get_state(legacy=False)
        return g.bit_generator.state

    def load_state_dict(self, state: dict) -> None:
        g = self.generator
        if g is None:
            np.random.set_state(state)
        elif isinstance(g, np.random.RandomState):
            g.set_state(state)
        else:
            g.bit_generator.state = state


class _Group(Trackable):
    """A node whose children are given."""

    def __init__(self, children: dict):
        self._self_children = children

    def _trackable_children(self) -> dict:
        return dict(self._self_children)


class RNGState(Trackable):
    """Python's ``random``, numpy's global RandomState, the given numpy
    generators, and (when torch is imported) torch's CPU RNG and every CUDA
    device's RNG: saved at save time, set back at restore.

    Example::

        data_rng = np.random.default_rng(0)
        ckpt = trackpoint.Checkpoint(model=model, rng=trackpoint.RNGState([data_rng]))
        ckpt.save("/tmp/run/ckpt")   # ... later, in a new process:
        ckpt.restore(trackpoint.latest_checkpoint("/tmp/run"))   # the RNGs continue

    ``numpy_generators``: ``numpy.random.Generator`` (or ``RandomState``)
    objects, saved as ``numpy_generators/0``, ``/1``, ... in the order given.
    A ``torch.Generator`` of your own is saved by passing it to the
    Checkpoint directly.
    """

    def __init__(self, numpy_generators=()):
        for g in numpy_generators:
            if not isinstance(g, (np.random.Generator, np.random.RandomState)):
                raise TypeError(
                    f"RNGState numpy_generators takes numpy.random.Generator or RandomState "
                    f"objects, got a {type(g).__name__}")
        self._self_python = Stateful(_PythonRandom())
        self._self_numpy = Stateful(_NumpyRandom())
        self._self_generators = _Group(
            {str(i): Stateful(_NumpyRandom(g)) for i, g in enumerate(numpy_generators)})
        self._self_torch = None
        self._self_cuda = _Group({})  # "0", "1", ...: RNGTensor of each CUDA device

    def __repr__(self) -> str:
        return f"<trackpoint RNGState: {', '.join(self._trackable_children())}>"

    def _trackable_children(self) -> dict:
        children = {"python": self._self_python, "numpy": self._self_numpy}
        if self._self_generators._self_children:
            children["numpy_generators"] = self._self_generators
        torch = sys.modules.get("torch")
        if torch is not None:
            from .adapters.torch import Generator

            if self._self_torch is None:
                self._self_torch = Generator(torch.default_generator)
            children["torch"] = self._self_torch
            if self._add_cuda_devices(torch):
                children["cuda"] = self._self_cuda
        return children

    def _add_cuda_devices(self, torch) -> bool:
        """Adds a child for every CUDA device; False when CUDA is not available."""
        if not torch.cuda.is_available():
            return False
        from .adapters.torch import RNGTensor

        devices = self._self_cuda._self_children
        for i in range(torch.cuda.device_count()):
            if str(i) not in devices:
                devices[str(i)] = RNGTensor(
                    f"cuda:{i}",
                    lambda i=i: torch.cuda.get_rng_state(i),
                    lambda state, i=i: torch.cuda.set_rng_state(state, i))
        return bool(devices)
