"""Dia's training loss: per-channel cross-entropy over the 9 code channels, ignoring PAD and BOS targets,
with channel weights (the community recipe weights the coarse channel 0 by 4: ``[4, 1, ..., 1]``).

The loss is split into per-channel sums and counts so that a step made of several micro-batches (gradient
accumulation) or several processes (DDP) can divide by the count of the *whole* step: then 4 x batch 1 gives
exactly the loss and gradients of batch 4. Used by notebook 05 and ``tts_nb_utils.dia.train``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .delay import BOS, PAD

DEFAULT_CHANNEL_WEIGHTS: tuple[float, ...] = (4.0, 1, 1, 1, 1, 1, 1, 1, 1)


def channel_ce_sums(logits: torch.Tensor, targets: torch.Tensor, ignore: Sequence[int] = (PAD, BOS),
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel sums of cross-entropy (nats) and counts of targets that are not in ``ignore``.

    ``logits [B, T, C, V]``, ``targets [B, T, C]`` -> ``(sums [C], counts [C])`` (float32).
    """
    valid = torch.ones_like(targets, dtype=torch.bool)
    for tok in ignore:
        valid &= targets != tok
    ce = F.cross_entropy(logits.float().flatten(0, 2), targets.flatten(), reduction="none").view(targets.shape)
    ce = ce * valid
    return ce.sum(dim=(0, 1)), valid.sum(dim=(0, 1)).float()


def weighted_loss(sums: torch.Tensor, counts: torch.Tensor, weights: Sequence[float] = DEFAULT_CHANNEL_WEIGHTS,
                  ) -> torch.Tensor:
    """``sum_c w_c * sums_c / counts_c / sum_c w_c``: the weighted mean of per-channel mean cross-entropy.

    ``counts`` may be those of a larger batch than ``sums`` (the whole accumulated step); channels with no
    target count zero.
    """
    w = torch.as_tensor(list(weights), dtype=torch.float32, device=sums.device)
    if w.numel() != sums.numel():
        raise ValueError(f"channel_weights has {w.numel()} entries for {sums.numel()} channels")
    return (w * sums / counts.clamp_min(1)).sum() / w.sum()


@dataclass
class DiaLoss:
    loss: torch.Tensor  # scalar, differentiable
    per_channel: torch.Tensor  # [C] mean cross-entropy per channel, detached (nats)
    counts: torch.Tensor  # [C] targets counted


def dia_loss(logits: torch.Tensor, targets: torch.Tensor,
             channel_weights: Sequence[float] = DEFAULT_CHANNEL_WEIGHTS) -> DiaLoss:
    """The loss of one batch: weighted mean over channels of the mean cross-entropy of valid targets.

    At initialisation every channel is about ``ln(vocab)`` = ln 1028 = 6.94 nats.
    """
    sums, counts = channel_ce_sums(logits, targets)
    return DiaLoss(weighted_loss(sums, counts, channel_weights), (sums / counts.clamp_min(1)).detach(), counts)
