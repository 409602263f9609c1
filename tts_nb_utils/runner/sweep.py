"""Run notebooks over seeds and parameter sets, and count the passes: ``tts-nb sweep``.

A notebook that passes with ``SEED = 0`` and fails with ``SEED = 5`` fails a workshop participant who changed
the seed. The sweep executes each notebook once per (seed, parameter set) with papermill, exactly as
``tts-nb run`` does (same runner, same checks of the parameters before any kernel starts), and writes
``sweep.json``: per notebook, every run's seed, parameters, status, seconds and failing cell. The notebook
metrics script and the CI seed runs read that file.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..io import atomic_write_json
from .papermill import declared_parameters, default_kernel, read_problem, run_many, split_parameters

#: Seeds a sweep uses when none are given.
DEFAULT_SEEDS = "0-9"
#: At most this many seeds in one sweep (each is a full notebook run).
MAX_SEEDS = 1000


def parse_seeds(text: str) -> list[int]:
    """``"0-9"``, ``"0,3,7"`` or ``"0-4,9"`` as a sorted list of distinct non-negative seeds.

    Raises UsageError naming the part that is not a seed or a range."""
    seeds: set[int] = set()
    for part in str(text).split(","):
        part = part.strip()
        m = re.fullmatch(r"(\d{1,9})(?:\s*-\s*(\d{1,9}))?", part)
        if not m:
            raise UsageError(f"--seeds {text!r}: {part!r} is not a seed or a range; write e.g. 0-9 or 0,3,7")
        lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
        if hi < lo:
            raise UsageError(f"--seeds {text!r}: the range {part!r} runs backwards; write {hi}-{lo}")
        if hi - lo + 1 + len(seeds) > MAX_SEEDS:
            raise UsageError(f"--seeds {text!r}: more than {MAX_SEEDS} seeds; each one is a full notebook run")
        seeds.update(range(lo, hi + 1))
    return sorted(seeds)


@dataclass
class SweepRun:
    """One execution: its seed, the parameters it was given (the seed included) and the outcome."""

    seed: int
    parameters: dict[str, Any]
    status: str
    seconds: float
    output: str
    error: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@dataclass
class NotebookSweep:
    notebook: str
    runs: list[SweepRun] = field(default_factory=list)

    @property
    def passed(self) -> int:
        return sum(r.ok for r in self.runs)

    @property
    def total(self) -> int:
        return len(self.runs)


def _run_dir(out_dir: Path, notebook: Path, seed: int, set_index: int, n_sets: int) -> Path:
    name = f"seed{seed}" if n_sets == 1 else f"set{set_index}-seed{seed}"
    return out_dir / notebook.stem / name


def sweep_notebooks(
    paths: list[Path],
    out_dir: str | Path,
    seeds: list[int],
    parameter_sets: list[dict[str, Any]] | None = None,
    kernel_name: str | None = None,
    timeout: float | None = None,
    echo: bool = True,
    jobs: int = 1,
) -> list[NotebookSweep]:
    """Run every notebook in ``paths`` once per seed and parameter set; write ``out_dir/sweep.json``.

    ``parameter_sets``: each a dict of parameters given on top of ``SEED`` (default one empty set). A
    parameter no selected notebook declares is a UsageError before anything runs; a notebook that declares
    no ``SEED`` is a UsageError too (a sweep over seeds would run it unchanged ten times). ``jobs``: runs at
    once (``papermill.run_many``); ``sweep.json`` keeps the plan's order and is rewritten as each run ends.
    """
    out_dir = Path(out_dir)
    sets = parameter_sets or [{}]
    problems = {p: read_problem(p) for p in paths}
    declared = declared_parameters(paths, problems)  # each notebook parsed once
    no_seed = [p.name for p in paths if problems[p] is None and "SEED" not in declared[p]]
    if no_seed:
        raise UsageError(f"{', '.join(no_seed)} declare(s) no SEED parameter: nothing to sweep over")
    checked = [split_parameters(paths, {**s, "SEED": 0}, problems, declared) for s in sets]
    kernel_name = kernel_name or default_kernel()
    plan = [(n, seed, {**per_notebook[path], "SEED": seed}, _run_dir(out_dir, path, seed, k, len(sets)))
            for n, path in enumerate(paths) for k, per_notebook in enumerate(checked) for seed in seeds]
    tasks = [(paths[n], run_dir, params, problems[paths[n]], kernel_name, timeout) for n, _, params, run_dir in plan]
    finished: dict[int, SweepRun] = {}
    for i, result in run_many(tasks, jobs):
        n, seed, params, _ = plan[i]
        finished[i] = SweepRun(seed, params, result.status, result.seconds, result.output, result.error)
        if echo:
            print(format_run(len(finished), len(plan), paths[n].name, finished[i]), flush=True)
        write_sweep_report(_collect(paths, plan, finished), out_dir, kernel_name)
    return _collect(paths, plan, finished)


def _collect(paths: list[Path], plan: list[tuple], finished: dict[int, SweepRun]) -> list[NotebookSweep]:
    """The finished runs per notebook, in the order of the plan (seeds ascending within each parameter set)."""
    sweeps = [NotebookSweep(p.name) for p in paths]
    for i in sorted(finished):
        sweeps[plan[i][0]].runs.append(finished[i])
    return sweeps


def format_run(i: int, total: int, notebook: str, run: SweepRun) -> str:
    extra = {k: v for k, v in run.parameters.items() if k != "SEED"}
    label = f"SEED={run.seed}" + "".join(f" {k}={v!r}" for k, v in extra.items())
    line = f"[{i}/{total}] {notebook} {label}: {run.status} in {run.seconds:.1f} s"
    if run.error:
        e = run.error
        message = " ".join(str(e.get("message", "")).split())
        line += f"\n    cell {e.get('cell_index')}: {e.get('exception')}: {message[:200]}"
    return line


def format_sweep(sweeps: list[NotebookSweep]) -> str:
    """Per notebook: passes out of runs, and the seeds that failed."""
    width = max([len("notebook")] + [len(s.notebook) for s in sweeps])
    lines = [f"{'notebook':<{width}}  passed  failed seeds", f"{'-' * width}  ------  ------------"]
    for s in sweeps:
        failed = sorted({r.seed for r in s.runs if not r.ok})
        lines.append(f"{s.notebook:<{width}}  {s.passed:>2}/{s.total:<3}  {', '.join(map(str, failed)) or '-'}")
    return "\n".join(lines)


def write_sweep_report(sweeps: list[NotebookSweep], out_dir: str | Path, kernel_name: str) -> Path:
    """``sweep.json``: ``{"notebooks": [{"notebook", "passed", "total", "runs": [...]}], "ok": ...}``."""
    report = {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "kernel": kernel_name,
        "ok": all(s.passed == s.total for s in sweeps),
        "notebooks": [
            {"notebook": s.notebook, "passed": s.passed, "total": s.total, "runs": [asdict(r) for r in s.runs]}
            for s in sweeps
        ],
    }
    return atomic_write_json(Path(out_dir) / "sweep.json", report)
