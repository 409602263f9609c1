"""DiffSinger-style YAML configs: load a ``base_config`` chain and check a variance config before training.

Notebook 03 (``03_zero_loss_config.ipynb``) uses this to catch the configs that make DiffSinger's variance
task return no loss at all (every ``predict_*`` switch false, as in ``configs/templates/config_variance.yaml``)
or a loss that cannot teach anything (a zero loss weight, a quoted ``"false"``, a misspelt key).

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
import difflib
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..io import BoolParseError, parse_bool

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

#: Real upstream keys that look like switches or weights but are not the variance task's; never "misspelt".
OTHER_KNOWN_KEYS: frozenset[str] = frozenset(
    {
        "predict_falsetto",  # newer upstream templates
        "dur_prediction_args.lambda_alloc_loss",
        "lambda_aux_mel_loss",
        "lambda_mel_loss",
        "lambda_pitch",
    }
)

#: How similar (difflib ratio, 0..1) an unknown key must be to a known one to be reported as a likely typo.
TYPO_CUTOFF = 0.8


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


_MISSING = object()


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


# ----------------------------------------------------------------------------------------- checking


@dataclass
class Problem:
    """One finding of the checker. ``severity`` is ``"error"`` (training will fail or learn nothing) or
    ``"warning"`` (probably a mistake). ``key`` is dotted; ``file`` is where its value came from."""

    severity: str
    key: str
    file: Path | None
    value: Any
    message: str

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def format(self) -> str:
        where = f" [{display_path(self.file)}]" if self.file else ""
        return f"{self.severity.upper():7} {self.key}{where}: {self.message}"

    def __str__(self) -> str:
        return self.format()


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _describe(value: Any) -> str:
    return f"{value!r} ({type(value).__name__})"


def display_path(path: str | os.PathLike) -> str:
    """``path`` relative to the working directory when it lies below it, else as given (for messages)."""
    p = Path(path)
    try:
        return str(p.relative_to(Path.cwd()))
    except ValueError:
        return str(p)


def _at(file: Path | None) -> str:
    return f" in {display_path(file)}" if file else ""


def enabled_switches(config: LoadedConfig | Mapping[str, Any]) -> dict[str, bool]:
    """Each switch as DiffSinger reads it (Python truthiness: the string ``"false"`` is True)."""
    data = config.data if isinstance(config, LoadedConfig) else config
    return {s: bool(data.get(s, False)) for s in SWITCHES}


def expected_loss_terms(config: LoadedConfig | Mapping[str, Any]) -> list[str]:
    """The loss terms DiffSinger's variance task will put in its ``losses`` dict for this config."""
    on = enabled_switches(config)
    return [term for term, switches in LOSS_TERMS.items() if any(on[s] for s in switches)]


