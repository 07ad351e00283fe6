"""adapters/torch.py: modules, optimizers and tensors saved as TensorFlow saves
variables and slot variables, restored in place, training resumed bit for bit."""

import json
import pathlib

import numpy as np
import pytest

import trackpoint
from trackpoint import errors
from trackpoint.adapters import torch as torch_adapter  # imports torch only when used

torch = pytest.importorskip("torch")

GRAPH = "_CHECKPOINTABLE_OBJECT_GRAPH"


def var(path):
    return f"{path}/.ATTRIBUTES/VARIABLE_VALUE"


def slot(path, name, optimizer="optimizer"):
    return f"{path}/.OPTIMIZER_SLOT/{optimizer}/{name}/.ATTRIBUTES/VARIABLE_VALUE"


def make_model(seed):
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Linear(4, 8), torch.nn.BatchNorm1d(8), torch.nn.ReLU(), torch.nn.Linear(8, 2)
    )


def data():
    g = torch.Generator().manual_seed(1234)
    return torch.randn(16, 4, generator=g), torch.randn(16, 2, generator=g)


def train(model, opt, steps):
    x, y = data()
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.detach().clone())
    return losses


def assert_same_state(model_a, opt_a, model_b, opt_b):
    sa, sb = model_a.state_dict(), model_b.state_dict()
    assert list(sa) == list(sb)
    for k in sa:
        assert sa[k].dtype == sb[k].dtype, k
        assert torch.equal(sa[k], sb[k]), k
    oa, ob = opt_a.state_dict(), opt_b.state_dict()
    assert oa["param_groups"] == ob["param_groups"]
    assert sorted(oa["state"]) == sorted(ob["state"])
    for i in oa["state"]:
        assert sorted(oa["state"][i]) == sorted(ob["state"][i])
        for k, va in oa["state"][i].items():
            vb = ob["state"][i][k]
            assert va.dtype == vb.dtype and va.device == vb.device, (i, k)
            assert torch.equal(va, vb), (i, k)


def keys(path):
    return sorted(trackpoint.load_checkpoint(path).get_variable_to_shape_map())


# ---- the must-show: train, save, restore into fresh objects, resume bit for bit ----------
def test_resumed_training_is_bit_identical(tmp_path):
    model = make_model(seed=0)
    opt = torch.optim.Adam(model.parameters(), lr=0.01, betas=(0.8, 0.99))
    train(model, opt, 5)
    path = trackpoint.Checkpoint(model=model, optimizer=opt).save(tmp_path / "ckpt")

    fresh = make_model(seed=1)  # different initial values
    fresh_opt = torch.optim.Adam(fresh.parameters(), lr=0.5)  # never stepped, other lr
    assert not torch.equal(fresh[0].weight, model[0].weight)
    trackpoint.Checkpoint(model=fresh, optimizer=fresh_opt).restore(path).assert_consumed()
    assert_same_state(model, opt, fresh, fresh_opt)
    assert fresh_opt.param_groups[0]["betas"] == (0.8, 0.99)  # a tuple again

    losses = train(model, opt, 7)
    fresh_losses = train(fresh, fresh_opt, 7)
    for a, b in zip(losses, fresh_losses):
        assert torch.equal(a, b)
    assert_same_state(model, opt, fresh, fresh_opt)


