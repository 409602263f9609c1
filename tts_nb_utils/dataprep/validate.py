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
import re
from collections import Counter
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import soundfile as sf

from ..audio.bandwidth import content_cutoff_hz
from ..audio.loudness import integrated_loudness
from ..audio.signal import EPS, SILENT_PEAK_DBFS, to_db
from ..audio.snr import estimate_snr_db, spectrogram
from ..errors import UsageError
from ..io import atomic_write_json, atomic_write_text, cli_field, list_audio_files
from ..parallel import ordered_map
from .rates import flag_mixed_rates

#: Every issue code, in report order. A file with one of FATAL_CODES gets only that code.
CODES: tuple[str, ...] = (
    "unreadable", "empty", "non_finite", "silent", "wrong_sample_rate", "band_limited", "not_mono", "too_short",
    "too_long", "too_quiet", "clipping", "dc_offset", "low_snr", "long_silence",
)
FATAL_CODES: tuple[str, ...] = ("unreadable", "empty", "non_finite", "silent")

CODE_MEANINGS: dict[str, str] = {
    "unreadable": "cannot be decoded (the row carries the decoder's message)",
    "empty": "decodes to zero samples",
    "non_finite": "has NaN or Inf samples",
    "silent": "peak below the silence level (--silent-peak)",
    "wrong_sample_rate": "sample rate differs from --sample-rate or, without it, from the folder's most common rate",
    "band_limited": "content ends far below Nyquist (e.g. 8 kHz audio stored at 44.1 kHz)",
    "not_mono": "more than one channel",
    "too_short": "shorter than --min-duration",
    "too_long": "longer than --max-duration",
    "too_quiet": "level of the active part below --quiet-rms",
    "clipping": "too many samples at full scale (--clip-fraction)",
    "dc_offset": "the waveform is off centre (mean above --dc-offset)",
    "low_snr": "estimated signal-to-noise ratio below --min-snr",
    "long_silence": "silence at an end above --max-edge-silence or a pause above --max-pause",
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
    snr_db: float | None = None  # audio/snr.py: a noise floor per frequency (works without pauses)
    content_cutoff_hz: float | None = None  # audio/bandwidth.py: where the content ends, when far below Nyquist
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
    low, high = float(x2.min()), float(x2.max())  # NaN and Inf reach these: no isfinite or abs pass (issue 29)
    if not (math.isfinite(low) and math.isfinite(high)):
        return ["non_finite"], m
    peak = max(high, -low)
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
    centre = float(mono.mean(dtype=np.float64))
    centred_db, hop_s = _frames_db(mono, sr, centre)
    m.active_rms_dbfs = round(_active_from_db(centred_db), 2)
    if m.active_rms_dbfs < cfg.quiet_rms_dbfs:
        issues.append("too_quiet")
    clipped = np.count_nonzero(np.abs(x2) >= cfg.clip_level) if peak >= cfg.clip_level else 0
    m.clipped_fraction = float(clipped) / x2.size
    if m.clipped_fraction >= cfg.clip_fraction:
        issues.append("clipping")
    means = [centre] if channels == 1 else x2.mean(axis=0, dtype=np.float64)  # a mono take's mean: once
    m.dc_offset = round(float(np.abs(means).max()), 5)
    if m.dc_offset > cfg.dc_offset:
        issues.append("dc_offset")
    lufs = integrated_loudness(x2 if channels <= 5 else mono, sr)
    m.loudness_lufs = None if lufs is None else round(lufs, 2) if np.isfinite(lufs) else -240.0
    power = spectrogram(mono, sr, centre)  # one STFT for the noise floor and the band limit
    m.snr_db = round(estimate_snr_db(mono, sr, power), 2)
    if m.snr_db < cfg.min_snr_db:
        issues.append("low_snr")
    m.content_cutoff_hz = content_cutoff_hz(mono, sr, power=power)
    if m.content_cutoff_hz is not None:
        issues.append("band_limited")
    lead, trail, pause = _silence_runs(centred_db, min(cfg.silence_dbfs, float(centred_db.max()) - 30.0))
    m.leading_silence_s, m.trailing_silence_s = round(lead * hop_s, 3), round(trail * hop_s, 3)
    m.longest_pause_s = round(pause * hop_s, 3)
    if max(m.leading_silence_s, m.trailing_silence_s) > cfg.max_edge_silence_s or m.longest_pause_s > cfg.max_pause_s:
        issues.append("long_silence")
    return issues, m


# ------------------------------------------------------------------------------------------------- files


def _decode(path: Path) -> tuple[int, int, np.ndarray]:
    """(sample rate, channels, ``[n, channels]`` float32) of ``path``. libsndfile opens the file by its name
    (bytes: names that are not UTF-8 too) and reads it itself; only when that fails is it read again through a
    Python file object, whose error message :func:`validate_file` reports. The file object alone cost a
    Python callback per 4 KiB read (about 2 ms of a 60 s FLAC's 15, issue 29)."""
    try:
        with sf.SoundFile(os.fsencode(path)) as f:
            return int(f.samplerate), int(f.channels), f.read(dtype="float32", always_2d=True)
    except Exception:  # noqa: BLE001 - the file object's attempt below raises the error the row names
        pass
    with open(path, "rb") as fh, sf.SoundFile(fh) as f:
        return int(f.samplerate), int(f.channels), f.read(dtype="float32", always_2d=True)


def validate_file(path: str | os.PathLike, cfg: ValidationConfig = ValidationConfig(), root: str | os.PathLike | None = None) -> FileReport:
    """Validate one file; never raises for bad audio (the row says ``unreadable`` with the decoder's message).

    ``path`` in the row is relative to ``root`` when given. The file is only read.
    """
    path = Path(path)
    rel = path.relative_to(root).as_posix() if root is not None else path.as_posix()
    row = FileReport(rel)
    try:
        row.sample_rate, row.channels, data = _decode(path)
    except Exception as e:  # noqa: BLE001 - libsndfile raises several types for bad files
        # libsndfile names the file object it was given ("<_io.BufferedReader name='/abs/path'>"): name the row's path
        message = re.sub(r"<_io\.\w+ name=[^>]*>", rel, f"{type(e).__name__}: {e}")
        row.issues, row.error = ["unreadable"], " ".join(message.split())
        return row
    row.duration_s = round(data.shape[0] / row.sample_rate, 4)
    row.issues, row.metrics = check_signal(data, row.sample_rate, cfg)
    return row


def warm_up(path: str | os.PathLike) -> None:
    """Load and build, once, what every file's checks need (``scipy.fft``, the SNR's bias and the loudness
    filter at ``path``'s sample rate), so that the worker processes forked after it inherit them instead of
    each paying for them (about 0.2 s of CPU per worker, issue 29). Never raises."""
    import scipy.fft  # noqa: F401 - the import is the point

    from ..audio.loudness import warm_up as warm_loudness
    from ..audio.snr import _bias

    try:
        sr = sf.info(os.fsencode(path)).samplerate
    except Exception:  # noqa: BLE001 - an unreadable first file is the worker's row to report
        return
    _bias(int(sr))
    warm_loudness(int(sr))


def _validate_one(args: tuple[str, ValidationConfig, str]) -> FileReport:
    return validate_file(args[0], args[1], args[2])


def validate_folder(
    folder: str | os.PathLike,
    cfg: ValidationConfig = ValidationConfig(),
    jobs: int = 1,
    progress: bool = True,
) -> list[FileReport]:
    """One row per audio file under ``folder`` (recursive), in path order, whatever each file holds. Without
    ``cfg.sample_rate``, files at another rate than most of the folder get ``wrong_sample_rate``
    (:func:`.rates.flag_mixed_rates`).

    ``jobs > 1`` validates in that many processes. Raises UsageError for a missing folder.
    """
    files = list_audio_files(folder)
    tasks = [(str(p), cfg, str(folder)) for p in files]
    if jobs > 1 and len(tasks) > 1:
        warm_up(files[0])
    # chunks of 1/16 of a worker's share: 60 one-minute takes on 2 workers end within a take of each other
    rows = ordered_map(_validate_one, tasks, jobs, "validate", progress, chunksize=len(tasks) // (16 * max(1, jobs)))
    flag_mixed_rates(rows, cfg.sample_rate)
    return rows


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
            what += f" ({r.error})"
        lines.append(f"{r.path:<{width}}  {dur}  {r.sample_rate or '-':>6}  {r.channels or '-':>2}  {what}")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------- findings in words

#: Codes that make a file unusable for training (``tts-nb validate`` exits 1, the doctor reports an error): the
#: fatal codes and clipping, which no tool can undo. The others are warnings: a resample, a slice, a gain or a
#: denoise fixes them, or the take is long, quiet or noisy on purpose.
ERROR_CODES: tuple[str, ...] = (*FATAL_CODES, "clipping")


def explain(code: str, row: FileReport, cfg: ValidationConfig = ValidationConfig()) -> tuple[str, str]:
    """``(what, fix)`` for one issue of ``row`` in plain words: the value measured, the threshold with its unit,
    and what to do (``("peak -52.0 dBFS, below -45 dBFS: the file is silent", "re-record or remove it")``)."""
    m = row.metrics
    words = {
        "unreadable": lambda: (f"cannot be decoded ({row.error})", "convert it to WAV or FLAC, or remove it"),
        "empty": lambda: ("holds no samples", "remove it"),
        "non_finite": lambda: ("holds NaN or Inf samples", "re-export it from the source"),
        "silent": lambda: (("every sample is 0 (digital silence)" if m.peak_dbfs <= -240 else
                            f"peak {m.peak_dbfs:.1f} dBFS, below {cfg.silent_peak_dbfs:g} dBFS") + ": the file is silent",
                           "re-record or remove it"),
        "wrong_sample_rate": lambda: ((f"{row.sample_rate} Hz, expected {cfg.sample_rate} Hz" if cfg.sample_rate
                                       else f"{row.sample_rate} Hz, unlike most files of the folder"),
                                      "resample it (tts-nb prepare writes one rate)"),
        "band_limited": lambda: (f"content ends near {m.content_cutoff_hz:.0f} Hz, far below Nyquist "
                                 f"({row.sample_rate / 2:.0f} Hz): it was recorded or stored at a lower rate",
                                 "use the original recording, or train at a rate it really has"),
        "not_mono": lambda: (f"{row.channels} channels, expected 1", "mix down to mono"),
        "too_short": lambda: (f"{row.duration_s:g} s, shorter than {cfg.min_duration_s:g} s", "join or remove it"),
        "too_long": lambda: (f"{row.duration_s:g} s, longer than {cfg.max_duration_s:g} s", "slice it (tts-nb slice)"),
        "too_quiet": lambda: (f"active level {m.active_rms_dbfs:.1f} dBFS, below {cfg.quiet_rms_dbfs:g} dBFS",
                              "raise the gain (tts-nb prepare levels takes)"),
        "clipping": lambda: (f"{m.clipped_fraction:.2%} of samples at full scale, limit {cfg.clip_fraction:.2%}",
                             "re-record with less gain"),
        "dc_offset": lambda: (f"mean {m.dc_offset:g} of full scale, above {cfg.dc_offset:g}", "apply a high-pass filter"),
        "low_snr": lambda: (f"signal-to-noise about {m.snr_db:.1f} dB, below {cfg.min_snr_db:g} dB",
                            "denoise it (tts-nb denoise) or re-record"),
        "long_silence": lambda: (f"silence {m.leading_silence_s:g} s at the start, {m.trailing_silence_s:g} s at the "
                                 f"end (limit {cfg.max_edge_silence_s:g} s), longest pause {m.longest_pause_s:g} s "
                                 f"(limit {cfg.max_pause_s:g} s)", "trim or slice it"),
    }
    return words[code]() if code in words else (CODE_MEANINGS.get(code, code), "")


def describe(row: FileReport, cfg: ValidationConfig = ValidationConfig()) -> list[str]:
    """One line per issue of ``row``: ``"error: a.wav: peak -52.0 dBFS, below -45 dBFS: ...; re-record or ..."``."""
    out = []
    for code in row.issues:
        what, fix = explain(code, row, cfg)
        out.append(f"{'error' if code in ERROR_CODES else 'warning'}: {row.path}: {what}" + (f"; {fix}" if fix else ""))
    return out


def markdown_table(rows: list[FileReport]) -> str:
    """The rows as a Markdown table (notebooks): path, seconds, rate, channels, issues. An unreadable file's
    decoder message is not in the table (it can be long): show ``row.error`` beside it, whole."""
    lines = ["| file | seconds | rate (Hz) | ch | issues |", "|---|---:|---:|---:|---|"]
    for r in rows:
        dur = f"{r.duration_s:.2f}" if r.duration_s is not None else "-"
        lines.append(f"| {r.path} | {dur} | {r.sample_rate or '-'} | {r.channels or '-'} | "
                     f"{', '.join(r.issues) or 'ok'} |")
    return "\n".join(lines)
