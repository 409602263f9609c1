"""Singing and mixed folders: the SNR estimate without pauses (within its stated error), band-limited takes,
mixed sample rates through ``validate`` and ``prepare`` (one rate out, and the report says which)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import soxr

from tts_nb_utils.audio.bandwidth import content_cutoff_hz
from tts_nb_utils.audio.snr import estimate_snr_db
from tts_nb_utils.audio.synth import add_noise, clean_speech, legato_singing
from tts_nb_utils.cli import main
from tts_nb_utils.dataprep.prepare import PrepareConfig, prepare_folder
from tts_nb_utils.dataprep.presets import GPT_SOVITS_SR
from tts_nb_utils.dataprep.rates import PREPARE_PRESETS, most_common_rate
from tts_nb_utils.dataprep.validate import ValidationConfig, validate_file, validate_folder
from tts_nb_utils.errors import UsageError

# (kind, true SNR dB) -> (lowest, highest) error allowed: the measured range (audio/snr.py) plus 1 dB.
ERROR_DB = {
    ("speech", 20): (-2.6, 1.0), ("speech", 30): (-3.2, 1.0), ("speech", 50): (-4.5, 1.0),
    ("singing", 10): (-3.0, 1.0), ("singing", 20): (-4.2, 1.0), ("singing", 30): (-6.4, 1.0),
    ("singing", 50): (-14.0, 1.0),
}
GENERATORS = {"speech": clean_speech, "singing": legato_singing}


@pytest.mark.parametrize(("kind", "snr"), sorted(ERROR_DB))
@pytest.mark.parametrize("sr", [22050, 44100])
def test_snr_estimate_within_its_stated_error(kind, snr, sr):
    seed = snr + sr % 7
    y = add_noise(GENERATORS[kind](4.0, sr, seed=seed), snr, seed=seed)
    low, high = ERROR_DB[(kind, snr)]
    assert low <= estimate_snr_db(y, sr) - snr <= high


@pytest.mark.parametrize("seed", range(3))
def test_clean_legato_singing_is_not_low_snr(seed):
    sr = 44100
    y = add_noise(legato_singing(5.0, sr, seed=seed, f0=[196.0, 262.0, 392.0][seed]), 50, seed=seed)
    issues, m = validate_signal(y, sr)
    assert "low_snr" not in issues and m.snr_db > 30
    assert "low_snr" in validate_signal(add_noise(legato_singing(5.0, sr, seed=seed), 8, seed=seed), sr)[0]


def validate_signal(y, sr):
    from tts_nb_utils.dataprep.validate import check_signal

    return check_signal(y, sr, ValidationConfig(max_duration_s=60))


def test_band_limited_takes_are_found_and_natural_ones_are_not():
    for src_sr, cutoff in ((8000, 4000.0), (16000, 8000.0), (22050, 11025.0)):
        y = add_noise(clean_speech(3.0, src_sr, seed=1), 40, seed=1)
        assert content_cutoff_hz(soxr.resample(y, src_sr, 44100), 44100) == cutoff
        assert content_cutoff_hz(y, src_sr) is None  # at its own rate it is full band
    assert content_cutoff_hz(add_noise(legato_singing(3.0, 44100, seed=2), 50, seed=2), 44100) is None
    assert content_cutoff_hz(add_noise(clean_speech(3.0, 48000, seed=2), 50, seed=2), 48000) is None
    assert content_cutoff_hz(np.zeros(44100, np.float32), 44100) is None


# ------------------------------------------------------------------------------------------- folders


def _take(sr, seed, seconds=6.0):
    return add_noise(clean_speech(seconds, sr, seed=seed), 40, seed=seed)


@pytest.fixture
def mixed(tmp_path):
    """Three 22.05 kHz takes, an 8 kHz take, a 44.1 kHz take, and 8 kHz audio stored at 44.1 kHz."""
    src = tmp_path / "in"
    src.mkdir()
    for k in range(3):
        sf.write(src / f"a{k}.wav", _take(22050, k), 22050)
    sf.write(src / "phone.wav", _take(8000, 5), 8000)
    sf.write(src / "hifi.wav", _take(44100, 6), 44100)
    sf.write(src / "upsampled.wav", soxr.resample(_take(8000, 7), 8000, 22050), 22050)
    return src


def test_validate_flags_mixed_rates_and_band_limited_without_sample_rate(mixed, capsys):
    rows = {r.path: r for r in validate_folder(mixed, ValidationConfig(max_duration_s=60), progress=False)}
    assert {p for p, r in rows.items() if "wrong_sample_rate" in r.issues} == {"phone.wav", "hifi.wav"}
    assert {p for p, r in rows.items() if "band_limited" in r.issues} == {"upsampled.wav"}
    assert rows["upsampled.wav"].metrics.content_cutoff_hz == 4000.0
    assert all("low_snr" not in r.issues for r in rows.values())
    # one file alone has no folder to differ from; --sample-rate still decides when given
    assert "wrong_sample_rate" not in validate_file(mixed / "phone.wav").issues
    flagged = validate_folder(mixed, ValidationConfig(sample_rate=8000, max_duration_s=60), progress=False)
    assert sum("wrong_sample_rate" in r.issues for r in flagged) == 5
    assert main(["validate", str(mixed), "--max-duration", "60", "-q", "--fail-on", "wrong_sample_rate"]) == 1


def test_prepare_writes_one_rate_and_says_which(mixed, tmp_path, capsys):
    result = prepare_folder(mixed, tmp_path / "out", progress=False)
    rates = {sf.info(str(tmp_path / "out" / e["path"])).samplerate for e in result.entries}
    assert rates == {22050} and {e["sample_rate"] for e in result.entries} == {22050}
    assert result.rate.rate == 22050 and "most common input rate: 4 of 6" in result.rate.reason
    assert "8000" in result.rate.reason and "44100" in result.rate.reason
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["summary"]["sample_rate"] == result.rate.reason
    assert "sample rate of every clip: 22050 Hz" in (tmp_path / "out" / "report.md").read_text()
    assert report["before"]["by_code"]["wrong_sample_rate"] == 2 and report["after"]["by_code"]["wrong_sample_rate"] == 0

    main(["prepare", str(mixed), str(tmp_path / "gs"), "--preset", "gpt-sovits", "-q", "--max-duration", "60"])
    assert "sample rate of every clip: 32000 Hz (the gpt-sovits preset)" in capsys.readouterr().out
    manifest = [json.loads(line) for line in (tmp_path / "gs" / "manifest.jsonl").read_text().splitlines()]
    assert manifest and {e["sample_rate"] for e in manifest} == {32000}


def test_rate_rules(tmp_path):
    (tmp_path / "in").mkdir()
    assert PREPARE_PRESETS["gpt-sovits"] == GPT_SOVITS_SR
    assert most_common_rate([22050, 44100, None, 44100, 22050]) == (44100, 2)  # a tie: the higher rate
    assert most_common_rate([None]) == (None, 0)
    with pytest.raises(UsageError, match="preset 'rvc'"):
        prepare_folder(tmp_path / "in", tmp_path / "out", PrepareConfig(preset="rvc"), progress=False)


def test_denoise_verdicts_never_call_clipping_fixed():
    from tts_nb_utils.dataprep.denoise import denoise_verdicts

    lines = denoise_verdicts(["too_long", "clipping", "low_snr"], ["too_long"])
    assert lines[0] == "too_long: still there"
    assert lines[1].startswith("clipping: not repaired") and "fixed" not in lines[1]
    assert lines[2].startswith("low_snr: fixed")
    assert denoise_verdicts(["low_snr"], ["low_snr", "too_quiet"]) == [
        "low_snr: still there (try stationary=True)", "too_quiet: new after denoising"]


def test_unreadable_row_names_the_file_not_a_file_object(tmp_path):
    from tts_nb_utils.dataprep.validate import format_table, markdown_table

    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "bad.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt junk")
    (row,) = validate_folder(tmp_path, progress=False)
    assert row.issues == ["unreadable"] and "sub/bad.wav" in row.error and "BufferedReader" not in row.error
    assert "\n" not in row.error and row.error in format_table([row]) and "| sub/bad.wav |" in markdown_table([row])
