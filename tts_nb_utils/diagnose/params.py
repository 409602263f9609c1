"""Did training move the weights? Snapshots of the parameters and the largest change of each since.

Used by notebook 03 (heads whose loss term is zero or detached never move) and by the sanity monitor
(notebook 06), whose per-step check compares cheap fingerprints instead of full copies.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch


def snapshot_parameters(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A detached copy of every parameter, to compare with after training (:func:`parameter_changes`)."""
    return {name: p.detach().clone() for name, p in module.named_parameters()}


def parameter_changes(module: torch.nn.Module, snapshot: Mapping[str, torch.Tensor]) -> dict[str, float]:
    """Largest absolute change of each parameter since ``snapshot``; 0.0 means it never moved."""
    return {
        name: float((p.detach().to(snapshot[name].device) - snapshot[name]).abs().max())
        for name, p in module.named_parameters()
        if name in snapshot
    }


def parameter_fingerprints(named: list[tuple[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """``{name: tensor([sum, L2 norm])}`` per parameter, in float32: any optimizer update changes them.

    A cheap stand-in for :func:`snapshot_parameters` when a check runs every step: two numbers per tensor
    instead of a copy of the weights, and one transfer to the CPU for all of them.
    """
    if not named:
        return {}
    values = torch.stack(
        [torch.stack([p.detach().float().sum(), torch.linalg.vector_norm(p.detach().float())]) for _, p in named]
    ).cpu()
    return {name: values[i] for i, (name, _) in enumerate(named)}
