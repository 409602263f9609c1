"""``tts-nb slice --preset gpt-sovits|openvpi`` against what upstream's own code produced
(``tests/data/slice_reference.json``, made once by ``tests/data/make_slice_reference.py`` with ffmpeg 5.1,
GPT-SoVITS 48b1a01 and openvpi/audio-slicer 9958eed), and the ffmpeg-free decoder that stands in for ffmpeg.
"""

from __future__ import annotations

import hashlib
import json
import math
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from tests.conftest import ROOT
from tests.slice_cases import write_cases
from tts_nb_utils.audio.decode import decode_like_ffmpeg, ffmpeg_downmix, have_ffmpeg, swr_resample
from tts_nb_utils.dataprep.presets import SliceJob, slice_to_folder
from tts_nb_utils.dataprep.slicer import SlicerInputError, slice_frames, slice_ranges

REF = json.loads((ROOT / "tests" / "data" / "slice_reference.json").read_text())
DEMO = ROOT / "data" / "demo" / "raw"
HOP = 320  # 10 ms at 32 kHz


def _array(case: dict) -> np.ndarray:
    sys.path.insert(0, str(ROOT / "tests" / "data"))
    from make_slice_reference import array_case

    return array_case(case["sr"], case["seconds"], case["seed"], case["edge_s"])


@pytest.mark.parametrize("name", sorted(REF["slicer"]))
def test_slicer_core_equals_both_upstream_slicers_on_channels_first_arrays(name):
    case = REF["slicer"][name]
    x = _array(case)
    assert x.shape == (2, case["samples"])
    bounds, hop, _ = slice_frames(x.mean(axis=0), case["sr"], rule="gpt-sovits")
    names = [[0, x.shape[1]]] if bounds is None else [[a * hop, b * hop] for a, b in bounds]
    assert names == case["gpt_sovits_names"]
    assert [list(r) for r in slice_ranges(x, case["sr"], rule="openvpi")] == case["openvpi"]
    assert slice_ranges(x, case["sr"]) == slice_ranges(x.T, case["sr"])  # either layout, same cuts


def test_the_short_take_rules_differ_only_where_upstream_does():
    case = REF["slicer"]["short_3s_32k"]  # 3.1 s < 4 s: openvpi keeps it whole, GPT-SoVITS trims its edges
    assert case["openvpi"] == [[0, case["samples"]]] and case["gpt_sovits_names"] != case["openvpi"]


def test_ambiguous_two_d_audio_is_refused_not_sliced_along_the_wrong_axis():
    with pytest.raises(SlicerInputError, match="cannot tell channels"):
        slice_ranges(np.zeros((100, 200), np.float32), 16000)
    with pytest.raises(SlicerInputError, match="layout"):
        slice_ranges(np.zeros((2, 20000), np.float32), 16000, layout="rows")


def _boundaries(clips: list[str]) -> list[int]:
    return [int(v) for c in clips for v in c.rsplit(".", 1)[0].split("_")[-2:]]


def _check_against_upstream(src_dir, ref_files: dict, out, decoder: str) -> None:
    result = slice_to_folder(src_dir, out, SliceJob(decoder=decoder), progress=False)
    assert result.decoder == decoder
    for name, ref in ref_files.items():
        ours = sorted(c["name"] for c in result.clips if c["source"] == name)
        left_out = [x["name"] for x in result.left_out if x["source"] == name]
        theirs = [c["name"] for c in ref["clips"]]
        assert len(ours) + len(left_out) == len(theirs), name  # same number of clips
        got, want = _boundaries(sorted(ours + left_out)), _boundaries(theirs)
        same = sum(a == b for a, b in zip(got, want, strict=True)) / max(1, len(want))
        near = sum(abs(a - b) <= HOP for a, b in zip(got, want, strict=True)) / max(1, len(want))
        assert same >= 0.95 and near >= 0.99, (name, got, want)
        for clip in ref["clips"]:
            if clip["name"] in left_out:
                continue
            data, sr = sf.read(str(out / clip["name"]), dtype="int16")
            assert sr == 32000 and data.ndim == 1 and len(data) == clip["samples"]
            assert abs(int(np.abs(data.astype(np.int32)).max()) - clip["peak"]) <= 1
            if decoder == "ffmpeg":
                assert hashlib.sha256((out / clip["name"]).read_bytes()).hexdigest() == clip["sha256"]


