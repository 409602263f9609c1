"""Checkpoint scans (``tts-nb scan-checkpoints``, the doctor; issue 29 item 5): the scan as it was (``torch.load``
into memory, torch's default threads, ``isfinite(t).all()`` on every tensor) against the scan now
(:func:`tts_nb_utils.diagnose.checkpoints.scan_checkpoints`: memory-mapped load, the notebooks' thread policy, the
one-reduction ``isfinite(t.sum())`` first), and each change alone, side by side in one run, on a quiet machine and
with two busy processes. Ratios are against "before" in the same row.

The files: GPT-SoVITS ``G_``/``D_`` pairs as ``utils.save_checkpoint`` writes them (weights plus both AdamW
moments), about 3 x 4 M float32 values each. Run: ``.venv/bin/python benchmarks/bench_checkpoint_scan.py``.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench_threads import busy_processes  # noqa: E402  (this folder is on the path when run as a script)

from tts_nb_utils.diagnose.checkpoints import checkpoint_files, scan_checkpoints  # noqa: E402

PAIRS = 3
REPEATS = 3


def make_files(folder: Path) -> list[Path]:
    torch.manual_seed(0)
    for step in range(1, PAIRS + 1):
        for part in "GD":
            model = torch.nn.Sequential(*[torch.nn.Linear(1024, 1024) for _ in range(4)])
            opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
            model(torch.randn(2, 1024)).sum().backward()
            opt.step()
            torch.save({"model": model.state_dict(), "iteration": step, "optimizer": opt.state_dict(),
                        "learning_rate": 1e-4}, folder / f"{part}_{step * 100}.pth")
    return checkpoint_files([folder])


def scan_plain(files: list[Path], mmap: bool = False, sum_first: bool = False) -> int:
    """The previous scan (a full load, every tensor checked element by element), with one change at a time."""
    bad = 0

    def check(t: torch.Tensor) -> None:
        nonlocal bad
        if sum_first and bool(torch.isfinite(t.sum(dtype=torch.float64))):
            return
        if not bool(torch.isfinite(t).all()):
            bad += 1

    def walk(obj):
        if isinstance(obj, torch.Tensor):
            if obj.is_floating_point():
                check(obj)
        elif isinstance(obj, dict):
            for v in obj.values():
                walk(v)
        elif isinstance(obj, list | tuple):
            for v in obj:
                walk(v)

    for f in files:
        walk(torch.load(f, map_location="cpu", weights_only=True, mmap=mmap))
    return bad


def _one_thread(files: list[Path]) -> int:
    torch.set_num_threads(1)
    return scan_plain(files)


def scan_now(files: list[Path]) -> int:
    return sum(len(r.bad) for r in scan_checkpoints(files))


def best(fn, files) -> float:
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        fn(files)
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    default = torch.get_num_threads()
    with tempfile.TemporaryDirectory() as tmp:
        files = make_files(Path(tmp))
        mib = sum(f.stat().st_size for f in files) / 2**20
        print(f"{os.cpu_count()} CPU(s), torch default threads {default}; {len(files)} files, {mib:.0f} MiB; "
              f"best of {REPEATS}")
        assert scan_plain(files) == scan_now(files) == 0
        variants = {"before": scan_plain, "+ mmap": lambda f: scan_plain(f, mmap=True),
                    "+ sum first": lambda f: scan_plain(f, sum_first=True), "+ 1 thread": _one_thread,
                    "now (all three)": scan_now}
        for label, n_busy in (("quiet", 0), ("2 busy processes", 2)):
            times = {}
            with busy_processes(n_busy):
                for name, fn in variants.items():
                    torch.set_num_threads(default)  # scan_now sets its own policy and restores this
                    times[name] = best(fn, files)
            base = times["before"]
            print(f"  {label}: " + ", ".join(f"{n} {t:.2f} s (x{base / t:.1f})" for n, t in times.items()))

if __name__ == "__main__":
    main()
