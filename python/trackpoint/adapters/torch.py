"""PyTorch modules, optimizers and tensors as trackables.

``adapt(obj)`` gives the trackable for a ``torch.nn.Module``, a
``torch.optim.Optimizer`` or a ``torch.Tensor`` (a Checkpoint calls it for
you). The same torch object always gets the same adapter while that adapter
is alive, so a parameter shared by two modules, or by a module and its
optimizer, is one node of the checkpoint and is saved once.

What is saved, and under which names (``Checkpoint(model=model, optimizer=opt)``
with ``model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))``)::

    model/0/weight/.ATTRIBUTES/VARIABLE_VALUE
    model/0/weight/.OPTIMIZER_SLOT/optimizer/exp_avg/.ATTRIBUTES/VARIABLE_VALUE
    model/0/weight/.OPTIMIZER_SLOT/optimizer/exp_avg_sq/.ATTRIBUTES/VARIABLE_VALUE
    model/0/weight/.OPTIMIZER_SLOT/optimizer/step/.ATTRIBUTES/VARIABLE_VALUE
    optimizer/param_groups/.ATTRIBUTES/py_state
    save_counter/.ATTRIBUTES/VARIABLE_VALUE

- A **module**'s children are its direct parameters, then its persistent
  buffers, then its submodules, each in registration order (the order of
  ``state_dict()``), named as torch names them. Non-persistent buffers and
  ``get_extra_state()`` are not saved.
- A **tensor** is a variable (``VARIABLE_VALUE``). Saving reads a CPU tensor
  in place; a CUDA tensor is staged to the host chunk by chunk through a pool
  of pinned buffers, each chunk checksummed and written while the next is
  copied (:mod:`trackpoint.adapters.torch_bridge`). Restoring writes into
  the existing tensor in place, on its own device (a CUDA tensor through the
  same pinned buffers), so the module and its optimizer keep working on the same
  storage. Before a CUDA tensor is staged, its device's current stream is
  synchronized, so kernels queued on it have finished. CPU bfloat16 and
  float8 tensors need ``ml_dtypes``; CUDA ones do not (bytes are bytes).
- An **optimizer**'s per-parameter state (``optimizer.state[p]``) is saved as
  TensorFlow saves slot variables: under the parameter's path, one slot per
  state key (``exp_avg``, ``exp_avg_sq``, ``momentum_buffer``, and the
  per-parameter ``step`` as a 0-d slot). Its ``param_groups``, without
  ``"params"``, are one JSON child ``param_groups``. The parameters
  themselves are not children of the optimizer: as in TensorFlow, slots are
  saved only for parameters the checkpoint reaches otherwise, so save the
  model with its optimizer, or the parameters themselves::

      trackpoint.Checkpoint(model=model, optimizer=opt)
      trackpoint.Checkpoint(params=list(model.parameters()), optimizer=opt)

  A restore into a fresh optimizer (one that has never stepped) creates the
  state entries as ``optimizer.load_state_dict`` would: on the parameter's
  device, floating-point state in the parameter's dtype, ``step`` on the CPU
  unless the group is ``capturable`` or ``fused``. Per-parameter Python
  numbers (a third-party optimizer's ``int`` step) are saved as 0-d slots;
  an existing entry keeps its Python type, and a missing one becomes a
  Python int for a 0-d int64 value (torch's own optimizers keep no int64
  state tensors), a tensor otherwise. Other per-parameter values (LBFGS's
  lists) cannot be saved and raise TypeError.

- A **torch.Generator** (``torch.default_generator`` for the global CPU
  RNG) is its ``get_state()``, a uint8 variable, set back with
  ``set_state()`` at restore. LR schedulers and ``GradScaler`` are saved
  through their ``state_dict()`` (:mod:`trackpoint.adapters.stateful`).

Tensors have no TensorFlow global name here: ``_checkpoint_full_name()`` is
"" (a qualified name would depend on which module was adapted first), so
TF1 name-based restores do not match torch tensors.

Example::

    model = torch.nn.Linear(4, 2)
    opt = torch.optim.Adam(model.parameters())
    ckpt = trackpoint.Checkpoint(model=model, optimizer=opt)
    path = ckpt.save("/tmp/run/ckpt")
    ckpt.restore(path).assert_consumed()    # writes into model and opt in place
"""

from __future__ import annotations

import json
import numbers
import sys

import numpy as np

from ..dtypes import as_dtype
from ..errors import InvalidArgumentError
from ..trackable.base import Trackable
from ..trackable.python_state import PythonState
from ..trackable.registry import cached_adapter, register
from ..trackable.variable import VARIABLE_VALUE
from .torch_bridge import copy_into, from_numpy, live_buffer, saved_value, spec, to_numpy
from .torch_bridge import torch_module as _torch

