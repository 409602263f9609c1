"""Warm-up then decay, built from torch's own schedulers (``LambdaLR``, ``SequentialLR``, ...).

The schedule notebook 04 recommends for a Coqui run, and the one the Dia training loop (notebook 05) uses.
Steps are 0-based optimizer steps; the scheduler is stepped after every optimizer step.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.optim import lr_scheduler as torch_sched


def gradual_lr_at(gradual_lr: Sequence[Sequence[float]], step: int, base_lr: float | None = None) -> float:
    """The LR a StepwiseGradualLR list intends at ``step``: the value of the last threshold <= step.

    Before the first threshold the LR is ``base_lr`` (the optimizer's) when given, else the first value.
    """
    current = None
    for threshold, lr in sorted(gradual_lr, key=lambda pair: pair[0]):
        if threshold <= step:
            current = float(lr)
    if current is None:
        current = float(base_lr) if base_lr is not None else float(gradual_lr[0][1])
    return current


def warmup_then_decay(
    optimizer: torch.optim.Optimizer,
    warmup_steps: int,
    decay: str = "cosine",
    *,
    total_steps: int | None = None,
    gradual_lr: Sequence[Sequence[float]] | None = None,
    milestones: Sequence[int] | None = None,
    gamma: float = 0.5,
    min_lr: float = 0.0,
    start_factor: float = 0.0,
) -> torch_sched.SequentialLR:
    """A warm-up then a decay, for a scheduler stepped after every optimizer step.

    Built from torch's schedulers: ``LambdaLR`` rises linearly from ``start_factor * lr`` at step 0 to the
    optimizer's ``lr`` at step ``warmup_steps``; ``SequentialLR`` then hands over to the decay:

    - ``"cosine"``: ``CosineAnnealingLR`` from ``lr`` down to ``min_lr`` at ``total_steps``;
    - ``"multistep"``: multiply by ``gamma`` at each of ``milestones`` (0-based optimizer steps);
    - ``"gradual"``: ``gradual_lr`` ``[[step, lr], ...]`` as StepwiseGradualLR means it (absolute LRs from
      each threshold, in optimizer steps); steps before the first threshold after warm-up keep ``lr``.

    Milestones and thresholds are global optimizer steps; they must lie after the warm-up.
    """
    if warmup_steps < 1:
        raise ValueError(f"warmup_steps must be at least 1, got {warmup_steps}")
    if not 0.0 <= start_factor < 1.0:
        raise ValueError(f"start_factor must be in [0, 1), got {start_factor}")
    base_lrs = [float(g.get("initial_lr", g["lr"])) for g in optimizer.param_groups]
    warm = torch_sched.LambdaLR(optimizer, lambda s: start_factor + (1.0 - start_factor) * min(s, warmup_steps) / warmup_steps)
    if decay == "cosine":
        if total_steps is None or total_steps <= warmup_steps:
            raise ValueError(f"decay='cosine' needs total_steps > warmup_steps ({warmup_steps}), got {total_steps}")
        after = torch_sched.CosineAnnealingLR(optimizer, T_max=total_steps - warmup_steps, eta_min=min_lr)
    elif decay == "multistep":
        ms = sorted(int(m) for m in (milestones or []))
        _check_after_warmup("milestones", ms, warmup_steps)
        after = torch_sched.MultiStepLR(optimizer, [m - warmup_steps for m in ms], gamma=gamma)
    elif decay == "gradual":
        if not gradual_lr:
            raise ValueError("decay='gradual' needs gradual_lr=[[step, lr], ...]")
        _check_after_warmup("gradual_lr thresholds", [t for t, _ in gradual_lr if t > 0], warmup_steps)
        base = base_lrs[0]
        table = [list(pair) for pair in gradual_lr if pair[0] > 0]
        after = torch_sched.LambdaLR(optimizer, lambda k: gradual_lr_at(table, warmup_steps + k, base) / base)
    else:
        raise ValueError(f"decay={decay!r}: use 'cosine', 'multistep' or 'gradual'")
    return torch_sched.SequentialLR(optimizer, [warm, after], milestones=[warmup_steps])


def _check_after_warmup(what: str, values: Sequence[float], warmup_steps: int) -> None:
    early = [v for v in values if v < warmup_steps]
    if early:
        raise ValueError(f"{what} {early} fall inside the warm-up ({warmup_steps} steps); move them after it")
