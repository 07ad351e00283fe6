"""Checkpoint and CheckpointOptions, with tf.train.Checkpoint's behaviour.

Example::

    import numpy as np, trackpoint

    model = trackpoint.AutoTrackable()
    model.kernel = trackpoint.Variable(np.zeros((3, 3), np.float32))
    ckpt = trackpoint.Checkpoint(model=model)
    path = ckpt.save("/tmp/run/ckpt")        # "/tmp/run/ckpt-1", state file updated
    ckpt.restore(path).assert_consumed()
"""

from __future__ import annotations

import dataclasses
import os
import weakref

from ._async import AsyncWriter
from ._paths import local_path
from ._load import read_into
from ._saver import give_back_number, run_write_callbacks, snapshot, write_items
from .bundle import BundleReader
from .errors import NotFoundError
from .state_file import make_directories, update_checkpoint_state
from .status import InitializationOnlyStatus
from .trackable.autotrackable import AutoTrackable, as_trackable, wrap_value
from .trackable.base import Trackable
from .trackable.structure import Cache, announced, announces_changes, changed
from .trackable.variable import Variable

__all__ = ["Checkpoint", "CheckpointOptions"]


@dataclasses.dataclass
class CheckpointOptions:
    """Options for save/write/restore/read, with TensorFlow's names.

    ``experimental_skip_slot_variables`` skips optimizer slot variables on
    restore (and in its assertions). ``experimental_write_callbacks`` are
    called after each save/write, with the path when they take an argument.
    ``experimental_io_device`` has no meaning outside TensorFlow and is
    ignored. ``enable_async`` (or its old name
    ``experimental_enable_async_checkpoint``) makes save/write return once a
    snapshot of every value is taken (a host copy into staging buffers reused
    across saves: the state's size in extra memory) and write in the
    background; see :meth:`Checkpoint.sync`. ``experimental_sharding_callback``
    (a :class:`trackpoint.experimental.ShardingCallback`, e.g.
    ``MaxShardSizePolicy``) spreads the tensors over several data files, as
    TensorFlow does; without one, a checkpoint has one data file.
    ``experimental_coordinator`` (a :class:`trackpoint.distributed.Coordinator`)
    makes save/write/restore/read multi-process: see :mod:`trackpoint.distributed`.
    """

    experimental_io_device: str | None = None
    experimental_enable_async_checkpoint: bool = False
    experimental_write_callbacks: list | None = None
    enable_async: bool = False
    experimental_skip_slot_variables: bool = False
    experimental_sharding_callback: object = None
    experimental_coordinator: object = None


def _is_async(options: CheckpointOptions | None) -> bool:
    return bool(options and (options.enable_async or options.experimental_enable_async_checkpoint))


def _write_snapshot(items: list, path: str, options: CheckpointOptions | None) -> None:
    callback = options.experimental_sharding_callback if options else None
    if callback is None:
        write_items(items, path)
    else:
        from .experimental import write_sharded

        write_sharded(items, path, callback)


