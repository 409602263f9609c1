"""The miniature Applio pipeline behind notebook 06: file list by intersection plus mute entries, and the
buggy and fixed extraction scripts run as real subprocesses."""

from __future__ import annotations

import json

import torch

from tts_nb_utils.demos.nb06_rvc.embedder import embedder_files, load_embedder
from tts_nb_utils.demos.nb06_rvc.pipeline import (
    extract_pitch,
    generate_filelist,
    make_clips,
    make_mute,
    run_extraction,
)
from tts_nb_utils.diagnose.stage import check_stage


def _embedder_dir(tmp_path):
    folder = tmp_path / "embedder"
    folder.mkdir()
    for name, data in embedder_files(seed=0).items():
        (folder / name).write_bytes(data)
    return folder


def test_embedder_roundtrip_and_frame_rate(tmp_path):
    folder = _embedder_dir(tmp_path)
    assert json.loads((folder / "config.json").read_text())["hop"] == 160
    assert embedder_files(seed=0)["config.json"] == embedder_files(seed=0)["config.json"]
    feats = load_embedder(folder)(torch.zeros(1, 16000))
    assert feats.shape == (1, 100, 32)


def test_filelist_is_the_intersection_plus_two_mutes(tmp_path):
    exp, mute = tmp_path / "exp", make_mute(tmp_path / "mute")
    make_clips(exp, 3, seconds=1.2, seed=0)
    assert extract_pitch(exp) == 3
    (exp / "extracted").mkdir()
    for stem in ("0_0", "0_2"):
        (exp / "extracted" / f"{stem}.npy").write_bytes(b"")
    lines = generate_filelist(exp, mute)
    assert [line.split("|")[0].rsplit("/", 1)[1] for line in lines] == ["0_0.wav", "0_2.wav"] + [
        "mute16000.wav"
    ] * 2
    assert all(line.endswith("|0") and line.count("|") == 4 for line in lines)
    (exp / "extracted" / "0_0.npy").unlink()
    (exp / "extracted" / "0_2.npy").unlink()
    only_mutes = generate_filelist(exp, mute)  # nothing extracted: the mute entries are still added
    assert len(only_mutes) == 2 and all("mute" in line for line in only_mutes)
    assert (exp / "filelist.txt").read_text().count("\n") == 2


def test_buggy_extraction_fails_every_file_and_exits_zero(tmp_path):
    exp = tmp_path / "exp"
    make_clips(exp, 3, seconds=1.0, seed=0)
    proc = run_extraction("buggy", exp, _embedder_dir(tmp_path), is_half="False")
    assert proc.returncode == 0 and "completed" in proc.stdout
    assert proc.stdout.count("An error occurred processing") == 3
    assert len(check_stage(exp / "sliced_audios", exp / "extracted").missing) == 3


def test_fixed_extraction_completes_and_fails_fast(tmp_path):
    exp = tmp_path / "exp"
    make_clips(exp, 3, seconds=1.0, seed=0)
    emb = _embedder_dir(tmp_path)
    proc = run_extraction("fixed", exp, emb, is_half="False")
    assert proc.returncode == 0, proc.stderr
    assert check_stage(exp / "sliced_audios", exp / "extracted").ok
    (exp / "sliced_audios" / "0_9.wav").write_bytes(b"not audio")
    bad = run_extraction("fixed", exp, emb, is_half="no")
    assert bad.returncode == 1 and "0_9.wav" in bad.stderr
    assert not (exp / "extracted" / "0_9.npy").exists()
