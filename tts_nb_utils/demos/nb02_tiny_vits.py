"""A VITS-like generator small enough to train on a 2-core CPU in seconds, for notebook 02 (NaN under fp16).

It keeps the parts of GPT-SoVITS's SoVITS generator (``SynthesizerTrn``) that matter for numerics: a prior
encoder on content features (SoVITS uses SSL features), a posterior encoder on the *linear* spectrogram, a
reparameterised latent with ``exp(logs)``, a residual flow, a HiFi-GAN-style upsampling decoder, and the
generator loss ``45 * L1(mel(y_hat), mel(y)) + 1.0 * KL`` (``c_mel`` and ``c_kl`` from ``configs/s2.json``).
The discriminator is left out: the losses that go NaN first live in the generator.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..audio import speechlike
from ..audio.mel import MelConfig, mel_spectrogram
from ..device import AUTOCAST_PRECISIONS, autocast_dtype, canonical_precision


@dataclass(frozen=True)
class TinyVitsConfig:
    """Model sizes; ``upsample_rates`` must multiply to the mel hop length (samples per frame)."""

    mel: MelConfig = field(
        default_factory=lambda: MelConfig(sample_rate=16000, n_fft=512, hop_length=128, win_length=512, n_mels=40)
    )
    content_dim: int = 16
    hidden: int = 64
    latent: int = 16
    upsample_rates: tuple[int, ...] = (4, 4, 8)
    decoder_channels: int = 64
    c_mel: float = 45.0
    c_kl: float = 1.0


def linear_spectrogram(y: torch.Tensor, cfg: MelConfig) -> torch.Tensor:
    """Linear STFT magnitude ``[batch, n_fft // 2 + 1, frames]`` of ``y`` ``[batch, samples]``, as VITS feeds
    its posterior encoder. Computed in the dtype of ``y`` (under autocast it stays as given)."""
    pad = (cfg.n_fft - cfg.hop_length) // 2
    x = F.pad(y.unsqueeze(1), (pad, pad), mode="reflect").squeeze(1)
    window = torch.hann_window(cfg.win_length, device=y.device, dtype=torch.float32)
    spec = torch.stft(x.float(), cfg.n_fft, cfg.hop_length, cfg.win_length, window, center=False, return_complex=True)
    return torch.sqrt(spec.real**2 + spec.imag**2 + 1e-6).to(y.dtype)


class _ResBlock(nn.Module):
    def __init__(self, ch: int, dilation: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(ch, ch, 3, padding=dilation, dilation=dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(F.leaky_relu(x, 0.1))


class Decoder(nn.Module):
    """HiFi-GAN-style generator: latent frames -> waveform in [-1, 1] (tanh)."""

    def __init__(self, latent: int, channels: int, rates: tuple[int, ...]) -> None:
        super().__init__()
        self.pre = nn.Conv1d(latent, channels, 7, padding=3)
        self.ups = nn.ModuleList()
        self.res = nn.ModuleList()
        ch = channels
        for r in rates:
            self.ups.append(nn.ConvTranspose1d(ch, ch // 2, 2 * r, stride=r, padding=r // 2 + r % 2, output_padding=r % 2))
            ch //= 2
            self.res.append(_ResBlock(ch, 1))
        self.post = nn.Conv1d(ch, 1, 7, padding=3)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.pre(z)
        for up, res in zip(self.ups, self.res, strict=True):
            x = res(up(F.leaky_relu(x, 0.1)))
        return torch.tanh(self.post(F.leaky_relu(x, 0.1))).squeeze(1)


class TinyVits(nn.Module):
    """Prior encoder (content -> m_p, logs_p), posterior encoder (linear spec -> m_q, logs_q), flow, decoder."""

    def __init__(self, cfg: TinyVitsConfig = TinyVitsConfig()) -> None:
        super().__init__()
        if int(np.prod(cfg.upsample_rates)) != cfg.mel.hop_length:
            raise ValueError(
                f"upsample_rates {cfg.upsample_rates} multiply to {int(np.prod(cfg.upsample_rates))}, "
                f"but the hop length is {cfg.mel.hop_length}; make them match"
            )
        self.cfg = cfg
        h, z = cfg.hidden, cfg.latent
        self.enc_p = nn.Sequential(
            nn.Conv1d(cfg.content_dim, h, 5, padding=2), nn.LeakyReLU(0.1), nn.Conv1d(h, 2 * z, 1)
        )
        self.enc_q = nn.Sequential(
            nn.Conv1d(cfg.mel.n_fft // 2 + 1, h, 5, padding=2), nn.LeakyReLU(0.1), nn.Conv1d(h, 2 * z, 1)
        )
        self.flow = nn.Sequential(nn.Conv1d(z, h, 3, padding=1), nn.LeakyReLU(0.1), nn.Conv1d(h, z, 1))
        self.dec = Decoder(z, cfg.decoder_channels, cfg.upsample_rates)

    def forward(self, content: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        """``content`` ``[B, content_dim, frames]``, ``y`` ``[B, frames * hop]`` -> ``(y_hat, (z, z_p, m_p, logs_p,
        m_q, logs_q))``, the same tuple SoVITS returns to its KL loss."""
        spec = linear_spectrogram(y, self.cfg.mel)
        frames = content.shape[-1]
        m_q, logs_q = self.enc_q(spec[..., :frames]).chunk(2, dim=1)
        z = m_q + torch.randn_like(m_q) * torch.exp(logs_q)
        z_p = z + self.flow(z)
        m_p, logs_p = self.enc_p(content).chunk(2, dim=1)
        return self.dec(z), (z, z_p, m_p, logs_p, m_q, logs_q)


def kl_loss(z_p: torch.Tensor, logs_q: torch.Tensor, m_p: torch.Tensor, logs_p: torch.Tensor) -> torch.Tensor:
    """VITS's KL term between the flowed posterior sample and the prior, averaged over elements."""
    kl = logs_p - logs_q - 0.5 + 0.5 * (z_p - m_p) ** 2 * torch.exp(-2.0 * logs_p)
    return kl.mean()


def generator_losses(model: TinyVits, content: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
    """``{"loss_mel", "loss_kl", "total"}`` for one batch. As in GPT-SoVITS's ``s2_train.py`` the losses are
    computed in float32 with autocast disabled; the forward pass runs under whatever autocast is active."""
    y_hat, (z, z_p, m_p, logs_p, m_q, logs_q) = model(content, y)
    cfg = model.cfg
    with torch.autocast(device_type=y.device.type, enabled=False):
        n = min(y_hat.shape[-1], y.shape[-1])
        mel_hat = mel_spectrogram(y_hat[..., :n].float(), cfg.mel)
        mel_ref = mel_spectrogram(y[..., :n].float(), cfg.mel)
        loss_mel = F.l1_loss(mel_hat, mel_ref) * cfg.c_mel
        loss_kl = kl_loss(z_p.float(), logs_q.float(), m_p.float(), logs_p.float()) * cfg.c_kl
    return {"loss_mel": loss_mel, "loss_kl": loss_kl, "total": loss_mel + loss_kl}


def content_features(y: torch.Tensor | np.ndarray, cfg: TinyVitsConfig = TinyVitsConfig()) -> torch.Tensor:
    """Stand-in for SoVITS's SSL content features: the log-mel of ``y`` pooled to ``content_dim`` bands,
    ``[B, content_dim, frames]``. Detached: content features are inputs, not trained."""
    with torch.no_grad():
        mel = mel_spectrogram(torch.as_tensor(y), cfg.mel)
        if mel.dim() == 2:
            mel = mel.unsqueeze(0)
        pooled = F.adaptive_avg_pool1d(mel.transpose(1, 2), cfg.content_dim).transpose(1, 2)
        frames = torch.as_tensor(y).shape[-1] // cfg.mel.hop_length
        return torch.nan_to_num(pooled[..., :frames])


def demo_clips(n: int = 8, seconds: float = 0.5, cfg: TinyVitsConfig = TinyVitsConfig(), seed: int = 0) -> np.ndarray:
    """``n`` speech-like clips ``[n, samples]`` at the model's rate, levels and pitches varied; lengths are a
    whole number of hops."""
    sr, hop = cfg.mel.sample_rate, cfg.mel.hop_length
    samples = int(seconds * sr) // hop * hop
    rng = np.random.default_rng(seed)
    clips = [
        speechlike(samples / sr, sr, seed=seed * 1000 + i, f0=float(rng.uniform(100, 220)),
                   level_dbfs=float(rng.uniform(-26, -16)))[:samples]
        for i in range(n)
    ]
    return np.stack(clips).astype(np.float32)


@dataclass
class RunResult:
    """One training run: per-step losses (NaN included), the first non-finite step (None if none), the
    validation loss on clean clips in float32 before and after, and the guard when one was used."""

    name: str
    losses: list[float]
    parts: list[dict[str, float]]
    first_nonfinite_step: int | None
    val_start: float
    val_end: float
    lr: float
    model: TinyVits
    guard: object | None = None

    @property
    def trained(self) -> bool:
        """Finite and better than at the start on clean validation clips."""
        return bool(np.isfinite(self.val_end) and self.val_end < self.val_start)


def validation_loss(model: TinyVits, content: torch.Tensor, y: torch.Tensor, seed: int = 0) -> float:
    """Generator loss on clean clips in float32 with a fixed noise draw (the training RNG is left alone)."""
    with torch.random.fork_rng(devices=[y.device] if y.device.type == "cuda" else []), torch.no_grad():
        torch.manual_seed(seed)
        params = [p for p in model.parameters()]
        dtype = params[0].dtype
        model.float()
        try:
            return float(generator_losses(model, content.float(), y.float())["total"])
        finally:
            model.to(dtype)


def train_tiny_vits(
    clips: torch.Tensor,
    content: torch.Tensor,
    val: tuple[torch.Tensor, torch.Tensor],
    *,
    name: str = "run",
    steps: int = 40,
    lr: float = 1e-4,
    precision: str = "fp32",
    grad_scaler: bool = False,
    clip_grad_norm: float | None = None,
    guard_options: dict | None = None,
    batch_size: int = 4,
    seed: int = 0,
    cfg: TinyVitsConfig = TinyVitsConfig(),
    log_every: int | None = None,
    log=print,
) -> RunResult:
    """Train a fresh TinyVits the way GPT-SoVITS's ``s2_train.py`` trains SoVITS: AdamW (betas 0.8/0.99,
    eps 1e-9), forward under autocast when ``precision`` is "fp16"/"bf16" (losses in float32), optional
    GradScaler, optional gradient-norm clipping, optional NanGuard (``guard_options`` are its keywords).
    ``precision="half"`` casts the model and data to float16 (optimizer state follows). Batches are random
    draws of ``batch_size`` clips. Every ``log_every`` steps a GPT-SoVITS-style loss line goes to ``log``."""
    from ..monitors.nan_guard import NanGuard
    from ..upstream.gpt_sovits import format_sovits_log

    amp_dtype = None if precision == "half" else autocast_dtype(  # ValueError for an unknown name
        canonical_precision(precision, AUTOCAST_PRECISIONS))
    device = clips.device
    torch.manual_seed(seed)
    model = TinyVits(cfg).to(device)
    val_start = validation_loss(model, *val)
    data_dtype = torch.float16 if precision == "half" else torch.float32
    if precision == "half":
        model.half()
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.8, 0.99), eps=1e-9)
    scaler = torch.amp.GradScaler(device.type, enabled=grad_scaler)
    guard = NanGuard(model, opt, **guard_options) if guard_options is not None else None
    gen = torch.Generator().manual_seed(seed)
    losses, parts, first = [], [], None
    for step in range(steps):
        idx = torch.randperm(len(clips), generator=gen)[:batch_size].to(device)
        with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
            out = generator_losses(model, content[idx].to(data_dtype), clips[idx].to(data_dtype))
        opt.zero_grad(set_to_none=True)
        scaler.scale(out["total"]).backward()
        scaler.unscale_(opt)
        if clip_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip_grad_norm)
        if guard is not None:
            guard.step(out["total"], step_fn=lambda: scaler.step(opt))
        else:
            scaler.step(opt)
        scaler.update()
        loss = float(out["total"].detach())
        losses.append(loss)
        parts.append({k: float(v.detach()) for k, v in out.items() if k != "total"})
        if first is None and not np.isfinite(loss):
            first = step
        if log_every and step % log_every == 0:
            log(format_sovits_log({k: v for k, v in parts[-1].items()}, step, opt.param_groups[0]["lr"]))
    return RunResult(name, losses, parts, first, val_start, validation_loss(model, *val), lr, model, guard)
