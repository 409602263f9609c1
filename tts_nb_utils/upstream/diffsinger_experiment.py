"""What DiffSinger does around a config file: the saved experiment config, ``--hparams`` and binary data.

Notebook 03 (``03_zero_loss_config.ipynb``) and ``tts-nb check-config --exp-name/--hparams/--binary-dir``
use this to check the config a training run will *really* use, not only the file the user edited. Checked
against openvpi/DiffSinger ``753b7cc``:

- ``set_hparams`` (``utils/hparams.py:86-97``) loads ``checkpoints/<exp_name>/config.yaml`` when it exists
  and, unless ``--reset`` is given, puts it *over* the file with a top-level ``dict.update``: a corrected
  file changes nothing until the run is started with ``--reset``. :func:`apply_saved_config`.
- ``--hparams "k=v,..."`` (lines 100-110) splits on ``,`` and ``=``; a new key gets ``eval(v)``, a boolean
  key (or a ``True``/``False`` value) ``eval(v)``, any other key ``type(old)(v)``. :func:`apply_hparams`
  does the same with ``ast.literal_eval`` (literals only) and says what upstream would raise otherwise.
- The binarizers store a field only for the switches that were on (``preprocessing/variance_binarizer.py:
  336-500``, ``acoustic_binarizer.py:156-231``) and ``train.meta`` (``basics/base_binarizer.py:290-360``)
  lists every array field; the datasets' collaters read the fields of the switches on *now*
  (``training/variance_task.py:47-69``, ``acoustic_task.py:26-33, 55-56``) and stop with a KeyError.
  :func:`binary_fields` reads ``train.meta``; :func:`missing_fields` says which switch lacks its fields.
"""

from __future__ import annotations

import ast
import os
import pickle
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..io import not_a_file
from .diffsinger import (
    ConfigError,
    LoadedConfig,
    get_dotted,
    origins,
    read_yaml_mapping,
    task_kind,
)

#: The pseudo-file that ``--hparams`` overrides are attributed to in ``LoadedConfig.sources``.
HPARAMS_SOURCE = Path("--hparams")

#: Variance switch -> the fields its collater reads (``training/variance_task.py:47-69``).
VARIANCE_FIELDS: dict[str, tuple[str, ...]] = {
    "predict_dur": ("ph2word", "midi"),
    "predict_pitch": ("note_midi", "note_rest", "note_dur", "mel2note", "base_pitch", "mel2ph", "pitch", "uv"),
    "predict_energy": ("energy", "mel2ph", "pitch", "uv"),
    "predict_breathiness": ("breathiness", "mel2ph", "pitch", "uv"),
    "predict_voicing": ("voicing", "mel2ph", "pitch", "uv"),
    "predict_tension": ("tension", "mel2ph", "pitch", "uv"),
}

#: Acoustic switch -> the array fields its collater reads (``training/acoustic_task.py:26-33, 55-56``).
#: ``key_shift`` and ``speed`` are scalars, which ``train.meta`` does not list, so they are not checked.
ACOUSTIC_FIELDS: dict[str, tuple[str, ...]] = {
    "use_energy_embed": ("energy",),
    "use_breathiness_embed": ("breathiness",),
    "use_voicing_embed": ("voicing",),
    "use_tension_embed": ("tension",),
}


# ------------------------------------------------------------------------------------ saved config


def saved_config_path(root: str | os.PathLike, exp_name: str) -> Path:
    """``checkpoints/<exp_name>/config.yaml`` below the checkout, where ``set_hparams`` saves and reads it."""
    return Path(root) / "checkpoints" / exp_name / "config.yaml"


@dataclass
class Override:
    """A top-level key whose value in the file was replaced: ``file_value`` -> ``value`` from ``origin``."""

    key: str
    file_value: Any
    value: Any
    origin: Path


def apply_saved_config(loaded: LoadedConfig, saved: str | os.PathLike, reset: bool = False) -> list[Override]:
    """Put the saved experiment config over ``loaded`` as ``set_hparams`` does (unless ``reset``); in place.

    Returns the keys whose value changed. ``saved`` that does not exist is not an error (a first run).
    """
    path = Path(saved)
    if reset or not path.is_file():
        return []
    data = read_yaml_mapping(path, f" (the saved config of experiment {path.parent.name})")
    changed = [
        Override(k, loaded.data.get(k), v, path)
        for k, v in data.items()
        if k not in ("base_config", "work_dir") and loaded.data.get(k, _ABSENT) != v
    ]
    for key, value in data.items():  # dict.update: top-level keys replaced whole, never merged
        loaded.data[key] = value
        for stale in [k for k in loaded.sources if k == key or k.startswith(f"{key}.")]:
            del loaded.sources[stale]
        loaded.sources.update(origins({key: value}, path))
    loaded.chain.append(path)
    return changed


_ABSENT = object()


# --------------------------------------------------------------------------------------- --hparams


