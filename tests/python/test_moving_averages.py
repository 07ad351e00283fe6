"""ExponentialMovingAverage against TensorFlow 2.21: averages, names, checkpoints.

The fixtures in tests/fixtures/tf_train/ema/ were written by TensorFlow
(generate_tf_train.py); the tests that run TensorFlow itself skip without it
(set TRACKPOINT_TF_PYTHON to a Python that has it).
"""

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

import trackpoint
from trackpoint.moving_averages import restore_by_name
from conftest import TF_PYTHON, needs_tf

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "tf_train" / "ema"
MANIFEST = json.loads((FIXTURE / "manifest.json").read_text())
DTYPES = {"w": np.float32, "b": np.float32, "d": np.float64}
NAMES = {"w": "w", "b": "dense/bias", "d": "d64"}


def expected(name):
    return np.array(MANIFEST["averages"][name], DTYPES[name])


class Model(trackpoint.AutoTrackable):
    def __init__(self):
        self.w = trackpoint.Variable(np.array(MANIFEST["initial"]["w"], np.float32), name="w")
        self.b = trackpoint.Variable(np.array(MANIFEST["initial"]["b"], np.float32),
                                     name="dense/bias")
        self.d = trackpoint.Variable(np.array(MANIFEST["initial"]["d"], np.float64), name="d64")
        self.step = trackpoint.Variable(0, dtype="int64", name="step", trainable=False)


def train(model_vars, assign, step):
    """Replays the fixture's training: the same values, applies and num_updates."""
    ema = trackpoint.ExponentialMovingAverage(MANIFEST["decay"], num_updates=step)
    ema.apply(model_vars)
    for values in MANIFEST["steps"]:
        for var, name in zip(model_vars, "wbd"):
            assign(var, np.array(values[name], DTYPES[name]))
        step.assign_add(1)
        ema.apply(model_vars)
    return ema


def trained_model():
    m = Model()
    ema = train([m.w, m.b, m.d], lambda v, x: v.assign(x), m.step)
    return m, ema


def test_variables_averages_equal_tensorflows_bit_for_bit():
    m, ema = trained_model()
    for var, name in zip([m.w, m.b, m.d], "wbd"):
        avg = ema.average(var)
        assert isinstance(avg, trackpoint.Variable) and not avg.trainable
        assert avg.dtype.name == np.dtype(DTYPES[name]).name
        assert avg.numpy().tobytes() == expected(name).tobytes(), name


def test_numpy_arrays_are_averaged_in_place():
    arrays = [np.array(MANIFEST["initial"][n], DTYPES[n]) for n in "wbd"]
    step = trackpoint.Variable(0, dtype="int64")

    def assign(a, x):
        a[...] = x

    ema = train(arrays, assign, step)
    for a, name in zip(arrays, "wbd"):
        avg = ema.average(a)
        assert isinstance(avg, np.ndarray) and avg is not a
        assert avg.tobytes() == expected(name).tobytes(), name


def test_torch_parameters_are_averaged_without_autograd():
    torch = pytest.importorskip("torch")
    params = [torch.nn.Parameter(torch.tensor(np.array(MANIFEST["initial"][n], DTYPES[n])))
              for n in "wbd"]
    step = trackpoint.Variable(0, dtype="int64")

    def assign(p, x):
        with torch.no_grad():
            p.copy_(torch.from_numpy(x))

    ema = train(params, assign, step)
    for p, name in zip(params, "wbd"):
        avg = ema.average(p)
        assert isinstance(avg, torch.Tensor) and not avg.requires_grad and avg.grad_fn is None
        assert avg.data_ptr() != p.data_ptr()
        assert avg.numpy().tobytes() == expected(name).tobytes(), name


def test_torch_module_parameters_and_checkpoint_of_averages(tmp_path):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    ema = trackpoint.ExponentialMovingAverage(0.5)
    ema.apply(model.parameters())
    start = model.weight.detach().clone()
    with torch.no_grad():
        model.weight.add_(1.0)
    ema.apply(model.parameters())
    want = start - (start - (start + 1.0)) * 0.5
    assert torch.equal(ema.average(model.weight), want)
    averages = [ema.average(p) for p in model.parameters()]
    path = trackpoint.Checkpoint(model=model, averaged_weights=averages).write(tmp_path / "c")
    reader = trackpoint.load_checkpoint(path)
    got = reader.get_tensor("averaged_weights/0/.ATTRIBUTES/VARIABLE_VALUE")
    assert got.tobytes() == want.numpy().tobytes()


def test_decay_without_num_updates_and_decay_variable():
    v = trackpoint.Variable([0.0, 10.0])
    decay = trackpoint.Variable(0.75)
    ema = trackpoint.ExponentialMovingAverage(decay)
    ema.apply([v])
    v.assign([4.0, 2.0])
    ema.apply([v])
    np.testing.assert_array_equal(ema.average(v).numpy(), np.float32([1.0, 8.0]))
    decay.assign(0.5)
    ema.apply()  # None: every variable applied before
    np.testing.assert_array_equal(ema.average(v).numpy(), np.float32([2.5, 5.0]))


def test_names_are_tensorflows():
    m, ema = trained_model()
    assert [ema.average_name(v) for v in (m.w, m.b, m.d)] == MANIFEST["average_names"]
    assert [ema.average(v).name for v in (m.w, m.b, m.d)] == MANIFEST["shadow_names"]
    got = {k: v.name for k, v in ema.variables_to_restore().items()}
    assert got == MANIFEST["variables_to_restore"]
    fresh = trackpoint.ExponentialMovingAverage(0.9, name="Avg")
    assert fresh.average_name(m.w) == "w/Avg"  # before apply too
    assert fresh.average(m.w) is None
    assert list(ema.variables_to_restore([m.b])) == ["dense/bias/ExponentialMovingAverage"]


