"""Notebook run times on a quiet machine and with two busy processes beside them, side by side in one run.

The workshop target (issue 19): on a 2-core machine, notebooks 02 and 05 with two busy processes take at most
twice their quiet time. Each notebook runs with ``tts-nb run`` (its own kernel, ``THREADS="auto"``).
Run: ``.venv/bin/python benchmarks/bench_notebooks_busy.py [NOTEBOOK ...]`` (default 02 05; a few minutes).
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _busy(stop) -> None:
    x = 0
    while not stop.is_set():
        x += 1


def run_times(notebooks: list[str], n_busy: int) -> dict[str, float]:
    stop = mp.Event()
    procs = [mp.Process(target=_busy, args=(stop,), daemon=True) for _ in range(n_busy)]
    for p in procs:
        p.start()
    try:
        with tempfile.TemporaryDirectory() as out:
            cmd = [sys.executable, "-m", "tts_nb_utils.cli", "run", *notebooks, "--out", out]
            subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True)
            report = json.loads((Path(out) / "report.json").read_text())
    finally:
        stop.set()
        for p in procs:
            p.join()
    return {r["notebook"]: r["seconds"] for r in report["notebooks"]}


def main() -> None:
    notebooks = sys.argv[1:] or ["02", "05"]
    print(f"{os.cpu_count()} CPU(s); notebooks {' '.join(notebooks)}")
    quiet = run_times(notebooks, 0)
    busy = run_times(notebooks, 2)
    for name in quiet:
        print(f"  {name:<55} quiet {quiet[name]:6.1f} s   2 busy {busy[name]:6.1f} s   x{busy[name] / quiet[name]:.2f}")


if __name__ == "__main__":
    main()
