"""adapters/stateful.py: objects with state_dict()/load_state_dict() (LR
schedulers, GradScaler, user classes) saved at save time and given back at
restore; JsonState's live value; plain Python values refused at save time."""

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

import trackpoint
from trackpoint import errors
from trackpoint.adapters import adapt
from trackpoint.adapters.stateful import Stateful, decode_state, encode_state
from conftest import TF_PYTHON

torch = pytest.importorskip("torch")


def attr(path, name="py_state"):
    return f"{path}/.ATTRIBUTES/{name}"


def saved_json(prefix, path):
    raw = trackpoint.load_checkpoint(prefix).get_tensor(attr(path))
    return json.loads(raw.reshape(-1)[0] if isinstance(raw, np.ndarray) else raw)


def model_and_opt(seed=0):
    torch.manual_seed(seed)
    model = torch.nn.Linear(3, 2)
    return model, torch.optim.AdamW(model.parameters(), lr=0.1)


def train(model, opt, sched, steps, plateau=False):
    x = torch.arange(12, dtype=torch.float32).reshape(4, 3) / 10
    lrs = []
    for _ in range(steps):
        opt.zero_grad()
        loss = model(x).square().mean()
        loss.backward()
        opt.step()
        sched.step(loss.item()) if plateau else sched.step()
        lrs.append(opt.param_groups[0]["lr"].hex() if isinstance(
            opt.param_groups[0]["lr"], float) else opt.param_groups[0]["lr"])
    return lrs


def warmup_cosine(step):
    return min(1.0, (step + 1) / 4) * 0.5 * (1 + math.cos(math.pi * min(step, 20) / 20))


SCHEDULERS = {
    "LambdaLR": lambda opt: torch.optim.lr_scheduler.LambdaLR(opt, warmup_cosine),
    "StepLR": lambda opt: torch.optim.lr_scheduler.StepLR(opt, step_size=3, gamma=0.5),
    "ReduceLROnPlateau": lambda opt: torch.optim.lr_scheduler.ReduceLROnPlateau(
        opt, patience=1, factor=0.5),
    "SequentialLR": lambda opt: torch.optim.lr_scheduler.SequentialLR(
        opt, [torch.optim.lr_scheduler.LinearLR(opt, 0.1, total_iters=3),
              torch.optim.lr_scheduler.ExponentialLR(opt, 0.9)], milestones=[3]),
    "ChainedScheduler": lambda opt: torch.optim.lr_scheduler.ChainedScheduler(
        [torch.optim.lr_scheduler.ConstantLR(opt, 0.5, total_iters=4),
         torch.optim.lr_scheduler.ExponentialLR(opt, 0.8)]),
}


@pytest.mark.parametrize("kind", sorted(SCHEDULERS))
def test_lr_scheduler_resumes_exactly(tmp_path, kind):
    plateau = kind == "ReduceLROnPlateau"
    model, opt = model_and_opt()
    sched = SCHEDULERS[kind](opt)
    ckpt = trackpoint.Checkpoint(model=model, optimizer=opt, scheduler=sched)
    train(model, opt, sched, 5, plateau)
    path = ckpt.save(tmp_path / "ckpt")
    expected = train(model, opt, sched, 6, plateau)
    expected_state = sched.state_dict()

    model2, opt2 = model_and_opt(seed=1)
    sched2 = SCHEDULERS[kind](opt2)
    trackpoint.Checkpoint(model=model2, optimizer=opt2, scheduler=sched2).restore(path) \
        .assert_consumed()
    assert train(model2, opt2, sched2, 6, plateau) == expected
    got_state = sched2.state_dict()
    for key in ("last_epoch", "_last_lr", "best", "num_bad_epochs", "_schedulers"):
        if key in expected_state:
            assert repr(got_state[key]) == repr(expected_state[key]), key


def test_scheduler_state_is_taken_at_save_time(tmp_path):
    model, opt = model_and_opt()
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2)
    ckpt = trackpoint.Checkpoint(optimizer=opt, scheduler=sched)
    train(model, opt, sched, 3)  # after the Checkpoint was built
    path = ckpt.write(tmp_path / "c")
    assert saved_json(path, "scheduler")["last_epoch"] == 3
    train(model, opt, sched, 2)
    assert saved_json(ckpt.write(tmp_path / "d"), "scheduler")["last_epoch"] == 5


