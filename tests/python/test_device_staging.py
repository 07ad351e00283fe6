"""Device tensors saved and restored through host staging (trackpoint._device).

Everything here but the `gpu` tests runs without a GPU: a "fake" device is
host memory that the staging layer treats as device memory (the fake
backend's copies run on worker threads, asynchronously, as a GPU's would).
"""

import os

import numpy as np
import pytest

import trackpoint
from trackpoint import _core
from trackpoint._async import StagingPool as SnapshotPool
from trackpoint._device import DeviceBuffer, StagedTensor
from trackpoint.adapters.dlpack import DLPackArray
from trackpoint.bundle import BundleReader, BundleWriter
from trackpoint.errors import DataLossError, InvalidArgumentError, UnavailableError
from trackpoint.trackable.base import Trackable

from dlpack_util import DLPackCudaArray

CHUNK = 4096  # the staging pool's buffer size in these tests
SIZES = [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 10 * CHUNK + 7]
KEY = "v/.ATTRIBUTES/VARIABLE_VALUE"


@pytest.fixture(autouse=True)
def small_pool():
    """3 pinned buffers of 4 KiB per device, so small tensors take many chunks."""
    before = _core.device_staging_pool()
    _core.set_device_staging_pool(3, CHUNK)
    yield
    _core.set_device_staging_pool(*before)


def pattern(n, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=n, dtype=np.uint8)


def fake_buffer(host, dtype=None, shape=None):
    """A DeviceBuffer of kind "fake" over a host array."""
    return DeviceBuffer(host.ctypes.data, host.nbytes, dtype or host.dtype,
                        host.shape if shape is None else shape, kind="fake", keepalive=host)


class FakeDeviceVar(Trackable):
    """A variable whose value lives in (fake) device memory: saved from a
    DeviceBuffer, restored by a read straight into one."""

    def __init__(self, host, dtype=None, shape=None, specs=True):
        self.host = host  # the "device memory"
        self.dtype = trackpoint.dtypes.as_dtype(dtype or host.dtype)
        self.shape = host.shape if shape is None else tuple(shape)
        self.specs = specs
        self.received = None

    def buffer(self):
        return fake_buffer(self.host, self.dtype, self.shape)

    def _serialize_to_tensors(self):
        return {"VARIABLE_VALUE": self.buffer()}

    def _tensor_names(self):
        return ["VARIABLE_VALUE"]

    def _tensor_specs(self):
        return {"VARIABLE_VALUE": (self.dtype, self.shape)} if self.specs else {}

    def _restore_buffers(self):
        self.offered = self.buffer()
        return {"VARIABLE_VALUE": self.offered}

    def _restore_from_tensors(self, tensors):
        self.received = tensors["VARIABLE_VALUE"]


def files(prefix):
    d = os.path.dirname(prefix)
    return sorted(os.listdir(d))


# ---- Checkpoint round trips ------------------------------------------------------------
@pytest.mark.parametrize("n", SIZES)
def test_fake_device_round_trip_is_byte_exact_and_writes_the_same_files(tmp_path, n):
    host = pattern(n, seed=n)
    var = FakeDeviceVar(host.copy())
    trackpoint.Checkpoint(v=var).write(tmp_path / "device")
    trackpoint.Checkpoint(v=host.copy()).write(tmp_path / "host")
    for suffix in (".index", ".data-00000-of-00001"):
        assert (tmp_path / f"device{suffix}").read_bytes() == (tmp_path / f"host{suffix}").read_bytes()

    var.host[:] = 0
    trackpoint.Checkpoint(v=var).read(tmp_path / "device").assert_consumed()
    assert var.host.tobytes() == host.tobytes()
    assert var.received is var.offered  # read straight into the device buffer


def test_multi_chunk_float_tensor_and_bfloat16_without_a_numpy_type(tmp_path):
    weights = np.random.default_rng(1).standard_normal((37, 301)).astype(np.float32)
    bits = pattern(2 * 5 * CHUNK, seed=2).view(np.uint16).reshape(5, CHUNK)  # bfloat16 bits
    w = FakeDeviceVar(weights.copy())
    b = FakeDeviceVar(bits.copy(), dtype="bfloat16")
    path = trackpoint.Checkpoint(w=w, b=b).save(tmp_path / "ckpt")
    reader = trackpoint.load_checkpoint(path)
    assert reader.get_variable_to_dtype_map()["b/.ATTRIBUTES/VARIABLE_VALUE"] == "bfloat16"
    np.testing.assert_array_equal(reader.get_tensor("w/.ATTRIBUTES/VARIABLE_VALUE"), weights)

    w.host[:] = 0
    b.host[:] = 0
    trackpoint.Checkpoint(w=w, b=b).restore(path).assert_consumed()
    np.testing.assert_array_equal(w.host, weights)
    assert b.host.tobytes() == bits.tobytes()


