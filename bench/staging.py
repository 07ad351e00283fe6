"""Device-to-host staging bandwidth: trackpoint's chunked pipeline against one plain copy.

Usage:
    python bench/staging.py [--rounds 5] [--repeats 3] [--sizes-mib 256,1024]
                            [--chunk-mib 16] [--buffers 4]

Needs trackpoint._core_testing, the test-only module (cmake
-DTRACKPOINT_BUILD_PYTHON=ON -DTRACKPOINT_BUILD_PYTHON_TESTING=ON; scripts/test
installs it). With a CUDA runtime and GPU (_core.cuda_available(); torch, when installed,
is initialised first so that its libcudart is the one found): for each size,
a buffer of random bytes in GPU 0's memory (the backend's cudaMalloc) is
staged to the host two ways:
  pipeline    _core_testing.d2h_bandwidth: chunks of --chunk-mib through a
              pool of --buffers pinned buffers, up to buffers-1 copies in flight while
              the sink consumes finished chunks in order;
  plain copy  _core_testing.plain_pinned_copy_bandwidth: one cudaMemcpyAsync of the
              whole buffer into one pinned buffer of the whole size, then a
              synchronize (the fastest a single transfer goes; it needs as
              much pinned memory as the tensor).
Each is run without and with CRC-32C: the pipeline's sink computes it chunk by
chunk while later copies run; the plain copy computes it after its copy, as a
writer with no pipelining would. The two take turns within each round, in
alternating order; the best round is reported in GB/s (bytes staged per
second), with the ratio pipeline / plain copy.

Without a GPU it says the GPU benchmark is skipped and runs the same
comparison on the fake backend (numpy arrays stand in for device memory):
those numbers are CPU memcpy on a worker thread, not a GPU transfer, and only
show the pipeline's own overhead. Even their ratio says little about a GPU:
CPU memcpy speed depends on the size of each copy (glibc switches to
non-temporal stores for large ones), so chunked and whole copies differ on a
CPU for reasons a DMA engine does not share.
"""

from __future__ import annotations

import argparse
import time
from typing import Callable

import numpy as np

from trackpoint import _core, _core_testing

MiB = 1 << 20


def cuda_gpu() -> bool:
    """Whether trackpoint can stage from a GPU, after letting torch (when
    installed) load its CUDA runtime."""
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.init()
    except ImportError:
        pass
    return _core.cuda_available()


def best_of(systems: dict[str, Callable[[], float]], rounds: int) -> dict[str, float]:
    """Best GB/s of each system over rounds, the systems alternating their order."""
    best = dict.fromkeys(systems, 0.0)
    names = list(systems)
    for r in range(rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            best[name] = max(best[name], systems[name]())
    return best


def compare(backend, pool, ptr: int, nbytes: int, args, label: str) -> None:
    for crc in (False, True):
        systems = {
            "pipeline": lambda crc=crc: _core_testing.d2h_bandwidth(
                backend, pool, ptr, nbytes, args.repeats, crc
            ),
            "plain copy": lambda crc=crc: _core_testing.plain_pinned_copy_bandwidth(
                backend, ptr, nbytes, args.repeats, crc
            ),
        }
        best = best_of(systems, args.rounds)
        ratio = best["pipeline"] / best["plain copy"]
        print(
            f"  {label:>9} {'yes' if crc else 'no':>4} {best['pipeline']:14.2f} "
            f"{best['plain copy']:16.2f} {ratio:15.2f}x"
        )


def header(args) -> None:
    print(
        f"pool {args.buffers} x {args.chunk_mib} MiB pinned, best of {args.rounds} rounds "
        f"x {args.repeats} repeats"
    )
    print(
        f"  {'size':>9} {'crc':>4} {'pipeline GB/s':>14} {'plain copy GB/s':>16} {'pipeline/plain':>15}"
    )


def run_cuda(args, sizes: list[int]) -> None:
    backend = _core_testing.make_backend("cuda", 0)
    print(f"GPU {backend.name}, device to host")
    pool = _core_testing.make_pool(backend, args.buffers, args.chunk_mib * MiB)
    header(args)
    rng = np.random.default_rng(0)
    for mib in sizes:
        ptr = backend.allocate_device(mib * MiB)
        try:
            _core_testing.stage_from_bytes(backend, pool, ptr, rng.bytes(mib * MiB))
            compare(backend, pool, ptr, mib * MiB, args, f"{mib} MiB")
        finally:
            backend.free_device(ptr)


def run_fake(args, sizes: list[int]) -> None:
    backend = _core_testing.make_backend("fake")
    print(
        "fake backend: CPU memcpy on a worker thread, NOT a GPU transfer (pipeline overhead only)"
    )
    pool = _core_testing.make_pool(backend, args.buffers, args.chunk_mib * MiB)
    header(args)
    rng = np.random.default_rng(0)
    for mib in sizes:
        array = rng.integers(0, 256, size=mib * MiB, dtype=np.uint8)
        compare(backend, pool, array.ctypes.data, array.size, args, f"{mib} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3, help="transfers per timing")
    parser.add_argument("--sizes-mib", default=None, help="comma-separated buffer sizes in MiB")
    parser.add_argument("--chunk-mib", type=int, default=16, help="pool buffer size in MiB")
    parser.add_argument("--buffers", type=int, default=4, help="pool buffers")
    args = parser.parse_args()

    start = time.perf_counter()
    if cuda_gpu():
        sizes = [int(s) for s in (args.sizes_mib or "256,1024").split(",")]
        run_cuda(args, sizes)
    else:
        print("no CUDA GPU: GPU benchmark skipped")
        print(f"  cuda_unavailable_reason: {_core.cuda_unavailable_reason()}")
        sizes = [int(s) for s in (args.sizes_mib or "64,256").split(",")]
        run_fake(args, sizes)
    print(f"({time.perf_counter() - start:.1f} s)")


if __name__ == "__main__":
    main()
