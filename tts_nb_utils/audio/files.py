"""Reading and writing audio files: soundfile for the formats, soxr for resampling, atomic writes.

Used by notebook 01 (``load_audio`` in its cells, and the data tools under ``dataprep/``) and by notebook 06's
miniature (``demos/nb06_rvc/pipeline.py``), which writes its clips with ``save_audio``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import soxr

from ..io import atomic_path


class AudioReadError(ValueError):
    """A file that soundfile cannot decode; the message names the file and the decoder's reason."""


def read_audio_file(path: str | os.PathLike, **kwargs: Any) -> tuple[np.ndarray, int]:
    """``soundfile.read`` through an open file: works for any file name the OS accepts, also one that is not
    valid UTF-8 (soundfile encodes a path string and fails on those)."""
    with open(path, "rb") as f:
        return sf.read(f, **kwargs)


def load_audio(path: str | os.PathLike, sr: int | None = None, mono: bool = True) -> tuple[np.ndarray, int]:
    """Read an audio file as float32 in [-1, 1]; returns ``(samples, sample_rate)``.

    ``mono=True`` averages channels (shape ``[n]``), else shape ``[n, channels]``. ``sr`` resamples with soxr
    (high quality) when it differs from the file's rate. Raises AudioReadError naming the file.
    """
    try:
        y, file_sr = read_audio_file(path, dtype="float32", always_2d=True)
    except Exception as e:  # noqa: BLE001 - libsndfile raises several types
        raise AudioReadError(f"{path}: cannot decode audio ({e}); check the file or re-export it as WAV/FLAC") from e
    if mono:
        y = y.mean(axis=1)
    if sr is not None and sr != file_sr and len(y):
        y = soxr.resample(y, file_sr, sr, quality="HQ").astype(np.float32)
        file_sr = sr
    return y, int(file_sr)


def save_audio(path: str | os.PathLike, y: np.ndarray, sr: int, subtype: str | None = None) -> Path:
    """Write ``y`` (``[n]`` or ``[n, channels]``, float in [-1, 1]) atomically; format from the file suffix."""
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:  # a file object: any name the OS accepts
        sf.write(f, np.asarray(y), int(sr), subtype=subtype, format=(path.suffix.lstrip(".") or "wav").upper())
    return path