def test_grad_scaler_round_trips(tmp_path):
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0, growth_interval=3)
    param = torch.nn.Parameter(torch.ones(2))
    opt = torch.optim.SGD([param], lr=0.1)
    for value in (float("inf"), 1.0, 1.0):  # one overflow halves the scale, two good steps
        opt.zero_grad()
        scaler.scale(param.sum() * value).backward()
        scaler.step(opt)
        scaler.update()
    state = scaler.state_dict()
    assert state["scale"] == 512.0 and state["_growth_tracker"] == 2
    path = trackpoint.Checkpoint(scaler=scaler).write(tmp_path / "c")
    # A fresh scaler has no scale tensor yet: the saved state still arrives whole.
    fresh = torch.amp.GradScaler("cpu")
    trackpoint.Checkpoint(scaler=fresh).read(path).assert_consumed()
    assert fresh.state_dict() == state
    assert fresh.get_scale() == 512.0


def test_disabled_grad_scaler_round_trips(tmp_path):
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    path = trackpoint.Checkpoint(scaler=scaler).write(tmp_path / "c")
    assert saved_json(path, "scaler") == {}
    other = torch.amp.GradScaler("cpu", enabled=False)
    trackpoint.Checkpoint(scaler=other).read(path).assert_consumed()
    assert other.state_dict() == {}


class Accumulator:
    """A user class with tensors, numpy arrays and odd Python values in its state."""

    def __init__(self):
        self.count = 0
        self.sums = None  # a tensor only once something was added
        self.history = np.zeros(0, np.float64)
        self.meta = {}

    def add(self, value):
        self.count += 1
        t = torch.as_tensor(value, dtype=torch.float32)
        self.sums = t.clone() if self.sums is None else self.sums + t
        self.history = np.append(self.history, float(t.sum()))
        self.meta = {0: ("a", b"\x00\xff"), "np": np.int32(7), "nested": [{"t": t * 2}]}

    def state_dict(self):
        state = {"count": self.count, "history": self.history, "meta": self.meta}
        if self.sums is not None:
            state["sums"] = self.sums
        return state

    def load_state_dict(self, state):
        self.count = state["count"]
        self.sums = state.get("sums")
        self.history = state["history"]
        self.meta = state["meta"]


def test_user_class_round_trips_tensors_and_tagged_values(tmp_path):
    acc = Accumulator()
    acc.add([1.0, 2.0])
    acc.add([3.0, 4.0])
    path = trackpoint.Checkpoint(acc=acc).write(tmp_path / "c")
    keys = dict(trackpoint.list_variables(path))
    assert keys[attr("acc", "sums")] == [2]
    assert keys[attr("acc", "history")] == [2]
    assert keys[attr("acc", "meta:np")] == []
    assert keys[attr("acc", "meta:nested:0:t")] == [2]
    reader = trackpoint.load_checkpoint(path)
    np.testing.assert_array_equal(reader.get_tensor(attr("acc", "sums")), [4.0, 6.0])
    np.testing.assert_array_equal(reader.get_tensor(attr("acc", "history")), [3.0, 7.0])

    fresh = Accumulator()  # no "sums" in its state dict yet: still restored
    trackpoint.Checkpoint(acc=fresh).read(path).assert_consumed()
    assert fresh.count == 2
    assert isinstance(fresh.sums, torch.Tensor) and fresh.sums.tolist() == [4.0, 6.0]
    assert isinstance(fresh.history, np.ndarray) and fresh.history.tolist() == [3.0, 7.0]
    assert fresh.meta[0] == ("a", b"\x00\xff")
    assert fresh.meta["np"] == 7 and fresh.meta["np"].dtype == np.int32
    assert fresh.meta["nested"][0]["t"].tolist() == [6.0, 8.0]


def test_encoding_is_exact_for_tags_and_collisions():
    state = {"__tuple__": 1, "t": (1, (2.5, None)), 3: [True, "x"], (1, 2): "k",
             "inf": float("inf"), "big": 2**100}
    tensors = {}
    data = json.loads(json.dumps(encode_state(state, tensors)))
    assert tensors == {}
    assert decode_state(data, {}) == state


def test_unsavable_value_names_object_path_and_key(tmp_path):
    class Bad:
        def state_dict(self):
            return {"ok": 1, "inner": {"fn": len}}

        def load_state_dict(self, state):
            pass

    ckpt = trackpoint.Checkpoint(parts={"bad": Bad()})
    with pytest.raises(errors.InvalidArgumentError) as info:
        ckpt.write(tmp_path / "c")
    message = str(info.value)
    assert "parts/bad" in message
    assert "state_dict()['inner']['fn']" in message
    assert "builtin_function_or_method" in message
    assert not os.path.exists(str(tmp_path / "c") + ".index")


