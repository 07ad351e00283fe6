"""Save and restore speed of trackpoint beside the baselines, in one run.

Usage:
    python bench/save_restore.py [--rounds 5] [--dir /path/on/the/disk/to/test]
                                 [--only large|small]

Workloads: (a) "large": 1 GiB in 64 float32 tensors; (b) "small": 20,000
float32 tensors of 64 elements. Systems, interleaved round by round (the
disks here are noisy; best-of-rounds is reported):

- plain:       the same bytes written sequentially to one file + fsync; read
               back with readinto into preallocated buffers (the practical limit)
- trackpoint:  Checkpoint.write (fsyncs) / Checkpoint.read into the live arrays
- safetensors: safetensors.numpy.save_file + fsync / load_file
- torch:       torch.save + fsync / torch.load (state dict of CPU tensors)
- numpy:       np.savez + fsync / np.load (every array materialised)
- tensorflow:  tf.train.Checkpoint.write / read (when TensorFlow imports),
               as TensorFlow ships it: it does not fsync (2.21 calls neither
               fsync nor fdatasync when it writes a checkpoint)
- tf+fsync:    the same, then an fsync of each file it wrote and of the
               directory: a durable TensorFlow save, like every other row

Every save but the "tensorflow" row includes an fsync of what it wrote.
Reads come from the page cache when the machine has the memory (no cache
dropping without privileges), for every system alike.
Also: async save blocking time beside a plain memcpy of the same bytes, and
CRC32C GB/s. Ratios are time(plain) / time(system): above 1.0 is faster than
the plain baseline.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time

import numpy as np

import trackpoint
from trackpoint import _core


def fsync_path(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_arrays(kind):
    rng = np.random.default_rng(0)
    if kind == "large":
        return {f"layer_{i:02d}": rng.standard_normal(1 << 22, dtype=np.float32) for i in range(64)}
    return {f"t{i:05d}": rng.standard_normal(64, dtype=np.float32) for i in range(20000)}


class Plain:
    name = "plain"

    def save(self, arrays, d):
        path = os.path.join(d, "plain.bin")
        with open(path, "wb") as f:
            for a in arrays.values():
                f.write(memoryview(a).cast("B"))
            f.flush()
            os.fsync(f.fileno())
        return path

    def restore(self, arrays, d, saved):
        with open(saved, "rb", buffering=0) as f:
            for a in arrays.values():
                f.readinto(memoryview(a).cast("B"))


class Trackpoint:
    name = "trackpoint"

    def __init__(self, arrays):
        self.ckpt = trackpoint.Checkpoint(model=dict(arrays))

    def save(self, arrays, d):
        return self.ckpt.write(os.path.join(d, "tp"))

    def restore(self, arrays, d, saved):
        self.ckpt.read(saved).assert_consumed()


class Safetensors:
    name = "safetensors"

    def save(self, arrays, d):
        from safetensors.numpy import save_file

        path = os.path.join(d, "model.safetensors")
        save_file(arrays, path)
        fsync_path(path)
        return path

    def restore(self, arrays, d, saved):
        from safetensors.numpy import load_file

        load_file(saved)


class Torch:
    name = "torch"

    def save(self, arrays, d):
        import torch

        path = os.path.join(d, "model.pt")
        torch.save({k: torch.from_numpy(v) for k, v in arrays.items()}, path)
        fsync_path(path)
        return path

    def restore(self, arrays, d, saved):
        import torch

        torch.load(saved)


class Numpy:
    name = "numpy"

    def save(self, arrays, d):
        path = os.path.join(d, "model.npz")
        np.savez(path, **arrays)
        fsync_path(path)
        return path

    def restore(self, arrays, d, saved):
        with np.load(saved) as z:
            for k in z.files:
                z[k]


class TensorFlow:
    name = "tensorflow"

    def __init__(self, arrays):
        import tensorflow as tf

        self.tf = tf
        self.ckpt = tf.train.Checkpoint(model={k: tf.Variable(v) for k, v in arrays.items()})

    def save(self, arrays, d):
        return self.ckpt.write(os.path.join(d, "tf"))

    def restore(self, arrays, d, saved):
        self.ckpt.read(saved).assert_consumed()


class TensorFlowFsync(TensorFlow):
    name = "tf+fsync"

    def save(self, arrays, d):
        saved = super().save(arrays, d)
        for name in os.listdir(d):
            fsync_path(os.path.join(d, name))
        fsync_path(d)
        return saved


def systems(arrays):
    out = [Plain(), Trackpoint(arrays), Safetensors()]
    try:
        import torch  # noqa: F401

        out.append(Torch())
    except ImportError:
        pass
    out.append(Numpy())
    try:
        out += [TensorFlow(arrays), TensorFlowFsync(arrays)]
    except ImportError:
        pass
    return out


def run(kind, rounds, base):
    arrays = make_arrays(kind)
    nbytes = sum(a.nbytes for a in arrays.values())
    print(f"\n== {kind}: {len(arrays)} tensors, {nbytes / 2**20:.0f} MiB, best of {rounds} rounds")
    best = {}
    current = systems(arrays)
    for _ in range(rounds):
        for system in current:
            d = tempfile.mkdtemp(dir=base)
            try:
                t0 = time.perf_counter()
                saved = system.save(arrays, d)
                t1 = time.perf_counter()
                system.restore(arrays, d, saved)
                t2 = time.perf_counter()
            finally:
                shutil.rmtree(d)
            s, r = best.get(system.name, (float("inf"), float("inf")))
            best[system.name] = (min(s, t1 - t0), min(r, t2 - t1))
    plain_save, plain_restore = best["plain"]
    print(f"{'system':12} {'save s':>9} {'save x':>7} {'GB/s':>6}   {'restore s':>9} {'restore x':>9} {'GB/s':>6}")
    for name, (s, r) in best.items():
        print(f"{name:12} {s:9.4f} {plain_save / s:7.2f} {nbytes / s / 1e9:6.2f}   "
              f"{r:9.4f} {plain_restore / r:9.2f} {nbytes / r / 1e9:6.2f}")
    ours_save, ours_restore = best["trackpoint"]
    for name in ("tensorflow", "tf+fsync"):
        if name in best:
            print(f"trackpoint against {name}: save {best[name][0] / ours_save:.2f}x, "
                  f"restore {best[name][1] / ours_restore:.2f}x faster")
    return arrays


def async_blocking(arrays, rounds, base):
    nbytes = sum(a.nbytes for a in arrays.values())
    ckpt = trackpoint.Checkpoint(model=dict(arrays))
    options = trackpoint.CheckpointOptions(enable_async=True)
    scratch = {k: np.empty_like(v) for k, v in arrays.items()}
    best_async = best_copy = float("inf")
    for i in range(rounds):
        d = tempfile.mkdtemp(dir=base)
        try:
            t0 = time.perf_counter()
            ckpt.write(os.path.join(d, "a"), options=options)
            t1 = time.perf_counter()
            ckpt.sync()
            t2 = time.perf_counter()
            for k, v in arrays.items():
                np.copyto(scratch[k], v)
            t3 = time.perf_counter()
        finally:
            shutil.rmtree(d)
        best_async = min(best_async, t1 - t0)
        best_copy = min(best_copy, t3 - t2)
    print(f"\nasync blocking time {best_async:.4f} s vs memcpy {best_copy:.4f} s "
          f"({best_async / best_copy:.2f}x memcpy; {nbytes / 2**20:.0f} MiB)")


def crc_speed():
    data = np.random.default_rng(1).integers(0, 255, 1 << 28, dtype=np.uint8)
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        _core.crc32c(data)
        best = min(best, time.perf_counter() - t0)
    print(f"\nCRC32C ({_core.crc32c_active_impl()}, 256 MiB, one core): {data.nbytes / best / 1e9:.1f} GB/s")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--dir", default=None, help="directory on the disk to test (default: temp)")
    parser.add_argument("--only", choices=["large", "small"])
    args = parser.parse_args()
    for kind in ["large", "small"]:
        if args.only in (None, kind):
            arrays = run(kind, args.rounds, args.dir)
            if kind == "large":
                async_blocking(arrays, args.rounds, args.dir)
    crc_speed()


if __name__ == "__main__":
    main()
