"""`tts-nb check-features --expect-dim` and `tts-nb check-embedders` on small artefacts in Applio's formats (RVC
feature files ``<name>.npy`` of shape [frames, width]; wget 3.2's ``name (1).pt`` and ``<name><8 chars>.tmp``),
and the wget 3.2 file handling of the notebook 06 miniature against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import hashlib
import json
import os
import urllib.error

import numpy as np
import pytest

from tts_nb_utils.audio import save_audio
from tts_nb_utils.cli import main as cli_main
from tts_nb_utils.demos.nb06_rvc.applio_download import (
    load_embedding_321,
    load_embedding_pr570,
    wget_download,
)
from tts_nb_utils.demos.nb06_rvc.embedder import embedder_files
from tts_nb_utils.demos.nb06_rvc.localhub import LocalHub
from tts_nb_utils.diagnose.embedders import check_embedders, read_manifest
from tts_nb_utils.diagnose.features import check_features
from tts_nb_utils.errors import UsageError


@pytest.fixture
def model_dir(tmp_path):
    """logs/<model>: four 16 kHz clips, their features 768 wide, as Applio's extraction saves them."""
    audio, feats = tmp_path / "sliced_audios_16k", tmp_path / "v2_extracted"
    rng = np.random.default_rng(0)
    for i in range(4):
        save_audio(audio / f"0_{i}.wav", (0.1 * rng.standard_normal(3200)).astype(np.float32), 16000)
        feats.mkdir(exist_ok=True)
        np.save(feats / f"0_{i}.npy", rng.standard_normal((20, 768)).astype(np.float32), allow_pickle=False)
    return audio, feats


def test_768_wide_features_pass(model_dir, capsys):
    audio, feats = model_dir
    report = check_features(audio, feats, expect_dim=768)
    assert report.ok and report.checked == 4
    assert cli_main(["check-features", str(audio), str(feats), "--expect-dim", "768"]) == 0


def test_1024_wide_features_are_flagged_with_both_widths(model_dir, capsys):
    audio, feats = model_dir
    np.save(feats / "0_2.npy", np.ones((20, 1024), np.float32))  # chinese-hubert-large's width
    report = check_features(audio, feats, expect_dim=768)
    assert not report.ok and [p.name for p, _ in report.wrong_dim] == ["0_2.npy"] and report.widths == {1024}
    capsys.readouterr()
    assert cli_main(["check-features", str(audio), str(feats), "--expect-dim", "768"]) == 1
    out = capsys.readouterr().out
    assert "last dimension 1024, expected 768" in out and "0_2.npy shape (20, 1024)" in out
    assert cli_main(["check-features", str(audio), str(feats)]) == 0  # without --expect-dim, width is not checked


def test_zero_nan_missing_and_unreadable_features(model_dir):
    audio, feats = model_dir
    np.save(feats / "0_0.npy", np.zeros((20, 768), np.float32))
    bad = np.ones((20, 768), np.float32)
    bad[3, 5] = np.nan
    np.save(feats / "0_1.npy", bad)
    (feats / "0_2.npy").unlink()
    (feats / "0_3.npy").write_bytes(b"half a file")
    report = check_features(audio, feats, expect_dim=768)
    assert [p.name for p in report.all_zero] == ["0_0.npy"]
    assert [p.name for p in report.non_finite] == ["0_1.npy"]
    assert [p.name for p in report.stage.missing] == ["0_2.wav"]
    assert [p.name for p, _ in report.unreadable] == ["0_3.npy"]
    text = report.format()
    assert "all zeros: 0_0.npy" in text and "NaN or infinity: 0_1.npy" in text and "missing: 0_2.wav" in text


def test_check_features_usage_errors(model_dir, tmp_path, capsys):
    audio, feats = model_dir
    with pytest.raises(UsageError, match="does not exist"):
        check_features(audio, tmp_path / "nope", expect_dim=768)
    assert cli_main(["check-features", str(audio), str(feats), "--expect-dim", "0"]) == 2
    assert cli_main(["check-features", str(audio), str(feats), "--ext", ".pt", "--expect-dim", "768"]) == 2
    assert "cannot be opened" in capsys.readouterr().err