@announces_changes  # its own structure is the Checkpoint's attributes and the root's
class _RootWithAttachments(Trackable):
    """Node 0 of ``Checkpoint(root=obj, **kwargs)``, as TensorFlow writes it.

    Its children are obj's own, then the keyword arguments and a ``root``
    edge back to node 0 itself (sorted by name), then ``save_counter``: for
    ``Checkpoint(root=m, extra=v)`` with ``m.a``, ``m.b``, node 0 has edges
    a, b, extra, root (-> 0), save_counter. Its values, slot variables and
    deferred restorations are obj's, so a child added to obj after a restore
    receives its value.

    Holds obj (or the weak reference to it) and the Checkpoint's children
    dict, never the Checkpoint itself: no reference cycle. Unlike
    TensorFlow, which fixes the attachments when the Checkpoint is made, an
    attribute set on the Checkpoint later is saved too (TensorFlow silently
    leaves it out).
    """

    def __init__(self, root, attached: dict):
        self._self_target = root  # a trackable, or a weakref.ref to the object
        self._self_attached = attached

    def _target(self) -> Trackable:
        target = self._self_target
        if isinstance(target, weakref.ref):
            obj = target()
            if obj is None:
                raise ValueError(
                    "the root of this Checkpoint was passed as a weak reference and "
                    "no longer exists"
                )
            target = as_trackable(wrap_value(obj))
        return target

    def _trackable_children(self) -> dict:
        children = dict(self._target()._trackable_children())
        attached = dict(self._self_attached)
        attached["root"] = self
        counter = attached.pop("save_counter", None)
        for name in sorted(attached):
            children.setdefault(name, attached[name])
        if counter is not None:
            children.setdefault("save_counter", counter)
        return children

    def _serialize_to_tensors(self) -> dict:
        return self._target()._serialize_to_tensors()

    def _restore_from_tensors(self, tensors) -> None:
        self._target()._restore_from_tensors(tensors)

    def _tensor_names(self) -> list:
        return self._target()._tensor_names()

    def _tensor_specs(self) -> dict:
        return self._target()._tensor_specs()

    def _restore_tensor_names(self, saved: list) -> list:
        return self._target()._restore_tensor_names(saved)

    def _restore_buffers(self) -> dict:
        return self._target()._restore_buffers()

    def _checkpoint_full_name(self) -> str:
        return self._target()._checkpoint_full_name()

    def _slot_names(self) -> list:
        return self._target()._slot_names()

    def _slot_variables(self):
        return self._target()._slot_variables()

    def _restore_slot_variable(self, slot_name, variable):
        return self._target()._restore_slot_variable(slot_name, variable)

    def _deferred(self) -> dict:
        return self._target()._deferred()

    def _name_based_restores(self) -> list:
        return self._target()._name_based_restores()

    def _handle_new_child(self, name: str, child) -> None:
        self._target()._handle_new_child(name, child)

    def __repr__(self) -> str:
        return repr(self._target())


def _same_child(child, value) -> bool:
    """Whether Checkpoint(root, name=value) may attach value where root already
    has child under that name: none there, the same object, or an equal
    list/dict (TensorFlow compares with ``!=``)."""
    if child is None or child is value or child is as_trackable(wrap_value(value)):
        return True
    return isinstance(child, (list, dict)) and isinstance(value, (list, dict)) and child == value


def _root_trackable(root):
    """The trackable of Checkpoint's root argument (dereferencing a weakref)."""
    obj = root() if isinstance(root, weakref.ref) else root
    trackable = as_trackable(wrap_value(obj)) if obj is not None else None
    if trackable is None:
        raise ValueError(
            f"Checkpoint was expecting root to be a trackable object (an object derived "
            f"from Trackable), got {obj!r}"
        )
    return trackable


