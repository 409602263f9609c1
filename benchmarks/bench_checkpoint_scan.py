"""Checkpoint scans (``tts-nb scan-checkpoints``, the doctor; issue 29 item 5): the scan as it was (``torch.load``
into memory, torch's default threads, ``isfinite(t).all()`` on every tensor) against the scan now
(:func:`tts_nb_utils.diagnose.checkpoints.scan_checkpoints`: memory-mapped load, the notebooks' thread policy, the
one-reduction ``isfinite(t.sum())`` first), side by side in one run, on a quiet machine and with two busy processes.

The files: GPT-SoVITS ``G_``/``D_`` pairs as ``utils.save_checkpoint`` writes them (weights plus both AdamW
moments), about 3 x 4 M float32 values each. Run: ``.venv/bin/python benchmarks/bench_checkpoint_scan.py``.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tts_nb_utils.diagnose.checkpoints import checkpoint_files, scan_checkpoints  # noqa: E402

PAIRS = 3
REPEATS = 3


def _busy(stop) -> None:
    x = 0
    while not stop.is_set():
        x += 1


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


def scan_before(files: list[Path]) -> int:
    """The previous scan: a full load, every tensor checked element by element, torch's default threads."""
    bad = 0

    def walk(obj):
        nonlocal bad
        if isinstance(obj, torch.Tensor):
            if obj.is_floating_point() and not bool(torch.isfinite(obj).all()):
                bad += 1
        elif isinstance(obj, dict):
            for v in obj.values():
                walk(v)
        elif isinstance(obj, list | tuple):
            for v in obj:
                walk(v)

    for f in files:
        walk(torch.load(f, map_location="cpu", weights_only=True))
    return bad


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
        assert scan_before(files) == scan_now(files) == 0
        for label, n_busy in (("quiet", 0), ("2 busy processes", 2)):
            stop = mp.Event()
            procs = [mp.Process(target=_busy, args=(stop,), daemon=True) for _ in range(n_busy)]
            for p in procs:
                p.start()
            try:
                torch.set_num_threads(default)
                before = best(scan_before, files)
                now = best(scan_now, files)
            finally:
                stop.set()
                for p in procs:
                    p.join()
            print(f"  {label:<18} before {before:6.2f} s ({mib / before:5.0f} MiB/s), now {now:6.2f} s "
                  f"({mib / now:5.0f} MiB/s): x{before / now:.2f} faster")


if __name__ == "__main__":
    main()
