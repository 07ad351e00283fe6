"""CheckpointView and TrackableView, as tf.train.CheckpointView / TrackableView.

A :class:`CheckpointView` shows the object graph stored in a checkpoint (node
ids and the local names of their children), a :class:`TrackableView` the
graph of live objects a save would walk; ``CheckpointView.match`` pairs the
two by names and positions, to see which parts of a checkpoint a model would
restore before restoring it.

Example::

    view = trackpoint.CheckpointView(path)
    view.children(0)           # {"model": 1, "save_counter": 2}
    view.match(model_root)     # {0: model_root, 1: ..., ...}
"""

from __future__ import annotations

import logging
import os
import weakref
from collections import deque

from . import _core
from ._restore import OBJECT_GRAPH_KEY
from .bundle import BundleReader
from .errors import DataLossError
from .trackable.data_structures import as_trackable

__all__ = ["CheckpointView", "TrackableView"]

_log = logging.getLogger("trackpoint")


def _trackable(obj, what: str):
    trackable = as_trackable(obj)
    if trackable is None:
        raise ValueError(f"{what} must be a trackable object; got {obj!r} of type {type(obj).__name__}")
    return trackable


class TrackableView:
    """The object graph below a live root, as a save walks it.

    ``root`` is held by a weak reference when it can be (like TensorFlow's),
    so keep the root alive while the view is used.

    Example::

        root = trackpoint.AutoTrackable()
        root.leaf = trackpoint.Variable(1.0)
        view = trackpoint.TrackableView(root)
        view.children(root)    # {"leaf": <trackpoint.Variable ...>}
        view.descendants()     # [root, root.leaf], breadth first
    """

    def __init__(self, root):
        if isinstance(root, weakref.ref):
            self._root = root
        else:
            try:
                self._root = weakref.ref(root)
            except TypeError:
                self._root = lambda: root  # objects without weakref support

    @property
    def root(self):
        """The root object (RuntimeError if it no longer exists)."""
        root = self._root()
        if root is None:
            raise RuntimeError("the root of this TrackableView no longer exists")
        return root

    @classmethod
    def children(cls, obj) -> dict:
        """``{local name: child}`` of ``obj``, in dependency order; framework
        objects (numpy arrays, torch modules) come as their trackable adapters."""
        children = _trackable(obj, "TrackableView.children's argument")._trackable_children()
        return {name: as_trackable(child) for name, child in children.items()}

    def descendants(self) -> list:
        """Every object reachable from the root (the root included), breadth
        first, each once."""
        root = _trackable(self.root, "the root of a TrackableView")
        order, seen = [], {id(root)}
        queue = deque([root])
        while queue:
            obj = queue.popleft()
            order.append(obj)
            for child in self.children(obj).values():
                if id(child) not in seen:
                    seen.add(id(child))
                    queue.append(child)
        return order


class CheckpointView:
    """The object graph stored in a checkpoint, by node id (0 is the root).

    Raises NotFoundError (a FileNotFoundError) when ``save_path`` has no
    ``.index`` file and ValueError for a name-based (TF1 ``Saver``)
    checkpoint, which stores no object graph.

    Example::

        view = trackpoint.CheckpointView("/tmp/run/ckpt-1")
        for name, node_id in view.children(0).items():
            print(name, node_id)
    """

    def __init__(self, save_path):
        path = os.fspath(save_path)
        reader = BundleReader(path)
        if OBJECT_GRAPH_KEY not in reader:
            raise ValueError(
                f"checkpoint {path!r} has no {OBJECT_GRAPH_KEY} tensor: it is a name-based "
                "checkpoint (a TF1 Saver's, or raw SaveV2), without an object graph to view; "
                "read it with trackpoint.load_checkpoint"
            )
        self._path = path
        self._nodes = _core.parse_object_graph(reader.read(OBJECT_GRAPH_KEY)[()])
        if not self._nodes:
            raise DataLossError(f"the object graph of {path} has no nodes (no root)")

    def children(self, node_id: int) -> dict:
        """``{local name: child node id}`` of the node, in stored order."""
        if not 0 <= node_id < len(self._nodes):
            raise IndexError(f"{self._path} has nodes 0..{len(self._nodes) - 1}, not {node_id}")
        return {name: child for child, name in self._nodes[node_id]["children"]}

    def descendants(self) -> list:
        """Node ids reachable from the root through children (slot variables
        are not children), breadth first, the root first."""
        return list(self._paths())

    def _paths(self) -> dict:
        """node id -> "root.a.b", breadth first."""
        paths = {0: "root"}
        queue = deque([0])
        while queue:
            node_id = queue.popleft()
            for name, child in self.children(node_id).items():
                if child not in paths:
                    paths[child] = f"{paths[node_id]}.{name}"
                    queue.append(child)
        return paths

    def match(self, obj) -> dict:
        """``{node id: object}`` for the nodes that ``obj`` (matched to node
        0) has at the same path: the objects a restore into ``obj`` would
        bind, before deferred ones. A node reached again through another
        path keeps its first object; when that path leads to a different
        object a warning is logged."""
        root = _trackable(obj, "CheckpointView.match's argument")
        matched = {0: root}
        queue = deque([(0, root)])
        done = set()
        while queue:
            node_id, current = queue.popleft()
            live = TrackableView.children(current)
            for name, child_id in self.children(node_id).items():
                if child_id == 0 or child_id in done or name not in live:
                    continue
                bound = matched.get(child_id)
                if bound is None:
                    matched[child_id] = live[name]
                    queue.append((child_id, live[name]))
                elif bound is not live[name]:
                    _log.warning("inconsistent references matching %s: node %d is bound to "
                                 "%r and %r", self._path, child_id, bound, live[name])
            done.add(node_id)
        return matched

    def diff(self, obj) -> tuple:
        """``(match(obj), node ids only in the checkpoint, objects only in
        obj's graph)``; both lists breadth first.

        Example::

            matched, missing_in_model, new_in_model = view.diff(model)
        """
        matched = self.match(obj)
        only_in_checkpoint = [n for n in self.descendants() if n not in matched]
        bound = {id(o) for o in matched.values()}
        only_in_trackable = [o for o in TrackableView(obj).descendants() if id(o) not in bound]
        return matched, only_in_checkpoint, only_in_trackable
