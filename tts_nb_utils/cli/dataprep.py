"""``tts-nb validate``, ``tts-nb denoise``, ``tts-nb slice`` and ``tts-nb prepare``: thin argparse wrappers over
the dataprep functions that notebook 01 calls. Exit codes follow the one rule (``tts_nb_utils.cli``): 1 for a
file with an error-level code (``validate``; ``--fail-on`` chooses the codes instead, ``--strict`` adds the
warnings), a file that failed, or clips that fail validation; 2 for usage errors and refused output paths.
"""

from __future__ import annotations

import argparse
import json
import sys

from ..dataprep.normalize import DEFAULT_ALPHA, DEFAULT_MAX
from ..dataprep.slicer import SlicerConfig, SlicerConfigError
from ..dataprep.validate import CODES, ERROR_CODES, ValidationConfig
from ..errors import UsageError
from ..parallel import keep_freed_memory
from ._common import (
    add_dataclass_options,
    add_jobs,
    add_strict,
    check_outputs,
    dataclass_from_args,
    dbfs,
    findings_exit,
    list_field,
    unit_interval,
    unreadable_folders,
)


def _validation_args(p: argparse.ArgumentParser) -> None:
    add_dataclass_options(p.add_argument_group("validation thresholds"), ValidationConfig)


def _slicer_args(p: argparse.ArgumentParser) -> None:
    add_dataclass_options(p.add_argument_group("slicer (GPT-SoVITS web UI defaults)"), SlicerConfig)


def _slicer_config(args: argparse.Namespace) -> SlicerConfig:
    cfg = dataclass_from_args(SlicerConfig, args)
    try:
        cfg.check()
    except SlicerConfigError as e:
        raise UsageError(str(e)) from None
    return cfg


def _codes(text: str | None) -> list[str]:
    if not text:
        return []
    codes = [c.strip() for c in text.split(",") if c.strip()]
    unknown = [c for c in codes if c not in CODES]
    if unknown:
        raise UsageError(f"--fail-on: unknown code(s) {', '.join(unknown)}; known: {', '.join(CODES)}")
    return codes


def _cmd_validate(args: argparse.Namespace) -> int:
    from ..dataprep.validate import (
        ERROR_CODES,
        describe,
        format_table,
        report_dict,
        validate_folder,
        write_csv,
        write_json,
    )

    fail_on = _codes(args.fail_on)
    check_outputs([args.dir], json=args.json, csv=args.csv)
    cfg = dataclass_from_args(ValidationConfig, args)
    keep_freed_memory()  # this process ends with the batch (issue 29)
    rows = validate_folder(args.dir, cfg, jobs=args.jobs, progress=not args.quiet)
    if args.json:
        write_json(rows, args.json, cfg)
    if args.csv:
        write_csv(rows, args.csv)
    if not args.quiet:
        print(format_table(rows))
        s = report_dict(rows)["summary"]
        found = ", ".join(f"{k}: {v}" for k, v in s["by_code"].items() if v) or "none"
        print(f"{s['files']} file(s), {s['ok']} ok, {s['with_issues']} with issues ({found})")
        for r in rows:
            for line in describe(r, cfg):
                print(f"  {line}")
    unreadable = unreadable_folders([args.dir], "audio files")  # a finding, as an unreadable file is
    if fail_on:
        hits = sorted({c for r in rows for c in r.issues if c in fail_on} | ({"unreadable"} & set(fail_on)
                      if unreadable else set()))
        if hits:
            print(f"tts-nb validate: found --fail-on code(s): {', '.join(hits)}", file=sys.stderr)
        return 1 if hits else 0
    errors = sum(any(c in ERROR_CODES for c in r.issues) for r in rows) + len(unreadable)
    warnings = sum(any(c not in ERROR_CODES for c in r.issues) for r in rows)
    return findings_exit(errors, warnings, args.strict)


