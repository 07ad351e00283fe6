"""A nested Python value (a framework's checkpoint dict) as JSON plus tensors.

``encode(value)`` splits a value made of dicts, lists, tuples, Python
scalars, torch tensors and numpy arrays into

- a *structure*: JSON data describing every container and scalar, with each
  tensor replaced by its dtype and shape, and
- its *tensors*: ``{path: tensor}``, a path being the tuple of names under
  which the tensor is saved (``("optimizer_states", "0", "state", "0",
  "exp_avg")``).

``decode(structure, ...)`` builds the value back with new, empty tensors at
the same paths; reading a checkpoint into those tensors completes it. No
pickle: anything else is refused with an error naming where it is.

The structure's nodes, one JSON value each::

    null, true, false, 3, 0.25, "text"        None, bools, ints, finite floats, str
    {"float": "nan" | "inf" | "-inf"}         a float JSON has no number for
    {"complex": [re, im]}                     re, im: float nodes
    {"bytes": "<base64>"}
    {"list": [node, ...]}, {"tuple": [node, ...]}
    {"dict": [[key, node], ...]}              key: a JSON scalar (str, int, bool,
                                              null, finite float), in order
    {"OrderedDict": [[key, node], ...]}       plus "metadata": node for torch's
                                              ``state_dict()._metadata``
    {"<name>": [[key, node], ...]}            a dict subclass the caller names
                                              (``mappings``)
    {"torch": {"dtype": "float32", "shape": [2, 3]}}
    {"numpy": {"dtype": "float64", "shape": [3]}}
    {"numpy_scalar": "float32", "value": node}

A mapping marked with ``"modules": true`` (``module_paths``) names its
tensors by splitting its string keys at dots, as PyTorch names a module's
parameters: ``state_dict["encoder.0.weight"]`` is saved under
``state_dict/encoder/0/weight``, the path trackpoint's own adapter gives that
parameter of ``Checkpoint(state_dict=module)``. A mapping whose keys cannot be
split that way (one key a dotted prefix of another, an empty part) keeps its
keys whole.

Example::

    structure, tensors = encode({"step": 3, "w": torch.ones(2)})
    # structure == {"dict": [["step", 3], ["w", {"torch": {"dtype": "float32", "shape": [2]}}]]}
    # tensors == {("w",): tensor([1., 1.])}
"""

from __future__ import annotations

import base64
import collections
import math

import numpy as np

from ..errors import InvalidArgumentError

__all__ = ["decode", "encode", "location", "nest"]

_SCALAR_KEY_TYPES = (str, int, bool, type(None), float)


def location(keys) -> str:
    """Where a value sits in the checkpoint dict, in Python's subscript
    notation: ``location(["optimizer_states", 0, "state"])`` is
    ``"['optimizer_states'][0]['state']"``."""
    return "".join(f"[{key!r}]" for key in keys)


