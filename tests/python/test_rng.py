"""trackpoint.RNGState and torch.Generator: random state saved at save time and
set back at restore, so the numbers drawn after a restore repeat exactly."""

import os
import random
import subprocess
import sys

import numpy as np
import pytest

import trackpoint

torch = pytest.importorskip("torch")


def var(path):
    return f"{path}/.ATTRIBUTES/VARIABLE_VALUE"


def draws(generators=(), torch_generators=()):
    """A few numbers from every source."""
    out = [random.random(), random.gauss(0, 1), np.random.rand(), np.random.randn()]
    out += [g.random() if isinstance(g, np.random.Generator) else g.rand() for g in generators]
    out += torch.rand(3).tolist()
    out += [torch.rand(2, generator=g).tolist() for g in torch_generators]
    return out


def test_rng_state_round_trips_every_source(tmp_path):
    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(3)
    pcg = np.random.default_rng(4)
    mt = np.random.Generator(np.random.MT19937(5))
    legacy = np.random.RandomState(6)
    gens = [pcg, mt, legacy]
    ckpt = trackpoint.Checkpoint(rng=trackpoint.RNGState(gens))
    draws(gens)  # a half-used gauss pair and advanced states
    random.gauss(0, 1)
    np.random.randn()
    path = ckpt.save(tmp_path / "ckpt")
    expected = draws(gens)
    draws(gens)  # move every source on
    random.seed(99)
    np.random.seed(99)
    torch.manual_seed(99)
    ckpt.restore(path).assert_consumed()
    assert draws(gens) == expected

    names = dict(trackpoint.list_variables(path))
    assert names["rng/python/.ATTRIBUTES/state"] == [625]
    assert names["rng/numpy/.ATTRIBUTES/state:key"] == [624]
    assert names["rng/numpy_generators/1/.ATTRIBUTES/state:key"] == [624]
    assert "rng/numpy_generators/0/.ATTRIBUTES/py_state" in names
    assert names["rng/numpy_generators/2/.ATTRIBUTES/state:key"] == [624]
    assert names[var("rng/torch")] == [torch.get_rng_state().numel()]
    reader = trackpoint.load_checkpoint(path)
    assert reader.get_tensor(var("rng/torch")).dtype == np.uint8


def test_rng_state_restored_in_a_fresh_process(tmp_path):
    script = (
        "import random, sys, numpy as np, torch, trackpoint\n"
        "ckpt = trackpoint.Checkpoint(rng=trackpoint.RNGState())\n"
        "if sys.argv[1] == 'save':\n"
        "    random.seed(7); np.random.seed(7); torch.manual_seed(7)\n"
        "    random.random(); np.random.rand(); torch.rand(5)\n"
        "    ckpt.save(sys.argv[2])\n"
        "else:\n"
        "    ckpt.restore(trackpoint.latest_checkpoint(sys.argv[2])).assert_consumed()\n"
        "print(random.random().hex(), float(np.random.rand()).hex(), torch.rand(1).item().hex())\n"
    )
    run = [sys.executable, "-c", script]
    saved = subprocess.run(run + ["save", str(tmp_path / "ckpt")], capture_output=True,
                           text=True, check=True).stdout
    resumed = subprocess.run(run + ["restore", str(tmp_path)], capture_output=True,
                             text=True, check=True).stdout
    assert resumed == saved and saved.count("0x") == 3


def test_torch_generator_directly(tmp_path):
    data = torch.Generator().manual_seed(11)
    torch.rand(4, generator=data)
    ckpt = trackpoint.Checkpoint(data=data, default=torch.default_generator)
    path = ckpt.write(tmp_path / "c")
    expected = torch.rand(4, generator=data).tolist(), torch.rand(2).tolist()
    torch.rand(8, generator=data)
    data.manual_seed(0)
    torch.manual_seed(0)
    trackpoint.Checkpoint(data=data, default=torch.default_generator).read(path) \
        .assert_consumed()
    assert (torch.rand(4, generator=data).tolist(), torch.rand(2).tolist()) == expected
    stored = trackpoint.load_checkpoint(path).get_tensor(var("data"))
    assert stored.dtype == np.uint8 and stored.shape == tuple(data.get_state().shape)


def test_torch_generator_deferred_restore(tmp_path):
    g = torch.Generator().manual_seed(5)
    path = trackpoint.Checkpoint(g=g).save(tmp_path / "ckpt")
    expected = torch.rand(3, generator=g).tolist()
    ckpt = trackpoint.Checkpoint()
    status = ckpt.restore(path)
    fresh = torch.Generator().manual_seed(6)
    ckpt.g = fresh  # attached after the restore
    assert torch.rand(3, generator=fresh).tolist() == expected
    status.assert_consumed()


def test_rng_state_tensor_is_a_copy_and_the_generator_is_the_fix(tmp_path):
    # torch.get_rng_state() is a plain tensor copy: saved, but a restore writes
    # into that copy only. The generator itself is set back.
    torch.manual_seed(1)
    path = trackpoint.Checkpoint(rng=torch.default_generator).write(tmp_path / "c")
    expected = torch.rand(2).tolist()
    trackpoint.Checkpoint(rng=torch.default_generator).read(path)
    assert torch.rand(2).tolist() == expected


class FakeCuda:
    """torch.cuda's RNG functions over two fake devices."""

    def __init__(self):
        self.states = {0: torch.arange(16, dtype=torch.uint8),
                       1: torch.arange(16, 32, dtype=torch.uint8)}

    def is_available(self):
        return True

    def device_count(self):
        return 2

    def get_rng_state(self, i):
        return self.states[i].clone()

    def set_rng_state(self, state, i):
        assert state.dtype == torch.uint8 and state.device.type == "cpu"
        self.states[i] = state.clone()


def test_rng_state_saves_every_cuda_device(tmp_path, monkeypatch):
    fake = FakeCuda()
    for name in ("is_available", "device_count", "get_rng_state", "set_rng_state"):
        monkeypatch.setattr(torch.cuda, name, getattr(fake, name))
    ckpt = trackpoint.Checkpoint(rng=trackpoint.RNGState())
    path = ckpt.write(tmp_path / "c")
    reader = trackpoint.load_checkpoint(path)
    assert reader.get_tensor(var("rng/cuda/0")).tolist() == list(range(16))
    assert reader.get_tensor(var("rng/cuda/1")).tolist() == list(range(16, 32))
    fake.states = {0: torch.zeros(16, dtype=torch.uint8), 1: torch.zeros(16, dtype=torch.uint8)}
    ckpt.read(path).assert_consumed()
    assert fake.states[0].tolist() == list(range(16))
    assert fake.states[1].tolist() == list(range(16, 32))


def test_rng_state_without_torch(tmp_path):
    script = (
        "import random, sys, numpy as np, trackpoint\n"
        "ckpt = trackpoint.Checkpoint(rng=trackpoint.RNGState())\n"
        f"path = ckpt.write({str(tmp_path / 'c')!r})\n"
        "a = random.random(), np.random.rand()\n"
        "ckpt.read(path).assert_consumed()\n"
        "assert (random.random(), np.random.rand()) == a\n"
        "assert 'torch' not in sys.modules\n"
        "print(sorted(k for k, _ in trackpoint.list_variables(path)))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         env=dict(os.environ), check=False)
    assert out.returncode == 0, out.stderr
    assert "rng/torch" not in out.stdout and "rng/python/.ATTRIBUTES/state" in out.stdout


def test_rng_state_refuses_other_generators():
    with pytest.raises(TypeError, match="numpy.random.Generator"):
        trackpoint.RNGState([random.Random()])
