"""``tts-nb sovits-log`` and ``tts-nb scan-checkpoints`` (notebook 02): GPT-SoVITS loss lines and NaN checkpoints."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from ..errors import UsageError
from ..io import wrap_text
from ..upstream.gpt_sovits import (
    S2_LEARNING_RATE,
    S2_LR_DECAY,
    SovitsLogError,
    decode_sovits_log,
    scan_sovits_log,
)
from ._common import check_outputs, open_fraction, positive_float, unreadable_folders


def _cmd_sovits_log(args: argparse.Namespace) -> int:
    target = args.log
    if Path(target).is_file():
        scan = scan_sovits_log(target, args.lr0, args.lr_decay)
        if not scan.entries:
            raise UsageError(f"{target}: no GPT-SoVITS loss lines found ([loss_disc, ..., global_step, lr])")
        for e in scan.entries if args.all else []:
            print(f"line {e.line_number}: {e}")
        for n, msg in scan.problems:
            print(f"line {n}: could not decode: {msg}")
        print(_wrap(scan.summary()))
        return 1 if scan.first_nonfinite or scan.problems else 0
    if "[" not in target:
        raise UsageError(f"{target!r} is neither a file nor a loss line like '[nan, nan, ..., 200, 9.99e-05]'")
    try:
        entry = decode_sovits_log(target, args.lr0, args.lr_decay)
    except SovitsLogError as e:
        raise UsageError(str(e)) from None
    print(_wrap(str(entry)))
    return 0 if entry.finite else 1


def _wrap(text: str, width: int = 118) -> str:
    return wrap_text(text, width, break_long_words=True)


def _cmd_scan_checkpoints(args: argparse.Namespace) -> int:
    from ..diagnose.checkpoints import checkpoint_files, scan_checkpoints
    from ..diagnose.resume import experiments
    from ..io import atomic_write_json

    check_outputs(args.paths, json=args.json)
    files = checkpoint_files(args.paths)
    unreadable = unreadable_folders(args.paths, "checkpoints")  # it may hold the NaN one: never an all-clear
    if not files and not unreadable:
        raise UsageError(f"no checkpoint files ({', '.join(('.pth', '.pt', '.ckpt'))}) in {' '.join(args.paths)}")
    reports = scan_checkpoints(files, trust=args.trust)
    given = [Path(p) for p in args.paths]
    root = Path(os.path.commonpath([str(p if p.is_dir() else p.parent) for p in given]))
    verdicts = experiments(reports)
    for v in verdicts:
        print(v.format(root))
    bad = [r for r in reports if not r.clean]
    failing = [v for v in verdicts if not v.ok]
    print(f"{len(reports)} checkpoint(s) in {len(verdicts)} folder(s): {len(bad)} hold NaN/Inf or cannot be read; "
          f"{len(failing)} folder(s) would not resume cleanly.")
    if args.json:
        atomic_write_json(args.json, {"experiments": [{
            "folder": str(v.folder), "ok": v.ok, "advice": v.advice,
            "problems": [{"severity": s, "text": t, "where": str(w)} for s, t, w in v.problems],
            "resume_from": [str(r.path) for r in v.resume], "move_out": [str(r.path) for r in v.move],
            "checkpoints": [{"path": str(r.path), "kind": r.kind, "step": r.step, "epoch": r.epoch,
                             "tensors": r.tensors, "clean": r.clean, "error": r.error, "missing": r.missing,
                             "about": r.about, "bad": [vars(b) for b in r.bad]} for r in v.reports],
        } for v in verdicts], "unreadable_folders": [{"path": str(d), "error": why} for d, why in unreadable]})
    return 1 if bad or failing or unreadable else 0


def register_cli(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sovits-log",
        help="decode GPT-SoVITS SoVITS loss lines (a train.log or one line): first NaN, intermittent or persistent",
        description="Name the entries of GPT-SoVITS s2_train.py loss lines; the epoch comes from the Train Epoch line "
        "(from the LR for a single line). For a train.log: how many lines are NaN, the first one, and whether "
        "NaN is intermittent (skipped steps) or persistent. "
        "Exit 0 when all losses are finite, 1 when a NaN/Inf line (or an undecodable loss line) is found, "
        "2 for usage errors.",
    )
    p.add_argument("log", help="path to train.log, or one loss line in quotes")
    p.add_argument("--lr0", type=positive_float, default=S2_LEARNING_RATE, help="train.learning_rate (default 1e-4)")
    p.add_argument("--lr-decay", type=open_fraction, default=S2_LR_DECAY, help="train.lr_decay (default 0.999875)")
    p.add_argument("--all", action="store_true", help="print every decoded loss line, not only the summary")
    p.set_defaults(func=_cmd_sovits_log)

    c = sub.add_parser(
        "scan-checkpoints",
        help="find NaN/Inf in checkpoints (GPT-SoVITS G_/D_ and exported weights, Lightning .ckpt, state dicts) "
        "and what each experiment resumes from",
        description="Read every checkpoint named, or under the folders named (e.g. logs/ or logs/<exp>/logs_s2_v2), "
        "without running pickled code, and list each file and tensor (weights and optimizer state) holding NaN or "
        "Inf. Then, per folder, what GPT-SoVITS's s2_train.py resumes from next (the latest D_ and G_), whether that "
        "works (NaN, a missing D_ or optimizer key: a silent restart from the pretrained weights) and what to do. "
        "Exported weights (SoVITS_weights_*) are for inference, not resume points. Files are only read. Exit 0 when "
        "all are clean and every folder resumes cleanly, 1 otherwise (a file or folder that cannot be read "
        "included), 2 for usage errors.",
    )
    c.add_argument("paths", nargs="+", metavar="DIR_OR_FILE")
    c.add_argument("--json", metavar="FILE", help="also write the findings as JSON")
    c.add_argument("--trust", action="store_true",
                   help="load with torch's full unpickler, which runs any code the file holds (only for files you "
                   "made yourself)")
    c.set_defaults(func=_cmd_scan_checkpoints)
