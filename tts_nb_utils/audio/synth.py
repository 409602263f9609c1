"""Test signals with a known noise level: legato singing (vibrato, glides, no pauses) and clean speech-like takes
(voiced syllables, fricative bursts, pauses), and noise added at an exact SNR.

Used by the SNR tests and ``benchmarks/bench_snr.py`` (the error of :mod:`.snr` is measured on them) and by
notebook 01's singing example. Deterministic for a seed; no background noise unless :func:`add_noise` adds it.
"""

from __future__ import annotations

import numpy as np

from .signal import EPS


def _harmonics(pitch: np.ndarray, sr: int, rng: np.random.Generator, formants: tuple[float, ...]) -> np.ndarray:
    """A sum of partials of the pitch track ``pitch`` (Hz per sample), shaped by formant humps (Hz), below
    0.45 of the sample rate (no aliasing)."""
    phase = 2 * np.pi * np.cumsum(pitch) / sr
    y = np.zeros(len(pitch))
    for h in range(1, 60):
        f = h * pitch
        if f.min() > 0.45 * sr:
            break
        gain = 0.9**h * (1 + sum(3 * np.exp(-(((f - fc) / (0.15 * fc)) ** 2)) for fc in formants))
        y += np.where(f < 0.45 * sr, gain, 0.0) * np.sin(h * phase + rng.uniform(0, 2 * np.pi))
    return y


def _level(y: np.ndarray, level_dbfs: float) -> np.ndarray:
    return (y * 10 ** (level_dbfs / 20) / (np.sqrt(np.mean(y**2)) + EPS)).astype(np.float32)


def legato_singing(seconds: float, sr: int = 44100, seed: int = 0, f0: float = 220.0,
                   level_dbfs: float = -20.0) -> np.ndarray:
    """Sustained singing: notes of 0.4-1.2 s within a fifth below to an octave above ``f0`` (Hz), 60 ms glides,
    5-6.5 Hz vibrato of +-3 % (about half a semitone), slow swells of +-2 dB, no pause anywhere. RMS
    ``level_dbfs``."""
    rng = np.random.default_rng(seed)
    n = int(round(seconds * sr))
    t = np.arange(n) / sr
    starts, notes, at = [], [], 0.0
    while at < seconds:
        starts.append(at)
        notes.append(f0 * 2 ** (rng.integers(-7, 13) / 12))
        at += rng.uniform(0.4, 1.2)
    target = np.asarray(notes)[np.searchsorted(starts, t, side="right") - 1]
    k = max(1, int(0.06 * sr))
    target = np.convolve(np.pad(target, (k, k), mode="edge"), np.ones(k) / k, mode="same")[k:-k]
    pitch = target * (1 + 0.03 * np.sin(2 * np.pi * rng.uniform(5, 6.5) * t + rng.uniform(0, 6)))
    y = _harmonics(pitch, sr, rng, (700.0, 1200.0, 2800.0))
    y *= 1 + 0.25 * np.sin(2 * np.pi * 0.4 * t + rng.uniform(0, 6))
    return _level(y, level_dbfs)


def clean_speech(seconds: float, sr: int = 22050, seed: int = 0, f0: float = 130.0,
                 level_dbfs: float = -20.0) -> np.ndarray:
    """Speech-like, with nothing but the voice: syllables of 120-300 ms (a falling, wandering pitch, two moving
    formants), some with a 60-120 ms fricative burst (noise band-passed to 3-8 kHz), 40-250 ms gaps between
    syllables and a 300-600 ms pause every few syllables, all of exact digital silence. RMS ``level_dbfs``."""
    rng = np.random.default_rng(seed)
    n = int(round(seconds * sr))
    y = np.zeros(n)
    at = int(0.2 * sr)
    while at < n - int(0.3 * sr):
        m = int(rng.uniform(0.12, 0.3) * sr)
        t = np.arange(m) / sr
        pitch = f0 * rng.uniform(0.85, 1.2) * (1 - 0.4 * t) * (1 + 0.02 * np.sin(2 * np.pi * 4 * t))
        syl = _harmonics(pitch, sr, rng, (rng.uniform(400, 900), rng.uniform(1100, 2400)))
        syl *= np.hanning(m)
        if rng.random() < 0.4:
            fm = int(rng.uniform(0.06, 0.12) * sr)
            spec = np.fft.rfft(rng.standard_normal(fm))
            freqs = np.fft.rfftfreq(fm, 1 / sr)
            spec[(freqs < 3000) | (freqs > min(8000, 0.45 * sr))] = 0
            fric = np.fft.irfft(spec, fm) * np.hanning(fm)
            syl[:fm] += fric * 0.5 * np.abs(syl).max() / (np.abs(fric).max() + EPS)
        y[at : at + m] += syl[: n - at]
        at += m + int(rng.uniform(0.04, 0.25) * sr) + (int(rng.uniform(0.3, 0.6) * sr) if rng.random() < 0.25 else 0)
    return _level(y, level_dbfs)


def add_noise(y: np.ndarray, snr_db: float, seed: int = 0, color: str = "white") -> np.ndarray:
    """``y`` plus Gaussian noise (``"white"``, or ``"pink"``: -3 dB per octave) whose power over the whole signal
    is ``snr_db`` below that of ``y``: the SNR the estimator should read."""
    rng = np.random.default_rng(seed + 7919)
    noise = rng.standard_normal(len(y))
    if color == "pink":
        spec = np.fft.rfft(noise)
        spec /= np.sqrt(np.maximum(np.arange(len(spec)), 1))
        noise = np.fft.irfft(spec, len(y))
    elif color != "white":
        raise ValueError(f"noise color {color!r}: use white or pink")
    noise *= np.sqrt(np.mean(np.square(y, dtype=np.float64)) / np.mean(noise**2)) * 10 ** (-snr_db / 20)
    return (y + noise).astype(np.float32)
