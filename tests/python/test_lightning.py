"""trackpoint.integrations.lightning: a Lightning Trainer saving and resuming
through TrackpointCheckpointIO.

The resume test runs a real ``Trainer.fit`` (a small LightningModule with
dropout, Adam and a StepLR schedule, a shuffled DataLoader, a callback that
checkpoints torch's RNG state as a tensor) in a child process, SIGKILLs it
at a step after a checkpoint, resumes with ``trainer.fit(ckpt_path=...)`` in
another, and compares every loss (``float.hex``) and the final parameters
with a run never interrupted, bit for bit.

Importing lightning costs several seconds of CPU, so the runs are children
forked by one helper process that imported it once (this file run as a
script, ``--zygote``); each run is its own process, killed with SIGKILL like
any other.
"""

import collections
import json
import math
import os
import pathlib
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

torch = pytest.importorskip("torch")
L = pytest.importorskip("lightning")

import trackpoint
from trackpoint.errors import (
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
)
from trackpoint.integrations import _structure
from trackpoint.integrations.lightning import TrackpointCheckpointIO

EPOCHS, STEPS_PER_EPOCH = 3, 8


# ---- the training run (also run in the children) ---------------------------------------------
class Regressor(L.LightningModule):
    def __init__(self, lr=0.05, losses_path=None):
        super().__init__()
        self.save_hyperparameters(ignore=["losses_path"])
        self.net = torch.nn.Sequential(
            torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Dropout(0.2), torch.nn.Linear(16, 1)
        )
        self.losses_path = losses_path

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.net(x), y)
        if self.losses_path:
            with open(self.losses_path, "a") as f:
                f.write(f"{self.global_step} {loss.item().hex()}\n")
        return loss

    def configure_optimizers(self):
        opt = torch.optim.Adam(self.parameters(), lr=self.hparams.lr)
        return [opt], [torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)]


class TorchRNGState(L.Callback):
    """Checkpoints torch's global RNG (dropout, the DataLoader's shuffling),
    which Lightning does not save itself: a uint8 tensor in the callback's
    state."""

    def state_dict(self):
        return {"torch": torch.get_rng_state()}

    def load_state_dict(self, state_dict):
        torch.set_rng_state(state_dict["torch"])


class BlockAt(L.Callback):
    """Stops the run at a global step (after its checkpoint saves), writes a
    marker file and waits to be killed."""

    def __init__(self, step, marker):
        self.step, self.marker = step, marker

    def on_train_batch_end(self, trainer, *args):
        if trainer.global_step == self.step:
            pathlib.Path(self.marker).write_text("blocked")
            time.sleep(120)
            os._exit(3)  # never killed: the test fails on the exit status


def make_trainer(run_dir, plugin, callbacks=(), max_epochs=EPOCHS, deterministic=False):
    # (deterministic=True sets torch.use_deterministic_algorithms for the whole
    # process: only in the children.)
    checkpoints = L.pytorch.callbacks.ModelCheckpoint(
        dirpath=run_dir, save_top_k=-1, save_last=True
    )
    return L.Trainer(
        max_epochs=max_epochs,
        accelerator="cpu",
        devices=1,
        deterministic=deterministic,
        plugins=[plugin],
        callbacks=[checkpoints, TorchRNGState(), *callbacks],
        default_root_dir=run_dir,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )


def data_loader():
    x = torch.randn(4 * STEPS_PER_EPOCH, 4)
    y = (x * torch.arange(1.0, 5.0)).sum(1, keepdim=True)
    return torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(x, y), batch_size=4, shuffle=True
    )


def train(run_dir, losses="losses.txt", async_save=False, ckpt_path=None, block_at=None):
    """One fit in run_dir: losses appended to the file ``losses``, final
    parameters in params.json (hex of their bytes)."""
    torch.set_num_threads(1)
    L.seed_everything(0, verbose=False)
    loader = data_loader()
    model = Regressor(losses_path=os.path.join(run_dir, losses))
    callbacks = [BlockAt(block_at, os.path.join(run_dir, "blocked"))] if block_at else []
    plugin = TrackpointCheckpointIO(async_save=async_save)
    trainer = make_trainer(run_dir, plugin, callbacks, deterministic=True)
    trainer.fit(model, loader, ckpt_path=ckpt_path)
    params = {k: v.numpy().tobytes().hex() for k, v in model.state_dict().items()}
    pathlib.Path(run_dir, "params.json").write_text(json.dumps(params))


