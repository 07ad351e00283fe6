"""trackpoint.integrations.keras: Keras 3 on the torch backend (no TensorFlow)
checkpointed each epoch by TrackpointCheckpoint and restored into a new model,
whose continued training equals the original's bit for bit."""

import os

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")
if keras.backend.backend() not in ("torch", "jax"):
    pytest.skip(
        f"Keras runs on {keras.backend.backend()}, not torch or jax", allow_module_level=True
    )

import trackpoint
from trackpoint.errors import InvalidArgumentError
from trackpoint.integrations.keras import TrackpointCheckpoint


def make_model():
    model = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(8, activation="relu"),
            keras.layers.BatchNormalization(),
            keras.layers.Dropout(0.25),
            keras.layers.Dense(1),
        ]
    )
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    return model


def data():
    x = np.random.RandomState(0).randn(64, 4).astype("float32")
    return x, (x * np.arange(1, 5, dtype="float32")).sum(1, keepdims=True)


def fit(model, epochs, initial_epoch=0, callbacks=()):
    x, y = data()
    history = model.fit(
        x,
        y,
        batch_size=16,
        epochs=epochs,
        initial_epoch=initial_epoch,
        shuffle=False,
        verbose=0,
        callbacks=list(callbacks),
    )
    return [float(v).hex() for v in history.history["loss"]]


def weights(model) -> list:
    return [np.asarray(keras.ops.convert_to_numpy(v.value)).tobytes() for v in model.variables]


def test_restored_model_continues_training_identically(tmp_path):
    keras.utils.set_random_seed(0)
    model = make_model()
    fit(model, epochs=2, callbacks=[TrackpointCheckpoint(tmp_path, max_to_keep=2)])
    assert trackpoint.latest_checkpoint(str(tmp_path)) == str(tmp_path / "ckpt-2")
    saved = weights(model)
    reference = fit(model, epochs=4, initial_epoch=2)  # the original goes on

    fresh = make_model()  # other initial weights, other layer names (dense_2, ...)
    assert weights(fresh) != saved
    checkpoints = TrackpointCheckpoint(tmp_path, max_to_keep=2)
    assert checkpoints.restore(fresh) == 2
    assert weights(fresh) == saved
    assert int(keras.ops.convert_to_numpy(fresh.optimizer.iterations)) == 2 * 4
    assert fit(fresh, epochs=4, initial_epoch=2, callbacks=[checkpoints]) == reference
    assert trackpoint.latest_checkpoint(str(tmp_path)) == str(tmp_path / "ckpt-4")
    assert weights(fresh) == weights(model)


def test_checkpoint_holds_every_variable_by_position(tmp_path):
    keras.utils.set_random_seed(0)
    model = make_model()
    fit(model, epochs=1, callbacks=[TrackpointCheckpoint(tmp_path)])
    prefix = str(tmp_path / "ckpt-1")
    keys = dict(trackpoint.list_variables(prefix))
    for i, v in enumerate(model.variables):
        key = f"model/{i}/.ATTRIBUTES/VARIABLE_VALUE"
        assert keys[key] == list(v.shape)
        value = trackpoint.load_variable(prefix, key)
        assert value.tobytes() == np.asarray(keras.ops.convert_to_numpy(v.value)).tobytes(), v.path
    assert len([k for k in keys if k.startswith("optimizer/")]) == len(model.optimizer.variables)
    assert int(trackpoint.load_variable(prefix, "epoch/.ATTRIBUTES/VARIABLE_VALUE")) == 1


def test_restore_errors(tmp_path):
    keras.utils.set_random_seed(0)
    model = make_model()
    checkpoints = TrackpointCheckpoint(tmp_path)
    assert checkpoints.restore(model) == 0  # nothing saved yet
    fit(model, epochs=1, callbacks=[checkpoints])
    other = keras.Sequential([keras.Input((4,)), keras.layers.Dense(7), keras.layers.Dense(1)])
    other.compile(optimizer="adam", loss="mse")
    with pytest.raises(InvalidArgumentError, match=r"model/0.*\[4, 8\].*\[4, 7\]"):
        TrackpointCheckpoint(tmp_path).restore(other)
    smaller = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8)])
    smaller.compile(optimizer="adam", loss="mse")
    with pytest.raises(AssertionError):
        TrackpointCheckpoint(tmp_path).restore(smaller)
