"""A tiny HuBERT-like feature extractor (strided conv, LayerNorm, projection) stored as a Hugging Face style
folder (``config.json`` + ``pytorch_model.bin``), so notebook 06 can serve it from a local hub."""

from __future__ import annotations

import io
import json
from pathlib import Path

import torch
from torch import nn

HOP = 160  # samples per feature frame at 16 kHz (10 ms), as HuBERT-style embedders in RVC use


class TinyEmbedder(nn.Module):
    """Waveform ``[batch, samples]`` (16 kHz) -> features ``[batch, frames, dim]``, one frame per 160 samples."""

    def __init__(self, channels: int = 64, dim: int = 32):
        super().__init__()
        self.conv = nn.Conv1d(1, channels, kernel_size=2 * HOP, stride=HOP, padding=HOP // 2)
        self.norm = nn.LayerNorm(channels)
        self.proj = nn.Linear(channels, dim)
        self.config = {"model_type": "tiny-hubert", "hidden_size": channels, "feature_dim": dim, "hop": HOP}

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        x = torch.nn.functional.gelu(self.conv(wav.unsqueeze(1))).transpose(1, 2)
        return self.proj(self.norm(x))


def embedder_files(seed: int = 0, channels: int = 64, dim: int = 32) -> dict[str, bytes]:
    """``{"config.json": ..., "pytorch_model.bin": ...}`` bytes of a deterministically initialised embedder."""
    torch.manual_seed(seed)
    model = TinyEmbedder(channels, dim)
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    config = json.dumps(model.config, indent=2, sort_keys=True).encode() + b"\n"
    return {"config.json": config, "pytorch_model.bin": buf.getvalue()}


def load_embedder(folder: str | Path) -> TinyEmbedder:
    """Load the embedder folder written by ``embedder_files`` (float32, eval mode)."""
    folder = Path(folder)
    config = json.loads((folder / "config.json").read_text())
    model = TinyEmbedder(config["hidden_size"], config["feature_dim"])
    model.load_state_dict(torch.load(folder / "pytorch_model.bin", map_location="cpu", weights_only=True))
    return model.eval()