def _cmd_denoise(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..audio.files import AudioReadError
    from ..dataprep.denoise import denoise_file, denoise_folder

    src = Path(args.input)
    options = {"prop_decrease": args.prop_decrease}
    if src.is_file():
        check_outputs([src], OUT=args.output)
        try:
            denoise_file(src, args.output, stationary=args.stationary, **options)
        except AudioReadError as e:  # the one input cannot be read: a usage error, as for any command
            raise UsageError(str(e)) from None
        print(f"wrote {args.output}")
        return 0
    if not src.is_dir():
        raise UsageError(f"{src}: no such file or folder")
    results = denoise_folder(src, args.output, stationary=args.stationary, overwrite=args.overwrite,
                             progress=not args.quiet, **options)
    failed = [r for r in results if r.status == "failed"]
    for r in failed:
        print(f"failed: {r.source}: {r.error}", file=sys.stderr)
    counts = {s: sum(r.status == s for r in results) for s in ("written", "skipped", "failed")}
    print(f"{len(results)} file(s): {counts['written']} written, {counts['skipped']} skipped, {counts['failed']} failed")
    return 1 if failed else 0


def _print_result(result) -> int:
    s = json.loads((result.out_dir / "report.json").read_text())["summary"]
    print(f"{s['clips']} clip(s), {s['clips_ok']} pass validation, {s['clip_seconds']:.1f} s; dropped: {s['dropped']}")
    if s.get("sample_rate"):
        print(f"sample rate of every clip: {s['sample_rate']}")
    for st in result.source_status:
        if st["status"] != "used":
            print(f"  {st['source']}: {st['status']} ({st['reason']})")
    print(f"manifest: {result.manifest}\nreport:   {result.report}")
    failed = any(st["status"] in ("failed", "skipped") for st in result.source_status)  # skipped: error codes
    return 0 if result.ok and not failed else 1


def _cmd_slice(args: argparse.Namespace) -> int:
    from ..dataprep.presets import SliceJob, slice_to_folder
    job = SliceJob(preset=args.preset, slicer=_slicer_config(args), max_=args.max, alpha=args.alpha,
                   decoder=args.decoder, speaker=args.speaker, language=args.language)
    try:
        result = slice_to_folder(args.input, args.output, job, progress=not args.quiet, jobs=args.jobs)
    except SlicerConfigError as e:  # a value that only fails once converted (upstream's int() of each setting)
        raise UsageError(f"{e} (GPT-SoVITS's slice_audio.py passes int() of each setting)") from None
    for f in result.failed:
        print(f"failed: {f['source']}: {f['reason']}", file=sys.stderr)
    for x in result.left_out:
        print(f"left out: {x['name']}: {x['reason']}", file=sys.stderr)
    silent = _no_clips(args.input, result)
    for name, why in silent:
        print(f"left out: {name}: no clip: {why}, below the --threshold of {args.threshold_db:g} dB", file=sys.stderr)
    if result.texts_not_applied:
        print(f"transcripts not used (the source gave several clips): {', '.join(result.texts_not_applied)}",
              file=sys.stderr)
    print(f"{len(result.clips)} clip(s) ({args.preset}, decoder: {result.decoder or '-'}); list: {result.list_path}")
    return findings_exit(len(result.failed), len(silent) + len(result.left_out), args.strict)


def _no_clips(input_: str, result) -> list[tuple[str, str]]:
    """Sources that gave no clip and no other message (a silent take), with their peak in words."""
    from pathlib import Path

    import numpy as np

    from ..audio.files import read_audio_file
    from ..io import list_audio_files

    src = Path(input_)
    named = {c["source"] for c in result.clips} | {f["source"] for f in result.failed}
    named |= {x["source"] for x in result.left_out}
    out = []
    for path in [src] if src.is_file() else list_audio_files(src, recursive=False):
        if path.name in named:
            continue
        try:
            peak = float(np.max(np.abs(read_audio_file(path, dtype="float32")[0]), initial=0.0))
            why = "silent (digital zero)" if peak == 0 else f"peak {20 * np.log10(peak):.1f} dBFS"
        except Exception:  # noqa: BLE001 - the slicer decoded it; our reader need not
            why = "no part loud enough"
        out.append((path.name, why))
    return out


def _cmd_prepare(args: argparse.Namespace) -> int:
    from ..dataprep.prepare import PrepareConfig, prepare_folder

    cfg = PrepareConfig(
        sample_rate=args.sample_rate, preset=args.preset, denoise=not args.no_denoise, stationary=args.stationary,
        denoise_options={"prop_decrease": args.prop_decrease},
        level_dbfs=None if args.no_level else args.level, slicer=_slicer_config(args),
        normalize=not args.no_normalize, loudness_lufs=args.lufs, max_=args.max, alpha=args.alpha,
        validation=dataclass_from_args(ValidationConfig, args),
    )
    try:
        result = prepare_folder(args.input, args.output, cfg, progress=not args.quiet, jobs=args.jobs)
    except SlicerConfigError as e:
        raise UsageError(str(e)) from None
    return _print_result(result)


def _denoise_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--stationary", action="store_true", help="one noise profile for the whole file (hum, hiss)")
    p.add_argument("--prop-decrease", type=unit_interval, default=1.0, help="how much of the noise to remove, 0..1")


def register_cli(sub: argparse._SubParsersAction) -> None:
    v = sub.add_parser(
        "validate", help="check every audio file in a folder: one row per file with issue codes",
        description="Validate recordings (recursive). Codes: " + ", ".join(CODES) + ". Errors: "
        + ", ".join(ERROR_CODES) + "; the others are warnings. Each finding is printed in words with the "
        "value measured, the threshold and the fix. Exit 1 when a file has an error (or a --fail-on code, "
        "when given; warnings too with --strict).",
    )
    v.add_argument("dir", metavar="DIR")
    _validation_args(v)
    v.add_argument("--json", metavar="PATH", help="write the rows and a summary as JSON")
    v.add_argument("--csv", metavar="PATH", help="write the rows as CSV")
    add_jobs(v)
    v.add_argument("--fail-on", metavar="CODE,...", help="exit 1 when any file has one of these codes")
    add_strict(v)
    v.add_argument("-q", "--quiet", action="store_true", help="no table, no progress bar")
    v.set_defaults(func=_cmd_validate)

    d = sub.add_parser("denoise", help="noisereduce spectral gating on a file or a folder",
                       description="Denoise IN (a file or a folder, recursive) into OUT. Existing outputs are "
                       "skipped. Exit 1 when a file failed.")
    d.add_argument("input", metavar="IN")
    d.add_argument("output", metavar="OUT")
    _denoise_args(d)
    d.add_argument("--overwrite", action="store_true", help="redo outputs that exist")
    d.add_argument("-q", "--quiet", action="store_true")
    d.set_defaults(func=_cmd_denoise)

    s = sub.add_parser(
        "slice", help="cut takes into clips at pauses, as GPT-SoVITS's slice_audio.py writes them",
        description="Slice a file or every audio file directly in IN into OUT, plus OUT/<OUT name>.list "
        "(path|speaker|language|text; text from a .txt/.lab beside a source that gives one clip). Presets: "
        "gpt-sovits (default): tools/slice_audio.py exactly (ffmpeg-style decode to 32 kHz mono, the "
        "max/alpha mix, int16 WAV named <file>_<start>_<end>.wav); openvpi: audio-slicer's slicer2.py (own "
        "rate and channels, <stem>_<i>.wav, no mix). Exit 1 when a file failed.")
    s.add_argument("input", metavar="IN")
    s.add_argument("output", metavar="OUT")
    s.add_argument("--preset", choices=("gpt-sovits", "openvpi"), default="gpt-sovits", help="whose output to write")
    _slicer_args(s)
    s.add_argument("--max", type=unit_interval, default=DEFAULT_MAX, help="gpt-sovits mix: peak target")
    s.add_argument("--alpha", type=unit_interval, default=DEFAULT_ALPHA, help="gpt-sovits mix: share of the peak-normalised chunk")
    s.add_argument("--decoder", choices=("auto", "ffmpeg", "fallback"), default="auto",
                   help="gpt-sovits: ffmpeg (auto: PATH's, else imageio-ffmpeg's bundled binary), or the NumPy "
                   "reproduction of its decode")
    s.add_argument("--speaker", type=list_field, help="speaker field of the .list (default: OUT's folder name)")
    s.add_argument("--language", type=list_field, default="EN", help="language field of the .list (ZH, JA, EN, KO, YUE)")
    add_strict(s)
    add_jobs(s)
    s.add_argument("-q", "--quiet", action="store_true")
    s.set_defaults(func=_cmd_slice)

    p = sub.add_parser("prepare", help="validate, denoise, slice, normalise, resample and validate a folder",
                       description="The whole pipeline into OUT (clips/, manifest.jsonl, report.json, report.md). "
                       "Resumes a killed run. Exit 1 when a clip fails validation, or a source failed or was skipped "
                       "(unreadable, empty, NaN or silent).")
    p.add_argument("input", metavar="IN")
    p.add_argument("output", metavar="OUT")
    _validation_args(p)
    _slicer_args(p)
    _denoise_args(p)
    p.add_argument("--preset", choices=("none", "gpt-sovits"), default="none",
                   help="the trainer the clips are for: gpt-sovits writes 32 kHz; none (default) the most common "
                   "input rate. --sample-rate overrides both; every clip gets one rate")
    p.add_argument("--no-denoise", action="store_true", help="skip denoising")
    p.add_argument("--level", type=dbfs, default=-20.0, help="dBFS active RMS to gain each take to before slicing")
    p.add_argument("--no-level", action="store_true", help="no gain before slicing")
    p.add_argument("--no-normalize", action="store_true", help="skip the max/alpha mix (and --lufs)")
    p.add_argument("--lufs", type=dbfs, metavar="LUFS",
                   help="level each clip to this integrated loudness (ITU-R BS.1770, e.g. -23) instead of the mix")
    p.add_argument("--max", type=unit_interval, default=DEFAULT_MAX, help="GPT-SoVITS mix: peak target")
    p.add_argument("--alpha", type=unit_interval, default=DEFAULT_ALPHA, help="GPT-SoVITS mix: share of the normalised signal")
    add_jobs(p)
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=_cmd_prepare)
