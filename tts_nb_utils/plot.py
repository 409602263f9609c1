"""Plots of audio shared by the notebooks: waveform, mel spectrogram, level histogram, cut points, durations.

Each function draws on ``ax`` (a new figure when None) and returns the axes. Colours are mid-tones that read
on light and dark notebook themes; long signals are drawn as a min/max envelope so plots stay small.
Used by notebook 01 (data preparation) and by ``dataprep/report.py`` for the duration histogram of a
``prepare`` report.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np

from .audio import to_db

WAVE = "tab:blue"
ACCENT = "tab:orange"
ALERT = "tab:red"
OK = "tab:green"



def _label(ax, xlabel: str, ylabel: str, title: str | None, grid: bool = True) -> None:
    """Axis labels, an optional light grid and the title: the finishing touches every plot here shares."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if grid:
        ax.grid(alpha=0.3)
    if title:
        ax.set_title(title)

def _axes(ax, figsize=(10, 2.6)):
    if ax is None:
        _, ax = plt.subplots(figsize=figsize, layout="constrained")
    return ax


def envelope(y: np.ndarray, max_points: int = 4000) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Min/max envelope of ``y`` in at most ``max_points`` columns: ``(column index in samples, lows, highs)``."""
    y = np.asarray(y, dtype=np.float32)
    y = y.mean(axis=1) if y.ndim > 1 else y
    step = max(1, int(np.ceil(len(y) / max_points)))
    n = len(y) // step * step
    if n == 0:
        return np.arange(len(y)), y, y
    blocks = y[:n].reshape(-1, step)
    return np.arange(0, n, step), blocks.min(axis=1), blocks.max(axis=1)


def plot_waveform(y: np.ndarray, sr: int, ax=None, title: str | None = None, color: str = WAVE, label: str | None = None):
    """Waveform (amplitude, full scale 1.0) against time in seconds."""
    ax = _axes(ax)
    idx, lo, hi = envelope(y)
    ax.fill_between(idx / sr, lo, hi, color=color, alpha=0.8, linewidth=0.3, label=label)
    ax.set_xlim(0, max(len(y) / sr, 1e-3))
    ax.set_ylim(-1.05, 1.05)
    _label(ax, "time (s)", "amplitude", title, grid=True)
    return ax


def plot_spectrogram(y: np.ndarray, sr: int, ax=None, title: str | None = None, n_mels: int = 80, hop_length: int = 256):
    """Log-mel spectrogram (``tts_nb_utils.audio.mel``, natural-log magnitude) against time (s) and frequency:
    mel bins on the axis, labelled in Hz at the bins' centre frequencies (librosa's mel scale)."""
    from .audio.mel import MelConfig, mel_spectrogram

    ax = _axes(ax)
    x = np.asarray(y, dtype=np.float32)
    x = x.mean(axis=1) if x.ndim > 1 else x
    cfg = MelConfig(sample_rate=sr, n_mels=n_mels, hop_length=hop_length, f_max=sr / 2)
    mel = mel_spectrogram(np.nan_to_num(x), cfg).numpy()
    ax.imshow(mel, origin="lower", aspect="auto", cmap="magma", vmin=-11.5, vmax=max(float(mel.max()), -5.0),
              extent=(0, len(x) / sr, 0, n_mels))
    import librosa

    centres = librosa.mel_frequencies(n_mels=n_mels, fmin=0.0, fmax=sr / 2)
    marks = [f for f in (0, 250, 500, 1000, 2000, 4000, 8000, 16000) if f <= sr / 2]
    ax.set_yticks(np.interp(marks, centres, np.arange(n_mels) + 0.5), [f"{f:g}" for f in marks])
    _label(ax, "time (s)", "frequency (Hz)", title, grid=False)
    return ax


def plot_level_histogram(y: np.ndarray, sr: int, ax=None, title: str | None = None,
                         marks: dict[str, float] | None = None, frame_s: float = 0.02):
    """Histogram of frame levels (RMS of ``frame_s`` windows, dBFS) with labelled vertical lines at ``marks``."""
    from .audio.signal import frame_rms

    ax = _axes(ax, figsize=(5, 2.6))
    x = np.asarray(y, dtype=np.float32)
    x = x.mean(axis=1) if x.ndim > 1 else x
    hop = max(1, int(sr * frame_s / 2))
    db = to_db(frame_rms(np.nan_to_num(x), 2 * hop, hop))
    ax.hist(np.clip(db, -100, 0), bins=np.arange(-100, 1, 2), color=WAVE, alpha=0.85)
    for k, (name, value) in enumerate((marks or {}).items()):
        ax.axvline(value, color=[ACCENT, ALERT, OK][k % 3], linestyle="--", label=f"{name} ({value:g} dBFS)")
    if marks:
        ax.legend(fontsize="small")
    _label(ax, "frame level (dBFS)", "frames", title, grid=True)
    return ax


def plot_cuts(y: np.ndarray, sr: int, ranges: Sequence[tuple[int, int]], ax=None, title: str | None = None,
              threshold_db: float | None = None):
    """Waveform with the kept ranges (samples) shaded and numbered; removed parts stay unshaded.

    ``threshold_db`` draws the slicer's threshold as a pair of amplitude lines.
    """
    ax = plot_waveform(y, sr, ax=ax, title=title)
    for k, (a, b) in enumerate(ranges):
        ax.axvspan(a / sr, b / sr, color=OK, alpha=0.18)
        ax.axvline(a / sr, color=ACCENT, linewidth=1)
        ax.axvline(b / sr, color=ACCENT, linewidth=1)
        ax.text((a + b) / 2 / sr, 0.92, str(k + 1), ha="center", va="top", fontsize="small")
    if threshold_db is not None:
        level = 10 ** (threshold_db / 20)
        ax.axhline(level, color=ALERT, linewidth=0.8, linestyle=":")
        ax.axhline(-level, color=ALERT, linewidth=0.8, linestyle=":")
    return ax


def plot_durations(durations_s: Sequence[float], ax=None, limits: tuple[float, float] | None = None,
                   title: str | None = "clip durations"):
    """Histogram of clip durations (s), with the accepted range (``limits``) as dashed lines."""
    ax = _axes(ax, figsize=(5, 2.6))
    d = np.asarray(list(durations_s), dtype=float)
    ax.hist(d, bins=max(5, min(30, len(d))), color=WAVE, alpha=0.85)
    for v in limits or ():
        ax.axvline(v, color=ALERT, linestyle="--")
    _label(ax, "duration (s)", "clips", title, grid=True)
    return ax
