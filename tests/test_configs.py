"""DiffSinger config loading (base_config chains as set_hparams), the variance checker, and check-config."""

from __future__ import annotations

from pathlib import Path

import pytest

from tts_nb_utils.cli import main as cli_main
from tts_nb_utils.runner.paths import data_dir
from tts_nb_utils.upstream.diffsinger import (
    SWITCHES,
    ConfigCycleError,
    ConfigNotFoundError,
    ConfigParseError,
    expected_loss_terms,
    load_config,
)
from tts_nb_utils.upstream.diffsinger_check import check_config, format_problems, has_errors
from tts_nb_utils.upstream.diffsinger_run import check_run

TASK = "task_cls: training.variance_task.VarianceTask\ndiffusion_type: reflow\n"
ALL_OFF = TASK + "".join(f"{s}: false\n" for s in SWITCHES)
WEIGHTS = (
    "lambda_dur_loss: 1.0\nlambda_pitch_loss: 1.0\nlambda_var_loss: 1.0\n"
    "dur_prediction_args:\n  lambda_pdur_loss: 0.3\n  lambda_wdur_loss: 1.0\n  lambda_sdur_loss: 3.0\n"
)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path.resolve()


def by_key(problems, key):
    return [p for p in problems if p.key == key]


# ------------------------------------------------------------------------------------------ loading


def test_string_base_is_relative_to_root_and_later_files_override(tmp_path):
    base = write(tmp_path / "root" / "configs" / "base.yaml", "a: 1\nb: base\nnested:\n  x: 1\n  y: 2\n")
    top = write(tmp_path / "elsewhere" / "top.yaml", "base_config: configs/base.yaml\nb: top\nnested:\n  y: 3\n")
    cfg = load_config(top, root=tmp_path / "root")
    assert cfg.data["a"] == 1 and cfg.data["b"] == "top"
    assert cfg.data["nested"] == {"x": 1, "y": 3}  # merged key by key, as DiffSinger does
    assert cfg.chain == [base, top]
    assert cfg.source("a") == base and cfg.source("b") == top
    assert cfg.source("nested.x") == base and cfg.source("nested.y") == top


def test_root_defaults_to_the_working_directory(tmp_path, monkeypatch):
    write(tmp_path / "configs" / "base.yaml", "a: 1\n")
    top = write(tmp_path / "sub" / "top.yaml", "base_config: configs/base.yaml\n")
    monkeypatch.chdir(tmp_path)
    assert load_config(top).data["a"] == 1
    monkeypatch.chdir(tmp_path / "sub")
    with pytest.raises(ConfigNotFoundError) as e:
        load_config(top)
    assert "configs/base.yaml" in str(e.value) and str(top) in str(e.value) and "working directory" in str(e.value)


def test_dot_relative_base_is_relative_to_the_including_file(tmp_path, monkeypatch):
    base = write(tmp_path / "a" / "base.yaml", "a: 1\nb: 1\n")
    mid = write(tmp_path / "a" / "b" / "mid.yaml", "base_config: ../base.yaml\nb: 2\n")
    top = write(tmp_path / "a" / "b" / "c" / "top.yaml", "base_config: ./../mid.yaml\nc: 3\n")
    monkeypatch.chdir(tmp_path)  # the working directory must not matter for '.' paths
    cfg = load_config(top, root=tmp_path / "unrelated")
    assert cfg.data["a"] == 1 and cfg.data["b"] == 2 and cfg.data["c"] == 3
    assert cfg.chain == [base, mid, top]


def test_shared_dot_base_is_loaded_twice_and_undoes_a_sibling_as_upstream(tmp_path):
    write(tmp_path / "common.yaml", "x: common\ny: common\nz: common\n")
    write(tmp_path / "one.yaml", "base_config: ./common.yaml\nx: one\n")
    write(tmp_path / "two.yaml", "base_config: ./common.yaml\ny: two\n")
    top = write(tmp_path / "top.yaml", "base_config: [./one.yaml, ./two.yaml]\nz: top\n")
    cfg = load_config(top)
    # utils/hparams.py:73 compares the entry as written ('./common.yaml') with resolved names: loaded again
    assert cfg.data["x"] == "common" and cfg.data["y"] == "two" and cfg.data["z"] == "top"
    assert [p.name for p in cfg.chain] == ["common.yaml", "one.yaml", "common.yaml", "two.yaml", "top.yaml"]
    assert cfg.source("x").name == "common.yaml" and cfg.repeated == [tmp_path / "common.yaml"]
    once = load_config(top, dedupe_files=True)
    assert once.data["x"] == "one" and once.repeated == []