__all__ = ["Generator", "Module", "Optimizer", "RNGTensor", "Tensor", "adapt"]


def adapt(obj):
    """The trackable for a torch module, optimizer, tensor or generator (the same one
    each time for the same object); other values are returned unchanged.

    Example::

        layer = torch.nn.Linear(2, 2)
        assert adapt(layer) is adapt(layer)
        assert adapt(layer.weight) is adapt(layer)._trackable_children()["weight"]
    """
    torch = _torch()
    if isinstance(obj, torch.nn.Module):
        return cached_adapter(obj, Module)
    if isinstance(obj, torch.optim.Optimizer):
        return cached_adapter(obj, Optimizer)
    if isinstance(obj, torch.Tensor):
        return cached_adapter(obj, Tensor)
    if isinstance(obj, torch.Generator):
        return cached_adapter(obj, Generator)
    return obj


# ---- tensors ---------------------------------------------------------------------------
class Tensor(Trackable):
    """A torch tensor (or Parameter, or buffer) as a variable, restored in place.

    Example::

        step = torch.zeros((), dtype=torch.int64)
        ckpt = trackpoint.Checkpoint(step=step)   # saved as step/.ATTRIBUTES/VARIABLE_VALUE
    """

    def __init__(self, tensor):
        self._self_tensor = tensor

    def _wrapped(self):
        return self._self_tensor

    @property
    def tensor(self):
        """The torch tensor."""
        return self._self_tensor

    def __array__(self, dtype=None, copy=None):
        array = to_numpy(self._self_tensor)
        return array if dtype is None else array.astype(dtype)

    def __repr__(self) -> str:
        dtype, shape = spec(self._self_tensor)
        return f"<trackpoint torch Tensor {dtype.name}{list(shape)} on {self._self_tensor.device}>"

    def _serialize_to_tensors(self) -> dict:
        return {VARIABLE_VALUE: saved_value(self._self_tensor)}

    def _tensor_names(self) -> list:
        return [VARIABLE_VALUE]

    def _tensor_specs(self) -> dict:
        return {VARIABLE_VALUE: spec(self._self_tensor)}

    def _restore_buffers(self) -> dict:
        return live_buffer(self._self_tensor)

    def _restore_from_tensors(self, tensors: dict) -> None:
        copy_into(self._self_tensor, tensors[VARIABLE_VALUE])


# ---- modules ---------------------------------------------------------------------------
class Module(Trackable):
    """A ``torch.nn.Module``: its parameters, persistent buffers and submodules.

    Example::

        model = torch.nn.Sequential(torch.nn.Linear(4, 2), torch.nn.BatchNorm1d(2))
        trackpoint.Checkpoint(model=model).write("/tmp/m")
        # model/0/weight, model/0/bias, model/1/weight, model/1/bias,
        # model/1/running_mean, model/1/running_var, model/1/num_batches_tracked
    """

    def __init__(self, module):
        self._self_module = module

    def _wrapped(self):
        return self._self_module

    @property
    def module(self):
        """The torch module."""
        return self._self_module

    def __repr__(self) -> str:
        return f"<trackpoint torch Module {type(self._self_module).__name__}>"

    def _trackable_children(self) -> dict:
        m = self._self_module
        children = {}
        for name, p in m.named_parameters(recurse=False, remove_duplicate=False):
            children[name] = adapt(p)
        non_persistent = getattr(m, "_non_persistent_buffers_set", ())
        for name, b in m.named_buffers(recurse=False, remove_duplicate=False):
            if name not in non_persistent:
                children[name] = adapt(b)
        for name, sub in m._modules.items():
            if sub is not None:
                children[name] = adapt(sub)
        return children


# ---- optimizers ------------------------------------------------------------------------
def _jsonable(value, where: str):
    """value as JSON data: tuples as lists, one-element tensors as numbers."""
    torch = _torch()
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, numbers.Real):
        return int(value) if isinstance(value, numbers.Integral) else float(value)
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, where) for v in value]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {k: _jsonable(v, where) for k, v in value.items()}
    raise ValueError(
        f"cannot save optimizer hyperparameter {where}: {type(value).__name__} values "
        "are not JSON data (numbers, strings, lists, dicts, one-element tensors)"
    )


def _like(current, value):
    """A saved hyperparameter in the form of the value it replaces."""
    torch = _torch()
    if isinstance(current, tuple) and isinstance(value, list):
        return tuple(value)
    if isinstance(current, torch.Tensor) and not isinstance(value, (list, dict)):
        with torch.no_grad():
            current.fill_(value)
        return current
    return value


