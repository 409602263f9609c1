"""The Dia training loop of notebook 05: the recipes ``tts_nb_utils.dia.memory.plan`` recommends (8-bit AdamW
through bitsandbytes, LoRA through peft, a frozen encoder, bf16-true weights), AMP (bf16 autocast, or fp16 with
GradScaler; precision names from ``tts_nb_utils.device``), gradient accumulation, clipping, warm-up + cosine LR
(``schedules.build``), atomic checkpoints with exact resume, tqdm progress, and DDP under ``torchrun``.

Autocast runs with ``cache_enabled=False``: its cache would keep a 16-bit copy of every weight until the forward
pass ends, which gradient checkpointing exists to avoid (2.96 GiB at 1.6B); each weight is used once per forward
pass, so nothing is recomputed without it. bitsandbytes and peft are the optional ``dia`` extra: asking for
``optimizer="adamw8bit"`` or ``lora_rank`` without them raises :class:`TrainConfigError` saying what to install.

Batches are drawn from a deterministic stream: step ``s`` uses stream positions ``s*G .. s*G+G-1``
(``G = micro_batch_size x grad_accum x world_size``; one fresh shuffle per epoch), and each step's loss is
divided by the number of targets of the *whole* step. So 4 micro-batches of 1, one batch of 4, or 2
processes of 2 give the same loss and gradients, and a resumed run continues the same curve.
Notebook 05 trains its tiny preset with it; for DDP on synthetic demo codes run
``torchrun --nproc_per_node 2 -m tts_nb_utils.cli dia-train --steps 20`` (``tts-nb dia-train``).
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from ..device import autocast_dtype, param_dtype, resolve_device, resolve_precision, uses_grad_scaler
from ..io import atomic_path, show_progress
from ..schedules.build import warmup_then_decay
from .data import DiaBatch, DiaDataset, collate, text_dropout_flags
from .delay import BOS, PAD
from .hf import quiet_logger
from .loss import DEFAULT_CHANNEL_WEIGHTS, channel_ce_sums, weighted_loss


class ResumeError(ValueError):
    """A checkpoint that cannot continue this run (different global batch, schedule or model)."""


class TrainConfigError(ValueError):
    """A training setting that cannot run here (unknown optimizer, a missing optional package)."""


OPTIMIZERS = ("adamw", "adamw8bit")
#: Dia's linear layers inside the transformer blocks (what LoRA adapts, as the memory planner counts it), by
#: their names in this package's DiaModel (``wi``/``wo``) and in transformers' (``gate_up_proj``/``down_proj``).
LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "wi", "wo", "gate_up_proj", "down_proj")


def is_transformers_dia(model: torch.nn.Module) -> bool:
    """True for transformers' ``DiaForConditionalGeneration`` (or a DDP wrapper of it)."""
    return hasattr(_unwrap(model), "get_encoder") and hasattr(_unwrap(model), "logits_dense")


def encoder_of(model: torch.nn.Module) -> torch.nn.Module:
    """The text encoder of either model (``model.encoder`` here, ``model.model.encoder`` in transformers)."""
    model = _unwrap(model)
    return model.get_encoder() if is_transformers_dia(model) else model.encoder


def forward_logits(net: torch.nn.Module, b: DiaBatch) -> torch.Tensor:
    """Teacher-forced logits ``[B, T, C, V]`` of either model for a collated batch. transformers' model takes the
    text mask as ``attention_mask`` (its encoder and cross-attention masks are built from it) and returns
    ``[B * C, T, V]``; the logits are the same (``tests/test_dia_layouts.py``)."""
    if not is_transformers_dia(net):
        return net(**b.model_inputs())
    from .hf import transformers_logits

    padded = not bool(b.text_mask.all())
    return transformers_logits(net, b.text, b.audio_in, b.text_mask if padded else None)