def test_device_destination_still_checks_dtype_and_shape(tmp_path):
    trackpoint.Checkpoint(v=FakeDeviceVar(pattern(12))).write(tmp_path / "ckpt")
    wrong = FakeDeviceVar(np.zeros(3, np.float32))
    with pytest.raises(InvalidArgumentError, match=r"checkpoint has uint8\[12\], object has float32\[3\]"):
        trackpoint.Checkpoint(v=wrong).read(tmp_path / "ckpt")
    # Without specs, a mismatching device buffer is passed over: the value
    # arrives as a host array.
    loose = FakeDeviceVar(np.zeros(3, np.float32), specs=False)
    trackpoint.Checkpoint(v=loose).read(tmp_path / "ckpt")
    assert isinstance(loose.received, np.ndarray)
    assert loose.received.tobytes() == pattern(12).tobytes()
    assert not loose.host.any()


def test_crc_mismatch_on_restore_into_device_memory_names_key_and_file(tmp_path):
    host = pattern(7 * CHUNK + 5, seed=3)
    prefix = str(tmp_path / "ckpt")
    trackpoint.Checkpoint(v=FakeDeviceVar(host.copy())).write(prefix)
    data = tmp_path / "ckpt.data-00000-of-00001"
    raw = bytearray(data.read_bytes())
    raw[4 * CHUNK + 1] ^= 0x01  # inside the fifth chunk
    data.write_bytes(bytes(raw))
    var = FakeDeviceVar(np.zeros_like(host))
    with pytest.raises(DataLossError) as e:
        trackpoint.Checkpoint(v=var).read(prefix)
    assert KEY in str(e.value)
    assert str(data) in str(e.value)


# ---- async saves --------------------------------------------------------------------------
def test_async_save_snapshots_device_values_before_returning(tmp_path):
    host = pattern(6 * CHUNK + 1, seed=4)
    var = FakeDeviceVar(host.copy())
    ckpt = trackpoint.Checkpoint(v=var)
    options = trackpoint.CheckpointOptions(enable_async=True)
    path = ckpt.save(tmp_path / "ckpt", options=options)
    var.host[:] = 0  # the training step goes on at once
    ckpt.sync()
    assert trackpoint.load_variable(path, KEY).tobytes() == host.tobytes()

    var.host[:] = 7  # a second save reuses the pooled host buffer
    path2 = ckpt.save(tmp_path / "ckpt", options=options)
    ckpt.sync()
    assert (trackpoint.load_variable(path2, KEY) == 7).all()


