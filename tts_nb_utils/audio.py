"""Shared audio helpers: load and save (soundfile, resampled with soxr), levels in dBFS, and a speech-like
test signal for notebooks that must run without the demo corpus.

Used by the data tools (notebook 01) and by every notebook that needs a few clips.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from .atomic import atomic_path

EPS = 1e-12


class AudioReadError(ValueError):
    """A file that soundfile cannot decode; the message names the file and the decoder's reason."""


def load_audio(path: str | os.PathLike, sr: int | None = None, mono: bool = True) -> tuple[np.ndarray, int]:
    """Read an audio file as float32 in [-1, 1]; returns ``(samples, sample_rate)``.

    ``mono=True`` averages channels (shape ``[n]``), else shape ``[n, channels]``. ``sr`` resamples with soxr
    (high quality) when it differs from the file's rate. Raises AudioReadError naming the file.
    """
    try:
        y, file_sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as e:  # noqa: BLE001 - libsndfile raises several types
        raise AudioReadError(f"{path}: cannot decode audio ({e}); check the file or re-export it as WAV/FLAC") from e
    if mono:
        y = y.mean(axis=1)
    if sr is not None and sr != file_sr and len(y):
        y = soxr.resample(y, file_sr, sr, quality="HQ").astype(np.float32)
        file_sr = sr
    return y, int(file_sr)


def save_audio(path: str | os.PathLike, y: np.ndarray, sr: int, subtype: str | None = None) -> Path:
    """Write ``y`` (``[n]`` or ``[n, channels]``, float in [-1, 1]) atomically; format from the file suffix."""
    path = Path(path)
    with atomic_path(path) as tmp:
        sf.write(str(tmp), np.asarray(y), int(sr), subtype=subtype, format=(path.suffix.lstrip(".") or "wav").upper())
    return path


def to_db(x: float | np.ndarray) -> float | np.ndarray:
    """Amplitude to dB relative to full scale (1.0); -inf-safe (floor at -240 dB)."""
    return 20.0 * np.log10(np.maximum(np.abs(x), EPS))


def peak_dbfs(y: np.ndarray) -> float:
    """Peak level in dBFS (0 dBFS = full scale); -240 for an empty or all-zero signal."""
    return float(to_db(np.max(np.abs(y)))) if len(y) else -240.0


def rms_dbfs(y: np.ndarray) -> float:
    """RMS level in dBFS; -240 for an empty or all-zero signal."""
    return float(to_db(np.sqrt(np.mean(np.square(y, dtype=np.float64))))) if len(y) else -240.0


def speechlike(
    seconds: float,
    sr: int = 22050,
    seed: int = 0,
    f0: float = 140.0,
    pauses: list[tuple[float, float]] | None = None,
    level_dbfs: float = -20.0,
) -> np.ndarray:
    """A deterministic speech-like signal: a harmonic tone with a wandering pitch and syllable-rate
    amplitude modulation, silent during ``pauses`` (list of ``(start_s, end_s)``). RMS of the voiced part is
    about ``level_dbfs``. For tests and notebooks that run without the demo corpus; not speech.
    """
    rng = np.random.default_rng(seed)
    n = int(round(seconds * sr))
    t = np.arange(n) / sr
    pitch = f0 * (1 + 0.08 * np.sin(2 * np.pi * 0.7 * t + rng.uniform(0, 6)) + 0.03 * np.sin(2 * np.pi * 3.1 * t))
    phase = 2 * np.pi * np.cumsum(pitch) / sr
    y = sum((0.8**k) * np.sin(k * phase + rng.uniform(0, 6)) for k in range(1, 12))
    syllables = 0.55 + 0.45 * np.sin(2 * np.pi * 4.0 * t + rng.uniform(0, 6)) ** 2
    y = y * syllables + 0.02 * rng.standard_normal(n)
    gate = np.ones(n)
    for start, end in pauses or []:
        a, b = int(start * sr), int(end * sr)
        gate[max(a, 0) : min(b, n)] = 0.0
    ramp = max(1, int(0.01 * sr))  # 10 ms fades so the gates do not click
    gate = np.convolve(gate, np.ones(ramp) / ramp, mode="same")
    y = y * gate
    voiced = y[gate > 0.5]
    if len(voiced):
        y = y * (10 ** (level_dbfs / 20) / (np.sqrt(np.mean(voiced**2)) + EPS))
    return y.astype(np.float32)
