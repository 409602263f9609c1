"""Audio -> 9-channel code frames for Dia training: real DAC codes (optional) or deterministic synthetic ones.

Dia reads 44.1 kHz DAC codes: 9 codebooks of 1024, hop 512 samples (about 86 frames per second). The DAC
model (``descript-audio-codec``) and its weights need an optional install and the network, so by default
the notebook uses ``codec="synthetic"``: codes derived deterministically from the audio's log-mel frames
(random projections quantised to 1024 levels). They have DAC's shape, rate and smoothness, so the training
mechanics (delays, masks, loss, memory) are the same. They do not decode back to speech: ``decode`` turns
them into a rough sonification instead (the mel envelope they were made from, through Griffin-Lim), enough to
hear whether generated codes follow the training clip's rhythm; ``codec="dac"`` decodes real DAC codes as
nari-labs/dia does (``dia/model.py:540-548`` at ``876125e``). Used by notebook 05.
"""

from __future__ import annotations

import librosa
import numpy as np
import soxr
import torch

from ..audio.mel import MelConfig, mel_spectrogram
from .delay import CODEBOOK_SIZE, NUM_CHANNELS

DAC_SAMPLE_RATE = 44100
DAC_HOP = 512
FRAMES_PER_SECOND = DAC_SAMPLE_RATE / DAC_HOP  # about 86.13


class CodecUnavailableError(RuntimeError):
    """The requested codec cannot run here (a missing optional package or weights); says how to enable it."""


_SYNTH_MELS = 32
_SYNTH_MEL = MelConfig(sample_rate=DAC_SAMPLE_RATE, n_fft=2048, hop_length=DAC_HOP, win_length=2048,
                       n_mels=_SYNTH_MELS, f_max=16000.0)