def test_snapshot_pool_stages_device_values_into_pooled_host_buffers():
    pool = SnapshotPool()
    host = pattern(3 * CHUNK, seed=5)
    staged = pool.copy("k", fake_buffer(host, "bfloat16", (3 * CHUNK // 2,)))
    assert isinstance(staged, StagedTensor)
    assert staged.dtype == "bfloat16" and staged.shape == (3 * CHUNK // 2,)
    assert staged.data.tobytes() == host.tobytes()
    host[:] = 1
    again = pool.copy("k", fake_buffer(host, "bfloat16", (3 * CHUNK // 2,)))
    assert again.data is staged.data  # the same pooled buffer
    assert (again.data == 1).all()


# ---- the bundle layer -----------------------------------------------------------------
def test_bundle_writer_and_reader_take_device_buffers(tmp_path):
    host = np.arange(3 * CHUNK, dtype=np.int32).reshape(3, CHUNK)
    with BundleWriter(tmp_path / "b") as w:
        w.add("single", fake_buffer(host))
        w.add_many([("many", fake_buffer(host[1]), None), ("plain", host, None)])
        with pytest.raises(InvalidArgumentError, match="'cast'.*int32 device memory"):
            w.add_many([("cast", fake_buffer(host), "float32")])
    r = BundleReader(tmp_path / "b")
    np.testing.assert_array_equal(r.read("single"), host)
    np.testing.assert_array_equal(r.read("many"), host[1])
    out = np.zeros_like(host)
    row = np.zeros_like(host[0])
    r.read_into_many([("single", fake_buffer(out)), ("many", fake_buffer(row))])
    np.testing.assert_array_equal(out, host)
    np.testing.assert_array_equal(row, host[1])
    assert np.asarray(fake_buffer(host)).tolist() == host.tolist()  # DeviceBuffer.__array__


def test_device_buffer_rejects_bad_arguments():
    with pytest.raises(InvalidArgumentError, match="unknown device kind"):
        DeviceBuffer(1, 4, "float32", (1,), kind="tpu")
    with pytest.raises(InvalidArgumentError, match="bad device buffer"):
        DeviceBuffer(0, 4, "float32", (1,), kind="fake")
    host = np.zeros(4, np.float32)
    with pytest.raises(InvalidArgumentError):
        fake_buffer(host).copy_to_host(np.zeros(3, np.uint8))


# ---- no CUDA runtime here -------------------------------------------------------------
needs_no_cuda = pytest.mark.skipif(_core.cuda_available(), reason="a CUDA runtime and GPU are present")


@needs_no_cuda
def test_cuda_tensor_without_a_runtime_is_a_clear_error_and_leaves_no_file(tmp_path):
    host = pattern(64)
    cuda = DeviceBuffer(host.ctypes.data, host.nbytes, "uint8", (64,), kind="cuda", keepalive=host)
    reason = _core.cuda_unavailable_reason()
    assert reason
    with pytest.raises(UnavailableError) as e, BundleWriter(tmp_path / "ckpt") as w:
        w.add_many([("plain", host, None), ("model/w", cuda, None)])
    assert "cannot save tensor 'model/w' from cuda:0" in str(e.value)
    assert reason in str(e.value)
    assert os.listdir(tmp_path) == []

    trackpoint.Checkpoint(v=host).write(tmp_path / "ok")
    with pytest.raises(UnavailableError, match=f"cannot restore tensor '{KEY}' into cuda:0"):
        BundleReader(tmp_path / "ok").read_into_many([(KEY, cuda)])
    assert host.tobytes() == pattern(64).tobytes()  # untouched


# ---- DLPack ---------------------------------------------------------------------------------
@pytest.fixture
def fake_cuda_staging(monkeypatch):
    """DLPack's CUDA memory staged by the fake backend (host memory)."""
    from trackpoint.adapters import dlpack

    monkeypatch.setitem(dlpack._STAGING_KIND, 2, "fake")


@pytest.mark.parametrize("n", [1, CHUNK + 1, 10 * CHUNK + 7])
def test_dlpack_cuda_array_round_trip_through_staging(tmp_path, fake_cuda_staging, n):
    host = np.random.default_rng(n).standard_normal(n).astype(np.float32)
    array = DLPackCudaArray(host.copy(), code=2, bits=32)
    ckpt = trackpoint.Checkpoint(w=DLPackArray(array))
    path = ckpt.save(tmp_path / "ckpt")
    np.testing.assert_array_equal(trackpoint.load_variable(path, "w/.ATTRIBUTES/VARIABLE_VALUE"), host)
    array.host[:] = 0
    ckpt.restore(path).assert_consumed()
    np.testing.assert_array_equal(array.host, host)


def test_dlpack_bfloat16_and_non_contiguous_cuda_arrays(tmp_path, fake_cuda_staging):
    bits = pattern(2 * 3 * CHUNK, seed=6).view(np.uint16).reshape(3, CHUNK)
    array = DLPackCudaArray(bits.copy(), code=4, bits=16)
    path = trackpoint.Checkpoint(b=DLPackArray(array)).write(tmp_path / "ckpt")
    reader = trackpoint.load_checkpoint(path)
    assert reader.get_variable_to_dtype_map()["b/.ATTRIBUTES/VARIABLE_VALUE"] == "bfloat16"
    array.host[:] = 0
    trackpoint.Checkpoint(b=DLPackArray(array)).read(path).assert_consumed()
    assert array.host.tobytes() == bits.tobytes()

    strided = DLPackCudaArray(np.zeros((4, 4), np.float32), code=2, bits=32, strides=(1, 4))
    with pytest.raises(InvalidArgumentError, match="non-contiguous"):
        trackpoint.Checkpoint(t=DLPackArray(strided)).write(tmp_path / "nc")


@needs_no_cuda
def test_dlpack_cuda_array_without_a_runtime_is_a_clear_error(tmp_path):
    array = DLPackCudaArray(np.zeros(8, np.float32), code=2, bits=32)
    with pytest.raises(UnavailableError, match="cannot save tensor 'w/.ATTRIBUTES/VARIABLE_VALUE'"):
        trackpoint.Checkpoint(w=DLPackArray(array)).write(tmp_path / "ckpt")
    assert os.listdir(tmp_path) == []


def test_dlpack_cpu_arrays_go_through_numpy_and_restore_in_place(tmp_path):
    values = np.arange(12, dtype=np.int64).reshape(3, 4)
    live = values.copy()
    ckpt = trackpoint.Checkpoint(a=DLPackArray(live))
    path = ckpt.write(tmp_path / "ckpt")
    np.testing.assert_array_equal(trackpoint.load_variable(path, "a/.ATTRIBUTES/VARIABLE_VALUE"), values)
    live[:] = 0
    ckpt.read(path).assert_consumed()
    np.testing.assert_array_equal(live, values)


def test_dlpack_torch_cpu_tensor_restores_in_place(tmp_path):
    torch = pytest.importorskip("torch")
    t = torch.arange(10, dtype=torch.float32)
    path = trackpoint.Checkpoint(t=DLPackArray(t)).write(tmp_path / "ckpt")
    t.zero_()
    trackpoint.Checkpoint(t=DLPackArray(t)).read(path).assert_consumed()
    assert t.tolist() == list(range(10))


def test_dlpack_rejects_objects_without_the_protocol():
    with pytest.raises(TypeError, match="not a DLPack array"):
        DLPackArray([1, 2, 3])


# ---- real GPUs ----------------------------------------------------------------------------
def _cuda_torch():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU (torch.cuda)")
    return torch


@pytest.mark.gpu
def test_torch_cuda_module_and_adam_round_trip(tmp_path):
    torch = _cuda_torch()
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(64, 300), torch.nn.ReLU(),
                                torch.nn.Linear(300, 10)).cuda()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(3):
        opt.zero_grad()
        model(torch.randn(8, 64, device="cuda")).square().sum().backward()
        opt.step()
    saved = {k: v.clone() for k, v in model.state_dict().items()}
    saved_opt = {(i, k): v.clone() for i, p in enumerate(model.parameters())
                 for k, v in opt.state[p].items()}
    ckpt = trackpoint.Checkpoint(model=model, optimizer=opt)
    path = ckpt.save(tmp_path / "ckpt")

    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        for state in opt.state.values():
            for v in state.values():
                v.zero_()
    ckpt.restore(path).assert_consumed()
    for k, v in model.state_dict().items():
        assert v.is_cuda and torch.equal(v, saved[k]), k
    for i, p in enumerate(model.parameters()):
        for k, v in opt.state[p].items():
            assert torch.equal(v, saved_opt[(i, k)]), (i, k)

    # A fresh model and optimizer on the GPU restore the same values.
    model2 = torch.nn.Sequential(torch.nn.Linear(64, 300), torch.nn.ReLU(),
                                 torch.nn.Linear(300, 10)).cuda()
    opt2 = torch.optim.Adam(model2.parameters(), lr=1e-3)
    trackpoint.Checkpoint(model=model2, optimizer=opt2).restore(path).assert_consumed()
    for k, v in model2.state_dict().items():
        assert torch.equal(v, saved[k]), k


@pytest.mark.gpu
def test_torch_cuda_bfloat16_non_contiguous_and_async(tmp_path):
    torch = _cuda_torch()
    big = torch.randn(1024, 3000, device="cuda").to(torch.bfloat16)  # 6 MB
    transposed = torch.randn(300, 200, device="cuda").t()  # not contiguous
    ckpt = trackpoint.Checkpoint(big=big, transposed=transposed)
    path = ckpt.save(tmp_path / "ckpt", options=trackpoint.CheckpointOptions(enable_async=True))
    expected_big, expected_t = big.clone(), transposed.clone()
    big.zero_()  # after save() returned: the snapshot is taken
    ckpt.sync()
    big.fill_(1)
    transposed.zero_()
    ckpt.restore(path).assert_consumed()
    assert torch.equal(big, expected_big)
    assert torch.equal(transposed, expected_t)


# ---- the torch adapter's staging path, with CPU tensors posing as device tensors ----------
@pytest.fixture
def torch_cpu_as_device(monkeypatch):
    """The torch adapter stages CPU tensors through the fake backend, as it
    stages CUDA tensors through the CUDA runtime."""
    torch = pytest.importorskip("torch")
    from trackpoint.adapters import torch_bridge

    monkeypatch.setattr(torch_bridge, "_is_staged", lambda t: t.device.type == "cpu")
    monkeypatch.setattr(torch_bridge, "_STAGING_KIND", "fake")
    return torch


def _trained_model_and_adam(torch):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(16, 300), torch.nn.ReLU(), torch.nn.Linear(300, 4))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(2):
        opt.zero_grad()
        model(torch.randn(5, 16)).square().sum().backward()
        opt.step()
    return model, opt


def test_torch_adapter_staging_path_writes_the_same_files_and_restores_in_place(
        tmp_path, monkeypatch):
    torch = pytest.importorskip("torch")
    model, opt = _trained_model_and_adam(torch)
    trackpoint.Checkpoint(model=model, optimizer=opt).write(tmp_path / "plain")

    from trackpoint.adapters import torch as adapter
    from trackpoint.adapters import torch_bridge
    monkeypatch.setattr(torch_bridge, "_is_staged", lambda t: t.device.type == "cpu")
    monkeypatch.setattr(torch_bridge, "_STAGING_KIND", "fake")
    staged = adapter.adapt(model[0].weight)._serialize_to_tensors()["VARIABLE_VALUE"]
    assert isinstance(staged, DeviceBuffer) and staged.ptr == model[0].weight.data_ptr()
    ckpt = trackpoint.Checkpoint(model=model, optimizer=opt)
    ckpt.write(tmp_path / "staged")
    for suffix in (".index", ".data-00000-of-00001"):
        assert (tmp_path / f"staged{suffix}").read_bytes() == (tmp_path / f"plain{suffix}").read_bytes()

    saved = {k: v.clone() for k, v in model.state_dict().items()}
    saved_opt = [{k: v.clone() for k, v in opt.state[p].items()} for p in model.parameters()]
    pointers = [p.data_ptr() for p in model.parameters()]
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        for state in opt.state.values():
            for v in state.values():
                v.zero_()
    ckpt.read(tmp_path / "staged").assert_consumed()
    assert [p.data_ptr() for p in model.parameters()] == pointers
    for k, v in model.state_dict().items():
        assert torch.equal(v, saved[k]), k
    for p, state in zip(model.parameters(), saved_opt):
        for k, v in state.items():
            assert torch.equal(opt.state[p][k], v), k


def test_torch_adapter_staging_non_contiguous_and_bfloat16(tmp_path, torch_cpu_as_device):
    torch = torch_cpu_as_device
    base = torch.randn(300, 200)
    transposed = base.t()  # not contiguous: staged from a contiguous copy
    bf16 = torch.randn(40, 500).to(torch.bfloat16)  # 40 KB: ten chunks
    ckpt = trackpoint.Checkpoint(transposed=transposed, bf16=bf16)
    path = ckpt.write(tmp_path / "ckpt")
    expected_t, expected_b = transposed.clone(), bf16.clone()
    np.testing.assert_array_equal(
        trackpoint.load_variable(path, "transposed/.ATTRIBUTES/VARIABLE_VALUE"), expected_t.numpy())
    transposed.zero_()
    bf16.zero_()
    ckpt.read(path).assert_consumed()  # the transposed one through a scratch tensor
    assert torch.equal(transposed, expected_t) and transposed.data_ptr() == base.data_ptr()
    assert torch.equal(bf16, expected_b)


def test_torch_adapter_async_save_snapshots_staged_tensors(tmp_path, torch_cpu_as_device):
    torch = torch_cpu_as_device
    w = torch.arange(3 * CHUNK, dtype=torch.float32)
    ckpt = trackpoint.Checkpoint(w=w)
    path = ckpt.save(tmp_path / "ckpt", options=trackpoint.CheckpointOptions(enable_async=True))
    w.zero_()
    ckpt.sync()
    np.testing.assert_array_equal(trackpoint.load_variable(path, "w/.ATTRIBUTES/VARIABLE_VALUE"),
                                  np.arange(3 * CHUNK, dtype=np.float32))
