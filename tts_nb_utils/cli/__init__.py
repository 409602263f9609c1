"""The ``tts-nb`` command: a thin argparse layer over the same functions the notebooks call.

This package is the only place that parses arguments. One module per command group, each with a
``register_cli(subparsers)`` function, listed in ``COMMAND_MODULES`` in notebook order; a handler returns the
exit code (0 ok, 1 problems found, 2 usage errors: any ``UsageError`` a tool raises).
"""

from __future__ import annotations

import argparse
import importlib
import sys

from .. import __version__
from ..errors import UsageError

#: Modules whose ``register_cli(subparsers)`` adds subcommands, in the order ``tts-nb --help`` lists them.
COMMAND_MODULES: tuple[str, ...] = (
    "tts_nb_utils.cli.run",  # run, list, strip
    "tts_nb_utils.cli.dataprep",  # 01: validate, denoise, slice, prepare
    "tts_nb_utils.cli.gpt_sovits",  # 02: sovits-log
    "tts_nb_utils.cli.diffsinger",  # 03: check-config
    "tts_nb_utils.cli.schedules",  # 04: lr-plan
    "tts_nb_utils.cli.dia",  # 05: dia-plan, dia-train
    "tts_nb_utils.cli.applio",  # 06, 07: check-embedders, check-features
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tts-nb",
        description="Notebooks that reproduce and fix real TTS training failures, and the tools behind them.",
    )
    parser.add_argument("--version", action="version", version=f"tts-nb {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register_cli(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except UsageError as e:
        print(f"tts-nb {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