def test_stateful_in_lists_dicts_and_attributes_same_adapter(tmp_path):
    model, opt = model_and_opt()
    scheds = [torch.optim.lr_scheduler.StepLR(opt, 2)]
    holder = trackpoint.AutoTrackable()
    holder.scheduler = scheds[0]
    holder.extra = {"acc": Accumulator()}
    holder.extra["acc"].add([1.0])
    assert adapt(scheds[0]) is adapt(scheds[0])
    assert isinstance(adapt(scheds[0]), Stateful)
    assert adapt(torch.optim.lr_scheduler.StepLR) is torch.optim.lr_scheduler.StepLR  # a class
    assert not isinstance(adapt(model), Stateful) and not isinstance(adapt(opt), Stateful)
    train(model, opt, scheds[0], 3)
    path = trackpoint.Checkpoint(holder=holder, scheds=scheds).write(tmp_path / "c")
    names = [k for k, _ in trackpoint.list_variables(path)]
    assert attr("holder/scheduler") in names
    assert attr("holder/extra/acc") in names
    # One scheduler reached by two paths is saved once, under the first.
    assert attr("scheds/0") not in names


def test_deferred_restore_of_stateful_attached_after_restore(tmp_path):
    model, opt = model_and_opt()
    sched = torch.optim.lr_scheduler.LambdaLR(opt, warmup_cosine)
    train(model, opt, sched, 4)
    acc = Accumulator()
    acc.add([5.0])
    path = trackpoint.Checkpoint(model=model, optimizer=opt, scheduler=sched,
                                 extras={"acc": acc}).save(tmp_path / "ckpt")

    model2, opt2 = model_and_opt(seed=2)
    ckpt = trackpoint.Checkpoint(model=model2, optimizer=opt2, extras={})
    status = ckpt.restore(path)
    sched2 = torch.optim.lr_scheduler.LambdaLR(opt2, warmup_cosine)
    assert sched2.last_epoch == 0
    ckpt.scheduler = sched2  # attached after the restore: restored now
    assert sched2.last_epoch == 4
    assert sched2.get_last_lr() == sched.get_last_lr()
    acc2 = Accumulator()
    ckpt.extras["acc"] = acc2
    assert acc2.count == 1 and acc2.sums.tolist() == [5.0]
    status.assert_consumed()


def test_json_state_is_serialized_live_at_save_time(tmp_path):
    counters = {"epoch": 0, "seen": []}
    ckpt = trackpoint.Checkpoint(counters=trackpoint.JsonState(counters))
    counters["epoch"] = 3  # the same dict, mutated after construction
    counters["seen"].append("a")
    path = ckpt.write(tmp_path / "c")
    assert saved_json(path, "counters") == {"epoch": 3, "seen": ["a"]}
    ckpt.counters.value = {"epoch": 9}
    assert saved_json(ckpt.write(tmp_path / "d"), "counters") == {"epoch": 9}
    restored = trackpoint.Checkpoint(counters=trackpoint.JsonState())
    restored.read(path).assert_consumed()
    assert restored.counters.value == {"epoch": 3, "seen": ["a"]}


def test_json_state_of_a_state_dict_is_a_snapshot(tmp_path):
    # Documented: JsonState(sched.state_dict()) never sees later steps; pass sched itself.
    model, opt = model_and_opt()
    sched = torch.optim.lr_scheduler.StepLR(opt, 2)
    ckpt = trackpoint.Checkpoint(snap=trackpoint.JsonState(
        {k: v for k, v in sched.state_dict().items() if k != "_get_lr_called_within_step"}),
        live=sched)
    train(model, opt, sched, 3)
    path = ckpt.write(tmp_path / "c")
    assert saved_json(path, "snap")["last_epoch"] == 0
    assert saved_json(path, "live")["last_epoch"] == 3


def test_json_state_with_a_non_json_value_names_the_path(tmp_path):
    ckpt = trackpoint.Checkpoint(cfg=trackpoint.JsonState({"f": object()}))
    with pytest.raises(errors.InvalidArgumentError, match="cannot save cfg: JsonState"):
        ckpt.write(tmp_path / "c")