class _ParamGroups(PythonState):
    """The optimizer's ``param_groups`` without their ``"params"``, as JSON."""

    def __init__(self, optimizer):
        self._self_optimizer = optimizer

    def serialize(self) -> str:
        groups = []
        for i, group in enumerate(self._self_optimizer.param_groups):
            groups.append(
                {
                    k: _jsonable(v, f"param_groups[{i}][{k!r}]")
                    for k, v in group.items()
                    if k != "params"
                }
            )
        return json.dumps(groups, sort_keys=True)

    def deserialize(self, string_value: str) -> None:
        saved = json.loads(string_value)
        groups = self._self_optimizer.param_groups
        if not isinstance(saved, list) or len(saved) != len(groups):
            found = len(saved) if isinstance(saved, list) else type(saved).__name__
            raise InvalidArgumentError(
                f"cannot restore optimizer param_groups: checkpoint has {found} groups, "
                f"optimizer {type(self._self_optimizer).__name__} has {len(groups)}"
            )
        for group, values in zip(groups, saved):
            for k, v in values.items():
                if k != "params":
                    group[k] = _like(group.get(k), v)


class _Slot(Trackable):
    """``optimizer.state[param][name]``, read and written where it lives now
    (optimizers and ``load_state_dict`` may replace the tensor)."""

    def __init__(self, owner: Optimizer, param, name: str):
        self._self_owner = owner
        self._self_optimizer = owner.optimizer
        self._self_param = param
        self._self_name = name

    def _value(self):
        return self._self_optimizer.state.get(self._self_param, {}).get(self._self_name)

    def __repr__(self) -> str:
        return f"<trackpoint torch optimizer slot {self._self_name!r}>"

    def _serialize_to_tensors(self) -> dict:
        value = self._value()
        torch = _torch()
        if isinstance(value, torch.Tensor):
            return {VARIABLE_VALUE: saved_value(value)}
        return {VARIABLE_VALUE: np.asarray(value)}

    def _tensor_names(self) -> list:
        return [VARIABLE_VALUE]

    def _tensor_specs(self) -> dict:
        value = self._value()
        if value is None:  # created from the checkpoint's value
            return {}
        if isinstance(value, _torch().Tensor):
            return {VARIABLE_VALUE: spec(value)}
        return {VARIABLE_VALUE: (as_dtype(np.asarray(value).dtype), ())}

    def _restore_buffers(self) -> dict:
        value = self._value()
        return live_buffer(value) if isinstance(value, _torch().Tensor) else {}

    def _restore_from_tensors(self, tensors: dict) -> None:
        torch = _torch()
        array = tensors[VARIABLE_VALUE]
        value = self._value()
        if isinstance(value, torch.Tensor):
            copy_into(value, array)
            return
        if isinstance(value, np.ndarray):
            value[...] = array
            return
        state = self._self_optimizer.state[self._self_param]
        if value is not None or (array.shape == () and array.dtype == np.int64):
            # A Python number (third-party optimizers keep an int step; torch's
            # own never keep int64 tensors).
            state[self._self_name] = array.item()
            return
        state[self._self_name] = self._new_tensor(array)

    def _new_tensor(self, array: np.ndarray):
        """The state tensor torch's load_state_dict would make from this value."""
        torch = _torch()
        param = self._self_param
        value = from_numpy(array)
        group = self._self_owner._group_of(param) or {}
        if self._self_name == "step":
            if group.get("capturable") or group.get("fused"):
                return value.to(dtype=torch.float32, device=param.device)
            return value
        if param.is_floating_point():
            return value.to(dtype=param.dtype, device=param.device)
        return value.to(device=param.device)


