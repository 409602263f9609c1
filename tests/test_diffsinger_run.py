"""check-config as a run sees it: acoustic configs, saved experiment configs, --hparams, binary data."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import yaml

from tts_nb_utils.cli import main as cli_main
from tts_nb_utils.runner.paths import data_dir
from tts_nb_utils.upstream.diffsinger import ConfigError, expected_loss_terms, load_config
from tts_nb_utils.upstream.diffsinger_check import OTHER_KNOWN_KEYS, check_config, format_problems
from tts_nb_utils.upstream.diffsinger_experiment import binary_fields, parse_hparams
from tts_nb_utils.upstream.diffsinger_run import check_run

BUNDLED = data_dir() / "diffsinger"


@pytest.fixture
def checkout(tmp_path):
    """A copy of the bundled configs laid out like a DiffSinger checkout."""
    for src in BUNDLED.rglob("*.yaml"):
        dest = tmp_path / src.relative_to(BUNDLED)
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(src.read_text(encoding="utf-8"), encoding="utf-8")
    return tmp_path


def keys(problems, errors=True):
    return {p.key for p in problems if p.is_error == errors}


# ------------------------------------------------------------------------------------------ acoustic


def test_acoustic_without_either_shallow_part_has_no_loss(checkout):
    report = check_run(checkout / "broken_acoustic_no_loss.yaml", root=checkout)
    assert report.kind == "acoustic" and expected_loss_terms(report.loaded) == []
    (p,) = report.problems
    assert p.key == "shallow_diffusion_args.train_*" and p.file.name == "broken_acoustic_no_loss.yaml"
    assert "training_step must return a Tensor" in p.message and "train_diffusion: true" in p.message


@pytest.mark.parametrize(
    ("extra", "terms", "errors"),
    [
        ("shallow_diffusion_args: {train_aux_decoder: false}\n", ["mel_loss"], set()),
        ("shallow_diffusion_args: {train_diffusion: false}\n", ["aux_mel_loss"], set()),
        ("use_shallow_diffusion: false\nshallow_diffusion_args: {train_diffusion: false}\n", ["mel_loss"], set()),
        ("lambda_aux_mel_loss: 0\n", ["aux_mel_loss", "mel_loss"], {"lambda_aux_mel_loss"}),
        ("diffusion_type: gaussian\n", ["aux_mel_loss", "mel_loss"], {"diffusion_type"}),
        ('use_shallow_diffusion: "false"\n', ["aux_mel_loss", "mel_loss"], {"use_shallow_diffusion"}),
    ],
)
def test_acoustic_rules(checkout, extra, terms, errors):
    cfg = checkout / "mine.yaml"
    cfg.write_text("base_config: ./template_acoustic.yaml\n" + extra, encoding="utf-8")
    report = check_run(cfg, root=checkout)
    assert expected_loss_terms(report.loaded) == terms
    assert keys(report.problems) == errors, format_problems(report.problems)


def test_acoustic_keys_are_not_variance_keys():
    problems = check_config({"task_cls": "training.acoustic_task.AcousticTask", "diffusion_type": "reflow",
                             "use_shallow_diffusion": True, "lambda_aux_mel_loss": 0.2,
                             "shallow_diffusion_args": {"train_aux_decoder": True, "train_diffusion": True,
                                                        **{k.split(".")[1]: 1 for k in OTHER_KNOWN_KEYS}},
                             "train_diffusion": True, "lamda_aux_mel_loss": 1})
    assert keys(problems) == set() and keys(problems, errors=False) == {"train_diffusion", "lamda_aux_mel_loss"}


def test_no_task_and_unknown_task():
    assert keys(check_config({"predict_dur": True})) == {"task_cls"}
    problems = check_config({"task_cls": "my.tasks.Special", "predict_dur": False})  # train.py cannot import it
    assert keys(problems) == {"task_cls"} and "No module named 'my.tasks'" in problems[0].message


# ---------------------------------------------------------------------------------- saved experiment


def save_like_set_hparams(checkout: Path, config: Path, exp: str) -> Path:
    """What utils/hparams.py:112-122 writes on a first run: the merged config with base_config emptied."""
    data = load_config(config, root=checkout).data
    data["base_config"] = []
    data["work_dir"] = f"checkpoints/{exp}"
    out = checkout / "checkpoints" / exp / "config.yaml"
    out.parent.mkdir(parents=True)
    out.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return out


def test_stale_saved_config_overrides_the_fixed_file_until_reset(checkout, capsys):
    mine = checkout / "mine.yaml"
    mine.write_text("base_config: ./template_variance.yaml\n", encoding="utf-8")
    saved = save_like_set_hparams(checkout, mine, "exp1")  # the first (failed) run
    mine.write_text("base_config: ./template_variance.yaml\npredict_dur: true\n", encoding="utf-8")  # the fix

    assert keys(check_run(mine, root=checkout).problems) == set()  # the file alone is fine
    report = check_run(mine, root=checkout, exp_name="exp1")
    assert keys(report.problems) == {"checkpoints", "predict_*"}
    (stale,) = [p for p in report.problems if p.key == "checkpoints"]
    assert stale.file == saved and "predict_dur: True in the file -> False saved" in stale.message
    assert "--exp_name exp1 --reset" in stale.message and "utils/hparams.py:86-97" in stale.message
    assert report.loaded.source("predict_dur") == saved
    assert keys(check_run(mine, root=checkout, exp_name="exp1", reset=True).problems) == set()

    args = ["check-config", str(mine), "--root", str(checkout), "--exp-name", "exp1"]
    assert cli_main(args) == 1 and cli_main([*args, "--reset"]) == 0
    out = capsys.readouterr().out
    assert str(checkout) not in out and out.count("merged, bases first") == 2


# -------------------------------------------------------------------------------------------- hparams


def test_hparams_parsed_as_upstream():
    data = {"predict_dur": False, "lambda_dur_loss": 1.0, "hidden_size": 384, "task_cls": None, "name": "a"}
    got = parse_hparams("predict_dur=1,lambda_dur_loss=0,foo=0.5,bar='x',name=b,,hidden_size=256", data)
    # a boolean key takes eval(v), here the int 1; a float key float(v); a new key type(eval(v))(v)
    assert got == {"predict_dur": 1, "lambda_dur_loss": 0.0, "foo": 0.5, "bar": "'x'", "name": "b",
                   "hidden_size": 256}
    assert type(got["predict_dur"]) is int
    with pytest.raises(ConfigError, match="predict_dur=True"):
        parse_hparams("predict_dur=true", data)
    with pytest.raises(ConfigError, match=r"int\('0.5'\)"):
        parse_hparams("hidden_size=0.5", data)
    with pytest.raises(ConfigError, match="NoneType"):
        parse_hparams("task_cls=x.Y", data)
    with pytest.raises(ConfigError, match="exactly one"):
        parse_hparams("a=b=c", data)


def test_hparams_override_is_checked_and_attributed(checkout, capsys):
    cfg = checkout / "template_variance.yaml"
    report = check_run(cfg, root=checkout, hparams="predict_dur=True,lambda_dur_loss=0")
    assert keys(report.problems) == {"lambda_dur_loss"}
    assert str(report.loaded.source("lambda_dur_loss")) == "--hparams"
    assert cli_main(["check-config", str(cfg), "--root", str(checkout), "--hparams", "predict_dur=true"]) == 2
    assert "predict_dur=True" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------- binary


def write_meta(folder: Path, fields: list[str], n: int = 3) -> None:
    """train.meta as basics/base_binarizer.py:290-360 writes it for the train split: lengths per field."""
    info = {"spk_ids": [np.int64(0)] * n, "lengths": [100 + i for i in range(n)]}
    info.update({f: [10 + i for i in range(n)] for f in fields})
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "train.meta").write_bytes(pickle.dumps(info))


def test_switch_turned_on_since_binarizing(checkout, capsys):
    dur_pitch = ["tokens", "ph_dur", "ph2word", "midi", "mel2ph", "note_midi", "note_rest", "note_dur",
                 "mel2note", "base_pitch", "pitch", "uv"]
    write_meta(checkout / "data/xxx/binary", dur_pitch)
    assert binary_fields(checkout / "data/xxx/binary") >= {"ph2word", "uv", "lengths"}
    report = check_run(checkout / "fixed_variance.yaml", root=checkout)  # dur, pitch, energy, breathiness on
    assert keys(report.problems) == {"predict_energy", "predict_breathiness"}
    msg = [p for p in report.problems if p.key == "predict_energy"][0].message
    assert "KeyError: 'energy'" in msg and "python scripts/binarize.py --config fixed_variance.yaml" in msg
    write_meta(checkout / "data/xxx/binary", [*dur_pitch, "energy", "breathiness"])
    assert check_run(checkout / "fixed_variance.yaml", root=checkout).problems == []


def test_binary_folder_errors(checkout, tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        check_run(checkout / "fixed_variance.yaml", root=checkout, binary_dir=tmp_path / "nope")
    (tmp_path / "b").mkdir()
    with pytest.raises(ConfigError, match="binarize.py"):
        binary_fields(tmp_path / "b")
    (tmp_path / "b" / "train.meta").write_bytes(pickle.dumps({"x": Path("/")}))
    with pytest.raises(ConfigError, match="never writes"):
        binary_fields(tmp_path / "b")
    assert check_run(checkout / "fixed_variance.yaml", root=checkout).notes  # binary_data_dir absent: a note
