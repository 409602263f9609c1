"""``tts-nb doctor``: each kind recognised by its contents, the findings on broken artefacts in upstream's
layouts (written by notebook 08's generator and the tools' own writers), the exit codes, and clean reports
after the fixes."""

from __future__ import annotations

import json
import shutil

import pytest
import yaml

from tts_nb_utils.cli import main
from tts_nb_utils.demos import nb08_broken_project as bp
from tts_nb_utils.doctor.kinds import find, recognise
from tts_nb_utils.doctor.run import run_doctor
from tts_nb_utils.upstream.diffsinger import load_config


def _doctor(capsys, *args) -> tuple[int, str]:
    code = main(["doctor", *map(str, args)])
    return code, capsys.readouterr().out


def _small_project(root):
    bp.make_audio(root / "audio")
    bp.make_diffsinger(root / "diffsinger")
    bp.make_sovits(root / "gpt_sovits" / "logs" / "my_voice")
    return root


def _findings(report: dict, kind: str) -> list[dict]:
    return [f for p in report["paths"] if p["kind"] == kind for f in p["findings"]]


def test_one_call_reports_bad_audio_all_off_config_and_nan_checkpoint_then_clean(tmp_path, capsys):
    root = _small_project(tmp_path / "project")
    out_json = tmp_path / "report.json"
    code, text = _doctor(capsys, root, "--json", out_json, "--md", tmp_path / "report.md")
    assert code == 1
    report = json.loads(out_json.read_text())
    kinds = {p["path"].removeprefix(str(root) + "/"): p["kind"] for p in report["paths"]}
    assert kinds == {"audio": "audio", "diffsinger/my_variance.yaml": "diffsinger-config",
                     "gpt_sovits/logs/my_voice": "gpt-sovits"}  # the two base configs are bases, not reported
    assert all(p["given"] == str(root) for p in report["paths"])
    errors = {k: [f for f in _findings(report, k) if f["severity"] == "error"] for k in kinds.values()}
    assert errors["audio"][0]["where"] == "clip_silent.wav"
    assert errors["diffsinger-config"][0]["where"].startswith("my_variance.yaml:11#predict_")
    nan = [f["where"] for f in errors["gpt-sovits"]]
    assert "logs_s2_v2/G_200.pth" in nan and "logs_s2_v2/D_200.pth" in nan and "train.log:6" in nan
    assert "logs_s2_v2/G_100.pth" not in nan
    assert "clip_silent.wav" in text and (tmp_path / "report.md").read_text().strip() == text.strip()

    bp.fix_project_files(root, drop=["clip_silent.wav", "clip_loud.wav"])
    code, text = _doctor(capsys, root, "--json", out_json)
    assert code == 0, text
    assert json.loads(out_json.read_text())["counts"]["error"] == 0


def test_each_path_given_is_checked_and_unknown_folders_are_reported_not_guessed(tmp_path, capsys):
    root = _small_project(tmp_path / "p")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("nothing here\n")
    report = run_doctor([root / "audio", root / "diffsinger" / "my_variance.yaml", tmp_path / "notes"])
    assert [t.kind for t in report.targets] == ["audio", "diffsinger-config", "unknown"]
    assert report.exit_code == 1
    assert run_doctor([tmp_path / "notes"]).exit_code == 0


def test_usage_errors_exit_2(tmp_path, capsys):
    assert _doctor(capsys, tmp_path / "missing")[0] == 2
    assert _doctor(capsys, tmp_path, "--json", tmp_path)[0] == 2
    assert _doctor(capsys, tmp_path, "--gpu-gib", "0")[0] == 2


def test_intermittent_nan_with_fp16_is_a_warning_and_the_lr_is_read_with_the_config(tmp_path):
    exp = tmp_path / "logs" / "exp"
    bp.make_sovits(exp)
    text = (exp / "train.log").read_text().splitlines()
    finite = next(ln for ln in text if ln.endswith("]") and "nan" not in ln and "Train Epoch" not in ln)
    (exp / "train.log").write_text("\n".join([*text, finite]) + "\n")  # a finite line after the NaN ones
    for part in "GD":
        (exp / "logs_s2_v2" / f"{part}_200.pth").unlink()
    target = run_doctor([exp]).targets[0]
    assert target.kind == "gpt-sovits" and target.errors == 0
    assert any("finite lines follow" in f.what and f.severity == "warning" for f in target.findings)
    cfg = json.loads((exp / "config.json").read_text())
    cfg["train"]["learning_rate"] = 3e-4
    (exp / "config.json").write_text(json.dumps(cfg))
    target = run_doctor([exp]).targets[0]
    assert any("fits no learning_rate" in f.what for f in target.findings)