# ---- plain values -----------------------------------------------------------------------
class Model(trackpoint.AutoTrackable):
    def __init__(self):
        self.w = trackpoint.Variable([1.0, 2.0])
        self._config = {"units": 3}  # configuration: a leading underscore
        self.activation = math.tanh  # functions, classes, modules, None are not state
        self.kind = torch.optim.lr_scheduler.StepLR
        self.lib = np
        self.nothing = None


@pytest.mark.parametrize("name,value,where", [
    ("epoch", 3, "model/epoch"),
    ("lr", 0.5, "model/lr"),
    ("flag", True, "model/flag"),
    ("tag", "run-1", "model/tag"),
    ("raw", b"\x00", "model/raw"),
    ("npnum", np.float32(1.5), "model/npnum"),
    ("history", [1.0, 2.0], "model/history"),
    ("stats", {"best": 0.1}, "model/stats"),
    ("pair", (1, "a"), "model/pair"),
    ("mixed", [trackpoint.Variable(1.0), 7], "model/mixed/1"),
    ("nested", {"v": trackpoint.Variable(1.0), "n": {"a": 1}}, "model/nested/n"),
])
def test_plain_values_are_refused_at_save_time(tmp_path, name, value, where):
    model = Model()
    ckpt = trackpoint.Checkpoint(model=model)
    ckpt.write(tmp_path / "ok")  # configuration, functions, None: fine
    setattr(model, name, value)
    with pytest.raises(errors.InvalidArgumentError) as info:
        ckpt.write(tmp_path / "c")
    message = str(info.value)
    assert f"cannot save {where}:" in message
    assert "trackpoint.JsonState(" in message and "leading underscore" in message
    assert not os.path.exists(str(tmp_path / "c") + ".index")
    with pytest.raises(ValueError):  # also a ValueError
        ckpt.save(tmp_path / "s")
    assert int(ckpt.save_counter) == 0  # the failed save gave its number back


def test_plain_value_on_a_checkpoint_and_in_a_tracked_list(tmp_path):
    ckpt = trackpoint.Checkpoint(layers=[trackpoint.Variable(1.0)])
    ckpt.epoch = 4
    ckpt.layers.append("x")
    with pytest.raises(errors.InvalidArgumentError) as info:
        ckpt.write(tmp_path / "c")
    assert "cannot save epoch, layers/1:" in str(info.value)


def test_wrapped_values_save_and_restore(tmp_path):
    model = Model()
    model.epoch = trackpoint.JsonState(3)
    model.stats = trackpoint.JsonState({"best": 0.1})
    path = trackpoint.Checkpoint(model=model).write(tmp_path / "c")
    other = Model()
    other.epoch = trackpoint.JsonState(0)
    other.stats = trackpoint.JsonState({})
    trackpoint.Checkpoint(model=other).read(path).assert_consumed()
    assert other.epoch.value == 3 and other.stats.value == {"best": 0.1}


def test_stateful_needs_no_torch(tmp_path):
    script = (
        "import sys, trackpoint\n"
        "class C:\n"
        "    def __init__(self): self.n = 0\n"
        "    def state_dict(self): return {'n': self.n}\n"
        "    def load_state_dict(self, s): self.n = s['n']\n"
        "c = C(); c.n = 5\n"
        f"p = trackpoint.Checkpoint(c=c).write({str(tmp_path / 'c')!r})\n"
        "d = C(); trackpoint.Checkpoint(c=d).read(p).assert_consumed()\n"
        "assert d.n == 5 and 'torch' not in sys.modules\n"
        "print('ok')\n"
    )
    env = dict(os.environ)
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                         check=False)
    assert out.stdout.strip() == "ok", out.stderr


def test_private_names_are_configuration_but_their_trackables_are_checked(tmp_path):
    model = Model()
    model._layer = trackpoint.AutoTrackable()  # a child, whatever its name
    model._layer.w = trackpoint.Variable(1.0)
    model._layer.hist = {"a": [1, 2], "_b": 3}
    ckpt = trackpoint.Checkpoint(model=model)
    with pytest.raises(errors.InvalidArgumentError, match="cannot save model/_layer/hist/a:"):
        ckpt.write(tmp_path / "c")
    model._layer._hist = model._layer.hist
    del model._layer.hist
    ckpt.write(tmp_path / "d")


