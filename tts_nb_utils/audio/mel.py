"""Mel spectrograms the way TTS code computes them (as in HiFi-GAN's ``meldataset.py``): librosa's mel
filter bank and ``torch.stft``, with the filter bank and window cached per device and settings.

Differentiable, so it serves both for plots (notebook 01, through ``plot.plot_spectrogram``) and for mel
losses and features (notebooks 02, 05 and 06: ``demos/nb02_tiny_vits.py``, ``dia/codec.py``,
``demos/nb06_rvc/pipeline.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import librosa
import numpy as np
import torch


@dataclass(frozen=True)
class MelConfig:
    """STFT and mel settings; sizes in samples, frequencies in Hz."""

    sample_rate: int = 22050
    n_fft: int = 1024
    hop_length: int = 256
    win_length: int = 1024
    n_mels: int = 80
    f_min: float = 0.0
    f_max: float | None = 8000.0


_CACHE: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}


def _basis(cfg: MelConfig, device: torch.device, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    key = (cfg, str(device), dtype)
    if key not in _CACHE:
        fb = librosa.filters.mel(sr=cfg.sample_rate, n_fft=cfg.n_fft, n_mels=cfg.n_mels, fmin=cfg.f_min, fmax=cfg.f_max)
        _CACHE[key] = (
            torch.from_numpy(fb).to(device=device, dtype=dtype),
            torch.hann_window(cfg.win_length, device=device, dtype=dtype),
        )
    return _CACHE[key]


def mel_spectrogram(y: torch.Tensor | np.ndarray, cfg: MelConfig = MelConfig(), log: bool = True) -> torch.Tensor:
    """Mel spectrogram of ``y`` (``[n]`` or ``[batch, n]`` samples in [-1, 1]) -> ``[(batch,) n_mels, frames]``.

    With ``log=True`` returns ``log(clamp(mel, 1e-5))`` (natural log, HiFi-GAN's dynamic range compression).
    Computed in float32 even under autocast (STFTs in half precision lose the quiet bins).
    """
    x = torch.as_tensor(y)
    squeeze = x.dim() == 1
    x = x.unsqueeze(0) if squeeze else x
    x = x.float()
    fb, window = _basis(cfg, x.device, x.dtype)
    pad = (cfg.n_fft - cfg.hop_length) // 2
    x = torch.nn.functional.pad(x.unsqueeze(1), (pad, pad), mode="reflect").squeeze(1)
    with torch.autocast(device_type=x.device.type, enabled=False):
        spec = torch.stft(x, cfg.n_fft, cfg.hop_length, cfg.win_length, window, center=False, return_complex=True)
        mag = torch.sqrt(spec.real**2 + spec.imag**2 + 1e-9)
        mel = fb @ mag
    if log:
        mel = torch.log(torch.clamp(mel, min=1e-5))
    return mel.squeeze(0) if squeeze else mel
