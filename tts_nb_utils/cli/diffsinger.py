"""``tts-nb check-config`` (notebook 03): check a DiffSinger config with its ``base_config`` chain.

A thin layer over :func:`tts_nb_utils.upstream.diffsinger_check.check_config_file`.
"""

from __future__ import annotations

import argparse

from ..errors import UsageError
from ..upstream.diffsinger import ConfigError, display_path, expected_loss_terms
from ..upstream.diffsinger_check import check_config_file, format_problems, has_errors


def _cmd_check_config(args: argparse.Namespace) -> int:
    try:
        loaded, problems = check_config_file(args.file, root=args.root)
    except ConfigError as e:
        raise UsageError(str(e)) from None
    chain = " -> ".join(display_path(p) for p in loaded.chain)
    print(f"{display_path(loaded.path)}: merged {len(loaded.chain)} file(s), bases first: {chain}")
    terms = expected_loss_terms(loaded)
    print(f"loss terms this config produces: {', '.join(terms) if terms else '(none)'}")
    print(format_problems(problems))
    return 1 if has_errors(problems) else 0


def register_cli(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "check-config",
        help="check a DiffSinger variance config (with its base_config chain) for empty or zero losses",
        description="Load a DiffSinger-style YAML config with its base_config chain and report settings that "
        "make the variance task's loss empty or useless. Exit 0: no errors (warnings allowed); 1: errors; "
        "2: the file (or a base) cannot be read or parsed.",
    )
    p.add_argument("file", metavar="FILE", help="the YAML config to check")
    p.add_argument(
        "--root", default=None, metavar="DIR",
        help="folder that base_config paths not beginning with '.' are relative to (default: the working "
        "directory; DiffSinger runs from its checkout)",
    )
    p.set_defaults(func=_cmd_check_config)
