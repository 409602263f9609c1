"""Tiny HuBERT-like feature extractors (strided conv, LayerNorm, projection) stored as Hugging Face style
folders (``config.json`` + ``pytorch_model.bin``), served from a local hub in notebooks 06 and 07.

Two variants stand in for Applio's embedders: ``large`` (1024 values per frame and ``normalize: true``, like
chinese-hubert-large, whose input Applio layer-normalises in ``read_wave``) and ``base`` (768 values per
frame, no input normalisation, like contentvec and chinese-hubert-base). ``normalize`` plays the part of the
fairseq checkpoint's ``saved_cfg.task.normalize``.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import torch
from torch import nn

HOP = 160  # samples per feature frame at 16 kHz (10 ms), as HuBERT-style embedders in RVC use
VARIANTS = {"large": {"feature_dim": 1024, "normalize": True}, "base": {"feature_dim": 768, "normalize": False}}


class TinyEmbedder(nn.Module):
    """Waveform ``[batch, samples]`` (16 kHz) -> features ``[batch, frames, dim]``, one frame per 160 samples."""

    def __init__(self, channels: int = 64, dim: int = 768, normalize: bool = False):
        super().__init__()
        self.conv = nn.Conv1d(1, channels, kernel_size=2 * HOP, stride=HOP, padding=HOP // 2)
        self.norm = nn.LayerNorm(channels)
        self.proj = nn.Linear(channels, dim)
        self.config = {
            "model_type": "tiny-hubert", "hidden_size": channels, "feature_dim": dim, "hop": HOP,
            "normalize": bool(normalize),
        }

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        x = torch.nn.functional.gelu(self.conv(wav.unsqueeze(1))).transpose(1, 2)
        return self.proj(self.norm(x))


def embedder_files(seed: int = 0, variant: str = "base", channels: int = 64) -> dict[str, bytes]:
    """``{"config.json": ..., "pytorch_model.bin": ...}`` bytes of a deterministically initialised embedder."""
    if variant not in VARIANTS:
        raise ValueError(f"variant={variant!r}: use one of {sorted(VARIANTS)}")
    torch.manual_seed(seed)
    spec = VARIANTS[variant]
    model = TinyEmbedder(channels, spec["feature_dim"], spec["normalize"])
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    config = json.dumps(model.config, indent=2, sort_keys=True).encode() + b"\n"
    return {"config.json": config, "pytorch_model.bin": buf.getvalue()}


def load_embedder(folder: str | Path) -> tuple[TinyEmbedder, dict]:
    """The embedder folder written by ``embedder_files`` (float32, eval mode) and its config (the part
    Applio reads as ``saved_cfg.task``: ``normalize``)."""
    folder = Path(folder)
    config = json.loads((folder / "config.json").read_text())
    model = TinyEmbedder(config["hidden_size"], config["feature_dim"], config.get("normalize", False))
    model.load_state_dict(torch.load(folder / "pytorch_model.bin", map_location="cpu", weights_only=True))
    return model.eval(), config