# ---- encoding --------------------------------------------------------------------------------
class _Encoder:
    def __init__(self, module_paths, mappings):
        self.module_paths = {tuple(p) for p in module_paths}
        self.mappings = dict(mappings or {})
        self.tensors: dict = {}
        self.where: dict = {}  # path -> the keys that lead to the tensor

    def node(self, value, keys: list, path: tuple):
        kind = type(value)
        if value is None or kind in (bool, int, str):
            return value
        if kind is float:
            return _float(value)
        if kind is complex:
            return {"complex": [_float(value.real), _float(value.imag)]}
        if kind is bytes:
            return {"bytes": base64.b64encode(value).decode("ascii")}
        if kind in (list, tuple):
            items = [self.node(v, keys + [i], path + (str(i),)) for i, v in enumerate(value)]
            return {kind.__name__: items}
        if kind in (dict, collections.OrderedDict) or kind in self.mappings.values():
            return self.mapping(value, keys, path)
        if isinstance(value, np.ndarray):
            return self.array(value, keys, path)
        if isinstance(value, np.generic):
            return self.numpy_scalar(value, keys)
        if _is_torch_tensor(value):
            return self.tensor(value, keys, path)
        raise _unsavable(keys, f"a {_type_name(value)}")

    def mapping(self, value, keys: list, path: tuple):
        name = _mapping_name(type(value), self.mappings)
        split = path in self.module_paths and _splits_at_dots(value)
        pairs = []
        for key, item in value.items():
            if type(key) not in _SCALAR_KEY_TYPES or (
                type(key) is float and not math.isfinite(key)
            ):
                raise _unsavable(
                    keys,
                    f"a key {key!r} ({_type_name(key)}): keys must be str, "
                    "int, bool, None or finite floats",
                )
            names = tuple(key.split(".")) if split else (str(key),)
            pairs.append([key, self.node(item, keys + [key], path + names)])
        out: dict = {name: pairs}
        if split:
            out["modules"] = True
        metadata = getattr(value, "_metadata", None)
        if metadata is not None:
            out["metadata"] = self.node(metadata, keys + ["_metadata"], path + ("_metadata",))
        return out

    def array(self, value: np.ndarray, keys: list, path: tuple):
        if value.dtype.kind not in "biufc" and value.dtype.name not in _ML_DTYPES:
            raise _unsavable(keys, f"a numpy array of dtype {value.dtype} (only numbers and bools)")
        self.add(path, value, keys)
        return {"numpy": {"dtype": value.dtype.name, "shape": list(value.shape)}}

    def numpy_scalar(self, value: np.generic, keys: list):
        if value.dtype.kind not in "biufc" and value.dtype.name not in _ML_DTYPES:
            raise _unsavable(keys, f"a numpy {value.dtype} scalar (only numbers and bools)")
        item = value.item()
        if value.dtype.name in _ML_DTYPES:
            item = float(item)
        return {"numpy_scalar": value.dtype.name, "value": self.node(item, keys, ())}

    def tensor(self, value, keys: list, path: tuple):
        import torch

        if value.layout != torch.strided:
            raise _unsavable(keys, f"a {value.layout} tensor (only dense tensors)")
        # A new tensor object per path: one node per path, even for a tensor
        # the dict holds twice (the torch adapter gives one object one node).
        self.add(path, value.detach(), keys)
        dtype = str(value.dtype).rsplit(".", 1)[-1]
        return {"torch": {"dtype": dtype, "shape": list(value.shape)}}

    def add(self, path: tuple, tensor, keys: list) -> None:
        if path in self.tensors:
            raise _collision(path, location(self.where[path]), location(keys))
        self.tensors[path] = tensor
        self.where[path] = keys


def encode(value, module_paths=(), mappings=None):
    """``(structure, tensors)`` of ``value`` (see the module docstring).

    Args:
        value: nested dicts, lists, tuples, Python scalars, bytes, numpy
            arrays and scalars, torch tensors.
        module_paths: paths (tuples of names) of mappings whose tensors are
            named by their keys split at dots.
        mappings: ``{name: class}`` of dict subclasses to keep (decoded as
            that class again); other dict subclasses are refused.

    Raises:
        InvalidArgumentError: a value, or a key, that cannot be saved, naming
            where it is (``['hyper_parameters']['loss']``).

    Example::

        structure, tensors = encode({"state_dict": model.state_dict()},
                                    module_paths=[("state_dict",)])
    """
    encoder = _Encoder(module_paths, mappings)
    structure = encoder.node(value, [], ())
    nest(encoder.tensors, encoder.where)  # raises if two tensors would share a name
    return structure, encoder.tensors


def _float(value: float):
    if math.isfinite(value):
        return value
    return {"float": "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")}


def _splits_at_dots(mapping) -> bool:
    """Whether every key is a str of non-empty dotted parts and none is the
    dotted prefix of another (so each splits into a distinct leaf path)."""
    names = []
    for key in mapping:
        if type(key) is not str or "" in key.split("."):
            return False
        names.append(tuple(key.split(".")))
    names.sort()
    return all(b[: len(a)] != a for a, b in zip(names, names[1:]))


def _mapping_name(kind, mappings: dict) -> str:
    if kind is dict:
        return "dict"
    if kind is collections.OrderedDict:
        return "OrderedDict"
    return next(name for name, cls in mappings.items() if cls is kind)


def _is_torch_tensor(value) -> bool:
    torch = _loaded_torch()
    return torch is not None and isinstance(value, torch.Tensor)


def _loaded_torch():
    import sys

    return sys.modules.get("torch")  # a torch tensor means torch is imported


def _type_name(value) -> str:
    kind = type(value)
    return (
        kind.__qualname__
        if kind.__module__ == "builtins"
        else f"{kind.__module__}.{kind.__qualname__}"
    )


def _unsavable(keys: list, what: str) -> InvalidArgumentError:
    return InvalidArgumentError(
        f"cannot save {location(keys) or 'the checkpoint'}: it holds {what}; a checkpoint "
        "holds tensors, numpy arrays and plain Python values (None, bool, int, float, "
        "complex, str, bytes, list, tuple, dict) only (no pickle)"
    )


# ml_dtypes types numpy reports with kind "V": saved as tensors all the same.
_ML_DTYPES = frozenset(
    [
        "bfloat16",
        "float8_e4m3fn",
        "float8_e5m2",
        "float8_e4m3fnuz",
        "float8_e5m2fnuz",
        "int4",
        "uint4",
        "int2",
        "uint2",
    ]
)


