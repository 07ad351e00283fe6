"""Stateful objects: anything with ``state_dict()`` and ``load_state_dict()``.

This is the protocol PyTorch's distributed checkpoint calls ``Stateful``:
every ``torch.optim.lr_scheduler`` (LambdaLR, SequentialLR,
ChainedScheduler, ReduceLROnPlateau, ...), ``torch.amp.GradScaler`` and any
user class with the two methods. A Checkpoint takes such an object as it
takes a module (as a keyword, an AutoTrackable attribute, a list element or
a dict value); torch modules and optimizers keep their own adapters.

- **Save**: ``state_dict()`` is called when the save takes its snapshot.
  Every tensor (torch or numpy, at any depth of the state dict) is saved as a
  tensor of its own, named by its keys joined with ``:``; everything else is
  one JSON string tensor ``py_state`` holding the state dict with the tensors
  replaced by references. A scheduler holding a ``torch.optim.Adam``::

      sched/.ATTRIBUTES/py_state          the JSON: last_epoch, base_lrs, ...
      scaler/.ATTRIBUTES/py_state
      user/.ATTRIBUTES/buffers:0          a tensor at state_dict()["buffers"][0]

  Tuples, dicts with non-string keys (``{0: ...}``), bytes and numpy scalars
  are tagged in the JSON and come back as they were. A value that is neither
  JSON data nor a tensor (a function, a torch device) is an error naming the
  object path and the key. No pickle.
- **Restore**: the saved state dict is rebuilt from the checkpoint alone
  (tensors as torch tensors on the device they were saved from when it
  exists here, else on the CPU; numpy arrays as numpy arrays) and handed to
  ``load_state_dict``. So a state dict whose set of tensors changed since the
  save (a fresh object that has not stepped yet) still receives everything
  that was saved. An object attached after ``restore()`` receives its value
  when it is attached.

Example::

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: min(1.0, step / 100))
    ckpt = trackpoint.Checkpoint(model=model, optimizer=opt, scheduler=sched)
"""

from __future__ import annotations

import base64
import json
import sys

import numpy as np

from ..trackable.base import Trackable
from ..trackable.python_state import PY_STATE, UnsavableStateError
from ..trackable.registry import cached_adapter, register

__all__ = ["Stateful", "decode_state", "encode_state", "is_stateful"]

# Tags of the JSON encoding: a JSON object with exactly one of these keys.
_TENSOR = "__tensor__"  # torch tensor: {"__tensor__": name, "device": "cuda:0"}
_NDARRAY = "__ndarray__"  # numpy array: {"__ndarray__": name}
_NPSCALAR = "__numpy_scalar__"  # numpy scalar (a 0-d tensor): {"__numpy_scalar__": name}
_TUPLE = "__tuple__"  # {"__tuple__": [items]}
_ITEMS = "__dict__"  # a dict that is not a plain JSON object: {"__dict__": [[k, v], ...]}
_BYTES = "__bytes__"  # {"__bytes__": base64}
_TAGS = (_TENSOR, _NDARRAY, _NPSCALAR, _TUPLE, _ITEMS, _BYTES)


def is_stateful(value) -> bool:
    """True for an object (not a class) with callable ``state_dict`` and ``load_state_dict``."""
    if isinstance(value, type):
        return False
    try:
        return callable(getattr(value, "state_dict", None)) and callable(
            getattr(value, "load_state_dict", None))
    except Exception:  # noqa: BLE001 -- an object whose __getattr__ fails is not Stateful
        return False


def _torch_tensor_type():
    torch = sys.modules.get("torch")
    return torch.Tensor if torch is not None else ()


def _key_text(key) -> str:
    return key if isinstance(key, str) else repr(key)


def encode_state(state, tensors: dict, path=()):
    """state as JSON data, its tensors moved into ``tensors`` (name -> numpy
    array) and replaced by tagged references.

    Example::

        tensors = {}
        encode_state({"step": 3, "buf": np.zeros(2)}, tensors)
        # {"step": 3, "buf": {"__ndarray__": "buf"}}, tensors == {"buf": array([0., 0.])}
    """
    if state is None or isinstance(state, (bool, str)):
        return state
    if isinstance(state, np.generic) and state.dtype.kind in "biufc":
        return {_NPSCALAR: _add_tensor(tensors, path, np.asarray(state))}
    if isinstance(state, (int, float)):
        return int(state) if isinstance(state, int) else float(state)
    if isinstance(state, (bytes, bytearray)):
        return {_BYTES: base64.b64encode(bytes(state)).decode("ascii")}
    if isinstance(state, np.ndarray):
        if state.dtype.kind not in "biufc":
            raise UnsavableStateError(
                f"key {_where(path)}: a numpy array of dtype {state.dtype} is not a tensor "
                "trackpoint can save"
            )
        return {_NDARRAY: _add_tensor(tensors, path, state)}
    tensor_type = _torch_tensor_type()
    if tensor_type and isinstance(state, tensor_type):
        from .torch_bridge import to_numpy

        return {_TENSOR: _add_tensor(tensors, path, to_numpy(state)),
                "device": str(state.device)}
    if isinstance(state, tuple):
        return {_TUPLE: [encode_state(v, tensors, path + (i,)) for i, v in enumerate(state)]}
    if isinstance(state, list):
        return [encode_state(v, tensors, path + (i,)) for i, v in enumerate(state)]
    if isinstance(state, dict):
        if all(isinstance(k, str) for k in state) and not any(k in _TAGS for k in state):
            return {k: encode_state(v, tensors, path + (k,)) for k, v in state.items()}
        return {_ITEMS: [[encode_state(k, {}, path), encode_state(v, tensors, path + (k,))]
                         for k, v in state.items()]}
    raise UnsavableStateError(
        f"key {_where(path)}: a value of type {type(state).__name__} is neither JSON data "
        "(numbers, strings, lists, dicts) nor a tensor"
    )


