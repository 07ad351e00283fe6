"""Multi-process save and restore time against the number of processes.

Usage:
    python bench/distributed.py [--mib 256] [--rounds 3] [--procs 1,2,4] [--dir DIR]

Starts max(--procs) processes once (torch.distributed, gloo, on localhost).
For each count n, the first n processes form a group and save the same
model with trackpoint.distributed: --mib MiB in all, three quarters in
row-partitioned float32 tensors (each process holds its rows), one quarter
replicated (tensors of halving sizes, written once). Then they restore it
into the same partitioning (region reads). Times are wall-clock from a
barrier to the end of the save (commit included) or restore on the slowest
process. Counts take turns within each round, in a rotating order; the best
of the rounds is printed with its ratio to 1 process. Replicated tensors
are placed both ways ("balance": by size over the processes; "rank0": all
on rank 0), to choose the default.

Saves fsync every file; restores read what was just written, from the page
cache. On a machine with fewer cores than processes the extra processes
share cores, so the ratios show overhead more than speed-up there.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import numpy as np

SHARDED_FRACTIONS = (0.5, 0.15, 0.1)  # of the total, row-partitioned
COLUMNS = 1024


def build(rank: int, world: int, total_bytes: int, fill: bool = True):
    import trackpoint
    from trackpoint.distributed import ShardedTensor, even_split

    rng = np.random.default_rng(rank)
    model = trackpoint.AutoTrackable()
    for i, fraction in enumerate(SHARDED_FRACTIONS):
        rows = max(int(total_bytes * fraction) // (4 * COLUMNS), world)
        offsets, shape = even_split((rows, COLUMNS), rank, world)
        local = (
            rng.standard_normal(shape, dtype=np.float32) if fill else np.zeros(shape, np.float32)
        )
        setattr(model, f"sharded{i}", ShardedTensor(local, (rows, COLUMNS), offsets))
    replicated = total_bytes * (1 - sum(SHARDED_FRACTIONS))
    size, i = replicated / 2, 0
    while size >= 4096:
        value = np.full(int(size) // 4, 1.0 if fill else 0.0, np.float32)
        setattr(model, f"replicated{i}", trackpoint.Variable(value))
        size, i = size / 2, i + 1
    return trackpoint.Checkpoint(model=model)


def worker(rank: int, world: int, port: int, args: dict) -> None:
    import torch.distributed as dist

    from trackpoint import distributed as tpd

    dist.init_process_group(
        "gloo",
        init_method=f"tcp://127.0.0.1:{port}",
        rank=rank,
        world_size=world,
        timeout=datetime.timedelta(minutes=10),
    )
    counts = args["procs"]
    groups = {n: dist.new_group(list(range(n))) for n in counts}
    total = args["mib"] << 20
    models = {
        n: (build(rank, n, total), build(rank, n, total, fill=False)) for n in counts if rank < n
    }
    configs = [
        (n, policy) for n in counts for policy in (("balance", "rank0") if n > 1 else ("balance",))
    ]
    results: dict = {}
    for round_ in range(args["rounds"]):
        shift = round_ % len(configs)
        for n, policy in configs[shift:] + configs[:shift]:
            dist.barrier()
            if rank >= n:
                continue
            coordinator = tpd.TorchCoordinator(group=groups[n])
            saved, target = models[n]
            prefix = os.path.join(args["dir"], f"n{n}-{policy}", "ckpt")
            coordinator.barrier()
            start = time.perf_counter()
            tpd.write(saved, prefix, coordinator, replicated=policy)
            save_s = time.perf_counter() - start
            coordinator.barrier()
            start = time.perf_counter()
            tpd.restore(target, prefix, coordinator)
            coordinator.barrier()
            restore_s = time.perf_counter() - start
            times = coordinator.all_gather([save_s, restore_s])
            best = results.setdefault(f"{n} {policy}", [float("inf"), float("inf")])
            best[0] = min(best[0], max(t[0] for t in times))
            best[1] = min(best[1], max(t[1] for t in times))
    dist.barrier()
    if rank == 0:
        print(json.dumps(results))
    dist.destroy_process_group()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mib", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--procs", default="1,2,4")
    parser.add_argument("--dir", default=None, help="where to write (default: a temp dir)")
    parser.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    a = parser.parse_args()
    if a.worker:
        rank, world, port, args = a.worker
        worker(int(rank), int(world), int(port), json.loads(args))
        return
    counts = sorted({int(n) for n in a.procs.split(",")})
    directory = a.dir or tempfile.mkdtemp(prefix="trackpoint-bench-")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    args = json.dumps({"procs": counts, "mib": a.mib, "rounds": a.rounds, "dir": directory})
    world = max(counts)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                os.path.abspath(__file__),
                "--worker",
                str(r),
                str(world),
                str(port),
                args,
            ],
            stdout=subprocess.PIPE,
            env=env,
        )
        for r in range(world)
    ]
    outputs = [p.communicate()[0].decode() for p in procs]
    if any(p.returncode for p in procs):
        sys.exit(f"a worker failed: {[p.returncode for p in procs]}")
    if a.dir is None:
        shutil.rmtree(directory, ignore_errors=True)
    results = json.loads(outputs[0].strip().splitlines()[-1])
    print(
        f"{a.mib} MiB per checkpoint, best of {a.rounds} rounds, {os.cpu_count()} CPUs, "
        f"gloo on localhost"
    )
    base_save, base_restore = results[f"{counts[0]} balance"]
    print(
        f"{'processes':>9} {'replicated':>10} {'save s':>8} {'ratio':>6} {'GB/s':>6} "
        f"{'restore s':>9} {'ratio':>6} {'GB/s':>6}"
    )
    for name, (save_s, restore_s) in results.items():
        n, policy = name.split()
        gb = (a.mib << 20) / 1e9
        print(
            f"{n:>9} {policy:>10} {save_s:8.3f} {save_s / base_save:6.2f} {gb / save_s:6.2f} "
            f"{restore_s:9.3f} {restore_s / base_restore:6.2f} {gb / restore_s:6.2f}"
        )
    print(
        f"(ratio: time against {counts[0]} process{'es' if counts[0] > 1 else ''}; "
        "below 1 is faster)"
    )


if __name__ == "__main__":
    main()