@pytest.mark.parametrize("decoder", ["fallback", "ffmpeg"])  # ffmpeg: PATH's or imageio-ffmpeg's
def test_gpt_sovits_preset_reproduces_slice_audio_on_takes_it_was_not_tuned_on(tmp_path, decoder):
    src = tmp_path / "unseen"
    for path in write_cases(src):
        ref = REF["slice_audio"]["unseen"][path.name]
        assert hashlib.sha256(path.read_bytes()).hexdigest() == ref["sha256"], f"{path.name} changed; regenerate"
    _check_against_upstream(src, REF["slice_audio"]["unseen"], tmp_path / "out", decoder)


@pytest.mark.parametrize("decoder", ["fallback", "ffmpeg"])  # ffmpeg: PATH's or imageio-ffmpeg's
def test_gpt_sovits_preset_on_the_demo_takes(tmp_path, decoder):
    ref = REF["slice_audio"]["demo"]
    readable = {k: v for k, v in ref.items() if v["clips"]}
    _check_against_upstream(DEMO, readable, tmp_path / "out", decoder)
    result = slice_to_folder(DEMO, tmp_path / "again", SliceJob(decoder=decoder), progress=False)
    assert [f["source"] for f in result.failed] == ["take07_corrupt.wav"]  # upstream prints "->fail->" too
    assert [x["source"] for x in result.left_out] == ["take10_nan.wav"]  # NaN samples: upstream writes NaN


def test_fallback_resampler_keeps_dc_length_and_downmix_of_ffmpeg():
    for sr in (16000, 22050, 44100, 48000, 11025):
        y = swr_resample(np.full(sr, 0.5, np.float32), sr, 32000)
        assert len(y) == math.ceil(sr * 32000 / sr)
        assert np.allclose(y[200:-200], 0.5, atol=1e-5)  # a constant stays constant away from the edges
    stereo = np.array([[0.5, 0.5], [1.0, 1.0]], np.float32)
    assert np.allclose(ffmpeg_downmix(stereo), [0.7071068, 1.4142135])  # 3 dB hotter than the mean


@pytest.mark.parametrize("sr", [8000, 16000, 22050, 44100, 48000])
def test_fallback_decoder_matches_ffmpeg(tmp_path, sr):
    rng = np.random.default_rng(sr)
    path = tmp_path / "x.flac"
    sf.write(str(path), (0.3 * rng.standard_normal((sr, 2))).astype(np.float32), sr, subtype="PCM_16")
    a, b = decode_like_ffmpeg(path, backend="ffmpeg")[0], decode_like_ffmpeg(path, backend="fallback")[0]
    assert len(a) == len(b) and np.abs(a - b).max() < 1e-5


def test_list_file_feeds_gpt_sovits_and_uses_sidecar_transcripts(tmp_path):
    src = tmp_path / "in"
    write_cases(src)
    sf.write(str(src / "one.wav"), np.sin(np.arange(32000) / 5).astype(np.float32) * 0.3, 16000)
    (src / "one.lab").write_text("Hello   there.\n")
    (src / "unseen_b_48k.txt").write_text("several clips, so not used")
    out = tmp_path / "sliced"
    result = slice_to_folder(src, out, SliceJob(language="EN", decoder="fallback"), progress=False)
    lines = (out / "sliced.list").read_text(encoding="utf-8").split("\n")
    assert len(lines) == len(result.clips)
    for line in lines:  # as GPT_SoVITS/prepare_datasets/1-get-text.py:129 reads it
        wav_name, spk_name, language, text = line.split("|")
        assert (out / wav_name).is_file() and wav_name.startswith(str(out.resolve()))
        assert spk_name == "sliced" and language == "EN"
    texts = {line.split("|")[0].rsplit("/", 1)[1].split(".wav_")[0]: line.split("|")[3] for line in lines}
    assert texts["one"] == "Hello there."
    assert texts["unseen_b_48k"] == "" and result.texts_not_applied == ["unseen_b_48k.wav"]


def test_openvpi_preset_writes_what_its_slicer2_script_writes(tmp_path):
    src = tmp_path / "in"
    write_cases(src)
    result = slice_to_folder(src / "unseen_a_44k_stereo.flac", tmp_path / "o", SliceJob(preset="openvpi"),
                             progress=False)
    names = [c["name"] for c in result.clips]
    assert names == [f"unseen_a_44k_stereo_{k}.wav" for k in range(len(names))]
    info = sf.info(str(tmp_path / "o" / names[0]))
    assert info.samplerate == 44100 and info.channels == 2


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "tts_nb_utils.cli", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)


