"""The doctor's DiffSinger checks (notebook 08; notebook 03 explains the failures): a config file, or an
experiment folder ``checkpoints/<exp>/``, through :func:`~tts_nb_utils.upstream.diffsinger_run.check_run`.

- a config file is checked as ``train.py --config FILE`` reads it; its ``base_config`` entries are relative
  to the checkout (the working directory, openvpi/DiffSinger ``753b7cc`` ``utils/hparams.py:64-82``), taken
  as the nearest folder above the file where they exist. When the same doctor call names an experiment folder
  of that checkout, the pair is checked as ``--config FILE --exp_name EXP`` (the saved config over the file);
- an experiment folder's ``config.yaml`` is what ``--exp_name EXP`` trains with whatever ``--config`` says,
  unless ``--reset`` (``utils/hparams.py:86-97``), so its problems are checked as a complete config.

The binary data is compared with the switches when ``binary_data_dir`` exists below the checkout.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..upstream.diffsinger import ConfigError, display_path, read_yaml_mapping
from ..upstream.diffsinger_check import Problem
from ..upstream.diffsinger_run import check_run
from .report import Target

_UP = 6  # folders above a config file searched for the checkout


def checkout_root(config: Path) -> Path:
    """The nearest folder at or above ``config``'s where every plain ``base_config`` entry exists (the
    file's own folder when none or when the file has no such entries)."""
    config = config.absolute()
    try:
        entries = read_yaml_mapping(config).get("base_config") or []
    except ConfigError:
        return config.parent
    entries = [e for e in (entries if isinstance(entries, list) else [entries]) if isinstance(e, str)]
    plain = [e for e in entries if not e.startswith(".")]
    for folder in [config.parent, *config.parent.parents][:_UP]:
        if plain and all((folder / e).is_file() for e in plain):
            return folder
    return config.parent


def base_files(config: Path) -> set[Path]:
    """The files ``config`` merges in through ``base_config`` (itself excluded); empty when it cannot load."""
    from ..upstream.diffsinger import load_config

    try:
        loaded = load_config(config, root=checkout_root(config))
    except ConfigError:
        return set()
    return {p for p in loaded.chain if p != loaded.path}


def check_diffsinger_config(target: Target, experiments: list[Path] = ()) -> None:
    """Check a config file, with each experiment folder of its checkout named in the same call."""
    root = checkout_root(target.path)
    mine = [e for e in experiments if _root_of_experiment(e.absolute()) == root]
    for exp in mine or [None]:
        try:
            report = check_run(target.path, root=root, exp_name=exp.name if exp else None)
        except ConfigError as e:
            target.add("error", f"DiffSinger cannot load this config: {e}", target.path,
                       "fix the file or its base_config entries (relative to the checkout)")
            return
        _add_problems(target, report.problems, root)
        target.notes += [n for n in report.notes if n not in target.notes]
    target.notes.append(f"checkout (base_config root): {root}"
                        + (f"; checked with --exp_name {', '.join(e.name for e in mine)}" if mine else ""))


def check_diffsinger_experiment(target: Target) -> None:
    """Check the saved ``config.yaml`` of ``checkpoints/<exp>/`` as the config that experiment trains with."""
    root = _root_of_experiment(target.path.absolute())
    try:
        report = check_run(target.path / "config.yaml", root=root)
    except ConfigError as e:
        target.add("error", f"the saved config cannot be read: {e}", target.path / "config.yaml",
                   "delete it and train with --reset so set_hparams saves a new one")
        return
    before = len(target.findings)
    _add_problems(target, report.problems, root)
    for f in target.findings[before:]:
        f.fix = f.fix + (f" This saved config is what train.py --exp_name {target.path.name} uses over any --config "
                  "(utils/hparams.py:86-97): fix your config and train with --reset, or edit this file.")
    target.notes += report.notes


def _root_of_experiment(folder: Path) -> Path:
    return folder.parent.parent if folder.parent.name == "checkpoints" else folder.parent


def _add_problems(target: Target, problems: list[Problem], root: Path) -> None:
    seen = {(f.what, f.where) for f in target.findings}
    for p in problems:
        what, _, fix = p.message.partition(" Fix: ")
        where = f"{display_path(p.file, root)}{_line(p.file, p.key)}#{p.key}" if p.file else f"#{p.key}"
        if (what, where) not in seen:
            target.add(p.severity, what, where, fix)
            seen.add((what, where))


def _line(file: Path, dotted: str) -> str:
    """``:N`` for the line that sets the key's last part in ``file``, or ``""``."""
    last = re.escape(dotted.split(".")[-1]).replace(r"\*", r"\w+")
    try:
        lines = file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return ""
    pattern = re.compile(rf"^\s*{last}\s*:")
    return next((f":{i}" for i, line in enumerate(lines, 1) if pattern.match(line)), "")
