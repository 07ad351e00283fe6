"""Restore side, above the restorers: one opened bundle into a live object
graph, and the status ``Checkpoint.read`` returns for it."""

from __future__ import annotations

from ._restore import OBJECT_GRAPH_KEY, NameBasedRestore, ObjectGraphRestore
from .status import CheckpointLoadStatus, NameBasedSaverStatus


def read_into(root, reader, *, skip_slot_variables=False, restore_class=ObjectGraphRestore):
    """Restores what ``reader`` (an open BundleReader) holds into ``root``.

    A checkpoint with an object graph is matched by ``restore_class`` (an
    ObjectGraphRestore; trackpoint.distributed passes one reading regions);
    one without it (TF1, name-based) by variable names. Returns the status.
    """
    if OBJECT_GRAPH_KEY not in reader:
        restore = NameBasedRestore(reader)
        restore.restore_subtree(root)
        return NameBasedSaverStatus(restore, root)
    graph = reader.read(OBJECT_GRAPH_KEY)[()]
    restore = restore_class(root, reader, graph, skip_slot_variables=skip_slot_variables)
    restore.bind_and_restore(0, root)
    return CheckpointLoadStatus(restore, root)
