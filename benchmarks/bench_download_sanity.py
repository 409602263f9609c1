"""Download cache and sanity monitor costs (notebook 06).

Prints: the first download of a 64 MB file from the local hub, a cache hit with verify="fast" (sidecar, no
hashing) and verify="full" (sha256 of the file), and the SanityMonitor's overhead per training step for a
~10 M parameter model on this machine's CPU. Run: .venv/bin/python benchmarks/bench_download_sanity.py
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tts_nb_utils.demos.nb06_rvc.localhub import LocalHub, deterministic_bytes, sha256_bytes  # noqa: E402
from tts_nb_utils.download import cached_download  # noqa: E402
from tts_nb_utils.monitors.sanity import SanityMonitor  # noqa: E402


def timed(fn, repeat=5):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def bench_download(mb: int = 64) -> None:
    data = deterministic_bytes(mb * 2**20, seed=0)
    sha = sha256_bytes(data)
    with LocalHub({"/w.bin": data}) as hub, tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        cached_download(hub.url("w.bin"), tmp, sha, progress=False)
        first = time.perf_counter() - t
        fast = timed(lambda: cached_download(hub.url("w.bin"), tmp, progress=False, verify="fast"))
        full = timed(lambda: cached_download(hub.url("w.bin"), tmp, sha, progress=False), 3)
        assert hub.count() == 1
    print(f"download cache, {mb} MB file from 127.0.0.1:")
    print(f"  first call (download + sha256 + rename): {first:8.3f} s  ({mb / first:6.0f} MB/s)")
    print(f"  cache hit, no sha256, verify='fast' (sidecar): {fast * 1e3:8.3f} ms")
    print(
        f"  cache hit, sha256 given (always re-hashed):    {full * 1e3:8.1f} ms  ({full / fast:,.0f}x the sidecar hit)"
    )


def bench_monitor(steps: int = 20) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(1024, 4096), nn.GELU(), nn.Linear(4096, 1024), nn.GELU(), nn.Linear(1024, 1024)
    )
    n = sum(p.numel() for p in model.parameters())
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    x = torch.randn(32, 1024)
    mon = SanityMonitor(model, on_problem="record")
    step_times, monitor_times = [], []
    for _ in range(steps):
        t0 = time.perf_counter()
        loss = model(x).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        t1 = time.perf_counter()
        mon.before_optimizer_step()
        t2 = time.perf_counter()
        opt.step()
        t3 = time.perf_counter()
        mon.after_optimizer_step(loss=loss)
        t4 = time.perf_counter()
        step_times.append((t1 - t0) + (t3 - t2))
        monitor_times.append((t2 - t1) + (t4 - t3))
    step, cost = statistics.median(step_times[3:]), statistics.median(monitor_times[3:])
    print(f"sanity monitor, {n / 1e6:.1f} M parameters, batch 32, CPU ({torch.get_num_threads()} threads):")
    print(f"  training step (forward, backward, Adam): {step * 1e3:7.2f} ms (median)")
    print(f"  monitor (before + after_optimizer_step):{cost * 1e3:7.2f} ms  ({cost / step:.1%} of the step,")
    print(f"  only during the first check_steps={mon.check_steps} steps); flags: {sorted(mon.kinds)}")


if __name__ == "__main__":
    bench_download()
    bench_monitor()
