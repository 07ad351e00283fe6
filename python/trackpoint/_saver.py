"""Save side: walk the live objects, let the C++ saver graph number them and
name their keys, and write one bundle."""

from __future__ import annotations

import numpy as np

from . import _core
from ._plain_values import is_configuration, join, refuse, unsaved_values
from ._restore import OBJECT_GRAPH_KEY
from .bundle import BundleWriter
from .trackable.base import Trackable
from .trackable.python_state import PythonState, UnsavableStateError


def _describe_graph(root: Trackable):
    """(objects, specs, values): every object reachable from root (root first),
    its spec for the C++ planner, and the tensors it saves."""
    objects = [root]
    paths = [""]  # the first path to each object, "model/layers/0"
    configuration = [False]  # see is_configuration
    index = {id(root): 0}

    def index_of(obj, path: str, is_configuration: bool = False) -> int:
        if not isinstance(obj, Trackable):
            raise ValueError(f"{path or '(root)'}: {obj!r} is not trackable and cannot be "
                             "checkpointed")
        i = index.get(id(obj))
        if i is None:
            i = index[id(obj)] = len(objects)
            objects.append(obj)
            paths.append(path)
            configuration.append(is_configuration)
        return i

    specs, values = [], []
    i = 0
    unsaved = []
    while i < len(objects):
        obj, path = objects[i], paths[i]
        if not configuration[i]:
            unsaved += unsaved_values(obj, path)
        children = [(name, index_of(child, join(path, name),
                                    is_configuration(child, name, configuration[i])))
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
        refuse(unsaved)
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
