"""Keras 3 training state in trackpoint checkpoints, without TensorFlow.

Keras 3 runs on the torch or JAX backend (``KERAS_BACKEND=torch`` or
``jax``) without TensorFlow installed. ``TrackpointCheckpoint`` is a Keras
callback that saves, at the end of every epoch, the model's variables
(weights, non-trainable state such as batch-norm statistics and the
dropout layers' seed-generator state), the optimizer's variables (its
iteration count, learning rate, moments) and the number of epochs done,
through a :class:`~trackpoint.CheckpointManager`, with the global random
generators; its ``restore(model)`` puts the latest back into a model built
and compiled the same way, and returns the epoch to pass to
``fit(initial_epoch=...)``.

Example (the same script, run again after a crash, continues)::

    from trackpoint.integrations.keras import TrackpointCheckpoint

    model = make_model()                      # the same layers, compiled
    checkpoints = TrackpointCheckpoint("run", max_to_keep=3)
    done = checkpoints.restore(model)         # 0 the first time
    model.fit(x, y, epochs=10, initial_epoch=done, callbacks=[checkpoints])

Variables are named by their position: ``model/3`` is ``model.variables[3]``,
``optimizer/5`` is ``model.optimizer.variables[5]``, each a variable
(``.ATTRIBUTES/VARIABLE_VALUE``); their Keras paths (``sequential/dense/kernel``)
are listed in the JSON value ``variable_paths`` for reading, not matched at
restore (Keras numbers layer names per process, so a second model's are
``dense_2``, ...). A restore checks every dtype and shape and that every
value found its variable (``assert_consumed``). Keras's own checkpoints
(``model.save``, ``.weights.h5``) are another format; these are TensorFlow's
checkpoint format (``tf.train.load_checkpoint`` reads them), with an object
graph of their own, not the one TensorFlow's Keras writes.
"""

from __future__ import annotations

import os

import keras
import numpy as np

from ..checkpoint import Checkpoint
from ..dtypes import as_dtype
from ..errors import FailedPreconditionError
from ..state_file import latest_checkpoint
from ..manager import CheckpointManager
from ..reader import CheckpointReader
from ..rng import RNGState
from ..trackable.base import Trackable
from ..trackable.python_state import JsonState
from ..trackable.variable import VARIABLE_VALUE, Variable

__all__ = ["KerasVariable", "TrackpointCheckpoint", "training_checkpoint"]


class KerasVariable(Trackable):
    """A ``keras.Variable`` as a trackpoint variable: saved as a numpy copy of
    its value, restored with ``assign`` (which every backend supports, JAX's
    immutable arrays included).

    Example::

        trackpoint.Checkpoint(kernel=KerasVariable(layer.kernel)).save("/tmp/run/ckpt")
    """

    def __init__(self, variable):
        self._self_variable = variable

    def _serialize_to_tensors(self) -> dict:
        return {VARIABLE_VALUE: np.asarray(keras.ops.convert_to_numpy(self._self_variable.value))}

    def _tensor_names(self) -> list:
        return [VARIABLE_VALUE]

    def _tensor_specs(self) -> dict:
        v = self._self_variable
        return {VARIABLE_VALUE: (as_dtype(v.dtype), tuple(v.shape))}

    def _restore_from_tensors(self, tensors: dict) -> None:
        self._self_variable.assign(tensors[VARIABLE_VALUE])


def training_checkpoint(model, epoch: Variable, rng: bool = True) -> Checkpoint:
    """The Checkpoint of a compiled, built Keras model's training state:
    ``model`` (its variables), ``optimizer`` (the optimizer's, which are
    built first if needed), ``epoch``, ``variable_paths`` and, with ``rng``,
    the process's global random generators (``rng``, a
    :class:`~trackpoint.RNGState`: Python's, numpy's, torch's).

    Raises:
        FailedPreconditionError: the model is not built or not compiled.

    Example::

        epoch = trackpoint.Variable(0, dtype="int64")
        path = training_checkpoint(model, epoch).save("/tmp/run/ckpt")
    """
    if not model.built:
        raise FailedPreconditionError(
            f"model {model.name!r} is not built: give it an Input, call build() or fit it first"
        )
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None:
        raise FailedPreconditionError(f"model {model.name!r} is not compiled: no optimizer")
    if not optimizer.built:
        optimizer.build(model.trainable_variables)
    paths = {
        "model": [v.path for v in model.variables],
        "optimizer": [v.path for v in optimizer.variables],
    }
    ckpt = Checkpoint(
        model=[KerasVariable(v) for v in model.variables],
        optimizer=[KerasVariable(v) for v in optimizer.variables],
        epoch=epoch,
        variable_paths=JsonState(paths),
    )
    if rng:
        ckpt.rng = RNGState()
    return ckpt


