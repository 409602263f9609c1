"""DiffSinger YAML configs as upstream reads them: the tasks' vocabulary and the ``base_config`` loader.

Notebook 03 (``03_zero_loss_config.ipynb``) and ``tts-nb check-config`` load configs with :func:`load_config`;
the checks live in :mod:`tts_nb_utils.upstream.diffsinger_check`, what happens around the file (a saved
``checkpoints/<exp>/config.yaml``, ``--hparams``, the binary folder) in
:mod:`tts_nb_utils.upstream.diffsinger_experiment`, and ``monitors/loss_terms.py`` reads :data:`LOSS_TERMS`
and :data:`TERM_WEIGHTS` (or :func:`loss_terms_for`) to know which loss terms a config should produce.

Loading follows ``set_hparams`` in openvpi/DiffSinger ``utils/hparams.py:64-82`` (checked at ``753b7cc``):

- ``base_config`` is a string or a list of strings. An entry beginning with ``.`` is joined to the folder of
  the file that names it (``f"{dirname}/{entry}"``, normalised); any other entry is used as written, i.e.
  relative to the working directory (the checkout, ``root`` here).
- Bases are merged in order, then the including file on top: a nested mapping is merged key by key,
  anything else is replaced (``override_config``, lines 22-27).
- Before loading an entry upstream asks whether the entry *as written* is among the files already loaded
  (line 73). Those are stored resolved, so a ``./common.yaml`` named by two sibling files is loaded twice and
  the second copy undoes what the first sibling set; a plain ``configs/base.yaml`` is loaded once. This
  loader does the same and records the files merged more than once (:attr:`LoadedConfig.repeated`).
- An empty file stops upstream with a TypeError; here it is a :class:`ConfigParseError` saying so. A file
  that would make upstream recurse forever is a :class:`ConfigCycleError`.

The loaded config remembers which file set each key (``LoadedConfig.sources``), so every problem names the
file to edit.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..io import YAMLLimitError, load_yaml, not_a_file

#: The upstream commit every rule and line number here was checked against.
UPSTREAM_COMMIT = "753b7cc"

# ----------------------------------------------------------------------------------------- vocabulary

#: ``task_cls`` values and the kind of task they train (``scripts/train.py:21-27`` imports the class).
VARIANCE_TASK = "training.variance_task.VarianceTask"
ACOUSTIC_TASK = "training.acoustic_task.AcousticTask"
TASK_KINDS: dict[str, str] = {VARIANCE_TASK: "variance", ACOUSTIC_TASK: "acoustic"}

#: The variance task's prediction switches, in the order upstream's template lists them.
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

#: Variance task: loss term (key of ``losses`` in ``training/variance_task.py:216-249``) -> its switches.
LOSS_TERMS: dict[str, tuple[str, ...]] = {
    "dur_loss": ("predict_dur",),
    "pitch_loss": ("predict_pitch",),
    "var_loss": VARIANCE_SWITCHES,
}

#: Variance task: loss term -> the top-level weight that multiplies it.
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

#: Every variance weight the checker knows.
WEIGHTS: tuple[str, ...] = (*TERM_WEIGHTS.values(), *DUR_SUB_WEIGHTS)

#: Acoustic task with shallow diffusion: loss term (``training/acoustic_task.py:149-169``) -> the switch that
#: makes ``modules/toplevel.py:107-117`` produce it. Without shallow diffusion only ``mel_loss`` is computed.
ACOUSTIC_LOSS_TERMS: dict[str, tuple[str, ...]] = {
    "aux_mel_loss": ("shallow_diffusion_args.train_aux_decoder",),
    "mel_loss": ("shallow_diffusion_args.train_diffusion",),
}

#: Acoustic task: loss term -> its weight (``mel_loss`` has none).
ACOUSTIC_TERM_WEIGHTS: dict[str, str] = {"aux_mel_loss": "lambda_aux_mel_loss"}

#: Acoustic switches: the shallow-diffusion ones, then the variance embeddings the binarizer must have stored.
ACOUSTIC_SWITCHES: tuple[str, ...] = (
    "use_shallow_diffusion",
    *ACOUSTIC_LOSS_TERMS["aux_mel_loss"],
    *ACOUSTIC_LOSS_TERMS["mel_loss"],
    "use_energy_embed",
    "use_breathiness_embed",
    "use_voicing_embed",
    "use_tension_embed",
)

#: Upstream's value of each weight (``configs/variance.yaml``, ``configs/acoustic.yaml``), quoted in fixes.
DEFAULT_WEIGHTS: dict[str, float] = {
    "lambda_dur_loss": 1.0,
    "lambda_pitch_loss": 1.0,
    "lambda_var_loss": 1.0,
    "dur_prediction_args.lambda_pdur_loss": 0.3,
    "dur_prediction_args.lambda_wdur_loss": 1.0,
    "dur_prediction_args.lambda_sdur_loss": 3.0,
    "lambda_aux_mel_loss": 0.2,
}

#: Settings mappings the model reads when a switch is on: key -> (the switches, any of which makes it read it;
#: where it reads it; what a null there raises). ``melody_encoder_args`` also needs ``use_melody_encoder``.
NESTED_ARGS: dict[str, tuple[tuple[str, ...], str, str]] = {
    "dur_prediction_args": (("predict_dur",), "modules/fastspeech/variance_encoder.py:40-50",
                            "TypeError: 'NoneType' object is not subscriptable"),
    "pitch_prediction_args": (("predict_pitch",), "modules/toplevel.py:167-169 and modules/compat.py:13-14",
                              "AttributeError: 'NoneType' object has no attribute 'get'"),
    "melody_encoder_args": (("predict_pitch",), "modules/toplevel.py:159-161 and variance_encoder.py:106-110",
                            "AttributeError: 'NoneType' object has no attribute 'get'"),
    "variances_prediction_args": (VARIANCE_SWITCHES, "modules/fastspeech/param_adaptor.py:66-67",
                                  "TypeError: 'NoneType' object is not subscriptable"),
    "shallow_diffusion_args": (("use_shallow_diffusion",), "training/acoustic_task.py:77-80",
                               "TypeError: 'NoneType' object is not subscriptable"),
}


def nested_args_read(config: LoadedConfig | Mapping[str, Any]) -> dict[str, str]:
    """The :data:`NESTED_ARGS` keys the model will read with this config -> the switch that makes it."""
    data = config.data if isinstance(config, LoadedConfig) else config
    out: dict[str, str] = {}
    for key, (switches, _, _) in NESTED_ARGS.items():
        on = [s for s in switches if data.get(s)]
        if key == "melody_encoder_args" and not data.get("use_melody_encoder"):
            on = []
        if on:
            out[key] = on[0]
    return out


#: ``diffusion_type`` values both tasks accept (``training/acoustic_task.py:75``, ``variance_task.py:138-145``).
DIFFUSION_TYPES: tuple[str, ...] = ("ddpm", "reflow")


# --------------------------------------------------------------------------------------------- errors


class ConfigError(ValueError):
    """A config file or its ``base_config`` chain cannot be loaded (exit code 2 in the CLI)."""


class ConfigNotFoundError(ConfigError, FileNotFoundError):
    """A config file, or a file named in ``base_config``, does not exist."""


class ConfigCycleError(ConfigError):
    """A ``base_config`` chain that upstream would follow forever (it stops with a RecursionError)."""


class ConfigParseError(ConfigError):
    """A config file is empty, not valid YAML, not a mapping, or cannot be merged as upstream merges it."""


# ----------------------------------------------------------------------------------------- loading


@dataclass
class LoadedConfig:
    """A merged config with its provenance.

    ``data``: the merged mapping. ``sources``: dotted key (``"dur_prediction_args.lambda_pdur_loss"``) -> the
    file whose value won. ``chain``: the files in the order they were merged (bases first, the file itself
    last; a file merged twice appears twice). ``path``: the file asked for; ``root``: the folder plain
    ``base_config`` entries are relative to. ``repeated``: files merged more than once.
    """

    path: Path
    data: dict[str, Any]
    sources: dict[str, Path] = field(default_factory=dict)
    chain: list[Path] = field(default_factory=list)
    root: Path | None = None

    @property
    def repeated(self) -> list[Path]:
        return sorted({p for p in self.chain if self.chain.count(p) > 1})

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


def as_loaded(config: LoadedConfig | Mapping[str, Any]) -> LoadedConfig:
    """``config`` itself, or a plain mapping wrapped (no files, no sources)."""
    return config if isinstance(config, LoadedConfig) else LoadedConfig(Path(""), dict(config))


def get_dotted(data: Mapping[str, Any], dotted: str, default: Any = None) -> Any:
    """Look up ``"a.b.c"`` in nested mappings; ``default`` when any part is missing or not a mapping."""
    node: Any = data
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return default
        node = node[part]
    return node


def read_yaml_mapping(path: Path, where: str = "") -> dict[str, Any]:
    """One YAML file's top-level mapping; ConfigError (naming ``path``) when it is missing, empty or not one."""
    if not path.is_file():
        raise ConfigNotFoundError(f"config file {path} {not_a_file(path)}{where}")
    try:
        data = load_yaml(path.read_text(encoding="utf-8"), f"config {path}{where}")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigParseError(f"cannot read config {path}{where}: {e}") from None
    except YAMLLimitError as e:
        raise ConfigParseError(str(e)) from None
    except yaml.YAMLError as e:
        raise ConfigParseError(f"config {path}{where} is not valid YAML: {e}") from None
    if data is None:
        raise ConfigParseError(
            f"config {path}{where} is empty (no keys, only comments or blanks): DiffSinger's set_hparams stops "
            "with \"TypeError: argument of type 'NoneType' is not iterable\" (utils/hparams.py:68). Fix: give "
            "it at least a base_config line, or remove it from the base_config that names it."
        )
    if not isinstance(data, dict):
        raise ConfigParseError(
            f"config {path}{where} must hold a mapping of keys to values at the top level, "
            f"found a {type(data).__name__}"
        )
    return data


