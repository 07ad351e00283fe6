"""Builds trackpoint objects from the structure JSON of tests/fixtures/objects/*/manifest.json
(the format is documented at the top of tests/fixtures/tf_interop.py)."""

import numpy as np
from conftest import expected_value

import trackpoint


def decode_record(record) -> np.ndarray:
    """The value of a tensor record (a writable copy)."""
    return expected_value(record, strings_key="values").copy()


def zeros_like_record(record) -> np.ndarray:
    value = decode_record(record)
    if value.dtype == object:
        value[...] = b""
        return value
    return np.zeros_like(value)


class SlotOptimizer(trackpoint.AutoTrackable):
    """A minimal optimizer with slot variables, as TF1's AdamOptimizer records them."""

    def __init__(self, slot_names):
        self._self_slot_names = list(slot_names)
        self._self_slots = {}  # (slot name, id(variable)) -> (variable, slot)

    def add_slot(self, name, variable, slot):
        self._self_slots[(name, id(variable))] = (variable, slot)

    def _slot_names(self):
        return self._self_slot_names

    def _slot_variables(self):
        return [(name, var, slot) for (name, _), (var, slot) in self._self_slots.items()]

    def _restore_slot_variable(self, slot_name, variable):
        key = (slot_name, id(variable))
        if key not in self._self_slots:
            zeros = np.zeros_like(variable.numpy())
            self._self_slots[key] = (variable, trackpoint.Variable(zeros, dtype=variable.dtype))
        return self._self_slots[key][1]


class StringState(trackpoint.PythonState):
    def __init__(self, text=""):
        self.text = text

    def serialize(self):
        return self.text

    def deserialize(self, text):
        self.text = text.decode("utf-8")


class Tensors(trackpoint.Trackable):
    """A trackable saving named tensors (the manifest's "tensors" kind)."""

    def __init__(self, tensors):
        self.tensors = dict(tensors)

    def _serialize_to_tensors(self):
        return dict(self.tensors)

    def _restore_from_tensors(self, tensors):
        self.tensors.update(tensors)


def build(root, with_values=True):
    """(checkpoint, objects by path) for a manifest checkpoint node.

    with_values=False gives zero / empty-string placeholders of the same dtypes and shapes.
    """
    value_of = decode_record if with_values else zeros_like_record
    by_path = {}

    # First pass: every defined (non-ref) node becomes an object.
    def create(node, path):
        if "ref" in node:
            return
        kind = node["kind"]
        if kind == "variable":
            obj = trackpoint.Variable(value_of(node), dtype=node["dtype"], name=node["name"])
        elif kind == "python_state":
            obj = StringState(value_of(node)[()].decode() if with_values else "")
        elif kind == "tensors":
            obj = Tensors((name, value_of(rec)) for name, rec in node["tensors"])
        elif kind == "optimizer" and "slots" in node:
            obj = SlotOptimizer(sorted({s["slot_name"] for s in node["slots"]}))
        elif kind in ("module", "optimizer"):
            obj = trackpoint.AutoTrackable()
        elif kind == "list":
            obj = []
        elif kind == "dict":
            obj = {}
        elif kind == "checkpoint":
            obj = None
        else:
            raise ValueError(f"unknown kind {kind}")
        by_path[path] = obj
        for name, child in node.get("children", []):
            create(child, path + (name,))
        for i, slot in enumerate(node.get("slots", [])):
            create(slot["variable"], path + ("<slot>", str(i)))

    # Second pass: children in order, refs resolved.
    def link(node, path):
        if "ref" in node:
            return by_path[tuple(node["ref"])]
        obj = by_path[path]
        children = [(name, link(child, path + (name,))) for name, child in node.get("children", [])]
        if isinstance(obj, list):
            obj.extend(child for _, child in children)
        elif isinstance(obj, dict):
            obj.update(children)
        elif isinstance(obj, trackpoint.AutoTrackable):
            for name, child in children:
                setattr(obj, name, child)
        for i, slot in enumerate(node.get("slots", [])):
            obj.add_slot(slot["slot_name"], link(slot["original"], ()),
                         link(slot["variable"], path + ("<slot>", str(i))))
        return obj

    create(root, ())
    top = {}
    counter = None
    for name, child in root["children"]:
        if name == "save_counter":
            counter = child
            continue
        top[name] = link(child, (name,))
    # Wrap containers the way Checkpoint will, so by_path points at the tracked objects.
    ckpt = trackpoint.Checkpoint(**top)
    for name in top:
        by_path[(name,)] = getattr(ckpt, name)
    if counter is not None and with_values:
        ckpt.save_counter.assign(int(decode_record(counter)[()]))
    return ckpt, counter
