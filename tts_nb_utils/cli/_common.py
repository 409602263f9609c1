"""Argument helpers shared by the command groups: ``bool_arg``, and options read from config dataclasses.

A config dataclass (``ValidationConfig``, ``SlicerConfig``) declares each setting that is also a command-line
option with :func:`tts_nb_utils.io.cli_field`; :func:`add_dataclass_options` turns those fields into options
and :func:`dataclass_from_args` builds the config back from the parsed arguments, so no field is listed twice.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import types
import typing
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
            type=_PARSERS.get(_option_type(hints[f.name]), _option_type(hints[f.name])), default=f.default,
            help=f.metadata["help"],
        )


#: How an option's value is parsed, by its field's type: numbers must be finite (a nan threshold would pass
#: every comparison silently), counts at least 1. Ranges that depend on the meaning are the config's to check.
_PARSERS: dict[type, Any] = {float: finite_float, int: positive_int}


def dataclass_from_args(cls: type[T], args: argparse.Namespace) -> T:
    """``cls`` with every ``cli_field`` taken from ``args`` (see :func:`add_dataclass_options`), others default."""
    return cls(**{f.name: getattr(args, f.name) for f in _cli_fields(cls)})
