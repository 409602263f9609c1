"""Check a DiffSinger variance config before training: the settings that give an empty or useless loss.

Notebook 03 (``03_zero_loss_config.ipynb``) and ``tts-nb check-config`` use this to catch the configs that
make DiffSinger's variance task return no loss at all (every ``predict_*`` switch false, as in
``configs/templates/config_variance.yaml``) or a loss that cannot teach anything (a zero loss weight, a quoted
``"false"``, a misspelt key). Each rule below is one function; each problem names the key, the file that set
it (from :class:`~tts_nb_utils.upstream.diffsinger.LoadedConfig`), the value found and the fix.
"""

from __future__ import annotations

import difflib
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..io import BoolParseError, parse_bool
from .diffsinger import (
    DUR_SUB_WEIGHTS,
    LOSS_TERMS,
    SWITCHES,
    TERM_WEIGHTS,
    WEIGHTS,
    LoadedConfig,
    display_path,
    enabled_switches,
    load_config,
)

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

#: Upstream's value of each weight, quoted in the fixes.
_DEFAULT_WEIGHTS: dict[str, float] = {
    "lambda_dur_loss": 1.0,
    "lambda_pitch_loss": 1.0,
    "lambda_var_loss": 1.0,
    "dur_prediction_args.lambda_pdur_loss": 0.3,
    "dur_prediction_args.lambda_wdur_loss": 1.0,
    "dur_prediction_args.lambda_sdur_loss": 3.0,
}

_MISSING = object()


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


@dataclass
class _Findings:
    """The config under check and the problems found so far: what every rule reads and appends to."""

    loaded: LoadedConfig
    problems: list[Problem] = field(default_factory=list)

    @property
    def data(self) -> dict[str, Any]:
        return self.loaded.data

    @property
    def top(self) -> Path | None:
        """The file asked for, when the config was loaded from files (None for a plain mapping)."""
        return self.loaded.path if self.loaded.sources else None

    def src(self, key: str) -> Path | None:
        return self.loaded.source(key) if self.loaded.sources else None

    def add(self, severity: str, key: str, value: Any, message: str) -> None:
        self.problems.append(Problem(severity, key, self.src(key), value, message))


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _describe(value: Any) -> str:
    return f"{value!r} ({type(value).__name__})"


def _at(file: Path | None) -> str:
    return f" in {display_path(file)}" if file else ""


# ------------------------------------------------------------------------------------------------- rules


def _check_switch_types(f: _Findings) -> None:
    """Rule 1: every switch that is set must be a YAML boolean (a quoted ``"false"`` reads as True)."""
    for s in SWITCHES:
        if s not in f.data or isinstance(f.data[s], bool):
            continue
        v = f.data[s]
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
        f.add("error", s, v, f"{s} = {_describe(v)}{_at(f.src(s))} is {why}. Fix: {fix}.")


def _check_some_switch_on(f: _Findings, on: dict[str, bool]) -> None:
    """Rule 2: at least one prediction must be enabled, else the loss is the int 0 and Lightning stops."""
    if any(on.values()):
        return
    by_file: dict[str, list[str]] = {}
    for s in SWITCHES:
        where = display_path(f.src(s)) if f.src(s) else ("not set anywhere" if s not in f.data else "given")
        by_file.setdefault(where, []).append(f"{s}={f.data[s]!r}" if s in f.data else s)
    found = "; ".join(f"{', '.join(names)} ({where})" for where, names in by_file.items())
    f.problems.append(
        Problem(
            "error",
            "predict_*",
            f.src("predict_dur") or f.top,
            {s: f.data.get(s) for s in SWITCHES},
            "no prediction is enabled, so the variance task computes no loss terms: "
            "`sum(losses.values())` of the empty dict is the int 0 and Lightning stops with "
            "\"training_step must return a Tensor, a dict, or None\". Found: "
            f"{found}. Fix: set at least one of {', '.join(SWITCHES)} to true"
            f"{_at(f.top)} (e.g. `predict_dur: true`).",
        )
    )


def _weight_targets(on: dict[str, bool]) -> dict[str, list[str]]:
    """Each weight -> the enabled switches whose loss it multiplies (the duration sub-weights follow dur_loss)."""
    targets: dict[str, list[str]] = {w: [] for w in WEIGHTS}
    for term, switches in LOSS_TERMS.items():
        enabled_by = [s for s in switches if on[s]]
        targets[TERM_WEIGHTS[term]] = enabled_by
        if term == "dur_loss":
            for w in DUR_SUB_WEIGHTS:
                targets[w] = enabled_by
    return targets


def _check_weights(f: _Findings, on: dict[str, bool]) -> None:
    """Rule 3: weights are numbers, and positive where their target is enabled."""
    targets = _weight_targets(on)
    for w in WEIGHTS:
        _check_weight(f, w, targets[w])
    if on["predict_dur"]:
        subs = [f.loaded.get(w) for w in DUR_SUB_WEIGHTS]
        if all(_is_number(v) and v == 0 for v in subs):
            f.add(
                "error", "dur_prediction_args", subs,
                "lambda_pdur_loss, lambda_wdur_loss and lambda_sdur_loss are all 0, so dur_loss is always 0 "
                "and the duration predictor learns nothing. Fix: upstream uses 0.3, 1.0 and 3.0.",
            )


