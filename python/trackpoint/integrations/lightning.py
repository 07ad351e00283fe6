"""PyTorch Lightning checkpoints in trackpoint's (TensorFlow's) format.

``TrackpointCheckpointIO`` is a Lightning ``CheckpointIO`` plugin: the
Trainer's checkpoints (``ModelCheckpoint``, ``trainer.save_checkpoint``,
``fit(ckpt_path=...)``) are written and read by trackpoint, without pickle.

Example::

    import lightning
    from trackpoint.integrations.lightning import TrackpointCheckpointIO

    trainer = lightning.Trainer(max_epochs=3, plugins=[TrackpointCheckpointIO()],
                                callbacks=[lightning.pytorch.callbacks.ModelCheckpoint(
                                    dirpath="run", save_last=True)])
    trainer.fit(model)                        # run/epoch=0-step=8.ckpt/, run/last.ckpt/, ...
    trainer.fit(model, ckpt_path="last")      # resumes from run/last.ckpt

**Paths.** Lightning names a checkpoint ``<name>.ckpt``; that name becomes a
*directory* holding one trackpoint checkpoint, as a
:class:`~trackpoint.CheckpointManager` with ``max_to_keep=1`` keeps it::

    run/epoch=0-step=8.ckpt/checkpoint                      the state file
    run/epoch=0-step=8.ckpt/ckpt-1.index
    run/epoch=0-step=8.ckpt/ckpt-1.data-00000-of-00001

so ``trackpoint.list_variables("run/epoch=0-step=8.ckpt")`` and the
``trackpoint`` command read it as they read any run directory. Saving to an
existing one (``last.ckpt``) writes ``ckpt-2`` beside ``ckpt-1``, then the
state file names it, then ``ckpt-1`` is deleted: a save killed at any point
leaves the previous checkpoint readable. A directory whose first save was
killed has no state file; ``load_checkpoint`` refuses it (NotFoundError) and
the next save into it removes the leftovers. ``load_checkpoint`` also takes a
trackpoint prefix (``run/last.ckpt/ckpt-2``).

**What is saved.** Every tensor of Lightning's checkpoint dict is a
variable: ``state_dict["layer.0.weight"]`` under
``state_dict/layer/0/weight`` (the key split at dots, the object path
trackpoint gives that parameter of ``Checkpoint(state_dict=module)``, so
``trackpoint.Checkpoint(state_dict=model).read(prefix).expect_partial()``
loads the weights into a module outside Lightning), the optimizer's
``optimizer_states[0]["state"][0]["exp_avg"]`` under
``optimizer_states/0/state/0/exp_avg``, tensors kept by callbacks under
``callbacks/<callback's state key>/...``. Everything else (epoch,
global_step, the loops' progress, callbacks' and schedulers' state,
hyperparameters) is one JSON document, ``lightning_structure``, describing
the whole dict: its containers and their types (dict, ``OrderedDict`` with
torch's ``_metadata``, Lightning's ``AttributeDict``, list, tuple), int keys,
the Python scalars (None, bool, int, float with inf and nan, complex, str,
bytes), numpy scalars with their dtype, and each tensor's dtype and shape.
A value of any other type (a ``torch.nn.Module`` in the hyperparameters, a
``pathlib.Path``, an ``argparse.Namespace``) raises ``InvalidArgumentError``
naming the file and where it is: ``['hyper_parameters']['loss_fn']``.
Loading gives the dict back with the same types and values, tensors on the
CPU (or ``map_location``).

Lightning's ``LightningModule.load_from_checkpoint`` reads with
``torch.load`` whatever plugin the Trainer had; with this plugin, use
``trainer.validate/test/predict(ckpt_path=...)``,
``TrackpointCheckpointIO().load_checkpoint(path)["state_dict"]``, or a
trackpoint ``Checkpoint`` as above.

**Async.** ``TrackpointCheckpointIO(async_save=True)`` saves with
``CheckpointOptions(enable_async=True)``: ``save_checkpoint`` returns once
the tensors are copied into staging buffers, and they are written in the
background. The next save, a load, a removal of that checkpoint, and
``teardown()`` (which the Trainer calls at the end of ``fit``) wait for it and
raise its error. Lightning's own ``AsyncCheckpointIO(TrackpointCheckpointIO())``
works too (a thread of Lightning's calls the synchronous save). A
``storage_options`` of type :class:`~trackpoint.CheckpointOptions` is used for
that save (sharding, async); any other non-None value raises TypeError.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading

from lightning.fabric.plugins import CheckpointIO
from lightning.fabric.utilities.data import AttributeDict

from ..checkpoint import Checkpoint, CheckpointOptions
from ..errors import FailedPreconditionError, InvalidArgumentError, NotFoundError
from ..state_file import latest_checkpoint
from ..manager import CheckpointManager
from ..reader import load_checkpoint
from ..trackable.python_state import JsonState
from ._structure import decode, empty_tensor, encode, nest

__all__ = ["STRUCTURE", "TrackpointCheckpointIO"]

STRUCTURE = "lightning_structure"
_STRUCTURE_KEY = STRUCTURE + "/.ATTRIBUTES/py_state"
_PREFIX_NAME = "ckpt"
_RESERVED = frozenset(["root", "save_counter", STRUCTURE])  # names the Checkpoint itself uses
_MAPPINGS = {"AttributeDict": AttributeDict}
_MODULE_PATHS = [("state_dict",)]
_log = logging.getLogger("trackpoint")


class TrackpointCheckpointIO(CheckpointIO):
    """Saves and loads Lightning checkpoints as trackpoint checkpoints (see the
    module docstring for the layout).

    Args:
        async_save: write each checkpoint in the background (see "Async").

    Thread safety: the methods may be called from several threads; they run
    one at a time.

    Example::

        trainer = lightning.Trainer(plugins=[TrackpointCheckpointIO(async_save=True)])
        trainer.fit(model)
        checkpoint = TrackpointCheckpointIO().load_checkpoint("lightning_logs/version_0/"
                                                              "checkpoints/epoch=0-step=8.ckpt")
        checkpoint["global_step"], checkpoint["state_dict"]["layer.weight"]
    """

    def __init__(self, async_save: bool = False) -> None:
        super().__init__()
        self.async_save = async_save
        self._lock = threading.RLock()
        self._pending: tuple | None = None  # (real path, manager) of an async save

    def save_checkpoint(
        self, checkpoint: dict, path: str | os.PathLike, storage_options=None
    ) -> None:
        """Writes ``checkpoint`` into the directory ``path`` (see "Paths").

        Raises:
            InvalidArgumentError: a value that cannot be saved, naming it.
            FailedPreconditionError: ``path`` is a file.
            TypeError: ``storage_options`` is neither None nor a CheckpointOptions.
        """
        path = os.fspath(path)
        options = self._options(storage_options)
        try:
            structure, tensors = encode(checkpoint, _MODULE_PATHS, _MAPPINGS)
        except InvalidArgumentError as e:
            raise InvalidArgumentError(f"{path}: {e}") from None
        tree = nest(tensors)
        clash = sorted(_RESERVED & set(tree))
        if clash:
            raise InvalidArgumentError(
                f"cannot save {path}: the checkpoint's key {clash[0]!r} holds tensors, and "
                "trackpoint's Checkpoint uses that name itself; rename the key"
            )
        if os.path.isfile(path):
            raise FailedPreconditionError(
                f"cannot save {path}: it is a file (a checkpoint another CheckpointIO wrote?); "
                "TrackpointCheckpointIO writes a directory there"
            )
        with self._lock:
            self._wait()
            ckpt = Checkpoint(**tree, **{STRUCTURE: JsonState(structure)})
            manager = CheckpointManager(ckpt, path, max_to_keep=1, checkpoint_name=_PREFIX_NAME)
            try:
                manager.save(checkpoint_number=_next_number(manager), options=options)
            except BaseException:
                _close_quietly(manager)
                raise
            if _is_async(options):
                self._pending = (os.path.realpath(path), manager)
            else:
                manager.close()

    def load_checkpoint(
        self, path: str | os.PathLike, map_location=None, weights_only: bool | None = None
    ) -> dict:
        """The checkpoint dict saved at ``path`` (a ``.ckpt`` directory or a
        trackpoint prefix), its tensors on the CPU or on ``map_location`` (a
        device name or ``torch.device``). ``weights_only`` is accepted and
        ignored: nothing is unpickled.

        Raises:
            NotFoundError: no complete checkpoint at ``path``.
            InvalidArgumentError: ``path`` was not written by this plugin.
        """
        device = _device(map_location)
        with self._lock:
            self._wait()
            prefix = _prefix_of(os.fspath(path))
            structure = _read_structure(prefix)
            value, tensors = decode(structure, lambda node: empty_tensor(node, device), _MAPPINGS)
            ckpt = Checkpoint(**nest(tensors), **{STRUCTURE: JsonState()})
            ckpt.restore(prefix).assert_consumed()
        return value

    def remove_checkpoint(self, path: str | os.PathLike) -> None:
        """Deletes the checkpoint directory ``path`` (a symbolic link, as
        ``ModelCheckpoint(save_last="link")`` makes, is unlinked; its target
        stays). Nothing happens when ``path`` does not exist.

        Raises:
            FailedPreconditionError: ``path`` holds files this plugin does not
                write, or is a file; nothing is deleted then.
        """
        path = os.fspath(path)
        with self._lock:
            if self._pending is not None and self._pending[0] == os.path.realpath(path):
                self._wait()
            _remove(path)

    def wait_until_finished(self) -> None:
        """Waits for a pending async save and raises its error, if any."""
        with self._lock:
            self._wait()

    def teardown(self) -> None:
        """Waits for a pending async save (the Trainer calls this at the end of
        ``fit``/``validate``/...)."""
        self.wait_until_finished()

    def _wait(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            pending[1].close()  # waits, releases the directory, raises the save's error

    def _options(self, storage_options) -> CheckpointOptions:
        if storage_options is None:
            return CheckpointOptions(enable_async=self.async_save)
        if isinstance(storage_options, CheckpointOptions):
            return storage_options
        raise TypeError(
            "TrackpointCheckpointIO.save_checkpoint takes storage_options=None or a "
            f"trackpoint.CheckpointOptions, got {type(storage_options).__name__}"
        )


def _is_async(options: CheckpointOptions) -> bool:
    return bool(options.enable_async or options.experimental_enable_async_checkpoint)


def _next_number(manager: CheckpointManager) -> int:
    """One more than the number of the directory's latest checkpoint."""
    latest = manager.latest_checkpoint
    return 1 if latest is None else int(latest.rsplit("-", 1)[1]) + 1


