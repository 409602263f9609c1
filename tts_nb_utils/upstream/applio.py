"""Applio's model folder ``logs/<model>/`` as each release writes it, read by content (``tts-nb doctor``,
``tts-nb check-features MODEL_DIR``; notebooks 06 and 07 explain the failures).

Two layouts, checked at the tags named (citations in notebook 07's Sources):

- 3.2.1-3.2.8: features in ``v2_extracted/`` (``v1_extracted/`` for a v1 model); the file list's mute
  entries point at ``logs/mute/v2_extracted/mute.npy``, two of them whatever extraction did
  (3.2.2 ``rvc/train/extract/preparing_files.py:18-60``);
- 3.2.9 to 3.6.x and main: features in ``extracted/`` beside ``model_info.json`` (3.2.9
  ``rvc/train/extract/extract.py:210-235``), no v1; mute entries per speaker found, so a failed extraction
  leaves an *empty* list (3.2.9 ``preparing_files.py:18-75``), absolute paths up to 3.6.x, relative ones
  (``logs/mute/...``) on main, ``logs/mute_spin*/`` for the SPIN embedders.

Both keep the training clips in ``sliced_audios/``, the 16 kHz copies features are extracted from in
``sliced_audios_16k/``, pitch in ``f0/`` and ``f0_voiced/`` (``<clip>.wav.npy``) and the model's
``config.json`` (copied from ``rvc/configs/``), whose ``model.text_enc_hidden_dim`` is the feature width the
model's ``TextEncoder`` reads (``Linear(embedding_dim, hidden_channels)``): 768 for v2 and every 3.2.9+
config, 256 for v1. Upstream ships its own ``logs/mute*/`` and ``logs/reference/`` folders (silence and a
reference clip with their features); :func:`shipped_folder` tells them apart from a user's folders.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..io import audio_extensions, read_mapping

FEATURE_DIRS = ("extracted", "v2_extracted", "v1_extracted")  # 3.2.9+, then 3.2.1-3.2.8 v2 / v1
FOLDER_WIDTHS = {"extracted": 768, "v2_extracted": 768, "v1_extracted": 256}  # when config.json says nothing
_MUTE = re.compile(r"^mute(_[\w.-]+)?$")  # logs/mute, logs/mute_spin, logs/mute_spin-v2


@dataclass
class FeatureFolder:
    """One feature folder of a model and the width (values per frame) its model reads."""

    path: Path
    width: int
    source: str  # where the width comes from, for messages: "config.json" or "the folder name"


@dataclass
class ApplioModel:
    """What :func:`read_model` found in ``logs/<model>/``."""

    path: Path
    clips: Path  # sliced_audios/: the training clips, named as the file list names them
    features: list[FeatureFolder]
    layout: str  # "3.2.9+" or "3.2.1-3.2.8" (or "unknown" before extraction made a feature folder)
    embedder: str | None  # model_info.json's embedder_model (3.2.8+), when written


def looks_like_model(folder: Path) -> bool:
    """``sliced_audios/`` plus a feature folder, ``f0/``, ``filelist.txt`` or ``model_info.json``; not one of
    upstream's shipped folders."""
    if not (folder / "sliced_audios").is_dir() or shipped_folder(folder):
        return False
    return any((folder / n).is_dir() for n in (*FEATURE_DIRS, "f0")) or any(
        (folder / n).is_file() for n in ("filelist.txt", "model_info.json"))


def shipped_folder(folder: Path) -> str | None:
    """``"mute"`` or ``"reference"`` when ``folder`` is upstream's own ``logs/mute*/`` (only ``mute*.wav``
    clips) or ``logs/reference/`` (no ``sliced_audios/``), else None."""
    folder = Path(folder)
    if folder.parent.name != "logs" or not folder.is_dir():
        return None
    if folder.name == "reference" and not (folder / "sliced_audios").exists():
        return "reference"
    clips = folder / "sliced_audios"
    if _MUTE.match(folder.name) and clips.is_dir():
        names = [p.name for p in clips.iterdir() if not p.name.startswith(".")]
        if all(n.startswith("mute") for n in names):
            return "mute"
    return None


def model_width(folder: Path, feature_dir: str) -> tuple[int, str]:
    """The width the model in ``folder`` reads: ``config.json``'s ``model.text_enc_hidden_dim``, else what
    the feature folder's name implies (``v1_extracted``: 256, otherwise 768)."""
    config = read_mapping(folder / "config.json") or {}
    width = (config.get("model") or {}).get("text_enc_hidden_dim") if isinstance(config.get("model"), dict) else None
    if isinstance(width, int) and width > 0:
        return width, "config.json"
    return FOLDER_WIDTHS[feature_dir], "the folder name"


def read_model(folder: str | Path) -> ApplioModel:
    """The layout of ``logs/<model>/`` (see the module docstring). A folder with both ``extracted/`` and a
    ``v*_extracted/`` (a 3.2.x model folder reused by 3.2.9+) lists both."""
    folder = Path(folder)
    features = []
    for name in FEATURE_DIRS:
        if (folder / name).is_dir():
            width, source = model_width(folder, name) if name != "v1_extracted" else (256, "the folder name")
            features.append(FeatureFolder(folder / name, width, source))
    if (folder / "extracted").is_dir() or (folder / "model_info.json").is_file():
        layout = "3.2.9+"
    elif features:
        layout = "3.2.1-3.2.8"
    else:
        layout = "unknown"
    info = read_mapping(folder / "model_info.json") or {}
    embedder = info.get("embedder_model") if isinstance(info.get("embedder_model"), str) else None
    return ApplioModel(folder, folder / "sliced_audios", features, layout, embedder)


def entry_folder(line: str) -> str | None:
    """The ``logs/<name>`` folder a file-list line's audio path lies in (``wav|features|f0|f0_voiced|sid``;
    absolute or relative, either slash), or None."""
    parts = line.split("|", 1)[0].replace("\\", "/").split("/")
    hits = [i for i, p in enumerate(parts[:-2]) if p == "logs"]
    return parts[hits[-1] + 1] if hits else None


def split_filelist(lines: list[str], model_name: str) -> tuple[list[str], list[str]]:
    """``(own, mute)``: the lines of this model's clips and those pointing into upstream's ``logs/mute*/``."""
    own, mute = [], []
    for line in lines:
        name = entry_folder(line)
        is_mute = name != model_name and name is not None and bool(_MUTE.match(name))
        (mute if is_mute else own).append(line)
    return own, mute


def audio_clips(folder: Path) -> list[Path]:
    """The clips directly in ``folder`` (upstream lists them with ``os.listdir``, not recursively)."""
    if not folder.is_dir():
        return []
    exts = audio_extensions()
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in exts and not p.name.startswith("."))
