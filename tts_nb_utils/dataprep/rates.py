"""One sample rate per dataset: which rate a folder's takes share, the takes that differ, and the rate
``prepare`` writes.

A TTS or singing model trains at one rate (GPT-SoVITS resamples everything to 32 kHz; DiffSinger's
``audio_sample_rate``; Applio's 32/40/48k). A folder mixing 8, 22.05 and 44.1 kHz takes is a mistake whether or
not the user passed ``--sample-rate``. Used by :func:`.validate.validate_folder` (``wrong_sample_rate`` without
``--sample-rate``), :mod:`.prepare` and the doctor's audio check; notebook 01 shows it.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import soundfile as sf

from ..errors import UsageError

#: ``prepare --preset`` -> the rate its trainer reads (None: the folder's most common rate); gpt-sovits is
#: ``presets.GPT_SOVITS_SR`` (not imported here: validation stays light).
PREPARE_PRESETS: dict[str, int | None] = {"none": None, "gpt-sovits": 32000}


class _Row(Protocol):
    sample_rate: int | None
    issues: list[str]


def most_common_rate(rates: Iterable[int | None]) -> tuple[int | None, int]:
    """(the rate most takes have, how many have it); ties go to the higher rate (nothing is thrown away
    that another take of the tie has). (None, 0) when there is no rate."""
    counts = Counter(r for r in rates if r)
    if not counts:
        return None, 0
    rate = max(counts, key=lambda r: (counts[r], r))
    return rate, counts[rate]


def flag_mixed_rates(rows: list[_Row], expected: int | None) -> int | None:
    """Without an ``expected`` rate, add ``wrong_sample_rate`` to the rows whose rate differs from the folder's
    most common one (in place; rows with a fatal code have no rate and are left alone). Returns the rate the
    rows were compared with (``expected`` when given: the per-file check already flagged those)."""
    if expected is not None:
        return expected
    rate, _ = most_common_rate(r.sample_rate for r in rows)
    for row in rows:
        if row.sample_rate and row.sample_rate != rate and "wrong_sample_rate" not in row.issues:
            row.issues.append("wrong_sample_rate")
    return rate


@dataclass(frozen=True)
class RateChoice:
    """The rate ``prepare`` writes and why (``reason`` is a phrase for its report)."""

    rate: int | None
    reason: str


def _header_rate(path: Path) -> int | None:
    try:
        return int(sf.info(str(path)).samplerate)
    except Exception:  # noqa: BLE001 - an unreadable file: validation reports it with the decoder's message
        return None


def output_rate(paths: list[str | os.PathLike], sample_rate: int | None = None, preset: str = "none") -> RateChoice:
    """The one rate every clip is written at: ``sample_rate`` when given, else the preset's, else the most
    common rate among the readable ``paths`` (file headers only)."""
    if preset not in PREPARE_PRESETS:
        raise UsageError(f"preset {preset!r}: use one of {', '.join(PREPARE_PRESETS)}")
    if sample_rate:
        return RateChoice(sample_rate, f"{sample_rate} Hz (--sample-rate)")
    if PREPARE_PRESETS.get(preset):
        rate = PREPARE_PRESETS[preset]
        return RateChoice(rate, f"{rate} Hz (the {preset} preset)")
    rates = [_header_rate(Path(p)) for p in paths]
    rate, n = most_common_rate(rates)
    if rate is None:
        return RateChoice(None, "no readable source")
    others = sorted({r for r in rates if r and r != rate})
    mixed = f"; {', '.join(map(str, others))} Hz resampled" if others else ""
    return RateChoice(rate, f"{rate} Hz (the most common input rate: {n} of {sum(1 for r in rates if r)} "
                      f"sources{mixed})")
