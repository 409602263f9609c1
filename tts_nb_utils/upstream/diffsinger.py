"""DiffSinger-style YAML configs: the variance task's vocabulary and the ``base_config`` loader.

Notebook 03 (``03_zero_loss_config.ipynb``) loads its configs with :func:`load_config`; the checks that catch
a config giving DiffSinger's variance task no loss (or a useless one) live in
:mod:`tts_nb_utils.upstream.diffsinger_check`, and ``monitors/loss_terms.py`` reads :data:`LOSS_TERMS` and
:data:`TERM_WEIGHTS` to know which loss terms a config should produce.

Loading follows openvpi/DiffSinger's config system:

- ``base_config`` is a string or a list of strings. A path beginning with ``.`` is relative to the folder of
  the file that names it; any other relative path is relative to the working directory (``root`` here).
- Bases are merged in order, then the including file on top: later files override earlier ones; a nested
  mapping is merged key by key, anything else is replaced.
- A file already loaded through another branch is not loaded again (so a shared ``base.yaml`` does not
  undo what a sibling set). A file that includes itself, directly or through others, is an error here
  (upstream skips or recurses forever, depending on how the path is written).

The loaded config remembers which file set each key (``LoadedConfig.sources``), so every problem the checker
reports names the file to edit.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

# ----------------------------------------------------------------------------------------- vocabulary

#: The variance task's prediction switches, in the order DiffSinger's template lists them.
SWITCHES: tuple[str, ...] = (
    "predict_dur",
    "predict_pitch",
    "predict_energy",
    "predict_breathiness",
    "predict_voicing",
    "predict_tension",
)

#: The switches whose targets share the variance predictor and its ``var_loss``.
VARIANCE_SWITCHES: tuple[str, ...] = SWITCHES[2:]

#: Loss term (the key in DiffSinger's ``losses`` dict) -> the switches that produce it.
LOSS_TERMS: dict[str, tuple[str, ...]] = {
    "dur_loss": ("predict_dur",),
    "pitch_loss": ("predict_pitch",),
    "var_loss": VARIANCE_SWITCHES,
}

#: Loss term -> the top-level weight that multiplies it.
TERM_WEIGHTS: dict[str, str] = {
    "dur_loss": "lambda_dur_loss",
    "pitch_loss": "lambda_pitch_loss",
    "var_loss": "lambda_var_loss",
}

#: The three parts of the duration loss (phoneme, word, sentence level), under ``dur_prediction_args``.
DUR_SUB_WEIGHTS: tuple[str, ...] = (
    "dur_prediction_args.lambda_pdur_loss",
    "dur_prediction_args.lambda_wdur_loss",
    "dur_prediction_args.lambda_sdur_loss",
)

#: Every weight the checker knows.
WEIGHTS: tuple[str, ...] = (*TERM_WEIGHTS.values(), *DUR_SUB_WEIGHTS)


# --------------------------------------------------------------------------------------------- errors


class ConfigError(ValueError):
    """A config file or its ``base_config`` chain cannot be loaded (exit code 2 in the CLI)."""


class ConfigNotFoundError(ConfigError, FileNotFoundError):
    """A config file, or a file named in ``base_config``, does not exist."""


class ConfigCycleError(ConfigError):
    """A ``base_config`` chain includes a file that is already one of its own ancestors."""


class ConfigParseError(ConfigError):
    """A config file is not valid YAML, or its top level is not a mapping."""


# ----------------------------------------------------------------------------------------- loading


@dataclass
class LoadedConfig:
    """A merged config with its provenance.

    ``data``: the merged mapping. ``sources``: dotted key (``"dur_prediction_args.lambda_pdur_loss"``) -> the
    file whose value won. ``chain``: the files in the order they were merged (bases first, the file itself
    last). ``path``: the file that was asked for.
    """

    path: Path
    data: dict[str, Any]
    sources: dict[str, Path] = field(default_factory=dict)
    chain: list[Path] = field(default_factory=list)

    def get(self, dotted: str, default: Any = None) -> Any:
        """The value at a dotted key (``"dur_prediction_args.lambda_pdur_loss"``), or ``default``."""
        return get_dotted(self.data, dotted, default)

    def source(self, dotted: str) -> Path | None:
        """The file that set ``dotted`` (or its closest parent mapping); None when no file did."""
        parts = dotted.split(".")
        for n in range(len(parts), 0, -1):
            src = self.sources.get(".".join(parts[:n]))
            if src is not None:
                return src
        return None

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    def __contains__(self, key: str) -> bool:
        return key in self.data


def get_dotted(data: Mapping[str, Any], dotted: str, default: Any = None) -> Any:
    """Look up ``"a.b.c"`` in nested mappings; ``default`` when any part is missing or not a mapping."""
    node: Any = data
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return default
        node = node[part]
    return node


def _read_yaml(path: Path, included_from: Path | None, entry: str | None) -> dict[str, Any]:
    where = f" (named in base_config of {included_from} as {entry!r})" if included_from else ""
    if not path.is_file():
        raise ConfigNotFoundError(_not_found_message(path, included_from, entry, where))
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigParseError(f"cannot read config {path}{where}: {e}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigParseError(f"config {path}{where} is not valid YAML: {e}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigParseError(
            f"config {path}{where} must hold a mapping of keys to values at the top level, "
            f"found a {type(data).__name__}"
        )
    return data


def _not_found_message(path: Path, included_from: Path | None, entry: str | None, where: str) -> str:
    if included_from is None:
        return f"config file {path} does not exist"
    if entry is not None and entry.startswith("."):
        how = f"entries beginning with '.' are relative to the folder of {included_from.name}"
    else:
        how = (
            "entries not beginning with '.' are relative to the working directory (pass --root / root= "
            "for the DiffSinger checkout), or write './' to make it relative to the including file"
        )
    return f"base config {path} does not exist{where}; {how}"


def _resolve_entry(entry: str, including: Path, root: Path) -> Path:
    p = Path(os.path.expanduser(entry))
    if p.is_absolute():
        return Path(os.path.normpath(p))
    base = including.parent if entry.startswith(".") else root
    return Path(os.path.normpath(base / p))


def _merge(dst: dict, dst_sources: dict[str, Path], src: Mapping, src_sources: Mapping[str, Path]) -> None:
    """Merge ``src`` into ``dst`` as DiffSinger does (mappings key by key, anything else replaced), carrying
    each key's origin from ``src_sources`` into ``dst_sources``."""

    def walk(d: dict, s: Mapping, prefix: str) -> None:
        for key, value in s.items():
            dotted = f"{prefix}{key}"
            if isinstance(value, Mapping) and isinstance(d.get(key), dict):
                dst_sources[dotted] = src_sources[dotted]
                walk(d[key], value, f"{dotted}.")
                continue
            for stale in [k for k in dst_sources if k.startswith(f"{dotted}.")]:
                del dst_sources[stale]
            d[key] = copy.deepcopy(value)
            dst_sources.update({k: v for k, v in src_sources.items() if k == dotted or k.startswith(f"{dotted}.")})

    walk(dst, src, "")