class Checkpoint(AutoTrackable):
    """Groups trackable objects and saves them to, or restores them from, a checkpoint.

    ``Checkpoint(root=None, **kwargs)``: each keyword argument is a trackable
    (a Variable, an AutoTrackable, a list/dict of them, a numpy array, a
    torch module or optimizer) saved under its keyword. ``root``, when given,
    becomes the object graph's root (node 0, with a ``root`` edge to itself,
    as TensorFlow writes it) and the keywords are attached to it; a keyword
    naming a different child root already has raises ValueError. ``root``
    may be a ``weakref.ref``: the Checkpoint then does not keep it alive.

    Example::

        model = trackpoint.AutoTrackable()
        model.v = trackpoint.Variable(1.0)
        ckpt = trackpoint.Checkpoint(model, step=trackpoint.Variable(0))
        ckpt.write("/tmp/ckpt")   # keys v/..., step/..., as TensorFlow's

    Files are TensorFlow's: ``tf.train.Checkpoint`` with the same structure
    restores them, and this class restores TensorFlow's checkpoints,
    including TF1 ``Saver`` checkpoints (matched by variable name).
    """

    def __init__(self, root=None, **kwargs):
        graph_root = None
        if root is not None:
            trackable_root = _root_trackable(root)
            own = trackable_root._trackable_children()
            for name, value in [("root", trackable_root)] + sorted(kwargs.items()):
                if not _same_child(own.get(name), value):
                    raise ValueError(
                        f"Cannot create a Checkpoint with keyword argument {name} if "
                        f"root.{name} already exists."
                    )
            target = root if isinstance(root, weakref.ref) else trackable_root
            graph_root = _RootWithAttachments(target, self._children())
            object.__setattr__(self, "root", root)  # as given, like TensorFlow's
        object.__setattr__(self, "_self_graph_root", graph_root)
        for name in sorted(kwargs):
            value = wrap_value(kwargs[name])
            if as_trackable(value) is None:
                raise ValueError(
                    f"Checkpoint was expecting a trackable object (an object derived from "
                    f"Trackable, or a list/dict of them), got {kwargs[name]!r} for {name!r}. "
                    "Also accepted: numpy arrays, torch modules, optimizers, tensors and "
                    "generators, and any object with state_dict() and load_state_dict() "
                    "(LR schedulers, GradScaler, torchdata's StatefulDataLoader); wrap plain "
                    "values in trackpoint.JsonState(...)"
                )
            setattr(self, name, value)

    # ---- the graph root ------------------------------------------------------------------
    def _graph_root(self) -> Trackable:
        """Node 0: this Checkpoint, or the root it was given with its attachments."""
        graph_root = self._self_graph_root
        return self if graph_root is None else graph_root

    def _handle_new_child(self, name: str, child) -> None:
        # A restore leaves the values of node 0's missing children with node 0:
        # the root, when there is one (its attachments are this object's).
        graph_root = self.__dict__.get("_self_graph_root")
        if graph_root is None:
            super()._handle_new_child(name, child)
        else:
            graph_root._handle_new_child(name, child)

    @property
    def save_counter(self) -> Variable:
        """An int64 variable counting ``save()`` calls; created on first use."""
        counter = self._children().get("save_counter")
        if counter is None:
            counter = Variable(0, dtype="int64", name="save_counter", trainable=False)
            self._children()["save_counter"] = counter
            changed()
            self._handle_new_child("save_counter", counter)
        return counter

    # ---- saving --------------------------------------------------------------------------
    def _write(
        self, path: str, options: CheckpointOptions | None, on_done=None, on_failed=None
    ) -> None:
        """Writes the checkpoint at path, then runs on_done() and the write
        callbacks once its files are durable: before returning, or on the
        background thread with enable_async. A failure raises from here, but
        that of a background write from the next call that waits for it (see
        sync()), which runs on_failed() first."""
        if options is not None and options.experimental_coordinator is not None:
            # Multi-process save (hook for trackpoint.distributed): synchronous.
            from .distributed.saving import checkpoint_write_hook
            return checkpoint_write_hook(self, path, options, on_done)
        root = self._graph_root()
        make_directories(os.path.dirname(path) or ".")  # durable before the files in it
        if _is_async(options):
            writer = self._async_writer()
            writer.wait()
            items = snapshot(root, writer.pool, self._walk_cache())

            def finish():
                _write_snapshot(items, path, options)
                if on_done is not None:
                    on_done()
                run_write_callbacks(options, path)

            writer.submit(finish, on_failed)
            return
        self.sync()
        _write_snapshot(snapshot(root, cache=self._walk_cache()), path, options)
        if on_done is not None:
            on_done()
        run_write_callbacks(options, path)

    def _walk_cache(self) -> Cache | None:
        """Where saves keep their walk of the graph (see trackable.structure);
        None when the root is held by a weak reference (a cache would keep
        it alive) or does not announce its changes."""
        graph_root = self._self_graph_root
        if graph_root is not None:
            target = graph_root._self_target
            if isinstance(target, weakref.ref) or not announced(target):
                return None
        cache = self.__dict__.get("_self_walk_cache")
        if cache is None:
            cache = Cache()
            object.__setattr__(self, "_self_walk_cache", cache)
        return cache

    def _async_writer(self) -> AsyncWriter:
        writer = self.__dict__.get("_self_async_writer")
        if writer is None:
            writer = AsyncWriter()
            object.__setattr__(self, "_self_async_writer", writer)
        return writer

    def write(self, file_prefix, options: CheckpointOptions | None = None) -> str:
        """Writes a checkpoint at exactly ``file_prefix``; no counter, no state file."""
        path = local_path(file_prefix)
        self._write(path, options)
        return path

    def save(self, file_prefix, options: CheckpointOptions | None = None) -> str:
        """Increments ``save_counter``, writes ``<file_prefix>-<counter>`` and
        records it in the directory's ``checkpoint`` state file. Returns the path.

        With ``enable_async`` the path is returned at once; the files and the
        state file appear when the background write completes (the state file
        only names a checkpoint whose files are durable).

        A failed save leaves ``save_counter`` as it was (with ``enable_async``,
        once its error is raised), so the next save takes its number."""
        self.sync()  # a pending save's failure gives its number back first
        counter = self.save_counter
        number = int(counter) + 1
        counter.assign(number)
        path = f"{local_path(file_prefix)}-{number}"
        try:
            self._write(
                path,
                options,
                on_done=lambda: update_checkpoint_state(os.path.dirname(path), path, [path],
                                                        save_relative_paths=True),
                on_failed=lambda: give_back_number(counter, number),
            )
        except BaseException:
            give_back_number(counter, number)
            raise
        return path

    def sync(self) -> None:
        """Waits until a pending asynchronous save is written, and raises its
        error if it failed (once), giving its number back to ``save_counter``
        first. Does nothing without one."""
        writer = self.__dict__.get("_self_async_writer")
        if writer is not None:
            writer.wait()

    # ---- restoring -----------------------------------------------------------------------
    def read(self, save_path, options: CheckpointOptions | None = None):
        """Restores from ``save_path`` without creating ``save_counter``.

        Returns a status: :class:`~trackpoint.status.CheckpointLoadStatus`, or
        :class:`~trackpoint.status.NameBasedSaverStatus` for a checkpoint
        without an object graph.
        """
        path = local_path(save_path)
        if options is not None and options.experimental_coordinator is not None:
            # Multi-process restore (hook for trackpoint.distributed): region reads.
            from .distributed.restoring import checkpoint_read_hook
            return checkpoint_read_hook(self, path, options)
        self.sync()
        try:
            reader = BundleReader(path)
        except NotFoundError as e:
            raise NotFoundError(
                f"{e}. Checkpoints written by save() are named <prefix>-<N>: pass "
                "the full path, e.g. the one save() returned or latest_checkpoint()."
            ) from None
        skip = bool(options and options.experimental_skip_slot_variables)
        return read_into(self._graph_root(), reader, skip_slot_variables=skip)

    def restore(self, save_path, options: CheckpointOptions | None = None):
        """Restores from ``save_path`` (a prefix, or a SavedModel directory:
        its ``variables/variables``), then creates ``save_counter`` so that it
        is restored too. ``None`` returns an
        :class:`~trackpoint.status.InitializationOnlyStatus`.

        Raises NotFoundError ("Error when restoring from checkpoint or
        SavedModel at ...", as TensorFlow) when there is nothing at save_path.
        """
        if save_path is None:
            return InitializationOnlyStatus()
        given = os.fspath(save_path)
        path = local_path(save_path)
        if os.path.isdir(path) and any(
            os.path.exists(os.path.join(path, f)) for f in ("saved_model.pb", "saved_model.pbtxt")
        ):
            path = os.path.join(path, "variables", "variables")
        try:
            status = self.read(path, options)
        except NotFoundError as e:
            raise NotFoundError(
                f"Error when restoring from checkpoint or SavedModel at {given}: {e}"
            ) from None
        self.save_counter  # noqa: B018 -- created now, restored from a deferred position
        return status
