"""Argument helpers shared by the command groups: option types (``bool_arg``, ``positive_int``...), options read
from config dataclasses, the output-path check every report/plot/checkpoint option goes through
(:func:`check_outputs`) and the exit-code rule (:func:`findings_exit`, ``--strict``).

A config dataclass (``ValidationConfig``, ``SlicerConfig``) declares each setting that is also a command-line
option with :func:`tts_nb_utils.io.cli_field`; :func:`add_dataclass_options` turns those fields into options
and :func:`dataclass_from_args` builds the config back from the parsed arguments, so no field is listed twice.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

from ..io import BoolParseError, parse_bool

T = TypeVar("T")


def _number(text: str, kind: type, what: str, ok) -> Any:
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
    if isinstance(value, float) and not math.isfinite(value) or not ok(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}")
    return value


def positive_int(text: str) -> int:
    """``type=`` for counts that must be at least 1 (steps, epochs, limits)."""
    return _number(text, int, "a whole number of 1 or more", lambda v: v >= 1)


def positive_float(text: str) -> float:
    """``type=`` for finite values above 0 (learning rates, seconds, GiB)."""
    return _number(text, float, "a finite number above 0", lambda v: v > 0)


def nonnegative_float(text: str) -> float:
    """``type=`` for finite values of 0 or more."""
    return _number(text, float, "a finite number of 0 or more", lambda v: v >= 0)


def finite_float(text: str) -> float:
    """``type=`` for any finite number (dB levels and thresholds): no nan, no inf."""
    return _number(text, float, "a finite number", lambda v: True)


def unit_interval(text: str) -> float:
    """``type=`` for shares from 0 to 1, both included (how much noise to remove, a mix weight)."""
    return _number(text, float, "a number from 0 to 1", lambda v: 0 <= v <= 1)


def dbfs(text: str) -> float:
    """``type=`` for levels in dBFS: finite, at most 0."""
    return _number(text, float, "a level in dBFS (a finite number of 0 or less)", lambda v: v <= 0)


def open_fraction(text: str) -> float:
    """``type=`` for factors strictly between 0 and 1 (a per-epoch LR decay)."""
    return _number(text, float, "a number between 0 and 1 (both excluded)", lambda v: 0 < v < 1)


def bool_arg(value: str) -> bool:
    """``parse_bool`` for ``argparse`` (``type=bool_arg``): a bad value is a clean usage error."""
    try:
        return parse_bool(value)
    except BoolParseError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _cli_fields(cls: type) -> list[dataclasses.Field]:
    return [f for f in dataclasses.fields(cls) if "cli" in f.metadata]


def _option_type(hint: Any) -> type:
    """The type that parses an option's value: ``float`` -> float, ``int | None`` -> int."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        (hint,) = [a for a in typing.get_args(hint) if a is not type(None)]
    return hint


def add_dataclass_options(group: argparse._ActionsContainer, cls: type) -> None:
    """Add one option per ``cli_field`` of dataclass ``cls`` to ``group``, in field order.

    The value lands under the field's name; the metavar is the one argparse would derive from the option.
    """
    hints = typing.get_type_hints(cls)
    for f in _cli_fields(cls):
        option = f.metadata["cli"]
        group.add_argument(
            option, dest=f.name, metavar=option.lstrip("-").replace("-", "_").upper(),
            type=_OPTION_PARSERS.get(option) or _PARSERS.get(_option_type(hints[f.name]), _option_type(hints[f.name])),
            default=f.default,
            help=f.metadata["help"],
        )


#: How an option's value is parsed, by its field's type: numbers must be finite (a nan threshold would pass
#: every comparison silently), counts at least 1. Ranges that depend on the meaning are the config's to check.
_PARSERS: dict[type, Any] = {float: finite_float, int: positive_int}
#: Options whose range a type alone does not give (a sample rate of 1 Hz is an int, but not a rate).
_OPTION_PARSERS: dict[str, Any] = {"--sample-rate": lambda text: sample_rate(text), "--threshold": dbfs}


def dataclass_from_args(cls: type[T], args: argparse.Namespace) -> T:
    """``cls`` with every ``cli_field`` taken from ``args`` (see :func:`add_dataclass_options`), others default."""
    return cls(**{f.name: getattr(args, f.name) for f in _cli_fields(cls)})