# -- check-embedders -----------------------------------------------------------------------------------------


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_check_embedders_finds_wget_leftovers_and_manifest_mismatches(tmp_path, capsys):
    weights = embedder_files(0, "base")["pytorch_model.bin"]
    emb = tmp_path / "embedders"
    (emb / "contentvec").mkdir(parents=True)
    (emb / "chinese-hubert-large.pt").write_bytes(weights)
    (emb / "chinese-hubert-large (1).pt").write_bytes(weights)  # what wget saves when the target exists
    (emb / "japanese-hubert-base.ptk3j_0x9a.tmp").write_bytes(weights[:100])  # a short body's leftover
    (emb / "contentvec" / "pytorch_model.bin").write_bytes(weights[:-10])  # cut short by some other writer
    manifest = tmp_path / "m.json"
    manifest.write_text(json.dumps({
        "chinese-hubert-large.pt": _sha(weights),
        "contentvec/pytorch_model.bin": {"sha256": _sha(weights), "size": len(weights)},
        "korean-hubert-base.pt": _sha(b"x"),
    }))
    report = check_embedders(emb, read_manifest(manifest))
    kinds = {(f.path, f.kind) for f in report.findings}
    assert kinds == {
        ("chinese-hubert-large (1).pt", "duplicate"),
        ("japanese-hubert-base.ptk3j_0x9a.tmp", "partial"),
        ("contentvec/pytorch_model.bin", "size"),
        ("korean-hubert-base.pt", "missing"),
    }
    assert cli_main(["check-embedders", str(emb), "--manifest", str(manifest)]) == 1
    assert "was never completed" in " ".join(capsys.readouterr().out.split())  # findings are wrapped at 110


def test_check_embedders_clean_folder_sha256sum_manifest_and_usage_errors(tmp_path, capsys):
    emb = tmp_path / "embedders"
    emb.mkdir()
    (emb / "model (1).pt").write_bytes(b"a")  # a name with a number, but no original beside it: not a duplicate
    (emb / "contentvec.pt").write_bytes(b"weights")
    sums = tmp_path / "sums.txt"
    sums.write_text(f"{_sha(b'weights')}  contentvec.pt\n")
    assert cli_main(["check-embedders", str(emb), "--manifest", str(sums)]) == 0
    sums.write_text(f"{_sha(b'other')}  contentvec.pt\n")
    assert check_embedders(emb, read_manifest(sums)).findings[0].kind == "sha256"
    sums.write_text("not a sum\n")
    assert cli_main(["check-embedders", str(emb), "--manifest", str(sums)]) == 2
    assert cli_main(["check-embedders", str(tmp_path / "nope")]) == 2
    assert "sums.txt:1" in capsys.readouterr().err


# -- wget 3.2's file handling (notebook 06 miniature) --------------------------------------------------------


@pytest.fixture
def hub():
    data = embedder_files(0, "base")["pytorch_model.bin"]
    with LocalHub({"/m/model.pt": data, "/m/short.pt": data}) as h:
        h.set_mode("/m/short.pt", "truncate")
        yield h


def test_wget_never_overwrites_and_numbers_by_the_current_folder(hub, tmp_path, monkeypatch):
    absolute = tmp_path / "abs"
    absolute.mkdir()
    monkeypatch.chdir(tmp_path)
    names = [os.path.basename(wget_download(hub.url("/m/model.pt"), absolute / "model.pt")) for _ in range(3)]
    assert names == ["model.pt", "model (1).pt", "model (1).pt"]  # an absolute path: always (1)
    monkeypatch.chdir(absolute)
    assert [wget_download(hub.url("/m/model.pt"), "model.pt") for _ in range(2)] == ["model (2).pt", "model (3).pt"]


def test_short_body_leaves_a_tmp_file_and_no_target(hub, tmp_path):
    with pytest.raises(urllib.error.ContentTooShortError):
        wget_download(hub.url("/m/short.pt"), tmp_path / "short.pt")
    assert [p.name for p in tmp_path.iterdir()][0].startswith("short.pt") and not (tmp_path / "short.pt").exists()
    assert check_embedders(tmp_path).findings[0].kind == "partial"


def test_loaders_321_and_pr570(hub, tmp_path):
    (tmp_path / "a").mkdir()
    for _ in range(3):
        load_embedding_321(hub.url("/m/model.pt"), tmp_path / "a" / "model.pt")
    assert hub.count("/m/model.pt") == 3
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["model (1).pt", "model.pt"]
    hub.reset_counts()
    (tmp_path / "b").mkdir()
    for _ in range(3):
        state = load_embedding_pr570(hub.url("/m/model.pt"), tmp_path / "b" / "model.pt")
    assert hub.count() == 1 and "proj.weight" in state