class TrackpointCheckpoint(keras.callbacks.Callback):
    """Saves the training state at the end of every epoch as
    ``<directory>/ckpt-<epochs done>``, and resumes from the latest one.

    Args:
        directory: the run directory (a CheckpointManager's).
        max_to_keep: how many checkpoints to keep (None: all).
        save_rng: also save the global random generators (see below).
        options: a :class:`~trackpoint.CheckpointOptions` for each save
            (``enable_async=True``: written in the background, waited for at
            the next save and at the end of ``fit``).
        manager_kwargs: more CheckpointManager arguments
            (``keep_checkpoint_every_n_hours``, ``keep_every_n_steps``, ...).

    Randomness: a layer given a seed (``Dropout(0.2, seed=1)``) draws from
    its seed generator, whose state is one of the model's variables. An
    unseeded one draws, on the torch backend, from torch's global generator
    (Keras's fast path), which is why ``save_rng`` (the default) saves the
    global generators too. A model's first ``fit`` draws from them while it
    sets up, so :meth:`restore` sets them back only when ``fit`` begins
    (``on_train_begin``): the resumed fit then draws the same dropout masks
    as one never interrupted.

    Example::

        checkpoints = TrackpointCheckpoint("run", max_to_keep=3)
        done = checkpoints.restore(model)        # 0 when "run" has no checkpoint yet
        model.fit(x, y, epochs=10, initial_epoch=done, callbacks=[checkpoints])
    """

    def __init__(self, directory, max_to_keep=5, save_rng=True, options=None, **manager_kwargs):
        super().__init__()
        self.directory = os.fspath(directory)
        self.max_to_keep = max_to_keep
        self.save_rng = save_rng
        self.options = options
        self.manager_kwargs = manager_kwargs
        self.manager = None
        self._epoch = Variable(0, dtype="int64")
        self._rng_from = None  # the prefix whose RNG state fit's start sets back

    def restore(self, model) -> int:
        """Restores the latest checkpoint of ``directory`` into ``model``
        (built and compiled as the saved one was: the same layers in the same
        order) and returns the number of epochs it had done, for
        ``fit(initial_epoch=...)``; 0, restoring nothing, when there is none.

        Raises:
            InvalidArgumentError: a variable's dtype or shape differs.
            AssertionError: the model or optimizer has more or fewer
                variables than were saved.
        """
        prefix = latest_checkpoint(self.directory)
        if prefix is None:
            return 0
        has_rng = any(
            k.startswith("rng/") for k in CheckpointReader(prefix).get_variable_to_shape_map()
        )
        epoch = Variable(0, dtype="int64")
        ckpt = training_checkpoint(model, epoch, rng=has_rng)
        ckpt.restore(prefix).assert_consumed()
        self._rng_from = prefix if has_rng else None
        self._epoch.assign(int(epoch))
        return int(epoch)

    def on_train_begin(self, logs=None):
        if self._rng_from is not None:
            Checkpoint(rng=RNGState()).read(self._rng_from).expect_partial()
            self._rng_from = None
        self.manager = CheckpointManager(
            training_checkpoint(self.model, self._epoch, rng=self.save_rng),
            self.directory,
            self.max_to_keep,
            **self.manager_kwargs,
        )

    def on_epoch_end(self, epoch, logs=None):
        self._epoch.assign(epoch + 1)
        self.manager.save(checkpoint_number=epoch + 1, options=self.options)

    def on_train_end(self, logs=None):
        self.manager.close()  # waits for an async save, raises its error
