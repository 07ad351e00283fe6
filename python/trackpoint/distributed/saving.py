"""Multi-process saves: every process writes its share to its own part
bundle, rank 0 merges the parts into one checkpoint.

Protocol of one save of prefix ``P`` by ``N`` processes:

1. Every process walks its object graph and plans the save. They exchange
   a hash of (P, N, the serialized object graph, every key with its dtype
   and full shape) and the offsets and shapes of their slices of partitioned
   tensors. Different hashes, or slices that overlap or leave part of a
   tensor uncovered, stop the save here, before anything is written.
2. The work is assigned, identically on every process, from what was
   exchanged: each distinct slice to one process holding it, each
   replicated tensor to one process (the largest first, each to the process
   with the fewest bytes so far, or all to rank 0), the object graph to
   rank 0.
3. Process ``r`` writes its share to ``P_temp/part-<r>-of-<N>`` (as
   TensorFlow names parts), a complete bundle of its own, fsynced.
4. The processes exchange success or failure. If any failed, nothing is
   committed: the parts are deleted and every process raises.
5. Rank 0 merges the parts into ``P`` (C++ ``MergeBundles``: the data
   files are renamed to ``P.data-0000i-of-0000M``, the index is written
   under a temporary name, fsynced and renamed last), runs the commit hook
   (the state file, for ``save``), and tells every process the outcome; no
   process returns before that.

A process that dies or hangs makes the others' next exchange fail (at
once when its connection drops, or after the coordinator's timeout) with
:class:`~trackpoint.distributed.CoordinationError`: the index of ``P`` is
only ever written after every process reported success.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import re
import shutil

import numpy as np

from .. import _core
from .._restore import OBJECT_GRAPH_KEY
from .._saver import (
    describe_graph, give_back_number, graph_root, plan_save, run_write_callbacks,
)
from ..bundle import FULL_EXTENT, BundleWriter
from ..dtypes import as_dtype
from ..errors import CheckpointError, InvalidArgumentError
from .coordinator import CoordinationError, Coordinator
from .sharded import LocalSlice, LocalSlices, is_torch, torch_as_numpy, torch_dtype_name

__all__ = ["AbortedError", "save", "write"]

# How replicated tensors are spread over the processes.
BALANCE = "balance"  # largest first, each to the least-loaded process
RANK0 = "rank0"  # all on rank 0


class AbortedError(CheckpointError):
    """A multi-process save was abandoned because a process failed (this one
    or another); nothing was committed."""


def describe_error(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}"


class _Tensor:
    """One tensor of the save, as planned on this process."""

    __slots__ = ("dtype", "key", "local", "shape", "value")

    def __init__(self, key, dtype, shape, value, local):
        self.key = key
        self.dtype = dtype  # DType
        self.shape = shape  # full shape
        self.value = value  # what to write: {(offsets, shape): slice} when local
        self.local = local  # [(offsets, shape)] of this process's slices, or None

    def nbytes(self, shape=None) -> int:
        shape = self.shape if shape is None else shape
        n = int(np.prod(shape, dtype=np.int64)) if shape else 1
        if self.dtype.name == "string":
            values = self.value.values() if isinstance(self.value, dict) else [self.value]
            return n + sum(len(x) for v in values for x in np.asarray(v).reshape(-1))
        return n * self.dtype.size


def _describe_value(value, dtype) -> tuple:
    """(DType, shape, value to write) of a replicated value; torch tensors
    stay as they are until written (only one process copies them)."""
    if is_torch(value):
        return dtype or as_dtype(torch_dtype_name(value)), tuple(value.shape), value
    if isinstance(value, (bytes, str)):
        array = np.array(value, dtype=object)
    else:
        array = np.asarray(value)
    if dtype is None:
        dtype = as_dtype("string" if array.dtype.kind in "OSU" else array.dtype)
    if dtype.name == "string" and array.dtype.kind != "O":
        array = array.astype(object)
    return dtype, tuple(array.shape), array


def _plan(root) -> tuple:
    """(tensors, serialized object graph) for a save of root on this process."""
    objects, specs, values = describe_graph(root)
    plan = plan_save(specs)
    tensors = []
    for obj_index, tensor_index in plan["tensor_order"]:
        name = specs[obj_index]["tensor_names"][tensor_index]
        key = plan["keys"][obj_index][tensor_index]
        value = values[obj_index][name]
        spec = objects[obj_index]._tensor_specs().get(name)
        dtype = as_dtype(spec[0]) if spec else None
        if isinstance(value, (LocalSlice, LocalSlices)):
            slices = value.slices if isinstance(value, LocalSlices) else [value]
            if not slices:
                raise InvalidArgumentError(f"no slice of {key!r} to save on this process")
            dtype = dtype or value.dtype or slices[0].dtype or as_dtype(slices[0].numpy().dtype)
            boxes = {(s.offsets, s.shape): s.numpy() for s in slices}
            if len(boxes) != len(slices):
                raise InvalidArgumentError(f"this process holds a slice of {key!r} twice")
            tensors.append(_Tensor(key, dtype, value.full_shape, boxes, list(boxes)))
        else:
            dtype, shape, value = _describe_value(value, dtype)
            tensors.append(_Tensor(key, dtype, shape, value, None))
    return tensors, plan["serialized_graph"]


def _digest(prefix: str, world_size: int, tensors, graph: bytes) -> str:
    h = hashlib.sha256()
    h.update(
        json.dumps(
            [
                prefix,
                world_size,
                [[t.key, t.dtype.name, list(t.shape), t.local is not None] for t in tensors],
            ]
        ).encode("utf-8")
    )
    h.update(graph)
    return h.hexdigest()


def _check_tiling(key: str, shape, slices) -> None:
    """The distinct slices of a tensor must cover it without overlapping."""
    total = int(np.prod(shape, dtype=np.int64)) if shape else 1
    covered = 0
    for i, (offsets, size) in enumerate(slices):
        covered += int(np.prod(size, dtype=np.int64)) if size else 1
        for other_offsets, other_size in slices[:i]:
            if all(
                o < p + m and p < o + n
                for o, n, p, m in zip(offsets, size, other_offsets, other_size)
            ):
                raise InvalidArgumentError(
                    f"the slices of {key!r} held by the processes overlap: "
                    f"{list(zip(offsets, size))} and {list(zip(other_offsets, other_size))}"
                )
    if covered != total:
        raise InvalidArgumentError(
            f"the slices of {key!r} held by the processes cover {covered} of its {total} elements"
        )


def _assign(tensors, gathered_slices, world_size: int, policy: str, graph_bytes: int) -> list:
    """Who writes what, the same on every process: per rank, a list of
    (tensor index, (offsets, shape) or None for the whole tensor)."""
    holders_by_tensor: dict = {}  # tensor index -> {(offsets, shape): [ranks]}
    for rank, slices in enumerate(gathered_slices):
        for index, offsets, shape in slices:
            holders = holders_by_tensor.setdefault(index, {})
            holders.setdefault((tuple(offsets), tuple(shape)), []).append(rank)
    units = []  # (nbytes, tensor index, slice or None, candidate ranks)
    for index, t in enumerate(tensors):
        if t.local is None:
            candidates = list(range(world_size)) if policy == BALANCE else [0]
            units.append((t.nbytes(), index, None, candidates))
            continue
        holders = holders_by_tensor.get(index, {})
        slices = sorted(holders)
        _check_tiling(t.key, t.shape, slices)
        for box in slices:
            units.append((t.nbytes(box[1]), index, box, holders[box]))
    loads = [0] * world_size
    loads[0] += graph_bytes
    work = [[] for _ in range(world_size)]
    # Units only one process can write first, then the rest largest first.
    units.sort(key=lambda u: (len(u[3]) > 1, -u[0], u[1], u[2] or ()))
    for nbytes, index, box, candidates in units:
        rank = min(candidates, key=lambda r: (loads[r], r))
        loads[rank] += nbytes
        work[rank].append((index, box))
    return work


def _part_prefix(prefix: str, rank: int, world_size: int) -> str:
    return os.path.join(prefix + "_temp", f"part-{rank:05d}-of-{world_size:05d}")


def _write_part(part: str, tensors, work, graph: bytes | None, sync: bool) -> None:
    with BundleWriter(part, sync=sync) as writer:
        for index, box in sorted(work):
            t = tensors[index]
            if box is None:
                value = torch_as_numpy(t.value) if is_torch(t.value) else t.value
                writer.add(t.key, value, dtype=t.dtype)
                continue
            offsets, shape = box
            extents = [
                (0, FULL_EXTENT) if o == 0 and n == d else (o, n)
                for o, n, d in zip(offsets, shape, t.shape)
            ]
            writer.add_slice(t.key, t.shape, extents, t.value[box], dtype=t.dtype)
        if graph is not None:
            writer.add(OBJECT_GRAPH_KEY, np.array(graph, dtype=object))


def _remove_part(part: str) -> None:
    for name in [part + ".index"] + glob.glob(glob.escape(part) + ".data-*"):
        try:
            os.unlink(name)
        except OSError:
            pass


def _remove_stale_data_files(prefix: str, num_shards: int) -> None:
    """Data files of an older checkpoint at the same prefix with another
    shard count (the merge replaced the others)."""
    pattern = re.compile(re.escape(os.path.basename(prefix)) + r"\.data-\d{5,}-of-(\d{5,})")
    for name in glob.glob(glob.escape(prefix) + ".data-*-of-*"):
        m = pattern.fullmatch(os.path.basename(name))
        if m and int(m.group(1)) != num_shards:
            try:
                os.unlink(name)
            except OSError:
                pass


def _raise_for(errors: list, own: BaseException | None, prefix: str, what: str):
    """Raises on every process once any failed: the original error where it
    happened, an AbortedError naming the failed processes elsewhere."""
    if own is not None:
        raise own
    listing = "; ".join(f"rank {rank}: {message}" for rank, message in errors)
    raise AbortedError(
        f"{what} {prefix} failed on another process, nothing was committed ({listing})"
    )


def write_object_graph(
    root,
    prefix,
    coordinator: Coordinator,
    *,
    on_commit=None,
    replicated: str = BALANCE,
    sync: bool = True,
) -> str:
    """Writes the checkpoint of root at prefix, each process its share.

    Every process of the coordinator must call it with the same prefix and
    an object graph of the same structure. ``on_commit(prefix)`` runs on
    rank 0 once the checkpoint is complete and before any process returns.
    Raises on every process if any fails; then nothing is committed.
    """
    if replicated not in (BALANCE, RANK0):
        raise ValueError(f"replicated must be {BALANCE!r} or {RANK0!r}, got {replicated!r}")
    prefix = os.fspath(prefix)
    rank, world_size = coordinator.rank, coordinator.world_size
    temp_dir = prefix + "_temp"
    part = _part_prefix(prefix, rank, world_size)

    # 1. Plan, and check that every process plans the same save.
    own = None
    try:
        if rank == 0:
            shutil.rmtree(temp_dir, ignore_errors=True)  # left by an interrupted save
        tensors, graph = _plan(root)
        mine = {
            "digest": _digest(prefix, world_size, tensors, graph),
            "slices": [
                [i, list(offsets), list(shape)]
                for i, t in enumerate(tensors)
                if t.local is not None
                for offsets, shape in t.local
            ],
        }
    except Exception as e:  # noqa: BLE001 -- reported to the others, then re-raised
        own, mine = e, {"error": describe_error(e)}
    gathered = coordinator.all_gather(mine)
    errors = [(r, g["error"]) for r, g in enumerate(gathered) if "error" in g]
    if errors:
        _raise_for(errors, own, prefix, "saving")
    if len({g["digest"] for g in gathered}) > 1:
        groups: dict = {}
        for r, g in enumerate(gathered):
            groups.setdefault(g["digest"], []).append(r)
        raise InvalidArgumentError(
            f"the processes saving {prefix} disagree on what to save (the object graph, "
            f"a key, dtype or shape, or the path differ): ranks grouped by what they "
            f"save: {sorted(groups.values())}"
        )
    work = _assign(tensors, [g["slices"] for g in gathered], world_size, replicated, len(graph))

    # 2. Write this process's part, then vote.
    wrote = bool(work[rank]) or rank == 0
    try:
        if wrote:
            _write_part(part, tensors, work[rank], graph if rank == 0 else None, sync)
        mine = {"part": part if wrote else None}
    except Exception as e:  # noqa: BLE001
        own, mine = e, {"error": describe_error(e)}
    try:
        votes = coordinator.all_gather(mine)
    except CoordinationError:
        _remove_part(part)
        if rank == 0:
            shutil.rmtree(temp_dir, ignore_errors=True)
        raise
    errors = [(r, v["error"]) for r, v in enumerate(votes) if "error" in v]
    if errors:
        _remove_part(part)
        if rank == 0:
            shutil.rmtree(temp_dir, ignore_errors=True)
        _raise_for(errors, own, prefix, "saving")

    # 3. Rank 0 commits; nobody returns before it has.
    outcome = None
    if rank == 0:
        parts = [v["part"] for v in votes if v["part"] is not None]
        merged = False
        try:
            _core.merge_bundles(parts, prefix, sync=sync)
            merged = True
            _remove_stale_data_files(prefix, len(parts))
            shutil.rmtree(temp_dir, ignore_errors=True)
            if on_commit is not None:
                on_commit(prefix)
            outcome = {"committed": True}
        except Exception as e:  # noqa: BLE001
            own, outcome = e, {"error": describe_error(e), "merged": merged}
            shutil.rmtree(temp_dir, ignore_errors=True)
    try:
        outcome = coordinator.broadcast(outcome, src=0)
    except CoordinationError as e:
        if rank == 0 and own is None:
            raise CoordinationError(
                f"{prefix} was committed, but not every process could be told: {e}"
            ) from e
        raise
    if "error" in outcome:
        if own is not None:
            raise own
        if outcome["merged"]:
            raise AbortedError(
                f"{prefix} was written, but rank 0 failed to record it: {outcome['error']}"
            )
        _raise_for([(0, outcome["error"])], None, prefix, "committing")
    return prefix


# ---- entry points --------------------------------------------------------------------------
def write(
    checkpoint, file_prefix, coordinator: Coordinator, *, replicated: str = BALANCE, options=None
) -> str:
    """Writes ``checkpoint`` (a :class:`~trackpoint.Checkpoint` or any
    trackable) at exactly ``file_prefix`` from every process of
    ``coordinator``; like ``Checkpoint.write``, no counter and no state file.

    Call it on every process. Replicated tensors (every value that is not a
    :class:`~trackpoint.distributed.ShardedTensor` slice) are written once, by
    one process: ``replicated="balance"`` (default) spreads them by size,
    ``"rank0"`` leaves them all to rank 0.

    Example::

        coordinator = trackpoint.distributed.TorchCoordinator()
        trackpoint.distributed.write(ckpt, "/shared/run/step-100", coordinator)
    """
    path = os.fspath(file_prefix)
    sync = getattr(checkpoint, "sync", None)
    if sync is not None:
        sync()  # a pending asynchronous save of this checkpoint goes first
    write_object_graph(graph_root(checkpoint), path, coordinator, replicated=replicated)
    _run_callbacks(options, path)
    return path


def save(
    checkpoint, file_prefix, coordinator: Coordinator, *, replicated: str = BALANCE, options=None
) -> str:
    """Like ``Checkpoint.save`` from every process: increments
    ``save_counter``, writes ``<file_prefix>-<counter>``, and rank 0 records
    it in the ``checkpoint`` state file before any process returns. Returns
    the same path on every process."""
    from ..state_file import update_checkpoint_state

    sync = getattr(checkpoint, "sync", None)
    if sync is not None:
        sync()  # a pending save's failure gives its number back first
    counter = checkpoint.save_counter
    number = int(counter) + 1
    counter.assign(number)
    path = f"{os.fspath(file_prefix)}-{number}"
    try:
        write_object_graph(
            graph_root(checkpoint),
            path,
            coordinator,
            replicated=replicated,
            on_commit=lambda p: update_checkpoint_state(os.path.dirname(p), p, [p],
                                                    save_relative_paths=True),
        )
    except BaseException:
        give_back_number(counter, number)
        raise
    _run_callbacks(options, path)
    return path


def _run_callbacks(options, path: str) -> None:
    if options is not None:
        run_write_callbacks(options, path)


def checkpoint_write_hook(checkpoint, path: str, options, on_done=None) -> None:
    """What ``Checkpoint`` runs for a write with ``experimental_coordinator``
    set: a synchronous multi-process write; ``on_done()`` (the state file of
    ``save``) runs on rank 0 before any process returns."""
    sync = getattr(checkpoint, "sync", None)
    if sync is not None:
        sync()
    write_object_graph(
        graph_root(checkpoint),
        path,
        options.experimental_coordinator,
        on_commit=(lambda _: on_done()) if on_done is not None else None,
    )
    _run_callbacks(options, path)
