"""The ``tts-nb`` command: a thin argparse layer over the same functions the notebooks call.

This package is the only place that parses arguments. One module per command group, each with a
``register_cli(subparsers)`` function, listed in ``COMMAND_MODULES`` in notebook order; a handler returns the
exit code under the one rule every command follows (:data:`EXIT_CODES`, shown under each ``--help``): 0 no
finding at error level, 1 findings at error level, 2 usage errors (any ``UsageError`` a tool raises, an input
that cannot be read, a refused output path), 3 a bug in tts-nb. A reader that goes away (``tts-nb doctor | head``)
ends the output quietly; the command still finishes and returns its code.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Any

from .. import __version__
from ..errors import UsageError

#: Modules whose ``register_cli(subparsers)`` adds subcommands, in the order ``tts-nb --help`` lists them, with
#: the commands each adds: ``tts-nb CMD ...`` imports only CMD's module (a command missing here loads them all).
COMMAND_MODULES: dict[str, tuple[str, ...]] = {
    "tts_nb_utils.cli.run": ("run", "sweep", "list", "docs", "strip"),
    "tts_nb_utils.cli.dataprep": ("validate", "denoise", "slice", "prepare"),  # 01
    "tts_nb_utils.cli.gpt_sovits": ("sovits-log", "scan-checkpoints"),  # 02
    "tts_nb_utils.cli.diffsinger": ("check-config",),  # 03
    "tts_nb_utils.cli.schedules": ("lr-plan",),  # 04
    "tts_nb_utils.cli.dia": ("dia-plan", "dia-train"),  # 05
    "tts_nb_utils.cli.applio": ("check-embedders", "check-features"),  # 06, 07
    "tts_nb_utils.cli.doctor": ("doctor",),  # 08
}


def modules_for(argv: list[str] | None) -> list[str]:
    """The command modules ``argv`` needs: the one that defines its command, or all (``tts-nb --help``, no
    command, a command not in :data:`COMMAND_MODULES`)."""
    command = next((a for a in argv or [] if not a.startswith("-")), None)
    return [m for m, cmds in COMMAND_MODULES.items() if command in cmds] or list(COMMAND_MODULES)


#: The exit-code rule of every command, printed under each ``--help`` and in the README.
EXIT_CODES = (
    "exit codes (every command): 0 no finding at error level (warnings alone give 0 unless --strict); "
    "1 findings at error level; 2 usage error (bad option, missing or unreadable input, output path refused); "
    "3 a bug in tts-nb (run again with --debug and report it)."
)


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The ``tts-nb`` parser with the commands ``argv`` needs (:func:`modules_for`; all when None)."""
    parser = argparse.ArgumentParser(
        prog="tts-nb",
        description="Notebooks that reproduce and fix real TTS training failures, and the tools behind them.",
        epilog=EXIT_CODES,
    )
    parser.add_argument("--version", action="version", version=f"tts-nb {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an internal error (exit 3)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in modules_for(argv) if argv is not None else COMMAND_MODULES:
        importlib.import_module(name).register_cli(sub)
    for command in sub.choices.values():
        command.epilog = EXIT_CODES
    return parser


class _QuietPipe:
    """``sys.stdout`` that turns a reader going away (EPIPE: ``tts-nb doctor | head``) into silence: later
    writes go to /dev/null and the command finishes, so its exit code still follows the rule."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def _gone(self) -> None:
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self._stream.fileno())  # the interpreter's last flush lands there too
            os.close(devnull)
        except (OSError, ValueError, AttributeError):  # no file descriptor (a test's capture)
            pass

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            self._gone()
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            self._gone()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def main(argv: list[str] | None = None) -> int:
    """Run one command. Exit codes: 0 ok, 1 findings, 2 usage errors (also a file that cannot be read or
    written), 3 an internal error: one line naming the command, the error and a hint; ``--debug`` (or
    ``TTS_NB_DEBUG=1``) shows the traceback instead."""
    for stream in (sys.stdout, sys.stderr):  # a file name that is not UTF-8 prints escaped, never crashes a run
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(argv)
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # argparse has printed the usage error (2) or the help (0)
        return int(e.code or 0)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    debug = args.debug or os.environ.get("TTS_NB_DEBUG", "") not in ("", "0")
    stdout = sys.stdout
    sys.stdout = _QuietPipe(stdout)
    try:
        code = int(args.func(args) or 0)
        sys.stdout.flush()
        return code
    except UsageError as e:
        print(f"tts-nb {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # a write outside sys.stdout (a library's own handle) met the closed pipe
        _QuietPipe(stdout)._gone()
        return 0
    except OSError as e:  # a path that cannot be read or written: the user's to fix
        if debug:
            raise
        where = f": {e.filename}" if e.filename else ""
        print(f"tts-nb {args.command}: error: {e.strerror or e}{where}; check the path and its permissions",
              file=sys.stderr)
        return 2
    except Exception as e:  # noqa: BLE001 - the last line of defence: one clear line, never exit 1
        if debug:
            raise
        first = (str(e).strip().splitlines() or [""])[0][:300]  # torch's dispatcher messages run to 90 lines
        print(f"tts-nb {args.command}: internal error: {type(e).__name__}: {first}. This is a bug in tts-nb; run "
              f"again with --debug for the traceback and report it with the command line.", file=sys.stderr)
        return 3
    finally:
        sys.stdout = stdout


if __name__ == "__main__":
    sys.exit(main())
