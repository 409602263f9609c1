"""Torch CPU threads for the notebooks' small models: one thread against torch's default, on a quiet machine and
with two busy processes beside it, measured side by side in one run (the policy in ``device.configure_threads``).

The workload is notebook 02's training step (TinyVits, batch 4, fp32): what every notebook's loops look like.
Run: ``.venv/bin/python benchmarks/bench_threads.py`` (about a minute).
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tts_nb_utils.demos.nb02_tiny_vits import (  # noqa: E402
    TinyVits,
    TinyVitsConfig,
    content_features,
    demo_clips,
    generator_losses,  # noqa: E402
)

STEPS = 30


def _busy(stop) -> None:
    x = 0
    while not stop.is_set():
        x += 1


@contextlib.contextmanager
def busy_processes(n: int):
    """``n`` processes spinning on the CPU while the block runs (other work sharing the machine)."""
    stop = mp.Event()
    procs = [mp.Process(target=_busy, args=(stop,), daemon=True) for _ in range(n)]
    for p in procs:
        p.start()
    try:
        yield
    finally:
        stop.set()
        for p in procs:
            p.join()


def seconds_per_step(threads: int) -> float:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    cfg = TinyVitsConfig()
    clips = torch.from_numpy(demo_clips(8, 0.25, cfg))
    content = content_features(clips, cfg)
    model = TinyVits(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    for step in range(STEPS + 3):
        if step == 3:
            start = time.perf_counter()
        loss = generator_losses(model, content[:4], clips[:4])["total"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    return (time.perf_counter() - start) / STEPS


def main() -> None:
    default = torch.get_num_threads()
    print(f"{os.cpu_count()} CPU(s); torch default threads {default}; {STEPS} steps of notebook 02's model")
    results = {}
    for label, n_busy in (("quiet", 0), ("2 busy processes", 2)):
        with busy_processes(n_busy):
            for threads in sorted({1, default}):
                results[label, threads] = seconds_per_step(threads)
    for (label, threads), s in results.items():
        print(f"  {label:<18} threads {threads}: {s * 1e3:7.1f} ms/step")
    for threads in sorted({1, default}):
        print(f"  slowdown with 2 busy processes, {threads} thread(s): "
              f"x{results['2 busy processes', threads] / results['quiet', threads]:.2f}")
    if default > 1:
        print(f"  1 thread vs {default}: quiet x{results['quiet', 1] / results['quiet', default]:.2f}, "
              f"busy x{results['2 busy processes', 1] / results['2 busy processes', default]:.2f} (below 1: faster)")


if __name__ == "__main__":
    main()
