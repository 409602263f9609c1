"""NanGuard overhead per training step on notebook 02's TinyVits (CPU), and, with CUDA, a check that the guard
adds no device-to-host synchronisation in device-skip mode (torch.cuda.set_sync_debug_mode("error")).

Run: .venv/bin/python benchmarks/bench_nan_guard.py [--rounds 21] [--steps 20]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tts_nb_utils.demos.nb02_tiny_vits import (
    TinyVits,
    TinyVitsConfig,
    content_features,
    demo_clips,
    generator_losses,
)  # noqa: E402
from tts_nb_utils.monitors.nan_guard import NanGuard  # noqa: E402


def make(device, fused=False):
    torch.manual_seed(0)
    cfg = TinyVitsConfig()
    clips = torch.from_numpy(demo_clips(8, 0.25, cfg)).to(device)
    content = content_features(clips, cfg)
    model = TinyVits(cfg).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.8, 0.99), eps=1e-9, fused=fused or None)
    return model, opt, clips, content


def time_steps(model, opt, clips, content, guard, steps: int) -> float:
    """Seconds per step for ``steps`` training steps, through ``guard.step`` or, without one, ``opt.step``."""
    device = clips.device
    idx = torch.arange(4, device=device)
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        loss = generator_losses(model, content[idx], clips[idx])["total"]
        loss.backward()
        if guard is None:
            opt.step()
        else:
            guard.step(loss)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - t0) / steps


def sync_check(steps: int = 20) -> str:
    device = torch.device("cuda")
    model, opt, clips, content = make(device, fused=True)
    guard = NanGuard(model, opt, check_every=steps + 1, snapshot_every=5)
    idx = torch.arange(4, device=device)
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        loss = generator_losses(model, content[idx], clips[idx])["total"]
        loss.backward()
        torch.cuda.set_sync_debug_mode("error")
        try:
            guard.step(loss)
        finally:
            torch.cuda.set_sync_debug_mode("default")
    guard.flush()
    msg = f"CUDA ({torch.cuda.get_device_name()}): {steps} guarded steps with fused AdamW, no synchronisation raised"
    # the default mode: one flag read per step, which the debug mode must see
    model, opt, clips, content = make(device)
    guard = NanGuard(model, opt)
    loss = generator_losses(model, content[idx], clips[idx])["total"]
    loss.backward()
    torch.cuda.set_sync_debug_mode("error")
    try:
        guard.step(loss)
        msg += "; default mode: no sync seen (unexpected)"
    except RuntimeError:
        msg += "; default mode: its one flag read per step is seen, as documented"
    finally:
        torch.cuda.set_sync_debug_mode("default")
    return msg


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=21)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    device = torch.device(args.device)
    # Same model and optimizer for both arms of a pair, blocks alternated (ABAB...) so load from other jobs
    # on a shared machine hits both alike; medians over the blocks.
    pairs = {
        "NanGuard, 1 flag read per step": (False, {}),
        "NanGuard, fused AdamW, check_every=10": (True, {"check_every": 10}),
    }
    print(f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"{args.rounds} alternating blocks of {args.steps} steps per arm, medians of per-step time")
    for label, (fused, options) in pairs.items():
        model, opt, clips, content = make(device, fused=fused)
        guard = NanGuard(model, opt, **options)
        time_steps(model, opt, clips, content, None, 3)  # warm-up
        base, guarded = [], []
        for _ in range(args.rounds):
            base.append(time_steps(model, opt, clips, content, None, args.steps))
            guarded.append(time_steps(model, opt, clips, content, guard, args.steps))
        b, g = statistics.median(base), statistics.median(guarded)
        ratios = sorted(gg / bb for gg, bb in zip(guarded, base, strict=True))
        print(f"{label:<40} {'fused ' if fused else ''}AdamW alone {b * 1e3:6.2f} ms, with guard {g * 1e3:6.2f} ms: "
              f"ratio {g / b:.3f} ({100 * (g / b - 1):+.1f} %), per-block ratios {ratios[0]:.3f}..{ratios[-1]:.3f}")
        # the guard's own work, timed alone (less noisy than the difference of two noisy step times)
        loss = generator_losses(model, content[:4], clips[:4])["total"]
        loss.backward()
        t0 = time.perf_counter()
        for _ in range(200):
            guard.check(loss)
        check = (time.perf_counter() - t0) / 200
        t0 = time.perf_counter()
        for _ in range(20):
            guard._take_snapshot(0)
        snap = (time.perf_counter() - t0) / 20 / guard.snapshot_every
        print(f"{'':<40} guard's own work: flag {check * 1e3:.3f} ms + snapshot {snap * 1e3:.3f} ms/step "
              f"amortised = {100 * (check + snap) / b:.2f} % of a step")
    if torch.cuda.is_available():
        print(sync_check())
    else:
        print("no CUDA device: skipping the set_sync_debug_mode('error') check")


if __name__ == "__main__":
    main()