def test_cli_usage_errors_exit_2_and_a_failed_file_exits_1(tmp_path):
    missing = _cli("slice", str(tmp_path / "nope"), str(tmp_path / "o"))
    assert missing.returncode == 2 and "no such folder" in missing.stderr and "Traceback" not in missing.stderr
    bad_lang = _cli("slice", str(DEMO), str(tmp_path / "o"), "--language", "French")
    assert bad_lang.returncode == 2 and "French" in bad_lang.stderr
    run = _cli("slice", str(DEMO), str(tmp_path / "o"), "-q", "--decoder", "fallback")
    assert run.returncode == 1 and "take07_corrupt.wav" in run.stderr  # the corrupt demo take
    assert (tmp_path / "o" / "o.list").is_file()


def test_an_ffmpeg_is_always_found():
    """imageio-ffmpeg is a dependency: without ffmpeg on PATH its static binary decodes, so the byte-exact path
    (and the tests above) run wherever the package is installed."""
    from tts_nb_utils.audio.decode import _bundled_ffmpeg

    assert have_ffmpeg() and _bundled_ffmpeg() is not None


def test_the_bundled_ffmpeg_writes_the_clips_slice_audio_wrote_with_debians(tmp_path, monkeypatch):
    from tts_nb_utils.audio.decode import FFMPEG_ENV, _bundled_ffmpeg

    monkeypatch.setenv(FFMPEG_ENV, "bundled")  # reference hashes: Debian's ffmpeg 5.1
    from tts_nb_utils.audio.decode import ffmpeg_exe

    assert ffmpeg_exe() == _bundled_ffmpeg()
    src = tmp_path / "unseen"
    write_cases(src)
    _check_against_upstream(src, REF["slice_audio"]["unseen"], tmp_path / "out", "ffmpeg")


def test_jobs_write_the_same_clips_and_list_as_one_process(tmp_path):
    src = tmp_path / "in"
    write_cases(src)
    one = slice_to_folder(src, tmp_path / "a" / "o", SliceJob(), progress=False, jobs=1)
    two = slice_to_folder(src, tmp_path / "b" / "o", SliceJob(), progress=False, jobs=2)
    assert [c["name"] for c in one.clips] == [c["name"] for c in two.clips] and len(one.clips) > 5
    for clip in one.clips:
        assert (tmp_path / "a" / "o" / clip["name"]).read_bytes() == (tmp_path / "b" / "o" / clip["name"]).read_bytes()
    lists = [(tmp_path / d / "o" / "o.list").read_text().replace(str(tmp_path / d), "") for d in "ab"]
    assert lists[0] == lists[1]


@pytest.mark.parametrize(("sr", "channels", "suffix"), [(44100, 2, ".flac"), (48000, 1, ".wav"), (22050, 1, ".wav")])
def test_a_long_file_decoded_in_parallel_parts_is_bit_identical(tmp_path, monkeypatch, sr, channels, suffix):
    from tts_nb_utils.audio import decode

    rng = np.random.default_rng(sr)
    path = tmp_path / f"long{suffix}"
    sf.write(str(path), (0.2 * rng.standard_normal((45 * sr + 123, channels))).astype(np.float32), sr,
             subtype="PCM_16")
    whole = decode.decode_ffmpeg(path, 32000)
    parts = decode._decode_parts(path, 32000, decode.ffmpeg_exe(), 2, *decode._pcm_length(path))
    assert parts is not None and np.array_equal(whole.view(np.int32), parts.view(np.int32))
    monkeypatch.setattr(decode, "_same", lambda a, b: False)  # a seam that differs: decoded in one piece
    assert np.array_equal(decode.decode_ffmpeg(path, 32000, parts=2).view(np.int32), whole.view(np.int32))


def test_the_in_place_mix_writes_the_samples_of_slice_audios_mix():
    from tts_nb_utils.dataprep.normalize import gpt_sovits_mix
    from tts_nb_utils.dataprep.presets import mix_to_pcm

    rng = np.random.default_rng(0)
    for k in range(600):
        n = int(rng.integers(1, 3000))
        chunk = (float(rng.choice([1e-6, 0.01, 0.5, 1.0, 1.5, 4.0])) * rng.uniform(-1, 1, n)).astype(np.float32)
        if k % 50 == 0:
            chunk[rng.integers(0, n)] = rng.choice([np.nan, np.inf, -np.inf])
        if k % 77 == 0:
            chunk[:] = 0  # digital silence: 0/0
        for max_, alpha in ((0.9, 0.25), (0.5, 0.0), (1.0, 1.0)):
            with np.errstate(invalid="ignore", divide="ignore"):
                mixed = gpt_sovits_mix(chunk, max_, alpha)
            got = mix_to_pcm(chunk, max_, alpha)
            if not np.isfinite(mixed).all():
                assert got is None
            else:
                assert np.array_equal(got, (mixed * 32767).astype(np.int16))