def _not_found_message(path: Path, included_from: Path, entry: str) -> str:
    if not entry.strip():
        return f"base_config of {included_from} has an empty entry {entry!r}: give a file name or remove the entry"
    if entry.startswith("."):
        how = f"entries beginning with '.' are relative to the folder of {included_from.name}"
    else:
        how = (
            "entries not beginning with '.' are relative to the working directory (pass --root / root= "
            "for the DiffSinger checkout), or write './' to make it relative to the including file"
        )
    return f"base config {path} {not_a_file(path)} (named in base_config of {included_from} as {entry!r}); {how}"


def _merge(dst: dict, dst_sources: dict[str, Path], src: Mapping, src_sources: Mapping[str, Path]) -> None:
    """``override_config`` (utils/hparams.py:22-27): mappings merged key by key, anything else replaced; each
    key's origin is carried from ``src_sources`` into ``dst_sources``."""

    def walk(d: dict, s: Mapping, prefix: str) -> None:
        for key, value in s.items():
            dotted = f"{prefix}{key}"
            if isinstance(value, Mapping) and key in d:
                if not isinstance(d[key], dict):
                    if value:  # upstream recurses into the non-mapping and fails with a TypeError
                        raise ConfigParseError(
                            f"{dotted} is a mapping in {src_sources[dotted]} but {d[key]!r} in "
                            f"{dst_sources.get(dotted)}: DiffSinger's override_config stops with a TypeError. "
                            "Fix: make both a mapping (or remove one)."
                        )
                    continue
                dst_sources[dotted] = src_sources[dotted]
                walk(d[key], value, f"{dotted}.")
                continue
            for stale in [k for k in dst_sources if k.startswith(f"{dotted}.")]:
                del dst_sources[stale]
            d[key] = copy.deepcopy(value)
            dst_sources.update({k: v for k, v in src_sources.items() if k == dotted or k.startswith(f"{dotted}.")})

    walk(dst, src, "")


