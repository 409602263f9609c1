"""Shared audio helpers and the librosa/torch.stft mel spectrogram."""

from __future__ import annotations

import librosa
import numpy as np
import pytest
import torch

from tts_nb_utils.audio import AudioReadError, load_audio, peak_dbfs, rms_dbfs, save_audio, speechlike
from tts_nb_utils.audio.mel import MelConfig, mel_spectrogram


def test_levels_in_dbfs():
    full = np.ones(100, dtype=np.float32)
    assert peak_dbfs(full) == pytest.approx(0.0)
    assert rms_dbfs(0.1 * full) == pytest.approx(-20.0)
    assert peak_dbfs(np.zeros(10)) == -240.0 and rms_dbfs(np.array([])) == -240.0


def test_save_load_roundtrip_and_resample(tmp_path):
    y = speechlike(1.0, sr=16000, seed=1)
    path = save_audio(tmp_path / "a.wav", y, 16000, subtype="FLOAT")
    back, sr = load_audio(path)
    assert sr == 16000 and np.allclose(back, y)
    res, sr2 = load_audio(path, sr=8000)
    assert sr2 == 8000 and abs(len(res) - 8000) <= 1
    assert [p.name for p in tmp_path.iterdir()] == ["a.wav"]


def test_unreadable_file_names_the_file(tmp_path):
    bad = tmp_path / "noise.flac"
    bad.write_text("not audio")
    with pytest.raises(AudioReadError, match="noise.flac"):
        load_audio(bad)


def test_speechlike_has_its_pauses_and_level():
    sr = 16000
    y = speechlike(3.0, sr=sr, pauses=[(1.0, 1.5)], level_dbfs=-20)
    pause = y[int(1.05 * sr) : int(1.45 * sr)]
    assert peak_dbfs(pause) < -100
    assert rms_dbfs(y[: sr]) == pytest.approx(-20, abs=1.5)
    assert np.array_equal(y, speechlike(3.0, sr=sr, pauses=[(1.0, 1.5)], level_dbfs=-20))


def test_mel_matches_librosa_and_is_differentiable():
    cfg = MelConfig(sample_rate=16000, n_fft=512, hop_length=128, win_length=512, n_mels=40, f_max=8000)
    y = speechlike(0.5, sr=16000, seed=2)
    ours = mel_spectrogram(torch.from_numpy(y), cfg, log=False).numpy()
    ref = librosa.feature.melspectrogram(
        y=y, sr=16000, n_fft=512, hop_length=128, win_length=512, n_mels=40, fmax=8000, power=1.0,
        center=True, pad_mode="reflect",
    )
    # Same filters and window; HiFi-GAN-style padding of (n_fft - hop) / 2 instead of n_fft / 2 shifts frames.
    n = min(ours.shape[1], ref.shape[1]) - 4
    assert ours.shape[0] == 40
    corr = np.corrcoef(np.log(ours[:, 2:n] + 1e-5).ravel(), np.log(ref[:, 3 : n + 1] + 1e-5).ravel())[0, 1]
    assert corr > 0.99
    x = torch.from_numpy(y).requires_grad_(True)
    mel_spectrogram(x.unsqueeze(0), cfg).mean().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