class Optimizer(Trackable):
    """A ``torch.optim.Optimizer``: per-parameter state as slot variables,
    ``param_groups`` hyperparameters as JSON.

    Example::

        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        ckpt = trackpoint.Checkpoint(model=model, optimizer=opt)
        # model/weight/.OPTIMIZER_SLOT/optimizer/momentum_buffer/.ATTRIBUTES/VARIABLE_VALUE
    """

    def __init__(self, optimizer):
        self._self_optimizer = optimizer
        self._self_param_groups = _ParamGroups(optimizer)
        self._self_slots = {}  # (id(param), name) -> _Slot
        self._self_param_index = {}  # id(param) -> (param, its group)

    def _wrapped(self):
        return self._self_optimizer

    @property
    def optimizer(self):
        """The torch optimizer."""
        return self._self_optimizer

    def __repr__(self) -> str:
        return f"<trackpoint torch Optimizer {type(self._self_optimizer).__name__}>"

    def _params(self) -> list:
        """(param, its group) in param_groups order, each parameter once."""
        seen, params = set(), []
        for group in self._self_optimizer.param_groups:
            for p in group["params"]:
                if id(p) not in seen:
                    seen.add(id(p))
                    params.append((p, group))
        return params

    def _group_of(self, param) -> dict | None:
        """param's group, or None when param is not one of this optimizer's."""
        found = self._self_param_index.get(id(param))
        if found is None or found[0] is not param:  # param_groups changed since: re-index
            self._self_param_index = {id(p): (p, g) for p, g in self._params()}
            found = self._self_param_index.get(id(param))
        return found[1] if found is not None and found[0] is param else None

    def _slot(self, param, name: str) -> _Slot:
        key = (id(param), name)
        slot = self._self_slots.get(key)
        if slot is None or slot._self_param is not param:
            slot = self._self_slots[key] = _Slot(self, param, name)
        return slot

    def _state_items(self):
        """(param, state key) for every saved per-parameter state value."""
        torch = _torch()
        state = self._self_optimizer.state
        for p, _ in self._params():
            entries = state.get(p, {})
            for name in sorted(entries):
                value = entries[name]
                if value is None:
                    continue
                if not isinstance(value, (torch.Tensor, numbers.Number, np.ndarray)):
                    raise TypeError(
                        f"cannot save {type(self._self_optimizer).__name__} state {name!r}: "
                        f"it holds a {type(value).__name__}, and trackpoint saves "
                        "per-parameter tensors and numbers only"
                    )
                if not isinstance(name, str):
                    raise TypeError(f"cannot save optimizer state key {name!r}: not a string")
                yield p, name

    def _trackable_children(self) -> dict:
        return {"param_groups": self._self_param_groups}

    def _slot_names(self) -> list:
        return sorted({name for _, name in self._state_items()})

    def _slot_variables(self):
        for p, name in self._state_items():
            yield name, adapt(p), self._slot(p, name)

    def _restore_slot_variable(self, slot_name: str, variable: Trackable):
        if not isinstance(variable, Tensor):
            return None
        param = variable.tensor
        if self._group_of(param) is None:
            return None
        return self._slot(param, slot_name)


# ---- random number generators ------------------------------------------------------------
class RNGTensor(Trackable):
    """An RNG whose state is a uint8 tensor, read by ``get_state()`` when a
    save takes its snapshot and given back by ``set_state(tensor)`` at
    restore; saved as a variable (``VARIABLE_VALUE``, uint8[n]).

    Example (what RNGState does for CUDA device 0)::

        RNGTensor("cuda:0", lambda: torch.cuda.get_rng_state(0),
                  lambda state: torch.cuda.set_rng_state(state, 0))
    """

    def __init__(self, wrapped, get_state, set_state):
        self._self_wrapped = wrapped
        self._self_get_state = get_state
        self._self_set_state = set_state

    def _wrapped(self):
        return self._self_wrapped

    def __repr__(self) -> str:
        return f"<trackpoint torch RNG state of {self._self_wrapped!r}>"

    def _serialize_to_tensors(self) -> dict:
        return {VARIABLE_VALUE: to_numpy(self._self_get_state())}

    def _tensor_names(self) -> list:
        return [VARIABLE_VALUE]

    def _tensor_specs(self) -> dict:
        return {VARIABLE_VALUE: spec(self._self_get_state())}

    def _restore_from_tensors(self, tensors: dict) -> None:
        array = np.array(tensors[VARIABLE_VALUE], dtype=np.uint8, order="C", copy=True)
        self._self_set_state(_torch().from_numpy(array))


class Generator(RNGTensor):
    """A ``torch.Generator`` (CPU or CUDA): its ``get_state()``, set back with
    ``set_state()`` at restore.

    Example::

        g = torch.Generator().manual_seed(0)
        ckpt = trackpoint.Checkpoint(data_rng=g)   # data_rng/.ATTRIBUTES/VARIABLE_VALUE, uint8
        ckpt = trackpoint.Checkpoint(rng=torch.default_generator)   # the global CPU RNG

    (``torch.get_rng_state()`` is a copy of the state, a plain tensor: saving
    it saves that copy and restoring it writes into that copy, never into the
    RNG. Save the generator, or ``trackpoint.RNGState()``.)
    """

    def __init__(self, generator):
        super().__init__(generator, generator.get_state, generator.set_state)


def _is_torch_object(value) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(
        value, (torch.nn.Module, torch.optim.Optimizer, torch.Tensor, torch.Generator))


register(_is_torch_object, adapt)
