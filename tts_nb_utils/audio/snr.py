"""Signal-to-noise ratio of a take that may have no pauses: a noise floor per frequency, as for singing.

The validator's ``low_snr`` (notebook 01, ``tts-nb validate``, the doctor) uses :func:`estimate_snr_db`. A floor
taken from the quietest frames needs pauses; sustained singing has none (its quietest frames are singing), so
clean legato takes used to read 0-15 dB. Here the noise is found between the partials instead:

1. power spectra of Hann frames of about 40 ms (half overlap; at most about 2000 frames, evenly spread), over
   the active region (first to last frame within 40 dB of the loudest, so digital padding is not a floor);
2. per frequency bin, the 5th percentile over time: in pauses, and in bins the moving partials leave, only
   noise is left;
3. across frequency, the 10th percentile in a 600 Hz window: removes the partials that never leave a bin (a
   held note), since a voice's partials are narrow and noise is broad;
4. mains hum (a stationary 50 or 60 Hz peak) is narrow too: when step 2 shows one at the mains frequency,
   the bins at its multiples up to 1 kHz keep their step-2 level;
5. the percentiles are scaled to an unbiased noise power, a factor measured once on white Gaussian noise;
   SNR = (mean power - noise power) / noise power, over the active region.

Measured error (``benchmarks/bench_snr.py``; estimate minus the true SNR of noise added to a clean synthetic
take, 16, 22.05 and 44.1 kHz, seeds 0-2): speech-like takes with pauses -1.2..-0.6 dB at 10 dB, -1.6..-0.8 at
20, -2.1..-1.0 at 30, -3.0..-1.0 at 50; legato singing with vibrato and no pause -1.9..-1.2 at 10 dB,
-3.0..-2.0 at 20, -5.2..-3.6 at 30, -13..-11 at 50 (leakage of the vibrato between partials is the floor there).
It reads low, never high: a take at 20 dB or more is never below 15 dB (the default ``low_snr`` threshold).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

WINDOW_S = 0.04
MAX_FRAMES = 2000
TIME_QUANTILE = 0.05
FREQ_QUANTILE = 0.10
FREQ_WIDTH_HZ = 600.0
ACTIVE_MARGIN_DB = 40.0
MAINS_HZ = (50.0, 60.0)
HUM_MAX_HZ = 1000.0


def _power_frames(x: np.ndarray, n_fft: int) -> np.ndarray:
    """``[frames, n_fft // 2 + 1]`` power spectra of Hann frames, hop n_fft/2 or more (at most MAX_FRAMES)."""
    hop = max(n_fft // 2, (len(x) - n_fft) // MAX_FRAMES + 1)
    frames = np.lib.stride_tricks.sliding_window_view(x, n_fft)[::hop]
    return np.abs(np.fft.rfft(frames * np.hanning(n_fft).astype(x.dtype), axis=1)) ** 2


def _floors(power: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """(per-bin time percentile, its running percentile across ``width`` bins)."""
    over_time = np.quantile(power, TIME_QUANTILE, axis=0)
    padded = np.pad(over_time, (width // 2, width // 2), mode="edge")
    windows = np.lib.stride_tricks.sliding_window_view(padded, width)
    return over_time, np.quantile(windows, FREQ_QUANTILE, axis=1)


def _n_fft(sr: int) -> int:
    return 1 << int(np.ceil(np.log2(sr * WINDOW_S)))


def _width(sr: int) -> int:
    return max(3, int(FREQ_WIDTH_HZ * _n_fft(sr) / sr)) | 1


@lru_cache(maxsize=16)
def _bias(sr: int) -> float:
    """Step 5: the floor's share of the true power of white Gaussian noise (about 0.03; fixed seed)."""
    noise = np.random.default_rng(0).standard_normal(int(6 * sr)).astype(np.float32)
    power = _power_frames(noise, _n_fft(sr))
    return float(_floors(power, _width(sr))[1].sum() / power.sum(axis=1).mean())


def noise_psd(x: np.ndarray, sr: int) -> tuple[np.ndarray, np.ndarray]:
    """(noise power per rfft bin of a Hann frame of :func:`_n_fft` samples, the active frames' power spectra);
    ``x`` mono float, DC removed."""
    n_fft = _n_fft(sr)
    power = _power_frames(x, n_fft)
    energy = power.sum(axis=1)
    active = np.flatnonzero(energy > energy.max() * 10 ** (-ACTIVE_MARGIN_DB / 10))
    power = power[active[0] : active[-1] + 1]
    over_time, floor = _floors(power, _width(sr))
    floor = floor / _bias(sr)
    hz = sr / n_fft
    for mains in MAINS_HZ:
        b = int(round(mains / hz))
        if b >= 1 and over_time[b - 1 : b + 2].max() > 10 * floor[b]:  # a steady peak 10 dB over the floor
            for k in range(1, int(HUM_MAX_HZ / mains) + 1):
                c = int(round(k * mains / hz))
                floor[c - 1 : c + 2] = np.maximum(floor[c - 1 : c + 2], over_time[c - 1 : c + 2])
    return floor, power


def estimate_snr_db(mono: np.ndarray, sr: int) -> float:
    """Estimated SNR (dB) of a mono take (float, any level): see the module docstring for the method and its
    measured error. 0 for a take shorter than one frame (about 40 ms) or with no signal above the noise."""
    x = np.asarray(mono, dtype=np.float32)
    x = x - np.float32(x.mean(dtype=np.float64))
    if len(x) < _n_fft(sr) or not np.any(x):
        return 0.0
    floor, power = noise_psd(x, sr)
    noise = float(floor.sum())
    total = float(power.sum(axis=1).mean())
    if total - noise <= 0:
        return 0.0
    return float(10 * np.log10((total - noise) / max(noise, total * 1e-12)))
