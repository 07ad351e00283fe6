"""Restore statuses, as ``tf.train.Checkpoint.restore`` returns them.

Restoring is eager: values are in the objects when ``restore()`` returns
(or, for objects added later, when they are added). The status object then
answers how complete the match was:

- ``assert_consumed()``: every value in the checkpoint went into an object,
  and every object holding values got one;
- ``assert_existing_objects_matched()``: every object that exists now and
  holds values got one (checkpoint values without objects are fine);
- ``assert_nontrivial_match()``: something besides the root matched;
- ``expect_partial()``: silences the warning listing checkpoint values that
  were never restored, logged when the restore is over: once the status and
  every restoration still pending in objects are gone, as TensorFlow does.

Example::

    status = ckpt.restore(path)
    status.assert_existing_objects_matched()
"""

from __future__ import annotations

from collections import deque

from ._restore import NameBasedRestore, ObjectGraphRestore

__all__ = ["CheckpointLoadStatus", "InitializationOnlyStatus", "NameBasedSaverStatus"]


def _describe(paths) -> str:
    shown = list(paths[:10])
    more = f" and {len(paths) - 10} more" if len(paths) > 10 else ""
    return ", ".join(shown) + more


def _live_paths(root, include_slots: bool = True) -> list:
    """(path, object) for every trackable reachable from root, root first,
    each under its first breadth-first path ("model/layers/0/kernel"; the
    root is "(root)", a slot "model/kernel's slot 'm'")."""
    path_of = {id(root): "(root)"}
    out = [("(root)", root)]
    queue = deque(out)
    while queue:
        path, obj = queue.popleft()
        prefix = "" if obj is root else path + "/"
        nexts = [(prefix + name, child) for name, child in obj._trackable_children().items()]
        if include_slots:
            nexts += [(f"{path_of.get(id(original), '?')}'s slot {name!r}", slot)
                      for name, original, slot in obj._slot_variables()]
        for child_path, child in nexts:
            if id(child) not in path_of:
                path_of[id(child)] = child_path
                out.append((child_path, child))
                queue.append((child_path, child))
    return out


class _Status:
    def run_restore_ops(self, session=None) -> None:
        """Nothing to run: restores happen immediately (kept for TensorFlow parity)."""

    def initialize_or_restore(self, session=None) -> None:
        """Nothing to run: variables are initialized when created and restored
        immediately (kept for TensorFlow parity)."""

    def expect_partial(self):
        return self


class CheckpointLoadStatus(_Status):
    """Status of an object-based restore."""

    def __init__(self, restore: ObjectGraphRestore, root):
        self._restore = restore
        self._root = root
        # The restore holds matched objects weakly; the status keeps them
        # (those bound later too) for its assertions while it lives.
        self._matched = restore.take_matched_objects()

    def assert_consumed(self) -> "CheckpointLoadStatus":
        """Fails unless the checkpoint and the objects matched completely."""
        self.assert_existing_objects_matched()
        r = self._restore
        unresolved = r.unresolved_nodes()
        if unresolved:
            raise AssertionError(
                "Unresolved object in checkpoint " + r.reader.prefix + ": "
                + ", ".join(r.paths.get(n, f"node {n}") for n in unresolved[:10])
            )
        if r.deferred_slot_restorations:
            raise AssertionError(
                f"Unresolved slot restorations in {r.reader.prefix}: optimizers "
                + ", ".join(r.paths.get(n, f"node {n}") for n in r.deferred_slot_restorations)
                + " were never restored"
            )
        if r.unused_attributes:
            raise AssertionError(
                f"Unused attributes in {r.reader.prefix}: "
                + ", ".join(f"{r.paths.get(n)}/.ATTRIBUTES/{a}"
                            for n, names in r.unused_attributes.items()
                            for a in names)
            )
        return self

    def assert_existing_objects_matched(self) -> "CheckpointLoadStatus":
        """Fails if an object that exists now and holds values got none from the checkpoint."""
        r = self._restore
        for n, obj in r.object_by_node.items():
            if getattr(obj, "_self_update_uid", 0) < r.uid:
                raise AssertionError(f"Object {r.paths.get(n)} not assigned a value from checkpoint.")
        bound = {id(o) for o in r.object_by_node.values()}
        unmatched = [
            path for path, o in _live_paths(self._root, include_slots=not r.skip_slot_variables)
            if id(o) not in bound and o._tensor_names()
        ]
        if unmatched:
            raise AssertionError(
                f"Some objects had values but were not restored from {r.reader.prefix}: "
                + _describe(unmatched)
            )
        return self

    def assert_nontrivial_match(self) -> "CheckpointLoadStatus":
        """Fails if nothing but the root matched."""
        if len(self._restore.object_by_node) <= 1:
            raise AssertionError(
                f"Nothing except the root object matched a checkpointed value in "
                f"{self._restore.reader.prefix}. Typically this means that the checkpoint "
                "does not match the Python program."
            )
        return self

    def expect_partial(self) -> "CheckpointLoadStatus":
        """Silences the warning about checkpoint values that were not restored."""
        self._restore.expect_partial = True
        return self


class InitializationOnlyStatus(_Status):
    """Status of ``restore(None)``: nothing was restored, every assertion fails."""

    def assert_consumed(self):
        raise AssertionError("No checkpoint specified (save_path=None); nothing is being restored.")

    assert_existing_objects_matched = assert_consumed
    assert_nontrivial_match = assert_consumed


class NameBasedSaverStatus(_Status):
    """Status of a restore from a checkpoint without an object graph (TF1 Saver):
    variables matched by their names."""

    def __init__(self, restore: NameBasedRestore, root):
        self._restore = restore
        self._root = root
        self._matched = restore.take_matched_objects()

    def assert_consumed(self) -> "NameBasedSaverStatus":
        """Fails if any object holding values was not restored by name."""
        r = self._restore
        for path, obj in _live_paths(self._root):
            names = obj._tensor_names()
            if names and id(obj) not in r.restored and obj._checkpoint_full_name() != "save_counter":
                raise AssertionError(
                    f"Object {path} ({obj._checkpoint_full_name() or 'unnamed'}) was not "
                    f"restored: no key {obj._checkpoint_full_name()!r} in {r.reader.prefix}"
                )
        return self

    assert_existing_objects_matched = assert_consumed
    assert_nontrivial_match = assert_consumed
