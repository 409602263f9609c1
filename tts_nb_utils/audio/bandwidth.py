"""Where a take's content ends: an 8 kHz recording stored at 44.1 kHz has nothing above 4 kHz.

The validator's ``band_limited`` code (notebook 01, ``tts-nb validate``, the doctor) uses
:func:`content_cutoff_hz`. A resampled or phone-quality take shows a cliff: the level falls by tens of dB at a
frequency far below Nyquist and stays down. A natural recording rolls off gradually and keeps room noise
and breath up to Nyquist, 10-40 dB under the band below.

Method: the long-term power spectrum (the Hann frames of about 40 ms that ``audio/snr.py`` uses, the active
frames only: within 40 dB of the loudest); for each candidate cutoff (the Nyquist frequencies of 8, 11.025, 16, 22.05 and 32 kHz that lie below
0.75 of this file's Nyquist), the mean power per bin from 1.05 x cutoff to 0.98 x Nyquist against that of the
octave below the cutoff. The lowest candidate where the band above is more than ``drop_db`` (55 dB) down is the
cutoff. Resampled takes (soxr, any quality) are 80-140 dB down above it; a 16-bit file's rounding noise sits about
70 dB under speech at -20 dBFS, still past 55.
"""

from __future__ import annotations

import numpy as np

from .snr import ACTIVE_MARGIN_DB, active_frames, spectrogram

#: Nyquist frequencies (Hz) of the rates takes are commonly recorded or exported at.
CANDIDATES_HZ = (4000.0, 5512.5, 8000.0, 11025.0, 16000.0)
DROP_DB = 55.0


def long_term_spectrum(power: np.ndarray, sr: int,
                       margin_db: float = ACTIVE_MARGIN_DB) -> tuple[np.ndarray, np.ndarray]:
    """(frequencies in Hz, mean power per bin) of :func:`.snr.spectrogram`'s ``power`` over the frames within
    ``margin_db`` of the loudest (:func:`.snr.active_frames`)."""
    keep = active_frames(power, margin_db)
    return np.fft.rfftfreq(2 * (power.shape[1] - 1), 1 / sr), power[keep].mean(axis=0)


def content_cutoff_hz(mono: np.ndarray, sr: int, drop_db: float = DROP_DB,
                      power: np.ndarray | None = None) -> float | None:
    """The frequency (Hz) where the take's content ends, when that is far below Nyquist (see the module
    docstring); None when the content reaches up to Nyquist or the take is silent. ``power``: the take's
    :func:`.snr.spectrogram`, when already computed."""
    nyquist = sr / 2
    candidates = [c for c in CANDIDATES_HZ if c <= 0.75 * nyquist]
    power = spectrogram(mono, sr) if power is None and candidates else power
    if not candidates or not power.any():
        return None
    freqs, power = long_term_spectrum(power, sr)
    for cutoff in candidates:
        below = power[(freqs >= cutoff / 2) & (freqs < 0.95 * cutoff)].mean()  # power per bin
        above = power[(freqs > 1.05 * cutoff) & (freqs < 0.98 * nyquist)].mean()
        if below > 0 and above < below * 10 ** (-drop_db / 10):
            return cutoff
    return None