def origins(data: Mapping, origin: Path, prefix: str = "") -> dict[str, Path]:
    """Every dotted key of ``data`` (nested mappings included) -> ``origin``."""
    out: dict[str, Path] = {}
    for key, value in data.items():
        out[f"{prefix}{key}"] = origin
        if isinstance(value, Mapping):
            out.update(origins(value, origin, f"{prefix}{key}."))
    return out


def _upstream_name(path: Path, root: Path) -> str:
    """``path`` as it would be passed to ``--config`` from the checkout: relative to ``root`` when below it
    (``./name`` for a file directly in it, since upstream joins an empty folder name into ``/name``)."""
    try:
        rel = path.relative_to(root).as_posix()
    except ValueError:
        return str(path)
    return rel if "/" in rel else f"./{rel}"


#: base_config files nested deeper than this are refused (a real chain is 2 or 3 deep).
MAX_BASE_DEPTH = 100


def config_arg(path: str | os.PathLike, root: str | os.PathLike | None = None) -> str:
    """What a user types after ``--config`` for ``path`` (as given on our command line) when training from
    ``root``: the path as typed when absolute, or relative with ``root`` the working directory; else relative
    to ``root`` as ``os.path.relpath`` writes it (no ``./``), or absolute when outside it."""
    typed = os.fspath(path)
    root_dir = Path(root).expanduser().absolute() if root is not None else Path.cwd()
    if os.path.isabs(typed) or root_dir == Path.cwd():
        return typed
    full = Path(os.path.normpath(Path(typed).expanduser().absolute()))
    try:
        return full.relative_to(root_dir).as_posix()
    except ValueError:
        return str(full)


