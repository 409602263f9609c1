"""Check speech recordings before training: one row per file with issue codes from a fixed vocabulary.

GPT-SoVITS, RVC and Applio check none of this: a clipped, silent or noisy file goes straight into training
(and a silent clip turns into NaN). Used by notebook 01, ``tts-nb validate`` and ``tts-nb prepare``.
A file that cannot be read gets a row with the decoder's message; the batch always goes on.
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections import Counter
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import soundfile as sf

from ..audio.loudness import integrated_loudness
from ..audio.signal import EPS, SILENT_PEAK_DBFS, to_db
from ..errors import UsageError
from ..io import atomic_write_json, atomic_write_text, cli_field, list_audio_files
from ..parallel import ordered_map

#: Every issue code, in report order. A file with one of FATAL_CODES gets only that code.
CODES: tuple[str, ...] = (
    "unreadable", "empty", "non_finite", "silent", "wrong_sample_rate", "not_mono", "too_short", "too_long",
    "too_quiet", "clipping", "dc_offset", "low_snr", "long_silence",
)
FATAL_CODES: tuple[str, ...] = ("unreadable", "empty", "non_finite", "silent")

CODE_MEANINGS: dict[str, str] = {
    "unreadable": "cannot be decoded (the row carries the decoder's message)",
    "empty": "decodes to zero samples",
    "non_finite": "has NaN or Inf samples",
    "silent": "peak below silent_peak_dbfs",
    "wrong_sample_rate": "sample rate differs from the target",
    "not_mono": "more than one channel",
    "too_short": "shorter than min_duration_s",
    "too_long": "longer than max_duration_s",
    "too_quiet": "RMS of the active part below quiet_rms_dbfs",
    "clipping": "at least clip_fraction of samples at or above clip_level of full scale",
    "dc_offset": "absolute mean above dc_offset",
    "low_snr": "estimated SNR below min_snr_db",
    "long_silence": "leading/trailing silence above max_edge_silence_s or a pause above max_pause_s",
}


class ValidationUsageError(UsageError):
    """A folder that does not exist or a threshold that makes no sense (names it and what to do)."""


@dataclass(frozen=True)
class ValidationConfig:
    """Thresholds for every issue code (units in the names); ``sample_rate=None`` skips wrong_sample_rate.

    A field with ``cli`` metadata is a ``tts-nb validate`` / ``prepare`` option (see ``cli/_common.py``).
    """

    sample_rate: int | None = cli_field(
        None, "--sample-rate", "expected sample rate in Hz (flags wrong_sample_rate)"
    )
    min_duration_s: float = cli_field(1.0, "--min-duration", "seconds (too_short)")
    max_duration_s: float = cli_field(15.0, "--max-duration", "seconds (too_long)")
    silent_peak_dbfs: float = cli_field(
        SILENT_PEAK_DBFS, "--silent-peak", "dBFS peak below which a file is silent"
    )
    quiet_rms_dbfs: float = cli_field(-35.0, "--quiet-rms", "dBFS active RMS below which too_quiet")
    clip_level: float = 0.999
    clip_fraction: float = cli_field(0.001, "--clip-fraction", "fraction of clipped samples (clipping)")
    dc_offset: float = cli_field(0.01, "--dc-offset", "absolute mean above which dc_offset")
    min_snr_db: float = cli_field(15.0, "--min-snr", "dB, estimated SNR below which low_snr")
    silence_dbfs: float = -40.0  # frames (20 ms) below this, and 30 dB below the loudest, are silence
    max_edge_silence_s: float = cli_field(1.0, "--max-edge-silence", "seconds of lead/trail silence")
    max_pause_s: float = cli_field(3.0, "--max-pause", "seconds of internal pause (long_silence)")

    def __post_init__(self):
        rules = [  # (field, ok, what it must be); the message names the option users type
            ("sample_rate", self.sample_rate is None or self.sample_rate > 0, "a positive number of Hz"),
            ("min_duration_s", self.min_duration_s >= 0, "0 or more seconds"),
            ("max_duration_s", self.max_duration_s > 0, "more than 0 seconds"),
            ("silent_peak_dbfs", self.silent_peak_dbfs <= 0, "a level of 0 dBFS or less"),
            ("quiet_rms_dbfs", self.quiet_rms_dbfs <= 0, "a level of 0 dBFS or less"),
            ("clip_fraction", 0 < self.clip_fraction <= 1, "a fraction above 0 and at most 1 (0 flags every file)"),
            ("dc_offset", 0 <= self.dc_offset < 1, "an absolute mean from 0 to below 1"),
            ("min_snr_db", math.isfinite(self.min_snr_db), "a finite number of dB"),
            ("max_edge_silence_s", self.max_edge_silence_s >= 0, "0 or more seconds"),
            ("max_pause_s", self.max_pause_s > 0, "more than 0 seconds"),
        ]
        for name, ok, what in rules:  # a nan fails every comparison, so it lands here too
            if not ok:
                option = next((f.metadata.get("cli") for f in fields(self) if f.name == name), None) or name
                raise ValidationUsageError(f"{option} {getattr(self, name)!r}: give {what}")
        if self.min_duration_s > self.max_duration_s:
            raise ValidationUsageError(
                f"min_duration_s={self.min_duration_s} is above max_duration_s={self.max_duration_s}; swap them."
            )


@dataclass
class Metrics:
    """Measurements behind the codes (dBFS, seconds, fractions); None where a fatal code stopped the checks."""

    peak_dbfs: float | None = None
    active_rms_dbfs: float | None = None
    clipped_fraction: float | None = None
    dc_offset: float | None = None
    snr_db: float | None = None
    leading_silence_s: float | None = None
    trailing_silence_s: float | None = None
    longest_pause_s: float | None = None
    loudness_lufs: float | None = None  # integrated, ITU-R BS.1770-4 (pyloudnorm's meter); None under 0.4 s


@dataclass
class FileReport:
    """One row: ``path`` relative to the validated folder, issue codes, basic facts and measurements."""

    path: str
    issues: list[str] = field(default_factory=list)
    duration_s: float | None = None
    sample_rate: int | None = None
    channels: int | None = None
    error: str | None = None
    metrics: Metrics = field(default_factory=Metrics)

    @property
    def ok(self) -> bool:
        return not self.issues

    def as_dict(self) -> dict:
        return asdict(self)


# ------------------------------------------------------------------------------------------- measurements

HOP_S = 0.010  # frames are two hops (20 ms)


def _frames_db(mono: np.ndarray, sr: int, centre: float = 0.0) -> tuple[np.ndarray, float]:
    """Levels (dBFS) of ``mono - centre`` in centred frames of two hops (about 20 ms, 10 ms hop, zero padding,
    as ``frame_rms(y, 2 * hop, hop)``), from per-hop sums: one pass over the samples, no centred copy."""
    hop = max(1, round(sr * HOP_S))
    n = len(mono)
    full = n // hop * hop
    blocks = mono[:full].reshape(-1, hop)
    s1 = blocks.sum(axis=1, dtype=np.float64)
    s2 = np.einsum("ij,ij->i", blocks, blocks, dtype=np.float64)
    if n > full:
        rest = mono[full:].astype(np.float64)
        s1, s2 = np.append(s1, rest.sum()), np.append(s2, rest @ rest)
    counts = np.full(len(s1), float(hop))
    counts[-1] = n - (len(s1) - 1) * hop
    power = np.maximum(s2 - 2 * centre * s1 + counts * centre * centre, 0.0)
    frames = np.concatenate(([0.0], power)) + np.concatenate((power, [0.0]))  # frame k: hops k-1 and k
    frames = frames[: n // hop + 1]
    return to_db(np.sqrt(frames / (2 * hop))), hop / sr


def estimate_snr_db(mono: np.ndarray, sr: int, active_margin_db: float = 30.0) -> float:
    """SNR estimate (dB) from frame powers inside the speech region.

    The speech region runs from the first to the last frame within ``active_margin_db`` of the loudest frame
    (so digital silence or padding at the ends does not count as a clean noise floor). Noise power is the
    mean power of the quietest 5 % of frames there (pauses and gaps between words); speech power is the mean
    power of frames more than 6 dB above that floor, less the noise. A clean take with room tone reads 30-50 dB;
    a take that is all noise reads near 0. A clip with no pause at all reads low (its floor is speech).
    """
    return _snr_from_db(_frames_db(mono, sr)[0], active_margin_db)


def _snr_from_db(db: np.ndarray, active_margin_db: float = 30.0) -> float:
    if not len(db):
        return 0.0
    active = np.flatnonzero(db > db.max() - active_margin_db)
    region = db[active[0] : active[-1] + 1]
    power = 10 ** (region / 10)
    quietest = np.partition(power, max(1, len(power) // 20) - 1)[: max(1, len(power) // 20)]
    noise = max(float(quietest.mean()), 1e-12)
    loud = power[power > 4 * noise]
    if not len(loud):
        return 0.0
    return float(10 * np.log10(max(float(loud.mean()) - noise, 1e-12) / noise))


def active_rms_dbfs(mono: np.ndarray, sr: int, margin_db: float = 30.0) -> float:
    """RMS (dBFS) of the active part: the 20 ms frames within ``margin_db`` of the loudest frame."""
    return _active_from_db(_frames_db(mono, sr)[0], margin_db)


def _active_from_db(db: np.ndarray, margin_db: float = 30.0) -> float:
    if not len(db):
        return -240.0
    active = db > db.max() - margin_db
    return float(10 * np.log10(np.mean(10 ** (db[active] / 10)) + EPS))


def _silence_runs(db: np.ndarray, threshold: float) -> tuple[int, int, int]:
    """Frames of leading silence, trailing silence and the longest internal silent run."""
    loud = np.flatnonzero(db >= threshold)
    if not len(loud):
        return len(db), len(db), 0
    lead, trail = int(loud[0]), int(len(db) - 1 - loud[-1])
    gaps = np.diff(loud) - 1
    return lead, trail, int(gaps.max()) if len(gaps) else 0


def check_signal(y: np.ndarray, sr: int, cfg: ValidationConfig = ValidationConfig()) -> tuple[list[str], Metrics]:
    """Issue codes and measurements for samples ``y`` (``[n]`` or ``[n, channels]``, float, full scale 1.0).

    Does not check unreadable files (see :func:`validate_file`). Fatal codes (empty, non_finite, silent) stop
    the other checks.
    """
    x = np.asarray(y, dtype=np.float32)
    x2 = x if x.ndim == 2 else x[:, None]
    m = Metrics()
    if x2.shape[0] == 0:
        return ["empty"], m
    if not np.isfinite(x2).all():
        return ["non_finite"], m
    absx = np.abs(x2)
    peak = float(absx.max())
    m.peak_dbfs = round(float(to_db(peak)), 2)
    if m.peak_dbfs < cfg.silent_peak_dbfs:
        return ["silent"], m
    issues: list[str] = []
    n, channels = x2.shape
    if cfg.sample_rate is not None and sr != cfg.sample_rate:
        issues.append("wrong_sample_rate")
    if channels > 1:
        issues.append("not_mono")
    duration = n / sr
    if duration < cfg.min_duration_s:
        issues.append("too_short")
    if duration > cfg.max_duration_s:
        issues.append("too_long")
    mono = x2[:, 0] if channels == 1 else x2.mean(axis=1)
    centred_db, hop_s = _frames_db(mono, sr, float(mono.mean(dtype=np.float64)))
    m.active_rms_dbfs = round(_active_from_db(centred_db), 2)
    if m.active_rms_dbfs < cfg.quiet_rms_dbfs:
        issues.append("too_quiet")
    m.clipped_fraction = float(np.count_nonzero(absx >= cfg.clip_level)) / absx.size
    if m.clipped_fraction >= cfg.clip_fraction:
        issues.append("clipping")
    m.dc_offset = round(float(np.abs(x2.mean(axis=0, dtype=np.float64)).max()), 5)
    if m.dc_offset > cfg.dc_offset:
        issues.append("dc_offset")
    lufs = integrated_loudness(x2 if channels <= 5 else mono, sr)
    m.loudness_lufs = None if lufs is None else round(lufs, 2) if np.isfinite(lufs) else -240.0
    m.snr_db = round(_snr_from_db(centred_db), 2)
    if m.snr_db < cfg.min_snr_db:
        issues.append("low_snr")
    lead, trail, pause = _silence_runs(centred_db, min(cfg.silence_dbfs, float(centred_db.max()) - 30.0))
    m.leading_silence_s, m.trailing_silence_s = round(lead * hop_s, 3), round(trail * hop_s, 3)
    m.longest_pause_s = round(pause * hop_s, 3)
    if max(m.leading_silence_s, m.trailing_silence_s) > cfg.max_edge_silence_s or m.longest_pause_s > cfg.max_pause_s:
        issues.append("long_silence")
    return issues, m


# ------------------------------------------------------------------------------------------------- files


def validate_file(path: str | os.PathLike, cfg: ValidationConfig = ValidationConfig(), root: str | os.PathLike | None = None) -> FileReport:
    """Validate one file; never raises for bad audio (the row says ``unreadable`` with the decoder's message).

    ``path`` in the row is relative to ``root`` when given. The file is only read.
    """
    path = Path(path)
    rel = path.relative_to(root).as_posix() if root is not None else path.as_posix()
    row = FileReport(rel)
    try:
        with open(path, "rb") as fh, sf.SoundFile(fh) as f:  # a file object: names that are not UTF-8 too
            row.sample_rate, row.channels = int(f.samplerate), int(f.channels)
            data = f.read(dtype="float32", always_2d=True)
    except Exception as e:  # noqa: BLE001 - libsndfile raises several types for bad files
        row.issues, row.error = ["unreadable"], f"{type(e).__name__}: {e}"
        return row
    row.duration_s = round(data.shape[0] / row.sample_rate, 4)
    row.issues, row.metrics = check_signal(data, row.sample_rate, cfg)
    return row


def _validate_one(args: tuple[str, ValidationConfig, str]) -> FileReport:
    return validate_file(args[0], args[1], args[2])


def validate_folder(
    folder: str | os.PathLike,
    cfg: ValidationConfig = ValidationConfig(),
    jobs: int = 1,
    progress: bool = True,
) -> list[FileReport]:
    """One row per audio file under ``folder`` (recursive), in path order, whatever each file holds.

    ``jobs > 1`` validates in that many processes. Raises UsageError for a missing folder.
    """
    files = list_audio_files(folder)
    tasks = [(str(p), cfg, str(folder)) for p in files]
    return ordered_map(_validate_one, tasks, jobs, "validate", progress, chunksize=len(tasks) // (4 * max(1, jobs)))


def summarize(rows: list[FileReport]) -> dict:
    """Counts: files, ok, with_issues, by_code (every code, zero included), total and mean duration (s)."""
    counts = Counter(code for r in rows for code in r.issues)
    durations = [r.duration_s for r in rows if r.duration_s is not None]
    return {
        "files": len(rows),
        "ok": sum(r.ok for r in rows),
        "with_issues": sum(not r.ok for r in rows),
        "by_code": {code: counts.get(code, 0) for code in CODES},
        "total_duration_s": round(float(sum(durations)), 3),
    }


def report_dict(rows: list[FileReport], cfg: ValidationConfig | None = None) -> dict:
    """The JSON document of ``tts-nb validate --json``: ``{"files": [...], "summary": {...}, "config": {...}}``."""
    out = {"files": [r.as_dict() for r in rows], "summary": summarize(rows)}
    if cfg is not None:
        out["config"] = asdict(cfg)
    return out


def write_json(rows: list[FileReport], dest: str | os.PathLike, cfg: ValidationConfig | None = None) -> Path:
    """Write :func:`report_dict` atomically."""
    return atomic_write_json(dest, report_dict(rows, cfg))


def write_csv(rows: list[FileReport], dest: str | os.PathLike) -> Path:
    """One CSV line per file: path, issues (``;``-joined), facts, error, and every metric."""
    buf = io.StringIO()
    metric_names = [f.name for f in fields(Metrics)]
    w = csv.writer(buf)
    w.writerow(["path", "issues", "duration_s", "sample_rate", "channels", "error", *metric_names])
    for r in rows:
        m = asdict(r.metrics)
        w.writerow([r.path, ";".join(r.issues), r.duration_s, r.sample_rate, r.channels, r.error or "",
                    *(m[k] for k in metric_names)])
    return atomic_write_text(dest, buf.getvalue())


def format_table(rows: list[FileReport]) -> str:
    """A plain-text table of the rows (path, duration, rate, channels, issues or the error)."""
    width = max([4] + [len(r.path) for r in rows])
    lines = [f"{'path':<{width}}  {'seconds':>8}  {'rate':>6}  ch  issues"]
    for r in rows:
        dur = f"{r.duration_s:8.2f}" if r.duration_s is not None else f"{'-':>8}"
        what = ", ".join(r.issues) or "ok"
        if r.error:
            what += f" ({r.error[:80]})"
        lines.append(f"{r.path:<{width}}  {dur}  {r.sample_rate or '-':>6}  {r.channels or '-':>2}  {what}")
    return "\n".join(lines)
