"""A Dia training loop: AMP (bf16 autocast, or fp16 with GradScaler), gradient accumulation, clipping,
warm-up + cosine LR, atomic checkpoints with exact resume, tqdm progress, and DDP under ``torchrun``.

Batches are drawn from a deterministic stream: step ``s`` uses stream positions ``s*G .. s*G+G-1``
(``G = micro_batch_size x grad_accum x world_size``; one fresh shuffle per epoch), and each step's loss is
divided by the number of targets of the *whole* step. So 4 micro-batches of 1, one batch of 4, or 2
processes of 2 give the same loss and gradients, and a resumed run continues the same curve.
Used by notebook 05; run ``torchrun --nproc_per_node 2 -m tts_nb_utils.dia.train --steps 20`` for DDP.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from ..device import AUTOCAST_PRECISIONS, autocast_dtype, resolve_device, resolve_precision, uses_grad_scaler
from ..io import atomic_path
from ..schedules.build import warmup_then_decay
from .data import DiaDataset, collate, text_dropout_flags
from .delay import BOS, PAD
from .loss import DEFAULT_CHANNEL_WEIGHTS, channel_ce_sums, weighted_loss


class ResumeError(ValueError):
    """A checkpoint that cannot continue this run (different global batch, schedule or model)."""


@dataclass
class TrainConfig:
    """Training settings. Sizes in items; ``lr`` is the peak learning rate; ``warmup_steps`` of linear warm-up,
    then cosine decay to ``lr * min_lr_ratio`` at ``steps``. ``precision``: ``"auto"`` (bf16 autocast on a GPU
    that has it, else fp16 autocast + GradScaler on CUDA, else float32), or one of ``"32-true"``,
    ``"16-mixed"``, ``"bf16-mixed"`` (aliases ``"fp32"``, ``"fp16"``, ``"bf16"``; see ``tts_nb_utils.device``)."""

    steps: int = 100
    micro_batch_size: int = 2
    grad_accum: int = 1
    lr: float = 1e-3
    warmup_steps: int = 10
    min_lr_ratio: float = 0.1
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.95)
    clip_norm: float | None = 1.0
    precision: str = "auto"
    channel_weights: tuple[float, ...] = DEFAULT_CHANNEL_WEIGHTS
    text_dropout: float = 0.15
    seed: int = 0
    checkpoint_every: int = 0  # steps; 0 = only at the end (when a checkpoint path is given)
    progress: bool = True


@dataclass
class DiaTrainResult:
    """Per-step history (``losses[i]`` is step ``i``), counted from step 0 even after a resume."""

    losses: list[float] = field(default_factory=list)
    per_channel: list[list[float]] = field(default_factory=list)
    lrs: list[float] = field(default_factory=list)
    grad_norms: list[float] = field(default_factory=list)
    step: int = 0
    frames: int = 0  # real decoder rows trained on in this run (all processes)
    seconds: float = 0.0
    precision: str = "32-true"  # canonical name (tts_nb_utils.device.PRECISIONS)
    world_size: int = 1
    resumed_from: int | None = None

    @property
    def frames_per_second(self) -> float:
        return self.frames / self.seconds if self.seconds else 0.0


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """AdamW on the trainable parameters; no weight decay on norms (1-D tensors)."""
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.ndim >= 2]
    no_decay = [p for p in params if p.ndim < 2]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas)


def make_scheduler(optimizer: torch.optim.Optimizer, cfg: TrainConfig) -> torch.optim.lr_scheduler.LRScheduler:
    """Linear warm-up then cosine decay to ``lr * min_lr_ratio`` at ``cfg.steps`` (:func:`warmup_then_decay`).

    Step ``k < warmup_steps`` runs at ``lr * (k + 1) / (warmup_steps + 1)`` (nanoGPT's warm-up): the first
    step of a fine-tune already trains, at a small fraction of the peak. ``warmup_steps <= 0``: cosine only.
    """
    min_lr = cfg.lr * cfg.min_lr_ratio
    if cfg.warmup_steps <= 0:
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, cfg.steps), eta_min=min_lr)
    # a run shorter than its warm-up never reaches the decay; total_steps only has to lie past the warm-up
    total = max(cfg.steps, cfg.warmup_steps + 1)
    return warmup_then_decay(optimizer, cfg.warmup_steps, "cosine", total_steps=total, min_lr=min_lr,
                             start_factor=1.0 / (cfg.warmup_steps + 1))


def stream_indices(positions: Sequence[int], n: int, seed: int) -> list[int]:
    """Dataset indices at these stream positions: epoch ``p // n`` is a fresh permutation seeded by
    ``(seed, epoch)``; the same position always gives the same item."""
    out, perms = [], {}
    for p in positions:
        epoch = p // n
        if epoch not in perms:
            perms[epoch] = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100_003 + epoch))
        out.append(int(perms[epoch][p % n]))
    return out


def _valid_counts(targets: torch.Tensor) -> torch.Tensor:
    return ((targets != PAD) & (targets != BOS)).sum(dim=(0, 1)).float()


def _rng_state() -> dict:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: str | os.PathLike, model, optimizer, scheduler, scaler, step: int, cfg: TrainConfig,
                    result: DiaTrainResult, global_batch: int) -> Path:
    """Write everything an exact resume needs, atomically (a killed save leaves the previous file)."""
    state = {
        "model": _unwrap(model).state_dict(), "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict(), "rng": _rng_state(),
        "step": step, "config": asdict(cfg), "global_batch": global_batch,
        "history": {"losses": result.losses, "per_channel": result.per_channel, "lrs": result.lrs,
                    "grad_norms": result.grad_norms},
    }
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    return Path(path)


def _unwrap(model):
    return model.module if isinstance(model, DistributedDataParallel) else model


def _world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _all_sum(t: torch.Tensor) -> torch.Tensor:
    if _world()[1] > 1:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def train(
    model: torch.nn.Module,
    dataset: DiaDataset,
    cfg: TrainConfig,
    device: str | torch.device = "auto",
    checkpoint: str | os.PathLike | None = None,
    resume: bool = True,
    stop_at: int | None = None,
) -> DiaTrainResult:
    """Train ``model`` on ``dataset`` for ``cfg.steps`` optimizer steps; returns the per-step history.

    ``checkpoint``: a file written every ``cfg.checkpoint_every`` steps and at the end; when it exists and
    ``resume`` is True, training continues from it exactly (model, optimizer, scheduler, scaler, RNG, step).
    ``stop_at``: stop after that many steps (an interrupted session); the schedule still spans ``cfg.steps``.
    Under ``torchrun`` (or any initialised process group) the model is wrapped in DDP and each process
    trains ``micro_batch_size`` items per micro-batch of the same global batch.
    """
    dev = resolve_device(device)
    rank, world = _world()
    precision = resolve_precision(cfg.precision, dev, AUTOCAST_PRECISIONS)
    amp_dtype = autocast_dtype(precision)
    model.to(dev).train()
    optimizer = make_optimizer(model, cfg)
    scheduler = make_scheduler(optimizer, cfg)
    scaler = torch.amp.GradScaler(dev.type, enabled=uses_grad_scaler(precision))
    G = cfg.micro_batch_size * cfg.grad_accum * world
    result = DiaTrainResult(precision=precision, world_size=world)
    start = 0
    if checkpoint is not None and resume and Path(checkpoint).is_file():
        state = torch.load(checkpoint, map_location="cpu", weights_only=False)
        if state["global_batch"] != G:
            raise ResumeError(f"{checkpoint}: global_batch was {state['global_batch']}, now {G} "
                              "(micro_batch_size x grad_accum x processes); keep it to resume exactly")
        if state["config"]["steps"] != cfg.steps:
            raise ResumeError(f"{checkpoint}: steps was {state['config']['steps']}, now {cfg.steps}; the LR "
                              "schedule depends on it. Keep it, or start a new run with another checkpoint path")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        _set_rng_state(state["rng"])
        start = result.resumed_from = state["step"]
        for k, v in state["history"].items():
            setattr(result, k, list(v))
    ddp = world > 1
    net = DistributedDataParallel(model, device_ids=[dev.index] if dev.type == "cuda" else None) if ddp else model
    params = [p for p in model.parameters() if p.requires_grad]
    end = cfg.steps if stop_at is None else min(cfg.steps, stop_at)
    bar = tqdm(range(start, end), desc="train", disable=not cfg.progress or rank != 0, initial=start,
               total=end)
    t0 = time.perf_counter()
    for step in bar:
        micro = []
        for m in range(cfg.grad_accum):
            first = step * G + (m * world + rank) * cfg.micro_batch_size
            positions = list(range(first, first + cfg.micro_batch_size))
            items = [dataset[i] for i in stream_indices(positions, len(dataset), cfg.seed)]
            micro.append(collate(items, text_dropout_flags(positions, cfg.text_dropout, cfg.seed)))
        counts = _all_sum(sum(_valid_counts(b.targets) for b in micro).to(dev))
        loss_sum = torch.zeros((), device=dev)
        ce_sums = torch.zeros(len(cfg.channel_weights), device=dev)
        frames = torch.zeros((), device=dev)
        for m, b in enumerate(micro):
            b = b.to(dev)
            sync = contextlib.nullcontext() if not ddp or m == cfg.grad_accum - 1 else net.no_sync()
            with sync:
                with torch.autocast(dev.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
                    logits = net(**b.model_inputs())
                sums, _ = channel_ce_sums(logits, b.targets)
                del logits
                loss = weighted_loss(sums, counts, cfg.channel_weights)
                scaler.scale(loss * world).backward()  # DDP averages gradients over processes
            loss_sum += loss.detach()
            ce_sums += sums.detach()
            frames += b.frames
        scaler.unscale_(optimizer)
        norm = torch.nn.utils.clip_grad_norm_(params, cfg.clip_norm if cfg.clip_norm else math.inf)
        lr = optimizer.param_groups[0]["lr"]
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)
        scheduler.step()
        stats = _all_sum(torch.cat([loss_sum[None], ce_sums, frames[None]]))
        result.losses.append(float(stats[0]))
        result.per_channel.append((stats[1:-1] / counts.clamp_min(1)).tolist())
        result.lrs.append(lr)
        result.grad_norms.append(float(norm))
        result.frames += int(stats[-1])
        bar.set_postfix(loss=f"{result.losses[-1]:.3f}", lr=f"{lr:.2e}")
        done = step + 1
        if checkpoint is not None and rank == 0 and (
            done == end or (cfg.checkpoint_every and done % cfg.checkpoint_every == 0)
        ):
            save_checkpoint(checkpoint, net, optimizer, scheduler, scaler, done, cfg, result, G)
    result.seconds = time.perf_counter() - t0
    result.step = max(start, end)
    if ddp:
        dist.barrier()
    return result
