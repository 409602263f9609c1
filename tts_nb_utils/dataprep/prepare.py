"""The whole data pipeline: validate -> denoise -> slice -> normalise -> resample -> validate, into a folder of
clips with a manifest (JSONL) and a report. ``tts-nb slice`` (upstream's slicing alone) is :mod:`.presets`.

Used by notebook 01 and ``tts-nb prepare``. Inputs are only read. Every output is written
atomically; each finished source leaves a small record in ``OUT/.prepare/`` (with the settings used), so a
killed run, restarted, skips what is done and ends with the same files as an uninterrupted run; a source whose
record was made with other settings is processed again.
"""

from __future__ import annotations

import errno
import json
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import soxr

from ..audio import save_audio
from ..audio.files import read_audio_file
from ..io import (
    atomic_write_json,
    atomic_write_text,
    list_audio_files,
    refuse_overlap,
    remove_dead_parts_under,
)
from ..parallel import ordered_map
from .denoise import denoise
from .normalize import DEFAULT_ALPHA, DEFAULT_MAX, normalize_chunk, normalize_loudness
from .rates import RateChoice, output_rate
from .report import build_report, write_report
from .slicer import SlicerConfig, slice_ranges
from .validate import (
    FATAL_CODES,
    FileReport,
    ValidationConfig,
    active_rms_dbfs,
    validate_file,
    warm_up,
)

STATE_DIR = ".prepare"
CLIPS_DIR = "clips"


@dataclass(frozen=True)
class PrepareConfig:
    """Settings of the pipeline (units in the names).

    sample_rate: rate of every clip; None: the ``preset``'s (``gpt-sovits``: 32 kHz), else the most common rate
    of the sources (:func:`.rates.output_rate`), so a manifest never mixes rates. level_dbfs: gain each take so
    its active RMS is this before slicing (the slicer's threshold is absolute, so a quiet take would be all "silence"); None skips.
    skip_codes: sources with these codes are not used. drop_clip_codes: clips cut from a part of the source with
    these problems are dropped (measured on the raw source: "clipping", "too_short", "too_long"). normalize: level
    each clip, with GPT-SoVITS's peak mix (``max_``, ``alpha``) or, when ``loudness_lufs`` is set, to that
    integrated loudness (ITU-R BS.1770 via pyloudnorm's meter, peak at most 0.99). Unlike ``tts-nb slice``, each
    take's DC offset is removed before slicing (a DC-offset take would otherwise have no pauses to cut at).
    """

    sample_rate: int | None = None
    preset: str = "none"  # a key of rates.PREPARE_PRESETS
    denoise: bool = True
    stationary: bool = False
    denoise_options: dict[str, Any] = field(default_factory=dict)
    level_dbfs: float | None = -20.0
    slicer: SlicerConfig = SlicerConfig()
    normalize: bool = True
    loudness_lufs: float | None = None  # set: each clip to this integrated loudness instead of the peak mix
    max_: float = DEFAULT_MAX
    alpha: float = DEFAULT_ALPHA
    validation: ValidationConfig = ValidationConfig()
    skip_codes: tuple[str, ...] = FATAL_CODES
    drop_clip_codes: tuple[str, ...] = ("clipping", "too_short", "too_long")

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class PrepareResult:
    """What a run produced: paths of the manifest and report, validation rows before and after, drops."""

    out_dir: Path
    manifest: Path
    report: Path
    sources: list[FileReport]
    clips: list[FileReport]
    entries: list[dict]
    drops: list[dict]
    source_status: list[dict]
    rate: RateChoice | None = None  # the one rate of every clip, and why

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.clips)


