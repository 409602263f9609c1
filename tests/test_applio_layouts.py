"""The doctor and ``tts-nb check-features MODEL_DIR`` on Applio checkouts laid out as 3.2.4, 3.2.9 and main write
them (``applio_layouts.make_applio``; upstream file:line in its docstring): a healthy model passes, upstream's own
``logs/mute*`` and ``logs/reference`` are skipped and said so, 1024-wide features for a 768-wide model and an
empty or mute-only file list are errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.applio_layouts import make_applio, write_filelist
from tts_nb_utils.cli import main as cli_main
from tts_nb_utils.doctor.kinds import find
from tts_nb_utils.doctor.run import run_doctor
from tts_nb_utils.upstream.applio import entry_folder, read_model, split_filelist

LAYOUTS = ("3.2.4", "3.2.9", "main")


def _errors(target):
    return [f"{f.where}: {f.what}" for f in target.findings if f.severity == "error"]


@pytest.mark.parametrize("layout", LAYOUTS)
def test_healthy_model_no_error_and_shipped_folders_skipped(tmp_path, layout, capsys):
    model = make_applio(tmp_path / "Applio", layout)
    assert find(tmp_path / "Applio") == [(model, "applio-model")]  # not logs/mute*, not logs/reference
    report = run_doctor([tmp_path / "Applio"])
    (target,) = report.targets
    assert report.exit_code == 0 and not target.findings, target.findings
    notes = " | ".join(target.notes)
    assert "logs/mute/" in notes and "skipped, Applio's own files" in notes
    assert ("logs/reference/" in notes) == (layout != "3.2.4")
    assert ("logs/mute_spin/" in notes) == (layout == "main")
    assert "width 768 from config.json" in notes and "filelist.txt: 6 line(s), 2 mute" in notes
    assert cli_main(["check-features", str(model)]) == 0
    assert "the model reads 768 values per frame (from config.json)" in capsys.readouterr().out


@pytest.mark.parametrize("layout", LAYOUTS)
def test_1024_wide_features_for_a_768_model_are_an_error_naming_both(tmp_path, layout, capsys):
    model = make_applio(tmp_path / "Applio", layout, width=1024)  # chinese-hubert-large on 3.2.3-3.2.4's CPU path
    errors = _errors(run_doctor([model]).targets[0])
    assert len(errors) == 1 and "1024 wide" in errors[0] and "reads 768" in errors[0], errors
    capsys.readouterr()
    assert cli_main(["check-features", str(model)]) == 1
    assert "last dimension 1024, expected 768" in capsys.readouterr().out


@pytest.mark.parametrize("layout", LAYOUTS)
def test_failed_extraction_file_list_is_an_error(tmp_path, layout):
    """3.2.4 keeps two mute lines whatever happened (training on silence); 3.2.9+ writes them per speaker
    found, so the list is empty (train.py stops: 'Not enough data present in the training set')."""
    model = make_applio(tmp_path / "Applio", layout)
    write_filelist(tmp_path / "Applio", model, [], layout)
    errors = " | ".join(_errors(run_doctor([model]).targets[0]))
    if layout == "3.2.4":
        assert "filelist.txt: filelist.txt holds only the 2 mute entries" in errors, errors
    else:
        assert "filelist.txt: filelist.txt is empty" in errors and "Not enough data" in errors, errors


def test_mute_only_list_and_a_model_named_like_a_mute_folder(tmp_path):
    """A user's model called ``mute_demo`` is a model: its own lines are not mute lines."""
    model = make_applio(tmp_path / "Applio", "3.2.9", model="mute_demo")
    assert find(tmp_path / "Applio") == [(model, "applio-model")]
    assert run_doctor([model]).exit_code == 0
    lines = (model / "filelist.txt").read_text().split("\n")
    own, mute = split_filelist(lines, "mute_demo")
    assert len(own) == 4 and len(mute) == 2
    assert entry_folder("logs/mute/sliced_audios/mute40000.wav|x|y|z|0") == "mute"
    assert entry_folder(r"C:\Applio\logs\my-voice\sliced_audios\0_1_0.wav|x|y|z|0") == "my-voice"


def test_layout_and_width_read_by_content(tmp_path):
    model = make_applio(tmp_path / "a", "3.2.9")
    info = read_model(model)
    assert info.layout == "3.2.9+" and info.embedder == "contentvec"
    assert [(f.path.name, f.width, f.source) for f in info.features] == [("extracted", 768, "config.json")]
    old = make_applio(tmp_path / "b", "3.2.4")
    assert read_model(old).layout == "3.2.1-3.2.8"
    config = json.loads((old / "config.json").read_text())
    config["model"]["text_enc_hidden_dim"] = 256  # a v1 model: rvc/configs/v1/*.json
    (old / "config.json").write_text(json.dumps(config))
    errors = _errors(run_doctor([old]).targets[0])
    assert any("768 wide; the model reads 256 (from config.json)" in e for e in errors), errors
    (old / "config.json").unlink()  # before extraction finished: the folder name decides
    assert read_model(old).features[0].source == "the folder name"


def test_missing_feature_and_pitch_files(tmp_path):
    model = make_applio(tmp_path / "Applio", "main")
    (model / "extracted" / "0_1_0.npy").unlink()
    (model / "f0" / "0_2_0.wav.npy").unlink()
    np.save(model / "extracted" / "0_3_0.npy", np.zeros((49, 768), np.float32))
    errors = " | ".join(_errors(run_doctor([model]).targets[0]))
    assert "1 of 4 clip(s) have no feature file (first: 0_1_0.wav)" in errors
    assert "1 clip(s) without a pitch file" in errors and "all zeros" in errors


def test_check_features_model_dir_usage_errors(tmp_path, capsys):
    (tmp_path / "plain").mkdir()
    assert cli_main(["check-features", str(tmp_path / "plain")]) == 2
    assert "is not an Applio model folder" in capsys.readouterr().err
    make_applio(tmp_path / "Applio", "3.2.9")
    assert cli_main(["check-features", str(tmp_path / "Applio" / "logs" / "mute")]) == 2  # upstream's, not a model
