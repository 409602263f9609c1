"""Check a merged DiffSinger config before training: the settings that give an empty or useless loss.

Notebook 03 (``03_zero_loss_config.ipynb``) and ``tts-nb check-config`` use this. The rules depend on the
task the config trains (``task_cls``; checked against openvpi/DiffSinger ``753b7cc``):

- variance (``training/variance_task.py``): every ``predict_*`` off leaves ``losses`` empty (lines 216-249),
  ``sum`` of it is the int 0 and Lightning stops; a zero or negative ``lambda_*_loss`` for an enabled
  prediction; a missing weight the task reads (lines 93-133, ``lambda_var_loss`` always);
- acoustic (``training/acoustic_task.py``): with ``use_shallow_diffusion``, ``shallow_diffusion_args.
  train_aux_decoder`` and ``train_diffusion`` both off leave ``losses`` empty (lines 149-169 with
  ``modules/toplevel.py:107-117``); a zero or negative ``lambda_aux_mel_loss``;
- no ``task_cls`` (``configs/base.yaml`` is only a base), or one ``scripts/train.py:23-25`` cannot import
  (``getattr(importlib.import_module(pkg), cls_name)``: no module file in the checkout, or no such class in
  it) - an error; an importable one this module does not know is a warning (only the generic checks run);
- a settings mapping the model reads with the switches that are on (``pitch_prediction_args`` with
  ``predict_pitch``...) set to null: model construction stops (:data:`~.diffsinger.NESTED_ARGS`);
- either task: a switch written as a quoted string (``"false"`` is True), an unknown ``diffusion_type``,
  a key under the wrong parent mapping or misspelt (upstream ignores both), and a shared base that
  upstream merges twice so that it undoes a sibling's settings (``utils/hparams.py:73``).

Each problem names the key, the file that set it, the value found and the fix. What happens around the
file (a saved experiment config, ``--hparams``, binary data) is :mod:`.diffsinger_run`.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..io import BoolParseError, parse_bool, wrap_text
from .diffsinger import (
    ACOUSTIC_SWITCHES,
    DEFAULT_WEIGHTS,
    DIFFUSION_TYPES,
    DUR_SUB_WEIGHTS,
    LOSS_TERMS,
    NESTED_ARGS,
    SWITCHES,
    TASK_KINDS,
    TERM_WEIGHTS,
    WEIGHTS,
    ConfigError,
    LoadedConfig,
    as_loaded,
    display_path,
    enabled_switches,
    get_dotted,
    load_config,
    nested_args_read,
    task_kind,
)

#: Keys the checker reads, per task kind (dotted; nested ones under their parent mapping).
KNOWN_KEYS: dict[str, frozenset[str]] = {
    "variance": frozenset({"task_cls", "diffusion_type", *SWITCHES, *WEIGHTS}),
    "acoustic": frozenset({"task_cls", "diffusion_type", "lambda_aux_mel_loss", *ACOUSTIC_SWITCHES}),
}

#: Real upstream keys (``753b7cc``) close enough to a known key to look like a typo of it; never reported.
OTHER_KNOWN_KEYS: frozenset[str] = frozenset(
    {
        "shallow_diffusion_args.aux_decoder_arch",
        "shallow_diffusion_args.aux_decoder_args",
        "shallow_diffusion_args.aux_decoder_grad",
    }
)

#: The nested mappings whose keys the checker looks into.
NESTED: tuple[str, ...] = ("dur_prediction_args", "shallow_diffusion_args")

#: How similar (difflib ratio, 0..1) an unknown key must be to a known one to be reported as a likely typo.
TYPO_CUTOFF = 0.8

_MISSING = object()


@dataclass
class Problem:
    """One finding. ``severity``: ``"error"`` (training will fail or learn nothing) or ``"warning"``
    (probably a mistake). ``key`` is dotted; ``file`` is where its value came from."""

    severity: str
    key: str
    file: Path | None
    value: Any
    message: str

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def format(self, base: str | Path | None = None) -> str:
        """One line; the file shown relative to ``base`` (default: the working directory) when below it."""
        where = f" [{display_path(self.file, base)}]" if self.file else ""
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

    def at(self, key: str) -> str:
        """`` in FILE`` for the file that set ``key`` (relative to the checkout), or ``""``."""
        src = self.src(key)
        return f" in {display_path(src, self.loaded.root)}" if src else ""

    def add(self, severity: str, key: str, value: Any, message: str) -> None:
        self.problems.append(Problem(severity, key, self.src(key), value, message))


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _describe(value: Any) -> str:
    return f"{value!r} ({type(value).__name__})"


def _yaml_key(dotted: str) -> str:
    parent, _, leaf = dotted.rpartition(".")
    return f"{parent}: {{{leaf}: ...}}" if parent else leaf


# ------------------------------------------------------------------------------------- both tasks


def _check_task(f: _Findings) -> str | None:
    """The task kind; a config without one (a shared base such as configs/base.yaml) is an error."""
    kind = task_kind(f.loaded)
    if kind is None:
        f.add(
            "error", "task_cls", f.data.get("task_cls"),
            f"task_cls is {f.data.get('task_cls')!r}{f.at('task_cls')}: this config names no task, so "
            "scripts/train.py cannot start (it imports hparams['task_cls'], scripts/train.py:22-25). It is a "
            "base for other configs. Fix: train a config whose base_config chain includes configs/variance.yaml "
            "or configs/acoustic.yaml (or set task_cls yourself).",
        )
    elif kind == "other":
        task = str(f.data["task_cls"])
        why = _import_failure(task, f.loaded.root)
        if why:
            f.add("error", "task_cls", task, f"task_cls {task!r}{f.at('task_cls')}: scripts/train.py cannot import "
                  f"it (scripts/train.py:23-25 imports the module and takes the class by name): {why}. Fix: "
                  f"{' or '.join(TASK_KINDS)}.")
        else:
            f.add("warning", "task_cls", task, f"task_cls {task!r}{f.at('task_cls')} is not one of DiffSinger's "
                  f"tasks ({', '.join(TASK_KINDS)}); only the generic checks ran.")
    return kind


def _import_failure(task: str, root: Path | None) -> str | None:
    """Why ``importlib.import_module(pkg)`` + ``getattr(.., cls)`` fails from the checkout ``root``, or None
    when it would work (or cannot be told: a package installed outside the checkout)."""
    import ast
    import importlib.util

    pkg, _, cls = task.rpartition(".")
    if not pkg:
        return "it has no module part, and import_module('') raises ValueError: Empty module name"
    base = (root or Path.cwd()).joinpath(*pkg.split("."))
    module = next((p for p in (base.with_suffix(".py"), base / "__init__.py") if p.is_file()), None)
    if module is None:
        top = pkg.split(".")[0]
        if (root or Path.cwd()).joinpath(top).is_dir() or importlib.util.find_spec(top) is None:
            return f"ModuleNotFoundError: No module named {pkg!r} (no {pkg.replace('.', '/')}.py in the checkout)"
        return None
    try:
        tree = ast.parse(module.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, SyntaxError):
        return None
    names = {n.name for n in tree.body if isinstance(n, ast.ClassDef | ast.FunctionDef)}
    names |= {t.id for n in tree.body if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)}
    names |= {a.asname or a.name for n in tree.body if isinstance(n, ast.ImportFrom) for a in n.names}
    if cls not in names and "*" not in names:
        return f"AttributeError: module {pkg!r} has no attribute {cls!r} ({display_path(module, root)})"
    return None


def _check_switch_types(f: _Findings, switches: tuple[str, ...]) -> None:
    """A switch written as a string is read by truthiness: ``"false"`` is on. Numbers work (1 is on)."""
    for s in switches:
        v = get_dotted(f.data, s, _MISSING)
        if v is _MISSING or v is None or isinstance(v, bool | int | float):
            continue
        if isinstance(v, str):
            try:
                meant = parse_bool(v)
            except BoolParseError:
                meant = None
            if meant is True:
                f.add("warning", s, v, f"{s} = {v!r}{f.at(s)} is a quoted string. It works (any non-empty "
                      f"string is True), but \"false\" would too. Fix: write `{_yaml_key(s)}: true` without quotes.")
                continue
            fix = f"write `{_yaml_key(s)}: {'false' if meant is False else 'true or false'}` without quotes"
            why = f"a quoted YAML string, which DiffSinger's `if hparams[...]` reads as {bool(v)}"
        else:
            fix, why = f"write `{_yaml_key(s)}: true` or `false`", f"not a boolean; DiffSinger reads it as {bool(v)}"
        f.add("error", s, v, f"{s} = {_describe(v)}{f.at(s)} is {why}. Fix: {fix}.")


def _check_diffusion_type(f: _Findings, needed: bool) -> None:
    v = f.data.get("diffusion_type", _MISSING)
    if not needed or v in DIFFUSION_TYPES:
        return
    found = "missing" if v is _MISSING else f"{v!r}{f.at('diffusion_type')}"
    f.add("error", "diffusion_type", None if v is _MISSING else v,
          f"diffusion_type is {found}; the task reads it and accepts only {' or '.join(DIFFUSION_TYPES)} "
          "(training/acoustic_task.py:74-75, variance_task.py:138-145). Fix: `diffusion_type: reflow` "
          "(upstream's default).")


def _check_weight(f: _Findings, w: str, needed_by: list[str], required: bool) -> None:
    """One weight: present when read, a finite number, positive when its loss is computed."""
    v = f.loaded.get(w, _MISSING)
    if v is _MISSING:
        if required:
            f.add("error", w, None,
                  f"{w} is missing from the whole base_config chain and DiffSinger reads it: training stops with "
                  f"KeyError: '{w.rpartition('.')[2]}'. Fix: add `{_yaml_key(w)}: {DEFAULT_WEIGHTS[w]}`.")
        return
    if not _is_number(v) or not math.isfinite(float(v)):
        hint = ""
        if isinstance(v, str) and _parses_as_float(v):
            hint = f" PyYAML reads 1e-3 (no dot) and quoted numbers as strings; write {float(v)!r}."
        f.add("error" if needed_by or required else "warning", w, v, f"{w} = {_describe(v)}{f.at(w)} is not a finite number; DiffSinger multiplies the "
              f"loss by it. Fix: a positive number (upstream {DEFAULT_WEIGHTS[w]}).{hint}")
    elif v < 0:
        on = f" ({', '.join(needed_by)} is on)" if needed_by else " once its loss is computed"
        f.add("error" if needed_by else "warning", w, v, f"{w} = {v!r}{f.at(w)} is negative: the optimiser "
              f"would make that loss larger{on}. Fix: a positive number (upstream {DEFAULT_WEIGHTS[w]}).")
    elif v == 0 and needed_by:
        part = w in DUR_SUB_WEIGHTS
        f.add("warning" if part else "error", w, v,
              f"{w} = 0{f.at(w)} but {', '.join(needed_by)} is on: "
              + ("this part of the duration loss is switched off. " if part else
                 "that loss term is always 0; training runs and the head learns nothing. ")
              + f"Fix: `{_yaml_key(w)}: {DEFAULT_WEIGHTS[w]}` (upstream) unless that is intended.")


def _parses_as_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


# ------------------------------------------------------------------------------------ variance task


def _check_some_prediction(f: _Findings, on: dict[str, bool]) -> None:
    """At least one prediction must be on, else the loss is the int 0 and Lightning stops."""
    if any(on.values()):
        return
    by_file: dict[str, list[str]] = {}
    for s in SWITCHES:
        src = f.src(s)
        where = display_path(src, f.loaded.root) if src else ("not set" if s not in f.data else "given")
        by_file.setdefault(where, []).append(f"{s}={f.data[s]!r}" if s in f.data else s)
    found = "; ".join(f"{', '.join(names)} ({where})" for where, names in by_file.items())
    f.problems.append(Problem(
        "error", "predict_*", f.src("predict_dur") or f.top, {s: f.data.get(s) for s in SWITCHES},
        "no prediction is enabled, so the variance task computes no loss terms: `sum(losses.values())` of the "
        "empty dict is the int 0 and Lightning stops with \"training_step must return a Tensor, a dict, or "
        f"None\". Found: {found}. Fix: set the predictions you have data for to true (e.g. `predict_dur: true`; "
        "configs/variance.yaml enables predict_dur and predict_pitch), then binarize again.",
    ))


def _check_nested_args(f: _Findings, kind: str) -> bool:
    """A settings mapping the model reads (with the switches on now) that is null or not a mapping.
    Returns False when one is (the checks that read inside it are skipped)."""
    ok = True
    for key, switch in nested_args_read(f.loaded).items():
        if (key == "shallow_diffusion_args") != (kind == "acoustic"):
            continue
        v = f.data.get(key, _MISSING)
        if v is _MISSING or isinstance(v, Mapping):  # missing: a partial config; the base chain supplies it
            continue
        _, where, raised = NESTED_ARGS[key]
        f.add("error", key, v,
              f"{key} is {_describe(v)}{f.at(key)} but {switch} is on: building the model reads settings from "
              f"it ({where}) and stops with {raised if v is None else 'an error'}. Fix: remove the line so the "
              "base config's mapping applies (configs/variance.yaml or configs/acoustic.yaml has one), or write "
              "the whole mapping.")
        ok = False
    return ok


def _check_variance(f: _Findings) -> None:
    _check_switch_types(f, SWITCHES)
    on = enabled_switches(f.loaded)
    _check_some_prediction(f, on)
    dur_args_ok = _check_nested_args(f, "variance") or isinstance(f.data.get("dur_prediction_args"), Mapping)
    for term, switches in LOSS_TERMS.items():
        by = [s for s in switches if on[s]]
        _check_weight(f, TERM_WEIGHTS[term], by, required=bool(by) or term == "var_loss")
    for w in DUR_SUB_WEIGHTS if dur_args_ok else ():
        _check_weight(f, w, ["predict_dur"] if on["predict_dur"] else [], required=on["predict_dur"])
    subs = [f.loaded.get(w) for w in DUR_SUB_WEIGHTS]
    if on["predict_dur"] and all(_is_number(v) and v == 0 for v in subs):
        f.add("error", "dur_prediction_args", subs, "lambda_pdur_loss, lambda_wdur_loss and lambda_sdur_loss "
              "are all 0, so dur_loss is always 0 and the duration predictor learns nothing. Fix: upstream uses "
              "0.3, 1.0 and 3.0.")
    _check_diffusion_type(f, needed=any(on[s] for s in SWITCHES[1:]))


# ------------------------------------------------------------------------------------ acoustic task


def _check_acoustic(f: _Findings) -> None:
    _check_switch_types(f, ACOUSTIC_SWITCHES)
    _check_diffusion_type(f, needed=True)
    if not f.data.get("use_shallow_diffusion") or not _check_nested_args(f, "acoustic"):
        return
    aux, diff = (get_dotted(f.data, s, _MISSING) for s in ACOUSTIC_SWITCHES[1:3])
    for key, v in zip(ACOUSTIC_SWITCHES[1:3], (aux, diff), strict=True):
        if v is _MISSING:
            f.add("error", key, None, f"use_shallow_diffusion is on but {key} is not set: DiffSingerAcoustic "
                  f"reads it (modules/toplevel.py:47-48) and stops with a KeyError. Fix: `{_yaml_key(key)}: true`.")
    if aux is not _MISSING and diff is not _MISSING and not aux and not diff:
        f.problems.append(Problem(
              "error", "shallow_diffusion_args.train_*", f.src(ACOUSTIC_SWITCHES[2]),
              {"train_aux_decoder": aux, "train_diffusion": diff},
              f"use_shallow_diffusion is on and shallow_diffusion_args.train_aux_decoder = {aux!r} and "
              f"train_diffusion = {diff!r}{f.at('shallow_diffusion_args.train_diffusion')}: the model returns "
              "neither output, the acoustic task computes no loss terms, `sum(losses.values())` is the int 0 and "
              "Lightning stops with \"training_step must return a Tensor, a dict, or None\". Fix: set "
              "train_diffusion: true (configs/acoustic.yaml trains both), or use_shallow_diffusion: false."))
    trains_aux = aux is not _MISSING and bool(aux)
    _check_weight(f, "lambda_aux_mel_loss", ["train_aux_decoder"] if trains_aux else [], required=True)


# ------------------------------------------------------------------------------------ keys and bases


def _candidate_keys(data: Mapping[str, Any]) -> list[str]:
    keys = [k for k in data if isinstance(k, str)]
    for parent in NESTED:
        if isinstance(data.get(parent), Mapping):
            keys += [f"{parent}.{k}" for k in data[parent] if isinstance(k, str)]
    return keys


def _check_keys(f: _Findings, known: frozenset[str]) -> None:
    """Keys under the wrong parent, then keys close to a known one: upstream silently ignores both."""
    by_leaf = {k.rpartition(".")[2]: k for k in known}
    for key in _candidate_keys(f.data):
        if key in known or key in OTHER_KNOWN_KEYS:
            continue
        v = f.loaded.get(key)
        home = by_leaf.get(key.rpartition(".")[2])
        if home is not None:
            f.add("warning", key, v, f"{key} = {v!r}{f.at(key)} belongs "
                  f"{'under ' + home.rpartition('.')[0] if '.' in home else 'at the top level'}: DiffSinger reads "
                  f"{home} and ignores it here. Fix: move it to `{_yaml_key(home)}`.")
            continue
        pool = [k for k in known if k.rpartition(".")[0] == key.rpartition(".")[0]]
        match = difflib.get_close_matches(key, pool, n=1, cutoff=TYPO_CUTOFF) or [k for k in pool if k == key.lower()]
        if match:
            now = f.loaded.get(match[0], _MISSING)
            state = "is not set anywhere" if now is _MISSING else f"stays {now!r}{f.at(match[0]).replace(' in ', ' from ')}"
            f.add("warning", key, v, f"unknown key {key} = {_describe(v)}{f.at(key)} looks like a misspelling of "
                  f"{match[0]}. DiffSinger ignores unknown keys, so {match[0]} {state}. Fix: rename it.")


def _leaves(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in data.items():
        if isinstance(v, Mapping) and v:
            out.update(_leaves(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _check_repeated_bases(f: _Findings) -> None:
    """A base merged twice (``./common.yaml`` named by two siblings) re-applies itself over the first sibling."""
    cfg = f.loaded
    if not cfg.repeated or cfg.root is None:
        return
    try:
        once = _leaves(load_config(cfg.path, cfg.root, dedupe_files=True).data)
    except ConfigError:
        return
    twice = _leaves(cfg.data)
    undone = [k for k in twice if k != "base_config" and k in once and once[k] != twice[k]]
    if not undone:
        return
    names = ", ".join(display_path(p, cfg.root) for p in cfg.repeated)
    shown = "; ".join(f"{k}: {once[k]!r} -> {twice[k]!r}" for k in undone[:4]) + ("; ..." if len(undone) > 4 else "")
    f.add("warning", "base_config", [str(p) for p in cfg.repeated],
          f"{names} is merged more than once: DiffSinger skips a base only when the entry *as written* was loaded "
          "before (utils/hparams.py:73), and entries beginning with '.' never are, so the second copy undoes what "
          f"the files between set ({len(undone)} key(s): {shown}). Fix: name the shared base without the leading "
          "'.', relative to the checkout (e.g. configs/common.yaml), in every file, or only once in the top file.")


# --------------------------------------------------------------------------------------------- checking


def check_config(config: LoadedConfig | Mapping[str, Any]) -> list[Problem]:
    """Check a merged DiffSinger config (loaded from files, or a plain mapping) by its task; see the module
    docstring for the rules. Returns the problems, errors and warnings."""
    f = _Findings(as_loaded(config))
    kind = _check_task(f)
    if kind == "variance":
        _check_variance(f)
    elif kind == "acoustic":
        _check_acoustic(f)
    if kind in KNOWN_KEYS:
        _check_keys(f, KNOWN_KEYS[kind])
    _check_repeated_bases(f)
    return f.problems


def has_errors(problems: list[Problem]) -> bool:
    """True when any problem is an error."""
    return any(p.is_error for p in problems)


def wrap_lines(lines: list[str], width: int | None) -> str:
    """``lines`` joined; with ``width``, each longer line wrapped there, continuation lines indented."""
    return wrap_text("\n".join(lines), width) if width else "\n".join(lines)


def format_problems(problems: list[Problem], base: str | Path | None = None, width: int | None = None) -> str:
    """One line per problem (errors first; files relative to ``base``), then a count; ``width``: wrap there."""
    errors = sum(p.is_error for p in problems)
    lines = [p.format(base) for p in sorted(problems, key=lambda p: (not p.is_error, p.key))]
    lines.append(f"{errors} error(s), {len(problems) - errors} warning(s)")
    return wrap_lines(lines, width)