def test_shared_plain_base_is_loaded_once_as_upstream(tmp_path):
    write(tmp_path / "c" / "common.yaml", "x: common\ny: common\n")
    write(tmp_path / "one.yaml", "base_config: c/common.yaml\nx: one\n")
    write(tmp_path / "two.yaml", "base_config: c/common.yaml\ny: two\n")
    top = write(tmp_path / "top.yaml", "base_config: [./one.yaml, ./two.yaml]\n")
    cfg = load_config(top, root=tmp_path)
    assert cfg.data["x"] == "one" and cfg.data["y"] == "two" and cfg.repeated == [] and len(cfg.chain) == 4


def test_nested_mapping_replaced_by_scalar_and_back(tmp_path):
    write(tmp_path / "base.yaml", "args:\n  a: 1\n  b: 2\n")
    top = write(tmp_path / "top.yaml", "base_config: ./base.yaml\nargs: none\n")
    cfg = load_config(top)
    assert cfg.data["args"] == "none" and cfg.source("args") == top
    assert "args.a" not in cfg.sources


def test_cycle_is_an_error_naming_the_files(tmp_path):
    a = write(tmp_path / "a.yaml", "base_config: ./b.yaml\n")
    b = write(tmp_path / "b.yaml", "base_config: ./a.yaml\n")
    with pytest.raises(ConfigCycleError) as e:
        load_config(a)
    assert str(a) in str(e.value) and str(b) in str(e.value)
    me = write(tmp_path / "self.yaml", "base_config: [./self.yaml]\n")
    with pytest.raises(ConfigCycleError, match="self.yaml"):
        load_config(me)


def test_missing_base_names_the_file_and_the_includer(tmp_path):
    top = write(tmp_path / "top.yaml", "base_config: ./nope.yaml\n")
    with pytest.raises(ConfigNotFoundError) as e:
        load_config(top)
    msg = str(e.value)
    assert str(tmp_path / "nope.yaml") in msg and str(top) in msg and "'./nope.yaml'" in msg
    with pytest.raises(ConfigNotFoundError, match="does not exist"):
        load_config(tmp_path / "absent.yaml")


def test_parse_errors(tmp_path):
    with pytest.raises(ConfigParseError, match="not valid YAML"):
        load_config(write(tmp_path / "bad.yaml", "a: [1, 2\n"))
    with pytest.raises(ConfigParseError, match="mapping"):
        load_config(write(tmp_path / "list.yaml", "- a\n- b\n"))
    with pytest.raises(ConfigParseError, match="base_config"):
        load_config(write(tmp_path / "num.yaml", "base_config: [3]\n"))
    with pytest.raises(ConfigParseError, match="empty.*TypeError"):
        load_config(write(tmp_path / "empty.yaml", "# only a comment\n"))
    # a mapping over a scalar: upstream's override_config recurses into the scalar and fails
    write(tmp_path / "s.yaml", "args: 3\n")
    write(tmp_path / "m.yaml", "args: {a: 1}\n")
    with pytest.raises(ConfigParseError, match="args.*TypeError"):
        load_config(write(tmp_path / "n.yaml", "base_config: [./s.yaml, ./m.yaml]\n"))


# ---------------------------------------------------------------------------------------- checking


def checked(tmp_path, text):
    path = write(tmp_path / "cfg.yaml", text)
    return path, check_config(load_config(path))


def test_all_switches_off_is_an_error_naming_each_switch_and_the_file(tmp_path):
    path, problems = checked(tmp_path, ALL_OFF + WEIGHTS)
    (p,) = problems
    assert p.is_error and p.key == "predict_*" and p.file == path
    for s in SWITCHES:
        assert f"{s}=False" in p.message
    assert "training_step must return a Tensor" in p.message and "predict_dur: true" in p.message


def test_missing_switches_count_as_off(tmp_path):
    _, problems = checked(tmp_path, TASK + WEIGHTS)
    assert [p.key for p in problems if p.is_error] == ["predict_*"]


def test_one_switch_on_with_weights_passes(tmp_path):
    _, problems = checked(tmp_path, ALL_OFF.replace("predict_pitch: false", "predict_pitch: true") + WEIGHTS)
    assert problems == []


@pytest.mark.parametrize("value", ["0", "0.0", "-1.5"])
def test_zero_or_negative_weight_of_enabled_target(tmp_path, value):
    text = ALL_OFF.replace("predict_dur: false", "predict_dur: true") + WEIGHTS.replace(
        "lambda_dur_loss: 1.0", f"lambda_dur_loss: {value}"
    )
    path, problems = checked(tmp_path, text)
    (p,) = by_key(problems, "lambda_dur_loss")
    assert p.is_error and p.file == path and p.value == float(value)
    assert "lambda_dur_loss" in p.message and str(path.name) in p.message and "predict_dur" in p.message
    assert has_errors(problems)