def _synthetic_projection(channels: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(int(seed))
    proj = torch.randn(_SYNTH_MELS, channels, generator=gen) / _SYNTH_MELS**0.5
    # Finer channels see the features through a sharper quantiser, like residual codebooks.
    return proj, torch.linspace(0.7, 1.5, channels)


def synthetic_codes(y: np.ndarray, sr: int, channels: int = NUM_CHANNELS, codebook_size: int = CODEBOOK_SIZE,
                    seed: int = 0) -> torch.Tensor:
    """Deterministic stand-in for DAC codes: ``[frames, channels]`` int64 in ``0..codebook_size-1`` at
    44.1 kHz / hop 512 (``frames = ceil(samples_44k / 512)``). The same audio and seed give the same codes.
    """
    y = np.asarray(y, dtype=np.float32)
    if y.ndim != 1 or len(y) == 0:
        raise ValueError(f"synthetic_codes needs mono audio samples [n], got shape {y.shape}")
    if sr != DAC_SAMPLE_RATE:
        y = soxr.resample(y, sr, DAC_SAMPLE_RATE).astype(np.float32)
    feats = mel_spectrogram(torch.from_numpy(y)[None], _SYNTH_MEL, log=True)[0].T  # [frames + 1, 32]
    frames = -(-len(y) // DAC_HOP)
    feats = feats[:frames]
    feats = (feats - feats.mean(0)) / (feats.std(0) + 1e-5)
    proj, sharp = _synthetic_projection(channels, seed)
    v = torch.tanh(feats @ proj * sharp)
    return ((v + 1) / 2 * (codebook_size - 1)).round().long().clamp(0, codebook_size - 1)


def encode(y: np.ndarray, sr: int, codec: str = "synthetic", device: str | torch.device = "cpu", seed: int = 0,
           ) -> torch.Tensor:
    """Codes ``[frames, 9]`` for one mono clip. ``codec``: ``"synthetic"`` (default, no downloads) or
    ``"dac"`` (transformers' ``DacModel``; the first time, the network for its 44 kHz weights)."""
    if codec == "synthetic":
        return synthetic_codes(y, sr, seed=seed)
    if codec == "dac":
        return _dac_codes(y, sr, device)
    raise ValueError(f"CODEC={codec!r} is not known; use 'synthetic' or 'dac'")


def synthetic_decode(codes: torch.Tensor, seed: int = 0, codebook_size: int = CODEBOOK_SIZE, n_iter: int = 16,
                     level: float = -2.0, spread: float = 2.0) -> np.ndarray:
    """A rough 44.1 kHz sonification of synthetic codes ``[frames, C]``: undo the quantiser and the tanh, map
    the C values back to 32 mel bands by least squares (the per-band mean and spread that :func:`synthetic_codes`
    removed are lost: ``level`` and ``spread`` in natural-log magnitude stand in), then Griffin-Lim. Not speech:
    an envelope to compare generated codes with a training clip's by ear."""
    c = torch.as_tensor(codes).float()
    proj, sharp = _synthetic_projection(c.shape[1], seed)
    v = (c / (codebook_size - 1) * 2 - 1).clamp(-0.995, 0.995)
    feats = (torch.atanh(v) / sharp) @ torch.linalg.pinv(proj)  # [frames, 32], least-norm solution
    mel = torch.exp(level + spread * feats).T.numpy()
    y = librosa.feature.inverse.mel_to_audio(mel, sr=DAC_SAMPLE_RATE, n_fft=2048, hop_length=DAC_HOP,
                                             win_length=2048, power=1.0, fmax=16000.0, n_iter=n_iter)
    return (0.5 * y / max(float(np.abs(y).max()), 1e-9)).astype(np.float32)  # peak at -6 dBFS


def decode(codes: torch.Tensor, codec: str = "synthetic", device: str | torch.device = "cpu", seed: int = 0,
           ) -> np.ndarray:
    """Audio samples at 44.1 kHz for codes ``[frames, 9]``: DAC's decoder (``codec="dac"``) or the synthetic
    codes' sonification (:func:`synthetic_decode`)."""
    if codec == "synthetic":
        return synthetic_decode(codes, seed=seed)
    if codec == "dac":
        model = _dac_model(device)
        with torch.inference_mode():
            audio = model.decode(audio_codes=torch.as_tensor(codes, device=device).long().T[None]).audio_values
            return audio.squeeze().float().cpu().numpy()
    raise ValueError(f"CODEC={codec!r} is not known; use 'synthetic' or 'dac'")


_DAC = {}
DAC_REPO = "descript/dac_44khz"


def _dac_model(device):
    """transformers' ``DacModel`` with the 44 kHz weights Dia uses (``descript/dac_44khz``, downloaded once into
    the Hugging Face cache: the only step of notebook 05 that needs the network, and only with CODEC='dac')."""
    try:
        from transformers import DacModel  # noqa: PLC0415 - the dia extra
    except ImportError:
        raise CodecUnavailableError(
            "CODEC='dac' needs transformers (this project's `dia` extra: pip install 'tts-nb[dia]'), which is "
            "not installed; or keep CODEC='synthetic' to run without it."
        ) from None
    if "model" not in _DAC:
        try:
            _DAC["model"] = DacModel.from_pretrained(DAC_REPO).eval()
        except OSError as e:
            raise CodecUnavailableError(f"CODEC='dac': cannot load {DAC_REPO} ({e}); it downloads once from the "
                                        "Hugging Face Hub, so connect to the network or keep CODEC='synthetic'"
                                        ) from None
    return _DAC["model"].to(device)


def _dac_codes(y: np.ndarray, sr: int, device) -> torch.Tensor:
    model = _dac_model(device)
    if sr != DAC_SAMPLE_RATE:
        y = soxr.resample(np.asarray(y, dtype=np.float32), sr, DAC_SAMPLE_RATE)
    hop = 512  # DAC 44 kHz: one frame per 512 samples; pad the clip to whole frames like DiaProcessor
    y = np.asarray(y, dtype=np.float32)
    y = np.pad(y, (0, -len(y) % hop))
    x = torch.as_tensor(y, device=device)[None, None]
    with torch.inference_mode():
        codes = model.encode(x).audio_codes
    return codes[0, :NUM_CHANNELS].T.long().cpu()  # [frames, 9]


DEMO_LINES = (
    "[S1] The quick brown fox jumps over the lazy dog.",
    "[S2] Did you hear that? [S1] Yes, it was the fox again.",
    "[S1] Training on a single card needs care with memory.",
    "[S2] Eight-bit optimizers and checkpointing help a lot.",
    "[S1] Delays let the model predict fine codes after coarse ones.",
    "[S2] Classifier-free guidance drops the text sometimes.",
    "[S1] A cosine schedule decays the learning rate smoothly.",
    "[S2] Resuming from a checkpoint continues the same curve.",
)


def demo_corpus(n: int = 4, seconds: float = 1.5, seed: int = 0, codec: str = "synthetic",
                sr: int = 22050) -> list[tuple[str, torch.Tensor]]:
    """``n`` (text, codes) pairs from deterministic speech-like clips (``tts_nb_utils.audio.speechlike``) of
    ``seconds`` each, with varied lengths and pitch; texts cycle through ``DEMO_LINES``."""
    from ..audio import speechlike

    items = []
    for i in range(n):
        y = speechlike(seconds * (0.8 + 0.4 * ((i * 7) % 5) / 4), sr, seed=seed + i, f0=110 + 15 * (i % 5))
        items.append((DEMO_LINES[i % len(DEMO_LINES)], encode(y, sr, codec, seed=seed)))
    return items
