"""The ``tts-nb`` command: a thin argparse layer over the same functions the notebooks call.

Each topic module that offers commands has a ``register_cli(subparsers)`` function and is listed in
``COMMAND_MODULES``; a handler returns the exit code (0 ok, 1 problems found, 2 usage errors).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from . import __version__
from .notebooks import UsageError

#: Modules whose ``register_cli(subparsers)`` adds subcommands, in the order ``tts-nb --help`` lists them.
COMMAND_MODULES: tuple[str, ...] = (
    "tts_nb_utils.cli",  # run, list
    "tts_nb_utils.dataprep.cli",  # 01: validate, denoise, slice, prepare
    "tts_nb_utils.sovits",  # 02: sovits-log
    "tts_nb_utils.configs",  # 03: check-config
    "tts_nb_utils.schedules",  # 04: lr-plan
    "tts_nb_utils.dia.memory",  # 05: dia-plan
    "tts_nb_utils.sanity",  # 06: check-features
)


def _cmd_run(args: argparse.Namespace) -> int:
    from .notebooks import format_summary, resolve_notebooks, run_notebooks

    paths = resolve_notebooks(args.notebooks)
    if not paths:
        raise UsageError("no notebooks found to run")
    params = _parse_params(args.param)
    results = run_notebooks(paths, args.out, params, kernel_name=args.kernel, timeout=args.timeout)
    print()
    print(format_summary(results))
    print(f"executed copies and report.json in {Path(args.out).resolve()}")
    return 0 if all(r.ok for r in results) else 1


def _parse_params(pairs: list[list[str]] | None) -> dict:
    from .notebooks import parse_value

    params = {}
    for name, value in pairs or []:
        if not name.isidentifier():
            raise UsageError(f"parameter name {name!r} is not a Python identifier (use -p NAME VALUE)")
        params[name] = parse_value(value)
    return params


def _cmd_list(args: argparse.Namespace) -> int:
    from .notebooks import format_parameters, resolve_notebooks

    for path in resolve_notebooks(args.notebooks):
        print(path.name)
        print(format_parameters(path))
    return 0


def register_cli(sub: argparse._SubParsersAction) -> None:
    run = sub.add_parser(
        "run",
        help="execute notebooks with papermill and write executed copies plus report.json",
        description="Execute notebooks with papermill (all of them, in order, when none is named). "
        "Each runs even if an earlier one failed. Exit 1 if any failed.",
    )
    run.add_argument("notebooks", nargs="*", metavar="NOTEBOOK", help="path, file name, stem or number (e.g. 02)")
    run.add_argument(
        "-p", "--param", nargs=2, action="append", metavar=("NAME", "VALUE"),
        help="set a parameter; VALUE is a Python/YAML literal (3, 1e-4, true, [1, 2]) or a plain string",
    )
    run.add_argument("--out", default="build/notebooks", help="folder for executed copies and report.json")
    run.add_argument("--timeout", type=float, default=None, help="per-cell timeout in seconds (default: none)")
    run.add_argument("--kernel", default=None, help="Jupyter kernel name (default: 'tts-nb' if registered, else python3)")
    run.set_defaults(func=_cmd_run)

    lst = sub.add_parser("list", help="list the notebooks with their parameters, defaults and help")
    lst.add_argument("notebooks", nargs="*", metavar="NOTEBOOK")
    lst.set_defaults(func=_cmd_list)


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
