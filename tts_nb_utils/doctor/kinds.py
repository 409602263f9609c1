"""Recognise what a path holds, by its contents, for ``tts-nb doctor`` (notebook 08).

Each kind is the layout an upstream tool writes (checked at the commits named in the check modules):

- ``applio-model``: Applio's ``logs/<model>/`` with ``sliced_audios/`` and a feature folder (``extracted/``
  from 3.2.9, ``v2_extracted/``/``v1_extracted/`` before), ``f0/``, ``filelist.txt`` or ``model_info.json``
  (:mod:`tts_nb_utils.upstream.applio`); upstream's own ``logs/mute*/`` and ``logs/reference/`` are skipped;
- ``gpt-sovits``: a GPT-SoVITS experiment, ``logs/<exp>/`` with ``train.log`` and a ``logs_s2_<version>/``
  folder or the ``config.json`` s2_train.py saves there (``utils.get_hparams``, ``utils.get_logger``);
- ``coqui-run``: a Coqui trainer run folder, ``config.json`` beside ``trainer_0_log.txt``;
- ``diffsinger-experiment``: DiffSinger's ``checkpoints/<exp>/`` with the ``config.yaml`` set_hparams saves
  (it holds ``work_dir``) or ``model_ckpt_steps_*.ckpt``;
- ``diffsinger-config``: a YAML file with DiffSinger keys (``base_config``, ``task_cls``, ``predict_*``,
  ``binary_data_dir``...);
- ``dia-config``: a JSON/YAML file with a top-level ``dia_train`` mapping (our format: upstream has none;
  :mod:`.check_dia`);
- ``audio``: a folder with audio files directly in it.

Inside a DiffSinger checkout (a folder with ``scripts/train.py``, ``utils/hparams.py`` and ``configs/base.yaml``)
the files upstream ships, ``configs/templates/*.yaml`` and the bases ``configs/{base,acoustic,variance}.yaml``, are
not the user's configs: :func:`upstream_shipped` names them and the doctor skips them (and says so). The variance
template ships with every ``predict_*`` off on purpose (openvpi/DiffSinger ``753b7cc``,
``configs/templates/config_variance.yaml:45-52``): the user copies it and turns on what their data has.

A folder that is none of these is searched (up to :data:`MAX_DEPTH` levels) for folders and files that are;
a path where nothing is found is reported as ``unknown``, never guessed, and a folder that cannot be listed as
``unreadable``.
"""

from __future__ import annotations

from pathlib import Path

from ..io import audio_extensions, read_mapping
from ..upstream.applio import looks_like_model, shipped_folder
from ..upstream.diffsinger import ACOUSTIC_SWITCHES, SWITCHES

MAX_DEPTH = 4
KINDS = ("audio", "gpt-sovits", "diffsinger-config", "diffsinger-experiment", "coqui-run", "applio-model",
         "dia-config")
_DIFFSINGER_KEYS = frozenset({"base_config", "task_cls", "binary_data_dir", "diffusion_type", *SWITCHES,
                              *(k.split(".")[0] for k in ACOUSTIC_SWITCHES)})
_CONFIG_SUFFIXES = (".yaml", ".yml", ".json")


#: Files a DiffSinger checkout ships (relative to it, glob patterns), at ``753b7cc`` and its newest main.
DIFFSINGER_SHIPPED = ("configs/templates/*.yaml", "configs/base.yaml", "configs/acoustic.yaml",
                      "configs/variance.yaml")
_CHECKOUT_MARKERS = ("scripts/train.py", "utils/hparams.py", "configs/base.yaml")


def diffsinger_checkout(path: Path) -> Path | None:
    """The DiffSinger checkout ``path`` lies in (the nearest folder above it with upstream's markers), or None."""
    path = path.absolute()
    for folder in [path, *path.parents][:MAX_DEPTH + 2]:
        if all((folder / m).is_file() for m in _CHECKOUT_MARKERS):
            return folder
    return None


def upstream_shipped(path: Path) -> str | None:
    """``path`` relative to its DiffSinger checkout when it is a file upstream ships (see the module
    docstring), else None."""
    root = diffsinger_checkout(path.parent)
    if root is None:
        return None
    rel = path.absolute().relative_to(root)
    return rel.as_posix() if any(rel.match(p) and len(rel.parts) == len(Path(p).parts)
                                 for p in DIFFSINGER_SHIPPED) else None


def _file_kind(path: Path) -> str | None:
    if path.suffix.lower() not in _CONFIG_SUFFIXES:
        return None
    data = read_mapping(path)
    if data is None:
        return None
    if isinstance(data.get("dia_train"), dict):
        return "dia-config"
    if path.suffix.lower() != ".json" and _DIFFSINGER_KEYS & set(data):
        return "diffsinger-config"
    return None


def _folder_kind(folder: Path) -> str | None:
    if shipped_folder(folder):
        return None
    if looks_like_model(folder):
        return "applio-model"
    names = {p.name for p in folder.iterdir()}
    if "train.log" in names and (any(n.startswith("logs_s2_") for n in names) or "config.json" in names):
        return "gpt-sovits"
    if "config.json" in names and "trainer_0_log.txt" in names:
        return "coqui-run"
    saved = folder / "config.yaml"
    if saved.is_file() and ("work_dir" in (read_mapping(saved) or {}) or any(folder.glob("model_ckpt_steps_*.ckpt"))):
        return "diffsinger-experiment"
    exts = audio_extensions()
    if any(p.is_file() and p.suffix.lower() in exts and not p.name.startswith(".") for p in folder.iterdir()):
        return "audio"
    return None


def recognise(path: str | Path) -> str | None:
    """The kind of ``path`` (see the module docstring), or None."""
    path = Path(path)
    if path.is_file():
        return _file_kind(path)
    if path.is_dir():
        return _folder_kind(path)
    return None


def find(path: str | Path, depth: int = MAX_DEPTH) -> list[tuple[Path, str]]:
    """``[(path, kind)]``: ``path`` itself when recognised, else what its sub-folders and files hold (sorted,
    hidden ones skipped, a recognised folder not searched further)."""
    path = Path(path)
    try:
        kind = recognise(path)
        children = sorted(path.iterdir()) if not kind and path.is_dir() and depth and not shipped_folder(path) else []
    except PermissionError:  # reported as its own target: the rest of the tree is still searched
        return [(path, "unreadable")]
    if kind or not children:
        return [(path, kind)] if kind else []
    out: list[tuple[Path, str]] = []
    for child in children:
        if not child.name.startswith(".") and not child.is_symlink():
            out += find(child, depth - 1)
    return out
