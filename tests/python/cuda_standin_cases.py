"""Checkpoints of CUDA tensors over the CUDA runtime stand-in.

Not collected on its own: test_cuda_standin.py builds the stand-in
(tests/cuda_standin/cudart_standin.cc) as libcudart.so and runs this file in
a child pytest with its folder first in LD_LIBRARY_PATH, so that trackpoint's
CudaBackend loads it as it would load the real runtime. "Device memory" is
then host memory from the stand-in's cudaMalloc, which these tests read and
write directly to check what staging did; the stand-in counts every breach
of CUDA's rules, and each test ends by asserting there was none.
"""

import ctypes
import os

import numpy as np
import pytest

import trackpoint
from trackpoint import _core
from trackpoint._device import DeviceBuffer
from trackpoint.adapters.dlpack import DLPackArray
from trackpoint.errors import InternalError, InvalidArgumentError
from trackpoint.trackable.base import Trackable

if os.environ.get("TRACKPOINT_CUDA_STANDIN") != "1":
    pytest.skip("run by test_cuda_standin.py, over the stand-in runtime", allow_module_level=True)

from dlpack_util import DLPackCudaArray  # noqa: E402

CHUNK = 4096  # the staging pool's buffer size here
KEY = "VARIABLE_VALUE"

runtime = ctypes.CDLL("libcudart.so")  # the library trackpoint loaded too
runtime.cudaMalloc.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_size_t]
runtime.cudaFree.argtypes = [ctypes.c_void_p]
runtime.cudaGetDevice.argtypes = [ctypes.POINTER(ctypes.c_int)]
runtime.cudart_standin_counter.restype = ctypes.c_longlong
runtime.cudart_standin_counter.argtypes = [ctypes.c_char_p]
runtime.cudart_standin_violations.argtypes = [ctypes.c_char_p, ctypes.c_size_t]


@pytest.fixture(autouse=True)
def keeps_cudas_rules():
    """A small pool (many chunks per tensor), and no breach of CUDA's rules."""
    runtime.cudart_standin_reset()
    before = _core.device_staging_pool()
    _core.set_device_staging_pool(3, CHUNK)
    yield
    _core.set_device_staging_pool(*before)
    first = ctypes.create_string_buffer(512)
    assert runtime.cudart_standin_violations(first, 512) == 0, first.value.decode()


def current_device() -> int:
    device = ctypes.c_int(-1)
    assert runtime.cudaGetDevice(ctypes.byref(device)) == 0
    return device.value


class CudaMemory:
    """n bytes from the stand-in's cudaMalloc on `device`, with a numpy view."""

    def __init__(self, values: np.ndarray, device: int = 0):
        self.device = device
        self.nbytes = values.nbytes
        ptr = ctypes.c_void_p()
        if device != 0:
            assert runtime.cudaSetDevice(device) == 0
        assert runtime.cudaMalloc(ctypes.byref(ptr), self.nbytes) == 0
        if device != 0:
            assert runtime.cudaSetDevice(0) == 0
        self.ptr = ptr.value
        raw = (ctypes.c_uint8 * self.nbytes).from_address(self.ptr)
        self.view = np.frombuffer(raw, dtype=values.dtype).reshape(values.shape)
        self.view[...] = values

    def buffer(self, dtype=None) -> DeviceBuffer:
        return DeviceBuffer(self.ptr, self.nbytes, dtype or self.view.dtype, self.view.shape,
                            kind="cuda", index=self.device, keepalive=self)


class CudaVar(Trackable):
    """A variable in (stand-in) CUDA memory: saved from a DeviceBuffer,
    restored by a read straight into it."""

    def __init__(self, memory: CudaMemory, dtype=None):
        self.memory = memory
        self.dtype = dtype

    def _serialize_to_tensors(self):
        return {KEY: self.memory.buffer(self.dtype)}

    def _tensor_names(self):
        return [KEY]

    def _tensor_specs(self):
        dtype = trackpoint.dtypes.as_dtype(self.dtype or self.memory.view.dtype)
        return {KEY: (dtype, self.memory.view.shape)}

    def _restore_buffers(self):
        return {KEY: self.memory.buffer(self.dtype)}

    def _restore_from_tensors(self, tensors):
        assert isinstance(tensors[KEY], DeviceBuffer)  # read in place


def values(n, seed, dtype=np.float32):
    return np.random.default_rng(seed).standard_normal(n).astype(dtype)


def test_the_runtime_is_the_standin_and_available():
    assert _core.cuda_unavailable_reason() == ""
    assert runtime.cudart_standin_counter(b"copies") == 0


