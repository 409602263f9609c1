"""The slicer (cut points on built signals, equal to the plain per-frame algorithm) and the normaliser."""

from __future__ import annotations

import librosa
import numpy as np
import pytest

from tts_nb_utils.audio import speechlike
from tts_nb_utils.audio.signal import frame_rms
from tts_nb_utils.dataprep.normalize import gpt_sovits_mix, normalize_chunk
from tts_nb_utils.dataprep.slicer import (
    SlicerConfig,
    SlicerConfigError,
    slice_audio,
    slice_ranges,
    slice_ranges_reference,
)

SR = 16000


def test_frame_rms_matches_librosa():
    y = np.random.default_rng(0).standard_normal(12345).astype(np.float32)
    ours = frame_rms(y, 640, 160)
    ref = librosa.feature.rms(y=y, frame_length=640, hop_length=160, center=True, pad_mode="constant")[0]
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-6)


def test_cuts_fall_in_the_known_pauses():
    # 4 s of sound, a 1 s pause, 4 s, a 0.6 s pause, 4.5 s, a 0.15 s pause (too short to cut), 1 s.
    pauses = [(4.0, 5.0), (9.0, 9.6), (14.1, 14.25)]
    y = speechlike(15.25, SR, seed=1, pauses=pauses)
    ranges = slice_ranges(y, SR, SlicerConfig())  # GPT-SoVITS defaults: -34 dB, 4000/300/10/500 ms
    assert len(ranges) == 3
    # Each cut lies inside a pause, and at most max_sil_kept (500 ms) of the pause stays with a clip.
    (a0, b0), (a1, b1), (a2, b2) = ranges
    assert a0 == 0 and b2 == len(y)
    assert 4.0 * SR <= b0 <= 4.6 * SR and 4.4 * SR <= a1 <= 5.0 * SR
    assert 9.0 * SR <= b1 <= a2 <= 9.6 * SR
    assert ranges == slice_ranges_reference(y, SR, SlicerConfig())


def test_a_long_pause_is_removed_keeping_max_sil_kept_each_side():
    y = speechlike(12.0, SR, seed=2, pauses=[(5.0, 8.0)])
    (a0, b0), (a1, b1) = slice_ranges(y, SR, SlicerConfig(max_sil_kept_ms=500))
    assert 5.0 * SR < b0 <= 5.52 * SR
    assert 7.48 * SR <= a1 < 8.0 * SR


def test_clips_are_not_cut_before_min_length():
    y = speechlike(12.0, SR, seed=3, pauses=[(1.0, 1.5), (6.0, 6.5)])
    ranges = slice_ranges(y, SR, SlicerConfig(min_length_ms=4000))
    assert len(ranges) == 2  # the pause at 1 s comes before 4 s of clip: no cut there
    assert ranges[0][1] > 6.0 * SR


@pytest.mark.parametrize("seed", range(12))
def test_same_cut_points_as_the_per_frame_algorithm(seed):
    rng = np.random.default_rng(seed)
    secs = float(rng.uniform(3, 20))
    pauses, t = [], float(rng.uniform(0, 1.5))
    while t < secs:
        d = float(rng.uniform(0.05, 3.0))
        pauses.append((t, t + d))
        t += d + float(rng.uniform(0.3, 5))
    y = speechlike(secs, SR, seed=seed, pauses=pauses) + 0.002 * rng.standard_normal(int(round(secs * SR)))
    cfg = SlicerConfig(
        threshold_db=float(rng.uniform(-50, -25)), min_length_ms=float(rng.choice([1000, 4000])),
        min_interval_ms=float(rng.choice([100, 300, 500])), hop_size_ms=float(rng.choice([5, 10, 20])),
        max_sil_kept_ms=float(rng.choice([100, 500, 2000])),
    )
    assert slice_ranges(y, SR, cfg) == slice_ranges_reference(y, SR, cfg)


def test_chunks_carry_their_ranges_and_stereo_works():
    y = speechlike(10.0, SR, seed=4, pauses=[(5.0, 6.0)])
    chunks = slice_audio(np.stack([y, y], 1), SR)
    assert [(c.start, c.end) for c in chunks] == slice_ranges(y, SR)
    assert all(c.audio.shape == (c.end - c.start, 2) for c in chunks)


def test_bad_slicer_parameters_are_rejected():
    with pytest.raises(SlicerConfigError, match="min_interval"):
        slice_ranges(np.zeros(SR), SR, SlicerConfig(min_interval_ms=5000))
    with pytest.raises(SlicerConfigError, match="max_sil_kept"):
        SlicerConfig(max_sil_kept_ms=1).check()


def test_gpt_sovits_mix_turns_a_silent_chunk_into_nan_and_ours_drops_it():
    silent = np.zeros(SR, np.float32)
    with np.errstate(invalid="ignore"):
        assert np.isnan(gpt_sovits_mix(silent)).all()
    result = normalize_chunk(silent)
    assert result.dropped and result.reason == "silent" and result.audio is None
    nearly = (1e-4 * np.random.default_rng(0).standard_normal(SR)).astype(np.float32)  # -70 dBFS hiss
    assert normalize_chunk(nearly).reason == "silent"
    assert normalize_chunk(np.array([0.1, np.nan], np.float32)).reason == "non_finite"


def test_normalizer_matches_gpt_sovits_on_ordinary_chunks():
    y = speechlike(2.0, SR, seed=5) * 0.5
    out = normalize_chunk(y).audio
    np.testing.assert_allclose(out, gpt_sovits_mix(y), rtol=1e-5, atol=1e-6)
    assert np.abs(out).max() == pytest.approx(0.9 * 0.25 + 0.75 * np.abs(y).max(), rel=1e-5)
    loud = y / np.abs(y).max() * 1.7  # peak above 1: scaled to 1 first, result peaks at 0.975
    assert np.abs(normalize_chunk(loud).audio).max() == pytest.approx(0.975, rel=1e-5)
    assert np.isfinite(normalize_chunk(loud).audio).all()
