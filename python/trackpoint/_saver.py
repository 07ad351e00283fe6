"""Save side: walk the live objects, let the C++ saver graph number them and
name their keys, and write one bundle."""

from __future__ import annotations

import numbers
import types

import numpy as np

from . import _core
from ._restore import OBJECT_GRAPH_KEY
from .bundle import BundleWriter
from .errors import InvalidArgumentError
from .trackable.autotrackable import AutoTrackable
from .trackable.base import Trackable
from .trackable.python_state import PythonState, UnsavableStateError

_PLAIN = (bool, numbers.Number, str, bytes, bytearray)


def _plain_leaves(value, path: str) -> tuple[list, bool]:
    """(paths of the plain values in value, whether value is nothing but plain
    values). Trackables and adaptable objects are children, checked when they
    are visited; None and other objects (functions, classes, modules) are not
    state."""
    if isinstance(value, Trackable) or value is None or isinstance(
            value, (type, types.ModuleType, types.FunctionType, types.MethodType,
                    types.BuiltinFunctionType)):
        return [], False
    if isinstance(value, _PLAIN):
        return [path], True
    if isinstance(value, (list, tuple, dict)):
        return _plain_items(value, path)
    return [], False


def _plain_items(container, path: str) -> tuple[list, bool]:
    """_plain_leaves of a container's items; the container's own path when
    it holds nothing else."""
    items = container.items() if isinstance(container, dict) else enumerate(container)
    found, only_plain = [], len(container) > 0
    for k, v in items:
        sub, plain = _plain_leaves(v, _join(path, str(k)))
        found += sub
        only_plain = only_plain and plain
    return ([path or "(root)"] if only_plain else found), only_plain


def _unsaved_values(obj: Trackable, path: str) -> list:
    """Paths of plain Python values obj holds that a checkpoint would not
    save: public attributes of an AutoTrackable, items of a tracked list,
    tuple or dict."""
    if isinstance(obj, (list, tuple, dict)):
        return _plain_items(obj, path)[0]
    if isinstance(obj, AutoTrackable):
        found = []
        for name, v in vars(obj).items():
            if not name.startswith("_"):
                found += _plain_leaves(v, _join(path, name))[0]
        return found
    return []


def _join(path: str, name: str) -> str:
    return f"{path}/{name}" if path else name


def _refuse(found: list) -> None:
    shown = ", ".join(found[:10]) + (f" and {len(found) - 10} more" if len(found) > 10 else "")
    raise InvalidArgumentError(
        f"cannot save {shown}: plain Python values (numbers, strings, bytes, containers of "
        "them) are not saved by a checkpoint and would be lost at restore. Wrap the value in "
        "trackpoint.JsonState(...) (it is then saved and restored as JSON), or, if it is "
        "configuration rather than state, name the attribute with a leading underscore"
    )


def _describe_graph(root: Trackable):
    """(objects, specs, values): every object reachable from root (root first),
    its spec for the C++ planner, and the tensors it saves."""
    objects = [root]
    paths = [""]  # the first path to each object, "model/layers/0"
    index = {id(root): 0}

    def index_of(obj, path: str) -> int:
        if not isinstance(obj, Trackable):
            raise ValueError(f"{path or '(root)'}: {obj!r} is not trackable and cannot be "
                             "checkpointed")
        i = index.get(id(obj))
        if i is None:
            i = index[id(obj)] = len(objects)
            objects.append(obj)
            paths.append(path)
        return i

    specs, values = [], []
    i = 0
    unsaved = []
    while i < len(objects):
        obj, path = objects[i], paths[i]
        unsaved += _unsaved_values(obj, path)
        children = [(name, index_of(child, _join(path, name)))
                    for name, child in obj._trackable_children().items()]
        try:
            tensors = obj._serialize_to_tensors()
        except UnsavableStateError as e:
            raise UnsavableStateError(f"cannot save {path or '(root)'}: {e}") from None
        slots = [(name, index_of(original, f"{path}/<original of slot {name}>"),
                  index_of(slot, f"{path}/<slot {name}>"))
                 for name, original, slot in obj._slot_variables()]
        full_name = obj._checkpoint_full_name()
        specs.append({
            "children": children,
            "tensor_names": list(tensors),
            "full_names": [full_name] * len(tensors),
            "python_state": isinstance(obj, PythonState),
            "slot_names": list(obj._slot_names()),
            "slots": slots,
        })
        values.append(tensors)
        i += 1
    if unsaved:
        _refuse(unsaved)
    return objects, specs, values


def snapshot(root: Trackable, pool=None) -> list:
    """Everything a write of root needs: ``(key, value, dtype)`` for every
    tensor in data-file order, the object graph last. With a staging pool the
    values are copies (for a background write); without, the live arrays."""
    objects, specs, values = _describe_graph(root)
    plan = _core.build_saver_graph(specs, 0)
    keys = plan["keys"]
    items = []
    for obj_index, tensor_index in plan["tensor_order"]:
        name = specs[obj_index]["tensor_names"][tensor_index]
        spec = objects[obj_index]._tensor_specs().get(name)
        key = keys[obj_index][tensor_index]
        value = values[obj_index][name]
        items.append((key, pool.copy(key, value) if pool is not None else value,
                      spec[0] if spec else None))
    items.append((OBJECT_GRAPH_KEY, np.array(plan["serialized_graph"], dtype=object), None))
    return items


def write_items(items: list, prefix: str) -> str:
    """Writes a snapshot as one bundle at prefix."""
    with BundleWriter(prefix) as writer:
        writer.add_many(items)
    return prefix


def write_object_graph(root: Trackable, prefix: str) -> str:
    """Writes every value reachable from root, and the object graph, to prefix."""
    return write_items(snapshot(root), prefix)
