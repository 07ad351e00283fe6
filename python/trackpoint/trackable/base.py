"""The Trackable protocol: what a Checkpoint can save and restore.

A trackable object declares three things:

- its **children**, by name, in a fixed order (``_trackable_children``): the
  edges of the object graph. A child reached by two paths is saved once,
  under its first (shortest) path, as TensorFlow does.
- the **tensors it saves itself** (``_serialize_to_tensors``: name -> value)
  and how to take them back (``_restore_from_tensors``). A variable saves one
  tensor named ``"VARIABLE_VALUE"``.
- for an optimizer, its **slot variables** (``_slot_names``,
  ``_slot_variables``, ``_restore_slot_variable``): per-variable state such
  as Adam's ``m`` and ``v``, recorded as TensorFlow records them.

Example, a user class holding a numpy array::

    class Counter(trackpoint.Trackable):
        def __init__(self):
            self.counts = np.zeros(10, np.int64)

        def _serialize_to_tensors(self):
            return {"counts": self.counts}

        def _restore_from_tensors(self, tensors):
            self.counts[...] = tensors["counts"]

Subclasses of :class:`~trackpoint.AutoTrackable` get their children from
their attributes; plain Trackables override ``_trackable_children``.
"""

from __future__ import annotations

from typing import Any, Iterable

from .structure import changed

__all__ = ["Trackable"]


