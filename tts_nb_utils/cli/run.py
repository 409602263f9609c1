"""``tts-nb run``, ``sweep``, ``list``, ``docs`` and ``strip``: execute the notebooks with papermill (once, or over
seeds and parameter sets), list their parameters, render the executed copies as a static site, and strip outputs
before a commit.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ..errors import UsageError
from ..runner.sweep import DEFAULT_SEEDS
from ._common import add_jobs, check_outputs, positive_float


def _cmd_run(args: argparse.Namespace) -> int:
    from ..runner.papermill import format_summary, resolve_notebooks, run_notebooks

    paths = resolve_notebooks(args.notebooks)
    if not paths:
        raise UsageError("no notebooks found to run")
    params = _parse_params(args.param)
    for p in paths:  # an executed copy is written to --out/<name>: never over the notebook itself
        check_outputs([p], out=str(Path(args.out) / p.name))
    check_outputs([], out=str(Path(args.out) / "report.json"))
    start = time.perf_counter()
    results = run_notebooks(paths, args.out, params, kernel_name=args.kernel, timeout=args.timeout, jobs=args.jobs)
    print()
    print(format_summary(results, wall=time.perf_counter() - start))
    print(f"executed copies and report.json in {Path(args.out).resolve()}")
    return 0 if all(r.ok for r in results) else 1


def _cmd_sweep(args: argparse.Namespace) -> int:
    from ..runner.papermill import resolve_notebooks
    from ..runner.sweep import format_sweep, parse_seeds, sweep_notebooks

    paths = resolve_notebooks(args.notebooks)
    if not paths:
        raise UsageError("no notebooks found to sweep")
    seeds = parse_seeds(args.seeds)
    fixed = _parse_params(args.param)
    if "SEED" in fixed:
        raise UsageError("give seeds with --seeds, not -p SEED")
    sets = [{**fixed, **_parse_set(text)} for text in args.set] if args.set else [fixed]
    check_outputs([], out=str(Path(args.out) / "sweep.json"))
    sweeps = sweep_notebooks(paths, args.out, seeds, sets, kernel_name=args.kernel, timeout=args.timeout,
                             jobs=args.jobs)
    print()
    print(format_sweep(sweeps))
    print(f"executed copies and sweep.json in {Path(args.out).resolve()}")
    return 0 if all(s.passed == s.total for s in sweeps) else 1


def _parse_set(text: str) -> dict:
    """``--set "LR=1e-3 STEPS=40"``: one parameter set, NAME=VALUE pairs separated by spaces."""
    pairs = []
    for item in text.split():
        name, eq, value = item.partition("=")
        if not eq:
            raise UsageError(f"--set {text!r}: {item!r} is not NAME=VALUE; write e.g. --set 'LR=1e-3 STEPS=40'")
        pairs.append([name, value])
    if not pairs:
        raise UsageError("--set '' is empty; write e.g. --set 'LR=1e-3 STEPS=40'")
    return _parse_params(pairs)


def _parse_params(pairs: list[list[str]] | None) -> dict:
    from ..runner.papermill import parse_value

    params = {}
    for name, value in pairs or []:
        if not name.isidentifier():
            raise UsageError(f"parameter name {name!r} is not a Python identifier (use -p NAME VALUE)")
        try:
            params[name] = parse_value(value)
        except UsageError as e:
            raise UsageError(f"parameter {name}: {e}") from None
    return params


def _cmd_list(args: argparse.Namespace) -> int:
    from ..runner.papermill import format_parameters, read_problem, resolve_notebooks

    paths = resolve_notebooks(args.notebooks)
    for path in paths:
        print(path.name)
        print(format_parameters(path))
    return 1 if any(read_problem(p) for p in paths) else 0


def _cmd_docs(args: argparse.Namespace) -> int:
    from ..runner.docs import build_site
    from ..runner.papermill import resolve_notebooks

    paths = resolve_notebooks(args.notebooks) if args.notebooks else None
    pages = build_site(args.executed, args.out, paths, rerun=args.rerun, kernel_name=args.kernel,
                       timeout=args.timeout, jobs=args.jobs)
    for p in pages:
        how = "executed now" if p.executed else "reused"
        print(f"{p.html or p.notebook}  ({p.status}, {how}, {p.images} image(s))")
        if p.lost:
            print(f"  note: {' and '.join(p.lost)} shown as source (the offline site loads no MathJax or mermaid)")
    print(f"site: {Path(args.out) / 'index.html'}")
    return 0 if all(p.status == "ok" for p in pages) else 1


def _cmd_strip(args: argparse.Namespace) -> int:
    from ..runner.papermill import read_problem, strip_outputs, strip_text

    if args.notebooks == ["-"]:  # a git clean filter: notebook on stdin, stripped notebook on stdout
        text = sys.stdin.read()
        try:
            stripped = strip_text(text)
        except Exception as e:  # noqa: BLE001 - nbformat and json raise many types for a file that is no notebook
            raise UsageError(f"stdin is not a notebook ({type(e).__name__}); pass the .ipynb text") from None
        sys.stdout.write(stripped)
        return 0
    bad = 0
    for path in args.notebooks:  # a bad file is named and the others are still stripped
        problem = read_problem(path)
        if problem:
            bad += 1
            print(f"tts-nb strip: error: {path}: {problem}", file=sys.stderr)
            continue
        print(f"{'stripped' if strip_outputs(path) else 'clean   '} {path}")
    return 2 if bad else 0


def register_cli(sub: argparse._SubParsersAction) -> None:
    run = sub.add_parser(
        "run",
        help="execute notebooks with papermill and write executed copies plus report.json",
        description="Execute notebooks with papermill (all of them when none is named), --jobs at a time, each "
        "in its own kernel with its share of the CPU threads. Each runs even if another failed. Exit 1 if any failed.",
    )
    run.add_argument("notebooks", nargs="*", metavar="NOTEBOOK", help="path, file name, stem or number (e.g. 02)")
    run.add_argument(
        "-p", "--param", nargs=2, action="append", metavar=("NAME", "VALUE"),
        help="set a parameter; VALUE is a Python/YAML literal (3, 1e-4, true, [1, 2]) or a plain string",
    )
    run.add_argument("--out", default="build/notebooks", help="folder for executed copies and report.json")
    run.add_argument("--timeout", type=positive_float, default=None, help="per-cell timeout in seconds (default: none)")
    run.add_argument("--kernel", default=None, help="Jupyter kernel name (default: 'tts-nb' if registered, else python3)")
    add_jobs(run, "notebooks (1: one after another)")
    run.set_defaults(func=_cmd_run)

    sweep = sub.add_parser(
        "sweep",
        help="run notebooks over seeds (and parameter sets) and print pass/fail per run",
        description="Execute each NOTEBOOK once per seed in --seeds (and per --set), as tts-nb run does, and "
        "print pass/fail per run and passes per notebook; sweep.json in --out holds every run. "
        "Exit 1 if any run failed.",
    )
    sweep.add_argument("notebooks", nargs="*", metavar="NOTEBOOK", help="path, file name, stem or number (all when none)")
    sweep.add_argument("--seeds", default=DEFAULT_SEEDS,
                       help=f"seeds: a range, a list or both, e.g. 0-9 or 0,3,7 (default {DEFAULT_SEEDS})")
    sweep.add_argument(
        "-p", "--param", nargs=2, action="append", metavar=("NAME", "VALUE"),
        help="set a parameter for every run (as in tts-nb run)",
    )
    sweep.add_argument(
        "--set", action="append", metavar="'NAME=VALUE ...'",
        help="one parameter set to sweep the seeds under; repeat for several (runs = seeds x sets)",
    )
    sweep.add_argument("--out", default="build/sweep", help="folder for executed copies and sweep.json")
    sweep.add_argument("--timeout", type=positive_float, default=None, help="per-cell timeout in seconds")
    sweep.add_argument("--kernel", default=None, help="Jupyter kernel name (default: 'tts-nb' if registered)")
    add_jobs(sweep, "runs (1: one after another)")
    sweep.set_defaults(func=_cmd_sweep)

    lst = sub.add_parser("list", help="list the notebooks with their parameters, defaults and help")
    lst.add_argument("notebooks", nargs="*", metavar="NOTEBOOK")
    lst.set_defaults(func=_cmd_list)

    docs = sub.add_parser(
        "docs", help="render the executed notebooks to a static HTML site that works without network",
        description="Render each NOTEBOOK (all when none is named) from its executed copy in --from to HTML in "
        "--out, with plots embedded, and write index.html. A copy newer than its notebook is reused; a missing, "
        "older or failed one is executed first (into --from). The pages load nothing from a network. "
        "Exit 1 if a notebook failed.",
    )
    docs.add_argument("notebooks", nargs="*", metavar="NOTEBOOK", help="path, file name, stem or number (e.g. 02)")
    docs.add_argument("--from", dest="executed", default="build/notebooks", metavar="DIR",
                      help="folder of executed notebooks and report.json, as tts-nb run writes (default build/notebooks)")
    docs.add_argument("--out", default="build/site", metavar="DIR", help="folder for the site (default build/site)")
    docs.add_argument("--rerun", action="store_true", help="execute every notebook again, fresh copies too")
    docs.add_argument("--timeout", type=positive_float, default=None, help="per-cell timeout in seconds for runs")
    docs.add_argument("--kernel", default=None, help="Jupyter kernel name for runs (default: 'tts-nb' if registered)")
    add_jobs(docs, "notebooks to run")
    docs.set_defaults(func=_cmd_docs)

    strip = sub.add_parser(
        "strip", help="remove outputs from notebooks in place (committed notebooks carry none)",
        description="Remove outputs, execution counts, run metadata and editor state from each NOTEBOOK in place, "
        "and set the project kernel. With '-': read a notebook on stdin and write it stripped to stdout (the git "
        "clean filter make install sets up).",
    )
    strip.add_argument("notebooks", nargs="+", metavar="NOTEBOOK")
    strip.set_defaults(func=_cmd_strip)
