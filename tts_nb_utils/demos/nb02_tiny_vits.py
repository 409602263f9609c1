"""A VITS-like generator small enough to train on a 2-core CPU in seconds, for notebook 02 (NaN under fp16).

It keeps the parts of GPT-SoVITS's SoVITS generator (``SynthesizerTrn``) that matter for numerics: a prior
encoder on content features (SoVITS uses SSL features), a posterior encoder on the *linear* spectrogram, a
reparameterised latent with ``exp(logs)``, a residual flow, a HiFi-GAN-style upsampling decoder, and the
generator loss ``45 * L1(mel(y_hat), mel(y)) + 1.0 * KL`` (``c_mel`` and ``c_kl`` from ``configs/s2.json``).
The discriminator is left out: the losses that go NaN first live in the generator.

One knob stands in for what long training can do to a real network: ``activation_gain`` multiplies the output
of the posterior encoder's first layer by ``g`` and divides it back before the next layer. In exact arithmetic
nothing changes (the weights and their training are the same); one activation is ``g`` times larger. Under
fp16 autocast that activation is stored in float16, so when it passes 65504 it becomes Inf, and ``z``, the KL and
the mel loss turn NaN, as in the reported line. Near the edge only some batches overflow (intermittent NaN, the way
#1156 describes it); above it every batch does (persistent). ``fp32_encoder`` is the fix that runs the posterior
encoder in float32 (autocast disabled around it). The runner follows ``s2_train.py``'s order of operations
and writes ``train.log`` and ``G_<step>.pth`` in upstream's formats, resuming from the latest checkpoint as
upstream does.
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..audio import speechlike
from ..audio.mel import MelConfig, mel_spectrogram
from ..device import AUTOCAST_PRECISIONS, autocast_dtype, canonical_precision
from ..io import atomic_path
from ..schedules.trace import ORDER_WARNING_TEXT as ORDER_WARNING
from .nb02_resume import SAVE_LATEST_STEP, resume


@dataclass(frozen=True)
class TinyVitsConfig:
    """Model sizes; ``upsample_rates`` must multiply to the mel hop length (samples per frame)."""

    mel: MelConfig = field(
        default_factory=lambda: MelConfig(sample_rate=16000, n_fft=512, hop_length=128, win_length=512, n_mels=40)
    )
    content_dim: int = 16
    hidden: int = 32
    latent: int = 16
    upsample_rates: tuple[int, ...] = (4, 4, 8)
    decoder_channels: int = 16
    c_mel: float = 45.0
    c_kl: float = 1.0
    activation_gain: float = 1.0  # one posterior-encoder activation x gain, divided back at once: same function
    fp32_encoder: bool = False  # run the posterior encoder with autocast disabled (the fp32-region fix)


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
        # 1x1 in and out, as PosteriorEncoder's pre and proj (module/models.py:351-359 at 48b1a01)
        self.enc_q = nn.Sequential(
            nn.Conv1d(cfg.mel.n_fft // 2 + 1, h, 1), nn.LeakyReLU(0.1), nn.Conv1d(h, 2 * z, 1)
        )
        self.flow = nn.Sequential(nn.Conv1d(z, h, 3, padding=1), nn.LeakyReLU(0.1), nn.Conv1d(h, z, 1))
        self.dec = Decoder(z, cfg.decoder_channels, cfg.upsample_rates)

    def forward(self, content: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        """``content`` ``[B, content_dim, frames]``, ``y`` ``[B, frames * hop]`` -> ``(y_hat, (z, z_p, m_p, logs_p,
        m_q, logs_q))``, the same tuple SoVITS returns to its KL loss."""
        spec = linear_spectrogram(y, self.cfg.mel)
        frames = content.shape[-1]
        m_q, logs_q = self.posterior(spec[..., :frames]).chunk(2, dim=1)
        # exp in float32: CUDA autocast runs exp in float32 whatever its input; written out so CPU runs match
        z = m_q.float() + torch.randn_like(m_q, dtype=torch.float32) * torch.exp(logs_q.float())
        m_p, logs_p = self.enc_p(content).chunk(2, dim=1)
        return self.dec(z), (z, z + self.flow(z), m_p, logs_p, m_q, logs_q)

    def posterior(self, spec: torch.Tensor) -> torch.Tensor:
        """``enc_q`` with its hidden activation scaled by ``activation_gain`` and back (float16 under autocast)."""
        fp32 = self.cfg.fp32_encoder
        with torch.autocast(spec.device.type, enabled=False) if fp32 else contextlib.nullcontext():
            h = self.enc_q[0](spec.float() if fp32 else spec) * self.cfg.activation_gain
            return self.enc_q[2](self.enc_q[1](h) / self.cfg.activation_gain)


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
    """One training run: per-step total losses (NaN included) and loss parts, the GradScaler's scale after each
    step (None without one), the first non-finite step, the validation loss on clean clips in float32 before and
    after, and where ``train.log`` and the checkpoints went (``log_dir``)."""

    name: str
    losses: list[float]
    parts: list[dict[str, float]]
    scales: list[float | None]
    first_nonfinite_step: int | None
    val_start: float
    val_end: float
    lr: float
    model: TinyVits
    guard: object | None = None
    start_step: int = 0
    log_dir: Path | None = None
    resumed_from: Path | None = None
    lrs: list[float] = field(default_factory=list)

    @property
    def trained(self) -> bool:
        """Finite and better than at the start on clean validation clips."""
        return bool(np.isfinite(self.val_end) and self.val_end < self.val_start)

    @property
    def nan_steps(self) -> int:
        return int(sum(not math.isfinite(x) for x in self.losses))


def validation_loss(model: TinyVits, content: torch.Tensor, y: torch.Tensor, seed: int = 0) -> float:
    """Generator loss on clean clips in float32 with a fixed noise draw (the training RNG is left alone)."""
    with torch.random.fork_rng(devices=[y.device] if y.device.type == "cuda" else []), torch.no_grad():
        torch.manual_seed(seed)
        dtype = next(model.parameters()).dtype
        model.float()
        try:
            return float(generator_losses(model, content.float(), y.float())["total"])
        finally:
            model.to(dtype)


def upstream_logger(log_dir: Path, name: str) -> logging.Logger:
    """A logger writing ``train.log`` in ``utils.get_logger``'s format (``utils.py:309-321`` at ``48b1a01``)."""
    log_dir.mkdir(parents=True, exist_ok=True)  # as utils.get_logger does (utils.py:315-316)
    logger = logging.getLogger(f"tts_nb.nb02.{name}.{id(log_dir)}")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    handler = logging.FileHandler(log_dir / "train.log", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s\t" + name + "\t%(levelname)s\t%(message)s"))
    logger.addHandler(handler)
    return logger


def save_checkpoint(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer, epoch: int, lr0: float) -> None:
    """``utils.save_checkpoint``'s layout (``utils.py:75-90``): ``iteration`` holds the epoch, as s2_train passes it."""
    with atomic_path(path) as tmp:
        torch.save({"model": model.state_dict(), "iteration": epoch, "optimizer": optimizer.state_dict(),
                    "learning_rate": lr0}, tmp)


def _train_step(model: TinyVits, opt: torch.optim.Optimizer, scaler: torch.amp.GradScaler, guard: Any,
                content: torch.Tensor, clips: torch.Tensor, amp_dtype: torch.dtype | None) -> dict[str, torch.Tensor]:
    """One generator step in ``s2_train.py:433-449``'s order: autocast forward (losses in float32), scaled
    backward, unscale, no clipping, ``scaler.step`` (through the guard when there is one), ``scaler.update``."""
    with torch.autocast(clips.device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
        out = generator_losses(model, content, clips)
    opt.zero_grad(set_to_none=True)
    scaler.scale(out["total"]).backward()
    scaler.unscale_(opt)
    if guard is not None:
        guard.step(out["total"], step_fn=lambda: scaler.step(opt))
    else:
        scaler.step(opt)
    scaler.update()
    return out


def _nets(cfg: TinyVitsConfig, device: torch.device, lr: float, half: bool, seed: int) -> tuple:
    """The generator, its AdamW (``s2_train.py:172-198``), the stand-in discriminator and its AdamW."""
    torch.manual_seed(seed)
    model = TinyVits(cfg).to(device)
    if half:
        model.half()
    disc = nn.Conv1d(1, 4, 15, stride=4).to(device)
    return (model, torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.8, 0.99), eps=1e-9),
            disc, torch.optim.AdamW(disc.parameters(), lr=lr, betas=(0.8, 0.99), eps=1e-9))


