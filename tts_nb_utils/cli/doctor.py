"""``tts-nb doctor`` (notebook 08): one preflight over a project, every check the other commands run, chosen by
what each PATH holds; a thin layer over :func:`tts_nb_utils.doctor.run.run_doctor`."""

from __future__ import annotations

import argparse

from ._common import add_strict, check_outputs, findings_exit, positive_float


def _cmd_doctor(args: argparse.Namespace) -> int:
    from ..doctor.run import run_doctor
    from ..io import atomic_write_json, atomic_write_text

    check_outputs(args.paths, json=args.json, md=args.md)
    report = run_doctor(args.paths, args.gpu_gib, args.audio_preset)
    markdown = report.markdown()
    print(markdown)
    if args.json:
        atomic_write_json(args.json, report.as_json())
    if args.md:
        atomic_write_text(args.md, markdown + "\n")
    return findings_exit(report.errors, report.counts()["warning"], args.strict)


def register_cli(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "doctor",
        help="one preflight over your project: data, configs, schedules, numerics and pipeline stages",
        description="Recognise each PATH by its contents (an audio folder, a GPT-SoVITS logs/<exp>, a DiffSinger "
        "config or checkpoints/<exp>, a Coqui run folder, an Applio logs/<model>, a Dia training config; a "
        "folder that is none of these is searched for them) and run the matching checks. Prints one Markdown "
        "report: per finding its severity, what, where (file and line or key), the fix and the notebook that "
        "explains it. A path where nothing is recognised, or that cannot be read, is an error.",
    )
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("--json", metavar="FILE", help="also write the report as JSON (each PATH with the kind found)")
    p.add_argument("--md", metavar="FILE", help="also write the Markdown report to FILE")
    p.add_argument("--gpu-gib", type=positive_float, metavar="N",
                   help="the card a Dia config is planned for (default: its gpu_gib, else 24)")
    p.add_argument("--audio-preset", choices=("none", "gpt-sovits"), default="none",
                   help="gpt-sovits: audio folders must hold 32 kHz mono int16 clips, as slice_audio.py writes")
    add_strict(p)
    p.set_defaults(func=_cmd_doctor)