def check_variance_config(config: LoadedConfig | Mapping[str, Any]) -> list[Problem]:
    """Check a (merged) DiffSinger variance config for settings that give an empty or useless loss.

    Errors: no prediction switch enabled (the training step returns the int 0 and Lightning stops with
    "training_step must return a Tensor, a dict, or None"); a switch that is not a boolean; a weight
    that is not a number; an enabled target whose weight is zero or negative (its loss is 0 or is
    maximised). Warnings: unknown keys close to a switch or weight (a typo DiffSinger silently ignores);
    one part of the duration loss switched off by a zero sub-weight.
    """
    loaded = config if isinstance(config, LoadedConfig) else LoadedConfig(Path(""), dict(config))
    data = loaded.data
    problems: list[Problem] = []

    def src(key: str) -> Path | None:
        return loaded.source(key) if loaded.sources else None

    def add(severity: str, key: str, value: Any, message: str) -> None:
        problems.append(Problem(severity, key, src(key), value, message))

    # 1. switches must be booleans
    for s in SWITCHES:
        if s not in data or isinstance(data[s], bool):
            continue
        v = data[s]
        reads = bool(v)
        if isinstance(v, str):

            try:
                meant = str(parse_bool(v)).lower()
                fix = f"write `{s}: {meant}` without quotes"
            except BoolParseError:
                fix = f"write `{s}: true` or `{s}: false` without quotes"
            why = f"a quoted YAML string, which Python (and DiffSinger's `if hparams[{s!r}]`) reads as {reads}"
        else:
            fix = f"write `{s}: true` or `{s}: false`"
            why = f"not a boolean; DiffSinger reads it as {reads}"
        add("error", s, v, f"{s} = {_describe(v)}{_at(src(s))} is {why}. Fix: {fix}.")

    on = enabled_switches(loaded)

    # 2. at least one prediction
    if not any(on.values()):
        by_file: dict[str, list[str]] = {}
        for s in SWITCHES:
            where = display_path(src(s)) if src(s) else ("not set anywhere" if s not in data else "given")
            by_file.setdefault(where, []).append(f"{s}={data[s]!r}" if s in data else s)
        found = "; ".join(f"{', '.join(names)} ({where})" for where, names in by_file.items())
        problems.append(
            Problem(
                "error",
                "predict_*",
                src("predict_dur") or (loaded.path if loaded.sources else None),
                {s: data.get(s) for s in SWITCHES},
                "no prediction is enabled, so the variance task computes no loss terms: "
                "`sum(losses.values())` of the empty dict is the int 0 and Lightning stops with "
                "\"training_step must return a Tensor, a dict, or None\". Found: "
                f"{found}. Fix: set at least one of {', '.join(SWITCHES)} to true"
                f"{_at(loaded.path if loaded.sources else None)} (e.g. `predict_dur: true`).",
            )
        )

    # 3. weights: numbers; positive where their target is enabled
    weight_targets: dict[str, list[str]] = {w: [] for w in WEIGHTS}
    for term, switches in LOSS_TERMS.items():
        enabled_by = [s for s in switches if on[s]]
        weight_targets[TERM_WEIGHTS[term]] = enabled_by
        if term == "dur_loss":
            for w in DUR_SUB_WEIGHTS:
                weight_targets[w] = enabled_by
    for w in WEIGHTS:
        needed_by = weight_targets[w]
        v = loaded.get(w, _MISSING)
        if v is _MISSING:
            if needed_by:
                add(
                    "error", w, None,
                    f"{w} is missing from the whole base_config chain but {needed_by[0]} is enabled; "
                    f"DiffSinger reads it and will stop with a KeyError. Fix: add `{_yaml_key(w)}: 1.0`"
                    f"{_at(loaded.path if loaded.sources else None)}.",
                )
            continue
        if not _is_number(v):
            hint = ""
            if isinstance(v, str) and _parses_as_float(v):
                hint = (
                    " PyYAML reads numbers like 1e-3 (no dot) or quoted numbers as strings; "
                    f"write `{_yaml_key(w)}: {_float_literal(v)}`."
                )
            add(
                "error", w, v,
                f"{w} = {_describe(v)}{_at(src(w))} is not a number; DiffSinger multiplies the loss by it. "
                f"Fix: give it a positive number (upstream default {_DEFAULT_WEIGHTS[w]}).{hint}",
            )
            continue
        if not math.isfinite(float(v)):
            add("error", w, v, f"{w} = {v!r}{_at(src(w))} is not finite. Fix: use a positive number.")
            continue
        if v < 0:
            sev = "error" if needed_by else "warning"
            add(
                sev, w, v,
                f"{w} = {v!r}{_at(src(w))} is negative: the optimiser would make that loss larger"
                f"{' (' + ', '.join(needed_by) + ' is enabled)' if needed_by else ' once its target is enabled'}. "
                f"Fix: a positive number (upstream default {_DEFAULT_WEIGHTS[w]}).",
            )
        elif v == 0 and needed_by and w in TERM_WEIGHTS.values():
            add(
                "error", w, v,
                f"{w} = 0{_at(src(w))} but {', '.join(needed_by)} is enabled: that loss term is always 0, "
                f"training runs and the head learns nothing. Fix: `{w}: {_DEFAULT_WEIGHTS[w]}` (upstream "
                f"default), or switch {', '.join(needed_by)} off.",
            )
        elif v == 0 and needed_by:
            add(
                "warning", w, v,
                f"{w} = 0{_at(src(w))}: this part of the duration loss is switched off "
                f"(upstream default {_DEFAULT_WEIGHTS[w]}). Fix: a positive weight unless that is intended.",
            )
    if on["predict_dur"]:
        subs = [loaded.get(w) for w in DUR_SUB_WEIGHTS]
        if all(_is_number(v) and v == 0 for v in subs):
            add(
                "error", "dur_prediction_args", subs,
                "lambda_pdur_loss, lambda_wdur_loss and lambda_sdur_loss are all 0, so dur_loss is always 0 "
                "and the duration predictor learns nothing. Fix: upstream uses 0.3, 1.0 and 3.0.",
            )

    # 4. likely typos
    known = set(SWITCHES) | set(WEIGHTS)
    for key in _candidate_keys(data):
        if key in known or key in OTHER_KNOWN_KEYS:
            continue
        parent = key.rpartition(".")[0]
        pool = [k for k in known if k.rpartition(".")[0] == parent]
        match = difflib.get_close_matches(key, pool, n=1, cutoff=TYPO_CUTOFF)
        if not match:
            lower = key.lower()
            match = [k for k in pool if k == lower]
        if match:
            target = match[0]
            current = loaded.get(target, _MISSING)
            now = "is not set anywhere" if current is _MISSING else f"stays {current!r}"
            if current is not _MISSING and src(target):
                now += f" (from {display_path(src(target))})"
            v = loaded.get(key)
            add(
                "warning", key, v,
                f"unknown key {key} = {_describe(v)}{_at(src(key))} looks like a misspelling of {target}. "
                f"DiffSinger ignores unknown keys, so {target} {now}. Fix: rename it to {target}.",
            )
    return problems