def _check_weight(f: _Findings, w: str, needed_by: list[str]) -> None:
    """One weight: present when needed, a finite number, then its sign (see :func:`_check_weight_sign`)."""
    v = f.loaded.get(w, _MISSING)
    if v is _MISSING:
        if needed_by:
            f.add(
                "error", w, None,
                f"{w} is missing from the whole base_config chain but {needed_by[0]} is enabled; "
                f"DiffSinger reads it and will stop with a KeyError. Fix: add `{_yaml_key(w)}: 1.0`"
                f"{_at(f.top)}.",
            )
    elif not _is_number(v):
        hint = ""
        if isinstance(v, str) and _parses_as_float(v):
            hint = (
                " PyYAML reads numbers like 1e-3 (no dot) or quoted numbers as strings; "
                f"write `{_yaml_key(w)}: {_float_literal(v)}`."
            )
        f.add(
            "error", w, v,
            f"{w} = {_describe(v)}{_at(f.src(w))} is not a number; DiffSinger multiplies the loss by it. "
            f"Fix: give it a positive number (upstream default {_DEFAULT_WEIGHTS[w]}).{hint}",
        )
    elif not math.isfinite(float(v)):
        f.add("error", w, v, f"{w} = {v!r}{_at(f.src(w))} is not finite. Fix: use a positive number.")
    else:
        _check_weight_sign(f, w, v, needed_by)


def _check_weight_sign(f: _Findings, w: str, v: float, needed_by: list[str]) -> None:
    """A negative weight maximises its loss; a zero one switches it (or part of dur_loss) off."""
    at = _at(f.src(w))
    if v < 0:
        sev = "error" if needed_by else "warning"
        f.add(
            sev, w, v,
            f"{w} = {v!r}{at} is negative: the optimiser would make that loss larger"
            f"{' (' + ', '.join(needed_by) + ' is enabled)' if needed_by else ' once its target is enabled'}. "
            f"Fix: a positive number (upstream default {_DEFAULT_WEIGHTS[w]}).",
        )
    elif v == 0 and needed_by and w in TERM_WEIGHTS.values():
        f.add(
            "error", w, v,
            f"{w} = 0{at} but {', '.join(needed_by)} is enabled: that loss term is always 0, "
            f"training runs and the head learns nothing. Fix: `{w}: {_DEFAULT_WEIGHTS[w]}` (upstream "
            f"default), or switch {', '.join(needed_by)} off.",
        )
    elif v == 0 and needed_by:
        f.add(
            "warning", w, v,
            f"{w} = 0{at}: this part of the duration loss is switched off "
            f"(upstream default {_DEFAULT_WEIGHTS[w]}). Fix: a positive weight unless that is intended.",
        )


def _typo_target(key: str, known: set[str]) -> str | None:
    """The known key (same parent mapping) that ``key`` most likely misspells, or None."""
    parent = key.rpartition(".")[0]
    pool = [k for k in known if k.rpartition(".")[0] == parent]
    match = difflib.get_close_matches(key, pool, n=1, cutoff=TYPO_CUTOFF)
    if not match:
        lower = key.lower()
        match = [k for k in pool if k == lower]
    return match[0] if match else None


def _check_typos(f: _Findings) -> None:
    """Rule 4: unknown keys close to a switch or weight (DiffSinger silently ignores them)."""
    known = set(SWITCHES) | set(WEIGHTS)
    for key in _candidate_keys(f.data):
        if key in known or key in OTHER_KNOWN_KEYS:
            continue
        target = _typo_target(key, known)
        if target is None:
            continue
        current = f.loaded.get(target, _MISSING)
        now = "is not set anywhere" if current is _MISSING else f"stays {current!r}"
        if current is not _MISSING and f.src(target):
            now += f" (from {display_path(f.src(target))})"
        v = f.loaded.get(key)
        f.add(
            "warning", key, v,
            f"unknown key {key} = {_describe(v)}{_at(f.src(key))} looks like a misspelling of {target}. "
            f"DiffSinger ignores unknown keys, so {target} {now}. Fix: rename it to {target}.",
        )


# --------------------------------------------------------------------------------------------- checking


def check_variance_config(config: LoadedConfig | Mapping[str, Any]) -> list[Problem]:
    """Check a (merged) DiffSinger variance config for settings that give an empty or useless loss.

    Errors: no prediction switch enabled (the training step returns the int 0 and Lightning stops with
    "training_step must return a Tensor, a dict, or None"); a switch that is not a boolean; a weight
    that is not a number; an enabled target whose weight is zero or negative (its loss is 0 or is
    maximised). Warnings: unknown keys close to a switch or weight (a typo DiffSinger silently ignores);
    one part of the duration loss switched off by a zero sub-weight.
    """
    loaded = config if isinstance(config, LoadedConfig) else LoadedConfig(Path(""), dict(config))
    f = _Findings(loaded)
    _check_switch_types(f)
    on = enabled_switches(loaded)
    _check_some_switch_on(f, on)
    _check_weights(f, on)
    _check_typos(f)
    return f.problems


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
