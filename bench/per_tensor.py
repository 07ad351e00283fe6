"""Per-tensor cost: many small tensors, trackpoint beside safetensors and torch.save.

N tensors of 64 float32 each, saved and restored by:

- trackpoint:  a Checkpoint with an object graph (an AutoTrackable holding a
               list of trackpoint.Variable); Checkpoint.write (it fsyncs its
               files) / Checkpoint.read into the live variables
- safetensors: safetensors.numpy.save_file + fsync / load_file
- torch:       torch.save of a dict of CPU tensors + fsync / torch.load

Each save is timed twice per round: the first save of a freshly built
checkpoint object (trackpoint) or of a fresh dict (the others), then a
repeated save of the same objects. Rounds interleave the systems; the table
shows the best round, in microseconds per tensor.

    python bench/per_tensor.py                          # 1k, 10k, 100k
    python bench/per_tensor.py --counts 1000000 --rounds 1
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time

import numpy as np

import trackpoint
from trackpoint.trackable.autotrackable import AutoTrackable


def fsync_path(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_arrays(count):
    rng = np.random.default_rng(0)
    return [rng.standard_normal(64, dtype=np.float32) for _ in range(count)]


class Trackpoint:
    name = "trackpoint"

    def __init__(self, arrays, directory):
        self.arrays = arrays
        self.prefix = os.path.join(directory, "tp")

    def _build(self):
        root = AutoTrackable()
        root.variables = [trackpoint.Variable(a) for a in self.arrays]
        return trackpoint.Checkpoint(model=root)

    def first_save(self):
        self.ckpt = self._build()
        start = time.perf_counter()
        self.ckpt.write(self.prefix)
        return time.perf_counter() - start

    def repeated_save(self):
        start = time.perf_counter()
        self.ckpt.write(self.prefix)
        return time.perf_counter() - start

    def restore(self):
        start = time.perf_counter()
        self.ckpt.read(self.prefix)
        elapsed = time.perf_counter() - start
        first = self.ckpt.model.variables[0].numpy()
        assert np.array_equal(first, self.arrays[0])
        return elapsed


class Safetensors:
    name = "safetensors"

    def __init__(self, arrays, directory):
        from safetensors.numpy import load_file, save_file

        self.save_file, self.load_file = save_file, load_file
        self.arrays = arrays
        self.path = os.path.join(directory, "st.safetensors")

    def _save(self, tensors):
        start = time.perf_counter()
        self.save_file(tensors, self.path)
        fsync_path(self.path)
        return time.perf_counter() - start

    def first_save(self):
        self.tensors = {f"t{i}": a for i, a in enumerate(self.arrays)}
        return self._save(self.tensors)

    def repeated_save(self):
        return self._save(self.tensors)

    def restore(self):
        start = time.perf_counter()
        loaded = self.load_file(self.path)
        elapsed = time.perf_counter() - start
        assert np.array_equal(loaded["t0"], self.arrays[0])
        return elapsed


class Torch:
    name = "torch.save"

    def __init__(self, arrays, directory):
        import torch

        self.torch = torch
        self.arrays = arrays
        self.path = os.path.join(directory, "state.pt")

    def _save(self, tensors):
        start = time.perf_counter()
        self.torch.save(tensors, self.path)
        fsync_path(self.path)
        return time.perf_counter() - start

    def first_save(self):
        self.tensors = {f"t{i}": self.torch.from_numpy(a) for i, a in enumerate(self.arrays)}
        return self._save(self.tensors)

    def repeated_save(self):
        return self._save(self.tensors)

    def restore(self):
        start = time.perf_counter()
        loaded = self.torch.load(self.path, weights_only=True)
        elapsed = time.perf_counter() - start
        assert np.array_equal(loaded["t0"].numpy(), self.arrays[0])
        return elapsed


SYSTEMS = [Trackpoint, Safetensors, Torch]
PHASES = ["first_save", "repeated_save", "restore"]


def run(count, rounds, base):
    arrays = make_arrays(count)
    directory = tempfile.mkdtemp(prefix=f"per_tensor_{count}_", dir=base)
    try:
        systems = [cls(arrays, directory) for cls in SYSTEMS]
        best = {(s.name, p): float("inf") for s in systems for p in PHASES}
        for _ in range(rounds):
            for system in systems:  # interleaved: each round runs every system
                for phase in PHASES:
                    seconds = getattr(system, phase)()
                    best[system.name, phase] = min(best[system.name, phase], seconds)
        return {key: value / count * 1e6 for key, value in best.items()}
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--counts", type=int, nargs="+", default=[1000, 10000, 100000],
                        help="tensor counts (default: 1000 10000 100000; add 1000000)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--dir", default=None, help="where to write (default: the temp dir)")
    args = parser.parse_args()

    print(f"{'tensors':>9} {'system':<12} {'first save':>11} {'repeat save':>12} {'restore':>9}"
          "   (us per tensor, best of rounds)")
    for count in args.counts:
        result = run(count, args.rounds, args.dir)
        for cls in SYSTEMS:
            row = [result[cls.name, p] for p in PHASES]
            print(f"{count:>9} {cls.name:<12} {row[0]:>11.2f} {row[1]:>12.2f} {row[2]:>9.2f}")


if __name__ == "__main__":
    main()