def test_keys_of_a_sequential_with_adam(tmp_path):
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
    opt = torch.optim.Adam(model.parameters())
    x, _ = data()
    model(x).sum().backward()
    opt.step()
    path = trackpoint.Checkpoint(model=model, optimizer=opt).save(tmp_path / "ckpt")
    expected = [GRAPH, "optimizer/param_groups/.ATTRIBUTES/py_state", var("save_counter")]
    for layer in ("model/0", "model/2"):
        for p in ("weight", "bias"):
            expected.append(var(f"{layer}/{p}"))
            expected += [slot(f"{layer}/{p}", s) for s in ("exp_avg", "exp_avg_sq", "step")]
    assert keys(path) == sorted(expected)
    reader = trackpoint.load_checkpoint(path)
    np.testing.assert_array_equal(
        reader.get_tensor(var("model/0/weight")), model[0].weight.detach().numpy()
    )
    step = reader.get_tensor(slot("model/0/weight", "step"))
    assert step.dtype == np.float32 and step.shape == () and step == 1
    groups = json.loads(reader.get_tensor("optimizer/param_groups/.ATTRIBUTES/py_state"))
    assert groups[0]["lr"] == 0.001 and groups[0]["betas"] == [0.9, 0.999]
    assert "params" not in groups[0]


def test_saving_the_same_state_twice_gives_the_same_bytes(tmp_path):
    model = make_model(seed=0)
    opt = torch.optim.Adam(model.parameters())
    train(model, opt, 2)
    ckpt = trackpoint.Checkpoint(model=model, optimizer=opt)
    a, b = ckpt.write(tmp_path / "a"), ckpt.write(tmp_path / "b")
    for suffix in (".index", ".data-00000-of-00001"):
        assert pathlib.Path(a + suffix).read_bytes() == pathlib.Path(b + suffix).read_bytes()


def test_load_checkpoint_lists_the_parameters(tmp_path):
    model = make_model(seed=0)
    path = trackpoint.Checkpoint(model=model).write(tmp_path / "c")
    listed = dict(trackpoint.list_variables(path))
    assert listed[var("model/0/weight")] == [8, 4]
    assert listed[var("model/1/running_mean")] == [8]
    assert listed[var("model/1/num_batches_tracked")] == []
    assert listed[var("model/3/bias")] == [2]
    assert (
        trackpoint.load_checkpoint(path).get_tensor(var("model/1/num_batches_tracked")).dtype
        == np.int64
    )


def test_the_same_object_gets_the_same_adapter():
    model = make_model(seed=0)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    adapter = torch_adapter.adapt(model)
    assert torch_adapter.adapt(model) is adapter
    assert torch_adapter.adapt(opt) is torch_adapter.adapt(opt)
    weight = adapter._trackable_children()["0"]._trackable_children()["weight"]
    assert weight is torch_adapter.adapt(model[0].weight)
    assert weight.tensor is model[0].weight
    ckpt = trackpoint.Checkpoint(model=model)
    assert ckpt.model is model  # the attribute stays the module itself
    assert ckpt._trackable_children()["model"] is adapter


def test_module_children_order_and_non_persistent_buffers(tmp_path):
    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = torch.nn.Linear(2, 2)
            self.register_buffer("kept", torch.ones(2))
            self.register_buffer("scratch", torch.ones(2), persistent=False)
            self.scale = torch.nn.Parameter(torch.ones(()))
            self.nothing = None

    net = Net()
    assert list(torch_adapter.adapt(net)._trackable_children()) == ["scale", "kept", "inner"]
    path = trackpoint.Checkpoint(net=net).write(tmp_path / "c")
    assert keys(path) == sorted(
        [GRAPH, var("net/scale"), var("net/kept"), var("net/inner/weight"), var("net/inner/bias")]
    )