def zygote():
    """Reads one JSON object of train()'s arguments per line; runs each in a
    forked child (output to run_dir/log.txt), printing {"pid"} when it starts
    and {"status"} (as os.waitstatus_to_exitcode) when it ends."""
    for line in sys.stdin:
        args = json.loads(line)
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                log = os.open(
                    os.path.join(args["run_dir"], "log.txt"), os.O_WRONLY | os.O_CREAT | os.O_APPEND
                )
                os.dup2(log, 1)
                os.dup2(log, 2)
                train(**args)
                code = 0
            except BaseException:  # noqa: BLE001 -- any failure goes to the log
                import traceback

                traceback.print_exc()
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        print(json.dumps({"pid": pid}), flush=True)
        _, status = os.waitpid(pid, 0)
        print(json.dumps({"status": os.waitstatus_to_exitcode(status)}), flush=True)


# ---- the resume tests ------------------------------------------------------------------------
class Runner:
    def __init__(self):
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--zygote"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def run(self, run_dir, kill_at=None, **args):
        """Runs train(run_dir, **args); with kill_at, SIGKILLs the run once it
        reaches that global step. Returns its exit code (negative: a signal)."""
        run_dir.mkdir(exist_ok=True)
        if kill_at is not None:
            args["block_at"] = kill_at
        self.proc.stdin.write(json.dumps({"run_dir": str(run_dir), **args}) + "\n")
        self.proc.stdin.flush()
        pid = self.reply("pid")
        if kill_at is not None:
            deadline = time.monotonic() + 120
            while not (run_dir / "blocked").exists() and time.monotonic() < deadline:
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:  # ended before it blocked: its status says how
                    break
                time.sleep(0.01)
            os.kill(pid, signal.SIGKILL)
        status = self.reply("status")
        if status not in (0, -signal.SIGKILL):
            pytest.fail(
                f"run in {run_dir} exited with {status}:\n{(run_dir / 'log.txt').read_text()}"
            )
        return status

    def reply(self, name):
        line = self.proc.stdout.readline()
        if not line:
            pytest.fail(f"the helper process ended (exit status {self.proc.wait()}); see stderr")
        return json.loads(line)[name]

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


@pytest.fixture(scope="module")
def runner():
    r = Runner()
    yield r
    r.close()


@pytest.fixture(scope="module")
def reference(runner, tmp_path_factory):
    """Losses and final parameters of a run never interrupted."""
    run_dir = tmp_path_factory.mktemp("reference")
    assert runner.run(run_dir) == 0
    return losses(run_dir), (run_dir / "params.json").read_text()


def losses(run_dir, name="losses.txt") -> list:
    """(global step, loss hex) per line of a run's losses file."""
    out = []
    for line in (run_dir / name).read_text().splitlines():
        step, value = line.split()
        out.append((int(step), value))
    return out


@pytest.mark.parametrize("async_save", [False, True], ids=["sync", "async"])
def test_killed_and_resumed_fit_equals_uninterrupted_fit(runner, reference, tmp_path, async_save):
    ref_losses, ref_params = reference
    assert [s for s, _ in ref_losses] == list(range(EPOCHS * STEPS_PER_EPOCH))
    # Killed after the checkpoint of epoch 0 (sync) or of epoch 1 (async: the
    # save of epoch 1 waited for epoch 0's, so at least that one is complete).
    kill_at = STEPS_PER_EPOCH + 3 if not async_save else 2 * STEPS_PER_EPOCH + 3
    assert runner.run(tmp_path, kill_at=kill_at, async_save=async_save) == -signal.SIGKILL
    assert losses(tmp_path) == ref_losses[:kill_at]
    assert not (tmp_path / "params.json").exists()

    ckpt_path = str(tmp_path / "last.ckpt") if not async_save else "last"
    status = runner.run(tmp_path, losses="resumed.txt", async_save=async_save, ckpt_path=ckpt_path)
    assert status == 0
    resumed_losses = losses(tmp_path, "resumed.txt")
    start = resumed_losses[0][0]
    assert start in (
        (STEPS_PER_EPOCH,) if not async_save else (STEPS_PER_EPOCH, 2 * STEPS_PER_EPOCH)
    )
    assert resumed_losses == ref_losses[start:]
    assert (tmp_path / "params.json").read_text() == ref_params


