"""Tests for trackpoint._core's CRC-32C functions, on every implementation."""

import random

import numpy as np
import pytest

from trackpoint import _core

IMPLS = _core.crc32c_impls()

# (data, CRC-32C): RFC 3720 appendix B.4 and the usual check value.
ISCSI_READ = bytes.fromhex(  # 48-byte iSCSI SCSI Read (10) command PDU
    "01c00000000000000000000000000000"
    "14000000000004000000001400000018"
    "28000000000000000200000000000000"
)
VECTORS = [
    (b"", 0),
    (b"123456789", 0xE3069283),
    (bytes(32), 0x8A9136AA),
    (b"\xff" * 32, 0x62A8AB43),
    (bytes(range(32)), 0x46DD794E),
    (bytes(range(31, -1, -1)), 0x113FDB5C),
    (ISCSI_READ, 0xD9963A56),
]


def random_bytes(n: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(n)


def test_impls() -> None:
    assert IMPLS[0] == "portable"
    assert set(IMPLS) <= {"portable", "sse42", "avx512", "arm64"}
    assert _core.crc32c_active_impl() in IMPLS


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(("data", "expected"), VECTORS)
def test_vectors(impl: str, data: bytes, expected: int) -> None:
    assert _core.crc32c(data, impl=impl) == expected
    assert _core.crc32c(data) == expected


@pytest.mark.parametrize("impl", IMPLS)
def test_extend(impl: str) -> None:
    data = random_bytes(10_000, 1)
    whole = _core.crc32c(data, impl=impl)
    for split in (0, 1, 7, 100, 4097, 10_000):
        head = _core.crc32c(data[:split], impl=impl)
        assert _core.crc32c(data[split:], head, impl=impl) == whole


@pytest.mark.parametrize("impl", IMPLS)
def test_matches_pypi_crc32c(impl: str) -> None:
    crc32c = pytest.importorskip("crc32c")
    rng = random.Random(2)
    for n in [0, 1, 15, 16, 63, 64, 255, 256, 257, 1000, 4096, 100_003, (1 << 20) + 13]:
        data = rng.randbytes(n)
        assert _core.crc32c(data, impl=impl) == crc32c.crc32c(data), n


def test_buffer_types() -> None:
    data = random_bytes(1001, 3)
    expected = _core.crc32c(data)
    assert _core.crc32c(bytearray(data)) == expected
    assert _core.crc32c(memoryview(data)) == expected
    assert _core.crc32c(memoryview(data)[10:]) == _core.crc32c(data[10:])
    assert _core.crc32c(np.frombuffer(data, dtype=np.uint8)) == expected
    words = np.frombuffer(data[:1000], dtype=np.float32)
    assert _core.crc32c(words) == _core.crc32c(data[:1000])
    assert _core.crc32c(words.reshape(10, 25)) == _core.crc32c(data[:1000])


def test_rejects_non_buffers() -> None:
    with pytest.raises(TypeError):
        _core.crc32c("text")  # type: ignore[arg-type]
    strided = np.frombuffer(random_bytes(100, 4), dtype=np.uint8)[::2]
    with pytest.raises((BufferError, ValueError)):  # numpy raises the latter
        _core.crc32c(strided)


def test_unknown_or_unavailable_impl() -> None:
    with pytest.raises(ValueError, match="unknown crc32c implementation"):
        _core.crc32c(b"x", impl="sse9")
    missing = [n for n in ("portable", "sse42", "avx512", "arm64") if n not in IMPLS]
    for name in missing:
        with pytest.raises(ValueError, match="not available"):
            _core.crc32c(b"x", impl=name)


def test_mask() -> None:
    assert _core.crc32c_mask(0) == 0xA282EAD8
    rng = random.Random(5)
    for _ in range(1000):
        crc = rng.getrandbits(32)
        masked = _core.crc32c_mask(crc)
        assert _core.crc32c_unmask(masked) == crc
    crc = _core.crc32c(b"foo")
    assert _core.crc32c_mask(crc) != crc


def test_combine() -> None:
    data = random_bytes(5000, 6)
    for split in (0, 1, 100, 2500, 4999, 5000):
        a, b = data[:split], data[split:]
        combined = _core.crc32c_combine(_core.crc32c(a), _core.crc32c(b), len(b))
        assert combined == _core.crc32c(data)
    zeros = bytes(1 << 20)
    crc_a = _core.crc32c(b"head")
    assert _core.crc32c_combine(crc_a, _core.crc32c(zeros), len(zeros)) == _core.crc32c(
        zeros, crc_a
    )