def _clip_problem(raw: np.ndarray, sr: int, a: int, b: int, cfg: PrepareConfig) -> str | None:
    """The first of ``drop_clip_codes`` that the raw source has in ``[a, b)``, else None."""
    v = cfg.validation
    dur = (b - a) / sr
    seg = np.abs(raw[a:b])
    checks = {
        "too_short": dur < v.min_duration_s,
        "too_long": dur > v.max_duration_s,
        "clipping": seg.size > 0 and np.count_nonzero(seg >= v.clip_level) / seg.size >= v.clip_fraction,
    }
    return next((code for code in cfg.drop_clip_codes if checks.get(code)), None)


def process_source(src: Path, rel: Path, out_dir: Path, cfg: PrepareConfig) -> tuple[list[dict], list[dict]]:
    """Denoise, slice, normalise and resample one readable source; write its clips. Returns (entries, drops)."""
    data, sr = read_audio_file(src, dtype="float32", always_2d=True)
    raw = data.mean(axis=1)
    x = raw - raw.mean()
    if cfg.denoise:
        x = denoise(x, sr, stationary=cfg.stationary, remove_dc=False, **cfg.denoise_options)
    if cfg.level_dbfs is not None:
        gain = 10 ** ((cfg.level_dbfs - active_rms_dbfs(x, sr)) / 20)
        x = x * min(gain, 0.99 / max(float(np.abs(x).max()), 1e-9))
    entries, drops = [], []
    out_sr = cfg.sample_rate or sr
    stem = rel.with_suffix("").as_posix().replace("/", "__")
    for a, b in slice_ranges(x, sr, cfg.slicer):
        where = {"source": rel.as_posix(), "start_s": round(a / sr, 4), "end_s": round(b / sr, 4)}
        problem = _clip_problem(raw, sr, a, b, cfg)
        chunk = x[a:b]
        if problem is None and cfg.normalize:
            silent = cfg.validation.silent_peak_dbfs
            result = (normalize_chunk(chunk, cfg.max_, cfg.alpha, silent) if cfg.loudness_lufs is None
                      else normalize_loudness(chunk, sr, cfg.loudness_lufs, silence_peak_dbfs=silent))
            problem, chunk = result.reason, result.audio
        if problem is not None:
            drops.append({**where, "reason": problem})
            continue
        if out_sr != sr:
            chunk = soxr.resample(chunk, sr, out_sr, quality="HQ").astype(np.float32)
        name = f"{CLIPS_DIR}/{stem}_{a:010d}_{b:010d}.wav"
        save_audio(out_dir / name, np.clip(chunk, -1.0, 1.0), out_sr, subtype="PCM_16")
        entries.append({"path": name, "duration_s": round(len(chunk) / out_sr, 4), "sample_rate": out_sr, **where,
                        "start_sample": a, "end_sample": b})
    return entries, drops


def _failure(e: Exception) -> str:
    if isinstance(e, OSError) and e.errno == errno.ENAMETOOLONG:
        return (f"a file name would be too long for this file system ({e.filename}); rename the source "
                "to something shorter")
    return f"{type(e).__name__}: {e}"


def _stale_clips(out_dir: Path, entries: list[dict]) -> list[Path]:
    """WAV files in ``OUT/clips`` that the manifest does not list (left by a run with other settings)."""
    listed = {(out_dir / e["path"]).resolve() for e in entries}
    folder = out_dir / CLIPS_DIR
    return sorted(p for p in folder.glob("*.wav") if p.resolve() not in listed) if folder.is_dir() else []


