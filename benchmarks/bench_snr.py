"""The error of the SNR estimate (``audio/snr.py``, the validator's ``low_snr``) on takes with a known SNR:
legato singing (vibrato, glides, no pause) and speech-like takes with pauses, noise added at 10-50 dB,
at 16, 22.05 and 44.1 kHz. Prints the error range (estimate minus truth) per row, and the time per second of audio.

    .venv/bin/python benchmarks/bench_snr.py [--seeds 3] [--seconds 6]

The docstring of ``tts_nb_utils/audio/snr.py`` and ``benchmarks/README.md`` quote its output.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from tts_nb_utils.audio.snr import estimate_snr_db
from tts_nb_utils.audio.synth import add_noise, clean_speech, legato_singing

KINDS = {"speech (pauses)": clean_speech, "legato singing": legato_singing}
TRUE_DB = (10, 20, 30, 50)
RATES = (16000, 22050, 44100)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=6.0)
    args = ap.parse_args()
    print(f"| take | true SNR (dB) | error min..max (dB), {len(RATES)} rates x {args.seeds} seeds | ms per s of audio |")
    print("|---|---:|---|---:|")
    for kind, make in KINDS.items():
        for true_db in TRUE_DB:
            errors, spent, audio_s = [], 0.0, 0.0
            for sr in RATES:
                for seed in range(args.seeds):
                    y = add_noise(make(args.seconds, sr, seed=seed), true_db, seed=seed)
                    t0 = time.perf_counter()
                    errors.append(estimate_snr_db(y, sr) - true_db)
                    spent += time.perf_counter() - t0
                    audio_s += args.seconds
            print(f"| {kind} | {true_db} | {min(errors):+.1f} .. {max(errors):+.1f} | {1000 * spent / audio_s:.2f} |")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
