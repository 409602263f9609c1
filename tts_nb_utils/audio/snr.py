"""Signal-to-noise ratio of a take that may have no pauses: a noise floor per frequency, as for singing.

The validator's ``low_snr`` (notebook 01, ``tts-nb validate``, the doctor) uses :func:`estimate_snr_db`. A floor
taken from the quietest frames needs pauses; sustained singing has none (its quietest frames are singing), so
clean legato takes used to read 0-15 dB. Here the noise is found between the partials instead:

1. power spectra of Hann frames of about 40 ms (:func:`spectrogram`: back to back, at most 1000 frames evenly
   spread; ``audio/bandwidth.py`` reads the same frames), over the active region (first to last frame within 40 dB of the loudest, so digital padding is not a floor);
2. per frequency bin, the 5th percentile over time: in pauses, and in bins the moving partials leave, only
   noise is left;
3. across frequency, the 10th percentile in a 600 Hz window: removes the partials that never leave a bin (a
   held note), since a voice's partials are narrow and noise is broad;
4. mains hum (a stationary 50 or 60 Hz peak) is narrow too: when step 2 shows one at the mains frequency,
   the bins at its multiples up to 1 kHz keep their step-2 level;
5. the percentiles are scaled to an unbiased noise power, a factor measured once on white Gaussian noise;
   SNR = (mean power - noise power) / noise power, over the active region.

Measured error (``benchmarks/bench_snr.py``: estimate minus the true SNR of Gaussian noise added to a clean
synthetic take, 6 s at 16, 22.05 and 44.1 kHz, seeds 0-2): speech-like takes with pauses -1.0..-0.2 dB at 10 dB,
-1.6..-0.4 at 20, -2.2..-0.6 at 30, -3.5..-0.2 at 50; legato singing with vibrato and no pause -2.0..-0.7 at
10 dB, -3.2..-1.5 at 20, -5.4..-3.0 at 30, -13.0..-10.3 at 50 (there the vibrato's leakage between the partials
is the floor). It reads low, never high: clean singing (50 dB) reads 37-40 dB, far from the 15 dB ``low_snr``
threshold, and a take at 20 dB reads 16.8 dB or more. The method assumes broadband noise; narrow tones other
than mains hum (a whistle) are missed.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

WINDOW_S = 0.04
MAX_FRAMES = 1000
TIME_QUANTILE = 0.05
FREQ_QUANTILE = 0.10
FREQ_WIDTH_HZ = 600.0
ACTIVE_MARGIN_DB = 40.0
MAINS_HZ = (50.0, 60.0)
HUM_MAX_HZ = 1000.0


def _power_frames(x: np.ndarray, n_fft: int, centre: float = 0.0) -> np.ndarray:
    """``[frames, n_fft // 2 + 1]`` float32 power spectra of Hann frames of ``x - centre``, hop n_fft or more (at
    most MAX_FRAMES). Only the frames' samples are centred, windowed and squared, each in place (issue 29)."""
    import scipy.fft

    hop = max(n_fft, (len(x) - n_fft) // MAX_FRAMES + 1)
    frames = np.lib.stride_tricks.sliding_window_view(x, n_fft)[::hop]
    windowed = np.subtract(frames, np.float32(centre))
    windowed *= np.hanning(n_fft).astype(np.float32)
    spec = scipy.fft.rfft(windowed, axis=1, overwrite_x=True)
    pairs = spec.view(np.float32).reshape(*spec.shape, 2)  # (real, imaginary)
    return np.einsum("ijk,ijk->ij", pairs, pairs)


def spectrogram(mono: np.ndarray, sr: int, mean: float | None = None) -> np.ndarray:
    """Step 1's power spectra (``[frames, bins]``, float32) of ``mono`` with its mean removed (``mean``: that
    mean in float64, when the caller has it); a take shorter than one frame is zero-padded to one."""
    x = np.asarray(mono, dtype=np.float32)
    if mean is None:
        mean = x.mean(dtype=np.float64) if len(x) else 0.0
    centre = np.float32(mean)
    n_fft = _n_fft(sr)
    if len(x) < n_fft:  # the padding stays zero: centre first
        return _power_frames(np.pad(x - centre, (0, n_fft - len(x))), n_fft)
    return _power_frames(x, n_fft, centre)


def _time_quantile(power: np.ndarray) -> np.ndarray:
    """Per bin, the TIME_QUANTILE of ``power`` over frames (np.partition: the lower order statistic)."""
    k = int(TIME_QUANTILE * (len(power) - 1))
    return np.partition(power, k, axis=0)[k]


def _floors(power: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """(per-bin time percentile, its running percentile across ``width`` bins)."""
    over_time = _time_quantile(power)
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


def active_frames(power: np.ndarray, margin_db: float = ACTIVE_MARGIN_DB) -> np.ndarray:
    """Mask of :func:`spectrogram`'s frames whose energy is within ``margin_db`` of the loudest one."""
    energy = power.sum(axis=1)
    return energy > energy.max() * 10 ** (-margin_db / 10)


def noise_psd(power: np.ndarray, sr: int) -> tuple[np.ndarray, np.ndarray]:
    """(noise power per bin, the active frames of ``power``) for :func:`spectrogram`'s ``power``."""
    n_fft = _n_fft(sr)
    active = np.flatnonzero(active_frames(power))
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


def estimate_snr_db(mono: np.ndarray, sr: int, power: np.ndarray | None = None) -> float:
    """Estimated SNR (dB) of a mono take (float, any level): see the module docstring for the method and its
    measured error. ``power``: its :func:`spectrogram`, when already computed. 0 for a take shorter than one
    frame (about 40 ms) or with no signal above the noise."""
    if len(mono) < _n_fft(sr):
        return 0.0
    power = spectrogram(mono, sr) if power is None else power
    if not power.any():
        return 0.0
    floor, power = noise_psd(power, sr)
    noise = float(floor.sum())
    total = float(power.sum(axis=1).mean())
    if total - noise <= 0:
        return 0.0
    return float(10 * np.log10((total - noise) / max(noise, total * 1e-12)))
