"""Save side: walk the live objects, let the C++ saver graph number them and
name their keys, and write one bundle."""

from __future__ import annotations

import numpy as np

from . import _core
from ._plain_values import is_configuration, join, refuse, unsaved_values
from ._restore import OBJECT_GRAPH_KEY
from .bundle import BundleWriter
from .trackable.base import Trackable
from .trackable.data_structures import DictWrapper, ListWrapper
from .trackable.python_state import PythonState, UnsavableStateError
from .trackable.structure import Cache, announced


def describe_graph(root: Trackable):
    """(objects, specs, values): every object reachable from root (root first),
    its spec for the C++ planner, and the tensors it saves."""
    objects = [root]
    paths = [""]  # the first path to each object, "model/layers/0"
    configuration = [False]  # see is_configuration
    index = {id(root): 0}

    def index_of(obj, parent: int, name: str) -> int:
        """obj's number; a new object's path and configuration flag are
        derived from the edge (parent, name) it was first reached by."""
        i = index.get(id(obj))
        if i is not None:
            return i
        path = join(paths[parent], name)
        if not isinstance(obj, Trackable):
            raise ValueError(f"{path}: {obj!r} is not trackable and cannot be checkpointed")
        i = index[id(obj)] = len(objects)
        objects.append(obj)
        paths.append(path)
        configuration.append(is_configuration(obj, name, configuration[parent]))
        return i

    specs, values = [], []
    i = 0
    unsaved = []
    while i < len(objects):
        obj, path = objects[i], paths[i]
        if not configuration[i]:
            unsaved += unsaved_values(obj, path)
        children = [(name, index_of(child, i, name))
                    for name, child in obj._trackable_children().items()]
        try:
            tensors = obj._serialize_to_tensors()
        except UnsavableStateError as e:
            raise UnsavableStateError(f"cannot save {path or '(root)'}: {e}") from None
        slots = [(name, index_of(original, i, f"<original of slot {name}>"),
                  index_of(slot, i, f"<slot {name}>"))
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


# The last plan and the specs it was planned from. The planner is a pure
# function of the specs, so specs equal to the last ones (the usual case: the
# same model saved again) take the same plan; comparing them costs a fraction
# of planning anew. Specs hold names and numbers only, no user object.
_last_plan: tuple = ([], None)


def plan_save(specs: list) -> dict:
    """The C++ planner's answer for specs (see ``describe_graph``): the
    serialized object graph, the keys per object and the data-file order of
    (object, tensor). Callers must not modify it: it may be shared."""
    global _last_plan
    last_specs, last = _last_plan
    if last is not None and specs == last_specs:
        return last
    plan = _core.build_saver_graph(specs, 0)
    _last_plan = (specs, plan)
    return plan


def snapshot(root: Trackable, pool=None, cache: Cache | None = None) -> list:
    """Everything a write of root needs: ``(key, value, dtype)`` for every
    tensor in data-file order, the object graph last. With a staging pool the
    values are copies (for a background write); without, the live arrays.

    With a cache (see ``trackable.structure``), a graph of objects that
    announce their changes is walked once and its items kept until its
    structure changes; a save before then reuses them."""
    items = _kept_items(root, cache)
    if items is None:
        objects, specs, values = describe_graph(root)
        items = _ordered_items(objects, specs, values, plan_save(specs))
        if cache is not None and all(announced(obj) for obj in objects):
            containers = [obj for obj in objects if isinstance(obj, (ListWrapper, DictWrapper))]
            cache.keep((root, containers, items))
    if pool is None:
        return list(items)
    return [(key, pool.copy(key, value), dtype) for key, value, dtype in items[:-1]] + items[-1:]


def _kept_items(root: Trackable, cache: Cache | None) -> list | None:
    """The items a cache holds for root, unless a tracked list or dict of the
    graph was changed through the plain list or dict it wraps."""
    kept = cache.value if cache is not None else None
    if kept is None or kept[0] is not root:
        return None
    for container in kept[1]:
        container._check_external()  # a change found empties the cache
    return kept[2] if cache.value is kept else None


def _ordered_items(objects: list, specs: list, values: list, plan: dict) -> list:
    """The items of a snapshot in the plan's data-file order."""
    keys = plan["keys"]
    tensor_specs = {}  # per object, fetched once
    items = []
    for obj_index, tensor_index in plan["tensor_order"]:
        name = specs[obj_index]["tensor_names"][tensor_index]
        obj_specs = tensor_specs.get(obj_index)
        if obj_specs is None:
            obj_specs = tensor_specs[obj_index] = objects[obj_index]._tensor_specs()
        spec = obj_specs.get(name)
        items.append((keys[obj_index][tensor_index], values[obj_index][name],
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


def graph_root(obj) -> Trackable:
    """The object graph's node 0 for obj: a Checkpoint's root object (see
    ``Checkpoint._graph_root``), or obj itself for any other trackable."""
    root = getattr(obj, "_graph_root", None)
    return root() if root is not None else obj


def run_write_callbacks(options, path: str) -> None:
    """Runs ``options.experimental_write_callbacks`` once path is written, each
    with path if it takes an argument (as TensorFlow's), else with none."""
    import inspect

    for callback in getattr(options, "experimental_write_callbacks", None) or []:
        try:
            takes_path = len(inspect.signature(callback).parameters) > 0
        except (TypeError, ValueError):
            takes_path = True
        callback(path) if takes_path else callback()


def give_back_number(counter, number: int) -> None:
    """Undoes a failed save's increment of save_counter, so that the next save
    takes its number and checkpoints stay numbered 1, 2, 3, ... as
    TensorFlow's. For a background save it runs when the failure surfaces
    (its path, already returned, never appears), and only if nothing
    assigned the counter since."""
    if int(counter) == number:
        counter.assign(number - 1)
