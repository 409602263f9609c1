"""A miniature of Applio's (RVC) training pipeline for notebook 06: sliced audio, feature extraction in a
subprocess, pitch files, a file list built from their intersection plus "mute" entries, and a small training
loop. Small enough to run in seconds on a CPU; not a voice model.

The folder layout follows Applio's ``logs/<model>/``: ``sliced_audios/`` (16 kHz WAV), ``extracted/``
(features, ``<name>.npy``), ``f0/`` and ``f0_voiced/`` (``<name>.wav.npy``), and ``filelist.txt``.
``extract_buggy`` reproduces the upstream extraction script's argv parsing and error handling;
``extract_fixed`` is the same stage with ``parse_bool``, fail-fast errors and a stage check.
"""

from .embedder import TinyEmbedder, embedder_files, load_embedder
from .pipeline import (
    SAMPLE_RATE,
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
