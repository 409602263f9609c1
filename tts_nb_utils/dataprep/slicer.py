"""Cut long takes into clips at pauses: the audio-slicer algorithm (openvpi/audio-slicer ``slicer2.py``, used by
GPT-SoVITS as ``tools/slicer2.py``), written anew with a vectorised RMS and a loop over silent runs only.

Two rules for takes too short to slice (``rule``): "gpt-sovits" is ``tools/slicer2.py:72`` at GPT-SoVITS
48b1a01, which compares the sample count with ``min_length`` in frames (so only takes of at most ``min_length``
*samples* are kept whole); "openvpi" is ``slicer2.py:73`` at openvpi/audio-slicer 9958eed (its fix #12), which
compares frames with frames. Everything else is the same in both, and equal to upstream's cut points on the same
array (tests/data/slicer_reference.json). :func:`slice_ranges_reference` is the plain per-frame loop, kept for
tests and ``benchmarks/bench_dataprep.py``. Used by notebook 01, ``tts-nb slice`` and ``tts-nb prepare``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..audio.signal import frame_rms
from ..io import cli_field


class SlicerConfigError(ValueError):
    """Slicer parameters that the algorithm cannot use (it names the parameter and the rule)."""


@dataclass(frozen=True)
class SlicerConfig:
    """Slicer parameters as GPT-SoVITS users know them (defaults: its web UI's).

    threshold_db: frames with RMS below this (dBFS) count as silence.
    min_length_ms: a clip is not cut before it is this long (a clip may still end shorter at the end of a take).
    min_interval_ms: the shortest pause that can become a cut.
    hop_size_ms: RMS frame hop (the RMS window is ``min(min_interval, 4 * hop)``).
    max_sil_kept_ms: at most this much silence is kept around a cut.

    Each field is also a ``tts-nb slice`` / ``prepare`` option (its ``cli`` metadata, see ``cli/_common.py``).
    """

    threshold_db: float = cli_field(-34.0, "--threshold", "dB; quieter frames are silence")
    min_length_ms: float = cli_field(4000, "--min-length", "ms; shortest clip before a cut")
    min_interval_ms: float = cli_field(300, "--min-interval", "ms; shortest pause to cut at")
    hop_size_ms: float = cli_field(10, "--hop-size", "ms; RMS frame hop")
    max_sil_kept_ms: float = cli_field(500, "--max-sil-kept", "ms; silence kept around a cut")

    def check(self) -> None:
        """Raise SlicerConfigError unless ``min_length >= min_interval >= hop_size`` and ``max_sil_kept >= hop_size``."""
        if not self.min_length_ms >= self.min_interval_ms >= self.hop_size_ms > 0:
            raise SlicerConfigError(
                f"slicer needs min_length_ms >= min_interval_ms >= hop_size_ms > 0; got {self.min_length_ms}, "
                f"{self.min_interval_ms}, {self.hop_size_ms}. Lower min_interval_ms or hop_size_ms."
            )
        if not self.max_sil_kept_ms >= self.hop_size_ms:
            raise SlicerConfigError(
                f"slicer needs max_sil_kept_ms >= hop_size_ms; got {self.max_sil_kept_ms} < {self.hop_size_ms}."
            )


@dataclass(frozen=True)
class FrameGrid:
    """The slicer's settings converted to samples (hop, window) and frames (the rest), rounded as upstream does."""

    hop: int
    win: int
    min_length: int
    min_interval: int
    max_sil_kept: int
    threshold: float  # linear RMS


def frame_grid(sr: int, cfg: SlicerConfig) -> FrameGrid:
    """Convert ``cfg`` (milliseconds, dB) to samples and frames at sample rate ``sr`` (Hz)."""
    cfg.check()
    interval_samples = sr * cfg.min_interval_ms / 1000
    hop = round(sr * cfg.hop_size_ms / 1000)
    if hop < 1:
        raise SlicerConfigError(f"hop_size_ms={cfg.hop_size_ms} is under one sample at {sr} Hz; raise it.")
    return FrameGrid(
        hop=hop,
        win=min(round(interval_samples), 4 * hop),
        min_length=round(sr * cfg.min_length_ms / 1000 / hop),
        min_interval=round(interval_samples / hop),
        max_sil_kept=round(sr * cfg.max_sil_kept_ms / 1000 / hop),
        threshold=10 ** (cfg.threshold_db / 20.0),
    )


def _cuts_here(s: int, i: int, clip_start: int, g: FrameGrid) -> bool:
    """Whether the pause of frames ``[s, i)`` becomes a cut: a long leading silence, or a pause of at least
    ``min_interval`` frames once the current clip is ``min_length`` frames long."""
    leading = s == 0 and i > g.max_sil_kept
    long_enough = i - s >= g.min_interval and i - clip_start >= g.min_length
    return leading or long_enough


def _trailing_tag(rms: np.ndarray, s: int, total: int, g: FrameGrid) -> list[tuple[int, int]]:
    """The tag that removes the silence from frame ``s`` to the end, when it is long enough (else none)."""
    if total - s < g.min_interval:
        return []
    stop = min(total, s + g.max_sil_kept)
    return [(int(rms[s : stop + 1].argmin()) + s, total + 1)]


def _cut(rms: np.ndarray, s: int, i: int, clip_start: int, g: FrameGrid) -> tuple[tuple[int, int], int]:
    """The silence to remove for the pause of frames ``[s, i)`` (frame ``i`` is loud again), and the new clip start."""
    keep = g.max_sil_kept
    if i - s <= keep:
        pos = int(rms[s : i + 1].argmin()) + s
        return ((0, pos) if s == 0 else (pos, pos)), pos
    left = int(rms[s : s + keep + 1].argmin()) + s
    right = int(rms[i - keep : i + 1].argmin()) + i - keep
    if s == 0:
        return (0, right), right
    if i - s <= 2 * keep:
        mid = int(rms[i - keep : s + keep + 1].argmin()) + i - keep
        return (min(left, mid), max(right, mid)), max(right, mid)
    return (left, right), right


def _tags_to_bounds(tags: list[tuple[int, int]], total: int) -> list[tuple[int, int]]:
    """Frame tags of removed silence -> frame bounds ``[start, end)`` of the clips between them."""
    if not tags:
        return [(0, total)]
    bounds = []
    if tags[0][0] > 0:
        bounds.append((0, tags[0][0]))
    bounds += [(tags[k][1], tags[k + 1][0]) for k in range(len(tags) - 1)]
    if tags[-1][1] < total:
        bounds.append((tags[-1][1], total))
    return bounds


RULES = ("gpt-sovits", "openvpi")
LAYOUTS = ("auto", "channels_last", "channels_first")


class SlicerInputError(ValueError):
    """An array the slicer cannot read as audio (shape, layout); the message says what to pass."""


def as_mono(y: np.ndarray, layout: str = "auto") -> np.ndarray:
    """``[n]``, ``[n, channels]`` or ``[channels, n]`` (librosa's and upstream's layout) -> mono ``[n]`` (mean).

    ``layout="auto"`` takes the shorter axis of a 2-D array as channels when it has at most 16 entries and the
    other axis is longer; anything else raises SlicerInputError instead of slicing the wrong axis.
    """
    x = np.asarray(y)
    if layout not in LAYOUTS:
        raise SlicerInputError(f"layout={layout!r}: use one of {', '.join(LAYOUTS)}")
    if x.ndim == 1:
        return x
    if x.ndim != 2:
        raise SlicerInputError(f"audio of shape {x.shape}: pass [n], [n, channels] or [channels, n]")
    if layout == "auto":
        rows, cols = x.shape
        if min(rows, cols) > 16 or rows == cols:
            raise SlicerInputError(f"audio of shape {x.shape}: cannot tell channels from samples; pass "
                                   "layout='channels_last' ([n, channels]) or 'channels_first' ([channels, n])")
        layout = "channels_last" if cols < rows else "channels_first"
    return x.mean(axis=1) if layout == "channels_last" else x.mean(axis=0)


def _too_short(n: int, g: FrameGrid, rule: str) -> bool:
    if rule == "gpt-sovits":
        return n <= g.min_length  # samples against frames, as tools/slicer2.py:72 at GPT-SoVITS 48b1a01
    if rule == "openvpi":
        return (n + g.hop - 1) // g.hop <= g.min_length  # frames against frames (audio-slicer #12)
    raise SlicerConfigError(f"rule={rule!r}: use one of {', '.join(RULES)}")


def slice_frames(x: np.ndarray, sr: int, cfg: SlicerConfig = SlicerConfig(),
                 rule: str = "gpt-sovits") -> tuple[list[tuple[int, int]] | None, int, int]:
    """The slicer on mono ``x``: ``(bounds in frames, hop in samples, total frames)``; bounds is None when the
    take is too short to slice (``rule``), which upstream returns as the bare waveform.

    A clip is samples ``[a * hop, min(b * hop, n))``; upstream's names use ``a * hop`` and ``b * hop`` unclipped.
    The frame state machine runs once per silent run, not per frame.
    """
    g = frame_grid(sr, cfg)
    n = len(x)
    if _too_short(n, g, rule):
        return None, g.hop, 0
    rms = frame_rms(x, g.win, g.hop)
    total = len(rms)
    edges = np.diff(np.concatenate(([0], (rms < g.threshold).astype(np.int8), [0])))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    tags: list[tuple[int, int]] = []
    clip_start = 0
    for s, i in zip(starts.tolist(), ends.tolist(), strict=True):
        if i == total:  # trailing silence
            tags += _trailing_tag(rms, s, total, g)
            break
        if _cuts_here(s, i, clip_start, g):
            tag, clip_start = _cut(rms, s, i, clip_start, g)
            tags.append(tag)
    return _tags_to_bounds(tags, total), g.hop, total


def _to_samples(bounds: list[tuple[int, int]] | None, hop: int, n: int) -> list[tuple[int, int]]:
    if bounds is None:
        return [(0, n)]
    return [(min(a * hop, n), min(b * hop, n)) for a, b in bounds]


def slice_ranges(y: np.ndarray, sr: int, cfg: SlicerConfig = SlicerConfig(), rule: str = "gpt-sovits",
                 layout: str = "auto") -> list[tuple[int, int]]:
    """Where the slicer cuts ``y`` (``[n]``, ``[n, channels]`` or ``[channels, n]``, ``sr`` Hz): sample ranges.

    Each range is ``[start, end)``; the silence between consecutive ranges is what the slicer removes. A take
    too short to slice (``rule``, see the module docstring) is one range.
    """
    x = as_mono(y, layout)
    bounds, hop, _ = slice_frames(x, sr, cfg, rule)
    return _to_samples(bounds, hop, len(x))


def slice_ranges_reference(y: np.ndarray, sr: int, cfg: SlicerConfig = SlicerConfig(),
                           rule: str = "gpt-sovits") -> list[tuple[int, int]]:
    """The same algorithm as a straightforward loop: RMS frame by frame, then the state machine frame by frame.

    Slow on purpose; for tests and the benchmark's speed ratio. Same output as :func:`slice_ranges`.
    """
    g = frame_grid(sr, cfg)
    x = as_mono(np.asarray(y, dtype=np.float64))
    n = len(x)
    if _too_short(n, g, rule):
        return [(0, n)]
    padded = np.concatenate((np.zeros(g.win // 2), x, np.zeros(g.win // 2)))
    total = 1 + (len(padded) - g.win) // g.hop
    rms = np.empty(total)
    for k in range(total):
        frame = padded[k * g.hop : k * g.hop + g.win]
        rms[k] = np.sqrt(np.dot(frame, frame) / g.win)
    tags: list[tuple[int, int]] = []
    silence_start = None
    clip_start = 0
    for i in range(total):
        if rms[i] < g.threshold:
            if silence_start is None:
                silence_start = i
            continue
        if silence_start is None:
            continue
        if _cuts_here(silence_start, i, clip_start, g):
            tag, clip_start = _cut(rms, silence_start, i, clip_start, g)
            tags.append(tag)
        silence_start = None
    if silence_start is not None:
        tags += _trailing_tag(rms, silence_start, total, g)
    return _to_samples(_tags_to_bounds(tags, total), g.hop, n)


@dataclass
class Chunk:
    """One clip cut from a take: ``audio`` is ``y[start:end]`` (samples) at ``sr`` Hz."""

    audio: np.ndarray
    start: int
    end: int
    sr: int

    @property
    def duration_s(self) -> float:
        return (self.end - self.start) / self.sr


def slice_audio(y: np.ndarray, sr: int, cfg: SlicerConfig = SlicerConfig(), rule: str = "gpt-sovits",
                layout: str = "auto") -> list[Chunk]:
    """Slice ``y`` and return the clips with their sample ranges (see :func:`slice_ranges`); each clip keeps
    ``y``'s layout (``[channels, n]`` input gives ``[channels, end - start]`` clips)."""
    x = np.asarray(y)
    ranges = slice_ranges(x, sr, cfg, rule, layout)
    first = x.ndim == 2 and len(as_mono(x, layout)) != x.shape[0]
    return [Chunk(x[:, a:b] if first else x[a:b], a, b, sr) for a, b in ranges if b > a]
