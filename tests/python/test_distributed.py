"""Multi-process checkpoints (trackpoint.distributed) with real processes.

Jobs of 2 and 4 processes on localhost (torch.distributed, gloo) save a
model holding partitioned tensors (numpy and torch slices) and replicated
ones; the merged checkpoint must equal a single-process reference, pass a
full CRC-verified read, and restore into 1, 2 and 4 processes. A process
that fails or is killed mid-save must leave the previous checkpoint as the
latest, and the others must raise instead of hanging. When TensorFlow is
available (TRACKPOINT_TF_PYTHON, or importable here), it reads the merged
checkpoints and merges parts byte-identically to trackpoint.

This file is also the worker: ``python test_distributed.py '<json>'``.
"""

from __future__ import annotations

import contextlib
import datetime
import glob
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import trackpoint
from trackpoint import distributed as dist_tp
from trackpoint.distributed import ShardedTensor, even_split
from conftest import TF_PYTHON

pytest.importorskip("torch.distributed")
pytest.importorskip("ml_dtypes")  # the bfloat16 tensor

# ---- the model every test saves -------------------------------------------------------------
# name -> (full shape, dtype, split axis, framework of the local slice)
SHARDED = {
    "emb": ((10, 6), "float32", 0, "numpy"),
    "kernel": ((7, 5), "float32", 1, "torch"),
    "counts": ((9,), "int64", 0, "numpy"),
    "half": ((5, 3), "bfloat16", 0, "torch"),
}
# name -> (shape, dtype)
REPLICATED = {
    "bias": ((6,), "float32"),
    "big": ((48, 32), "float64"),
    "step": ((), "int64"),
}
NAMES = [b"alpha", b"", b"\xffbytes"]


def full_value(name: str, step: int = 0) -> np.ndarray:
    """The full tensor `name` at a training step, the same in every process."""
    shape, dtype = SHARDED[name][:2] if name in SHARDED else REPLICATED[name]
    n = int(np.prod(shape, dtype=np.int64))
    base = (np.arange(n, dtype=np.float64) * 0.5 + len(name) + step).reshape(shape)
    return base.astype(trackpoint.dtypes.as_dtype(dtype).as_numpy_dtype)


def _box(offsets, shape):
    return tuple(slice(o, o + n) for o, n in zip(offsets, shape))


def build(rank: int, world: int, fill: bool = True, step: int = 0):
    """(checkpoint, model) as process `rank` of `world` holds it: its slices
    of the partitioned tensors, every replicated one whole; zeros unless fill."""
    model = trackpoint.AutoTrackable()
    for name, (shape, dtype, axis, framework) in SHARDED.items():
        offsets, local_shape = even_split(shape, rank, world, axis)
        local = full_value(name, step)[_box(offsets, local_shape)].copy()
        if not fill:
            local[...] = 0
        if framework == "torch":
            import torch

            local = (
                torch.from_numpy(local.view(np.int16)).view(torch.bfloat16)
                if dtype == "bfloat16"
                else torch.from_numpy(local)
            )
        setattr(model, name, ShardedTensor(local, shape, offsets, name=name))
    for name, (shape, dtype) in REPLICATED.items():
        value = full_value(name, step) if fill else np.zeros(shape, full_value(name).dtype)
        setattr(model, name, trackpoint.Variable(value, dtype=dtype, name=name))
    model.names = trackpoint.Variable(NAMES if fill else [b""] * len(NAMES), name="names")
    return trackpoint.Checkpoint(model=model), model


def local_values(model) -> dict:
    """name -> this process's values (bfloat16 as float32, strings as str)."""
    out = {}
    for name in SHARDED:
        array = getattr(model, name).numpy()
        out[name] = array.astype(np.float32) if array.dtype.name == "bfloat16" else array.copy()
    for name in REPLICATED:
        out[name] = getattr(model, name).numpy().copy()
    return out


def expected_local(rank: int, world: int, step: int = 0) -> dict:
    out = {}
    for name, (shape, dtype, axis, _) in SHARDED.items():
        offsets, local_shape = even_split(shape, rank, world, axis)
        array = full_value(name, step)[_box(offsets, local_shape)]
        out[name] = array.astype(np.float32) if dtype == "bfloat16" else array
    for name in REPLICATED:
        out[name] = full_value(name, step)
    return out