_DEFAULT_WEIGHTS: dict[str, float] = {
    "lambda_dur_loss": 1.0,
    "lambda_pitch_loss": 1.0,
    "lambda_var_loss": 1.0,
    "dur_prediction_args.lambda_pdur_loss": 0.3,
    "dur_prediction_args.lambda_wdur_loss": 1.0,
    "dur_prediction_args.lambda_sdur_loss": 3.0,
}


def _yaml_key(dotted: str) -> str:
    parent, _, leaf = dotted.rpartition(".")
    return f"{parent}:\n  {leaf}" if parent else leaf


def _parses_as_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _float_literal(text: str) -> str:
    value = float(text)
    return repr(value) if "e" in repr(value) or "." in repr(value) else f"{value:.1f}"


def _candidate_keys(data: Mapping[str, Any]) -> list[str]:
    keys = [k for k in data if isinstance(k, str)]
    dur = data.get("dur_prediction_args")
    if isinstance(dur, Mapping):
        keys += [f"dur_prediction_args.{k}" for k in dur if isinstance(k, str)]
    return keys


def has_errors(problems: list[Problem]) -> bool:
    """True when any problem is an error."""
    return any(p.is_error for p in problems)


def check_config_file(
    path: str | os.PathLike, root: str | os.PathLike | None = None
) -> tuple[LoadedConfig, list[Problem]]:
    """Load ``path`` with its ``base_config`` chain and check it; raises ConfigError when it cannot be loaded."""
    loaded = load_config(path, root=root)
    return loaded, check_variance_config(loaded)


def format_problems(problems: list[Problem]) -> str:
    """One line per problem, then a count of errors and warnings."""
    errors = sum(p.is_error for p in problems)
    warnings = len(problems) - errors
    lines = [p.format() for p in sorted(problems, key=lambda p: (not p.is_error, p.key))]
    lines.append(f"{errors} error(s), {warnings} warning(s)")
    return "\n".join(lines)