def test_diffsinger_saved_experiment_config_overrides_a_fixed_file(tmp_path):
    root = tmp_path / "DiffSinger"
    config = bp.make_diffsinger(root)
    saved = load_config(config, root=root).data | {"base_config": [], "work_dir": "checkpoints/exp"}
    (root / "checkpoints" / "exp").mkdir(parents=True)
    (root / "checkpoints" / "exp" / "config.yaml").write_text(yaml.safe_dump(saved))
    config.write_text(config.read_text().replace("predict_dur: false", "predict_dur: true"))
    assert recognise(root / "checkpoints" / "exp") == "diffsinger-experiment"
    report = run_doctor([root])
    by_kind = {t.kind: t for t in report.targets}
    assert set(by_kind) == {"diffsinger-config", "diffsinger-experiment"}
    assert any("--reset" in f.what + f.fix for f in by_kind["diffsinger-config"].findings if f.severity == "error")
    assert any("--exp_name exp" in f.fix for f in by_kind["diffsinger-experiment"].findings)
    assert run_doctor([config]).exit_code == 0  # alone, the fixed file is fine


def test_coqui_run_flat_lr_then_fixed(tmp_path):
    run = bp.make_coqui(tmp_path / "coqui")
    assert [k for _, k in find(tmp_path)] == ["coqui-run"]
    target = run_doctor([tmp_path]).targets[0]
    whats = [f.what for f in target.findings if f.severity == "error"]
    assert len(whats) == 1 and whats[0].startswith("StepwiseGradualLR: ") and "never steps" in whats[0]
    assert run.parent.name == "run"
    bp.make_coqui(tmp_path / "coqui", after_epoch=False)
    assert run_doctor([tmp_path]).exit_code == 0


def test_applio_missing_features_mute_only_list_and_duplicate_embedder(tmp_path):
    model = bp.make_applio(tmp_path / "Applio")
    assert [k for _, k in find(tmp_path / "Applio")] == ["applio-model"]  # logs/mute is upstream's, skipped
    target = run_doctor([model]).targets[0]
    errors = {f.where: f.what for f in target.findings if f.severity == "error"}
    assert "v2_extracted" in errors and "only the 2 mute entries" in errors["filelist.txt"]
    assert any("pytorch_model (1).bin" in f.where for f in target.findings if f.severity == "warning")
    shutil.rmtree(model / "v2_extracted")
    (model / "v2_extracted").mkdir()
    import numpy as np

    for wav in (model / "sliced_audios").glob("*.wav"):
        np.save(model / "v2_extracted" / f"{wav.stem}.npy", np.ones((50, 1024), np.float32))
    target = run_doctor([model]).targets[0]
    assert any("1024 wide" in f.what for f in target.findings if f.severity == "error")


@pytest.mark.parametrize("gpu_gib, optimizer, ok", [(24, "adamw", False), (80, "adamw", True), (24, "adamw8bit", True)])
def test_dia_config_memory_plan(tmp_path, capsys, gpu_gib, optimizer, ok):
    path = tmp_path / "train.yaml"
    bp.make_dia(path, optimizer=optimizer, checkpointing=optimizer == "adamw8bit")
    code, text = _doctor(capsys, path, "--gpu-gib", gpu_gib)
    assert code == (0 if ok else 1), text
    if not ok:
        assert "out of memory" in text and "lora_rank: 16" in text


def test_dia_config_bad_values_are_findings_not_tracebacks(tmp_path):
    path = tmp_path / "dia.json"
    path.write_text(json.dumps({"dia_train": {"optimizer": "lion", "micro_batchsize": 2}}))
    target = run_doctor([path]).targets[0]
    assert target.kind == "dia-config"
    assert any("lion" in f.what for f in target.findings if f.severity == "error")
    assert any("micro_batchsize" in f.what for f in target.findings if f.severity == "warning")
