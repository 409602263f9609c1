"""Takes the slicer reference was never tuned on: speech-like signals at several rates and channel counts, with
room tone, written as 16-bit FLAC/WAV. Deterministic; ``tests/data/make_slice_reference.py`` ran GPT-SoVITS's
slice_audio.py on exactly these files (their sha256 is in the reference, so drift is caught, not hidden).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from tts_nb_utils.audio import speechlike

#: name -> (sample rate, channels, seconds, seed)
CASES = {
    "unseen_a_44k_stereo.flac": (44100, 2, 21.0, 11),
    "unseen_b_48k.wav": (48000, 1, 17.5, 12),
    "unseen_c_16k.flac": (16000, 1, 24.0, 13),
    "unseen_d_32k_stereo.wav": (32000, 2, 13.0, 14),
    "unseen_e_22k.flac": (22050, 1, 19.0, 15),
}


def pauses_for(seed: int, seconds: float) -> list[tuple[float, float]]:
    rng = np.random.default_rng(seed)
    out, t = [], float(rng.uniform(0.0, 1.0))
    while t < seconds:
        d = float(rng.uniform(0.08, 1.6))
        out.append((t, t + d))
        t += d + float(rng.uniform(0.6, 4.5))
    return out


def make_take(sr: int, channels: int, seconds: float, seed: int) -> np.ndarray:
    """``[n, channels]`` float32: speech-like audio with pauses, room tone at about -60 dBFS, -18 dBFS speech."""
    rng = np.random.default_rng(seed + 100)
    y = speechlike(seconds, sr, seed=seed, pauses=pauses_for(seed, seconds), level_dbfs=-18.0)
    cols = [y * g for g in (1.0, 0.8)[:channels]]
    x = np.stack(cols, axis=1) + 0.001 * rng.standard_normal((len(y), channels))
    return x.astype(np.float32)


def write_cases(folder: str | Path) -> list[Path]:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, (sr, channels, seconds, seed) in CASES.items():
        path = folder / name
        sf.write(str(path), make_take(sr, channels, seconds, seed), sr, subtype="PCM_16")
        paths.append(path)
    return paths
