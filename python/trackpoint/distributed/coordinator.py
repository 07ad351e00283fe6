"""How the processes of one multi-process save talk to each other.

A :class:`Coordinator` knows this process's rank, the number of processes,
and how to exchange small JSON-serializable values (dicts, lists, strings,
numbers, booleans, None) with the others. trackpoint never sends tensors
through it, only metadata (a hash of the object graph, slice offsets, part
names, success or failure), and never pickles anything.

:class:`TorchCoordinator` uses an existing ``torch.distributed`` process
group (gloo or nccl), :class:`~trackpoint.distributed.JaxCoordinator` the
key-value store of ``jax.distributed``; other engines (mpi4py, ...) need only
``rank``, ``world_size`` and ``all_gather``.

Example::

    import torch.distributed as dist
    from trackpoint.distributed import TorchCoordinator

    dist.init_process_group("gloo", timeout=datetime.timedelta(minutes=5))
    coordinator = TorchCoordinator()
    coordinator.all_gather({"rank": coordinator.rank})   # [{'rank': 0}, {'rank': 1}, ...]
"""

from __future__ import annotations

import datetime
import json

from ..errors import CheckpointError

__all__ = ["CoordinationError", "Coordinator", "LocalCoordinator", "TorchCoordinator"]


class CoordinationError(CheckpointError):
    """Processes could not exchange what a save or restore needs: one of them
    died, hung past the timeout, or the process group is broken."""


def encode_message(obj) -> bytes:
    try:
        return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode("utf-8")
    except (TypeError, ValueError) as e:
        raise TypeError(f"coordinators exchange JSON-serializable values only: {e}") from None


def decode_message(data: bytes):
    return json.loads(data.decode("utf-8"))


class Coordinator:
    """The processes taking part in one save, as seen from one of them.

    Subclasses implement ``rank``, ``world_size`` and ``all_gather``;
    ``barrier`` and ``broadcast`` have default implementations on top of
    ``all_gather``. Every process must make the same calls in the same
    order. A call that cannot complete raises :class:`CoordinationError`.
    """

    @property
    def rank(self) -> int:
        """This process's number, 0 to ``world_size - 1``."""
        raise NotImplementedError

    @property
    def world_size(self) -> int:
        """The number of processes."""
        raise NotImplementedError

    def all_gather(self, obj) -> list:
        """Every process's ``obj`` (JSON-serializable), indexed by rank."""
        raise NotImplementedError

    def broadcast(self, obj, src: int = 0):
        """Process ``src``'s ``obj``, on every process (others pass anything)."""
        return self.all_gather(obj if self.rank == src else None)[src]

    def barrier(self) -> None:
        """Returns once every process has called it."""
        self.all_gather(None)


class LocalCoordinator(Coordinator):
    """A single process: rank 0 of 1. Lets code written for several
    processes run in one (and restore a multi-process checkpoint there)."""

    @property
    def rank(self) -> int:
        return 0

    @property
    def world_size(self) -> int:
        return 1

    def all_gather(self, obj) -> list:
        return [decode_message(encode_message(obj))]


class TorchCoordinator(Coordinator):
    """Coordinates through a ``torch.distributed`` process group.

    Args:
        group: the process group (default: the default group, which must be
            initialized already).
        timeout: a ``datetime.timedelta`` or seconds; each exchange that
            takes longer raises :class:`CoordinationError` (default: the
            process group's own timeout, set by ``init_process_group``).

    Values travel as UTF-8 JSON in uint8 tensors: on the CPU for gloo, on
    the current CUDA device for nccl.
    """

    def __init__(self, group=None, timeout=None):
        import torch.distributed as dist

        if not dist.is_available() or not dist.is_initialized():
            raise CoordinationError(
                "TorchCoordinator needs an initialized torch.distributed process "
                "group: call torch.distributed.init_process_group(...) first"
            )
        self._dist = dist
        self._group = group
        if timeout is not None and not isinstance(timeout, datetime.timedelta):
            timeout = datetime.timedelta(seconds=float(timeout))
        self._timeout = timeout
        self._rank = dist.get_rank(group)
        self._world_size = dist.get_world_size(group)
        backend = str(dist.get_backend(group)).lower()
        self._device = "cpu"
        if "nccl" in backend:
            import torch

            self._device = f"cuda:{torch.cuda.current_device()}"

    @property
    def rank(self) -> int:
        return self._rank

    @property
    def world_size(self) -> int:
        return self._world_size

    def _all_gather_tensor(self, tensor, what: str) -> list:
        import torch

        out = [torch.empty_like(tensor) for _ in range(self._world_size)]
        try:
            if self._timeout is None:
                self._dist.all_gather(out, tensor, group=self._group)
            else:
                work = self._dist.all_gather(out, tensor, group=self._group, async_op=True)
                work.wait(timeout=self._timeout)
        except Exception as e:
            raise CoordinationError(
                f"rank {self._rank} of {self._world_size}: {what} failed (another process "
                f"died, or did not take part within the timeout): {e}"
            ) from e
        return out

    def all_gather(self, obj) -> list:
        import torch

        data = encode_message(obj)
        size = torch.tensor([len(data)], dtype=torch.int64, device=self._device)
        sizes = [int(s.item()) for s in self._all_gather_tensor(size, "exchanging sizes")]
        buffer = torch.zeros(max(sizes), dtype=torch.uint8)
        if data:
            buffer[: len(data)] = torch.frombuffer(bytearray(data), dtype=torch.uint8)
        gathered = self._all_gather_tensor(buffer.to(self._device), "exchanging values")
        return [decode_message(bytes(t[:n].cpu().numpy().tobytes())) for t, n in zip(gathered, sizes)]
