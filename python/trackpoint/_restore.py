"""Restore coordination: matching checkpoint nodes to live objects.

An object-based restore walks the checkpoint's object graph from node 0
(bound to the root) breadth-first. Each bound node's attributes are read into
its object; each child edge is followed by local name into the object's
children. A child the object does not have yet is *deferred*: the object
keeps the position, and when a child of that name is added later it is
restored then (trackable/base.py ``_handle_new_child``). Slot variables are
restored through their optimizer once both it and the original variable are
bound.

Lifetime of a pending (deferred) restoration, as in TensorFlow:

- it keeps the checkpoint's parsed object graph in memory (its size is that
  of the graph, a few hundred bytes a node), never tensor values;
- no file stays open once ``restore()`` returns: the bundle's index stays
  in memory (an entry a key, about a hundred bytes), its data files are
  opened to read a deferred value when its object appears and closed at the
  end of that step, as TensorFlow's restore ops read the files by path then.
  A checkpoint removed meanwhile raises NotFoundError; one replaced by other
  files at the same prefix raises DataLossError rather than restoring
  another checkpoint's values;
- it holds the objects it matched weakly, and an object holds its pending
  restorations: no reference cycle, so ``del root`` frees the objects
  without the cycle collector. (The restore status keeps the matched
  objects alive while it lives, for its assertions.)
"""

from __future__ import annotations

import contextlib
import gc
import itertools
import logging
import os
import threading
import weakref
from collections import deque

import numpy as np

from . import _core
from ._device import DeviceBuffer
from .bundle import BundleReader
from .dtypes import DType, as_dtype
from .errors import DataLossError, InvalidArgumentError, NotFoundError
from .trackable.base import Trackable

_log = logging.getLogger("trackpoint")

OBJECT_GRAPH_KEY = _core.OBJECT_GRAPH_KEY  # the bundle key of the object graph
STRING_ENUM = 7
VARIANT_ENUM = 21

_restore_uids = itertools.count(1)


def _unescape(name: str) -> str:
    """Inverse of the checkpoint escaping of one local name ('.' -> '..', '/' -> '.S')."""
    if "." not in name:
        return name
    out, i = [], 0
    while i < len(name):
        if name[i] == "." and i + 1 < len(name):
            out.append("." if name[i + 1] == "." else "/" if name[i + 1] == "S" else name[i : i + 2])
            i += 2
        else:
            out.append(name[i])
            i += 1
    return "".join(out)


def _attribute_key(name: str, keys: dict):
    """(attribute, checkpoint key) for the tensor an object calls ``name``.

    The attribute of that name; else, as TensorFlow restores objects with a
    legacy saveable name, the attribute whose name ``name`` extends (``table``
    for ``table-keys``), its key extended by the same suffix. None if neither.
    """
    if name in keys:
        return name, keys[name]
    bases = [a for a in keys if name.startswith(a)]
    if not bases:
        return None
    base = max(bases, key=len)
    return base, keys[base] + name[len(base):]


def _spec_string(dtype: DType, shape) -> str:
    return f"{dtype.name}{list(shape)}"