# -- output paths ---------------------------------------------------------------------------------------------
def check_outputs(inputs: list, **outputs: str | None) -> None:
    """Refuse (OutputPathError, exit 2) before any work each output file that is an input, lies inside an input
    folder, or is not a regular file (a folder, a device such as /dev/null, a pipe, a link).

    ``outputs`` maps each option to the path given (None when not given): ``json=`` is shown as ``--json``
    (underscores become dashes), an upper-case keyword (``OUT=``) as the positional argument it names. ``inputs`` are the files and folders the command reads."""
    from ..io import OutputPathError, check_output_file, remove_dead_parts

    given = [(k if k.isupper() else f"--{k.replace('_', '-')}", v) for k, v in outputs.items() if v is not None]
    for option, path in given:
        dest = check_output_file(path, option).absolute()
        for src in inputs:
            src_abs = Path(src).absolute()
            same = dest == src_abs or (dest.exists() and src_abs.exists() and os.path.samefile(dest, src_abs))
            if same:
                raise OutputPathError(f"{option} {path} is an input: it would be overwritten; write it "
                                      "somewhere else")
            if src_abs.is_dir() and (dest.is_relative_to(src_abs) or dest.resolve().is_relative_to(src_abs.resolve())):
                raise OutputPathError(f"{option} {path} is inside the input folder {src}: write it outside the "
                                      "folders being checked")
    paths = [Path(p).absolute() for _, p in given]
    if len(set(paths)) < len(paths):
        raise OutputPathError(f"{', '.join(o for o, _ in given)}: two outputs name the same file")
    for dest in paths:  # what a killed earlier run left beside each output (its writer's process is gone)
        remove_dead_parts(dest)


# -- the exit-code rule ---------------------------------------------------------------------------------------
def add_strict(p: argparse.ArgumentParser) -> None:
    """The ``--strict`` flag of a command whose findings have severities: warnings then also give exit 1."""
    p.add_argument("--strict", action="store_true", help="exit 1 on warnings too (default: only on errors)")


def findings_exit(errors: int, warnings: int = 0, strict: bool = False) -> int:
    """The one rule: 1 when a finding at error level was found (or a warning under ``--strict``), else 0."""
    return 1 if errors or (strict and warnings) else 0


# -- more option types ----------------------------------------------------------------------------------------
def sample_rate(text: str) -> int:
    """``type=`` for sample rates in Hz: a whole number from 1000 to 768000."""
    return _number(text, int, "a sample rate in Hz from 1000 to 768000", lambda v: 1000 <= v <= 768_000)


def seed(text: str) -> int:
    """``type=`` for random seeds: a whole number from 0 to 2**32 - 1 (what NumPy and torch both accept)."""
    return _number(text, int, f"a seed from 0 to {2**32 - 1}", lambda v: 0 <= v < 2**32)


def file_extension(text: str) -> str:
    """``type=`` for a file extension such as ``.npy`` or ``.wav.npy``: not empty, no folder separator."""
    ext = text if text.startswith(".") else f".{text}"
    if ext == "." or "/" in ext or os.sep in ext or ext.strip() != ext:
        raise argparse.ArgumentTypeError(f"{text!r} is not a file extension: give one such as .npy")
    return ext


def list_field(text: str) -> str:
    """``type=`` for a field of a ``path|speaker|language|text`` list file: no '|' and no line break."""
    if not text or any(c in text for c in "|\n\r"):
        raise argparse.ArgumentTypeError(f"{text!r}: give text without '|' or line breaks (they split a .list "
                                         "line into fields)")
    return text


# -- unreadable folders ---------------------------------------------------------------------------------------
def unreadable_folders(paths: list, what: str = "files") -> list[tuple[Path, str]]:
    """Print and return each folder under the folders in ``paths`` that cannot be listed (hidden ones skipped):
    a finding at error level, since what it holds was not judged. ``what`` names its contents in the line."""
    from ..io import walk_files

    found = [(d, why) for p in paths if Path(p).is_dir() for d, why in walk_files(p)[1]
             if not any(part.startswith(".") for part in d.relative_to(p).parts)]
    for d, why in found:
        print(f"{d}: UNREADABLE folder ({why}): its {what} were not checked; fix its permissions (chmod u+rx)")
    return found


def jobs(text: str) -> int:
    """``type=`` for ``--jobs``: processes to use, a whole number from 1 to 1024."""
    return _number(text, int, "a number of processes from 1 to 1024", lambda v: 1 <= v <= 1024)


def add_jobs(p: argparse.ArgumentParser, what: str = "files") -> None:
    """``--jobs N``, defaulting to :func:`tts_nb_utils.parallel.default_jobs` (the cores, capped)."""
    from ..parallel import JOBS_ENV, MAX_JOBS, default_jobs

    p.add_argument("--jobs", type=jobs, default=default_jobs(), metavar="N",
                   help=f"processes for the {what} (default {default_jobs()}: this machine's cores, at most "
                   f"{MAX_JOBS}; or {JOBS_ENV})")
