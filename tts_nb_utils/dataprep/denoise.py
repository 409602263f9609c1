"""Background-noise removal with noisereduce's spectral gating (stationary or non-stationary), for one signal,
one file or a folder. Works at any sample rate (GPT-SoVITS's optional denoiser is a 16 kHz-only model).

Used by notebook 01, ``tts-nb denoise`` and ``tts-nb prepare``. Inputs are only read; outputs are written
atomically and a rerun skips the ones that exist.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..audio import AudioReadError, save_audio
from ..audio.files import read_audio_file
from ..io import list_audio_files, refuse_overlap, remove_dead_parts_under, show_progress

#: Issue codes and what denoising does to them: it removes noise, it cannot restore what a take never had or lost.
DENOISE_EFFECTS: dict[str, str] = {
    "low_snr": "fixed: the noise floor is gated away",
    "dc_offset": "fixed: the mean is subtracted first",
    "clipping": "not repaired: denoising lowered the flattened peaks below the clip level, but the distortion "
                "stays (prepare drops clips cut from clipped stretches, measured on the raw take)",
    "band_limited": "not repaired: content above the cutoff was never recorded",
}


def denoise_verdicts(before: list[str], after: list[str]) -> list[str]:
    """One line per issue code of ``before`` (the take's codes) against ``after`` (the denoised take's): what
    denoising fixed, what only stopped being detected, what it does not touch."""
    lines = []
    for code in before:
        if code in after:
            lines.append(f"{code}: still there" + ("" if code != "low_snr" else " (try stationary=True)"))
        else:
            lines.append(f"{code}: {DENOISE_EFFECTS.get(code, 'no longer detected')}")
    lines += [f"{code}: new after denoising" for code in after if code not in before]
    return lines


def denoise(y: np.ndarray, sr: int, stationary: bool = False, remove_dc: bool = True, **nr_options: Any) -> np.ndarray:
    """Spectral gating of ``y`` (``[n]`` or ``[n, channels]``, sample rate ``sr`` Hz) -> same shape, float32.

    ``stationary=True`` estimates one noise profile for the whole signal (hum, fan, hiss); ``False`` tracks a
    slowly changing floor (``time_constant_s``, default 2 s). ``nr_options`` go to ``noisereduce.reduce_noise``
    unchanged (``prop_decrease``, ``n_std_thresh_stationary``, ``y_noise``, ``n_fft``...). ``remove_dc``
    subtracts each channel's mean first (a DC offset is not noise the gate can remove). NaN that noisereduce
    produces on stretches of digital silence (0/0 in its non-stationary gate) become 0.
    """
    import noisereduce as nr  # here: it imports torch, which no other data step needs

    x = np.asarray(y, dtype=np.float32)
    if x.size == 0:
        return x.copy()
    if remove_dc:
        x = x - x.mean(axis=0, keepdims=True)
    data = x.T if x.ndim == 2 else x  # noisereduce wants [channels, n]
    with np.errstate(invalid="ignore", divide="ignore"):
        out = nr.reduce_noise(y=data, sr=sr, stationary=stationary, **nr_options)
    # noisereduce's non-stationary gate divides by the smoothed spectrum: 0/0 (NaN) on digital silence.
    out = np.nan_to_num(np.asarray(out, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    return out.T if x.ndim == 2 else out


@dataclass
class FileResult:
    """What happened to one input: ``status`` is "written", "skipped" (output existed) or "failed" (with ``error``)."""

    source: str
    output: str | None
    status: str
    error: str | None = None


def output_name(rel: Path) -> Path:
    """Outputs keep the relative path; FLAC stays FLAC, every other format becomes WAV (soundfile writes both)."""
    return rel.with_suffix(".flac") if rel.suffix.lower() == ".flac" else rel.with_suffix(".wav")


def denoise_file(src: str | os.PathLike, dest: str | os.PathLike, stationary: bool = False, **nr_options: Any) -> Path:
    """Denoise one file into ``dest`` (atomic write; channels and sample rate kept). Raises AudioReadError, or
    UsageError when ``dest`` is ``src`` (the input is never written)."""
    refuse_overlap(src, dest)
    try:
        y, sr = read_audio_file(src, dtype="float32", always_2d=True)
    except Exception as e:  # noqa: BLE001
        raise AudioReadError(f"{src}: cannot decode audio ({e}); check the file or re-export it as WAV/FLAC") from e
    if not np.isfinite(y).all():
        raise AudioReadError(f"{src}: has NaN/Inf samples; fix or remove the file (tts-nb validate lists them)")
    out = denoise(y[:, 0] if y.shape[1] == 1 else y, sr, stationary=stationary, **nr_options)
    return save_audio(dest, np.clip(out, -1.0, 1.0), sr)


def denoise_folder(
    src_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    stationary: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    **nr_options: Any,
) -> list[FileResult]:
    """Denoise every audio file under ``src_dir`` into the same relative paths under ``out_dir``.

    A file that fails gets a "failed" row and the batch goes on; existing outputs are skipped unless
    ``overwrite``. Raises UsageError when ``src_dir`` does not exist.
    """
    from tqdm.auto import tqdm

    src_dir, out_dir = Path(src_dir), Path(out_dir)
    files = list_audio_files(src_dir)
    refuse_overlap(src_dir, out_dir)
    remove_dead_parts_under(out_dir)  # what a killed run left (a live writer's files are kept)
    results = []
    for path in tqdm(files, desc="denoise", unit="file", disable=not show_progress(progress)):
        rel = path.relative_to(src_dir)
        dest = out_dir / output_name(rel)
        if dest.exists() and not overwrite:
            results.append(FileResult(rel.as_posix(), str(dest), "skipped"))
            continue
        try:
            denoise_file(path, dest, stationary=stationary, **nr_options)
            results.append(FileResult(rel.as_posix(), str(dest), "written"))
        except (AudioReadError, ValueError, RuntimeError, OSError) as e:  # e.g. a name too long for OUT
            results.append(FileResult(rel.as_posix(), None, "failed", str(e)))
    return results
