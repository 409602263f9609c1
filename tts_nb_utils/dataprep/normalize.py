"""Per-clip level normalisation as GPT-SoVITS does it after slicing (``tools/slice_audio.py``), made safe.

GPT-SoVITS mixes each chunk as ``chunk / max|chunk| * (max * alpha) + (1 - alpha) * chunk`` (defaults 0.9, 0.25).
An all-silent chunk divides zero by zero and becomes NaN, which later shows up as a NaN loss. Here silent
(and non-finite) chunks are dropped and reported instead. Used by notebook 01 and ``tts-nb prepare``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..audio import SILENT_PEAK_DBFS, peak_dbfs

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
