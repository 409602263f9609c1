"""``tts-nb check-features`` (notebook 06): audio files a pipeline stage left without a feature file."""

from __future__ import annotations

import argparse

from ..diagnose.stage import check_stage
from ..errors import UsageError
from ..io import audio_extensions


def _cmd_check_features(args: argparse.Namespace) -> int:
    try:
        report = check_stage(args.audio_dir, args.feature_dir, args.ext, args.audio_ext, not args.flat)
    except FileNotFoundError as e:
        raise UsageError(str(e)) from None
    if not report.inputs:
        raise UsageError(
            f"no audio files ({', '.join(args.audio_ext)}) in {args.audio_dir}; is this the right folder?"
        )
    print(report.format(limit=args.limit))
    return 0 if report.ok else 1


def register_cli(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "check-features",
        help="list audio files that have no feature file (did extraction fail silently?)",
        description="Compare AUDIO_DIR with FEATURE_DIR by file name (recursively) and list every audio file "
        "without a feature file. Exit 0 when all have one, 1 when any are missing, 2 for usage errors.",
    )
    p.add_argument("audio_dir", metavar="AUDIO_DIR")
    p.add_argument("feature_dir", metavar="FEATURE_DIR")
    p.add_argument("--ext", default=".npy", help="feature file extension, may have dots: .npy, .wav.npy, .pt")
    p.add_argument(
        "--audio-ext", nargs="+", default=sorted(audio_extensions()), metavar="EXT", help="audio extensions to look for"
    )
    p.add_argument("--flat", action="store_true", help="do not descend into subfolders")
    p.add_argument("--limit", type=int, default=50, help="list at most this many missing files")
    p.set_defaults(func=_cmd_check_features)
