"""JAX multi-process checkpoints (trackpoint.distributed.jax) with real processes.

Jobs of 4, 2 and 1 JAX CPU processes on localhost (jax.distributed, two CPU
devices each, one global mesh over all of them) save a pytree whose arrays
are sharded over the processes (some shards held by several devices) next to
replicated ones, coordinated by JaxCoordinator over jax.distributed's
key-value store. The merged checkpoints must equal a single-process
reference saved from numpy, pass `trackpoint verify` (and TensorFlow reads
them, when available), store each distinct shard once, and restore into
other shardings and process counts (4 -> 4, 4 -> 2, 4 -> 1, 2 -> 2), each
process reading only its own shards' regions; an ordinary restore works too. A process that fails while planning makes the others raise
AbortedError; one that does not take part, or is killed mid-save, makes
them raise CoordinationError after the coordinator's timeout instead of
hanging (with jax_enable_recoverability; without it JAX itself aborts the
survivors of a dead process after its heartbeat timeout).

This file is also the worker: ``python test_distributed_jax.py '<json>'``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

import trackpoint
from trackpoint.bundle import BundleReader
from conftest import TF_PYTHON

DEVICES_PER_PROCESS = 2

# name -> (shape, dtype); "mu" lives in a nested dict ("opt/mu").
ARRAYS = {
    "w": ((16, 8), "float32"),
    "k": ((8, 12), "bfloat16"),
    "m": ((8, 4), "int32"),
    "mu": ((16, 8), "float32"),
    "bias": ((8,), "float32"),
    "count": ((), "int32"),
    "solo": ((12, 4), "float32"),  # a pytree that is one array
}
# Partition specs over a mesh of (processes, devices per process), axes ("a", "b").
LAYOUTS = {
    "save": {
        "w": (("a", "b"),),  # rows over every device
        "k": (None, "a"),  # columns over processes, each shard on both devices of one
        "m": ("b", "a"),
        "mu": ("a", "b"),
        "bias": (),  # replicated everywhere: written once
        "count": (),
        "solo": ("a",),
    },
    "other": {
        "w": ("b", "a"),
        "k": (("a", "b"),),
        "m": (None, "a"),
        "mu": (),
        "bias": ("a",),
        "count": (),
        "solo": (None, "b"),
    },
}


def full_value(name: str, step: int = 0) -> np.ndarray:
    shape, dtype = ARRAYS[name]
    n = int(np.prod(shape, dtype=np.int64))
    base = (np.arange(n, dtype=np.float64) * 0.25 + len(name) + step).reshape(shape)
    return base.astype(trackpoint.dtypes.as_dtype(dtype).as_numpy_dtype)


def tree_of(leaf) -> dict:
    """The training state: arrays by name (leaf(name)), plus plain values."""
    return {
        "w": leaf("w"),
        "k": leaf("k"),
        "m": leaf("m"),
        "opt": {"mu": leaf("mu"), "count": leaf("count")},
        "bias": leaf("bias"),
        "lr": 0.5,
    }


def key(path: str) -> str:
    return f"state/{path}/.ATTRIBUTES/VARIABLE_VALUE"


KEYS = {
    "w": key("w"),
    "k": key("k"),
    "m": key("m"),
    "mu": key("opt/mu"),
    "count": key("opt/count"),
    "bias": key("bias"),
    "solo": "solo/.ATTRIBUTES/VARIABLE_VALUE",
}


def objects_of(leaf, pytree) -> dict:
    """The checkpoint's objects: the state, and a pytree of one array."""
    return {"state": pytree(tree_of(leaf)), "solo": pytree(leaf("solo"))}