class Trackable:
    """Base class of everything a :class:`~trackpoint.Checkpoint` can save.

    A subclass implements some of these methods (all have defaults; their
    own docstrings say more). A Checkpoint calls them; user code does not.

    Children, the edges of the object graph:

    - ``_trackable_children() -> dict``: child name -> Trackable, in a fixed
      order. A child's tensors are saved under ``<path>/<name>/...``.
      :class:`~trackpoint.AutoTrackable` computes it from attributes; here
      the default returns the children declared with
      ``_track_trackable(child, name)``.

    Tensors the object saves itself:

    - ``_serialize_to_tensors() -> dict``: tensor name -> value (a numpy
      array, anything ``numpy.asarray`` takes such as a torch CPU tensor,
      ``str``/``bytes`` for a string tensor), read at each save. A name ``n`` is stored under the key
      ``<path>/.ATTRIBUTES/<n>``; a variable uses ``"VARIABLE_VALUE"``.
    - ``_restore_from_tensors(tensors: dict) -> None``: takes the saved
      tensors back, as numpy arrays under the same names. It may run long
      after the restore call, when the object is attached later (deferred
      restoration).
    - optional: ``_tensor_names()`` (the names without computing values),
      ``_tensor_specs()`` (name -> (dtype, shape) checked before reading),
      ``_restore_buffers()`` (name -> writable array the restore reads into
      directly, the live memory), ``_restore_tensor_names(saved)``.

    Optimizers with per-variable state (TensorFlow's slot variables):
    ``_slot_names()``, ``_slot_variables()`` (slot name, variable, slot
    variable) and ``_restore_slot_variable(slot_name, variable)``.

    Example, a counter saved as one int64 tensor::

        import numpy as np
        import trackpoint

        class Counter(trackpoint.Trackable):
            def __init__(self):
                self.counts = np.zeros(10, np.int64)

            def _serialize_to_tensors(self):
                return {"counts": self.counts}      # key .../.ATTRIBUTES/counts

            def _restore_from_tensors(self, tensors):
                self.counts[...] = tensors["counts"]

        path = trackpoint.Checkpoint(c=Counter()).save("run/ckpt")

    Internal state lives in attributes named ``_self_*``, which
    :class:`~trackpoint.AutoTrackable` never tracks.
    """

    def _trackable_children(self) -> dict:
        """Children by local name, in dependency order: those declared with
        ``_track_trackable``. Override in subclasses."""
        return dict(self.__dict__.get("_self_children", {}))

    def _track_trackable(self, trackable: "Trackable", name: str, overwrite: bool = False):
        """Declares ``trackable`` this object's child ``name`` (saved under
        that name) and returns it, as TensorFlow's method of that name.
        Another object already declared under ``name`` raises ValueError
        unless ``overwrite``; the child keeps its first position.

        Example::

            class Pair(trackpoint.Trackable):
                def __init__(self):
                    self.left = self._track_trackable(trackpoint.Variable(1.0), "left")
        """
        if not isinstance(trackable, Trackable):
            raise TypeError(
                f"_track_trackable() tracks Trackable objects only, got {type(trackable)}"
            )
        children = self.__dict__.get("_self_children")
        if children is None:
            children = {}
            object.__setattr__(self, "_self_children", children)
        current = children.get(name)
        if current is not None and current is not trackable and not overwrite:
            raise ValueError(
                f"cannot track {trackable!r} as {name!r}: {current!r} is already declared "
                "as a dependency under that name (pass overwrite=True to replace it)"
            )
        children[name] = trackable
        changed()
        if current is not trackable:
            self._handle_new_child(name, trackable)
        return trackable

    def _lookup_dependency(self, name: str):
        """The child ``name``, or None."""
        return self._trackable_children().get(name)

    def _serialize_to_tensors(self) -> dict:
        """The tensors this object saves itself: name -> array-like, or a
        ``trackpoint.bundle.DeviceBuffer`` for memory on an accelerator
        (staged to the host through pinned buffers as it is written)."""
        return {}

    def _restore_from_tensors(self, tensors: dict) -> None:
        """Takes back the tensors saved by ``_serialize_to_tensors`` (numpy arrays)."""

    def _tensor_names(self) -> list:
        """Names of the tensors ``_serialize_to_tensors`` returns (without computing them)."""
        return list(self._serialize_to_tensors())

    def _restore_tensor_names(self, saved: list) -> list:
        """The tensors a restore should hand to ``_restore_from_tensors``,
        given the names the checkpoint holds for this object. By default
        ``_tensor_names()``; an object whose set of tensors depends on its
        saved state (``adapters.stateful``) takes what was saved."""
        return self._tensor_names()

    def _restore_buffers(self) -> dict:
        """name -> a writable, C-contiguous numpy array a restore may read the
        tensor straight into (the live memory), when dtype and shape match;
        or a ``trackpoint.bundle.DeviceBuffer`` (with the tensor's dtype
        and shape) for device memory, filled through pinned buffers.
        ``_restore_from_tensors`` then receives those same objects. Optional."""
        return {}

    def _tensor_specs(self) -> dict:
        """name -> (DType, shape) for tensors whose dtype and shape must match
        the checkpoint's; a restore checks them before reading. Optional."""
        return {}

    def _checkpoint_full_name(self) -> str:
        """TensorFlow's global name of this object's value ("" when none)."""
        return ""

    # ---- optimizers -----------------------------------------------------------------
    def _slot_names(self) -> list:
        """Names of the per-variable slots this optimizer keeps, in order."""
        return []

    def _slot_variables(self) -> Iterable[tuple[str, "Trackable", "Trackable"]]:
        """(slot name, original variable, slot variable) for every slot that exists."""
        return ()

    def _restore_slot_variable(self, slot_name: str, variable: "Trackable") -> "Trackable | None":
        """The slot variable to restore ``slot_name`` of ``variable`` into, creating it
        if needed; None when this optimizer cannot hold it."""
        return None

    # ---- deferred restoration ---------------------------------------------------------
    # A pending restoration is held by the object waiting for it; the
    # restoration holds objects only weakly, so this makes no reference cycle.
    def _deferred(self) -> dict:
        """local name -> [(restore, checkpoint node id)] waiting for a child of that name."""
        try:
            return self._self_deferred_restorations
        except AttributeError:
            d = {}
            object.__setattr__(self, "_self_deferred_restorations", d)
            return d

    def _name_based_restores(self) -> list:
        """Name-based (TF1) restores that also restore children added later."""
        try:
            return self._self_name_based_restores
        except AttributeError:
            restores = []
            object.__setattr__(self, "_self_name_based_restores", restores)
            return restores

    def _handle_new_child(self, name: str, child: Any) -> None:
        """Call when a child ``name`` is added after a restore: it receives
        the values waiting for it (newest restore first)."""
        deferred = self.__dict__.get("_self_deferred_restorations")
        pending = deferred.pop(name, None) if deferred else None
        if pending:
            for restore, node_id in sorted(pending, key=lambda p: -p[0].uid):
                restore.bind_and_restore(node_id, child)
        for restore in self.__dict__.get("_self_name_based_restores", ()):
            restore.restore_subtree(child)