# ---- the checkpoint files --------------------------------------------------------------------
@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """A one-epoch fit in this process: (model, run directory)."""
    run_dir = tmp_path_factory.mktemp("fit")
    torch.manual_seed(0)
    model = Regressor()
    trainer = make_trainer(str(run_dir), TrackpointCheckpointIO(), max_epochs=1)
    trainer.fit(model, data_loader())
    return model, run_dir


def test_checkpoint_is_a_trackpoint_checkpoint_of_the_model(fitted):
    model, run_dir = fitted
    ckpt_dir = run_dir / f"epoch=0-step={STEPS_PER_EPOCH}.ckpt"
    assert sorted(os.listdir(ckpt_dir)) == [
        "checkpoint",
        "ckpt-1.data-00000-of-00001",
        "ckpt-1.index",
    ]
    keys = dict(trackpoint.list_variables(str(ckpt_dir)))
    state = model.state_dict()
    assert sorted(state) == ["net.0.bias", "net.0.weight", "net.3.bias", "net.3.weight"]
    for name, tensor in state.items():
        key = "state_dict/" + name.replace(".", "/") + "/.ATTRIBUTES/VARIABLE_VALUE"
        assert keys[key] == list(tensor.shape)
        value = trackpoint.load_variable(str(ckpt_dir), key)
        assert value.dtype == np.float32
        assert value.tobytes() == tensor.numpy().tobytes(), name
    step = "optimizer_states/0/state/0/step/.ATTRIBUTES/VARIABLE_VALUE"
    assert float(trackpoint.load_variable(str(ckpt_dir), step)) == STEPS_PER_EPOCH
    structure = json.loads(
        trackpoint.load_variable(str(ckpt_dir), "lightning_structure/.ATTRIBUTES/py_state")
    )
    assert ["global_step", STEPS_PER_EPOCH] in structure["dict"]

    # Loaded outside Lightning: into a module by trackpoint, and as Lightning's dict.
    fresh = Regressor()
    prefix = trackpoint.latest_checkpoint(str(ckpt_dir))
    trackpoint.Checkpoint(state_dict=fresh).read(prefix).expect_partial()
    loaded = TrackpointCheckpointIO().load_checkpoint(ckpt_dir)
    assert loaded["global_step"] == STEPS_PER_EPOCH and loaded["epoch"] == 0
    assert loaded["hyper_parameters"] == {"lr": 0.05}
    for name, tensor in state.items():
        assert torch.equal(fresh.state_dict()[name], tensor)
        assert torch.equal(loaded["state_dict"][name], tensor)


def test_last_checkpoint_is_overwritten_in_place(fitted):
    _, run_dir = fitted
    # last.ckpt was saved once; a second save replaces ckpt-1 with ckpt-2.
    io = TrackpointCheckpointIO()
    last = run_dir / "last.ckpt"
    checkpoint = io.load_checkpoint(last)
    checkpoint["global_step"] = 1000
    io.save_checkpoint(checkpoint, last)
    assert sorted(os.listdir(last)) == ["checkpoint", "ckpt-2.data-00000-of-00001", "ckpt-2.index"]
    assert io.load_checkpoint(last)["global_step"] == 1000
    assert io.load_checkpoint(last / "ckpt-2")["global_step"] == 1000  # a prefix works too