def test_zero_weight_of_disabled_target_is_fine(tmp_path):
    text = ALL_OFF.replace("predict_dur: false", "predict_dur: true") + WEIGHTS.replace(
        "lambda_var_loss: 1.0", "lambda_var_loss: 0.0"
    )
    _, problems = checked(tmp_path, text)
    assert problems == []


def test_variance_switches_share_lambda_var_loss(tmp_path):
    text = ALL_OFF.replace("predict_tension: false", "predict_tension: true") + WEIGHTS.replace(
        "lambda_var_loss: 1.0", "lambda_var_loss: 0"
    )
    _, problems = checked(tmp_path, text)
    (p,) = by_key(problems, "lambda_var_loss")
    assert p.is_error and "predict_tension" in p.message


def test_duration_sub_weights(tmp_path):
    on = ALL_OFF.replace("predict_dur: false", "predict_dur: true")
    _, problems = checked(tmp_path, on + WEIGHTS.replace("lambda_sdur_loss: 3.0", "lambda_sdur_loss: -3.0"))
    (p,) = by_key(problems, "dur_prediction_args.lambda_sdur_loss")
    assert p.is_error and p.value == -3.0 and "negative" in p.message
    _, problems = checked(tmp_path, on + WEIGHTS.replace("lambda_pdur_loss: 0.3", "lambda_pdur_loss: 0"))
    (p,) = by_key(problems, "dur_prediction_args.lambda_pdur_loss")
    assert p.severity == "warning"
    zeros = WEIGHTS.replace("0.3", "0").replace("wdur_loss: 1.0", "wdur_loss: 0").replace("3.0", "0")
    _, problems = checked(tmp_path, on + zeros)
    assert any(p.is_error and p.key == "dur_prediction_args" for p in problems)


def test_quoted_false_is_a_truthy_string(tmp_path):
    path, problems = checked(tmp_path, ALL_OFF.replace("predict_energy: false", 'predict_energy: "false"') + WEIGHTS)
    (p,) = by_key(problems, "predict_energy")
    assert p.is_error and p.value == "false" and p.file == path
    assert "'false'" in p.message and "True" in p.message and "predict_energy: false" in p.message
    # DiffSinger reads the string as True, so a prediction IS enabled and no "none enabled" error is added
    assert not by_key(problems, "predict_*")
    assert expected_loss_terms(load_config(path)) == ["var_loss"]


def test_int_switch_trains_as_upstream_and_quoted_true_is_a_warning(tmp_path):
    _, problems = checked(tmp_path, ALL_OFF.replace("predict_dur: false", "predict_dur: 1") + WEIGHTS)
    assert problems == [], format_problems(problems)
    _, problems = checked(tmp_path, ALL_OFF.replace("predict_dur: false", 'predict_dur: "true"') + WEIGHTS)
    (p,) = problems
    assert p.key == "predict_dur" and not p.is_error and "works" in p.message


def test_weight_that_is_not_a_number(tmp_path):
    on = ALL_OFF.replace("predict_pitch: false", "predict_pitch: true")
    path, problems = checked(tmp_path, on + WEIGHTS.replace("lambda_pitch_loss: 1.0", "lambda_pitch_loss: 1e-3"))
    (p,) = by_key(problems, "lambda_pitch_loss")
    # PyYAML (YAML 1.1) reads 1e-3 without a dot as a string
    assert p.is_error and p.value == "1e-3" and "not a finite number" in p.message and "0.001" in p.message
    _, problems = checked(tmp_path, on + WEIGHTS.replace("lambda_pitch_loss: 1.0", "lambda_pitch_loss: true"))
    assert by_key(problems, "lambda_pitch_loss")[0].is_error


def test_missing_weight_for_enabled_target(tmp_path):
    on = ALL_OFF.replace("predict_pitch: false", "predict_pitch: true")
    _, problems = checked(tmp_path, on + WEIGHTS.replace("lambda_pitch_loss: 1.0\n", ""))
    (p,) = by_key(problems, "lambda_pitch_loss")
    assert p.is_error and "missing" in p.message and "KeyError" in p.message


