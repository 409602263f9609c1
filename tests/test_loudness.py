"""Integrated loudness (BS.1770) against pyloudnorm's own meter, LUFS normalisation, and prepare --lufs."""

from __future__ import annotations

import numpy as np
import pyloudnorm
import pytest
import soundfile as sf

from tts_nb_utils.audio import speechlike
from tts_nb_utils.audio.loudness import integrated_loudness
from tts_nb_utils.dataprep.normalize import normalize_loudness
from tts_nb_utils.dataprep.prepare import PrepareConfig, prepare_folder
from tts_nb_utils.dataprep.validate import check_signal


@pytest.mark.parametrize(("sr", "seconds", "channels"), [(22050, 20.0, 1), (44100, 6.3, 2), (16000, 0.45, 1),
                                                         (48000, 3.0, 1), (11025, 1.234, 2)])
def test_integrated_loudness_equals_pyloudnorm(sr, seconds, channels):
    y = speechlike(seconds, sr, seed=sr, pauses=[(0.2, 0.3), (1.0, 1.8)], level_dbfs=-27.0)
    y = np.stack([y, 0.6 * y], axis=1) if channels == 2 else y
    want = pyloudnorm.Meter(sr).integrated_loudness(y.astype(np.float64))
    assert integrated_loudness(y, sr) == pytest.approx(want, abs=0.01)


def test_short_and_silent_signals():
    assert integrated_loudness(np.ones(100, np.float32), 16000) is None  # under one 400 ms block
    assert integrated_loudness(np.zeros(16000, np.float32), 16000) == float("-inf")


def test_normalize_loudness_reaches_the_target_or_the_peak_ceiling():
    sr = 22050
    y = speechlike(5.0, sr, seed=3, pauses=[(2.0, 2.5)], level_dbfs=-35.0)
    out = normalize_loudness(y, sr, -23.0).audio
    assert integrated_loudness(out, sr) == pytest.approx(-23.0, abs=0.05)
    loud = normalize_loudness(y, sr, -5.0, peak_ceiling=0.5).audio  # the ceiling wins
    assert np.abs(loud).max() == pytest.approx(0.5, rel=1e-4) and integrated_loudness(loud, sr) < -5.0
    assert normalize_loudness(np.zeros(sr, np.float32), sr).reason == "silent"


def test_prepare_with_lufs_and_the_validator_reports_loudness(tmp_path):
    sr = 22050
    src = tmp_path / "in"
    src.mkdir()
    y = speechlike(12.0, sr, seed=5, pauses=[(5.0, 6.0)], level_dbfs=-30.0)
    sf.write(str(src / "take.flac"), y, sr, subtype="PCM_16")
    cfg = PrepareConfig(denoise=False, loudness_lufs=-20.0)
    result = prepare_folder(src, tmp_path / "out", cfg, progress=False)
    assert len(result.clips) == 2
    for clip in result.clips:
        assert clip.metrics.loudness_lufs == pytest.approx(-20.0, abs=0.1)
    assert check_signal(y, sr)[1].loudness_lufs == pytest.approx(
        pyloudnorm.Meter(sr).integrated_loudness(y.astype(np.float64)), abs=0.01)


@pytest.mark.parametrize("sr", [8000, 22050, 44100, 48000, 96000])
def test_k_weighting_is_pyloudnorms_filter_run_without_scipy_signal(sr):
    from scipy.signal import sosfilt

    from tts_nb_utils.audio.loudness import k_weighted, k_weighting_biquads

    meter = pyloudnorm.Meter(sr)
    for (b, a), theirs in zip(k_weighting_biquads(sr), meter._filters.values(), strict=True):
        assert np.allclose(b, theirs.b, rtol=1e-12) and np.allclose(a, theirs.a, rtol=1e-12)
    rng = np.random.default_rng(sr)
    sos = np.array([np.concatenate([b, a]) for b, a in k_weighting_biquads(sr)])
    for n in (1, 31, 4097, 300_001):  # under one block, a block and a bit, several groups of blocks
        x = rng.standard_normal(n).astype(np.float32)
        assert np.abs(k_weighted(x, sr) - sosfilt(sos, x.astype(np.float64))).max() < 2e-5


@pytest.mark.parametrize("sr", [8000, 16000, 44100, 96000, 192000])
def test_chunked_loudness_equals_pyloudnorm_across_rates_channels_and_odd_lengths(sr):
    """The K-weighting runs a cache-sized chunk at a time (issue 29): lengths that are no multiple of a block,
    a group or a chunk, one chunk and a sample, stereo; the energies to the 100 ms bounds equal sosfilt's."""
    from scipy.signal import sosfilt

    from tts_nb_utils.audio import loudness

    span = loudness.CHUNK * loudness.GROUP * loudness.BLOCK
    sos = np.array([np.concatenate([b, a]) for b, a in loudness.k_weighting_biquads(sr)])
    for n in (int(0.4 * sr), span + 1, 2 * span - 7, int(2.345 * sr)):
        y = speechlike(n / sr, sr, seed=n % 97, pauses=[(0.1, 0.2)], level_dbfs=-24.0)[:n]
        for channels in (1, 2):
            x = np.stack([y, -0.5 * np.roll(y, 7)], axis=1) if channels == 2 else y
            if n < 0.4 * sr:  # one chunk is under one 400 ms block at 192 kHz
                assert integrated_loudness(x, sr) is None
                continue
            want = pyloudnorm.Meter(sr).integrated_loudness(x.astype(np.float64))
            assert integrated_loudness(x, sr) == pytest.approx(want, abs=0.01), (n, channels)
        bounds = np.array([0, 1, loudness.BLOCK, span - 1, span, n // 3, n - 1, n]).clip(0, n)
        energy = np.concatenate([[0.0], np.cumsum(sosfilt(sos, y.astype(np.float64)) ** 2)])[bounds]
        assert np.allclose(loudness._energy_to(y, sr, bounds), energy, rtol=1e-4, atol=1e-9), n
        assert np.abs(loudness.k_weighted(y, sr) - sosfilt(sos, y.astype(np.float64))).max() < 2e-5
    assert integrated_loudness(np.ones(int(0.4 * sr) - 1, np.float32), sr) is None
    assert integrated_loudness(np.zeros((max(span, sr) + 3, 2), np.float32), sr) == float("-inf")