def test_lightning_async_checkpoint_io_wraps_the_plugin(tmp_path):
    torch.manual_seed(0)
    model = Regressor()
    plugin = L.pytorch.plugins.AsyncCheckpointIO(TrackpointCheckpointIO())
    make_trainer(str(tmp_path), plugin, max_epochs=2).fit(model, data_loader())
    loaded = TrackpointCheckpointIO().load_checkpoint(tmp_path / "last.ckpt")
    assert loaded["global_step"] == 2 * STEPS_PER_EPOCH
    for name, tensor in model.state_dict().items():
        assert torch.equal(loaded["state_dict"][name], tensor)


def test_save_last_link_resumes_through_the_link(tmp_path):
    checkpoints = L.pytorch.callbacks.ModelCheckpoint(dirpath=tmp_path, save_last="link")
    kwargs = {
        "accelerator": "cpu",
        "logger": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "plugins": [TrackpointCheckpointIO()],
    }
    L.Trainer(max_epochs=2, callbacks=[checkpoints], **kwargs).fit(Regressor(), data_loader())
    last = tmp_path / "last.ckpt"
    assert last.is_symlink() and os.readlink(last) == f"epoch=1-step={2 * STEPS_PER_EPOCH}.ckpt"
    assert sorted(os.listdir(tmp_path)) == [f"epoch=1-step={2 * STEPS_PER_EPOCH}.ckpt", "last.ckpt"]
    trainer = L.Trainer(max_epochs=3, **kwargs)
    trainer.fit(Regressor(), data_loader(), ckpt_path=str(last))
    assert trainer.global_step == 3 * STEPS_PER_EPOCH


def test_async_save_snapshots_before_returning(tmp_path):
    io = TrackpointCheckpointIO(async_save=True)
    weight = torch.arange(6.0).reshape(2, 3)
    io.save_checkpoint({"state_dict": {"w": weight}, "step": 1}, tmp_path / "a.ckpt")
    weight.add_(100.0)  # after save_checkpoint returned: not in the checkpoint
    io.teardown()
    loaded = io.load_checkpoint(tmp_path / "a.ckpt")
    assert torch.equal(loaded["state_dict"]["w"], torch.arange(6.0).reshape(2, 3))