def _prepare_source(task: tuple[Path, Path, Path, PrepareConfig, ValidationConfig, str]) -> tuple[FileReport, dict, dict]:
    """One source (a worker's task): its validation row, its status and its finished record (entries, drops)."""
    path, in_dir, out_dir, cfg, vcfg, fingerprint = task
    rel = path.relative_to(in_dir)
    row = validate_file(path, vcfg, root=in_dir)
    fatal = [c for c in row.issues if c in cfg.skip_codes]
    if fatal:
        return row, {"source": row.path, "status": "skipped", "reason": ", ".join(fatal)}, {}
    state = out_dir / STATE_DIR / f"{rel.as_posix()}.json"
    try:
        done = json.loads(state.read_text()) if state.exists() else None
    except (OSError, ValueError):  # a name too long for a state file, or a state file cut short
        done = None
    if (done is None or done.get("config") != fingerprint
            or not all((out_dir / e["path"]).exists() for e in done["entries"])):
        try:
            done_entries, done_drops = process_source(path, rel, out_dir, cfg)
            done = {"config": fingerprint, "entries": done_entries, "drops": done_drops}
            atomic_write_json(state, done)
        except Exception as e:  # noqa: BLE001 - one bad source must not stop the batch
            return row, {"source": row.path, "status": "failed", "reason": _failure(e)}, {}
    return row, {"source": row.path, "status": "used", "reason": None}, done


def _validate_clip(task: tuple[Path, ValidationConfig, Path]) -> FileReport:
    return validate_file(*task)


def prepare_folder(
    in_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    cfg: PrepareConfig = PrepareConfig(),
    progress: bool = True,
    jobs: int = 1,
) -> PrepareResult:
    """Run the pipeline on every audio file under ``in_dir`` into ``out_dir``.

    Writes ``clips/*.wav`` (named ``<source>_<start>_<end>.wav``, sample positions in the source),
    ``manifest.jsonl`` (path, duration_s, sample_rate, source, start_s, end_s, start/end samples),
    ``report.json``, ``report.md`` and ``durations.png``. A source that fails goes into the report and the run
    goes on. ``jobs``: processes for the sources and the clip checks (``tts-nb prepare --jobs``); the outputs
    are the same for any number. Raises UsageError when ``in_dir`` does not exist, ValidationUsageError when
    ``out_dir`` is inside it.
    """
    in_dir, out_dir = Path(in_dir), Path(out_dir)
    files = list_audio_files(in_dir)
    refuse_overlap(in_dir, out_dir)
    rate = output_rate(files, cfg.sample_rate, cfg.preset)
    cfg = replace(cfg, sample_rate=rate.rate)
    vcfg = replace(cfg.validation, sample_rate=cfg.sample_rate)
    remove_dead_parts_under(out_dir)  # temp files of a run that was killed (a live writer's files are kept)
    if cfg.denoise and jobs > 1:
        import noisereduce  # noqa: F401 - imported (with torch) once here, not once per worker
    if jobs > 1 and len(files) > 1:
        warm_up(files[0])  # scipy.fft and the checks' tables, once here too
    fingerprint = json.dumps(cfg.as_dict(), sort_keys=True, default=str)
    tasks = [(path, in_dir, out_dir, cfg, vcfg, fingerprint) for path in files]
    source_rows, entries, drops, status = [], [], [], []
    for row, st, done in ordered_map(_prepare_source, tasks, jobs, "prepare", progress):
        source_rows.append(row)
        status.append(st)
        entries += done.get("entries", [])
        drops += done.get("drops", [])
    manifest = atomic_write_text(out_dir / "manifest.jsonl", "".join(json.dumps(e) + "\n" for e in entries))
    for stale in _stale_clips(out_dir, entries):  # clips an earlier run with other settings wrote
        stale.unlink()
        status.append({"source": stale.relative_to(out_dir).as_posix(), "status": "removed",
                       "reason": "a clip from an earlier run with other settings; not in this manifest"})
    clip_tasks = [(out_dir / e["path"], vcfg, out_dir) for e in entries]
    clip_rows = ordered_map(_validate_clip, clip_tasks, jobs, progress=False, chunksize=max(1, len(entries) // (4 * jobs)))
    report = build_report(source_rows, clip_rows, status, drops, cfg.as_dict())
    report["summary"]["sample_rate"] = rate.reason
    md = write_report(out_dir, report, (vcfg.min_duration_s, vcfg.max_duration_s))
    return PrepareResult(out_dir, manifest, md, source_rows, clip_rows, entries, drops, status, rate)