def _where(path) -> str:
    return "state_dict()" + "".join(f"[{k!r}]" for k in path)


def _add_tensor(tensors: dict, path, array) -> str:
    """Stores array under a readable, unique name made of its keys."""
    base = ":".join(_key_text(k).replace("/", "_").replace(".", "_") for k in path) or "value"
    name, n = base, 1
    while name in tensors or name == PY_STATE:
        name, n = f"{base}~{n}", n + 1
    tensors[name] = array
    return name


def decode_state(data, tensors: dict):
    """The inverse of encode_state: tensors given back from ``tensors``
    (name -> numpy array); torch tensors as torch tensors.

    Example::

        decode_state({"step": 3, "buf": {"__ndarray__": "buf"}}, {"buf": np.zeros(2)})
        # {"step": 3, "buf": array([0., 0.])}
    """
    if isinstance(data, list):
        return [decode_state(v, tensors) for v in data]
    if not isinstance(data, dict):
        return data
    if len(data) in (1, 2) and any(tag in data for tag in _TAGS):
        if _TENSOR in data:
            return _torch_tensor(_array(tensors, data[_TENSOR]), data.get("device", "cpu"))
        if _NDARRAY in data:
            return _array(tensors, data[_NDARRAY])
        if _NPSCALAR in data:
            return _array(tensors, data[_NPSCALAR])[()]
        if _TUPLE in data:
            return tuple(decode_state(v, tensors) for v in data[_TUPLE])
        if _ITEMS in data:
            return {_hashable(decode_state(k, tensors)): decode_state(v, tensors)
                    for k, v in data[_ITEMS]}
        if _BYTES in data:
            return base64.b64decode(data[_BYTES])
    return {k: decode_state(v, tensors) for k, v in data.items()}


def _hashable(key):
    return tuple(_hashable(k) for k in key) if isinstance(key, (list, tuple)) else key


def _array(tensors: dict, name: str) -> np.ndarray:
    try:
        return tensors[name]
    except KeyError:
        raise UnsavableStateError(f"the checkpoint has no tensor {name!r} for this state") from None


def _torch_tensor(array: np.ndarray, device: str):
    import torch

    from .torch_bridge import from_numpy

    tensor = from_numpy(np.array(array, order="C", copy=True))
    if device != "cpu":
        target = torch.device(device)
        if target.type == "cuda" and torch.cuda.is_available() and (
                (target.index or 0) < torch.cuda.device_count()):
            tensor = tensor.to(target)
    return tensor


class Stateful(Trackable):
    """An object with ``state_dict()`` / ``load_state_dict()`` as a trackable.

    Example::

        class Counter:
            def __init__(self):
                self.n = 0
            def state_dict(self):
                return {"n": self.n}
            def load_state_dict(self, state):
                self.n = state["n"]

        ckpt = trackpoint.Checkpoint(counter=Counter())   # counter/.ATTRIBUTES/py_state
    """

    def __init__(self, obj):
        self._self_obj = obj

    def _wrapped(self):
        return self._self_obj

    def __repr__(self) -> str:
        return f"<trackpoint Stateful {type(self._self_obj).__name__}>"

    def _serialize_to_tensors(self) -> dict:
        tensors: dict = {}
        data = encode_state(self._self_obj.state_dict(), tensors)
        tensors[PY_STATE] = np.array(
            json.dumps(data, sort_keys=True).encode("utf-8"), dtype=object)
        return tensors

    def _restore_tensor_names(self, saved: list) -> list:
        # Whatever the checkpoint holds for this object: the JSON names the tensors.
        return list(saved) if PY_STATE in saved else [PY_STATE]

    def _restore_from_tensors(self, tensors: dict) -> None:
        value = tensors[PY_STATE]
        value = value.reshape(-1)[0] if isinstance(value, np.ndarray) else value
        if isinstance(value, bytes):
            value = value.decode("utf-8")
        arrays = {k: v for k, v in tensors.items() if k != PY_STATE}
        self._self_obj.load_state_dict(decode_state(json.loads(value), arrays))


# Last: torch modules and optimizers have state_dict() too, and their own adapters.
register(is_stateful, lambda obj: cached_adapter(obj, Stateful), fallback=True)
