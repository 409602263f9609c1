"""Signal helpers: levels in dBFS, frame RMS, what is wrong with a clip, and a speech-like test signal.

Used by the data tools (notebook 01), the slicer, the plots, notebook 02's clip check and the notebook
miniatures that need a few clips without the demo corpus.
"""

from __future__ import annotations

import numpy as np

EPS = 1e-12

#: A peak below this (dBFS) is silence: the validator's ``silent`` code (notebook 01) and ``clip_problems``
#: (notebook 02) share it. -45 dBFS is 11 dB under the GPT-SoVITS slicer's -34 dB threshold, so such a file or
#: chunk holds nothing the slicer would keep; normalising it to a peak divides by less than 0.006.
SILENT_PEAK_DBFS = -45.0


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


def frame_rms(y: np.ndarray, frame_length: int, hop_length: int) -> np.ndarray:
    """RMS per frame, centred frames with zero padding (as ``librosa.feature.rms(center=True, pad_mode="constant")``).

    Vectorised with a running sum of squares in float64: O(n) whatever the window. Returns ``1 + n // hop`` values.
    A frame that holds NaN or Inf gets what a direct computation gives (NaN or Inf), and only that frame.
    """
    y = np.asarray(y)
    pad = frame_length // 2
    if frame_length % hop_length == 0 and pad % hop_length == 0 and len(y):
        return _frame_rms_by_hops(y, frame_length // hop_length, pad // hop_length, hop_length)
    sq = np.square(y, dtype=np.float64)
    csum = np.zeros(len(y) + 2 * pad + 1)
    np.cumsum(sq, out=csum[pad + 1 : pad + 1 + len(y)])
    bad = None if np.isfinite(csum[pad + len(y)]) else ~np.isfinite(y)  # NaN/Inf reach the running sum's end
    if bad is not None:
        np.cumsum(np.where(bad, 0.0, sq), out=csum[pad + 1 : pad + 1 + len(y)])
    csum[pad + 1 + len(y) :] = csum[pad + len(y)]
    n_frames = 1 + (len(y) + 2 * pad - frame_length) // hop_length
    starts = np.arange(n_frames) * hop_length
    power = (csum[starts + frame_length] - csum[starts]) / frame_length
    rms = np.sqrt(np.maximum(power, 0.0))
    if bad is not None:
        padded = np.concatenate((np.zeros(pad), y.astype(np.float64), np.zeros(pad)))
        hits = np.concatenate(([0], np.cumsum(np.concatenate((np.zeros(pad), bad, np.zeros(pad))))))
        for k in np.flatnonzero(hits[starts + frame_length] > hits[starts]):
            frame = padded[starts[k] : starts[k] + frame_length]
            with np.errstate(invalid="ignore", over="ignore"):
                rms[k] = np.sqrt(np.mean(np.abs(frame) ** 2))
    return rms


def _frame_rms_by_hops(y: np.ndarray, per_frame: int, lead: int, hop: int) -> np.ndarray:
    """frame_rms when frames are whole hops (the slicer's usual 4 x hop window): sums of squares per hop, then
    ``per_frame`` consecutive hops per frame, the first ``lead`` of them the zero padding. NaN/Inf stay in the
    frames that hold them."""
    n = len(y)
    full = n // hop * hop
    blocks = y[:full].reshape(-1, hop)
    sums = np.einsum("ij,ij->i", blocks, blocks, dtype=np.float64)
    if n > full:
        rest = y[full:].astype(np.float64)
        sums = np.append(sums, rest @ rest)
    n_frames = 1 + n // hop
    padded = np.concatenate((np.zeros(lead), sums, np.zeros(per_frame)))
    power = sum(padded[k : k + n_frames] for k in range(per_frame)) / (per_frame * hop)
    return np.sqrt(power)


def clip_problems(y: np.ndarray, peak_limit: float = 1.0, silence_dbfs: float = SILENT_PEAK_DBFS) -> list[str]:
    """What is wrong with one audio clip (samples expected in [-1, 1]) before it goes into a batch: non-finite
    samples, silence (peak below ``silence_dbfs``; normalising it divides by ~0), or a peak above
    ``peak_limit`` (int16-scale or clipped audio). Empty list when the clip is fine."""
    if hasattr(y, "detach"):  # a torch tensor; this module does not import torch
        y = y.detach().float().cpu().numpy()
    x = np.asarray(y, dtype=np.float64).reshape(-1)
    problems = []
    if x.size == 0:
        return ["empty clip (0 samples)"]
    bad = ~np.isfinite(x)
    if bad.any():
        problems.append(f"{int(bad.sum())} NaN/Inf samples (e.g. a silent chunk divided by its own peak)")
        x = x[~bad]
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if peak <= 10 ** (silence_dbfs / 20):
        problems.append(f"silent: peak {peak:.3g} is below {silence_dbfs:g} dBFS; normalising it divides by ~0")
    elif peak > peak_limit:
        problems.append(f"peak {peak:.4g} > {peak_limit:g}: not normalised to [-1, 1] (int16 scale is 32767)")
    return problems
