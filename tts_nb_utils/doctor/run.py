"""Run the doctor: find what each path holds (:mod:`.kinds`) and run that kind's checks, into one
:class:`~.report.DoctorReport`. ``tts-nb doctor`` and notebook 08 call :func:`run_doctor`.

A path that does not exist is a usage error; a path where nothing is recognised becomes an ``unknown`` target
and a folder that cannot be listed an ``unreadable`` one, each with an error finding (nothing was checked
there, so the report is no all-clear) while the other paths are still judged; a check that fails on a file it cannot read becomes an error finding naming the file, and the others go on.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path

from ..errors import UsageError
from .check_audio import AUDIO_PRESETS
from .check_diffsinger import base_files
from .kinds import KINDS, find, upstream_shipped
from .report import DoctorReport, Target


def discover(paths: list[str | os.PathLike], skipped: list[str] | None = None) -> list[Target]:
    """One target per recognised path under each given PATH (``unknown`` when none). DiffSinger configs that
    another found config merges in (its ``base_config`` files) are bases, not configs to train: left out, and
    so are the templates and bases a DiffSinger checkout ships (:func:`.kinds.upstream_shipped`), which are
    appended to ``skipped`` when given."""
    targets: list[Target] = []
    for given in paths:
        p = Path(given)
        if not p.exists():
            raise UsageError(f"{p}: no such file or folder")
        found = find(p)
        new = [Target(path, kind, str(given)) for path, kind in found] or [Target(p, "unknown", str(given))]
        for t in new:
            if t.kind == "unknown":  # nothing was checked: never an all-clear
                t.add("error", f"nothing to check: no {', '.join(KINDS)} found here", t.path,
                      "give the folder of your project or data (tts-nb doctor --help lists what it recognises)")
            elif t.kind == "unreadable":
                t.add("error", "folder cannot be read (permission denied): what it holds was not checked",
                      t.path, "fix its permissions (chmod u+rx) and run the doctor again")
        targets += new
    shipped = {t.path: upstream_shipped(t.path) for t in targets if t.kind == "diffsinger-config"}
    if skipped is not None:
        skipped += [str(t.path) for t in targets if shipped.get(t.path)]
    targets = [t for t in targets if not shipped.get(t.path)]
    bases = {b for t in targets if t.kind == "diffsinger-config" for b in base_files(t.path.absolute())}
    return [t for t in targets if not (t.kind == "diffsinger-config" and t.path.absolute() in bases)]


#: Each kind's check as (module, function): imported only when a target of that kind is found, so a doctor
#: run on audio folders and configs loads no torch (the GPT-SoVITS and Coqui checks do).
CHECKS = {
    "audio": (".check_audio", "check_audio"),
    "gpt-sovits": (".check_sovits", "check_sovits"),
    "diffsinger-config": (".check_diffsinger", "check_diffsinger_config"),
    "diffsinger-experiment": (".check_diffsinger", "check_diffsinger_experiment"),
    "coqui-run": (".check_coqui", "check_coqui"),
    "applio-model": (".check_applio", "check_applio"),
    "dia-config": (".check_dia", "check_dia"),
}


def _check(kind: str):
    module, name = CHECKS[kind]
    return getattr(importlib.import_module(module, __package__), name)


def run_doctor(paths: list[str | os.PathLike], gpu_gib: float | None = None,
               audio_preset: str = "none") -> DoctorReport:
    """Check every path; see the module docstring. ``gpu_gib`` overrides a Dia config's card size,
    ``audio_preset="gpt-sovits"`` holds audio folders to the 32 kHz mono int16 clips GPT-SoVITS trains on."""
    if audio_preset not in AUDIO_PRESETS:
        raise UsageError(f"audio preset {audio_preset!r}: use one of {', '.join(AUDIO_PRESETS)}")
    if gpu_gib is not None and not gpu_gib > 0:
        raise UsageError(f"--gpu-gib {gpu_gib}: give the card's memory in GiB (above 0)")
    skipped: list[str] = []
    targets = discover(paths, skipped)
    experiments = [t.path.absolute() for t in targets if t.kind == "diffsinger-experiment"]
    extra = {"audio": (audio_preset,), "diffsinger-config": (experiments,), "dia-config": (gpu_gib,)}
    for t in targets:
        if t.kind in CHECKS:
            try:
                _check(t.kind)(t, *extra.get(t.kind, ()))
            except (OSError, UnicodeDecodeError) as e:
                where = Path(e.filename) if getattr(e, "filename", None) else t.path
                t.add("error", f"cannot read: {getattr(e, 'strerror', None) or e}", where, "check the file and "
                      "its permissions")
    return DoctorReport(targets, skipped)
