"""Notebook run times, quiet and beside busy processes, with a per-cell profile: what issue 29's notebook budget
is checked with (all nine notebooks within 60 s together on a quiet 2-core machine, each within its own budget,
and at most 2x that beside two busy processes).

Each notebook runs through ``tts-nb run`` (its own kernel, default parameters, ``THREADS="auto"``); the quiet
and the busy run of each notebook are back to back (interleaved), so a load that changes during the run hits
both. The per-cell profile comes from the executed copies: papermill records each cell's duration in its
metadata (``metadata.papermill.duration``); the rest of a notebook's time is kernel start-up and papermill.

    .venv/bin/python benchmarks/bench_notebooks_busy.py [NOTEBOOK ...] [--busy 2] [--top 5] [--suite]

``--suite`` also times the whole selection as one ``tts-nb run --jobs 1`` and ``--jobs 2`` command (what
``make run`` does with the default ``--jobs``), quiet and beside the busy processes.

Default: all nine notebooks (about 4 minutes on the reference machine).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
TTS_NB = [sys.executable, "-m", "tts_nb_utils.cli"]
#: Seconds per notebook, alone on the quiet reference machine (issue 29: 60 s for all nine together).
BUDGET_S = {"00": 3, "01": 7, "02": 9, "03": 6, "04": 6, "05": 10, "06": 6, "07": 6, "08": 6}
TOTAL_BUDGET_S = 60.0
BUSY_FACTOR = 2.0


def _busy(stop) -> None:
    x = 0
    while not stop.is_set():
        x += 1


def _run_beside(cmd: list[str], n_busy: int) -> float:
    """Wall seconds of ``cmd`` (run in the repository) beside ``n_busy`` spinning processes."""
    stop = mp.Event()
    procs = [mp.Process(target=_busy, args=(stop,), daemon=True) for _ in range(n_busy)]
    for p in procs:
        p.start()
    try:
        t = time.perf_counter()
        subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
        return time.perf_counter() - t
    finally:
        stop.set()
        for p in procs:
            p.join()


def run_one(notebook: str, n_busy: int, out: Path) -> tuple[float, Path, bool]:
    """``tts-nb run NOTEBOOK`` beside ``n_busy`` spinning processes: (seconds, executed copy, passed)."""
    _run_beside([*TTS_NB, "run", notebook, "--out", str(out)], n_busy)
    (row,) = json.loads((out / "report.json").read_text())["notebooks"]
    return row["seconds"], Path(row["output"]), row["status"] == "ok"


def run_suite(notebooks: list[str], jobs: int, n_busy: int, out: Path) -> tuple[float, bool]:
    """``tts-nb run NB... --jobs J`` beside ``n_busy`` spinning processes: (wall seconds, all passed)."""
    wall = _run_beside([*TTS_NB, "run", *notebooks, "--jobs", str(jobs), "--out", str(out)], n_busy)
    return wall, json.loads((out / "report.json").read_text())["ok"]


def cell_times(copy: Path) -> list[tuple[int, float, str]]:
    """``(cell index in the source notebook, seconds, first line)`` per code cell of an executed copy."""
    if not copy.is_file():
        return []
    out, index = [], 0
    for cell in nbformat.read(str(copy), as_version=4).cells:
        if "injected-parameters" in cell.metadata.get("tags", []):
            continue
        if cell.cell_type == "code":
            first = (cell.source.strip().splitlines() or [""])[0]
            out.append((index, float(cell.metadata.get("papermill", {}).get("duration") or 0.0), first))
        index += 1
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", default=sorted(BUDGET_S), help="notebook numbers (default: all)")
    parser.add_argument("--busy", type=int, default=2, help="busy processes beside the second run (default 2)")
    parser.add_argument("--top", type=int, default=5, help="costliest cells shown per notebook (default 5)")
    parser.add_argument("--suite", action="store_true",
                        help="also time the whole suite in one command: --jobs 1 and --jobs 2, quiet and busy")
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPU(s), load average {os.getloadavg()[0]:.1f}; notebooks {' '.join(args.notebooks)}; "
          f"each quiet, then beside {args.busy} busy processes")
    rows, profiles = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for nb in args.notebooks:
            quiet, copy, ok_q = run_one(nb, 0, Path(tmp) / f"{nb}-quiet")
            busy, _, ok_b = run_one(nb, args.busy, Path(tmp) / f"{nb}-busy")
            rows.append((nb, copy.stem, quiet, busy, ok_q and ok_b))
            profiles[nb] = (quiet, cell_times(copy))
            print(f"  {copy.stem:<50} quiet {quiet:6.1f} s   busy {busy:6.1f} s   x{busy / quiet:.2f}   "
                  f"budget {BUDGET_S.get(nb, '-')} s{'' if ok_q and ok_b else '   FAILED'}", flush=True)
    total_q, total_b = sum(r[2] for r in rows), sum(r[3] for r in rows)
    print(f"  {'total':<50} quiet {total_q:6.1f} s   busy {total_b:6.1f} s   x{total_b / total_q:.2f}   "
          f"aim <= {TOTAL_BUDGET_S:.0f} s quiet, <= {BUSY_FACTOR:.0f}x busy")
    over = [f"{nb} ({q:.1f} s > {BUDGET_S[nb]} s)" for nb, _, q, _, _ in rows if nb in BUDGET_S and q > BUDGET_S[nb]]
    print(f"  over their own budget (quiet run): {', '.join(over) or 'none'}")
    if args.suite:
        print("\nThe suite in one command (`tts-nb run NB... --jobs J`), wall time, quiet then busy, back to back:")
        with tempfile.TemporaryDirectory() as tmp:
            for jobs in (1, 2):
                quiet, ok_q = run_suite(args.notebooks, jobs, 0, Path(tmp) / f"j{jobs}-quiet")
                busy, ok_b = run_suite(args.notebooks, jobs, args.busy, Path(tmp) / f"j{jobs}-busy")
                print(f"  --jobs {jobs}: quiet {quiet:6.1f} s   busy {busy:6.1f} s   x{busy / quiet:.2f}   aim <= "
                      f"{TOTAL_BUDGET_S:.0f} s quiet{'' if ok_q and ok_b else '   FAILED'}", flush=True)
    print("\nCostliest cells (quiet run; cell = index in the source notebook, as `tts-nb run` names failures):")
    for nb, (seconds, cells) in profiles.items():
        in_cells = sum(c[1] for c in cells)
        print(f"  {nb}: {seconds:.1f} s, of which cells {in_cells:.1f} s, kernel start-up and papermill "
              f"{seconds - in_cells:.1f} s")
        for index, dur, first in sorted(cells, key=lambda c: -c[1])[: args.top]:
            print(f"      cell {index:>3}  {dur:6.2f} s  {100 * dur / max(seconds, 1e-9):4.0f} %  {first[:70]}")


if __name__ == "__main__":
    main()
