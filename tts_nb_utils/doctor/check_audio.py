"""The doctor's audio-folder check (notebook 08): :func:`~tts_nb_utils.dataprep.validate.validate_folder` on
every file, one finding per issue code (a file at another rate than most of the folder is ``wrong_sample_rate``
even without a preset; a take whose content ends far below Nyquist is ``band_limited``); with the ``gpt-sovits``
preset, also the format GPT-SoVITS's ``tools/slice_audio.py`` writes (32 kHz mono 16-bit WAV, :mod:`tts_nb_utils.dataprep.presets`).

The error codes of ``tts-nb validate`` (unreadable, empty, non-finite, silent: a silent clip becomes NaN in
GPT-SoVITS's mix; clipping, which nothing undoes) are errors; the others are warnings, since a take can be long,
quiet or noisy on purpose. Each finding quotes the first file's measurement in words. Notebook 01 explains each code.
"""

from __future__ import annotations

from collections import defaultdict

import soundfile as sf

from ..dataprep.presets import GPT_SOVITS_SR
from ..dataprep.validate import CODE_MEANINGS, ERROR_CODES, ValidationConfig, explain, validate_folder
from .report import Target

AUDIO_PRESETS = ("none", "gpt-sovits")
_SHOWN = 5  # file names listed per code


def check_audio(target: Target, preset: str = "none") -> None:
    """Validate ``target.path`` (recursively); ``preset="gpt-sovits"`` adds the 32 kHz mono int16 rule."""
    cfg = ValidationConfig(sample_rate=GPT_SOVITS_SR if preset == "gpt-sovits" else None)
    rows = validate_folder(target.path, cfg, progress=False)
    by_code: dict[str, list[str]] = defaultdict(list)
    example: dict[str, str] = {}  # the first file's measurement, in words
    for row in rows:
        for code in row.issues:
            by_code[code].append(row.path)
            example.setdefault(code, f"{row.path}: {explain(code, row, cfg)[0]}")
    if preset == "gpt-sovits":
        for row in rows:
            if "unreadable" not in row.issues and _subtype(target.path / row.path) != "PCM_16":
                by_code["not_int16"].append(row.path)
    for code, files in by_code.items():
        meaning = CODE_MEANINGS.get(code, "not 16-bit PCM WAV (slice_audio.py writes int16)")
        meaning += f" ({example[code]})" if code in example else ""
        shown = ", ".join(files[:_SHOWN]) + (f" (+{len(files) - _SHOWN} more)" if len(files) > _SHOWN else "")
        target.add("error" if code in ERROR_CODES else "warning", f"{len(files)} file(s) {code}: {meaning}",
                   shown, _FIXES.get(code, "re-record or drop these files; tts-nb prepare fixes levels"))
    target.notes.append(f"{len(rows)} audio file(s) validated ({sum(r.ok for r in rows)} without issues)"
                        + (", against the gpt-sovits preset (32 kHz mono int16)" if preset == "gpt-sovits" else ""))


def _subtype(path) -> str | None:
    try:
        return sf.info(str(path)).subtype
    except Exception:  # noqa: BLE001 - the validator has already reported unreadable files
        return None


_FIXES = {
    "silent": "drop the file: a silent clip makes GPT-SoVITS's max/alpha mix divide 0 by 0 (NaN)",
    "unreadable": "re-export the file (ffmpeg -i IN -ar 32000 -ac 1 OUT.wav) or drop it",
    "empty": "drop the file",
    "non_finite": "drop the file or re-export it from the source",
    "clipping": "re-record at a lower gain; clipped peaks cannot be restored",
    "low_snr": "tts-nb denoise, or re-record in a quieter room",
    "too_long": "tts-nb slice (clips of a few seconds)",
    "too_short": "drop it or merge it with a neighbour; very short clips teach little",
    "wrong_sample_rate": "tts-nb prepare IN OUT writes every clip at one rate (--preset gpt-sovits: 32 kHz; else "
                         "the most common input rate); or re-export these at the folder's rate",
    "band_limited": "re-record or find the full-band original: resampling cannot restore what the take never "
                    "had, and a model learns the dull sound; drop it if you have enough other takes",
    "not_mono": "tts-nb slice --preset gpt-sovits (writes 32 kHz mono int16)",
    "not_int16": "tts-nb slice --preset gpt-sovits (writes 32 kHz mono int16)",
    "too_quiet": "tts-nb prepare --lufs -23",
    "dc_offset": "tts-nb prepare (removes the offset)",
    "long_silence": "tts-nb slice (cuts at silences)",
}
