"""Pictures for notebook 05: the delay pattern, a batch's masks, memory bars and loss curves (matplotlib,
readable on light and dark backgrounds)."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.colors import ListedColormap

from .data import DiaBatch
from .delay import BOS, EOS, PAD
from .memory import GIB, MemoryEstimate

_KIND_COLORS = ["#4c9be8", "#f2a93b", "#5cb85c", "#9e9e9e"]  # code, BOS, EOS, PAD


def plot_delay_pattern(seq_TxC: torch.Tensor, rows: int | None = None, ax=None):
    """Heatmap of a delayed sequence ``[T, C]``: codes, BOS, EOS and PAD in four colours."""
    seq = torch.as_tensor(seq_TxC)[:rows]
    kind = np.zeros(seq.shape, dtype=int)
    kind[(seq == BOS).numpy()] = 1
    kind[(seq == EOS).numpy()] = 2
    kind[(seq == PAD).numpy()] = 3
    ax = ax or plt.subplots(figsize=(9, 2.6))[1]
    ax.imshow(kind.T, aspect="auto", interpolation="nearest", cmap=ListedColormap(_KIND_COLORS), vmin=0, vmax=3)
    ax.set_xlabel("decoder row (frame)")
    ax.set_ylabel("channel")
    ax.set_yticks(range(seq.shape[1]))
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in _KIND_COLORS]
    ax.legend(handles, ["code", "BOS", "EOS", "PAD"], ncol=4, loc="upper center", bbox_to_anchor=(0.5, 1.25),
              frameon=False)
    return ax


def plot_batch(batch: DiaBatch, item: int = 0):
    """Four panels: the batch's audio mask (rows per item), and item ``item``'s encoder, causal decoder and
    cross-attention masks (white = may attend)."""
    fig, axes = plt.subplots(1, 4, figsize=(13, 3))
    panels = [
        (batch.audio_mask.float(), "audio rows counted (per item)", "row", "item"),
        (batch.enc_mask[item, 0].float(), f"encoder mask, item {item}", "key byte", "query byte"),
        (batch.dec_mask[item, 0].float(), "decoder mask (causal)", "key row", "query row"),
        (batch.cross_mask[item, 0].float(), f"cross-attention, item {item}", "text byte", "audio row"),
    ]
    for ax, (m, title, xl, yl) in zip(axes, panels, strict=True):
        ax.imshow(m.numpy(), aspect="auto", interpolation="nearest", cmap="gray", vmin=0, vmax=1)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel(xl, fontsize=8)
        ax.set_ylabel(yl, fontsize=8)
    fig.tight_layout()
    return fig


def plot_memory(estimates: dict[str, MemoryEstimate], gpu_gib: float, reserve_gib: float = 1.5):
    """Stacked horizontal bars of each estimate's breakdown (GiB) with the card's size as a line."""
    keys = ["master_weights", "weights", "gradients", "optimizer_states", "activations", "logits"]
    colors = ["#4c72b0", "#8fb0e0", "#dd8452", "#c44e52", "#55a868", "#8172b2"]
    fig, ax = plt.subplots(figsize=(9, 0.55 * len(estimates) + 1.2))
    names = list(estimates)
    left = np.zeros(len(names))
    for k, c in zip(keys, colors, strict=True):
        vals = np.array([estimates[n].breakdown[k] / GIB for n in names])
        ax.barh(names, vals, left=left, color=c, label=k.replace("_", " "))
        left += vals
    ax.axvline(gpu_gib, color="#d62728", lw=2, label=f"{gpu_gib:g} GiB card")
    ax.axvline(gpu_gib - reserve_gib, color="#d62728", lw=1, ls="--", label="usable")
    ax.set_xlabel("GiB")
    ax.invert_yaxis()
    ax.legend(fontsize=7, ncol=4, loc="lower right")
    fig.tight_layout()
    return fig


def plot_losses(curves: dict[str, Sequence[float]], init: float | None = None, ax=None):
    """Loss per step for each named curve, with the value at initialisation (``ln vocab``) dashed."""
    ax = ax or plt.subplots(figsize=(7, 3))[1]
    styles = ["-", "--", ":", "-."]
    for i, (name, ys) in enumerate(curves.items()):
        ax.plot(range(len(ys)), ys, styles[i % 4], lw=2 if i == 0 else 1.5, label=name, marker="o" if len(ys) < 15 else None, ms=3)
    if init is not None:
        ax.axhline(init, color="gray", ls="--", lw=1, label=f"ln 1028 = {init:.2f}")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss (nats)")
    ax.legend(fontsize=8)
    return ax