def _scheduler(opt: torch.optim.Optimizer, first_epoch: int) -> torch.optim.lr_scheduler.ExponentialLR:
    """``ExponentialLR(last_epoch=-1)`` stepped ``epoch_str`` times before training (``s2_train.py:268-281``): after
    a resume it starts from the restored, already decayed LR."""
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.999875, last_epoch=-1)
    with warnings.catch_warnings():  # upstream steps before any optimizer step too; torch warns about that
        warnings.filterwarnings("ignore", message=re.escape(ORDER_WARNING))
        for _ in range(first_epoch):
            sched.step()
    return sched


def train_tiny_vits(
    clips: torch.Tensor,
    content: torch.Tensor,
    val: tuple[torch.Tensor, torch.Tensor],
    *,
    name: str = "run",
    epochs: int = 2,
    steps_per_epoch: int = 20,
    lr: float = 1e-4,
    precision: str = "32-true",
    grad_scaler: bool | None = None,
    guard_options: dict | None = None,
    batch_size: int = 4,
    seed: int = 0,
    cfg: TinyVitsConfig = TinyVitsConfig(),
    log_dir: str | Path | None = None,
    log_every: int = 5,
    save_latest: bool = False,
) -> RunResult:
    """Train TinyVits the way GPT-SoVITS's ``s2_train.py`` trains SoVITS (``48b1a01``): AdamW (betas 0.8/0.99,
    eps 1e-9, ``s2_train.py:172-198``; the text encoder's groups at 0.4 times the LR are not modelled), the forward
    under autocast when ``precision`` is 16-bit mixed and the losses in float32 (``:433-442``),
    ``GradScaler(enabled=fp16_run)`` (``:282``) with unscale and no clipping (``:444-449``), ``ExponentialLR`` per
    epoch. ``precision="half"`` casts model and data to float16 instead (not what upstream does).
    ``guard_options``: a NanGuard's keywords (it also watches the scaler).

    With ``log_dir``, ``train.log`` gets upstream's lines every ``log_every`` steps and ``G_<global_step>.pth`` and
    ``D_<global_step>.pth`` are saved after every epoch (``save_latest``: always as ``G_/D_233333333333.pth``, the
    WebUI default); a later call with the same ``log_dir`` resumes as upstream does
    (:func:`.nb02_resume.resume`). This model has no discriminator: ``D_`` holds a small untrained stand-in and its
    AdamW state, so that the files and the resume rules are upstream's."""
    from ..monitors.nan_guard import NanGuard
    from ..upstream.gpt_sovits import format_sovits_log

    device = clips.device
    half = precision == "half"
    amp_dtype = None if half else autocast_dtype(canonical_precision(precision, AUTOCAST_PRECISIONS))
    model, opt, disc, disc_opt = _nets(cfg, device, lr, half, seed)
    log_dir = Path(log_dir) if log_dir is not None else None
    logger = upstream_logger(log_dir, name) if log_dir is not None else None
    first_epoch, resumed_from = resume(log_dir, (model, disc), (opt, disc_opt), logger) if log_dir else (1, None)
    val_start = validation_loss(model, *val)  # of the weights this run starts from (resumed ones included)
    sched = _scheduler(opt, first_epoch)
    use_scaler = grad_scaler if grad_scaler is not None else amp_dtype == torch.float16
    scaler = torch.amp.GradScaler(device.type, enabled=use_scaler)
    guard = NanGuard(model, opt, scaler=scaler, **guard_options) if guard_options is not None else None
    order = batch_order(len(clips), batch_size, epochs * steps_per_epoch, seed + first_epoch)
    losses, parts, scales, lrs, first = [], [], [], [], None
    global_step = (first_epoch - 1) * steps_per_epoch
    for epoch in range(first_epoch, first_epoch + epochs):
        for batch_idx in range(steps_per_epoch):
            idx = order[len(losses)].to(device)
            lrs.append(opt.param_groups[0]["lr"])
            dtype = torch.float16 if half else torch.float32
            out = _train_step(model, opt, scaler, guard, content[idx].to(dtype), clips[idx].to(dtype), amp_dtype)
            losses.append(float(out["total"].detach()))
            parts.append({k: float(v.detach()) for k, v in out.items() if k != "total"})
            scales.append(float(scaler.get_scale()) if use_scaler else None)
            if first is None and not math.isfinite(losses[-1]):
                first = global_step
            if logger is not None and global_step % log_every == 0:
                progress = 100.0 * batch_idx / steps_per_epoch
                for line in format_sovits_log(parts[-1], global_step, opt.param_groups[0]["lr"], epoch, progress).split("\n"):
                    logger.info(line)
            global_step += 1
        if log_dir is not None:  # saved inside train_and_evaluate (s2_train.py:514-556), before the scheduler steps
            for part, net, o in (("G", model, opt), ("D", disc, disc_opt)):
                save_checkpoint(log_dir / f"{part}_{SAVE_LATEST_STEP if save_latest else global_step}.pth", net, o, epoch, lr)
        with warnings.catch_warnings():  # every step of the epoch may have been skipped by the scaler
            warnings.filterwarnings("ignore", message=re.escape(ORDER_WARNING))
            sched.step()  # after train_and_evaluate (s2_train.py:285-315)
    _close(logger)
    return RunResult(name, losses, parts, scales, first, val_start, validation_loss(model, *val), lr, model, guard,
                     (first_epoch - 1) * steps_per_epoch, log_dir, resumed_from, lrs)


def _close(logger: logging.Logger | None) -> None:
    for h in list(logger.handlers) if logger is not None else []:
        logger.removeHandler(h)
        h.close()


def batch_order(n_clips: int, batch_size: int, steps: int, seed: int) -> list[torch.Tensor]:
    """The clip indices of each training step (a fresh random permutation per step, cut to ``batch_size``), as
    :func:`train_tiny_vits` draws them: a run's batches are known before it starts."""
    gen = torch.Generator().manual_seed(seed)
    return [torch.randperm(n_clips, generator=gen)[:batch_size] for _ in range(steps)]
