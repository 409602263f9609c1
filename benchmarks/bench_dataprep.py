"""Real-time factors of validate, slice and denoise on 12 minutes of speech-like audio, and the slicer's speed
against a plain per-frame loop of the same algorithm (same cut points, checked).

    .venv/bin/python benchmarks/bench_dataprep.py

Aim: validation and slicing at least 1000x real time on one core. One thread for NumPy is not forced;
the machine is shared, so figures are noisy.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from tts_nb_utils.audio import speechlike
from tts_nb_utils.dataprep.denoise import denoise
from tts_nb_utils.dataprep.slicer import SlicerConfig, slice_ranges, slice_ranges_reference
from tts_nb_utils.dataprep.validate import ValidationConfig, check_signal, validate_folder

SR = 22050
MINUTES = 12
TAKE_S = 60


def speech_take(seconds: float, sr: int, seed: int) -> np.ndarray:
    """Speech-like audio with a pause every 1.5-5 s and a light noise floor (also used by bench_dataprep_ratios)."""
    rng = np.random.default_rng(seed)
    pauses, t = [], 0.5
    while t < seconds:
        d = float(rng.uniform(0.2, 1.2))
        pauses.append((t, t + d))
        t += d + float(rng.uniform(1.5, 5.0))
    y = speechlike(seconds, sr, seed=seed, pauses=pauses)
    return (y + 0.003 * rng.standard_normal(len(y))).astype(np.float32)


def takes() -> list[np.ndarray]:
    return [speech_take(TAKE_S, SR, k) for k in range(MINUTES * 60 // TAKE_S)]


def best_of(fn, repeat=3) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    ys = takes()
    audio_s = sum(len(y) for y in ys) / SR
    print(f"audio: {len(ys)} takes, {audio_s / 60:.1f} min at {SR} Hz")
    cfg = SlicerConfig()
    t_check = best_of(lambda: [check_signal(y, SR, ValidationConfig()) for y in ys])
    with tempfile.TemporaryDirectory() as tmp:
        for k, y in enumerate(ys):
            sf.write(Path(tmp) / f"take{k:02d}.flac", y, SR)
        t_files = best_of(lambda: validate_folder(tmp, progress=False), repeat=2)
    t_slice = best_of(lambda: [slice_ranges(y, SR, cfg) for y in ys])
    t_denoise = best_of(lambda: [denoise(y, SR) for y in ys[:3]], repeat=1) * len(ys) / 3
    t_stat = best_of(lambda: [denoise(y, SR, stationary=True) for y in ys[:3]], repeat=1) * len(ys) / 3
    few = ys[:2]
    t_ref = best_of(lambda: [slice_ranges_reference(y, SR, cfg) for y in few], repeat=1)
    t_fast = best_of(lambda: [slice_ranges(y, SR, cfg) for y in few])
    assert all(slice_ranges(y, SR, cfg) == slice_ranges_reference(y, SR, cfg) for y in few)
    print(f"validate (in memory):      {audio_s / t_check:8.0f}x real time ({t_check:.3f} s)")
    print(f"validate (FLAC files):     {audio_s / t_files:8.0f}x real time ({t_files:.3f} s, decoding included)")
    print(f"slice:                     {audio_s / t_slice:8.0f}x real time ({t_slice:.3f} s)")
    print(f"denoise (non-stationary):  {audio_s / t_denoise:8.0f}x real time (est. {t_denoise:.2f} s from 3 min)")
    print(f"denoise (stationary):      {audio_s / t_stat:8.0f}x real time (est. {t_stat:.2f} s from 3 min)")
    print(f"slicer vs per-frame loop:  {t_ref / t_fast:8.0f}x faster (same cut points; {t_ref:.2f} s vs {t_fast:.4f} s "
          f"on {len(few)} min)")


if __name__ == "__main__":
    main()
