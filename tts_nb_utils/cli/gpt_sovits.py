"""``tts-nb sovits-log`` (notebook 02): decode GPT-SoVITS ``s2_train.py`` loss lines and find the first NaN."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import UsageError
from ..upstream.gpt_sovits import (
    S2_LEARNING_RATE,
    S2_LR_DECAY,
    SovitsLogError,
    decode_sovits_log,
    scan_sovits_log,
)


def _cmd_sovits_log(args: argparse.Namespace) -> int:
    target = args.log
    if Path(target).is_file():
        scan = scan_sovits_log(target, args.lr0, args.lr_decay)
        if not scan.entries:
            raise UsageError(f"{target}: no GPT-SoVITS loss lines found ([loss_disc, ..., global_step, lr])")
        for e in scan.entries:
            print(f"line {e.line_number}: {e}")
        for n, msg in scan.problems:
            print(f"line {n}: could not decode: {msg}")
        bad = scan.first_nonfinite
        if bad:
            print(f"first non-finite loss line: line {bad.line_number}, epoch {bad.epoch}, step {bad.global_step}")
        return 1 if bad or scan.problems else 0
    if "[" not in target:
        raise UsageError(f"{target!r} is neither a file nor a loss line like '[nan, nan, ..., 200, 9.99e-05]'")
    try:
        entry = decode_sovits_log(target, args.lr0, args.lr_decay)
    except SovitsLogError as e:
        raise UsageError(str(e)) from None
    print(entry)
    return 0 if entry.finite else 1


def register_cli(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sovits-log",
        help="decode GPT-SoVITS SoVITS loss lines (a train.log or one line): names, epoch, first NaN",
        description="Name the entries of GPT-SoVITS s2_train.py loss lines and infer the epoch from the LR. "
        "Exit 0 when all losses are finite, 1 when a NaN/Inf line (or an undecodable loss line) is found, "
        "2 for usage errors.",
    )
    p.add_argument("log", help="path to train.log, or one loss line in quotes")
    p.add_argument("--lr0", type=float, default=S2_LEARNING_RATE, help="train.learning_rate (default 1e-4)")
    p.add_argument("--lr-decay", type=float, default=S2_LR_DECAY, help="train.lr_decay (default 0.999875)")
    p.set_defaults(func=_cmd_sovits_log)