def test_tied_parameter_is_saved_once(tmp_path):
    class Tied(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = torch.nn.Linear(3, 3, bias=False)
            self.decoder = torch.nn.Linear(3, 3, bias=False)
            self.decoder.weight = self.encoder.weight

        def forward(self, x):
            return self.decoder(torch.tanh(self.encoder(x)))

    torch.manual_seed(0)
    model = Tied()
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    x = torch.randn(5, 3)
    for _ in range(3):
        opt.zero_grad()
        model(x).square().sum().backward()
        opt.step()
    path = trackpoint.Checkpoint(model=model, optimizer=opt).save(tmp_path / "ckpt")
    weight_keys = [k for k in keys(path) if "weight" in k]
    assert weight_keys == sorted(
        [var("model/encoder/weight")]
        + [slot("model/encoder/weight", s) for s in ("exp_avg", "exp_avg_sq", "step")]
    )

    torch.manual_seed(1)
    fresh = Tied()
    fresh_opt = torch.optim.Adam(fresh.parameters(), lr=0.1)
    trackpoint.Checkpoint(model=fresh, optimizer=fresh_opt).restore(path).assert_consumed()
    assert fresh.decoder.weight is fresh.encoder.weight
    assert torch.equal(fresh.encoder.weight, model.encoder.weight)
    assert_same_state(model, opt, fresh, fresh_opt)


def test_sgd_with_momentum_round_trip(tmp_path):
    model = make_model(seed=0)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True)
    train(model, opt, 4)
    path = trackpoint.Checkpoint(model=model, optimizer=opt).save(tmp_path / "ckpt")
    assert slot("model/0/weight", "momentum_buffer") in keys(path)

    fresh = make_model(seed=7)
    fresh_opt = torch.optim.SGD(fresh.parameters(), lr=0.05, momentum=0.9, nesterov=True)
    trackpoint.Checkpoint(model=fresh, optimizer=fresh_opt).restore(path).assert_consumed()
    assert_same_state(model, opt, fresh, fresh_opt)
    for a, b in zip(train(model, opt, 4), train(fresh, fresh_opt, 4)):
        assert torch.equal(a, b)
    assert_same_state(model, opt, fresh, fresh_opt)


def test_restore_into_a_fresh_optimizer_creates_its_state(tmp_path):
    model = make_model(seed=0)
    opt = torch.optim.Adam(model.parameters(), amsgrad=True)
    train(model, opt, 2)
    path = trackpoint.Checkpoint(model=model, optimizer=opt).save(tmp_path / "ckpt")

    fresh = make_model(seed=3)
    fresh_opt = torch.optim.Adam(fresh.parameters(), amsgrad=True)
    assert len(fresh_opt.state) == 0
    trackpoint.Checkpoint(model=fresh, optimizer=fresh_opt).restore(path).assert_consumed()
    state = fresh_opt.state[fresh[0].weight]
    assert sorted(state) == ["exp_avg", "exp_avg_sq", "max_exp_avg_sq", "step"]
    assert state["step"].dtype == torch.float32 and state["step"].device.type == "cpu"
    assert state["step"].shape == () and state["step"].item() == 2
    assert state["exp_avg"].shape == fresh[0].weight.shape
    assert_same_state(model, opt, fresh, fresh_opt)


def test_restore_into_a_stepped_optimizer_writes_in_place(tmp_path):
    model = make_model(seed=0)
    opt = torch.optim.Adam(model.parameters())
    train(model, opt, 3)
    path = trackpoint.Checkpoint(model=model, optimizer=opt).save(tmp_path / "ckpt")

    other = make_model(seed=5)
    other_opt = torch.optim.Adam(other.parameters())
    train(other, other_opt, 1)
    weight = other[0].weight
    exp_avg = other_opt.state[weight]["exp_avg"]
    trackpoint.Checkpoint(model=other, optimizer=other_opt).restore(path).assert_consumed()
    assert other[0].weight is weight and other_opt.state[weight]["exp_avg"] is exp_avg
    assert_same_state(model, opt, other, other_opt)


def test_cpu_tensors_are_read_straight_into_their_memory(tmp_path):
    source = torch.nn.Linear(3, 2)
    path = trackpoint.Checkpoint(model=source).write(tmp_path / "c")
    target = torch.nn.Linear(3, 2)
    adapter = torch_adapter.adapt(target.weight)
    buffer = adapter._restore_buffers()["VARIABLE_VALUE"]
    assert buffer.__array_interface__["data"][0] == target.weight.data_ptr()
    version = target.weight._version
    trackpoint.Checkpoint(model=target).read(path).assert_consumed()
    assert torch.equal(target.weight, source.weight)
    assert target.weight._version > version  # autograd sees the change
    # Tensors a restore cannot read into directly are copied.
    assert torch_adapter.adapt(target.weight.t())._restore_buffers() == {}


