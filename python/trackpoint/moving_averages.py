"""ExponentialMovingAverage with tf.train.ExponentialMovingAverage's API.

Shadow copies ("averages") of trackpoint Variables, numpy arrays or torch
tensors (parameters included), updated in place at each :meth:`apply`::

    shadow -= (1 - decay) * (shadow - value)

with ``decay = min(decay, (1 + num_updates) / (10 + num_updates))`` when
``num_updates`` is given, computed in float32 as TensorFlow computes it, then
in the variable's own dtype. The averages equal TensorFlow's for the same
values, bit for bit.

As in TensorFlow, the EMA object itself is not trackable: checkpoint the
averages (``average(v)``), e.g. with the layout TensorFlow's documentation
recommends::

    ema = trackpoint.ExponentialMovingAverage(0.999)
    ema.apply([model.w, model.b])                      # creates the shadows
    ckpt = trackpoint.Checkpoint(model=model,
                                 averaged_weights=[ema.average(model.w),
                                                   ema.average(model.b)])

The shadow of a Variable named ``"w"`` is a Variable named
``"w/ExponentialMovingAverage"`` (TensorFlow's name): a TF1
``Saver``-written checkpoint holds it under that key, and
:func:`restore_by_name` with :meth:`~ExponentialMovingAverage.variables_to_restore`
loads averages into the model's variables, as ``tf.compat.v1.train.Saver(
ema.variables_to_restore()).restore(...)`` does.
"""

from __future__ import annotations

import numpy as np

from . import _core
from ._restore import OBJECT_GRAPH_KEY
from .adapters.torch_bridge import dtype_name as torch_dtype_name
from .adapters.torch_bridge import is_tensor as is_torch_tensor
from .adapters.torch_bridge import torch_module
from .bundle import BundleReader
from .errors import NotFoundError
from .trackable.variable import Variable

__all__ = ["ExponentialMovingAverage", "restore_by_name"]

_FLOAT_NAMES = ("bfloat16", "float16", "float32", "float64")


def _torch_tensor(value):
    """The torch module when value is a torch tensor, else None."""
    return torch_module() if is_torch_tensor(value) else None


def _dtype_name(var) -> str:
    if isinstance(var, Variable):
        return var.dtype.name
    if isinstance(var, np.ndarray):
        return var.dtype.name
    if is_torch_tensor(var):
        return torch_dtype_name(var)
    raise TypeError(
        f"ExponentialMovingAverage averages trackpoint Variables, numpy arrays and torch "
        f"tensors; got {type(var).__name__}"
    )


def _describe(var) -> str:
    if isinstance(var, Variable):
        return var.name
    return f"{type(var).__name__} of dtype {_dtype_name(var)} and shape {list(var.shape)}"


def _scalar(value) -> float:
    """A Python number from a number, a Variable, a numpy or torch scalar."""
    if isinstance(value, Variable):
        value = value.numpy()
    return float(value.item() if hasattr(value, "item") else value)


