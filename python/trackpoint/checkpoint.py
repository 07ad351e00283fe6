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

from ._async import AsyncWriter
from ._restore import OBJECT_GRAPH_KEY, NameBasedRestore, ObjectGraphRestore
from ._saver import snapshot, write_items
from .bundle import BundleReader
from .errors import NotFoundError
from .management import make_directories, update_checkpoint_state
from .status import CheckpointLoadStatus, InitializationOnlyStatus, NameBasedSaverStatus
from .trackable.autotrackable import AutoTrackable, as_trackable, wrap_value
from .trackable.base import Trackable
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
    is accepted and ignored: bundles are written as one data file.
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


def _run_write_callbacks(options: CheckpointOptions | None, path: str) -> None:
    import inspect

    for callback in (options.experimental_write_callbacks or []) if options else []:
        try:
            takes_path = len(inspect.signature(callback).parameters) > 0
        except (TypeError, ValueError):
            takes_path = True
        callback(path) if takes_path else callback()


def _give_back(counter: Variable, number: int) -> None:
    """Undoes a failed save's increment of save_counter, so that the next save
    takes its number and checkpoints stay numbered 1, 2, 3, ... as
    TensorFlow's. For a background save it runs when the failure surfaces
    (its path, already returned, never appears), and only if nothing
    assigned the counter since."""
    if int(counter) == number:
        counter.assign(number - 1)


class _RootWithAttachments(Trackable):
    """Node 0 of ``Checkpoint(root=obj, **kwargs)``: obj, with the kwargs (and
    a "root" edge back to obj) attached after obj's own children."""

    def __init__(self, checkpoint: "Checkpoint"):
        self._self_checkpoint = checkpoint

    def _target(self):
        return object.__getattribute__(self._self_checkpoint, "_self_root")

    def _trackable_children(self) -> dict:
        ckpt = self._self_checkpoint
        root = self._target()
        children = dict(root._trackable_children())
        attached = dict(ckpt._children())
        attached["root"] = root
        counter = attached.pop("save_counter", None)
        for name in sorted(attached):
            children.setdefault(name, attached[name])
        if counter is not None:
            children["save_counter"] = counter
        return children

    def _serialize_to_tensors(self) -> dict:
        return self._target()._serialize_to_tensors()

    def _restore_from_tensors(self, tensors) -> None:
        self._target()._restore_from_tensors(tensors)

    def _tensor_names(self) -> list:
        return self._target()._tensor_names()

    def _tensor_specs(self) -> dict:
        return self._target()._tensor_specs()

    def _deferred(self) -> dict:
        return self._self_checkpoint._deferred()


class Checkpoint(AutoTrackable):
    """Groups trackable objects and saves them to, or restores them from, a checkpoint.

    ``Checkpoint(root=None, **kwargs)``: each keyword argument is a trackable
    (a Variable, an AutoTrackable, a list/dict of them, a numpy array, a
    torch module or optimizer) saved under its keyword. ``root``, when given,
    becomes the object graph's root and the keywords are attached to it.

    Files are TensorFlow's: ``tf.train.Checkpoint`` with the same structure
    restores them, and this class restores TensorFlow's checkpoints,
    including TF1 ``Saver`` checkpoints (matched by variable name).
    """

    def __init__(self, root=None, **kwargs):
        if root is not None:
            root = as_trackable(wrap_value(root))
            if root is None:
                raise ValueError("Checkpoint was expecting root to be a trackable object")
        object.__setattr__(self, "_self_root", root)
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
        return self if self._self_root is None else _RootWithAttachments(self)

    @property
    def save_counter(self) -> Variable:
        """An int64 variable counting ``save()`` calls; created on first use."""
        counter = self._children().get("save_counter")
        if counter is None:
            counter = Variable(0, dtype="int64", name="save_counter", trainable=False)
            self._children()["save_counter"] = counter
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
            items = snapshot(root, writer.pool)

            def finish():
                write_items(items, path)
                if on_done is not None:
                    on_done()
                _run_write_callbacks(options, path)

            writer.submit(finish, on_failed)
            return
        self.sync()
        write_items(snapshot(root), path)
        if on_done is not None:
            on_done()
        _run_write_callbacks(options, path)

    def _async_writer(self) -> AsyncWriter:
        writer = self.__dict__.get("_self_async_writer")
        if writer is None:
            writer = AsyncWriter()
            object.__setattr__(self, "_self_async_writer", writer)
        return writer

    def write(self, file_prefix, options: CheckpointOptions | None = None) -> str:
        """Writes a checkpoint at exactly ``file_prefix``; no counter, no state file."""
        path = os.fspath(file_prefix)
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
        path = f"{os.fspath(file_prefix)}-{number}"
        try:
            self._write(
                path,
                options,
                on_done=lambda: update_checkpoint_state(os.path.dirname(path), path, [path],
                                                        save_relative_paths=True),
                on_failed=lambda: _give_back(counter, number),
            )
        except BaseException:
            _give_back(counter, number)
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
        path = os.fspath(save_path)
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
        root = self._graph_root()
        if OBJECT_GRAPH_KEY not in reader:
            restore = NameBasedRestore(reader)
            restore.restore_subtree(root)
            return NameBasedSaverStatus(restore, root)
        graph = reader.read(OBJECT_GRAPH_KEY)[()]
        skip = bool(options and options.experimental_skip_slot_variables)
        restore = ObjectGraphRestore(root, reader, graph, skip_slot_variables=skip)
        restore.bind_and_restore(0, root)
        return CheckpointLoadStatus(restore, root)

    def restore(self, save_path, options: CheckpointOptions | None = None):
        """Restores from ``save_path`` (a prefix, or a SavedModel directory),
        then creates ``save_counter`` so that it is restored too. ``None``
        returns an :class:`~trackpoint.status.InitializationOnlyStatus`."""
        if save_path is None:
            return InitializationOnlyStatus()
        path = os.fspath(save_path)
        if os.path.isdir(path) and any(
            os.path.exists(os.path.join(path, f)) for f in ("saved_model.pb", "saved_model.pbtxt")
        ):
            path = os.path.join(path, "variables", "variables")
        status = self.read(path, options)
        self.save_counter  # noqa: B018 -- created now, restored from a deferred position
        return status