def _close_quietly(manager: CheckpointManager) -> None:
    try:
        manager.close()
    except Exception as e:  # noqa: BLE001 -- the save's own error is the one to raise
        _log.debug("closing the manager of %s after a failed save: %s", manager.directory, e)


def _device(map_location):
    if map_location is None:
        return None
    import torch

    if isinstance(map_location, (str, torch.device)):
        return torch.device(map_location)
    raise TypeError(
        "TrackpointCheckpointIO.load_checkpoint takes map_location=None, a device name or a "
        f"torch.device, got {type(map_location).__name__}"
    )


def _prefix_of(path: str) -> str:
    """The trackpoint prefix of the checkpoint at ``path``."""
    if os.path.isdir(path):
        prefix = latest_checkpoint(path)
        if prefix is None:
            raise NotFoundError(
                f"{path} holds no complete checkpoint: no 'checkpoint' state file naming one "
                "(its first save was interrupted, or TrackpointCheckpointIO did not write it)"
            )
        return prefix
    if os.path.exists(path + ".index"):
        return path
    if os.path.isfile(path):
        raise InvalidArgumentError(
            f"{path} is a file, not a checkpoint directory written by TrackpointCheckpointIO "
            "(a torch.save checkpoint of Lightning's default CheckpointIO?)"
        )
    raise NotFoundError(f"no checkpoint at {path}")


