"""Check the config a DiffSinger run will really use: the file, its saved experiment config, ``--hparams``
and the binary data it reads.

Notebook 03 (``03_zero_loss_config.ipynb``) and ``tts-nb check-config`` call :func:`check_run`, which
loads the file like ``set_hparams`` (:mod:`.diffsinger`), applies ``checkpoints/<exp>/config.yaml`` and
``--hparams`` like it (:mod:`.diffsinger_experiment`), checks the result (:mod:`.diffsinger_check`) and
adds two problems a corrected file cannot show: a saved config that still overrides it (fix: ``--reset``),
and a switch turned on since the data was binarized (fix: binarize again). :func:`format_report` prints it
short: paths relative to the checkout, the merge chain once.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .diffsinger import (
    ACOUSTIC_SWITCHES,
    DUR_SUB_WEIGHTS,
    SWITCHES,
    TERM_WEIGHTS,
    ConfigError,
    LoadedConfig,
    display_path,
    expected_loss_terms,
    get_dotted,
    load_config,
    task_kind,
)
from .diffsinger_check import Problem, check_config, format_problems, wrap_lines
from .diffsinger_experiment import (
    HPARAMS_SOURCE,
    Override,
    apply_hparams,
    apply_saved_config,
    binary_fields,
    flat_dotted_keys,
    missing_fields,
    saved_config_path,
)

#: Top-level keys whose override by a saved config changes what the checker checks (an error, not a warning).
CHECKED_KEYS: frozenset[str] = frozenset(
    {"task_cls", "diffusion_type", "lambda_aux_mel_loss", *SWITCHES, *TERM_WEIGHTS.values(),
     *(k.split(".")[0] for k in (*DUR_SUB_WEIGHTS, *ACOUSTIC_SWITCHES))}
)


@dataclass
class RunReport:
    """What :func:`check_run` found: the effective config, its task kind, the problems, and notes (what was
    not checked, and why)."""

    loaded: LoadedConfig
    kind: str | None
    problems: list[Problem]
    notes: list[str] = field(default_factory=list)


def _command(script: str, config: LoadedConfig, extra: str = "") -> str:
    return f"python scripts/{script}.py --config {display_path(config.path, config.root)}{extra}"


def _saved_problem(config: LoadedConfig, saved: Path, exp_name: str, changed: list[Override]) -> Problem:
    checked = [o for o in changed if o.key in CHECKED_KEYS]
    shown = "; ".join(f"{o.key}: {o.file_value!r} in the file -> {o.value!r} saved" for o in (checked or changed)[:4])
    more = f" (+{len(changed) - 4} more)" if len(changed) > 4 else ""
    return Problem(
        "error" if checked else "warning", "checkpoints", saved, [o.key for o in changed],
        f"{display_path(saved, config.root)} was saved by an earlier run and set_hparams puts it over your file "
        f"unless --reset is given (utils/hparams.py:86-97), so {len(changed)} key(s) keep their old values: "
        f"{shown}{more}. Fix: {_command('train', config, f' --exp_name {exp_name} --reset')}",
    )


def _flat_key_problem(config: LoadedConfig, key: str, value: Any) -> Problem:
    meant = get_dotted(config.data, key, None)
    now = f"stays {meant!r}" if meant is not None else "is not set"
    src = config.source(key)
    parent, _, leaf = key.rpartition(".")
    return Problem(
        "warning", key, HPARAMS_SOURCE, value,
        f"--hparams {key}={value!r}: DiffSinger does not follow dots in --hparams keys; it adds a new top-level "
        f"key named {key!r} that nothing reads (utils/hparams.py:104-106), so {key} {now}"
        f"{f' (from {display_path(src, config.root)})' if src else ''}. Fix: set it in your YAML file "
        f"(`{parent}: {{{leaf}: {value!r}}}`); --hparams changes top-level keys only.",
    )


def _binary_problems(config: LoadedConfig, binary_dir: Path, lacking: dict[str, list[str]]) -> list[Problem]:
    collater = "AcousticDataset.collater (training/acoustic_task.py:55-56)" if task_kind(config) == "acoustic" \
        else "VarianceDataset.collater (training/variance_task.py:47-69)"
    return [
        Problem(
            "error", switch, config.source(switch), True,
            f"{switch} is on but {display_path(binary_dir, config.root)}/train.meta has no {', '.join(fields)}: "
            f"the data was binarized while {switch} was off (the binarizer stores only the fields of the switches "
            f"that are on), and {collater} stops with KeyError: {fields[0]!r}. Fix: {_command('binarize', config)}",
        )
        for switch, fields in lacking.items()
    ]


def check_run(
    path: str | os.PathLike,
    root: str | os.PathLike | None = None,
    *,
    exp_name: str | None = None,
    reset: bool = False,
    hparams: str = "",
    binary_dir: str | os.PathLike | None = None,
    config_name: str | None = None,
) -> RunReport:
    """Load ``path`` (its ``base_config`` relative to ``root``, the checkout), apply the experiment's saved
    config unless ``reset`` and the ``hparams`` overrides in upstream's order (``utils/hparams.py:92-110``:
    file, saved config, then ``--hparams``), and check the result. A saved key that ``--hparams`` sets again
    is not reported as stale. ``binary_dir``: the binary folder to compare the switches with; default the
    config's ``binary_data_dir`` when that folder exists. ``config_name``: what is passed to ``--config``
    (see :func:`~.diffsinger.load_config`). Raises ConfigError when a file or an override cannot be read as
    upstream reads it."""
    loaded = load_config(path, root=root, config_name=config_name)
    base = loaded.root or Path.cwd()
    problems: list[Problem] = []
    notes: list[str] = []
    changed: list[Override] = []
    saved = saved_config_path(base, exp_name) if exp_name else None
    if saved is not None:
        changed = apply_saved_config(loaded, saved, reset=reset)
        if not changed and not saved.is_file():
            notes.append(f"no saved config at {display_path(saved, base)} (a first run saves one there)")
    if hparams:
        values = apply_hparams(loaded, hparams)
        problems += [_flat_key_problem(loaded, k, values[k]) for k in flat_dotted_keys(values)]
        changed = [o for o in changed if loaded.source(o.key) != HPARAMS_SOURCE]
    if changed and saved is not None:
        problems.append(_saved_problem(loaded, saved, exp_name or "", changed))
    problems += check_config(loaded)
    _check_binary(loaded, binary_dir, problems, notes)
    return RunReport(loaded, task_kind(loaded), problems, notes)


def _check_binary(loaded: LoadedConfig, binary_dir: Any, problems: list[Problem], notes: list[str]) -> None:
    base = loaded.root or Path.cwd()
    if binary_dir is None:
        configured = loaded.data.get("binary_data_dir")
        if not configured or not (base / str(configured)).is_dir():
            if configured:
                notes.append(f"binary data not checked: {configured} (binary_data_dir) does not exist yet")
            return
        binary_dir = base / str(configured)
    folder = Path(binary_dir)
    if not folder.is_dir():
        what = "is a file, not a folder" if folder.is_file() else "does not exist"
        raise ConfigError(f"binary folder {folder} {what}; pass the binary_data_dir of your run")
    problems += _binary_problems(loaded, folder, missing_fields(loaded, binary_fields(folder)))


def format_report(report: RunReport, width: int | None = None) -> str:
    """The task, the merge chain (once), the loss terms, notes and problems; paths relative to the checkout;
    ``width``: lines wrapped there (continuations indented)."""
    cfg, base = report.loaded, report.loaded.root
    task = cfg.data.get("task_cls")
    where = f", from {display_path(cfg.source('task_cls'), base)}" if cfg.source("task_cls") else ""
    kind = f"{report.kind} task ({task}{where})" if report.kind else "no task (task_cls not set)"
    terms = expected_loss_terms(cfg) if report.kind in ("variance", "acoustic") else []
    lines = [
        f"{display_path(cfg.path, base)}: {kind}",
        "merged, bases first: " + " -> ".join(display_path(p, base) for p in cfg.chain),
    ]
    if report.kind in ("variance", "acoustic"):
        lines.append(f"loss terms: {', '.join(terms) if terms else '(none)'}")
    lines += [f"note: {n}" for n in report.notes]
    return wrap_lines(lines, width) + "\n" + format_problems(report.problems, base, width)