@dataclass
class TrainConfig:
    """Training settings. Sizes in items; ``lr`` is the peak learning rate; ``warmup_steps`` of linear warm-up,
    then cosine decay to ``lr * min_lr_ratio`` at ``steps``. ``precision``: ``"auto"`` (bf16 autocast on a GPU
    that has it, else fp16 autocast + GradScaler on CUDA, else float32), or one of ``"32-true"``,
    ``"16-mixed"``, ``"bf16-mixed"`` (aliases ``"fp32"``, ``"fp16"``, ``"bf16"``; see ``tts_nb_utils.device``),
    ``"bf16-true"`` (the model's weights, gradients and optimizer states in bfloat16, no autocast).
    ``lr`` defaults to a fine-tuning rate for the pretrained 1.6B model (the community recipe's 1e-5); a tiny
    model trained from scratch wants about 1e-3. ``optimizer``: ``"adamw"`` (torch) or ``"adamw8bit"``
    (bitsandbytes). ``freeze_encoder``: no gradients for the text encoder. ``lora_rank``: train only rank-r
    adapters (peft, ``lora_alpha`` defaults to 2 x rank) on the linear layers of the trained blocks."""

    steps: int = 100
    micro_batch_size: int = 2
    grad_accum: int = 1
    lr: float = 1e-5
    warmup_steps: int = 10
    min_lr_ratio: float = 0.1
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.95)
    clip_norm: float | None = 1.0
    precision: str = "auto"
    optimizer: str = "adamw"
    freeze_encoder: bool = False
    lora_rank: int | None = None
    lora_alpha: float | None = None
    channel_weights: tuple[float, ...] = DEFAULT_CHANNEL_WEIGHTS
    text_dropout: float = 0.15
    seed: int = 0
    checkpoint_every: int = 0  # steps; 0 = only at the end (when a checkpoint path is given)
    keep_checkpoints: bool = False  # also keep every save as its own file (numbered_checkpoint): a resume point each
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
    """AdamW (torch) or 8-bit AdamW (bitsandbytes) on the trainable parameters; no weight decay on norms."""
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.ndim >= 2]
    no_decay = [p for p in params if p.ndim < 2]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if cfg.optimizer == "adamw8bit":
        return _optional("bitsandbytes", "optimizer='adamw8bit'").optim.AdamW8bit(groups, lr=cfg.lr, betas=cfg.betas)
    if cfg.optimizer != "adamw":
        raise TrainConfigError(f"optimizer={cfg.optimizer!r}: use one of {OPTIMIZERS}")
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas)


def _optional(package: str, setting: str):
    try:
        # Importing bitsandbytes on a CPU with AVX512-BF16 asks the Hugging Face Hub for an optional 4-bit matmul
        # kernel (through `kernels`, which transformers brings). 8-bit AdamW never uses it, and nothing here may
        # reach the network uninvited: `kernels` is hidden for that one import (bitsandbytes then keeps its own
        # CPU code and warns, which quiet_logger hides; peft imports bitsandbytes too).
        with quiet_logger(package), quiet_logger("bitsandbytes"), _hidden_module("kernels"):
            return __import__(package)
    except ImportError:
        raise TrainConfigError(f"{setting} needs the optional package {package}, which is not installed: "
                               f"`pip install {package}` (or this project's `dia` extra: pip install 'tts-nb[dia]')"
                               ) from None


@contextlib.contextmanager
def _hidden_module(name: str):
    """``import name`` raises ImportError inside the block (``sys.modules[name] = None``); restored after."""
    saved = sys.modules.get(name, _MISSING)
    sys.modules[name] = None  # type: ignore[assignment]
    try:
        yield
    finally:
        if saved is _MISSING:
            sys.modules.pop(name, None)
        else:
            sys.modules[name] = saved


_MISSING = object()


def prepare_model(model: torch.nn.Module, cfg: TrainConfig) -> torch.nn.Module:
    """Freeze the encoder and add LoRA adapters as ``cfg`` asks (in place; a second call changes nothing).

    LoRA (peft's ``inject_adapter_in_model``, which freezes everything else) adapts the linear layers of the
    decoder's blocks, and of the encoder's unless it is frozen; embeddings and the output layer stay frozen.
    """
    if cfg.freeze_encoder:
        encoder_of(model).requires_grad_(False)
    if cfg.lora_rank and not any(hasattr(m, "lora_A") for m in model.modules()):
        peft = _optional("peft", f"lora_rank={cfg.lora_rank}")
        blocks = "decoder" if cfg.freeze_encoder else "(encoder|decoder)"
        target = rf".*{blocks}\.layers\.\d+\..*\.({'|'.join(LORA_TARGETS)})"
        lora = peft.LoraConfig(r=cfg.lora_rank, lora_alpha=cfg.lora_alpha or 2 * cfg.lora_rank, lora_dropout=0.0,
                               target_modules=target)
        peft.inject_adapter_in_model(lora, model)
    return model