class ExponentialMovingAverage:
    """Keeps moving averages of variables, as tf.train.ExponentialMovingAverage.

    ``decay`` (a number or a 0-d Variable, read at every apply); the optional
    ``num_updates`` (a number or a Variable, typically the step counter) lowers
    the decay early in training to ``(1 + n) / (10 + n)``. ``zero_debias``
    only affects averages of non-variable tensors in TensorFlow; every value
    here is a variable (initialized from its value), so it changes nothing.

    Example, a torch model's weight EMA (in place, outside autograd)::

        model = torch.nn.Linear(4, 2)
        ema = trackpoint.ExponentialMovingAverage(0.999)
        ema.apply(model.parameters())          # after each optimizer step
        ema.average(model.weight)              # a tensor on the same device
    """

    def __init__(self, decay, num_updates=None, zero_debias: bool = False,
                 name: str = "ExponentialMovingAverage"):
        self._decay = decay
        self._num_updates = num_updates
        self._zero_debias = zero_debias
        self._name = name
        self._averages: dict = {}  # id(var) -> (var, shadow); holding var keeps the id

    @property
    def name(self) -> str:
        """The name given to the shadow variables' suffix."""
        return self._name

    def _current_decay(self) -> np.float32:
        decay = np.float32(_scalar(self._decay))
        if self._num_updates is not None:
            n = np.float32(_scalar(self._num_updates))
            decay = min(decay, (np.float32(1.0) + n) / (np.float32(10.0) + n))
        return np.float32(decay)

    def _make_shadow(self, var):
        if isinstance(var, Variable):
            return Variable(var.numpy().copy(), dtype=var.dtype,
                            name=f"{var._checkpoint_full_name()}/{self._name}", trainable=False)
        if isinstance(var, np.ndarray):
            return var.copy()
        return var.detach().clone()

    def apply(self, var_list=None) -> None:
        """Creates the shadows of ``var_list``'s variables (copies of their
        values) the first time it sees them, then updates every shadow of
        ``var_list`` once. ``None`` updates every variable applied before.

        Raises TypeError for a variable that is not bfloat16, float16,
        float32 or float64 (nothing is updated then).
        """
        if var_list is None:
            var_list = [var for var, _ in self._averages.values()]
        var_list = list(var_list)
        for var in var_list:
            if _dtype_name(var) not in _FLOAT_NAMES:
                raise TypeError(f"The variables must be half, float, or double: {_describe(var)}")
        for var in var_list:
            if id(var) not in self._averages:
                self._averages[id(var)] = (var, self._make_shadow(var))
        one_minus_decay = np.float32(1.0) - self._current_decay()
        for var in var_list:
            _update(self._averages[id(var)][1], var, one_minus_decay)

    def average(self, var):
        """The shadow of ``var`` (a Variable, array or tensor like ``var``), or
        None when ``apply`` has not seen it."""
        entry = self._averages.get(id(var))
        return entry[1] if entry is not None and entry[0] is var else None

    def average_name(self, var) -> str:
        """The name of ``var``'s shadow, ``"<var name>/<ema name>"`` (also before
        ``apply``), the key a TF1 ``Saver`` stores it under. Only trackpoint
        Variables have names: arrays and tensors raise TypeError."""
        if not isinstance(var, Variable):
            raise TypeError(
                f"average_name needs a trackpoint.Variable (arrays and tensors have no "
                f"TensorFlow name); got {_describe(var)}"
            )
        shadow = self.average(var)
        if shadow is not None:
            return shadow._checkpoint_full_name()
        return f"{var._checkpoint_full_name()}/{self._name}"

    def variables_to_restore(self, moving_avg_variables=None) -> dict:
        """``{shadow name: variable}``: restoring a checkpoint by these names
        (:func:`restore_by_name`) loads the averages into the variables
        themselves, for evaluation. Defaults to every Variable applied so far
        (TensorFlow's ``moving_average_variables()``); trackpoint has no
        global variable collection, so no other variables are listed.

        Example::

            restore_by_name(path, ema.variables_to_restore())
            # {"w/ExponentialMovingAverage": w, ...}: w now holds its average
        """
        if moving_avg_variables is None:
            moving_avg_variables = [var for var, _ in self._averages.values()
                                    if isinstance(var, Variable)]
        return {self.average_name(var): var for var in moving_avg_variables}


def _update(shadow, var, one_minus_decay: np.float32) -> None:
    """shadow -= (shadow - var) * (1 - decay), in shadow's dtype, in place."""
    torch = _torch_tensor(shadow)
    if torch is not None:
        value = var.detach() if _torch_tensor(var) is not None else torch.as_tensor(np.asarray(var))
        with torch.no_grad():
            factor = torch.tensor(float(one_minus_decay), dtype=shadow.dtype, device=shadow.device)
            shadow.sub_((shadow - value.to(shadow.device, shadow.dtype)) * factor)
        return
    array = shadow.numpy() if isinstance(shadow, Variable) else shadow
    if _torch_tensor(var) is not None:
        value = var.detach().cpu().numpy()
    else:
        value = np.asarray(var.numpy() if isinstance(var, Variable) else var)
    factor = one_minus_decay.astype(array.dtype)
    array -= (array - value.astype(array.dtype, copy=False)) * factor


def _name_to_key(reader: BundleReader) -> dict:
    """full variable name -> checkpoint key: the keys themselves for a
    name-based checkpoint, else the object graph's full names."""
    if OBJECT_GRAPH_KEY not in reader:
        return {key: key for key in reader.keys()}  # noqa: SIM118 (a reader, not a dict)
    nodes = _core.parse_object_graph(reader.read(OBJECT_GRAPH_KEY)[()])
    mapping = {}
    for node in nodes:
        for name, full_name, key in node["attributes"]:
            if full_name and name == "VARIABLE_VALUE":
                mapping.setdefault(full_name, key)
    return mapping


def restore_by_name(save_path, var_map: dict) -> None:
    """Restores ``{name: variable}`` by TensorFlow variable name, as
    ``tf.compat.v1.train.Saver(var_map).restore(None, save_path)`` does: from a
    name-based (TF1) checkpoint by key, from an object-based one through the
    full names its object graph records. Variables are trackpoint Variables,
    numpy arrays or torch tensors, written in place.

    Example::

        restore_by_name(path, ema.variables_to_restore())

    Raises NotFoundError naming the checkpoint and every missing name.
    """
    reader = BundleReader(save_path)
    keys = _name_to_key(reader)
    missing = sorted(name for name in var_map if name not in keys)
    if missing:
        raise NotFoundError(f"{reader.prefix} has no variables named {missing}")
    for name, var in var_map.items():
        value = reader.read(keys[name])
        if tuple(value.shape) != tuple(var.shape):
            raise ValueError(
                f"cannot restore {name!r} from {reader.prefix}: checkpoint has shape "
                f"{list(value.shape)}, variable has {list(var.shape)}"
            )
        torch = _torch_tensor(var)
        if torch is not None:
            with torch.no_grad():
                var.copy_(torch.as_tensor(value))
        elif isinstance(var, Variable):
            var.assign(value)
        else:
            var[...] = value
