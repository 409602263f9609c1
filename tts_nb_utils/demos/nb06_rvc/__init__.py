"""A miniature of Applio's (RVC) pipeline for notebooks 06 (issue 489) and 07 (issue 546): embedder downloads
(``applio_download``), sliced audio, feature extraction in a subprocess, pitch files, a file list built from
their intersection plus "mute" entries, and a small training loop. Small enough to run in seconds on a CPU;
not a voice model.

The folder layout follows Applio's ``logs/<model>/``: ``sliced_audios/`` (16 kHz WAV here; upstream extracts
from ``sliced_audios_16k/``), ``v2_extracted/`` (features, ``<name>.npy``), ``f0/`` and ``f0_voiced/``
(``<name>.wav.npy``), and ``filelist.txt``. ``extract_buggy`` keeps the upstream extraction script's order of
operations and error handling; ``extract_fixed`` is the same stage with the fixes.
"""

from .embedder import TinyEmbedder, embedder_files, load_embedder
from .pipeline import (
    SAMPLE_RATE,
    V2_DIM,
    TinyVoiceModel,
    TrainResult,
    extract_pitch,
    generate_filelist,
    make_clips,
    make_mute,
    run_extraction,
    train,
)

__all__ = [
    "SAMPLE_RATE",
    "V2_DIM",
    "TinyEmbedder",
    "TinyVoiceModel",
    "TrainResult",
    "embedder_files",
    "extract_pitch",
    "generate_filelist",
    "load_embedder",
    "make_clips",
    "make_mute",
    "run_extraction",
    "train",
]
