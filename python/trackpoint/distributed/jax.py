"""JAX multi-process checkpoints: a coordinator over ``jax.distributed``, and
``jax.Array``s sharded over processes saved as slices.

:class:`JaxCoordinator` exchanges the save's metadata through the key-value
store of the coordination service that ``jax.distributed.initialize`` starts
(as Orbax does); no collective runs on the devices. With it, a
:class:`~trackpoint.adapters.jax.PyTree` whose arrays span several
processes saves each process's addressable shards as TensorFlow slices (a
shard held by several devices or processes is written once), and a restore
builds every array in the sharding of the tree's current array, each
process reading only the stored slices its devices need, whatever sharding
and number of processes saved it.

Example (run on every process)::

    import jax
    import trackpoint
    from trackpoint.adapters.jax import PyTree
    from trackpoint.distributed.jax import JaxCoordinator

    jax.distributed.initialize("10.0.0.1:1234", num_processes=4, process_id=i)
    state = PyTree(train_state)                  # arrays sharded over a global mesh
    ckpt = trackpoint.Checkpoint(state=state)
    options = trackpoint.CheckpointOptions(experimental_coordinator=JaxCoordinator())
    path = ckpt.save("/shared/run/ckpt", options=options)
    ckpt.restore(path, options=options)          # into the shardings of state.tree
    train_state = state.tree

This module imports JAX only when it is used.
"""

from __future__ import annotations

import contextlib
import itertools
import time

import numpy as np

from ..errors import InvalidArgumentError
from .coordinator import CoordinationError, Coordinator, decode_message, encode_message
from .sharded import LocalSlice, LocalSlices

__all__ = ["JaxCoordinator", "addressable_slices", "host_value", "make_array", "spans_processes"]

_instances = itertools.count()


class JaxCoordinator(Coordinator):
    """Coordinates through the key-value store of ``jax.distributed``.

    Args:
        timeout: seconds one exchange may wait for the other processes
            before raising :class:`CoordinationError` (default 300).
        name: the key prefix of this coordinator's exchanges in the store
            (default: ``trackpoint/coordinator-<n>``, n counting the
            coordinators this process created, so every process must create
            them in the same order).

    ``jax.distributed.initialize(...)`` must have run. Rank and world size are
    JAX's process index and count. Each exchange writes this process's value
    under ``<name>/<round>/<rank>`` and waits for the others' keys; a
    process's key of a round is deleted after the next round, when every
    process has read it.

    Example::

        jax.distributed.initialize(coordinator_address="127.0.0.1:1234",
                                   num_processes=2, process_id=rank)
        coordinator = JaxCoordinator(timeout=60)
        coordinator.all_gather({"rank": coordinator.rank})   # [{'rank': 0}, {'rank': 1}]
    """

    def __init__(self, timeout: float = 300, name: str | None = None):
        from jax._src import distributed  # the client has no public spelling

        state = distributed.global_state
        if state.client is None:
            raise CoordinationError(
                "JaxCoordinator needs jax.distributed: call jax.distributed.initialize(...) first"
            )
        self._client = state.client
        self._rank = int(state.process_id)
        self._world_size = int(state.num_processes)
        self._timeout = float(timeout)
        self._name = name if name is not None else f"trackpoint/coordinator-{next(_instances)}"
        self._round = 0

    @property
    def rank(self) -> int:
        return self._rank

    @property
    def world_size(self) -> int:
        return self._world_size

    def _fail(self, what: str, e: BaseException) -> CoordinationError:
        return CoordinationError(
            f"rank {self._rank} of {self._world_size}: {what} failed (another process "
            f"died, or did not take part within {self._timeout:g} s): {e}"
        )

    def all_gather(self, obj) -> list:
        data = encode_message(obj).decode("ascii")  # JSON escapes every non-ASCII character
        round_ = self._round
        self._round += 1
        base = f"{self._name}/{round_}"
        try:
            self._client.key_value_set(f"{base}/{self._rank}", data)
        except Exception as e:  # jax raises its runtime error
            raise self._fail(f"publishing round {round_}", e) from e
        deadline = time.monotonic() + self._timeout
        values = []
        for rank in range(self._world_size):
            if rank == self._rank:
                values.append(data)
                continue
            left_ms = max(int((deadline - time.monotonic()) * 1000), 1)
            try:
                values.append(self._client.blocking_key_value_get(f"{base}/{rank}", left_ms))
            except Exception as e:
                raise self._fail(f"waiting for rank {rank} in round {round_}", e) from e
        if round_ > 0:
            # Every process has read round - 1: each published in this round after it.
            with contextlib.suppress(Exception):  # a leftover key is harmless
                self._client.key_value_delete(f"{self._name}/{round_ - 1}/{self._rank}")
        return [decode_message(v.encode("ascii")) for v in values]


# ---- jax.Arrays as slices ----------------------------------------------------------------
def _box(index, shape) -> tuple:
    """(offsets, shape) of a shard's index (a tuple of slices) in shape."""
    offsets, sizes = [], []
    for i, d in enumerate(shape):
        s = index[i] if i < len(index) else slice(None)
        start, stop, step = s.indices(int(d))
        if step != 1:
            raise InvalidArgumentError(f"a shard with step {step} along dimension {i}")
        offsets.append(start)
        sizes.append(stop - start)
    return tuple(offsets), tuple(sizes)


def spans_processes(value) -> bool:
    """Whether value is a ``jax.Array`` with devices in other processes."""
    return not getattr(value, "is_fully_addressable", True)


def host_value(array) -> np.ndarray:
    """The whole value of a ``jax.Array`` as numpy: from one of this
    process's shards when the array is replicated over processes."""
    if spans_processes(array):
        if not array.is_fully_replicated:
            raise InvalidArgumentError(
                f"a {array.dtype} array of shape {list(array.shape)} sharded over processes "
                "has no whole value on one process: save its addressable_slices"
            )
        return np.asarray(array.addressable_shards[0].data)
    return np.asarray(array)


def addressable_slices(array) -> LocalSlices:
    """This process's distinct shards of a ``jax.Array`` as slices.

    Example: an (8, 3) array sharded by rows over 4 devices, 2 per process,
    gives process 1 ``[rows 4:6, rows 6:8]`` as ``LocalSlice``s at offsets
    ``(4, 0)`` and ``(6, 0)``.
    """
    shape = tuple(int(d) for d in array.shape)
    slices: dict = {}
    for shard in array.addressable_shards:
        offsets, sizes = _box(shard.index, shape)
        if (offsets, sizes) not in slices:
            slices[offsets, sizes] = LocalSlice(np.asarray(shard.data), shape, offsets)
    return LocalSlices(list(slices.values()), shape)


def make_array(read_box, shape, sharding):
    """A ``jax.Array`` of ``shape`` in ``sharding`` whose shards come from
    ``read_box(extents)`` (``(start, length)`` per dimension -> numpy),
    called once per distinct shard of this process's devices."""
    import jax

    shape = tuple(int(d) for d in shape)
    cache: dict = {}

    def shard(index):
        box = _box(index, shape)
        if box not in cache:
            cache[box] = read_box(list(zip(*box)))
        return cache[box]

    return jax.make_array_from_callback(shape, sharding, shard)