def load_config(
    path: str | os.PathLike, root: str | os.PathLike | None = None, *, dedupe_files: bool = False,
    config_name: str | None = None,
) -> LoadedConfig:
    """Load a DiffSinger YAML config and merge its ``base_config`` chain exactly as ``set_hparams`` does.

    ``root``: the folder that ``base_config`` entries not beginning with ``.`` are relative to (upstream:
    the working directory, i.e. the checkout); default the current working directory. ``dedupe_files``:
    load every file once even when upstream would load it twice (what the author of a shared base meant;
    the checker compares both). ``config_name``: the string passed to ``--config`` (:func:`config_arg`), which
    upstream joins ``./`` entries to: ``x.yaml`` has the folder ``""``, so its ``./base.yaml`` is opened as
    ``/base.yaml`` (line 75) and fails; default ``./x.yaml`` for a file directly in ``root`` (the spelling
    that works). Raises ConfigNotFoundError, ConfigCycleError or ConfigParseError.
    """
    root_dir = Path(root).expanduser().absolute() if root is not None else Path.cwd()
    top = Path(os.path.normpath(Path(path).expanduser().absolute()))
    chain: list[Path] = []
    loaded: set[str] = set()  # upstream's loaded_config: names as passed to load_config
    loaded_files: set[Path] = set()

    def open_path(name: str) -> Path:
        return Path(os.path.normpath(name if os.path.isabs(name) else root_dir / name))

    stack_names: list[str] = []

    def load(name: str, stack: list[Path], included_from: Path | None, entry: str | None) -> tuple[dict, dict]:
        file = open_path(name)
        if file in stack:
            cycle = " -> ".join(str(p) for p in [*stack[stack.index(file):], file])
            raise ConfigCycleError(
                f"base_config cycle: {cycle}; DiffSinger would load these forever (RecursionError). "
                f"Remove {entry!r} from the base_config of {stack[-1]}"
            )
        if len(stack) >= MAX_BASE_DEPTH:  # upstream recurses until Python's RecursionError
            raise ConfigParseError(f"base_config chain of {top} is more than {MAX_BASE_DEPTH} files deep (at {file}); "
                                   "DiffSinger would stop with a RecursionError. Merge the bases into fewer files")
        if included_from is not None and not file.is_file():
            if entry and entry.startswith(".") and os.path.dirname(stack_names[-1]) == "":
                raise ConfigNotFoundError(
                    f"--config {stack_names[-1]}: DiffSinger joins its base_config entry {entry!r} to the folder "
                    f"of the name as passed, which is empty, and opens {name!r} (utils/hparams.py:74-76), which "
                    f"does not exist. Fix: pass --config ./{stack_names[-1]}, or write the entry relative to the "
                    "checkout without the leading '.'."
                )
            raise ConfigNotFoundError(_not_found_message(file, included_from, entry or ""))
        raw = read_yaml_mapping(file)
        loaded.add(name)
        loaded_files.add(file)
        out: dict[str, Any] = {}
        out_sources: dict[str, Path] = {}
        if "base_config" in raw:
            entries = raw["base_config"] if isinstance(raw["base_config"], list) else [raw["base_config"]]
            raw["base_config"] = entries  # upstream rewrites a single entry as a list (line 71)
            for item in entries:
                if not isinstance(item, str):
                    raise ConfigParseError(
                        f"base_config in {file} must be a path or a list of paths, found {item!r} "
                        f"({type(item).__name__})"
                    )
                if item in loaded:  # line 73: the entry as written, not the resolved file
                    continue
                base = os.path.normpath(f"{os.path.dirname(name)}/{item}") if item.startswith(".") else item
                if dedupe_files and open_path(base) in loaded_files:
                    continue
                stack_names.append(name)
                data, data_sources = load(base, [*stack, file], file, item)
                stack_names.pop()
                _merge(out, out_sources, data, data_sources)
        _merge(out, out_sources, raw, origins(raw, file))
        chain.append(file)
        return out, out_sources

    merged, sources = load(config_name or _upstream_name(top, root_dir), [], None, None)
    return LoadedConfig(path=top, data=merged, sources=sources, chain=chain, root=root_dir)