def merge_lora(model: torch.nn.Module) -> torch.nn.Module:
    """Fold trained LoRA adapters into their base weights and put the plain ``nn.Linear`` layers back (in
    place), so the model can be exported in upstream's layout (``checkpoint.export_dia_checkpoint``)."""
    for name, module in list(model.named_modules()):
        if hasattr(module, "lora_A") and hasattr(module, "get_base_layer"):
            module.merge()
            parent, _, attr = name.rpartition(".")
            setattr(model.get_submodule(parent) if parent else model, attr, module.get_base_layer())
    return model


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


@dataclass
class _Run:
    """What every step of one training run uses."""

    net: torch.nn.Module  # the model, or its DDP wrapper
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    device: torch.device
    amp_dtype: torch.dtype | None  # None: no autocast
    rank: int = 0
    world: int = 1


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


def numbered_checkpoint(path: str | os.PathLike, step: int) -> Path:
    """Where ``keep_checkpoints`` keeps the save of ``step``: ``dia.pt`` -> ``dia-step40.pt``, beside it."""
    path = Path(path)
    return path.with_name(f"{path.stem}-step{step}{path.suffix}")


def _load_checkpoint(path: str | os.PathLike, run: _Run, cfg: TrainConfig, result: DiaTrainResult,
                     global_batch: int) -> int:
    """Restore what :func:`save_checkpoint` wrote into ``run`` and ``result``; returns the step to continue
    from. ResumeError when the global batch or the schedule's length differ (the curve would not continue)."""
    state = torch.load(path, map_location="cpu", weights_only=False)
    if state["global_batch"] != global_batch:
        raise ResumeError(f"{path}: global_batch was {state['global_batch']}, now {global_batch} "
                          "(micro_batch_size x grad_accum x processes); keep it to resume exactly")
    if state["config"]["steps"] != cfg.steps:
        raise ResumeError(f"{path}: steps was {state['config']['steps']}, now {cfg.steps}; the LR "
                          "schedule depends on it. Keep it, or start a new run with another checkpoint path")
    for key in ("optimizer", "lora_rank", "freeze_encoder"):
        if state["config"].get(key, getattr(TrainConfig, key)) != getattr(cfg, key):
            raise ResumeError(f"{path}: {key} was {state['config'].get(key)!r}, now {getattr(cfg, key)!r}; keep it "
                              "to resume, or start a new run with another checkpoint path")
    _unwrap(run.net).load_state_dict(state["model"])
    run.optimizer.load_state_dict(state["optimizer"])
    run.scheduler.load_state_dict(state["scheduler"])
    run.scaler.load_state_dict(state["scaler"])
    _set_rng_state(state["rng"])
    for k, v in state["history"].items():
        setattr(result, k, list(v))
    return state["step"]


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

    ``checkpoint``: a file written every ``cfg.checkpoint_every`` steps and at the end (``cfg.keep_checkpoints``
    also keeps each save as :func:`numbered_checkpoint`); when it exists and
    ``resume`` is True, training continues from it exactly (model, optimizer, scheduler, scaler, RNG, step).
    ``stop_at``: stop after that many steps (an interrupted session); the schedule still spans ``cfg.steps``.
    Under ``torchrun`` (or any initialised process group) the model is wrapped in DDP and each process
    trains ``micro_batch_size`` items per micro-batch of the same global batch.
    """
    dev = resolve_device(device)
    rank, world = _world()
    precision = resolve_precision(cfg.precision, dev)
    prepare_model(model, cfg)
    model.to(dev, dtype=param_dtype(precision)).train()
    optimizer = make_optimizer(model, cfg)
    run = _Run(model, optimizer, make_scheduler(optimizer, cfg),
               torch.amp.GradScaler(dev.type, enabled=uses_grad_scaler(precision)), dev, autocast_dtype(precision),
               rank, world)
    G = cfg.micro_batch_size * cfg.grad_accum * world
    result = DiaTrainResult(precision=precision, world_size=world)
    start = 0
    if checkpoint is not None and resume and Path(checkpoint).is_file():
        start = result.resumed_from = _load_checkpoint(checkpoint, run, cfg, result, G)
    if world > 1:
        run.net = DistributedDataParallel(model, device_ids=[dev.index] if dev.type == "cuda" else None)
    end = cfg.steps if stop_at is None else min(cfg.steps, stop_at)
    bar = tqdm(range(start, end), desc="train", disable=not show_progress(cfg.progress) or rank != 0, initial=start,
               total=end)
    t0 = time.perf_counter()
    for step in bar:
        _train_step(run, _micro_batches(dataset, cfg, step, G, rank, world), cfg, result)
        bar.set_postfix(loss=f"{result.losses[-1]:.3f}", lr=f"{result.lrs[-1]:.2e}")
        done = step + 1
        if checkpoint is not None and rank == 0 and (
            done == end or (cfg.checkpoint_every and done % cfg.checkpoint_every == 0)
        ):
            saved = save_checkpoint(checkpoint, run.net, optimizer, run.scheduler, run.scaler, done, cfg, result, G)
            if cfg.keep_checkpoints:
                with atomic_path(numbered_checkpoint(saved, done)) as tmp:
                    shutil.copyfile(saved, tmp)
    result.seconds = time.perf_counter() - t0
    result.step = max(start, end)
    if world > 1:
        dist.barrier()
    return result


def _micro_batches(dataset: DiaDataset, cfg: TrainConfig, step: int, global_batch: int, rank: int,
                   world: int) -> list[DiaBatch]:
    """This process's ``grad_accum`` micro-batches of ``step``: stream positions ``step * global_batch + ...``,
    interleaved over processes so that any split of the global batch draws the same items."""
    micro = []
    for m in range(cfg.grad_accum):
        first = step * global_batch + (m * world + rank) * cfg.micro_batch_size
        positions = list(range(first, first + cfg.micro_batch_size))
        items = [dataset[i] for i in stream_indices(positions, len(dataset), cfg.seed)]
        micro.append(collate(items, text_dropout_flags(positions, cfg.text_dropout, cfg.seed)))
    return micro


def _train_step(run: _Run, micro: list[DiaBatch], cfg: TrainConfig, result: DiaTrainResult) -> None:
    """One optimizer step over the micro-batches, appended to ``result``. Each micro-batch's loss is divided
    by the valid targets of the whole step (all processes), so the gradients are those of one big batch."""
    dev, world = run.device, run.world
    counts = _all_sum(sum(_valid_counts(b.targets) for b in micro).to(dev))
    loss_sum = torch.zeros((), device=dev)
    ce_sums = torch.zeros(len(cfg.channel_weights), device=dev)
    frames = torch.zeros((), device=dev)
    for m, b in enumerate(micro):
        b = b.to(dev)
        last = m == len(micro) - 1
        with contextlib.nullcontext() if world == 1 or last else run.net.no_sync():  # all-reduce once
            with torch.autocast(dev.type, dtype=run.amp_dtype or torch.float32, enabled=run.amp_dtype is not None,
                                cache_enabled=False):  # no cached 16-bit copy of every weight (module docstring)
                logits = forward_logits(run.net, b)
            sums, _ = channel_ce_sums(logits, b.targets)
            del logits
            loss = weighted_loss(sums, counts, cfg.channel_weights)
            run.scaler.scale(loss * world).backward()  # DDP averages gradients over processes
        loss_sum += loss.detach()
        ce_sums += sums.detach()
        frames += b.frames
    norm, lr = _optimizer_step(run, cfg.clip_norm)
    stats = _all_sum(torch.cat([loss_sum[None], ce_sums, frames[None]]))
    result.losses.append(float(stats[0]))
    result.per_channel.append((stats[1:-1] / counts.clamp_min(1)).tolist())
    result.lrs.append(lr)
    result.grad_norms.append(norm)
    result.frames += int(stats[-1])


def _optimizer_step(run: _Run, clip_norm: float | None) -> tuple[float, float]:
    """Unscale, clip (``None`` or 0: measure only), step the optimizer, scaler and scheduler.
    Returns the gradient norm before clipping and the LR the step used."""
    run.scaler.unscale_(run.optimizer)
    params = [p for p in _unwrap(run.net).parameters() if p.requires_grad]
    norm = torch.nn.utils.clip_grad_norm_(params, clip_norm if clip_norm else math.inf)
    lr = run.optimizer.param_groups[0]["lr"]
    run.scaler.step(run.optimizer)
    run.scaler.update()
    run.optimizer.zero_grad(set_to_none=True)
    run.scheduler.step()
    return float(norm), lr
