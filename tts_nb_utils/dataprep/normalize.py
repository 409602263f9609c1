"""Per-clip level normalisation as GPT-SoVITS does it after slicing (``tools/slice_audio.py``), made safe.

GPT-SoVITS mixes each chunk as ``chunk / max|chunk| * (max * alpha) + (1 - alpha) * chunk`` (defaults 0.9, 0.25).
An all-silent chunk divides zero by zero and becomes NaN, which later shows up as a NaN loss. Here silent
(and non-finite) chunks are dropped and reported instead. Beside that peak mix, :func:`normalize_loudness` sets
each clip's integrated loudness (ITU-R BS.1770, ``audio/loudness.py``) with a peak ceiling. Used by notebook 01,
``tts-nb prepare`` (``--lufs``) and ``tts-nb slice --preset gpt-sovits`` (the mix).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..audio import SILENT_PEAK_DBFS, peak_dbfs
from ..audio.loudness import integrated_loudness

#: GPT-SoVITS web UI defaults for the mix.
DEFAULT_MAX = 0.9
DEFAULT_ALPHA = 0.25


def gpt_sovits_mix(chunk: np.ndarray, max_: float = DEFAULT_MAX, alpha: float = DEFAULT_ALPHA) -> np.ndarray:
    """GPT-SoVITS's mix, faithfully, unsafe: a silent chunk gives NaN (with NumPy's invalid-value warning).

    Includes its pre-scaling of chunks whose peak exceeds 1 (which then divides by the old peak again).
    For demonstrating the failure; use :func:`normalize_chunk` for data.
    """
    chunk = np.array(chunk, dtype=np.float32)
    tmp_max = np.abs(chunk).max()
    if tmp_max > 1:
        chunk /= tmp_max
    return (chunk / tmp_max * (max_ * alpha)) + (1 - alpha) * chunk


@dataclass
class NormalizeResult:
    """``audio`` is the normalised clip, or None when it was dropped; ``reason`` says why ("silent", "non_finite")."""

    audio: np.ndarray | None
    peak_dbfs_in: float
    reason: str | None = None

    @property
    def dropped(self) -> bool:
        return self.audio is None


def normalize_chunk(
    chunk: np.ndarray,
    max_: float = DEFAULT_MAX,
    alpha: float = DEFAULT_ALPHA,
    silence_peak_dbfs: float = SILENT_PEAK_DBFS,
) -> NormalizeResult:
    """The GPT-SoVITS mix for one clip, never dividing by zero.

    A clip with NaN/Inf samples, or whose peak is below ``silence_peak_dbfs`` (dBFS; the validator's ``silent``
    threshold), is dropped: amplifying it would only make a clip of loud noise. A clip whose peak exceeds 1 is
    first scaled to peak 1. The result peaks at ``max_ * alpha + (1 - alpha) * peak`` (at most 0.975 by default).
    """
    x = np.asarray(chunk, dtype=np.float32)
    if x.size == 0:
        return NormalizeResult(None, -240.0, "empty")
    if not np.isfinite(x).all():
        return NormalizeResult(None, float("nan"), "non_finite")
    peak = float(np.abs(x).max())
    level = peak_dbfs(x)
    if level < silence_peak_dbfs:
        return NormalizeResult(None, level, "silent")
    if peak > 1.0:
        x, peak = x / peak, 1.0
    return NormalizeResult((x * (max_ * alpha / peak + (1.0 - alpha))).astype(np.float32), level)


def normalize_loudness(
    chunk: np.ndarray,
    sr: int,
    target_lufs: float = -23.0,
    peak_ceiling: float = 0.99,
    silence_peak_dbfs: float = SILENT_PEAK_DBFS,
) -> NormalizeResult:
    """Gain ``chunk`` (``sr`` Hz) to ``target_lufs`` integrated loudness, never past ``peak_ceiling`` (linear).

    Dropped like :func:`normalize_chunk` when empty, non-finite or silent; a clip under 0.4 s (no BS.1770 block)
    is returned unchanged. When the
    ceiling limits the gain, the clip ends quieter than the target (its loudness is in the validator's report).
    """
    x = np.asarray(chunk, dtype=np.float32)
    if x.size == 0:
        return NormalizeResult(None, -240.0, "empty")
    if not np.isfinite(x).all():
        return NormalizeResult(None, float("nan"), "non_finite")
    level = peak_dbfs(x)
    if level < silence_peak_dbfs:
        return NormalizeResult(None, level, "silent")
    lufs = integrated_loudness(x, sr)
    if lufs is None or not np.isfinite(lufs):
        return NormalizeResult(x.copy(), level)
    gain = min(10 ** ((target_lufs - lufs) / 20), peak_ceiling / float(np.abs(x).max()))
    return NormalizeResult((x * gain).astype(np.float32), level)