def test_misspelt_keys_are_warnings_with_the_closest_known_key(tmp_path):
    base = write(tmp_path / "base.yaml", ALL_OFF.replace("predict_dur: false", "predict_dur: true") + WEIGHTS)
    top = write(
        tmp_path / "top.yaml",
        "base_config: ./base.yaml\nlamda_dur_loss: 0.5\nPredict_Pitch: true\n"
        "dur_prediction_args:\n  lambda_wdur_los: 2.0\n"
        "use_glide_embed: false\nhidden_size: 256\ndur_prediction_args_extra: 1\n",
    )
    problems = check_config(load_config(top))
    assert not has_errors(problems)
    warned = {p.key: p for p in problems}
    assert set(warned) == {"lamda_dur_loss", "Predict_Pitch", "dur_prediction_args.lambda_wdur_los"}
    p = warned["lamda_dur_loss"]
    assert p.file == top and p.value == 0.5
    assert "lambda_dur_loss" in p.message and "stays 1.0" in p.message and "base.yaml" in p.message
    assert "predict_pitch" in warned["Predict_Pitch"].message
    assert "dur_prediction_args.lambda_wdur_loss" in warned["dur_prediction_args.lambda_wdur_los"].message
    assert base != top


def test_plain_dict_can_be_checked_without_files():
    problems = check_config({"task_cls": "training.variance_task.VarianceTask", "predict_dur": True,
                             "lambda_dur_loss": 0})
    assert {p.key for p in problems if p.is_error} >= {"lambda_dur_loss"}
    assert all(p.file is None for p in problems)


def test_bundled_examples():
    root = data_dir() / "diffsinger"
    expected = {
        "template_variance.yaml": "predict_*",
        "broken_zero_lambda.yaml": "lambda_dur_loss",
        "broken_string_false.yaml": "predict_energy",
        "broken_misspelt.yaml": "predict_*",
        "broken_acoustic_no_loss.yaml": "shallow_diffusion_args.train_*",
        "shared_base/top.yaml": "predict_*",
        "configs/base.yaml": "task_cls",
    }
    for name, key in expected.items():
        problems = check_run(root / name, root=root).problems
        assert key in {p.key for p in problems if p.is_error}, f"{name}: {format_problems(problems)}"
    problems = check_run(root / "broken_misspelt.yaml", root=root).problems
    assert {p.key for p in problems if not p.is_error} == {"predict_duration", "lamda_pitch_loss", "lambda_pdur_loss"}
    assert "belongs under dur_prediction_args" in by_key(problems, "lambda_pdur_loss")[0].message
    (shared,) = by_key(check_run(root / "shared_base/top.yaml", root=root).problems, "base_config")
    assert "predict_dur: True -> False" in shared.message and "utils/hparams.py:73" in shared.message
    for name, terms in [("fixed_variance.yaml", ["dur_loss", "pitch_loss", "var_loss"]),
                        ("template_duration.yaml", ["dur_loss", "var_loss"]),
                        ("template_acoustic.yaml", ["aux_mel_loss", "mel_loss"]),
                        ("configs/variance.yaml", ["dur_loss", "pitch_loss"]),
                        ("configs/acoustic.yaml", ["aux_mel_loss", "mel_loss"])]:
        report = check_run(root / name, root=root)
        assert report.problems == [], f"{name}: {format_problems(report.problems)}"
        assert expected_loss_terms(report.loaded) == terms
    loaded = check_run(root / "fixed_variance.yaml", root=root).loaded
    assert [p.name for p in loaded.chain] == ["base.yaml", "variance.yaml", "template_variance.yaml",
                                              "fixed_variance.yaml"]


# --------------------------------------------------------------------------------------------- CLI


def test_cli_exit_codes(tmp_path, capsys):
    root = data_dir() / "diffsinger"
    assert cli_main(["check-config", str(root / "fixed_variance.yaml"), "--root", str(root)]) == 0
    out = capsys.readouterr().out
    assert "0 error(s)" in out and "dur_loss, pitch_loss, var_loss" in out

    assert cli_main(["check-config", str(root / "broken_misspelt.yaml"), "--root", str(root)]) == 1
    out = capsys.readouterr().out
    assert "ERROR" in out and "WARNING" in out and "predict_duration" in out and "1 error(s), 3 warning(s)" in out

    warn_only = write(tmp_path / "warn.yaml", ALL_OFF.replace("predict_dur: false", "predict_dur: true")
                      + WEIGHTS + "lamda_pitch_loss: 2\n")
    assert cli_main(["check-config", str(warn_only)]) == 0
    assert "1 warning(s)" in capsys.readouterr().out

    # the template's base is relative to the working directory: without --root it cannot be found
    assert cli_main(["check-config", str(root / "template_variance.yaml"), "--root", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "configs/variance.yaml" in err and "does not exist" in err
    assert cli_main(["check-config", str(write(tmp_path / "bad.yaml", "a: [\n"))]) == 2
    assert "not valid YAML" in capsys.readouterr().err
    assert cli_main(["check-config", str(tmp_path / "missing.yaml")]) == 2
