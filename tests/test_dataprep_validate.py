"""The validator: each issue code on built signals, malformed files, the fatal-code rule, read-only inputs."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import soundfile as sf

from tts_nb_utils.audio import speechlike
from tts_nb_utils.dataprep.validate import (
    CODES,
    ValidationConfig,
    ValidationUsageError,
    check_signal,
    validate_file,
    validate_folder,
)
from tts_nb_utils.errors import UsageError

SR = 16000
PAUSES = [(1.0, 1.4), (2.6, 3.1)]


def room_tone(n, level_dbfs, seed=1):
    rng = np.random.default_rng(seed)
    return (10 ** (level_dbfs / 20) * rng.standard_normal(n)).astype(np.float32)


def clean(seconds=4.0, seed=0):
    """Speech-like signal with pauses and a little room tone (-65 dBFS): must pass every check."""
    y = speechlike(seconds, SR, seed=seed, pauses=PAUSES)
    return y + room_tone(len(y), -65, seed)


def issues(y, **cfg):
    return check_signal(y, SR, ValidationConfig(**cfg))[0]


def test_clean_recording_with_room_tone_passes_everything():
    codes, m = check_signal(clean(), SR, ValidationConfig(sample_rate=SR))
    assert codes == []
    assert m.snr_db > 30  # not low_snr, by a wide margin


@pytest.mark.parametrize(
    "make, code",
    [
        (lambda y: np.zeros(0, np.float32), "empty"),
        (lambda y: np.where(np.arange(len(y)) == 100, np.nan, y), "non_finite"),
        (lambda y: np.where(np.arange(len(y)) == 5, np.inf, y), "non_finite"),
        (lambda y: y * 10 ** (-40 / 20), "silent"),  # peak about -48 dBFS
        (lambda y: np.clip(y * 8, -1, 1), "clipping"),
        (lambda y: y + 0.05, "dc_offset"),
        (lambda y: y + room_tone(len(y), -28), "low_snr"),
        (lambda y: y[: SR // 2], "too_short"),
        (lambda y: np.tile(y, 5), "too_long"),
        (lambda y: y * 10 ** (-22 / 20), "too_quiet"),  # active RMS about -42 dBFS, peak above -45
        (lambda y: np.concatenate([np.zeros(int(1.5 * SR), np.float32), y]), "long_silence"),
        (lambda y: np.concatenate([y, np.zeros(int(3.5 * SR), np.float32), y]), "long_silence"),
        (lambda y: np.stack([y, y], axis=1), "not_mono"),
    ],
)
def test_each_code_is_detected(make, code):
    found = issues(make(clean()).astype(np.float32))
    assert code in found
    if code in ("empty", "non_finite", "silent"):
        assert found == [code], "a fatal code comes alone"


def test_thresholds_are_overridable():
    y = clean() + 0.005
    assert "dc_offset" not in issues(y)
    assert "dc_offset" in issues(y, dc_offset=0.001)
    assert "too_short" in issues(clean(), min_duration_s=5.0)
    assert "low_snr" in issues(clean(), min_snr_db=60.0)


def test_wrong_sample_rate_only_when_a_target_is_given():
    assert "wrong_sample_rate" not in issues(clean())
    assert "wrong_sample_rate" in issues(clean(), sample_rate=22050)


def test_min_above_max_duration_is_a_usage_error():
    with pytest.raises(ValidationUsageError, match="min_duration_s"):
        ValidationConfig(min_duration_s=20, max_duration_s=10)


def malformed(folder):
    """Files that break naive loaders; returns {name: expected code}."""
    rng = np.random.default_rng(0)
    (folder / "random.wav").write_bytes(rng.integers(0, 256, 4000, dtype=np.uint8).tobytes())
    good = folder / "tmp_good.wav"
    sf.write(good, clean(), SR)
    (folder / "truncated.wav").write_bytes(good.read_bytes()[:30])
    good.unlink()
    (folder / "text.flac").write_text("this is not audio\n")
    sf.write(folder / "zero_frames.wav", np.zeros(0, np.float32), SR)
    y = clean()
    y[500:510] = np.nan
    sf.write(folder / "nan.wav", y, SR, subtype="FLOAT")
    (folder / "sub").mkdir()
    sf.write(folder / "sub" / "fine.flac", clean(seed=3), SR)
    return {"random.wav": "unreadable", "truncated.wav": "unreadable", "text.flac": "unreadable",
            "zero_frames.wav": "empty", "nan.wav": "non_finite"}


def digest(folder):
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("jobs", [1, 2])
def test_malformed_files_each_get_a_row_and_the_batch_goes_on(tmp_path, jobs):
    expected = malformed(tmp_path)
    before = digest(tmp_path)
    rows = validate_folder(tmp_path, jobs=jobs, progress=False)
    assert digest(tmp_path) == before, "validation must never modify its inputs"
    by_path = {r.path: r for r in rows}
    assert set(by_path) == set(expected) | {"sub/fine.flac"}
    for name, code in expected.items():
        assert by_path[name].issues == [code], (name, by_path[name])
    assert by_path["random.wav"].error and "random.wav" in by_path["random.wav"].error
    assert str(tmp_path) not in by_path["random.wav"].error  # the row names the relative path only
    assert by_path["sub/fine.flac"].issues == []
    assert all(set(r.issues) <= set(CODES) for r in rows)


def test_missing_folder_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="nope: no such folder"):  # the shared lister's error (tts-nb: exit 2)
        validate_folder(tmp_path / "nope", progress=False)


def test_file_facts(tmp_path):
    sf.write(tmp_path / "a.wav", np.stack([clean(), clean()], 1), SR)
    row = validate_file(tmp_path / "a.wav", root=tmp_path)
    assert (row.path, row.sample_rate, row.channels) == ("a.wav", SR, 2)
    assert row.duration_s == pytest.approx(4.0)
    assert row.issues == ["not_mono"]


def test_demo_corpus_defects_are_all_detected():
    import json

    from tts_nb_utils.runner.paths import data_dir

    manifest = json.loads((data_dir() / "demo" / "manifest.json").read_text())
    rows = validate_folder(data_dir() / "demo" / "raw", ValidationConfig(**manifest["validate_with"]), progress=False)
    found = {r.path: sorted(r.issues) for r in rows}
    assert found == {f["path"]: sorted(f["issues"]) for f in manifest["files"]}


def test_warming_up_before_the_pool_forks_never_raises(tmp_path):
    """``validate_folder(jobs > 1)`` warms the checks on the first file; an unreadable one is the row's finding."""
    from tts_nb_utils.dataprep.validate import warm_up
    from tts_nb_utils.parallel import keep_freed_memory

    (tmp_path / "a.wav").write_text("not audio")
    warm_up(tmp_path / "a.wav")
    warm_up(tmp_path / "missing.wav")
    keep_freed_memory()  # glibc's mallopt, a no-op elsewhere
    sf.write(tmp_path / "b.flac", clean(), SR)
    one, two = (validate_folder(tmp_path, jobs=j, progress=False) for j in (1, 2))
    assert [r.as_dict() for r in one] == [r.as_dict() for r in two]
    assert one[0].issues == ["unreadable"] and one[1].issues == []