def test_optimizer_created_after_the_restore_receives_its_slots(tmp_path):
    model = make_model(seed=0)
    opt = torch.optim.Adam(model.parameters())
    train(model, opt, 3)
    path = trackpoint.Checkpoint(model=model, optimizer=opt).save(tmp_path / "ckpt")

    fresh = make_model(seed=1)
    ckpt = trackpoint.Checkpoint(model=fresh)
    status = ckpt.restore(path)
    status.assert_existing_objects_matched()
    fresh_opt = torch.optim.Adam(fresh.parameters())
    ckpt.optimizer = fresh_opt  # restored now, slots included
    status.assert_consumed()
    assert_same_state(model, opt, fresh, fresh_opt)


def test_state_replaced_by_load_state_dict_is_what_gets_saved(tmp_path):
    model = make_model(seed=0)
    opt = torch.optim.Adam(model.parameters())
    ckpt = trackpoint.Checkpoint(model=model, optimizer=opt)
    train(model, opt, 1)
    ckpt.write(tmp_path / "first")
    other = torch.optim.Adam(model.parameters())
    train(model, other, 2)
    opt.load_state_dict(other.state_dict())  # new state tensors
    path = ckpt.write(tmp_path / "second")
    reader = trackpoint.load_checkpoint(path)
    assert reader.get_tensor(slot("model/0/weight", "step")) == 2
    np.testing.assert_array_equal(
        reader.get_tensor(slot("model/0/weight", "exp_avg")),
        opt.state[model[0].weight]["exp_avg"].numpy(),
    )


def test_optimizer_without_its_model_needs_the_parameters(tmp_path):
    model = make_model(seed=0)
    opt = torch.optim.Adam(model.parameters())
    train(model, opt, 2)
    # Slots of parameters the checkpoint does not reach are skipped, as in TensorFlow.
    alone = trackpoint.Checkpoint(optimizer=opt).write(tmp_path / "alone")
    assert keys(alone) == [GRAPH, "optimizer/param_groups/.ATTRIBUTES/py_state"]
    # Passing the parameters saves them and their slots.
    path = trackpoint.Checkpoint(params=list(model.parameters()), optimizer=opt).write(
        tmp_path / "with_params"
    )
    assert slot("params/0", "exp_avg") in keys(path)
    fresh = make_model(seed=2)
    fresh_opt = torch.optim.Adam(fresh.parameters())
    trackpoint.Checkpoint(params=list(fresh.parameters()), optimizer=fresh_opt).read(
        path
    ).assert_consumed()
    for a, b in zip(model.parameters(), fresh.parameters()):
        assert torch.equal(a, b)
        assert torch.equal(opt.state[a]["exp_avg_sq"], fresh_opt.state[b]["exp_avg_sq"])


def test_python_number_state_stays_a_python_number(tmp_path):
    class CountingSGD(torch.optim.Optimizer):
        """A third-party style optimizer that counts steps in a Python int."""

        def __init__(self, params, lr):
            super().__init__(params, {"lr": lr})

        @torch.no_grad()
        def step(self):
            for group in self.param_groups:
                for p in group["params"]:
                    state = self.state[p]
                    state["step"] = state.get("step", 0) + 1
                    p.add_(p.grad, alpha=-group["lr"] / state["step"])

    model = torch.nn.Linear(2, 1)
    opt = CountingSGD(model.parameters(), lr=0.1)
    for _ in range(3):
        opt.zero_grad()
        model(torch.ones(1, 2)).sum().backward()
        opt.step()
    path = trackpoint.Checkpoint(model=model, optimizer=opt).write(tmp_path / "c")
    assert trackpoint.load_checkpoint(path).get_tensor(slot("model/weight", "step")) == 3
    fresh = torch.nn.Linear(2, 1)
    fresh_opt = CountingSGD(fresh.parameters(), lr=0.1)
    trackpoint.Checkpoint(model=fresh, optimizer=fresh_opt).read(path).assert_consumed()
    step = fresh_opt.state[fresh.weight]["step"]
    assert type(step) is int and step == 3


