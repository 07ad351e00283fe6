"""Resuming a JAX + optax training run with trackpoint.

Everything the run depends on goes into one Checkpoint: the parameters, the
optax state, the typed PRNG keys (the data stream and the noise stream) and
the step. Kill the process at any point and start it again: it resumes from
the latest checkpoint and produces the same losses and the same final
parameters, bit for bit, as a run that was never interrupted.

    python examples/resume_jax.py --dir /tmp/run --steps 40
    python examples/resume_jax.py --dir /tmp/run --steps 60   # continues at step 41

Each step prints ``STEP LOSS`` (the float32 loss as ``float.hex``).
"""

from __future__ import annotations

import argparse
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax

import trackpoint
from trackpoint.adapters.jax import PyTree

BATCH, IN, HIDDEN, OUT = 32, 8, 16, 1
KEEP = 0.9  # dropout keep probability


def init_params(key):
    k1, k2 = jax.random.split(key)
    return {
        "hidden": {"w": jax.random.normal(k1, (IN, HIDDEN)) / IN**0.5, "b": jnp.zeros(HIDDEN)},
        "out": {"w": jax.random.normal(k2, (HIDDEN, OUT)) / HIDDEN**0.5, "b": jnp.zeros(OUT)},
    }


def batch(key):
    """A batch of a fixed target function, drawn from the data stream."""
    x = jax.random.normal(key, (BATCH, IN))
    return x, jnp.sin(x.sum(axis=1, keepdims=True))


def loss_fn(params, x, y, noise_key):
    h = jax.nn.relu(x @ params["hidden"]["w"] + params["hidden"]["b"])
    h = h * jax.random.bernoulli(noise_key, KEEP, h.shape) / KEEP  # dropout
    pred = h @ params["out"]["w"] + params["out"]["b"]
    return jnp.mean((pred - y) ** 2)


optimizer = optax.adam(1e-2)


@jax.jit
def init_state():
    """Parameters, optimizer state and the PRNG keys of a new run."""
    params = init_params(jax.random.key(0))
    rng = {"data": jax.random.key(1), "noise": jax.random.key(2)}
    return params, optimizer.init(params), rng


@jax.jit
def train_step(params, opt_state, rng):
    data_key, batch_key = jax.random.split(rng["data"])
    noise_key, step_noise = jax.random.split(rng["noise"])
    x, y = batch(batch_key)
    loss, grads = jax.value_and_grad(loss_fn)(params, x, y, step_noise)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    params = optax.apply_updates(params, updates)
    return params, opt_state, {"data": data_key, "noise": noise_key}, loss


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dir", required=True, help="checkpoint directory")
    parser.add_argument("--steps", type=int, default=40, help="train until this step")
    parser.add_argument("--every", type=int, default=3, help="save every N steps")
    args = parser.parse_args(argv)

    params, opt_state, rng = (PyTree(tree) for tree in init_state())
    step = trackpoint.Variable(0, dtype="int64")
    ckpt = trackpoint.Checkpoint(params=params, opt_state=opt_state, rng=rng, step=step)
    manager = trackpoint.CheckpointManager(ckpt, args.dir, max_to_keep=2)
    if manager.restore_or_initialize() is not None:
        print(f"# resumed from {manager.latest_checkpoint} at step {int(step)}", flush=True)

    while int(step) < args.steps:
        params.tree, opt_state.tree, rng.tree, loss = train_step(
            params.tree, opt_state.tree, rng.tree
        )
        step.assign_add(1)
        print(f"{int(step)} {float(loss).hex()}", flush=True)
        if int(step) % args.every == 0 or int(step) == args.steps:
            manager.save(checkpoint_number=int(step))
    manager.close()
    w = np.asarray(params.tree["out"]["w"])
    print(f"# done at step {int(step)}; out/w sum {float(w.sum()).hex()}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