# ---- the worker (one process of a job) ----------------------------------------------------
def _worker(args: dict) -> None:
    import jax
    from jax.sharding import NamedSharding
    from jax.sharding import PartitionSpec as P

    from trackpoint.adapters.jax import PyTree
    from trackpoint.distributed import restoring
    from trackpoint.distributed.jax import JaxCoordinator

    rank, world, directory = args["rank"], args["world"], args["dir"]
    if args.get("recoverable"):
        # Survivors of a dead process go on (JAX would abort them otherwise).
        jax.config.update("jax_enable_recoverability", True)
    if world > 1:
        jax.distributed.initialize(
            coordinator_address=f"127.0.0.1:{args['port']}",
            num_processes=world,
            process_id=rank,
            initialization_timeout=120,
        )
    mesh = jax.make_mesh((world, DEVICES_PER_PROCESS), ("a", "b"))
    result: dict = {"rank": rank, "mismatches": []}

    def sharding(layout: str, name: str):
        return NamedSharding(mesh, P(*LAYOUTS[layout][name]))

    def state(layout: str, fill: bool = True):
        def leaf(name):
            value = full_value(name) if fill else np.zeros_like(full_value(name))
            return jax.make_array_from_callback(
                value.shape, sharding(layout, name), lambda index: value[index]
            )

        return objects_of(leaf, PyTree)

    def check(objects, layout: str, what: str) -> None:
        """Every addressable shard equals the reference, in the layout's sharding."""
        tree = objects["state"].tree
        arrays = {"w": tree["w"], "k": tree["k"], "m": tree["m"], "bias": tree["bias"]}
        arrays.update(mu=tree["opt"]["mu"], count=tree["opt"]["count"])
        arrays["solo"] = objects["solo"].tree
        for name, array in arrays.items():
            if not array.sharding.is_equivalent_to(sharding(layout, name), array.ndim):
                result["mismatches"].append(f"{what} {name}: sharding {array.sharding}")
            want = full_value(name)
            for shard in array.addressable_shards:
                got = np.asarray(shard.data)
                if got.dtype != want.dtype or not np.array_equal(got, want[shard.index]):
                    result["mismatches"].append(f"{what} {name}: shard {shard.index} differs")
        if tree["lr"] != 0.5:
            result["mismatches"].append(f"{what} lr: {tree['lr']}")

    reads: list = []
    real_read_region = restoring.read_region

    def counting_read_region(reader, key_, extents, dtype, out=None):
        reads.append([key_, [list(map(int, e)) for e in extents]])
        return real_read_region(reader, key_, extents, dtype, out)

    restoring.read_region = counting_read_region

    def restore(layout: str, path: str, what: str, coordinator=None, plain=False) -> None:
        reads.clear()
        target = state(layout, fill=False)
        ckpt = trackpoint.Checkpoint(**target)
        if plain:  # an ordinary restore: every process reads whole tensors
            ckpt.restore(path).assert_consumed()
            check(target, layout, what)
            return
        if coordinator is not None:
            options = trackpoint.CheckpointOptions(experimental_coordinator=coordinator)
            ckpt.restore(path, options=options).assert_consumed()
        else:
            trackpoint.distributed.restore(ckpt, path).assert_consumed()
        check(target, layout, what)
        # The regions read: exactly this process's distinct shards of each array.
        want = []
        for name, k in KEYS.items():
            s = sharding(layout, name)
            shape = ARRAYS[name][0]
            if s.is_fully_replicated and s.is_fully_addressable:
                continue  # an ordinary restore of a local array
            boxes = {
                tuple((sl.indices(d)[0], len(range(*sl.indices(d)))) for sl, d in zip(i, shape))
                for i in s.addressable_devices_indices_map(shape).values()
            }
            want += [[k, [list(b) for b in box]] for box in boxes]
        result[f"{what}-reads"] = sorted(reads)
        result[f"{what}-want-reads"] = sorted(want)

    def record():
        with open(os.path.join(directory, f"{args['task']}-{rank}.json"), "w") as f:
            json.dump(result, f)

    coordinator = JaxCoordinator(timeout=args.get("timeout", 60)) if world > 1 else None
    options = trackpoint.CheckpointOptions(experimental_coordinator=coordinator)
    task = args["task"]
    if task == "save":  # 4 processes: save, then restore into the same and another sharding
        source = state("save")
        check(source, "save", "source")
        ckpt = trackpoint.Checkpoint(**source)
        result["saved"] = ckpt.save(os.path.join(directory, "four", "ckpt"), options=options)
        result["counter"] = int(ckpt.save_counter)
        restore("save", result["saved"], "same", coordinator)
        restore("other", result["saved"], "resharded", coordinator)
        restore("other", result["saved"], "plain", plain=True)
    elif task == "reshard":  # 2 processes: restore the 4-process save, save anew, failures
        restore("other", args["path"], "from-four", coordinator)
        source = state("other")
        ckpt = trackpoint.Checkpoint(**source)
        result["saved"] = ckpt.save(os.path.join(directory, "two", "ckpt"), options=options)
        restore("save", result["saved"], "same", coordinator)
        # A failure while planning on rank 1: everyone raises, nothing is committed.
        from trackpoint.adapters import jax as tp_jax

        real_slices = tp_jax._Leaf._serialize_to_tensors

        def failing(self):
            if rank == 1:
                raise RuntimeError("injected failure while planning")
            return real_slices(self)

        tp_jax._Leaf._serialize_to_tensors = failing
        try:
            ckpt.save(os.path.join(directory, "two", "ckpt"), options=options)
            result["plan_failure"] = None
        except Exception as e:  # noqa: BLE001
            result["plan_failure"] = [type(e).__name__, str(e)]
        tp_jax._Leaf._serialize_to_tensors = real_slices
        result["counter"] = int(ckpt.save_counter)
        # Rank 1 does not take part: rank 0 gives up after the timeout.
        quick = JaxCoordinator(timeout=2)
        if rank == 0:
            try:
                ckpt.save(
                    os.path.join(directory, "two", "ckpt"),
                    options=trackpoint.CheckpointOptions(experimental_coordinator=quick),
                )
                result["absent_peer"] = None
            except Exception as e:  # noqa: BLE001
                result["absent_peer"] = [type(e).__name__, str(e)]
        # Rank 1 dies right after writing its part: rank 0 raises, nothing is committed.
        dying = JaxCoordinator(timeout=6)
        import trackpoint.distributed.saving as dsave

        real_write_part = dsave._write_part

        def write_then_die(*a, **k):
            real_write_part(*a, **k)
            if rank == 1:
                os.kill(os.getpid(), signal.SIGKILL)

        dsave._write_part = write_then_die
        if rank == 1:
            record()
        try:
            ckpt.save(
                os.path.join(directory, "two", "ckpt"),
                options=trackpoint.CheckpointOptions(experimental_coordinator=dying),
            )
            result["dead_peer"] = None
        except Exception as e:  # noqa: BLE001
            result["dead_peer"] = [type(e).__name__, str(e)]
        record()
        os._exit(0)  # without jax.distributed's shutdown, which would wait for rank 1
    elif task == "single":  # 1 process, two devices: restore the 4-process save
        restore("other", args["path"], "from-four")
    record()