# ------------------------------------------------------------------------------- what DiffSinger reads


def display_path(path: str | os.PathLike, base: str | os.PathLike | None = None) -> str:
    """``path`` relative to ``base`` (default: the working directory) when it lies below it, else as given."""
    p = Path(path)
    try:
        return p.relative_to(Path(base).absolute() if base is not None else Path.cwd()).as_posix()
    except ValueError:
        return str(p)


def task_kind(config: LoadedConfig | Mapping[str, Any]) -> str | None:
    """``"variance"``, ``"acoustic"``, ``"other"`` (a task_cls this module does not know) or None (no task)."""
    data = config.data if isinstance(config, LoadedConfig) else config
    task = data.get("task_cls")
    if not task:
        return None
    return TASK_KINDS.get(str(task), "other")


def enabled_switches(config: LoadedConfig | Mapping[str, Any]) -> dict[str, bool]:
    """Each variance switch as DiffSinger reads it (Python truthiness: the string ``"false"`` is True)."""
    data = config.data if isinstance(config, LoadedConfig) else config
    return {s: bool(data.get(s, False)) for s in SWITCHES}


def acoustic_switches(config: LoadedConfig | Mapping[str, Any]) -> dict[str, bool]:
    """Each acoustic switch (:data:`ACOUSTIC_SWITCHES`, dotted) as DiffSinger reads it."""
    data = config.data if isinstance(config, LoadedConfig) else config
    return {s: bool(get_dotted(data, s, False)) for s in ACOUSTIC_SWITCHES}


def loss_terms_for(config: LoadedConfig | Mapping[str, Any] | None) -> tuple[dict, dict]:
    """(term -> switches, term -> weight) for the config's task; the variance task's when it is not acoustic."""
    if config is not None and task_kind(config) == "acoustic":
        return ACOUSTIC_LOSS_TERMS, ACOUSTIC_TERM_WEIGHTS
    return LOSS_TERMS, TERM_WEIGHTS


def expected_loss_terms(config: LoadedConfig | Mapping[str, Any]) -> list[str]:
    """The loss terms the config's task puts in its ``losses`` dict (empty: Lightning stops at step 0)."""
    if task_kind(config) == "acoustic":
        on = acoustic_switches(config)
        if not on["use_shallow_diffusion"]:
            return ["mel_loss"]
        return [term for term, (switch,) in ACOUSTIC_LOSS_TERMS.items() if on[switch]]
    on = enabled_switches(config)
    return [term for term, switches in LOSS_TERMS.items() if any(on[s] for s in switches)]