# ---- decoding --------------------------------------------------------------------------------
class _Decoder:
    def __init__(self, make_tensor, mappings):
        self.make_tensor = make_tensor
        self.mappings = {"dict": dict, "OrderedDict": collections.OrderedDict}
        self.mappings.update(mappings or {})
        self.tensors: dict = {}

    def node(self, node, path: tuple):
        if node is None or type(node) in (bool, int, float, str):
            return node
        if type(node) is not dict:
            raise _malformed(path, node)
        if "float" in node:
            return float(node["float"])
        if "complex" in node:
            re, im = node["complex"]
            return complex(self.node(re, path), self.node(im, path))
        if "bytes" in node:
            return base64.b64decode(node["bytes"])
        if "list" in node:
            return [self.node(v, path + (str(i),)) for i, v in enumerate(node["list"])]
        if "tuple" in node:
            return tuple(self.node(v, path + (str(i),)) for i, v in enumerate(node["tuple"]))
        if "torch" in node or "numpy" in node:
            tensor = self.make_tensor(node)
            self.tensors[path] = tensor
            return tensor
        if "numpy_scalar" in node:
            return _numpy_dtype(node["numpy_scalar"]).type(self.node(node["value"], path))
        for name, cls in self.mappings.items():
            if name in node:
                return self.mapping(cls, node[name], node, path)
        raise _malformed(path, node)

    def mapping(self, cls, pairs, node: dict, path: tuple):
        split = node.get("modules", False)
        out = cls()
        for key, item in pairs:
            names = tuple(key.split(".")) if split else (str(key),)
            out[key] = self.node(item, path + names)
        if "metadata" in node:
            out._metadata = self.node(node["metadata"], path + ("_metadata",))
        return out


def decode(structure, make_tensor, mappings=None):
    """``(value, tensors)``: the value ``structure`` describes, each tensor
    made by ``make_tensor(node)`` (``node`` is ``{"torch": {"dtype", "shape"}}``
    or ``{"numpy": {...}}``), and those tensors by path, as ``encode`` gave
    them. ``mappings`` as for ``encode``.

    Example::

        value, tensors = decode(structure, lambda node: empty_like_node(node))
        trackpoint.Checkpoint(**nest(tensors)).restore(prefix)   # fills them in place
    """
    decoder = _Decoder(make_tensor, mappings)
    value = decoder.node(structure, ())
    return value, decoder.tensors


def empty_tensor(node: dict, device=None):
    """A new uninitialized tensor (torch) or array (numpy) for a tensor node."""
    if "torch" in node:
        import torch

        spec = node["torch"]
        return torch.empty(spec["shape"], dtype=getattr(torch, spec["dtype"]), device=device)
    spec = node["numpy"]
    return np.empty(spec["shape"], dtype=_numpy_dtype(spec["dtype"]))


def _numpy_dtype(name: str) -> np.dtype:
    if name in _ML_DTYPES:
        import ml_dtypes

        return np.dtype(getattr(ml_dtypes, name))
    return np.dtype(name)


def _malformed(path: tuple, node) -> InvalidArgumentError:
    return InvalidArgumentError(
        f"malformed checkpoint structure at {'/'.join(path) or 'its root'}: {str(node)[:200]}"
    )


def nest(tensors: dict, where: dict | None = None) -> dict:
    """``{path: tensor}`` as nested dicts: ``{("a", "b"): t}`` -> ``{"a": {"b": t}}``.

    Raises InvalidArgumentError when two paths collide (one equal to, or a
    prefix of, another: ``{0: t, "0": u}`` names both ``0``), naming both
    tensors by ``where`` (path -> their keys in the checkpoint dict).
    """
    root: dict = {}
    for path, tensor in tensors.items():
        node = root
        for i, name in enumerate(path):
            child = node.get(name)
            last = i == len(path) - 1
            if child is not None and (last or not isinstance(child, dict)):
                other = next(p for p in tensors if p[: i + 1] == path[: i + 1] and p != path)
                raise _collision(path[: i + 1], _at(other, where), _at(path, where))
            if last:
                node[name] = tensor
            else:
                node = node.setdefault(name, {})
    return root


def _at(path: tuple, where) -> str:
    return location(where[path]) if where and path in where else "/".join(path)


def _collision(name: tuple, first: str, second: str) -> InvalidArgumentError:
    return InvalidArgumentError(
        f"cannot save both {first} and {second}: their tensors would both be saved under "
        f"{'/'.join(name)!r} (keys that differ only in type, such as 0 and '0')"
    )
