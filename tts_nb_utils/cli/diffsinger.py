"""``tts-nb check-config`` (notebook 03): check a DiffSinger config as a training run will read it.

A thin layer over :func:`tts_nb_utils.upstream.diffsinger_run.check_run` and ``format_report``.
"""

from __future__ import annotations

import argparse
import shutil

from ..errors import UsageError
from ..upstream.diffsinger import ConfigError, config_arg
from ..upstream.diffsinger_check import has_errors
from ..upstream.diffsinger_run import check_run, format_report
from ._common import add_strict, findings_exit


def _hparams(text: str) -> str:
    """``type=`` for ``--hparams``: comma-separated ``key=value`` items, each with a key."""
    for item in text.split(","):
        if item.strip() and (item.count("=") != 1 or not item.split("=")[0].strip()):
            raise argparse.ArgumentTypeError(f"item {item!r} is not key=value (e.g. lambda_dur_loss=1.0)")
    return text


def _cmd_check_config(args: argparse.Namespace) -> int:
    try:
        report = check_run(
            args.file, root=args.root, exp_name=args.exp_name, reset=args.reset,
            hparams=args.hparams, binary_dir=args.binary_dir, config_name=config_arg(args.file, args.root),
        )
    except ConfigError as e:
        raise UsageError(str(e)) from None
    print(format_report(report, width=min(shutil.get_terminal_size((100, 24)).columns, 120)))
    warnings = sum(p.severity == "warning" for p in report.problems)
    return findings_exit(int(has_errors(report.problems)), warnings, args.strict)


def register_cli(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "check-config",
        help="check a DiffSinger config (variance or acoustic) as training will read it",
        description="Load a DiffSinger YAML config with its base_config chain as utils/hparams.py does, apply "
        "the experiment's saved config and --hparams as a run would, and report what makes the loss empty or "
        "useless, or the binary data stale.",
    )
    p.add_argument("file", metavar="FILE", help="the YAML config to check (what you pass to --config)")
    p.add_argument(
        "--root", default=None, metavar="DIR",
        help="the DiffSinger checkout: base_config paths not beginning with '.', checkpoints/ and "
        "binary_data_dir are relative to it (default: the working directory)",
    )
    p.add_argument("--exp-name", "--exp_name", dest="exp_name", default=None, metavar="NAME",
                   help="the experiment name you train with: its saved checkpoints/NAME/config.yaml is applied")
    p.add_argument("--reset", action="store_true", help="as train.py --reset: ignore the saved config")
    p.add_argument("--hparams", type=_hparams, default="", metavar="K=V,...", help="overrides, parsed as train.py parses them")
    p.add_argument("--binary-dir", default=None, metavar="DIR",
                   help="binary data folder to compare with the switches (default: binary_data_dir, if it exists)")
    add_strict(p)
    p.set_defaults(func=_cmd_check_config)