def key(name: str) -> str:
    return f"model/{name}/.ATTRIBUTES/VARIABLE_VALUE"


# ---- the worker (one process of a job) ----------------------------------------------------
def _worker(args: dict) -> None:
    import torch.distributed as dist

    rank, world, directory = args["rank"], args["world"], args["dir"]
    dist.init_process_group(
        "gloo",
        init_method=f"tcp://127.0.0.1:{args['port']}",
        rank=rank,
        world_size=world,
        timeout=datetime.timedelta(seconds=60),
    )
    coordinator = dist_tp.TorchCoordinator(timeout=args.get("timeout", 30))
    options = trackpoint.CheckpointOptions(experimental_coordinator=coordinator)
    result: dict = {"rank": rank}

    def record():
        with open(os.path.join(directory, f"{args['task']}-{rank}.json"), "w") as f:
            json.dump(result, f)

    def dump(name: str, model) -> None:
        np.savez(os.path.join(directory, f"{name}-{rank}.npz"), **local_values(model))
        result[f"{name}-names"] = [x.decode("latin-1") for x in model.names.numpy().tolist()]

    def restore(name: str, path: str) -> None:
        ckpt, model = build(rank, world, fill=False)
        ckpt.restore(path, options=options).assert_consumed()
        result[f"{name}-counter"] = int(ckpt.save_counter)
        dump(name, model)

    task = args["task"]
    if task in ("save", "restore_then_save"):
        if task == "restore_then_save":
            restore("resharded", args["path"])
        ckpt, model = build(rank, world)
        result["saved"] = ckpt.save(os.path.join(directory, "ckpt"), options=options)
        restore("same", result["saved"])
        # Failures: during planning on rank 1, then while rank 1 writes its part.
        import trackpoint.distributed.saving as dsave

        class Trap(trackpoint.Trackable):
            def _serialize_to_tensors(self):
                if rank == 1:
                    raise RuntimeError("injected failure while planning")
                return {"x": np.zeros(1, np.float32)}

        model.trap = Trap()
        result["failures"] = []
        for injected in ("plan", "write"):
            real_write_part = dsave._write_part
            if injected == "write":
                del model.trap

                def failing(*a, real_write_part=real_write_part, **k):
                    if rank == 1:
                        raise OSError("injected failure while writing")
                    return real_write_part(*a, **k)

                dsave._write_part = failing
            try:
                ckpt.save(os.path.join(directory, "ckpt"), options=options)
                result["failures"].append(None)
            except Exception as e:  # noqa: BLE001
                result["failures"].append([type(e).__name__, str(e)])
            dsave._write_part = real_write_part
        result["counter_after_failures"] = int(ckpt.save_counter)
        # The process group still works: a manager keeps the last two.
        import trackpoint.manager as tmanager

        calls = []
        real_update = tmanager.update_state_file
        tmanager.update_state_file = lambda *a, **k: (calls.append(1), real_update(*a, **k))
        manager = trackpoint.CheckpointManager(
            ckpt, os.path.join(directory, "managed"), max_to_keep=2
        )
        result["managed"] = [manager.save(options=options) for _ in range(3)]
        tmanager.update_state_file = real_update
        result["manager_checkpoints"] = manager.checkpoints
        result["manager_latest"] = manager.latest_checkpoint
        result["state_updates"] = len(calls)
    elif task == "restore":
        restore("resharded", args["path"])
    elif task == "kill":
        # Save once, then rank 1 dies right after writing its part of the next save.
        ckpt, model = build(rank, world)
        manager = trackpoint.CheckpointManager(ckpt, directory, max_to_keep=3)
        manager.save(options=options)
        import trackpoint.distributed.saving as dsave

        real_write_part = dsave._write_part

        def dying(*a, **k):
            real_write_part(*a, **k)
            if rank == 1:
                os.kill(os.getpid(), signal.SIGKILL)

        dsave._write_part = dying
        started = time.time()
        try:
            manager.save(options=options)
            result["error"] = None
        except Exception as e:  # noqa: BLE001
            result["error"] = [type(e).__name__, str(e)]
        result["seconds"] = time.time() - started
    elif task == "loop":
        # Save again and again (values change with the step) until killed.
        ckpt, model = build(rank, world)
        manager = trackpoint.CheckpointManager(ckpt, directory, max_to_keep=3)
        with open(os.path.join(directory, f"ready-{rank}"), "w"):
            pass
        try:
            for step in range(1, 10_000):
                for name in SHARDED:
                    target = getattr(model, name)
                    target._assign_local(full_value(name, step)[_box(target.offsets, target.shape)])
                for name in REPLICATED:
                    getattr(model, name).assign(full_value(name, step))
                manager.save(options=options)
        except Exception as e:  # noqa: BLE001
            result["error"] = [type(e).__name__, str(e)]
    record()
    with contextlib.suppress(Exception):  # a peer may be dead
        dist.destroy_process_group()