def _read_structure(prefix: str):
    reader = load_checkpoint(prefix)
    if not reader.has_tensor(_STRUCTURE_KEY):
        raise InvalidArgumentError(
            f"{prefix} is a trackpoint checkpoint without {STRUCTURE!r}: TrackpointCheckpointIO "
            "did not write it (read it with trackpoint.Checkpoint or trackpoint.load_checkpoint)"
        )
    value = reader.get_tensor(_STRUCTURE_KEY)
    return json.loads(bytes(value.reshape(-1)[0]) if hasattr(value, "reshape") else value)


def _remove(path: str) -> None:
    if os.path.islink(path):
        os.unlink(path)
        return
    if not os.path.exists(path):
        return
    if not os.path.isdir(path):
        raise FailedPreconditionError(
            f"not removing {path}: it is a file, not a directory TrackpointCheckpointIO wrote"
        )
    names = os.listdir(path)
    foreign = sorted(n for n in names if not _written_here(n))
    if foreign:
        raise FailedPreconditionError(
            f"not removing {path}: it holds files TrackpointCheckpointIO does not write: "
            + ", ".join(foreign[:5])
        )
    # The state file first: a removal cut short leaves no checkpoint that looks complete.
    for name in sorted(names, key=lambda n: n != "checkpoint"):
        full = os.path.join(path, name)
        if os.path.isdir(full) and not os.path.islink(full):
            shutil.rmtree(full)
        else:
            os.remove(full)
    os.rmdir(path)


def _written_here(name: str) -> bool:
    """Whether a save of this plugin writes the file ``name`` in a checkpoint
    directory: the state file (and its temporary), the ``ckpt-N`` files."""
    return name == "checkpoint" or name.startswith(("checkpoint.tmp", _PREFIX_NAME + "-"))
