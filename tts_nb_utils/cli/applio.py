"""``tts-nb check-features`` (notebook 07) and ``tts-nb check-embedders`` (notebook 06): the checks that would
have caught Applio issues 546 and 489, for an Applio ``logs/<model>/`` (any layout from 3.2.1 to main) and
``rvc/models/embedders/`` folder."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..diagnose.embedders import check_embedders, read_manifest
from ..diagnose.features import check_features
from ..errors import UsageError
from ..io import audio_extensions
from ..upstream.applio import looks_like_model, read_model
from ._common import file_extension, positive_int, unreadable_folders


def _cmd_check_features(args: argparse.Namespace) -> int:
    if args.feature_dir is None:
        return _check_model_features(args)
    report = check_features(
        args.audio_dir, args.feature_dir, args.ext, args.expect_dim, args.audio_ext, not args.flat
    )
    if not report.stage.inputs:
        raise UsageError(
            f"no audio files ({', '.join(args.audio_ext)}) in {args.audio_dir}; is this the right folder?"
        )
    print(report.format(limit=args.limit))
    unreadable = unreadable_folders([args.audio_dir, args.feature_dir])
    return 0 if report.ok and not unreadable else 1


def _check_model_features(args: argparse.Namespace) -> int:
    """One argument: an Applio ``logs/<model>/`` folder, any layout; each feature folder against its width."""
    folder = Path(args.audio_dir)
    if not folder.is_dir() or not looks_like_model(folder):
        raise UsageError(f"{folder} is not an Applio model folder (logs/<model>/ with sliced_audios/ and "
                         "extracted/ or v2_extracted/): give AUDIO_DIR FEATURE_DIR instead")
    model = read_model(folder)
    if not model.features:
        print(f"{folder}: Applio {model.layout}, no extracted/ or v2_extracted/ folder: extraction never ran")
        return 1
    ok = True
    for feats in model.features:
        print(f"{feats.path}: Applio {model.layout}, the model reads {args.expect_dim or feats.width} values "
              f"per frame (from {'--expect-dim' if args.expect_dim else feats.source})")
        report = check_features(model.clips, feats.path, ".npy", args.expect_dim or feats.width, args.audio_ext,
                                recursive=False)
        print(report.format(limit=args.limit))
        ok = ok and report.ok
    return 0 if ok else 1


def _cmd_check_embedders(args: argparse.Namespace) -> int:
    manifest = read_manifest(args.manifest) if args.manifest else None
    report = check_embedders(args.folder, manifest)
    print(report.format(limit=args.limit))
    return 0 if report.ok else 1


def _add_check_features(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "check-features",
        help="audio files without a feature file, and feature files of the wrong width, all zeros or NaN",
        description="Compare AUDIO_DIR with FEATURE_DIR by file name (recursively): list every audio file "
        "without a feature file, and open every .npy feature file: with --expect-dim N its last dimension "
        "must be N (768 for an RVC v2 model, 256 for v1); all-zero and NaN/inf files are flagged. Given one "
        "folder, an Applio logs/<model>/ (3.2.1 to main), it finds the clips, the feature folder and the width "
        "the model reads (config.json) itself. "
        "Exit 0 when all is well, 1 when anything was found, 2 for usage errors.",
    )
    p.add_argument("audio_dir", metavar="AUDIO_DIR|MODEL_DIR")
    p.add_argument("feature_dir", metavar="FEATURE_DIR", nargs="?", help="omit for an Applio model folder")
    p.add_argument("--ext", type=file_extension, default=".npy", help="feature file extension, may have dots: .npy, .wav.npy, .pt")
    p.add_argument("--expect-dim", type=positive_int, metavar="N", help="the width every feature file must have")
    p.add_argument(
        "--audio-ext", nargs="+", type=file_extension, default=sorted(audio_extensions()), metavar="EXT", help="audio extensions to look for"
    )
    p.add_argument("--flat", action="store_true", help="do not descend into subfolders")
    p.add_argument("--limit", type=positive_int, default=50, help="list at most this many files per problem")
    p.set_defaults(func=_cmd_check_features)


def _add_check_embedders(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "check-embedders",
        help="duplicate and half-finished downloads in a model folder; sizes and sha256 against a manifest",
        description="List what repeated or interrupted downloads left in DIR (recursively): wget's "
        "'name (1).pt' copies, its '<name><8 chars>.tmp' temporaries, hidden .part and .incomplete files; "
        "with --manifest, files missing or whose size or sha256 differ. Run it while nothing downloads. "
        "Exit 0 when clean, 1 when anything was found, 2 for usage errors.",
    )
    p.add_argument("folder", metavar="DIR", help="e.g. rvc/models/embedders")
    p.add_argument(
        "--manifest", metavar="FILE",
        help='JSON {"name": "sha256"} or {"name": {"sha256": ..., "size": ...}}, or sha256sum output',
    )
    p.add_argument("--limit", type=positive_int, default=50, help="list at most this many findings")
    p.set_defaults(func=_cmd_check_embedders)


def register_cli(sub: argparse._SubParsersAction) -> None:
    _add_check_features(sub)
    _add_check_embedders(sub)