def _scheduler_and_user_checkpoint(tmp_path):
    model, opt = model_and_opt()
    sched = torch.optim.lr_scheduler.StepLR(opt, 2)
    train(model, opt, sched, 3)
    acc = Accumulator()
    acc.add([1.5, 2.5])
    return trackpoint.Checkpoint(scheduler=sched, acc=acc).write(tmp_path / "c")


def test_stateful_values_are_readable_by_trackpoint_inspect(tmp_path):
    path = _scheduler_and_user_checkpoint(tmp_path)
    out = subprocess.run(
        [sys.executable, "-m", "trackpoint", "inspect", path, "--tensor", attr("acc", "sums"),
         "--tensor", attr("scheduler")], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert "[1.5 2.5]" in out.stdout
    assert '"last_epoch": 3' in out.stdout


@pytest.mark.skipif(TF_PYTHON is None, reason="needs TensorFlow (set TRACKPOINT_TF_PYTHON)")
def test_stateful_values_are_readable_by_tensorflow(tmp_path):
    path = _scheduler_and_user_checkpoint(tmp_path)
    script = (
        "import json, sys, tensorflow as tf\n"
        "r = tf.train.load_checkpoint(sys.argv[1])\n"
        "print(json.dumps({'sums': r.get_tensor('acc/.ATTRIBUTES/sums').tolist(),\n"
        "  'sched': json.loads(r.get_tensor('scheduler/.ATTRIBUTES/py_state'))['last_epoch']}))\n"
    )
    out = subprocess.run([TF_PYTHON, "-c", script, path], capture_output=True, text=True,
                         timeout=300, check=False)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {"sums": [1.5, 2.5], "sched": 3}


def test_async_save_takes_the_state_at_the_snapshot(tmp_path):
    acc = Accumulator()
    acc.add([1.0, 1.0])
    ckpt = trackpoint.Checkpoint(acc=acc)
    options = trackpoint.CheckpointOptions(enable_async=True)
    path = ckpt.save(tmp_path / "ckpt", options=options)
    acc.sums.add_(100.0)  # in place, while the write may still run
    acc.add([5.0, 5.0])
    ckpt.sync()
    reader = trackpoint.load_checkpoint(path)
    assert reader.get_tensor(attr("acc", "sums")).tolist() == [1.0, 1.0]
    assert saved_json(path, "acc")["count"] == 1


def test_object_whose_getattr_fails_is_not_stateful():
    from trackpoint.adapters.stateful import is_stateful

    class Proxy:
        def __getattr__(self, name):
            raise RuntimeError("remote object")

    assert not is_stateful(Proxy())
    assert adapt(Proxy) is Proxy


def test_stateful_data_loader_resumes_mid_epoch(tmp_path):
    stateful_dataloader = pytest.importorskip("torchdata.stateful_dataloader")

    def loader():
        return stateful_dataloader.StatefulDataLoader(
            list(range(20)), batch_size=3, shuffle=True,
            generator=torch.Generator().manual_seed(0))

    first = loader()
    batches = iter(first)
    next(batches), next(batches)
    path = trackpoint.Checkpoint(loader=first).write(tmp_path / "c")
    assert dict(trackpoint.list_variables(path))[
        attr("loader", "_sampler_iter_state:sampler_iter_state:generator")] == [5056]
    expected = [b.tolist() for b in batches]
    resumed = loader()
    trackpoint.Checkpoint(loader=resumed).read(path).assert_consumed()
    assert [b.tolist() for b in resumed] == expected


def test_unsupported_object_error_names_what_is_accepted():
    loader = torch.utils.data.DataLoader(list(range(4)))
    with pytest.raises(ValueError, match="state_dict\\(\\) and load_state_dict\\(\\)") as info:
        trackpoint.Checkpoint(loader=loader)
    assert "StatefulDataLoader" in str(info.value) and "'loader'" in str(info.value)


def test_plain_values_in_tracked_tuples_are_refused_and_no_dependency_is_not(tmp_path):
    model = Model()
    model.pair = (trackpoint.Variable(1.0), 5)  # a tuple holding a trackable: tracked
    ckpt = trackpoint.Checkpoint(model=model)
    with pytest.raises(errors.InvalidArgumentError) as info:
        ckpt.write(tmp_path / "c")
    assert "cannot save model/pair/1:" in str(info.value)
    del model.pair
    model.cache = trackpoint.NoDependency([1, 2, 3])  # explicitly never saved
    model._private_pair = (trackpoint.Variable(2.0), "config")
    ckpt.write(tmp_path / "d")