# ---- running jobs ---------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env() -> dict:
    env = dict(os.environ)
    package_root = os.path.dirname(os.path.dirname(trackpoint.__file__))
    env["PYTHONPATH"] = os.pathsep.join([package_root, env.get("PYTHONPATH", "")])
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def _job_report(proc, result_file) -> str:
    """A finished worker's output and recorded result, for an assertion message."""
    output = proc.communicate()[0].decode(errors="replace")
    result = result_file.read_text() if result_file.exists() else "(no result file)"
    return f"output:\n{output}\nresult: {result}"


def start_job(world: int, task: str, directory, **extra) -> list:
    port = _free_port()
    return [
        subprocess.Popen(
            [
                sys.executable,
                os.path.abspath(__file__),
                json.dumps(
                    {
                        "rank": r,
                        "world": world,
                        "port": port,
                        "task": task,
                        "dir": str(directory),
                        **extra,
                    }
                ),
            ],
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for r in range(world)
    ]


def finish_job(procs, timeout: float = 90) -> list:
    """Waits for every process; returns their exit codes (fails on a hang)."""
    deadline = time.time() + timeout
    codes = []
    for p in procs:
        try:
            p.wait(timeout=max(deadline - time.time(), 0.1))
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            outputs = [q.communicate()[0].decode(errors="replace")[-3000:] for q in procs]
            raise AssertionError("a process hung:\n" + "\n---\n".join(outputs))
        codes.append(p.returncode)
    return codes


def run_job(world: int, task: str, directory, **extra) -> list:
    procs = start_job(world, task, directory, **extra)
    codes = finish_job(procs)
    if any(codes):
        outputs = [p.communicate()[0].decode(errors="replace")[-4000:] for p in procs]
        raise AssertionError(f"{task} job failed with {codes}:\n" + "\n---\n".join(outputs))
    results = []
    for r in range(world):
        with open(os.path.join(directory, f"{task}-{r}.json")) as f:
            results.append(json.load(f))
    return results


def assert_restored(directory, name: str, world: int, results) -> None:
    for r in range(world):
        with np.load(os.path.join(directory, f"{name}-{r}.npz")) as got:
            for tensor, want in expected_local(r, world).items():
                np.testing.assert_array_equal(
                    got[tensor], want, err_msg=f"{name} rank {r} {tensor}"
                )
        assert results[r][f"{name}-names"] == [x.decode("latin-1") for x in NAMES]


def all_tensors(prefix) -> dict:
    """Every tensor of a checkpoint, read through the public reader (CRC verified)."""
    reader = trackpoint.load_checkpoint(prefix)
    return {k: reader.get_tensor(k) for k in reader.get_variable_to_shape_map()}


def assert_same_tensors(a: dict, b: dict) -> None:
    assert sorted(a) == sorted(b)
    for k, value in a.items():
        x, y = np.asarray(value), np.asarray(b[k])
        assert x.dtype == y.dtype and x.shape == y.shape, k
        assert x.tobytes() == y.tobytes() if x.dtype != object else x.tolist() == y.tolist(), k


# ---- fixtures: the jobs, run once and shared ----------------------------------------------


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The same model saved by one process, without trackpoint.distributed."""
    ckpt, _ = build(0, 1)
    return ckpt.save(tmp_path_factory.mktemp("reference") / "ckpt")


@pytest.fixture(scope="module")
def job2(tmp_path_factory):
    directory = tmp_path_factory.mktemp("job2")
    return directory, run_job(2, "save", directory)


@pytest.fixture(scope="module")
def job4(tmp_path_factory, job2):
    """4 processes: restore the 2-process checkpoint (2 -> 4), then save their own."""
    directory = tmp_path_factory.mktemp("job4")
    return directory, run_job(4, "restore_then_save", directory, path=job2[1][0]["saved"])


# ---- tests -----------------------------------------------------------------------------------
@pytest.mark.parametrize("job", ["job2", "job4"])
def test_saved_checkpoint_equals_single_process_reference(request, job, reference):
    directory, results = request.getfixturevalue(job)
    paths = {r["saved"] for r in results}
    assert paths == {str(directory / "ckpt-1")}  # the same path on every process
    prefix = paths.pop()
    assert_same_tensors(all_tensors(prefix), all_tensors(reference))
    assert trackpoint.latest_checkpoint(directory) == prefix
    # `trackpoint verify` reads every tensor and checks every CRC.
    verify = subprocess.run([sys.executable, "-m", "trackpoint", "verify", prefix],
                            capture_output=True, text=True, timeout=120)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert not glob.glob(str(directory / "*_temp"))
    # Partitioned tensors are stored as slices; replicated ones once, spread
    # over the processes (one data file each).
    reader = trackpoint.bundle.BundleReader(prefix)
    world = len(results)
    assert reader.num_shards == world
    assert len(reader.entry(key("emb")).slices) == world
    assert reader.entry(key("bias")).slices == ()
    shards = {reader.entry(key(n)).shard_id for n in REPLICATED}
    assert len(shards) > 1


@pytest.mark.parametrize("job", ["job2", "job4"])
def test_restore_with_the_same_number_of_processes(request, job):
    directory, results = request.getfixturevalue(job)
    assert_restored(directory, "same", len(results), results)
    assert all(r["same-counter"] == 1 for r in results)


def test_restore_2_to_4(job4):
    directory, results = job4
    assert_restored(directory, "resharded", 4, results)


def test_restore_4_to_2(tmp_path, job4):
    results = run_job(2, "restore", tmp_path, path=job4[1][0]["saved"])
    assert_restored(tmp_path, "resharded", 2, results)


@pytest.mark.parametrize("job", ["job2", "job4"])
def test_restore_into_one_process(request, job):
    _, results = request.getfixturevalue(job)
    for how in ("function", "options"):
        ckpt, model = build(0, 1, fill=False)
        if how == "function":
            status = dist_tp.restore(ckpt, results[0]["saved"])
        else:
            options = trackpoint.CheckpointOptions(
                experimental_coordinator=dist_tp.LocalCoordinator()
            )
            status = ckpt.restore(results[0]["saved"], options=options)
        status.assert_consumed()
        for name, want in expected_local(0, 1).items():
            np.testing.assert_array_equal(local_values(model)[name], want, err_msg=name)
        assert model.names.numpy().tolist() == NAMES


def test_ordinary_restore_takes_slices_from_full_tensors(job2):
    # Without region reads, a ShardedTensor still gets its own slice.
    ckpt, model = build(1, 3, fill=False)
    ckpt.restore(job2[1][0]["saved"]).assert_consumed()
    for name, want in expected_local(1, 3).items():
        np.testing.assert_array_equal(local_values(model)[name], want, err_msg=name)


def test_a_failing_process_commits_nothing(job2):
    directory, results = job2
    for r in results:
        plan_error, write_error = r["failures"]
        if r["rank"] == 1:
            assert plan_error == ["RuntimeError", "injected failure while planning"]
            assert write_error == ["OSError", "injected failure while writing"]
        else:
            assert plan_error[0] == "AbortedError" and "rank 1" in plan_error[1]
            assert "injected failure while planning" in plan_error[1]
            assert (
                write_error[0] == "AbortedError"
                and "injected failure while writing" in write_error[1]
            )
        assert r["counter_after_failures"] == 1
    assert not os.path.exists(directory / "ckpt-2.index")
    assert not glob.glob(str(directory / "ckpt-2*"))


def test_manager_records_on_rank_0_only(job2):
    directory, results = job2
    managed = directory / "managed"
    want = [str(managed / f"ckpt-{n}") for n in (2, 3, 4)]
    for r in results:
        assert r["managed"] == want
        assert r["manager_checkpoints"] == want[1:]
        assert r["manager_latest"] == want[-1]
        assert (r["state_updates"] > 0) == (r["rank"] == 0)
    assert trackpoint.latest_checkpoint(managed) == want[-1]
    assert not os.path.exists(want[0] + ".index")  # deleted by rank 0's sweep
    assert sorted(os.listdir(managed)) == sorted(
        ["checkpoint"]
        + [
            os.path.basename(p) + s
            for p in want[1:]
            for s in (".index", ".data-00000-of-00002", ".data-00001-of-00002")
        ]
    )


def test_killed_process_leaves_the_previous_checkpoint(tmp_path, reference):
    procs = start_job(2, "kill", tmp_path, timeout=20)
    codes = finish_job(procs)
    assert codes[1] == -signal.SIGKILL
    assert codes[0] == 0, procs[0].communicate()[0].decode(errors="replace")
    with open(tmp_path / "kill-0.json") as f:
        survivor = json.load(f)
    assert survivor["error"][0] in ("CoordinationError", "AbortedError"), survivor
    assert survivor["seconds"] < 20
    assert trackpoint.latest_checkpoint(tmp_path) == str(tmp_path / "ckpt-1")
    assert not os.path.exists(tmp_path / "ckpt-2.index")
    assert_same_tensors(
        {k: v for k, v in all_tensors(tmp_path / "ckpt-1").items() if "save_counter" not in k},
        {k: v for k, v in all_tensors(reference).items() if "save_counter" not in k},
    )
    assert not glob.glob(str(tmp_path / "ckpt-2*"))  # the survivor removed the parts


def test_killed_at_a_random_moment(tmp_path):
    rng = random.Random(int(os.environ.get("TRACKPOINT_TEST_SEED", time.time())))
    for attempt in range(2):
        directory = tmp_path / str(attempt)
        directory.mkdir()
        procs = start_job(2, "loop", directory, timeout=20)
        deadline = time.time() + 60
        while len(glob.glob(str(directory / "ready-*"))) < 2 and time.time() < deadline:
            time.sleep(0.05)
        time.sleep(rng.uniform(0.05, 1.0))
        victim = rng.randrange(2)
        os.kill(procs[victim].pid, signal.SIGKILL)
        codes = finish_job(procs)
        assert codes[victim] == -signal.SIGKILL, _job_report(procs[victim], directory / f"loop-{victim}.json")
        assert codes[1 - victim] == 0, procs[1 - victim].communicate()[0].decode(errors="replace")
        # Everything a reader can find is complete, and the latest holds one step's values.
        for index in glob.glob(str(directory / "*.index")):
            tensors = all_tensors(index[: -len(".index")])
            step = int(tensors["save_counter/.ATTRIBUTES/VARIABLE_VALUE"])
            for name in list(SHARDED) + list(REPLICATED):
                want = full_value(name, step)
                assert np.asarray(tensors[key(name)]).tobytes() == want.tobytes(), (index, name)
        latest = trackpoint.latest_checkpoint(directory)
        if latest is not None:
            assert os.path.exists(latest + ".index")


# ---- in-process checks (one process, threads as the "processes") ----------------------------
class ThreadCoordinator(dist_tp.Coordinator):
    """World of threads in one process, for checks that need no real processes."""

    def __init__(self, rank, shared):
        self._rank, self._shared = rank, shared

    @property
    def rank(self):
        return self._rank

    @property
    def world_size(self):
        return self._shared["world"]

    def all_gather(self, obj):
        s = self._shared
        s["slots"][self._rank] = json.loads(json.dumps(obj))
        s["barrier"].wait(timeout=30)
        out = list(s["slots"])
        s["barrier"].wait(timeout=30)
        return out


def run_threads(world, fn):
    shared = {"world": world, "slots": [None] * world, "barrier": threading.Barrier(world)}
    results = [None] * world

    def body(r):
        try:
            results[r] = ("ok", fn(ThreadCoordinator(r, shared)))
        except Exception as e:  # noqa: BLE001
            results[r] = ("error", e)

    threads = [threading.Thread(target=body, args=(r,)) for r in range(world)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def test_processes_must_save_the_same_graph(tmp_path):
    def save(c):
        ckpt, model = build(c.rank, c.world_size)
        if c.rank == 1:
            model.extra = trackpoint.Variable([1.0])
        return dist_tp.write(ckpt, tmp_path / "w", c)

    results = run_threads(2, save)
    for status, error in results:
        assert status == "error" and isinstance(error, trackpoint.errors.InvalidArgumentError)
        assert "disagree on what to save" in str(error) and "[[0], [1]]" in str(error)
    assert os.listdir(tmp_path) == []


def test_slices_must_tile_their_tensor(tmp_path):
    def save(c):
        model = trackpoint.AutoTrackable()
        # Both take rows [0, 2) of 3: row 2 is nobody's.
        model.t = ShardedTensor(np.zeros((2, 2), np.float32), (3, 2), (0, 0))
        return dist_tp.write(model, tmp_path / "w", c)

    for status, error in run_threads(2, save):
        # Identical slices are the same data held twice: fine, but row 2 is missing.
        assert status == "error" and "cover 4 of its 6 elements" in str(error)


def test_replicas_of_a_slice_are_written_once(tmp_path):
    # 4 processes: 2-way partitioned, each half held by 2 replicas.
    def save(c):
        offsets, shape = even_split((6, 2), c.rank % 2, 2)
        model = trackpoint.AutoTrackable()
        model.t = ShardedTensor(
            full_value("emb")[:6, :2][_box(offsets, shape)].copy(), (6, 2), offsets
        )
        return dist_tp.write(model, tmp_path / "w", c)

    assert all(status == "ok" for status, _ in run_threads(4, save))
    reader = trackpoint.bundle.BundleReader(tmp_path / "w")
    assert len(reader.entry("t/.ATTRIBUTES/VARIABLE_VALUE").slices) == 2
    np.testing.assert_array_equal(
        reader.read("t/.ATTRIBUTES/VARIABLE_VALUE"), full_value("emb")[:6, :2]
    )


def test_replicated_tensors_balance_or_go_to_rank_0(tmp_path):
    for policy, spread in (("balance", True), ("rank0", False)):

        def save(c, policy=policy):
            ckpt, _ = build(c.rank, c.world_size)
            return dist_tp.write(ckpt, tmp_path / policy, c, replicated=policy)

        assert all(status == "ok" for status, _ in run_threads(3, save))
        reader = trackpoint.bundle.BundleReader(tmp_path / policy)
        shards = {reader.entry(key(n)).shard_id for n in list(REPLICATED) + ["names"]}
        assert (len(shards) > 1) == spread


def test_one_process_writes_what_an_ordinary_save_writes(tmp_path):
    ckpt, _ = build(0, 1)
    ckpt.write(tmp_path / "plain")
    dist_tp.write(ckpt, tmp_path / "coordinated", dist_tp.LocalCoordinator())
    for suffix in (".index", ".data-00000-of-00001"):
        assert (tmp_path / ("coordinated" + suffix)).read_bytes() == (
            tmp_path / ("plain" + suffix)
        ).read_bytes(), suffix
    assert sorted(os.listdir(tmp_path)) == sorted(
        p + s for p in ("plain", "coordinated") for s in (".index", ".data-00000-of-00001")
    )


def test_overwriting_with_fewer_processes_leaves_no_stale_files(tmp_path):
    for world in (3, 2):

        def save(c):
            ckpt, _ = build(c.rank, c.world_size)
            return dist_tp.write(ckpt, tmp_path / "w", c)

        assert all(status == "ok" for status, _ in run_threads(world, save))
    assert sorted(os.listdir(tmp_path)) == [
        "w.data-00000-of-00002",
        "w.data-00001-of-00002",
        "w.index",
    ]
    assert_same_tensors(
        all_tensors(tmp_path / "w"), all_tensors(build(0, 1)[0].write(tmp_path / "r"))
    )


def test_one_process_cannot_save_a_slice_alone(tmp_path):
    model = trackpoint.AutoTrackable()
    model.t = ShardedTensor(np.zeros((2, 2), np.float32), (4, 2), (2, 0))
    with pytest.raises(
        trackpoint.errors.InvalidArgumentError, match="cannot be saved by one process"
    ):
        trackpoint.Checkpoint(model=model).write(tmp_path / "w")


def test_restore_checks_dtype_and_full_shape(job2):
    model = trackpoint.AutoTrackable()
    model.emb = ShardedTensor(np.zeros((2, 6), np.float32), (11, 6), (0, 0), name="emb")
    with pytest.raises(
        trackpoint.errors.InvalidArgumentError, match=r"float32\[10, 6\].*float32\[11, 6\]"
    ):
        dist_tp.restore(trackpoint.Checkpoint(model=model), job2[1][0]["saved"])


def test_read_region(job2):
    reader = trackpoint.bundle.BundleReader(job2[1][0]["saved"])
    emb = dist_tp.read_region(
        reader, key("emb"), [(3, 4), (1, 2)], trackpoint.dtypes.as_dtype("float32")
    )
    np.testing.assert_array_equal(emb, full_value("emb")[3:7, 1:3])
    with pytest.raises(trackpoint.errors.InvalidArgumentError):
        dist_tp.read_region(
            reader, key("emb"), [(9, 4), (0, 6)], trackpoint.dtypes.as_dtype("float32")
        )


# ---- TensorFlow ------------------------------------------------------------------------------


TF_SCRIPT = r"""
import json, sys
import numpy as np
import tensorflow as tf
job = json.loads(sys.argv[1])
for prefix, out in job["read"]:
    reader = tf.train.load_checkpoint(prefix)
    values = {}
    for k in reader.get_variable_to_shape_map():
        v = np.asarray(reader.get_tensor(k))
        if v.dtype == object or k == "_CHECKPOINTABLE_OBJECT_GRAPH":
            continue
        values[k] = v.astype(np.float32) if v.dtype.name == "bfloat16" else v
    np.savez(out, **values)
tf.raw_ops.MergeV2Checkpoints(checkpoint_prefixes=job["merge"], destination_prefix=job["dest"],
                              delete_old_dirs=False)
"""


def test_tensorflow_reads_merged_checkpoints_and_merges_alike(tmp_path, job2, job4):
    python = TF_PYTHON
    if python is None:
        pytest.skip("TensorFlow is not available (set TRACKPOINT_TF_PYTHON)")
    # Parts as two processes write them, merged by TensorFlow and by trackpoint.
    parts = []
    for r, (start, length) in enumerate([(0, 4), (4, 6)]):
        part = str(tmp_path / "theirs_temp" / f"part-{r:05d}-of-00002")
        with trackpoint.bundle.BundleWriter(part) as w:
            w.add(f"only{r}", np.full((r + 2,), r, np.int32))
            w.add_slice(
                "emb",
                (10, 6),
                [(start, length), (0, -1)],
                full_value("emb")[start : start + length],
            )
        parts.append(part)
    shutil.copytree(tmp_path / "theirs_temp", tmp_path / "ours_temp")
    job = {
        "read": [
            [job2[1][0]["saved"], str(tmp_path / "tf2.npz")],
            [job4[1][0]["saved"], str(tmp_path / "tf4.npz")],
        ],
        "merge": parts,
        "dest": str(tmp_path / "theirs"),
    }
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    subprocess.run([python, "-c", TF_SCRIPT, json.dumps(job)], check=True, env=env, timeout=120)
    trackpoint._core.merge_bundles(
        [p.replace("theirs_temp", "ours_temp") for p in parts], str(tmp_path / "ours")
    )
    for suffix in (".index", ".data-00000-of-00002", ".data-00001-of-00002"):
        assert (tmp_path / ("ours" + suffix)).read_bytes() == (
            tmp_path / ("theirs" + suffix)
        ).read_bytes(), suffix

    for saved, out in job["read"]:
        ours = {k: v for k, v in all_tensors(saved).items() if np.asarray(v).dtype.kind not in "OS"}
        with np.load(out) as theirs:
            assert sorted(theirs.files) == sorted(ours)
            for k, value in ours.items():
                want = np.asarray(value)
                want = want.astype(np.float32) if want.dtype.name == "bfloat16" else want
                np.testing.assert_array_equal(theirs[k], want, err_msg=k)


if __name__ == "__main__":
    _worker(json.loads(sys.argv[1]))