# ---- what the dict may hold ------------------------------------------------------------------
def same(a, b) -> bool:
    """Equal values of the same types, recursively (tensors bit for bit, NaN equals NaN)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, torch.Tensor):
        return a.dtype == b.dtype and a.shape == b.shape and torch.equal(bits(a), bits(b))
    if isinstance(a, np.ndarray):
        return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()
    if isinstance(a, dict):
        return (
            list(a) == list(b)
            and all(type(k) is type(j) for k, j in zip(a, b))
            and all(same(a[k], b[k]) for k in a)
            and same(getattr(a, "_metadata", None), getattr(b, "_metadata", None))
        )
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, float):
        return a.hex() == b.hex() or (math.isnan(a) and math.isnan(b))
    if isinstance(a, np.generic):
        return a.dtype == b.dtype and a.tobytes() == b.tobytes()
    return a == b


def bits(t):
    return t.reshape(-1).contiguous().view(torch.uint8)


def every_kind():
    module = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.BatchNorm1d(3))
    state = module.state_dict()
    assert state._metadata  # torch's per-module versions, kept
    return {
        "state_dict": state,
        "epoch": 2,
        "big": 2**70,
        "flag": True,
        "none": None,
        "text": "é",
        "floats": [0.1, -0.0, 1e-310, float("inf"), float("-inf"), float("nan")],
        "complex": 1.5 - 2j,
        "bytes": b"\x00\xff",
        "tuple": (1, (2, "3")),
        "int_keys": {0: "a", 7: {2: [3]}, True: 1.5, None: 0, 2.5: "x"},
        "ordered": collections.OrderedDict([("b", 1), ("a", 2)]),
        "hparams": L.fabric.utilities.data.AttributeDict(lr=0.1, betas=(0.9, 0.999)),
        "numpy": [
            np.float32(0.1),
            np.int64(-3),
            np.bool_(True),
            np.arange(6, dtype=np.int16).reshape(2, 3),
        ],
        "tensors": {
            "bool": torch.tensor([True, False]),
            "int8": torch.tensor([-1], dtype=torch.int8),
            "scalar": torch.tensor(3.5, dtype=torch.float64),
            "empty": torch.zeros(0, 4),
            "half": torch.tensor([1.5], dtype=torch.float16),
            "strided": torch.arange(12.0).reshape(3, 4).t(),
            "path/with.dots": torch.ones(1),
        },
        "optimizer_states": [
            {"state": {0: {"step": torch.tensor(3.0)}}, "param_groups": [{"params": [0]}]}
        ],
    }


def test_every_kind_of_value_comes_back_with_its_type(tmp_path):
    value = every_kind()
    io = TrackpointCheckpointIO()
    io.save_checkpoint(value, tmp_path / "x.ckpt")
    loaded = io.load_checkpoint(tmp_path / "x.ckpt")
    assert same(loaded, value)
    assert not same(loaded, {**value, "epoch": 3})  # (same() can fail)
    assert loaded["tensors"]["strided"].is_contiguous()


def test_bfloat16_tensors(tmp_path):
    pytest.importorskip("ml_dtypes")
    value = {"w": torch.tensor([1.5, -2.0], dtype=torch.bfloat16)}
    io = TrackpointCheckpointIO()
    io.save_checkpoint(value, tmp_path / "x.ckpt")
    assert same(io.load_checkpoint(tmp_path / "x.ckpt"), value)


def test_structure_names_tensors_by_path_without_disk():
    structure, tensors = _structure.encode(
        {"state_dict": {"enc.0.w": torch.ones(2)}, "opt": [{0: torch.zeros(1)}], "n": 3},
        module_paths=[("state_dict",)],
    )
    assert structure == {
        "dict": [
            [
                "state_dict",
                {
                    "dict": [["enc.0.w", {"torch": {"dtype": "float32", "shape": [2]}}]],
                    "modules": True,
                },
            ],
            ["opt", {"list": [{"dict": [[0, {"torch": {"dtype": "float32", "shape": [1]}}]]}]}],
            ["n", 3],
        ]
    }
    assert list(tensors) == [("state_dict", "enc", "0", "w"), ("opt", "0", "0")]
    # Keys that cannot all be split at dots ("a" is a prefix of "a.b") stay whole.
    structure, tensors = _structure.encode(
        {"sd": {"a": torch.ones(1), "a.b": torch.ones(1)}}, module_paths=[("sd",)]
    )
    assert "modules" not in structure["dict"][0][1]
    assert list(tensors) == [("sd", "a"), ("sd", "a.b")]
    value, made = _structure.decode(structure, _structure.empty_tensor)
    assert list(made) == list(tensors) and value["sd"]["a.b"] is made[("sd", "a.b")]


@pytest.mark.parametrize(
    "bad, where",
    [
        (
            {"hyper_parameters": {"loss_fn": torch.nn.MSELoss()}},
            r"\['hyper_parameters'\]\['loss_fn'\]",
        ),
        ({"a": [1, pathlib.Path("x")]}, r"\['a'\]\[1\]"),
        ({"a": {(1, 2): 3}}, r"\['a'\]: it holds a key \(1, 2\)"),
        ({"a": {1}}, r"\['a'\]: it holds a set"),
        ({"a": np.array(["s"])}, r"\['a'\]: it holds a numpy array of dtype <U1"),
        ({"a": torch.ones(2).to_sparse()}, r"\['a'\]: it holds a torch.sparse_coo tensor"),
    ],
)
def test_unsavable_values_are_refused_naming_where(tmp_path, bad, where):
    path = tmp_path / "x.ckpt"
    with pytest.raises(InvalidArgumentError, match=where) as info:
        TrackpointCheckpointIO().save_checkpoint(bad, path)
    assert str(path) in str(info.value)
    assert not path.exists()


def test_colliding_names_are_refused(tmp_path):
    with pytest.raises(InvalidArgumentError, match=r"\['d'\]\[0\] and \['d'\]\['0'\].*'d/0'"):
        TrackpointCheckpointIO().save_checkpoint(
            {"d": {0: torch.ones(1), "0": torch.ones(1)}}, tmp_path / "x.ckpt"
        )
    with pytest.raises(InvalidArgumentError, match="'save_counter' holds tensors"):
        TrackpointCheckpointIO().save_checkpoint(
            {"save_counter": torch.ones(1)}, tmp_path / "x.ckpt"
        )
    assert not (tmp_path / "x.ckpt").exists()


# ---- paths, options, removal -----------------------------------------------------------------
def test_load_errors(tmp_path):
    io = TrackpointCheckpointIO()
    with pytest.raises(NotFoundError, match="no checkpoint at"):
        io.load_checkpoint(tmp_path / "missing.ckpt")
    (tmp_path / "interrupted.ckpt").mkdir()  # as a first save killed before its state file
    with pytest.raises(NotFoundError, match="holds no complete checkpoint"):
        io.load_checkpoint(tmp_path / "interrupted.ckpt")
    torch.save({"state_dict": {}}, tmp_path / "torch.ckpt")
    with pytest.raises(InvalidArgumentError, match="is a file"):
        io.load_checkpoint(tmp_path / "torch.ckpt")
    with pytest.raises(FailedPreconditionError, match="is a file"):
        io.save_checkpoint({"a": 1}, tmp_path / "torch.ckpt")
    trackpoint.Checkpoint(w=trackpoint.Variable(1.0)).write(str(tmp_path / "plain"))
    with pytest.raises(InvalidArgumentError, match="without 'lightning_structure'"):
        io.load_checkpoint(tmp_path / "plain")


def test_options(tmp_path):
    io = TrackpointCheckpointIO()
    with pytest.raises(TypeError, match="storage_options"):
        io.save_checkpoint({"a": 1}, tmp_path / "x.ckpt", storage_options={"compress": True})
    io.save_checkpoint(
        {"w": torch.ones(2)},
        tmp_path / "x.ckpt",
        storage_options=trackpoint.CheckpointOptions(enable_async=True),
    )
    loaded = io.load_checkpoint(tmp_path / "x.ckpt", map_location="cpu")  # waits for the save
    assert torch.equal(loaded["w"], torch.ones(2))
    with pytest.raises(TypeError, match="map_location"):
        io.load_checkpoint(tmp_path / "x.ckpt", map_location=lambda storage, loc: storage)


def test_remove_checkpoint(tmp_path):
    io = TrackpointCheckpointIO()
    io.save_checkpoint({"w": torch.ones(1)}, tmp_path / "a.ckpt")
    os.symlink("a.ckpt", tmp_path / "last.ckpt")
    io.remove_checkpoint(tmp_path / "last.ckpt")  # the link only
    assert sorted(os.listdir(tmp_path)) == ["a.ckpt"]
    io.remove_checkpoint(tmp_path / "a.ckpt")
    assert os.listdir(tmp_path) == []
    io.remove_checkpoint(tmp_path / "a.ckpt")  # gone already: nothing to do

    io.save_checkpoint({"w": torch.ones(1)}, tmp_path / "b.ckpt")
    (tmp_path / "b.ckpt" / "checkpoint.tmp0123").write_text("")  # as a killed save leaves it
    io.remove_checkpoint(tmp_path / "b.ckpt")
    assert os.listdir(tmp_path) == []

    io.save_checkpoint({"w": torch.ones(1)}, tmp_path / "b.ckpt")
    (tmp_path / "b.ckpt" / "notes.txt").write_text("mine")
    with pytest.raises(FailedPreconditionError, match="notes.txt"):
        io.remove_checkpoint(tmp_path / "b.ckpt")
    assert "checkpoint" in os.listdir(tmp_path / "b.ckpt")


if __name__ == "__main__" and sys.argv[1:] == ["--zygote"]:
    zygote()