def _literal(key: str, text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        fix = f"{key}={text.capitalize()}" if text.lower() in ("true", "false") else f"{key}='{text}'"
        raise ConfigError(
            f"--hparams {key}={text}: DiffSinger evaluates {text!r} as Python (utils/hparams.py:106-108) and "
            f"it is not a Python literal (a NameError or SyntaxError there). Booleans are True/False, strings "
            f"of a new key are quoted: {fix}."
        ) from None


def parse_hparams(hparams_str: str, data: Mapping[str, Any]) -> dict[str, Any]:
    """``"k=v,..."`` -> {key: value} typed as ``set_hparams`` types them against ``data`` (the merged config).

    Raises ConfigError with upstream's failure for a malformed item or a value that cannot be converted.
    """
    out: dict[str, Any] = {}
    for item in hparams_str.split(","):
        if item.strip() == "":
            continue
        if item.count("=") != 1:
            raise ConfigError(
                f"--hparams item {item!r} must be exactly one key=value (upstream splits on ',' then '=' and "
                "stops with a ValueError); values cannot contain ',' or '='."
            )
        key, text = item.split("=")
        current = {**data, **out}
        if key not in current:
            out[key] = _literal(key, text)
            current[key] = out[key]
        old = current[key]
        if text in ("True", "False") or type(old) is bool:
            out[key] = _literal(key, text)
            continue
        try:
            out[key] = type(old)(text)
        except (TypeError, ValueError) as e:
            raise ConfigError(
                f"--hparams {key}={text}: {key} is {old!r} ({type(old).__name__}) in the config, and upstream "
                f"converts the new value with {type(old).__name__}({text!r}), which fails ({e}). Set it in "
                "the YAML file instead."
            ) from None
    return out


def apply_hparams(loaded: LoadedConfig, hparams_str: str) -> dict[str, Any]:
    """Apply ``--hparams`` overrides to ``loaded`` (in place), attributed to :data:`HPARAMS_SOURCE`.

    A dotted key (``dur_prediction_args.lambda_pdur_loss``) is not followed into the mapping: upstream adds a
    new top-level key with that name (``utils/hparams.py:104-106``), which nothing reads, and so does this;
    :func:`flat_dotted_keys` lists such keys."""
    values = parse_hparams(hparams_str, loaded.data)
    dotted = set(flat_dotted_keys(values))
    for key, value in values.items():
        loaded.data[key] = value
        if key in dotted:
            continue  # not a path: its name must not shadow the nested key's source
        for stale in [k for k in loaded.sources if k == key or k.startswith(f"{key}.")]:
            del loaded.sources[stale]
        loaded.sources.update(origins({key: value}, HPARAMS_SOURCE))
    return values


def flat_dotted_keys(values: Mapping[str, Any]) -> list[str]:
    """The ``--hparams`` keys in ``values`` with a dot that upstream stores as new flat keys (none of the
    config's own top-level keys has a dot)."""
    return [k for k in values if "." in k]


# ------------------------------------------------------------------------------------- binary data


class _MetaUnpickler(pickle.Unpickler):
    """Reads ``train.meta`` (a dict of lists of numbers and strings) without running anything else."""

    _ALLOWED = {
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy", "dtype"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"train.meta refers to {module}.{name}, which a binarizer never writes")


def binary_fields(binary_dir: str | os.PathLike) -> set[str]:
    """The per-item fields the binarizer stored, from ``<binary_dir>/train.meta``; ConfigError if unreadable."""
    meta = Path(binary_dir) / "train.meta"
    if not meta.is_file():
        raise ConfigError(
            f"{meta} {not_a_file(meta)}: {binary_dir} is not a binarized DiffSinger dataset (or binarizing did not "
            "finish). Run `python scripts/binarize.py --config YOUR_CONFIG` first."
        )
    try:
        with meta.open("rb") as f:
            info = _MetaUnpickler(f).load()
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ValueError) as e:
        raise ConfigError(f"cannot read {meta} as a DiffSinger binarizer's metadata: {e}") from None
    if not isinstance(info, dict):
        raise ConfigError(f"{meta} holds a {type(info).__name__}, not the binarizer's dict of fields")
    return {str(k) for k in info}


def missing_fields(config: LoadedConfig | Mapping[str, Any], fields: set[str]) -> dict[str, list[str]]:
    """Switch that is on -> the fields its collater needs that the binary data lacks (only switches with some)."""
    data = config.data if isinstance(config, LoadedConfig) else config
    table = ACOUSTIC_FIELDS if task_kind(config) == "acoustic" else VARIANCE_FIELDS
    out: dict[str, list[str]] = {}
    for switch, needed in table.items():
        if switch == "predict_pitch" and data.get("use_glide_embed"):
            needed = (*needed, "note_glide")
        if get_dotted(data, switch, False):
            lacking = [f for f in needed if f not in fields]
            if lacking:
                out[switch] = lacking
    return out