# ---- running jobs ---------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env() -> dict:
    env = dict(os.environ)
    package_root = os.path.dirname(os.path.dirname(trackpoint.__file__))
    env["PYTHONPATH"] = os.pathsep.join([package_root, env.get("PYTHONPATH", "")])
    env["JAX_PLATFORMS"] = "cpu"
    env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={DEVICES_PER_PROCESS}"
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


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


def finish_job(procs, task: str, directory, timeout: float = 240, killed=()) -> list:
    """Waits for every process (fails on a hang, or an error of a process not
    in killed, which must die of SIGKILL); their results."""
    deadline = time.time() + timeout
    for p in procs:
        try:
            p.wait(timeout=max(deadline - time.time(), 0.1))
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            outputs = [q.communicate()[0].decode(errors="replace")[-3000:] for q in procs]
            raise AssertionError(f"a {task} process hung:\n" + "\n---\n".join(outputs))
    codes = [p.returncode for p in procs]
    want = [-signal.SIGKILL if r in killed else 0 for r in range(len(procs))]
    if codes != want:
        outputs = [p.communicate()[0].decode(errors="replace")[-4000:] for p in procs]
        raise AssertionError(f"{task} job failed with {codes}:\n" + "\n---\n".join(outputs))
    results = []
    for r in range(len(procs)):
        with open(os.path.join(directory, f"{task}-{r}.json")) as f:
            results.append(json.load(f))
    return results


def _all_tensors(prefix) -> dict:
    reader = trackpoint.load_checkpoint(prefix)
    return {k: reader.get_tensor(k) for k in reader.get_variable_to_shape_map()}


def _stored_slices(prefix, name: str) -> list:
    shape = ARRAYS[name][0]
    entry = BundleReader(prefix).entry(KEYS[name])
    return sorted(
        tuple((s, d if n == -1 else n) for (s, n), d in zip(box, shape)) for box in entry.slices
    )


