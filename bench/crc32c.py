"""CRC-32C throughput: every trackpoint implementation against the PyPI packages.

Usage:
    python bench/crc32c.py [--rounds 7] [--mib 64]

Times trackpoint._core.crc32c with each implementation this CPU has
(crc32c_impls()), crc32c.crc32c from the PyPI ``crc32c`` package and
google_crc32c.value from ``google-crc32c`` (each skipped when not installed), on
the same buffers: one large buffer (memory-bound), a 1 MiB buffer and 4 KiB
buffers (cache-resident), one Python call per buffer. The systems take turns within each round, in a rotating order, and
the best of the rounds is reported in GB/s with its ratio to the fastest
trackpoint implementation on that workload.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from typing import Callable

from trackpoint import _core

Crc = Callable[[bytes], int]


def trackpoint_impl(impl: str) -> Crc:
    return lambda data: _core.crc32c(data, 0, impl)


def systems() -> dict[str, Crc]:
    # "default" is the plain call users make; the named ones go through a
    # lambda, which costs a little on small buffers.
    found: dict[str, Crc] = {"trackpoint default": _core.crc32c}
    for impl in _core.crc32c_impls():
        found[f"trackpoint {impl}"] = trackpoint_impl(impl)
    # This script shares its name with the crc32c package: drop its folder
    # from the path so that the import below finds the package.
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != here]
    try:
        import crc32c

        found["crc32c (PyPI)"] = crc32c.crc32c
    except ImportError:
        print("crc32c not installed: skipped")
    try:
        import google_crc32c

        print(f"google-crc32c implementation: {google_crc32c.implementation}")
        found["google-crc32c"] = google_crc32c.value
    except ImportError:
        print("google-crc32c not installed: skipped")
    return found


def workloads(mib: int) -> dict[str, list[bytes]]:
    """Name -> the buffers one timing runs through, in order.

    The large buffer streams from memory; the 1 MiB buffer and the pool of 256
    distinct 4 KiB buffers (1 MiB in all) stay in cache across repeated calls,
    so they measure the CRC code and the per-call overhead.
    """
    rng = random.Random(0)
    big = rng.randbytes(mib << 20)
    one_mib = rng.randbytes(1 << 20)
    pool = [rng.randbytes(4096) for _ in range(256)]
    return {
        f"{mib} MiB buffer x 1 call": [big],
        "1 MiB buffer x 64 calls": [one_mib] * 64,
        "4 KiB buffers x 16384 calls": pool * 64,
    }


def seconds(crc: Crc, buffers: list[bytes]) -> float:
    start = time.perf_counter()
    for data in buffers:
        crc(data)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--mib", type=int, default=64, help="bytes per workload, in MiB")
    args = parser.parse_args()

    crcs = systems()
    names = list(crcs)
    print(f"trackpoint default implementation: {_core.crc32c_active_impl()}")
    for workload, buffers in workloads(args.mib).items():
        expected = [_core.crc32c(data, 0, "portable") for data in buffers[:4]]
        for name, crc in crcs.items():
            if [crc(data) for data in buffers[:4]] != expected:
                raise SystemExit(f"{name} disagrees with trackpoint portable on {workload}")
        best = dict.fromkeys(names, float("inf"))
        for round_index in range(args.rounds):
            shift = round_index % len(names)
            for name in names[shift:] + names[:shift]:
                best[name] = min(best[name], seconds(crcs[name], buffers))
        total = sum(len(data) for data in buffers)
        gbps = {name: total / best[name] / 1e9 for name in names}
        fastest = max(v for name, v in gbps.items() if name.startswith("trackpoint"))
        print(f"\n{workload}, best of {args.rounds} rounds")
        print(f"  {'system':<22} {'GB/s':>8}  vs fastest trackpoint")
        for name in names:
            print(f"  {name:<22} {gbps[name]:8.2f}  {gbps[name] / fastest:6.2f}x")


if __name__ == "__main__":
    main()