def test_bfloat16_module_round_trip(tmp_path):
    ml_dtypes = pytest.importorskip("ml_dtypes")
    torch.manual_seed(0)
    model = torch.nn.Linear(5, 3).to(torch.bfloat16)
    path = trackpoint.Checkpoint(model=model).write(tmp_path / "c")
    value = trackpoint.load_checkpoint(path).get_tensor(var("model/weight"))
    assert value.dtype == ml_dtypes.bfloat16 and value.shape == (3, 5)
    np.testing.assert_array_equal(
        value.view(np.int16), model.weight.detach().view(torch.int16).numpy()
    )
    fresh = torch.nn.Linear(5, 3).to(torch.bfloat16)
    trackpoint.Checkpoint(model=fresh).read(path).assert_consumed()
    assert fresh.weight.dtype == torch.bfloat16
    assert torch.equal(fresh.weight, model.weight) and torch.equal(fresh.bias, model.bias)


@pytest.mark.parametrize(
    "dtype",
    [
        torch.float16,
        torch.float64,
        torch.bool,
        torch.int8,
        torch.uint8,
        torch.int16,
        torch.int32,
        torch.int64,
        torch.complex64,
        torch.complex128,
    ],
)
def test_tensor_dtypes_round_trip(tmp_path, dtype):
    g = torch.Generator().manual_seed(0)
    source = (torch.randn(3, 4, generator=g) * 10).to(dtype)
    if dtype.is_complex:
        source = source + 1j * source.real.to(dtype)
    path = trackpoint.Checkpoint(t=source).write(tmp_path / "c")
    target = torch.zeros(3, 4, dtype=dtype)
    trackpoint.Checkpoint(t=target).read(path).assert_consumed()
    assert torch.equal(target, source)


def test_non_contiguous_and_conjugate_tensors_are_saved_by_value(tmp_path):
    base = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    z = torch.complex(base, base).conj()  # a lazily conjugated view
    path = trackpoint.Checkpoint(t=base.t(), z=z).write(tmp_path / "c")
    reader = trackpoint.load_checkpoint(path)
    np.testing.assert_array_equal(reader.get_tensor(var("t")), base.t().numpy())
    np.testing.assert_array_equal(reader.get_tensor(var("z")), z.resolve_conj().numpy())


def test_shape_mismatch_names_the_key(tmp_path):
    path = trackpoint.Checkpoint(model=torch.nn.Linear(3, 2)).write(tmp_path / "c")
    with pytest.raises(errors.InvalidArgumentError) as info:
        trackpoint.Checkpoint(model=torch.nn.Linear(2, 3)).read(path)
    message = str(info.value)
    assert f"'{var('model/weight')}'" in message
    assert "checkpoint has float32[2, 3], object has float32[3, 2]" in message


def test_dtype_mismatch_is_refused(tmp_path):
    path = trackpoint.Checkpoint(model=torch.nn.Linear(3, 2)).write(tmp_path / "c")
    with pytest.raises(errors.InvalidArgumentError, match="object has float64"):
        trackpoint.Checkpoint(model=torch.nn.Linear(3, 2).double()).read(path)


def test_param_group_count_mismatch_is_refused(tmp_path):
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    path = trackpoint.Checkpoint(model=model, optimizer=opt).write(tmp_path / "c")
    other = torch.nn.Linear(3, 2)
    two_groups = torch.optim.SGD([{"params": [other.weight]}, {"params": [other.bias]}], lr=0.1)
    with pytest.raises(errors.InvalidArgumentError, match="checkpoint has 1 groups"):
        trackpoint.Checkpoint(model=other, optimizer=two_groups).read(path)