@contextlib.contextmanager
def _gc_paused():
    """Pauses the cyclic garbage collector while a restore makes its many small
    containers (node dicts, queues, child maps): each full collection scans
    every live object, so with it running a restore of 10^5-10^6 nodes spends
    most of its time there and grows faster than linearly. Leaves the
    collector as it found it."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _update_uid(obj) -> int:
    return getattr(obj, "_self_update_uid", 0)


def _set_update_uid(obj, uid: int) -> None:
    if uid > _update_uid(obj):
        object.__setattr__(obj, "_self_update_uid", uid)


def _file_identity(prefix: str):
    """What tells the checkpoint at prefix (its .index, or a V1 file) from
    one written there later."""
    index = f"{prefix}.index"
    st = os.stat(index if os.path.exists(index) else prefix)
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


class _BundleLease:
    """The bundle of a restore: its index stays in memory (one entry a key),
    its data files are open only while a restore step runs.

    A step is ``with lease as reader:``. When the outermost step ends, the
    data files are closed; a later step (a value deferred until its object
    appears) first checks that the checkpoint is still the one restored.
    ``bundle`` is the BundleReader, for its prefix and index between steps.
    A V1 checkpoint (one file, its index inside) is closed between steps and
    opened again by the next one; its keys stay in memory."""

    def __init__(self, reader: BundleReader):
        self.prefix = reader.prefix
        self._held = reader
        self._reopens = getattr(reader, "format", "v2") != "v2"
        self._keys = frozenset(reader.keys()) if self._reopens else None
        self._identity = _file_identity(self.prefix)
        self._depth = 0
        self._released = False
        # One step at a time: closing the files under another thread's read
        # would pull them from under it.
        self._lock = threading.RLock()

    @property
    def bundle(self) -> BundleReader:
        held = self._held
        return held if held is not None else BundleReader(self.prefix)

    def __contains__(self, key: str) -> bool:
        return key in self._keys if self._keys is not None else key in self._held

    def __enter__(self) -> BundleReader:
        self._lock.acquire()
        try:
            if self._depth == 0 and self._released:
                self._check_unchanged()
            if self._held is None:
                self._held = BundleReader(self.prefix)
        except BaseException:
            self._lock.release()
            raise
        self._depth += 1
        return self._held

    def __exit__(self, *exc) -> None:
        self._depth -= 1
        try:
            self.release()
        finally:
            self._lock.release()

    def release(self) -> None:
        """Closes the data files unless a step is running."""
        with self._lock:
            if self._depth == 0 and self._held is not None:
                self._released = True
                if self._reopens:
                    self._held = None
                else:
                    self._held.close_data_files()

    def _check_unchanged(self) -> None:
        what = "cannot restore values deferred until their objects were created"
        try:
            identity = _file_identity(self.prefix)
        except FileNotFoundError:
            raise NotFoundError(
                f"{what}: the checkpoint {self.prefix} was removed after restore()"
            ) from None
        if identity != self._identity:
            raise DataLossError(
                f"{what}: the checkpoint {self.prefix} was replaced after restore() by another one"
            )


class KeptObjects(list):
    """Strong references to the objects a restore matched: held by the
    restore until its status takes them (take_matched_objects), then by the
    status alone while the restore appends to it through a weak reference.
    So the objects outlive neither, and a restore left pending in objects
    makes no reference cycle."""


class _KeepsMatches:
    """Mixin: the KeptObjects of a restore."""

    def _init_kept(self) -> None:
        self._kept_strong = KeptObjects()
        self._kept = weakref.ref(self._kept_strong)

    def _keep(self, obj) -> None:
        kept = self._kept()
        if kept is not None:
            kept.append(obj)

    def take_matched_objects(self) -> KeptObjects:
        """The strong references, for the restore status to hold."""
        kept, self._kept_strong = self._kept_strong, None
        return kept if kept is not None else KeptObjects()


def restore_values(reader: BundleReader, pending: list) -> None:
    """Reads the checkpoint values of many objects at once and hands them over.

    pending: (object, {tensor name: checkpoint key}). dtypes and shapes are
    checked against each object's ``_tensor_specs`` before anything is read;
    fixed-size tensors are then read in parallel, straight into the buffers
    from ``_restore_buffers`` where an object offers them (numpy arrays, or
    DeviceBuffers filled through pinned staging buffers; else into new
    arrays), and each object's ``_restore_from_tensors`` is called.
    """
    if not pending:
        return
    # (dtype enum, dims, ...) per key, straight from the index.
    entries = reader.raw_entries([key for _, keys in pending for key in keys.values()])
    position = 0
    requests, handovers = [], []
    for obj, keys in pending:
        specs = obj._tensor_specs()
        buffers = obj._restore_buffers()
        tensors = {}
        for name, key in keys.items():
            enum, dims = entries[position][0], tuple(entries[position][1])
            position += 1
            entry_dtype = as_dtype(enum)
            if name in specs:
                dtype, shape = specs[name]
                if entry_dtype != dtype or dims != tuple(shape):
                    # TensorFlow's words for a shape mismatch, which its tests match.
                    tf_words = (f" (Received incompatible tensor with shape {list(dims)} when "
                                f"attempting to restore variable with shape {list(shape)})"
                                if dims != tuple(shape) else "")
                    raise InvalidArgumentError(
                        f"cannot restore {key!r} from {reader.prefix}: checkpoint has "
                        f"{_spec_string(entry_dtype, dims)}, object has "
                        f"{_spec_string(dtype, shape)}{tf_words}"
                    )
            if enum in (STRING_ENUM, VARIANT_ENUM):
                tensors[name] = reader.read(key)
                continue
            dst = buffers.get(name)
            if isinstance(dst, DeviceBuffer):
                if dst.dtype == entry_dtype and dst.shape == dims:
                    requests.append((key, dst))  # staged to the device
                    tensors[name] = dst
                    continue
                dst = None
            np_dtype = entry_dtype.as_numpy_dtype
            if (dst is None or dst.dtype != np_dtype or dst.shape != dims
                    or not dst.flags.c_contiguous or not dst.flags.writeable):
                reader.check_stored(key)  # before sizing a buffer by the index
                dst = np.empty(dims, dtype=np_dtype)
            requests.append((key, dst))
            tensors[name] = dst
        handovers.append((obj, tensors))
    reader.read_into_many(requests)
    for obj, tensors in handovers:
        obj._restore_from_tensors(tensors)


def reachable_objects(root: Trackable, include_slots: bool = True) -> list:
    """Every trackable reachable from root through children (and slots), root first."""
    seen = {id(root): root}
    queue = deque([root])
    while queue:
        obj = queue.popleft()
        nexts = list(obj._trackable_children().values())
        if include_slots:
            nexts += [s for _, _, s in obj._slot_variables()]
        for child in nexts:
            if id(child) not in seen:
                seen[id(child)] = child
                queue.append(child)
    return list(seen.values())


class _NodePaths:
    """node id -> a readable path such as "model/layers/0/kernel", for
    messages. Built on demand from breadth-first parent links, so a hostile
    graph (a chain of 10^5 nodes) costs linear memory rather than the sum of
    all its path lengths; paths deeper than _MAX_PARTS keep their last parts."""

    _MAX_PARTS = 64

    def __init__(self, nodes: list):
        self._parent = {0: (None, "(root)")}  # node -> (parent node, edge name)
        queue = deque([0])
        while queue:
            n = queue.popleft()
            for child, name in nodes[n]["children"]:
                if child not in self._parent:
                    self._parent[child] = (n, name)
                    queue.append(child)
        self._slots = {}  # slot node not reached by children -> (original, name, optimizer)
        for opt_id, node in enumerate(nodes):
            for original, slot_name, slot_id in node["slot_variables"]:
                if slot_id not in self._parent:
                    self._slots.setdefault(slot_id, (original, slot_name, opt_id))

    def _tree_path(self, n):
        if n not in self._parent:
            return None
        parts = []
        while n is not None and len(parts) < self._MAX_PARTS:
            n, name = self._parent[n]
            parts.append(name)
        if n is not None:
            parts.append("...")
        if len(parts) > 1 and parts[-1] == "(root)":
            parts.pop()  # "model/layers/0", the root alone "(root)"
        return "/".join(reversed(parts))

    def get(self, n, default=None):
        path = self._tree_path(n)
        if path is not None:
            return path
        if n in self._slots:
            original, slot_name, opt_id = self._slots[n]
            return (f"{self._tree_path(original) or '?'}'s slot {slot_name!r} of "
                    f"{self._tree_path(opt_id) or '?'}")
        return default


class ObjectGraphRestore(_KeepsMatches):
    """One object-based restore of one checkpoint into one root.

    Its bundle's data files are open only during a restore step (see
    _BundleLease); root is not kept, and matched objects are held weakly
    (``object_by_node``)."""

    def __init__(self, root: Trackable, reader: BundleReader, graph_bytes: bytes,
                 skip_slot_variables: bool = False):
        self.uid = next(_restore_uids)
        self.prefix = reader.prefix
        self._bundle = _BundleLease(reader)
        self.skip_slot_variables = skip_slot_variables
        with _gc_paused():
            self._parse(graph_bytes)

    def _parse(self, graph_bytes: bytes) -> None:
        self.nodes = _core.parse_object_graph(graph_bytes)
        if not self.nodes:
            raise DataLossError(f"the object graph of {self.prefix} has no nodes (no root)")
        self.object_by_node = weakref.WeakValueDictionary()
        self._init_kept()
        self.unused_attributes: dict = {}  # node id -> [attribute names]
        self.matched_nodes: set = set()  # every node ever bound
        # original variable node -> [(optimizer node, slot node, slot name)]
        self.slot_restorations: dict = {}
        # optimizer node -> [(original variable node, slot node, slot name)]
        self.deferred_slot_restorations: dict = {}
        self.slot_nodes = set()
        for opt_id, node in enumerate(self.nodes):
            for original, slot_name, slot_id in node["slot_variables"]:
                self.slot_restorations.setdefault(original, []).append((opt_id, slot_id, slot_name))
                self.slot_nodes.add(slot_id)
        self.paths = _NodePaths(self.nodes)
        # Logged once this restore is gone (with its last pending
        # restoration), as TensorFlow does; expect_partial silences it.
        self._leftovers = _Leftovers(self)
        weakref.finalize(self, self._leftovers.warn)

    @property
    def expect_partial(self) -> bool:
        return self._leftovers.expect_partial

    @expect_partial.setter
    def expect_partial(self, value: bool) -> None:
        self._leftovers.expect_partial = bool(value)

    @property
    def reader(self) -> BundleReader:
        """The bundle (its index in memory; read from it only in a step)."""
        return self._bundle.bundle

    def _bind(self, n: int, obj) -> None:
        self.object_by_node[n] = obj
        self.matched_nodes.add(n)
        self._keep(obj)

    def has_values(self, node_id: int) -> bool:
        node = self.nodes[node_id]
        if node["has_checkpoint_values"] is not None:
            return node["has_checkpoint_values"]
        return bool(node["attributes"] or node["slot_variables"] or node["children"]
                    or node["registered_saver"])

    # ---- matching ------------------------------------------------------------------------
    def bind_and_restore(self, node_id: int, obj: Trackable) -> None:
        """Binds node_id to obj, restores it, and continues breadth-first below it."""
        with self._bundle as reader, _gc_paused():
            self._bind_and_restore(node_id, obj, reader)

    def _bind_and_restore(self, node_id: int, obj: Trackable, reader: BundleReader) -> None:
        queue = deque([(node_id, obj)])
        pending = []  # (object, {tensor name: checkpoint key})
        while queue:
            n, o = queue.popleft()
            bound = self.object_by_node.get(n)
            if bound is not None:
                if bound is not o:
                    _log.warning("inconsistent references when restoring %s: node %s is "
                                 "already bound to another object", self.prefix, self.paths.get(n))
                continue
            self._bind(n, o)
            if _update_uid(o) <= self.uid:
                keys = self._match_attributes(n, o)
                if keys:
                    pending.append((o, keys))
            _set_update_uid(o, self.uid)
            self._queue_children(n, o, queue)
            if not self.skip_slot_variables:
                self._queue_slots(n, o, queue)
        restore_values(reader, pending)

    def _match_attributes(self, n: int, obj: Trackable):
        """{tensor name: key} to restore into obj from node n (None if nothing
        matches), recording attributes the object does not take."""
        attributes = self.nodes[n]["attributes"]
        if not attributes:
            return None
        keys = {_unescape(name): key for name, _, key in attributes}
        wanted = obj._restore_tensor_names(list(keys))
        matched = {name: _attribute_key(name, keys) for name in wanted}
        used = {source for source, _ in filter(None, matched.values())}
        unused = [name for name in keys if name not in used]
        if unused:
            self.unused_attributes[n] = unused
        if not wanted or None in matched.values():
            self.unused_attributes[n] = list(keys)
            return None
        # A key the graph names but the bundle lacks raises NotFoundError
        # ("Key ... not found in checkpoint ...") when it is read, as in TF.
        return {name: key for name, (_, key) in matched.items()}

    def _queue_children(self, n: int, obj: Trackable, queue: deque) -> None:
        edges = self.nodes[n]["children"]
        if not edges:
            return
        children = obj._trackable_children()
        for child_id, local_name in edges:
            if child_id in self.object_by_node:
                continue
            child = children.get(local_name)
            if child is not None:
                queue.append((child_id, child))
            elif self.has_values(child_id):
                obj._deferred().setdefault(local_name, []).append((self, child_id))

    def _queue_slots(self, n: int, obj: Trackable, queue: deque) -> None:
        # n as an original variable: its slots, through optimizers bound already.
        for opt_id, slot_id, slot_name in self.slot_restorations.get(n, ()):
            optimizer = self.object_by_node.get(opt_id)
            if optimizer is None:
                self.deferred_slot_restorations.setdefault(opt_id, []).append((n, slot_id, slot_name))
            else:
                self._restore_slot(optimizer, obj, slot_id, slot_name, queue)
        # n as an optimizer: slots of variables bound before it.
        for original_id, slot_id, slot_name in self.deferred_slot_restorations.pop(n, ()):
            self._restore_slot(obj, self.object_by_node[original_id], slot_id, slot_name, queue)

    def _restore_slot(self, optimizer, variable, slot_id, slot_name, queue) -> None:
        if slot_id in self.object_by_node:
            return
        slot = optimizer._restore_slot_variable(slot_name, variable)
        if slot is not None:
            queue.append((slot_id, slot))

    # ---- what was left over ----------------------------------------------------------
    def unresolved_nodes(self) -> list:
        """Checkpoint nodes with values that no object received."""
        return [n for n, node in enumerate(self.nodes)
                if node["attributes"] and n not in self.object_by_node
                and not (self.skip_slot_variables and n in self.slot_nodes)]

    def leftovers(self) -> list:
        """Readable descriptions of every checkpoint value not restored."""
        return self._leftovers.describe()

    def warn_leftovers(self) -> None:
        self._leftovers.warn()


class _Leftovers:
    """What the unused-value warning of an ObjectGraphRestore needs, without
    the restore itself (its finalizer must not keep it alive)."""

    def __init__(self, restore: ObjectGraphRestore):
        self.prefix = restore.prefix
        self.nodes = restore.nodes
        self.paths = restore.paths
        self.matched = restore.matched_nodes
        self.unused_attributes = restore.unused_attributes
        self.skipped = restore.slot_nodes if restore.skip_slot_variables else set()
        self.expect_partial = False

    def describe(self) -> list:
        out = [self.paths.get(n, f"node {n}") for n, node in enumerate(self.nodes)
               if node["attributes"] and n not in self.matched and n not in self.skipped]
        out += [f"{self.paths.get(n, f'node {n}')}/.ATTRIBUTES/{name}"
                for n, names in self.unused_attributes.items() for name in names]
        return out

    def warn(self) -> None:
        if self.expect_partial:
            return
        leftovers = self.describe()
        if leftovers:
            shown = "\n  ".join(leftovers[:20])
            more = f"\n  ... and {len(leftovers) - 20} more" if len(leftovers) > 20 else ""
            _log.warning(
                "Values in checkpoint %s were not restored into any object "
                "(call expect_partial() on the restore status to silence this):\n  %s%s",
                self.prefix, shown, more,
            )


class NameBasedRestore(_KeepsMatches):
    """Restore of a checkpoint without an object graph (TF1 Saver): every
    variable is looked up by its full name.

    Keeps the checkpoint's index in memory, not its files open (see
    _BundleLease), and the restored objects weakly."""

    def __init__(self, reader: BundleReader):
        self.uid = next(_restore_uids)
        self.prefix = reader.prefix
        self._bundle = _BundleLease(reader)
        self.restored = weakref.WeakValueDictionary()  # id -> object
        self.unrestored: dict = {}  # id -> the keys it lacks
        self._init_kept()

    @property
    def reader(self) -> BundleReader:
        """The bundle (its index in memory; read from it only in a step)."""
        return self._bundle.bundle

    def restore_subtree(self, root: Trackable) -> None:
        try:
            self._restore_subtree(root)
        finally:
            self._bundle.release()

    def _restore_subtree(self, root: Trackable) -> None:
        matches = []
        for obj in reachable_objects(root):
            if isinstance(obj, Trackable):
                pending = obj._name_based_restores()
                if self not in pending:
                    pending.append(self)
            keys = self._match(obj)
            if keys:
                matches.append((obj, keys))
        if not matches:
            return
        with self._bundle as reader:
            restore_values(reader, matches)
        for obj, _ in matches:
            _set_update_uid(obj, self.uid)
            self.unrestored.pop(id(obj), None)
            self.restored[id(obj)] = obj
            self._keep(obj)

    def _match(self, obj: Trackable):
        """{tensor name: key} to restore into obj, or None."""
        names = obj._tensor_names()
        if not names or id(obj) in self.restored:
            return None
        full_name = obj._checkpoint_full_name()
        keys = {name: full_name if len(names) == 1 else f"{full_name}/{name}" for name in names}
        missing = [k for k in keys.values() if k not in self._bundle]
        if not full_name or missing:
            self.unrestored[id(obj)] = missing
            return None
        return keys
