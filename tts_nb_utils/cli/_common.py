"""Argument types shared by the command groups."""

from __future__ import annotations

import argparse

from ..io import BoolParseError, parse_bool


def bool_arg(value: str) -> bool:
    """``parse_bool`` for ``argparse`` (``type=bool_arg``): a bad value is a clean usage error."""
    try:
        return parse_bool(value)
    except BoolParseError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
