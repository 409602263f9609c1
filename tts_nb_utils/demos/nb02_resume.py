"""GPT-SoVITS's checkpoint files and resume rules for notebook 02's miniature (``nb02_tiny_vits``), at ``48b1a01``:
``utils.latest_checkpoint_path`` and ``utils.load_checkpoint`` as ``s2_train.py:206-263`` uses them (the latest
``D_`` then ``G_``; any failure, a bare ``except`` and a start from the pretrained weights at epoch 1), and the ways a
user copies a clean pair to resume from it.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn

from ..diagnose.checkpoints import SAVE_LATEST_STEP
from ..io import atomic_path

__all__ = ["SAVE_LATEST_STEP", "copy_checkpoints", "latest_checkpoint", "load_checkpoint", "resume"]


def latest_checkpoint(log_dir: Path, pattern: str) -> Path:
    """``utils.latest_checkpoint_path`` (``utils.py:112-117``): by the digits in the name; IndexError if none."""
    return sorted(log_dir.glob(pattern), key=lambda f: int("".join(filter(str.isdigit, str(f)))))[-1]


def load_checkpoint(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer, logger: logging.Logger | None) -> int:
    """``utils.load_checkpoint`` (``utils.py:23-60``): a missing key raises; ``optimizer: None`` is skipped."""
    data = torch.load(path, map_location="cpu", weights_only=True)
    epoch = data["iteration"]
    if data["optimizer"] is not None:
        optimizer.load_state_dict(data["optimizer"])
    model.load_state_dict(data["model"])
    if logger is not None:
        logger.info(f"Loaded checkpoint '{path}' (iteration {epoch})")
    return int(epoch)


def resume(log_dir: Path | None, nets: tuple[nn.Module, nn.Module], optims: tuple, logger) -> tuple[int, Path | None]:
    """``s2_train.py:206-263``: load the latest ``D_*.pth`` then ``G_*.pth``; if anything fails, its bare except
    starts at epoch 1 from the pretrained weights (here: the fresh initial weights, logged as upstream logs them).
    Returns the epoch to start from and the ``G_`` file resumed from (None for a pretrained start)."""
    g, d = nets
    try:
        load_checkpoint(latest_checkpoint(log_dir, "D_*.pth"), d, optims[1], logger)
        g_path = latest_checkpoint(log_dir, "G_*.pth")
        return load_checkpoint(g_path, g, optims[0], logger) + 1, g_path
    except Exception:  # noqa: BLE001 - upstream's bare except, on purpose: this is the trap being shown
        if logger is not None:
            logger.info("loaded pretrained (the initial weights of this miniature)")
        return 1, None


def copy_checkpoints(files: list[Path], log_dir: Path, optimizer: str = "keep") -> Path:
    """Copy checkpoints into a fresh ``log_dir`` for a resume; ``optimizer``: ``"keep"`` the saved state,
    ``"none"`` stores None (``utils.load_checkpoint`` then skips it, ``utils.py:28``, so AdamW starts at the
    config's learning rate), ``"delete"`` removes the key (``utils.py:26-28`` then raises, and ``s2_train.py``
    restarts from the pretrained weights). The originals are only read. Returns ``log_dir``."""
    if optimizer not in ("keep", "none", "delete"):
        raise ValueError(f"optimizer={optimizer!r}: use 'keep', 'none' or 'delete'")
    log_dir.mkdir(parents=True, exist_ok=True)
    for f in files:
        data = torch.load(f, map_location="cpu", weights_only=True)
        if optimizer == "none":
            data["optimizer"] = None
        elif optimizer == "delete":
            del data["optimizer"]
        with atomic_path(log_dir / f.name) as tmp:
            torch.save(data, tmp)
    return log_dir
