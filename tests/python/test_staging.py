"""Host staging through the _core bindings: the fake backend everywhere, CUDA where a GPU is."""

import gc

import numpy as np
import pytest

from trackpoint import _core, _core_testing
from trackpoint.errors import CheckpointError, UnavailableError

CHUNK = 4096


def pattern(n, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=n, dtype=np.uint8)


@pytest.fixture
def fake():
    backend = _core_testing.make_backend("fake")
    return backend, _core_testing.make_pool(backend, 3, CHUNK)


@pytest.mark.parametrize("n", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 10 * CHUNK + 7])
def test_fake_round_trip(fake, n):
    backend, pool = fake
    source = pattern(n, seed=n)
    assert _core_testing.stage_to_bytes(backend, pool, source.ctypes.data, n) == source.tobytes()

    target = np.zeros(n + 1, dtype=np.uint8)  # one guard byte past the end
    _core_testing.stage_from_bytes(backend, pool, target.ctypes.data, source.tobytes())
    assert target[:n].tobytes() == source.tobytes()
    assert target[n] == 0
    assert pool.num_free == 3


def test_fake_backend_and_pool_properties(fake):
    backend, pool = fake
    assert backend.name == "fake"
    assert (pool.num_buffers, pool.buffer_bytes, pool.num_free) == (3, CHUNK, 3)


def test_pool_keeps_its_backend_alive():
    pool = _core_testing.make_pool(_core_testing.make_backend("fake"), 2, CHUNK)
    gc.collect()  # the pool holds the only reference to its backend
    source = pattern(3 * CHUNK)
    assert _core_testing.stage_to_bytes(pool.backend, pool, source.ctypes.data, source.size) == (
        source.tobytes()
    )


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="expected 'fake' or 'cuda'"):
        _core_testing.make_backend("tpu")
    backend = _core_testing.make_backend("fake")
    with pytest.raises(ValueError):
        _core_testing.make_pool(backend, 0, CHUNK)
    pool = _core_testing.make_pool(backend, 2, CHUNK)
    other = _core_testing.make_backend("fake")
    with pytest.raises(ValueError, match="belongs to backend"):
        _core_testing.stage_to_bytes(other, pool, pattern(8).ctypes.data, 8)
    with pytest.raises(ValueError, match="null device pointer"):
        _core_testing.stage_to_bytes(backend, pool, 0, 8)


@pytest.mark.parametrize("at_enqueue", [False, True])
def test_injected_copy_failure_raises(at_enqueue):
    backend = _core_testing.make_fake_backend(fail_after_copies=2, fail_at_enqueue=at_enqueue)
    pool = _core_testing.make_pool(backend, 2, CHUNK)
    source = pattern(5 * CHUNK)
    with pytest.raises(CheckpointError, match="injected copy failure"):
        _core_testing.stage_to_bytes(backend, pool, source.ctypes.data, source.size)
    assert pool.num_free == 2


def test_bandwidth_probes_run_on_the_fake_backend(fake):
    backend, pool = fake
    source = pattern(64 * CHUNK)
    for crc in (False, True):
        assert _core_testing.d2h_bandwidth(backend, pool, source.ctypes.data, source.size, 2, crc) > 0
        assert (
            _core_testing.plain_pinned_copy_bandwidth(backend, source.ctypes.data, source.size, 2, crc) > 0
        )


def _has_cuda_gpu():
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def test_cuda_availability_is_reported():
    available = _core.cuda_available()
    reason = _core.cuda_unavailable_reason()
    if available:
        assert reason == ""
        return
    # No GPU on the machines the suite normally runs on: the reason names the
    # runtime library, whether it is missing or found without a driver/GPU.
    assert "libcudart" in reason
    assert not _has_cuda_gpu()
    with pytest.raises(UnavailableError) as excinfo:
        _core_testing.make_backend("cuda")
    assert reason in str(excinfo.value)


@pytest.mark.gpu
@pytest.mark.skipif(not _has_cuda_gpu(), reason="needs torch with a CUDA GPU")
def test_cuda_round_trip():
    import torch

    assert _core.cuda_available(), _core.cuda_unavailable_reason()
    backend = _core_testing.make_backend("cuda", 0)
    pool = _core_testing.make_pool(backend, 3, 1 << 20)
    n = 10 * (1 << 20) + 7
    source = torch.from_numpy(pattern(n)).cuda()
    torch.cuda.synchronize()
    assert (
        _core_testing.stage_to_bytes(backend, pool, source.data_ptr(), n) == source.cpu().numpy().tobytes()
    )

    target = torch.zeros(n, dtype=torch.uint8, device="cuda")
    torch.cuda.synchronize()
    _core_testing.stage_from_bytes(backend, pool, target.data_ptr(), pattern(n, seed=1).tobytes())
    assert torch.equal(target.cpu(), torch.from_numpy(pattern(n, seed=1)))
    assert _core_testing.d2h_bandwidth(backend, pool, source.data_ptr(), n, 1) > 0
    assert _core_testing.plain_pinned_copy_bandwidth(backend, source.data_ptr(), n, 1) > 0
