"""Multi-process checkpoints: every process saves its share, one checkpoint results.

Processes that already run under a coordination engine (``torch.distributed``
with gloo or nccl; ``jax.distributed`` with :class:`JaxCoordinator`, whose
sharded ``jax.Array``s save the shards each process holds; others through
:class:`Coordinator`) save together: each
writes its own tensors, and its slices of partitioned tensors, to a part
bundle, and rank 0 merges the parts into one TensorFlow-format checkpoint
that any reader (and TensorFlow) opens as usual. A restore into another
partitioning or another number of processes reads only the slices each
process needs.

Example (run on every process)::

    import torch.distributed as dist
    import trackpoint
    from trackpoint.distributed import ShardedTensor, TorchCoordinator, even_split

    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    offsets, shape = even_split((50_000, 512), rank, world)
    model = trackpoint.AutoTrackable()
    model.embedding = ShardedTensor(np.zeros(shape, np.float32), (50_000, 512), offsets)
    model.bias = trackpoint.Variable(np.zeros(512, np.float32))     # replicated
    ckpt = trackpoint.Checkpoint(model=model)

    options = trackpoint.CheckpointOptions(experimental_coordinator=TorchCoordinator())
    path = ckpt.save("/shared/run/ckpt", options=options)   # same path on every rank
    ckpt.restore(path, options=options)
"""

from .coordinator import CoordinationError, Coordinator, LocalCoordinator, TorchCoordinator
from .jax import JaxCoordinator
from .restoring import read_region, restore
from .saving import AbortedError, save, write
from .sharded import LocalSlice, LocalSlices, ShardedTensor, even_split

__all__ = [
    "AbortedError",
    "CoordinationError",
    "Coordinator",
    "JaxCoordinator",
    "LocalCoordinator",
    "LocalSlice",
    "LocalSlices",
    "ShardedTensor",
    "TorchCoordinator",
    "even_split",
    "read_region",
    "restore",
    "save",
    "write",
]