def test_checkpoint_round_trip_of_cuda_tensors(tmp_path):
    big = CudaMemory(values(10 * CHUNK + 7, 1))  # 41 chunks
    small = CudaMemory(np.arange(3, dtype=np.int8))
    bf16 = CudaMemory(np.random.default_rng(2).integers(0, 1 << 16, 300, dtype=np.uint16))
    expected = {name: m.view.copy() for name, m in
                [("big", big), ("small", small), ("bf16", bf16)]}
    ckpt = trackpoint.Checkpoint(big=CudaVar(big), small=CudaVar(small),
                                 bf16=CudaVar(bf16, dtype="bfloat16"))
    path = ckpt.save(tmp_path / "ckpt")

    reader = trackpoint.load_checkpoint(path)
    assert reader.get_variable_to_dtype_map()[f"bf16/.ATTRIBUTES/{KEY}"] == "bfloat16"
    np.testing.assert_array_equal(reader.get_tensor(f"big/.ATTRIBUTES/{KEY}"), expected["big"])
    np.testing.assert_array_equal(reader.get_tensor(f"small/.ATTRIBUTES/{KEY}"),
                                  expected["small"])
    assert reader.get_tensor(f"bf16/.ATTRIBUTES/{KEY}").tobytes() == expected["bf16"].tobytes()
    copies = runtime.cudart_standin_counter(b"copies")
    assert copies == 41 + 1 + 1  # one cudaMemcpyAsync per chunk

    for memory in (big, small, bf16):
        memory.view[...] = 0
    ckpt.restore(path).assert_consumed()
    for name, memory in [("big", big), ("small", small), ("bf16", bf16)]:
        assert memory.view.tobytes() == expected[name].tobytes(), name
    assert runtime.cudart_standin_counter(b"copies") == 2 * copies
    assert runtime.cudart_standin_counter(b"max_in_flight") >= 2  # copies overlapped


def test_async_save_snapshots_cuda_tensors_before_returning(tmp_path):
    memory = CudaMemory(values(5 * CHUNK, 3))
    expected = memory.view.copy()
    ckpt = trackpoint.Checkpoint(w=CudaVar(memory))
    path = ckpt.save(tmp_path / "ckpt",
                     options=trackpoint.CheckpointOptions(enable_async=True))
    memory.view[...] = -1  # training goes on
    ckpt.sync()
    np.testing.assert_array_equal(trackpoint.load_variable(path, f"w/.ATTRIBUTES/{KEY}"), expected)


def test_dlpack_cuda_array_restores_in_place(tmp_path):
    memory = CudaMemory(values(3 * CHUNK + 1, 4))
    expected = memory.view.copy()
    array = DLPackCudaArray(memory.view, code=2, bits=32)  # a CuPy array, say
    path = trackpoint.Checkpoint(w=DLPackArray(array)).write(tmp_path / "ckpt")
    memory.view[...] = 0
    trackpoint.Checkpoint(w=DLPackArray(array)).read(path).assert_consumed()
    np.testing.assert_array_equal(memory.view, expected)


def test_tensors_on_a_second_device(tmp_path):
    memory = CudaMemory(values(4 * CHUNK, 5), device=1)
    expected = memory.view.copy()
    ckpt = trackpoint.Checkpoint(w=CudaVar(memory))
    path = ckpt.write(tmp_path / "ckpt")
    memory.view[...] = 0
    ckpt.read(path).assert_consumed()
    np.testing.assert_array_equal(memory.view, expected)
    assert current_device() == 0  # staging put the caller's device back
    # The stand-in would have counted a stream, event or copy of device 0
    # touching device 1's memory.


def test_a_failed_copy_fails_the_save_and_leaves_no_files(tmp_path):
    memory = CudaMemory(values(5 * CHUNK, 6))
    runtime.cudart_standin_fail_copy(3, 719, 0)  # a GPU fault, reported on sync
    with pytest.raises(InternalError, match="unspecified launch failure") as raised:
        trackpoint.Checkpoint(w=CudaVar(memory)).write(tmp_path / "ckpt")
    assert "w/.ATTRIBUTES/VARIABLE_VALUE" in str(raised.value)
    assert "chunk 3 of 20" in str(raised.value)
    assert os.listdir(tmp_path) == []


def test_host_memory_posing_as_cuda_memory_is_refused(tmp_path):
    host = np.zeros(100, np.float32)
    buffer = DeviceBuffer(host.ctypes.data, host.nbytes, "float32", host.shape, kind="cuda",
                          keepalive=host)
    with pytest.raises(InvalidArgumentError, match="cudaMemcpyAsync .*invalid argument"):
        buffer.copy_to_host()


def test_device_buffer_copies_both_ways():
    memory = CudaMemory(np.zeros(2 * CHUNK + 3, np.uint8))
    data = np.random.default_rng(7).integers(0, 256, memory.nbytes, dtype=np.uint8)
    buffer = memory.buffer()
    buffer.copy_from_host(data)
    np.testing.assert_array_equal(memory.view, data)
    np.testing.assert_array_equal(np.asarray(buffer), data)