def test_rejects_non_float_variables_and_names_them():
    ema = trackpoint.ExponentialMovingAverage(0.9)
    with pytest.raises(TypeError, match="half, float, or double: step:0"):
        ema.apply([trackpoint.Variable(1.0), trackpoint.Variable(0, dtype="int64", name="step")])
    assert ema._averages == {}
    with pytest.raises(TypeError, match="int32"):
        ema.apply([np.zeros(3, np.int32)])
    with pytest.raises(TypeError, match="no TensorFlow name"):
        ema.average_name(np.zeros(2, np.float32))


def test_ema_itself_is_not_trackable_like_tensorflows():
    assert MANIFEST["ema_trackable"] is False
    with pytest.raises(ValueError, match="trackable"):
        trackpoint.Checkpoint(ema=trackpoint.ExponentialMovingAverage(0.9))


def test_tensorflow_checkpoint_restores_into_our_averages():
    m = Model()
    ema = trackpoint.ExponentialMovingAverage(0.9, num_updates=m.step)
    ema.apply([m.w, m.b, m.d])
    averages = [ema.average(v) for v in (m.w, m.b, m.d)]
    status = trackpoint.Checkpoint(model=m, averaged_weights=averages).read(FIXTURE / "ckpt")
    status.assert_consumed()
    for avg, name in zip(averages, "wbd"):
        assert avg.numpy().tobytes() == expected(name).tobytes()
    assert int(m.step) == len(MANIFEST["steps"])
    # Training goes on from the restored averages as TF's would.
    before = m.w.numpy().copy()
    ema.apply([m.w])
    decay = np.float32(min(np.float32(0.9), np.float32(5.0) / np.float32(14.0)))
    want = expected("w") - (expected("w") - before) * (np.float32(1) - decay)
    assert ema.average(m.w).numpy().tobytes() == want.astype(np.float32).tobytes()


@pytest.mark.parametrize("ckpt", ["ckpt", "tf1/model.ckpt"])
def test_variables_to_restore_loads_averages_into_the_model(ckpt):
    m = Model()
    ema = trackpoint.ExponentialMovingAverage(0.9)
    ema.apply([m.w, m.b, m.d])
    restore_by_name(FIXTURE / ckpt, ema.variables_to_restore())
    for var, name in zip([m.w, m.b, m.d], "wbd"):
        assert var.numpy().tobytes() == expected(name).tobytes()


def test_tf1_saver_checkpoint_restores_model_and_shadows_by_name():
    m = Model()
    ema = trackpoint.ExponentialMovingAverage(0.9)
    ema.apply([m.w, m.b, m.d])
    averages = [ema.average(v) for v in (m.w, m.b, m.d)]
    ckpt = trackpoint.Checkpoint(model=m, averaged_weights=averages)
    ckpt.read(FIXTURE / "tf1" / "model.ckpt").assert_consumed()
    for avg, name in zip(averages, "wbd"):
        assert avg.numpy().tobytes() == expected(name).tobytes()
    assert m.w.numpy().tobytes() == np.float32(MANIFEST["steps"][-1]["w"]).tobytes()


def test_restore_by_name_errors(tmp_path):
    v = trackpoint.Variable([1.0, 2.0], name="w")
    with pytest.raises(trackpoint.NotFoundError, match=r"model.ckpt has no variables named \['nope'\]"):
        restore_by_name(FIXTURE / "tf1" / "model.ckpt", {"nope": v})
    with pytest.raises(ValueError, match=r"'w' from .*checkpoint has shape \[2, 3\], variable has \[2\]"):
        restore_by_name(FIXTURE / "tf1" / "model.ckpt", {"w": v})
    with pytest.raises(trackpoint.NotFoundError):
        restore_by_name(tmp_path / "missing", {"w": v})


TF_RESTORE = r"""
import json, sys
import numpy as np
import tensorflow as tf

class Model(tf.Module):
    def __init__(self):
        super().__init__()
        self.w = tf.Variable(np.zeros((2, 3), np.float32), name="w")
        self.b = tf.Variable(np.zeros(3, np.float32), name="dense/bias")
        self.d = tf.Variable(np.zeros(2), name="d64")
        self.step = tf.Variable(0, dtype=tf.int64, name="step", trainable=False)

m = Model()
ema = tf.train.ExponentialMovingAverage(0.9, num_updates=m.step)
ema.apply([m.w, m.b, m.d])
averages = [ema.average(v) for v in (m.w, m.b, m.d)]
tf.train.Checkpoint(model=m, averaged_weights=averages).read(sys.argv[1]).assert_consumed()
out = {"averages": [a.numpy().tobytes().hex() for a in averages], "step": int(m.step)}
m2 = Model()
tf.compat.v1.train.Saver(ema.variables_to_restore([m2.w, m2.b, m2.d])).restore(None, sys.argv[1])
out["by_name"] = [v.numpy().tobytes().hex() for v in (m2.w, m2.b, m2.d)]
print(json.dumps(out))
"""


@needs_tf
def test_our_checkpoint_restores_into_tensorflow(tmp_path):
    m, ema = trained_model()
    averages = [ema.average(v) for v in (m.w, m.b, m.d)]
    path = trackpoint.Checkpoint(model=m, averaged_weights=averages).write(tmp_path / "ckpt")
    script = tmp_path / "restore.py"
    script.write_text(TF_RESTORE)
    done = subprocess.run([TF_PYTHON, str(script), str(path)], capture_output=True, text=True, check=False,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    want = [expected(n).tobytes().hex() for n in "wbd"]
    assert report["averages"] == want
    assert report["by_name"] == want  # Saver(variables_to_restore()) through full names
    assert report["step"] == len(MANIFEST["steps"])