def _expected_slices(name: str, world: int) -> list:
    """The distinct shards of the "save" layout on a (world, 2) mesh."""
    shape = ARRAYS[name][0]
    spec = LAYOUTS["save"][name] + (None,) * (len(shape) - len(LAYOUTS["save"][name]))
    sizes = {"a": world, "b": DEVICES_PER_PROCESS}
    parts = []
    for axes in spec:
        axes = () if axes is None else (axes,) if isinstance(axes, str) else axes
        parts.append(int(np.prod([sizes[a] for a in axes])) if axes else 1)
    boxes = []
    for index in np.ndindex(*parts):
        boxes.append(tuple((i * (d // p), d // p) for i, d, p in zip(index, shape, parts)))
    return sorted(boxes)


@pytest.fixture(scope="module")
def jobs(tmp_path_factory):
    pytest.importorskip("jax")
    pytest.importorskip("ml_dtypes")
    directory = tmp_path_factory.mktemp("jaxdist")
    four = finish_job(start_job(4, "save", directory), "save", directory)
    path = four[0]["saved"]
    two_procs = start_job(2, "reshard", directory, path=path, timeout=60, recoverable=True)
    one_procs = start_job(1, "single", directory, path=path)
    two = finish_job(two_procs, "reshard", directory, killed=(1,))
    one = finish_job(one_procs, "single", directory)
    return {"dir": directory, "four": four, "two": two, "one": one}


def _reference(tmp_path) -> str:
    """The same state saved by one process from numpy arrays."""
    from trackpoint.adapters.jax import PyTree

    ckpt = trackpoint.Checkpoint(**objects_of(full_value, PyTree))
    return ckpt.save(os.path.join(tmp_path, "reference", "ckpt"))


def test_four_processes_save_what_one_saves(jobs, tmp_path):
    four = jobs["four"]
    assert [r["saved"] for r in four] == [four[0]["saved"]] * 4
    assert [r["counter"] for r in four] == [1] * 4
    assert all(r["mismatches"] == [] for r in four), [r["mismatches"] for r in four]
    saved = _all_tensors(four[0]["saved"])
    reference = _all_tensors(_reference(tmp_path))
    assert sorted(saved) == sorted(reference)
    for k, want in reference.items():
        assert np.asarray(saved[k]).dtype == np.asarray(want).dtype, k
        np.testing.assert_array_equal(saved[k], want, err_msg=k)
    assert trackpoint.latest_checkpoint(os.path.dirname(four[0]["saved"])) == four[0]["saved"]


def test_each_distinct_shard_stored_once(jobs):
    prefix = jobs["four"][0]["saved"]
    for name in ("w", "k", "m", "mu", "solo"):
        assert _stored_slices(prefix, name) == _expected_slices(name, 4), name
    # k: 4 column blocks, each on both devices of one process; bias: replicated, whole.
    assert len(_stored_slices(prefix, "k")) == 4
    reader = BundleReader(prefix)
    assert reader.entry(KEYS["bias"]).slices == ()
    assert reader.entry(KEYS["count"]).slices == ()


def test_merged_checkpoints_pass_verify(jobs):
    for prefix in (jobs["four"][0]["saved"], jobs["two"][0]["saved"]):
        out = subprocess.run(
            [sys.executable, "-m", "trackpoint", "--no-progress", "verify", prefix],
            env=_env(),
            capture_output=True,
            text=True,
            check=False,
        )
        assert out.returncode == 0, out.stdout + out.stderr
        assert out.stdout.startswith("OK: "), out.stdout


@pytest.mark.parametrize(
    "job,what",
    [
        ("four", "same"),
        ("four", "resharded"),
        ("two", "from-four"),
        ("two", "same"),
        ("one", "from-four"),
    ],
)
def test_restores_read_only_their_shards(jobs, job, what):
    results = jobs[job]
    for r in results:
        assert r["mismatches"] == [], r["mismatches"]
        assert r[f"{what}-reads"] == r[f"{what}-want-reads"]
        assert r[f"{what}-reads"], "no region was read"
    if job != "one":  # the processes together read each shard of w, no process all of it
        w_reads = [[box for k, box in r[f"{what}-reads"] if k == KEYS["w"]] for r in results]
        assert all(0 < len(reads) < 8 for reads in w_reads), w_reads


def test_two_processes_save_what_one_saves(jobs, tmp_path):
    two = jobs["two"]
    saved = _all_tensors(two[0]["saved"])
    for k, want in _all_tensors(_reference(tmp_path)).items():
        np.testing.assert_array_equal(saved[k], want, err_msg=k)


def test_failures_raise_on_every_process(jobs):
    two = jobs["two"]
    # Rank 1 failed while planning: it raises its error, rank 0 an AbortedError naming it.
    assert two[1]["plan_failure"][0] == "RuntimeError"
    assert two[0]["plan_failure"][0] == "AbortedError"
    assert "rank 1" in two[0]["plan_failure"][1]
    assert "injected failure while planning" in two[0]["plan_failure"][1]
    assert [r["counter"] for r in two] == [1, 1]
    # Rank 1 never took part: rank 0 raised instead of waiting forever.
    assert two[0]["absent_peer"][0] == "CoordinationError"
    assert "rank 1" in two[0]["absent_peer"][1]
    # Rank 1 died after writing its part: rank 0 raised, the last save stays the latest.
    assert two[0]["dead_peer"][0] == "CoordinationError"
    assert "rank 1" in two[0]["dead_peer"][1]
    directory = os.path.dirname(two[0]["saved"])
    assert trackpoint.latest_checkpoint(directory) == two[0]["saved"]
    assert sorted(os.listdir(directory)) == [
        "checkpoint",
        "ckpt-1.data-00000-of-00002",
        "ckpt-1.data-00001-of-00002",
        "ckpt-1.index",
    ]


class _TwoSlices(trackpoint.Trackable):
    """Holds a (6, 4) tensor as two row blocks, as a process with two devices would."""

    def __init__(self, value):
        self.value = value

    def _serialize_to_tensors(self):
        from trackpoint.distributed import LocalSlice, LocalSlices

        parts = [
            LocalSlice(self.value[:2], (6, 4), (0, 0)),
            LocalSlice(self.value[2:], (6, 4), (2, 0)),
        ]
        return {"VARIABLE_VALUE": LocalSlices(parts, (6, 4))}


def test_several_slices_of_one_process(tmp_path):
    """Without JAX: one process saving two slices of a tensor."""
    value = np.arange(24, dtype=np.float32).reshape(6, 4)
    ckpt = trackpoint.Checkpoint(t=_TwoSlices(value))
    with pytest.raises(trackpoint.errors.InvalidArgumentError, match="cannot be saved by one"):
        ckpt.write(str(tmp_path / "plain"))
    coordinator = trackpoint.distributed.LocalCoordinator()
    path = trackpoint.distributed.write(ckpt, str(tmp_path / "sliced"), coordinator)
    k = "t/.ATTRIBUTES/VARIABLE_VALUE"
    assert sorted(BundleReader(path).entry(k).slices) == [((0, 2), (0, -1)), ((2, 4), (0, -1))]
    np.testing.assert_array_equal(trackpoint.load_checkpoint(path).get_tensor(k), value)


# ---- TensorFlow ------------------------------------------------------------------------------


TF_SCRIPT = r"""
import json, sys
import numpy as np
import tensorflow as tf
for prefix, out in json.loads(sys.argv[1]):
    reader = tf.train.load_checkpoint(prefix)
    values = {}
    for k in reader.get_variable_to_shape_map():
        if k != "_CHECKPOINTABLE_OBJECT_GRAPH":
            v = np.asarray(reader.get_tensor(k))
            values[k] = v.astype(np.float32) if v.dtype.name == "bfloat16" else v
    np.savez(out, **values)
"""


def test_tensorflow_reads_the_merged_checkpoints(jobs, tmp_path):
    python = TF_PYTHON
    if python is None:
        pytest.skip("TensorFlow is not available (set TRACKPOINT_TF_PYTHON)")
    job = [
        [jobs["four"][0]["saved"], str(tmp_path / "tf4.npz")],
        [jobs["two"][0]["saved"], str(tmp_path / "tf2.npz")],
    ]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    subprocess.run([python, "-c", TF_SCRIPT, json.dumps(job)], check=True, env=env, timeout=120)
    want = {k: np.asarray(v) for k, v in _all_tensors(_reference(tmp_path)).items()}
    del want["_CHECKPOINTABLE_OBJECT_GRAPH"]
    for _, out in job:
        with np.load(out) as theirs:
            assert sorted(theirs.files) == sorted(want)
            for k, value in want.items():
                value = value.astype(np.float32) if value.dtype.name == "bfloat16" else value
                np.testing.assert_array_equal(theirs[k], value, err_msg=k)


if __name__ == "__main__":
    _worker(json.loads(sys.argv[1]))