def test_tensor_hyperparameters_are_restored_in_place(tmp_path):
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(model.parameters(), lr=torch.tensor(0.25))
    path = trackpoint.Checkpoint(model=model, optimizer=opt).write(tmp_path / "c")
    lr = torch.tensor(0.5)
    fresh = torch.nn.Linear(3, 2)
    fresh_opt = torch.optim.Adam(fresh.parameters(), lr=lr)
    trackpoint.Checkpoint(model=fresh, optimizer=fresh_opt).read(path).assert_consumed()
    assert fresh_opt.param_groups[0]["lr"] is lr and lr.item() == 0.25


def test_restore_into_cuda_tensors(tmp_path):
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    model = make_model(seed=0).cuda()
    opt = torch.optim.Adam(model.parameters())
    x, y = (t.cuda() for t in data())
    for _ in range(3):
        opt.zero_grad()
        torch.nn.functional.mse_loss(model(x), y).backward()
        opt.step()
    path = trackpoint.Checkpoint(model=model, optimizer=opt).save(tmp_path / "ckpt")
    fresh = make_model(seed=1).cuda()
    fresh_opt = torch.optim.Adam(fresh.parameters())
    trackpoint.Checkpoint(model=fresh, optimizer=fresh_opt).restore(path).assert_consumed()
    assert fresh[0].weight.device.type == "cuda"
    state = fresh_opt.state[fresh[0].weight]
    assert state["exp_avg"].device.type == "cuda" and state["step"].device.type == "cpu"
    assert_same_state(model, opt, fresh, fresh_opt)


def test_every_bfloat16_and_float8_bit_pattern_round_trips_through_each_bridge(tmp_path):
    """The one bit-view table (trackpoint.dtypes.TORCH_BIT_VIEWS) carries every
    bit pattern (NaN payloads, -0, subnormals) unchanged through the torch
    adapter, distributed's torch view, and convert's torch source and sink."""
    import ml_dtypes

    from trackpoint import convert
    from trackpoint.adapters.torch import from_numpy, to_numpy
    from trackpoint.distributed.sharded import torch_as_numpy

    cases = {"bfloat16": np.arange(1 << 16, dtype=np.uint32).astype(np.uint16)}
    for name in ("float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz", "float8_e5m2fnuz"):
        cases[name] = np.arange(256, dtype=np.uint16).astype(np.uint8)
    for name, bits in cases.items():
        tensor = torch.from_numpy(bits.copy()).view(getattr(torch, name))
        array = to_numpy(tensor)
        assert array.dtype == np.dtype(getattr(ml_dtypes, name))
        assert array.view(bits.dtype).tobytes() == bits.tobytes(), name
        assert torch_as_numpy(tensor).view(bits.dtype).tobytes() == bits.tobytes(), name
        back = from_numpy(array)
        assert back.dtype == getattr(torch, name)
        assert back.view(getattr(torch, f"int{8 * bits.itemsize}")).numpy().view(
            bits.dtype).tobytes() == bits.tobytes(), name
        # torch file -> trackpoint checkpoint -> torch file.
        source = tmp_path / f"{name}.pt"
        torch.save({"w": tensor}, source)
        convert.convert(str(source), str(tmp_path / f"{name}-ckpt"))
        convert.convert(str(tmp_path / f"{name}-ckpt"), str(tmp_path / f"{name}-out.pt"))
        out = torch.load(tmp_path / f"{name}-out.pt", weights_only=True)
        (value,) = out.values()
        assert value.dtype == getattr(torch, name)
        assert value.view(getattr(torch, f"int{8 * bits.itemsize}")).numpy().view(
            bits.dtype).tobytes() == bits.tobytes(), name
