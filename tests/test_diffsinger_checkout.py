"""A DiffSinger checkout as users have it: the doctor skips upstream's templates and bases, and check-config
follows upstream's order and spelling rules (saved config then --hparams, dotted --hparams keys, ``./`` bases
of a root-level ``--config``, an unimportable ``task_cls``, a null settings mapping).

The tree has upstream's file names (openvpi/DiffSinger 753b7cc); every file's content is written here."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tts_nb_utils.cli import main as cli_main
from tts_nb_utils.doctor.kinds import upstream_shipped
from tts_nb_utils.doctor.run import run_doctor
from tts_nb_utils.upstream.diffsinger import ConfigNotFoundError, load_config
from tts_nb_utils.upstream.diffsinger_run import check_run

SWITCHES_OFF = {f"predict_{k}": False for k in ("dur", "pitch", "energy", "breathiness", "voicing", "tension")}
DUR_ARGS = {"hidden_size": 256, "lambda_pdur_loss": 0.3, "lambda_wdur_loss": 1.0, "lambda_sdur_loss": 3.0}


def _yaml(path: Path, data: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def make_checkout(root: Path) -> Path:
    """Upstream's layout: the scripts and modules train.py needs to start, the bases and the three templates
    (the variance template with every prediction off, as shipped)."""
    (root / "scripts").mkdir(parents=True)
    (root / "scripts" / "train.py").write_text("# starts the task named by task_cls\n")
    (root / "utils").mkdir()
    (root / "utils" / "hparams.py").write_text("# set_hparams lives here\n")
    (root / "training").mkdir()
    (root / "training" / "__init__.py").write_text("")
    (root / "training" / "variance_task.py").write_text("class VarianceTask:\n    pass\n")
    (root / "training" / "acoustic_task.py").write_text("class AcousticTask:\n    pass\n")
    _yaml(root / "configs" / "base.yaml", {"task_cls": None, "binary_data_dir": None, "hidden_size": 256})
    _yaml(root / "configs" / "variance.yaml", {
        "base_config": ["configs/base.yaml"], "task_cls": "training.variance_task.VarianceTask",
        "predict_dur": True, "predict_pitch": True, **{k: False for k in list(SWITCHES_OFF)[2:]},
        "lambda_dur_loss": 1.0, "lambda_pitch_loss": 1.0, "lambda_var_loss": 1.0, "diffusion_type": "reflow",
        "dur_prediction_args": DUR_ARGS, "pitch_prediction_args": {"repeat_bins": 64},
        "use_melody_encoder": False,
    })
    _yaml(root / "configs" / "acoustic.yaml", {
        "base_config": ["configs/base.yaml"], "task_cls": "training.acoustic_task.AcousticTask",
        "diffusion_type": "reflow", "use_shallow_diffusion": True, "lambda_aux_mel_loss": 0.2,
        "shallow_diffusion_args": {"train_aux_decoder": True, "train_diffusion": True},
    })
    templates = root / "configs" / "templates"
    _yaml(templates / "config_acoustic.yaml", {"base_config": ["configs/acoustic.yaml"], "num_spk": 1})
    _yaml(templates / "config_variance.yaml", {"base_config": ["configs/variance.yaml"], **SWITCHES_OFF})
    _yaml(templates / "config_duration.yaml",
          {"base_config": ["configs/variance.yaml"], **SWITCHES_OFF, "predict_dur": True})
    return root


@pytest.fixture
def checkout(tmp_path):
    return make_checkout(tmp_path / "DiffSinger")


def keys(problems, errors=True):
    return {p.key for p in problems if p.is_error == errors}


# ------------------------------------------------------------------------------------------- doctor


def test_clean_checkout_passes_the_doctor_and_says_what_it_skipped(checkout, capsys):
    report = run_doctor([checkout])
    assert report.exit_code == 0 and report.targets == []
    assert sorted(Path(s).relative_to(checkout).as_posix() for s in report.skipped) == [
        "configs/acoustic.yaml", "configs/base.yaml", "configs/templates/config_acoustic.yaml",
        "configs/templates/config_duration.yaml", "configs/templates/config_variance.yaml", "configs/variance.yaml"]
    assert cli_main(["doctor", str(checkout)]) == 0
    assert "skipped 6 file(s) upstream ships" in capsys.readouterr().out


def test_doctor_checks_the_users_copy_of_a_template(checkout):
    mine = checkout / "configs" / "my_variance.yaml"
    mine.write_text((checkout / "configs" / "templates" / "config_variance.yaml").read_text())
    report = run_doctor([checkout])
    (target,) = report.targets
    assert target.path == mine and target.errors == 1 and "no prediction is enabled" in target.findings[0].what
    assert upstream_shipped(mine) is None
    assert upstream_shipped(checkout / "configs" / "templates" / "config_variance.yaml")
    # the same file names outside a checkout are the user's files: checked
    other = _yaml(checkout.parent / "elsewhere" / "configs" / "templates" / "config_variance.yaml", SWITCHES_OFF)
    assert upstream_shipped(other) is None


# ------------------------------------------------------------------------------------- check-config


def _stale_experiment(checkout: Path) -> Path:
    """A first run trained with every prediction off saved that; the user has since fixed the file."""
    mine = _yaml(checkout / "configs" / "mine.yaml", {"base_config": ["configs/variance.yaml"]})
    saved = load_config(mine, root=checkout).data | SWITCHES_OFF | {"base_config": [], "work_dir": "checkpoints/e"}
    _yaml(checkout / "checkpoints" / "e" / "config.yaml", saved)
    return mine


def test_hparams_that_restore_the_saved_keys_are_not_a_stale_config(checkout):
    mine = _stale_experiment(checkout)
    assert "checkpoints" in keys(check_run(mine, root=checkout, exp_name="e").problems)
    restored = check_run(mine, root=checkout, exp_name="e", hparams="predict_dur=True,predict_pitch=True")
    assert restored.problems == []
    partly = check_run(mine, root=checkout, exp_name="e", hparams="predict_dur=True")
    (stale,) = [p for p in partly.problems if p.key == "checkpoints"]
    assert "predict_pitch" in stale.message and "predict_dur" not in stale.message


def test_dotted_hparams_key_is_a_new_flat_key_nothing_reads(checkout):
    mine = _yaml(checkout / "configs" / "mine.yaml", {"base_config": ["configs/variance.yaml"]})
    report = check_run(mine, root=checkout, hparams="dur_prediction_args.lambda_pdur_loss=0")
    (p,) = report.problems
    assert p.severity == "warning" and p.key == "dur_prediction_args.lambda_pdur_loss"
    assert "stays 0.3 (from configs/variance.yaml)" in p.message and "nothing reads" in p.message
    assert report.loaded.data["dur_prediction_args"]["lambda_pdur_loss"] == 0.3  # as upstream: unchanged
    assert report.loaded.data["dur_prediction_args.lambda_pdur_loss"] == 0


def test_root_level_config_with_dot_bases_needs_dot_slash(checkout, monkeypatch, capsys):
    _yaml(checkout / "x.yaml", {"base_config": ["./configs/variance.yaml"]})
    monkeypatch.chdir(checkout)
    assert cli_main(["check-config", "x.yaml"]) == 2
    err = capsys.readouterr().err
    assert "opens '/configs/variance.yaml'" in err and "--config ./x.yaml" in err
    assert cli_main(["check-config", "./x.yaml"]) == 0
    with pytest.raises(ConfigNotFoundError):
        load_config(checkout / "x.yaml", root=checkout, config_name="x.yaml")
    assert load_config(checkout / "x.yaml", root=checkout).get("predict_dur") is True  # ./x.yaml by default


@pytest.mark.parametrize(
    ("task", "severity", "said"),
    [
        ("training.variance_tsk.VarianceTask", "error", "No module named 'training.variance_tsk'"),
        ("training.variance_task.VarianceTsk", "error", "has no attribute 'VarianceTsk'"),
        ("VarianceTask", "error", "Empty module name"),
        ("training.my_task.MyTask", "warning", "only the generic checks ran"),
    ],
)
def test_task_cls_that_train_py_cannot_import_is_an_error(checkout, task, severity, said):
    (checkout / "training" / "my_task.py").write_text("from training.variance_task import VarianceTask\n\n\n"
                                                      "class MyTask(VarianceTask):\n    pass\n")
    mine = _yaml(checkout / "configs" / "mine.yaml", {"base_config": ["configs/variance.yaml"], "task_cls": task})
    (p,) = [p for p in check_run(mine, root=checkout).problems if p.key == "task_cls"]
    assert p.severity == severity and said in p.message


def test_null_settings_mapping_breaks_model_construction(checkout):
    mine = _yaml(checkout / "configs" / "mine.yaml",
                 {"base_config": ["configs/variance.yaml"], "pitch_prediction_args": None})
    (p,) = check_run(mine, root=checkout).problems
    assert p.is_error and p.key == "pitch_prediction_args" and "'NoneType' object has no attribute 'get'" in p.message
    off = _yaml(checkout / "configs" / "off.yaml", {"base_config": ["configs/mine.yaml"], "predict_pitch": False})
    assert check_run(off, root=checkout).problems == []  # nothing reads it with predict_pitch off
    acoustic = _yaml(checkout / "configs" / "ac.yaml",
                     {"base_config": ["configs/acoustic.yaml"], "shallow_diffusion_args": None})
    (p,) = check_run(acoustic, root=checkout).problems
    assert p.is_error and p.key == "shallow_diffusion_args"


def test_report_lines_wrap_at_the_width_asked(checkout):
    from tts_nb_utils.upstream.diffsinger_run import format_report

    mine = checkout / "configs" / "templates" / "config_variance.yaml"
    report = check_run(mine, root=checkout)
    assert max(map(len, format_report(report).splitlines())) > 300  # one line per problem by default
    wrapped = format_report(report, width=100).splitlines()
    assert max(map(len, wrapped)) <= 100 and any(line.startswith("    ") for line in wrapped)