def _origins(data: Mapping, origin: Path, prefix: str = "") -> dict[str, Path]:
    """Every dotted key of ``data`` (nested mappings included) -> ``origin``."""
    out: dict[str, Path] = {}
    for key, value in data.items():
        out[f"{prefix}{key}"] = origin
        if isinstance(value, Mapping):
            out.update(_origins(value, origin, f"{prefix}{key}."))
    return out


def load_config(path: str | os.PathLike, root: str | os.PathLike | None = None) -> LoadedConfig:
    """Load a DiffSinger-style YAML config and merge its ``base_config`` chain.

    ``root`` is the folder that relative ``base_config`` entries not beginning with ``.`` are resolved
    against (DiffSinger resolves them against the working directory, i.e. the checkout); default: the
    current working directory. Raises ConfigNotFoundError, ConfigCycleError or ConfigParseError, each
    naming the files involved.
    """
    root_dir = Path(root).expanduser().absolute() if root is not None else Path.cwd()
    top = Path(os.path.normpath(Path(path).expanduser().absolute()))
    chain: list[Path] = []
    loaded: set[Path] = set()

    def load(file: Path, stack: list[Path], included_from: Path | None, entry: str | None) -> tuple[dict, dict]:
        """Return (merged data, sources) for ``file`` with its own bases merged underneath it."""
        if file in stack:
            cycle = " -> ".join(str(p) for p in [*stack[stack.index(file):], file])
            raise ConfigCycleError(f"base_config cycle: {cycle}. Remove {file} from the base_config of {stack[-1]}")
        raw = _read_yaml(file, included_from, entry)
        loaded.add(file)
        out: dict[str, Any] = {}
        out_sources: dict[str, Path] = {}
        bases = raw.get("base_config")
        if bases is not None:
            entries = bases if isinstance(bases, list) else [bases]
            for item in entries:
                if not isinstance(item, str | os.PathLike):
                    raise ConfigParseError(
                        f"base_config in {file} must be a path or a list of paths, found {item!r} "
                        f"({type(item).__name__})"
                    )
                base_file = _resolve_entry(str(item), file, root_dir)
                if base_file in stack or base_file == file:
                    load(base_file, [*stack, file], file, str(item))  # an ancestor: raises ConfigCycleError
                if base_file in loaded:
                    continue  # shared base already merged through another branch, as upstream
                data, data_sources = load(base_file, [*stack, file], file, str(item))
                _merge(out, out_sources, data, data_sources)
        _merge(out, out_sources, raw, _origins(raw, file))
        chain.append(file)
        return out, out_sources

    merged, sources = load(top, [], None, None)
    return LoadedConfig(path=top, data=merged, sources=sources, chain=chain)


# ------------------------------------------------------------------------------- what DiffSinger reads


def display_path(path: str | os.PathLike) -> str:
    """``path`` relative to the working directory when it lies below it, else as given (for messages)."""
    p = Path(path)
    try:
        return str(p.relative_to(Path.cwd()))
    except ValueError:
        return str(p)


def enabled_switches(config: LoadedConfig | Mapping[str, Any]) -> dict[str, bool]:
    """Each switch as DiffSinger reads it (Python truthiness: the string ``"false"`` is True)."""
    data = config.data if isinstance(config, LoadedConfig) else config
    return {s: bool(data.get(s, False)) for s in SWITCHES}


def expected_loss_terms(config: LoadedConfig | Mapping[str, Any]) -> list[str]:
    """The loss terms DiffSinger's variance task will put in its ``losses`` dict for this config."""
    on = enabled_switches(config)
    return [term for term, switches in LOSS_TERMS.items() if any(on[s] for s in switches)]
