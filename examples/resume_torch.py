"""Resuming a PyTorch training run with trackpoint, bit for bit.

Trains a small transformer with AdamW, a warmup + cosine LambdaLR, a
GradScaler, dropout, a data torch.Generator and numpy / Python randomness,
checkpointing everything every few steps with a CheckpointManager. Kill it at
any moment and run it again with the same arguments: it resumes from the
latest checkpoint, and its losses and final parameters are those of a run
never interrupted.

    python examples/resume_torch.py RUN_DIR [--steps 48] [--every 4]

Each step appends ``<step> <loss as float.hex>`` to RUN_DIR/losses.txt (a
resumed run repeats the steps after its checkpoint); at the end the final
parameters are written to RUN_DIR/final.txt, one ``name hex-bytes`` line per
tensor.
"""

import argparse
import json
import math
import os
import random

import numpy as np
import torch

import trackpoint

VOCAB, DIM, SEQ, BATCH = 32, 16, 8, 8


def build():
    """The model, its optimizer, scheduler and scaler, from fixed seeds."""
    torch.manual_seed(0)
    model = torch.nn.ModuleDict({
        "embed": torch.nn.Embedding(VOCAB, DIM),
        "encoder": torch.nn.TransformerEncoderLayer(
            DIM, nhead=2, dim_feedforward=32, dropout=0.1, batch_first=True),
        "head": torch.nn.Linear(DIM, VOCAB),
    })
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
    warmup, total = 5, 60

    def warmup_cosine(step):
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / (total - warmup))))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, warmup_cosine)
    # CPU autocast is not used here; the scaler still scales the loss, skips
    # steps with non-finite gradients and grows its scale, and all of that
    # state is checkpointed.
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10, growth_interval=7)
    return model, opt, sched, scaler


def batch(data_rng):
    """Random token sequences; the target is the next token, with numpy and
    Python randomness deciding the corruption (every RNG source is used)."""
    tokens = torch.randint(0, VOCAB, (BATCH, SEQ + 1), generator=data_rng)
    if random.random() < 0.5:
        tokens = tokens.flip(1)
    noise = torch.from_numpy(np.random.randint(0, 2, size=(BATCH, SEQ + 1)))
    tokens = (tokens + noise) % VOCAB
    return tokens[:, :-1], tokens[:, 1:]


def step_fn(model, opt, sched, scaler, data_rng):
    x, y = batch(data_rng)
    opt.zero_grad()
    logits = model["head"](model["encoder"](model["embed"](x)))
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, VOCAB), y.reshape(-1))
    scaler.scale(loss).backward()
    scaler.step(opt)
    scaler.update()
    sched.step()
    return loss.item()


def train(run_dir, steps=48, every=4):
    """Trains to ``steps``, resuming from the latest checkpoint in run_dir."""
    os.makedirs(run_dir, exist_ok=True)
    torch.set_num_threads(1)  # a tiny model: one thread is fastest, and deterministic
    random.seed(1)
    np.random.seed(2)
    model, opt, sched, scaler = build()
    data_rng = torch.Generator().manual_seed(3)
    progress = {"step": 0, "epoch": 0}  # a dict the loop mutates: saved as it is at each save
    progress_state = trackpoint.JsonState(progress)

    ckpt = trackpoint.Checkpoint(
        model=model, optimizer=opt, scheduler=sched, scaler=scaler, data_rng=data_rng,
        rng=trackpoint.RNGState(),  # random, numpy's global RNG, torch's CPU (and CUDA) RNGs
        progress=progress_state)
    manager = trackpoint.CheckpointManager(ckpt, os.path.join(run_dir, "ckpts"), max_to_keep=2)
    if manager.restore_or_initialize() is not None:
        progress = progress_state.value  # the restore replaced the JsonState's value
    model.train()

    # One write() per line: a kill never leaves half a line.
    log = os.open(os.path.join(run_dir, "losses.txt"), os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        while progress["step"] < steps:
            loss = step_fn(model, opt, sched, scaler, data_rng)
            progress["step"] += 1
            progress["epoch"] = progress["step"] // 16
            os.write(log, f"{progress['step']} {loss.hex()}\n".encode())
            if progress["step"] % every == 0:
                manager.save(checkpoint_number=progress["step"])
    finally:
        os.close(log)

    with open(os.path.join(run_dir, "final.txt"), "w") as out:
        out.writelines(f"{name} {tensor.numpy().tobytes().hex()}\n"
                       for name, tensor in model.state_dict().items())
        out.write(f"scaler {scaler.state_dict()}\nlr {sched.get_last_lr()[0].hex()}\n")
        out.write(f"progress {json.dumps(progress, sort_keys=True)}\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir")
    parser.add_argument("--steps", type=int, default=48)
    parser.add_argument("--every", type=int, default=4, help="checkpoint every N steps")
    args = parser.parse_args()
    train(args.run_dir, args.steps, args.every)


if __name__ == "__main__":
    main()
