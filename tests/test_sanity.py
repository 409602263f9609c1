"""parse_bool, the stage check (and `tts-nb check-features`), and the training sanity monitor in a plain loop
and in a real Lightning Trainer."""

from __future__ import annotations

import argparse
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from tts_nb_utils.cli import main as cli_main
from tts_nb_utils.cli._common import bool_arg
from tts_nb_utils.diagnose.stage import StageCheckError, check_stage
from tts_nb_utils.io import BoolParseError, parse_bool
from tts_nb_utils.monitors.sanity import (
    SanityError,
    SanityMonitor,
    SanityWarning,
    plausible_min_step_seconds,
)

# -- parse_bool --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("False", False),
        ("false", False),
        ("FALSE", False),
        (" 0 ", False),
        ("no", False),
        ("off", False),
        ("n", False),
        ("True", True),
        ("true", True),
        ("1", True),
        ("yes", True),
        ("ON", True),
        ("y", True),
        (True, True),
        (False, False),
        (0, False),
        (1, True),
    ],
)
def test_parse_bool_table(text, expected):
    assert parse_bool(text) is expected


def test_bool_builtin_is_the_bug():
    assert bool("False") is True and parse_bool("False") is False


@pytest.mark.parametrize("bad", ["", "maybe", "2", "Fals", "none", None, 2, 0.0, "[]"])
def test_parse_bool_rejects_everything_else(bad):
    with pytest.raises(BoolParseError) as e:
        parse_bool(bad, name="is_half")
    assert "is_half=" in str(e.value) and repr(bad) in str(e.value)


def test_bool_arg_in_argparse_is_a_usage_error(capsys):
    parser = argparse.ArgumentParser(prog="extract")
    parser.add_argument("is_half", type=bool_arg)
    assert parser.parse_args(["False"]).is_half is False
    with pytest.raises(SystemExit) as e:
        parser.parse_args(["maybe"])
    assert e.value.code == 2 and "'maybe' is not a boolean" in capsys.readouterr().err


# -- stage check ---------------------------------------------------------------------------------------------


def _touch(path, data=b"x"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.fixture
def stage(tmp_path):
    audio, feats = tmp_path / "audio", tmp_path / "feats"
    for rel in ["a.wav", "sub/b.flac", "c.wav", "notes.txt", ".hidden.wav"]:
        _touch(audio / rel)
    _touch(feats / "a.npy")
    _touch(feats / "sub/b.npy")
    _touch(feats / ".c.part.npy")  # a temporary file from an interrupted atomic write is not an output
    _touch(feats / "orphan.npy")
    return audio, feats


def test_stage_check_lists_missing(stage):
    audio, feats = stage
    report = check_stage(audio, feats)
    assert [p.as_posix() for p in report.inputs] == ["a.wav", "c.wav", "sub/b.flac"]
    assert [p.as_posix() for p in report.missing] == ["c.wav"]
    assert [p.as_posix() for p in report.extra] == ["orphan.npy"]
    assert not report.ok and "c.wav" in report.format()
    with pytest.raises(StageCheckError, match="1 of 3"):
        report.raise_if_missing()


def test_stage_check_flat_outputs_and_multi_dot_ext(tmp_path):
    audio, f0 = tmp_path / "audio", tmp_path / "f0"
    _touch(audio / "spk1/x.wav")
    _touch(audio / "y.wav")
    _touch(f0 / "x.wav.npy")  # flat output folder, RVC-style pitch file name
    report = check_stage(audio, f0, ".wav.npy")
    assert [p.as_posix() for p in report.missing] == ["y.wav"]
    _touch(f0 / "y.wav.npy")
    assert check_stage(audio, f0, "wav.npy").raise_if_missing().ok
    assert [p.as_posix() for p in check_stage(audio, f0, ".wav.npy", recursive=False).inputs] == ["y.wav"]


def test_stage_check_missing_folder(tmp_path):
    (tmp_path / "audio").mkdir()
    with pytest.raises(FileNotFoundError, match="output folder"):
        check_stage(tmp_path / "audio", tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="input folder"):
        check_stage(tmp_path / "nope", tmp_path / "audio")


def test_cli_check_features(stage, tmp_path, capsys):
    audio, feats = stage
    for path in feats.rglob("[!.]*.npy"):  # check-features opens .npy files: give it real ones
        np.save(path, np.ones((3, 4), np.float32))
    assert cli_main(["check-features", str(audio), str(feats)]) == 1
    out = capsys.readouterr().out
    assert "missing: c.wav" in out and "a.wav" not in out.replace("3 input", "")
    np.save(feats / "c.npy", np.ones((3, 4), np.float32))
    assert cli_main(["check-features", str(audio), str(feats)]) == 0
    assert cli_main(["check-features", str(audio), str(feats), "--ext", ".pt"]) == 1
    assert cli_main(["check-features", str(tmp_path / "nope"), str(feats)]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert cli_main(["check-features", str(tmp_path / "empty"), str(feats)]) == 2


# -- monitor in a plain loop -----------------------------------------------------------------------------------


def _mlp(d_in=8, hidden=32, zero_last=False):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(d_in, hidden), nn.Tanh(), nn.Linear(hidden, 1))
    if zero_last:
        nn.init.zeros_(model[2].weight)
    return model


def _data(n=64, d_in=8, zeros=False):
    g = torch.Generator().manual_seed(0)
    x = torch.zeros(n, d_in) if zeros else torch.randn(n, d_in, generator=g)
    y = torch.randn(n, 1, generator=g) if zeros else x[:, :1] * 2 - x[:, 1:2]
    return x, y


def _train(model, x, y, monitor, steps=30, lr=1e-2, params=None, batch=16, forward=None):
    opt = torch.optim.Adam(params if params is not None else model.parameters(), lr=lr)
    for step in range(steps):
        i = (step * batch) % len(x)
        xb, yb = x[i : i + batch], y[i : i + batch]
        out = forward(xb) if forward else model(xb)
        loss = nn.functional.mse_loss(out, yb)
        opt.zero_grad()
        loss.backward()
        monitor.before_optimizer_step()
        opt.step()
        monitor.after_optimizer_step(loss=loss)
    return monitor


def test_healthy_run_is_not_flagged():
    x, y = _data()
    model = _mlp(zero_last=True)  # zero-initialised output layer: first-step zero grads are not a bug
    mon = SanityMonitor(model, expected_samples=64, on_problem="raise")
    mon.check_dataset(len(x))
    _train(model, x, y, mon)
    assert mon.ok, mon.format_problems()
    assert mon.loss_history[-1] < mon.loss_history[0]


def test_small_dataset_flagged():
    mon = SanityMonitor(expected_samples=100, on_problem="record")
    assert mon.check_dataset(60) is None
    flag = mon.check_dataset(2)
    assert flag and flag.kind == "small-dataset" and "2 samples" in flag.message and "100" in flag.message
    assert SanityMonitor(on_problem="record").check_dataset(0).kind == "small-dataset"


def test_zero_inputs_give_zero_grad_flag():
    x, y = _data(zeros=True)  # like features extracted from silence
    model = _mlp()
    mon = _train(model, x, y, SanityMonitor(model, on_problem="record"))
    assert "zero-grad" in mon.kinds
    zero = next(f for f in mon.problems if f.kind == "zero-grad")
    assert "0.weight" in zero.message and "2.weight" not in zero.message
    assert "unchanged-params" in mon.kinds  # Adam does not move a weight whose gradient is always zero


def test_lr_zero_gives_flat_loss_and_unchanged_params():
    x, y = _data(n=16)  # one batch, seen again and again
    model = _mlp()
    mon = _train(model, x, y, SanityMonitor(model, on_problem="record"), lr=0.0)
    assert {"flat-loss", "unchanged-params"} <= mon.kinds
    assert "zero-grad" not in mon.kinds and "missing-grad" not in mon.kinds


def test_missing_grad_and_param_left_out_of_optimizer():
    x, y = _data()
    model = nn.Module()
    model.net = _mlp()
    model.unused = nn.Linear(4, 4)  # never called in forward
    mon = SanityMonitor(model, on_problem="record")
    _train(model, x, y, mon, params=model.net.parameters(), forward=model.net)
    missing = next(f for f in mon.problems if f.kind == "missing-grad")
    assert "unused.weight" in missing.message and "net.0.weight" not in missing.message
    mon2 = SanityMonitor(model, on_problem="record", ignore=("unused",))
    _train(
        model, x, y, mon2, params=model.net[0].parameters(), forward=model.net
    )  # layer 2: trained by nobody
    unchanged = next(f for f in mon2.problems if f.kind == "unchanged-params")
    assert "net.2.weight" in unchanged.message and "net.0.weight" not in unchanged.message


def test_fast_steps_flagged_only_when_work_is_skipped():
    model = nn.Sequential(nn.Linear(1024, 1024), nn.ReLU(), nn.Linear(1024, 1024))  # ~2.1 M parameters
    bound = plausible_min_step_seconds(sum(p.numel() for p in model.parameters()), "cpu")
    assert 1e-4 < bound < 1e-2
    mon = SanityMonitor(model, on_problem="record")
    for _ in range(8):  # a loop whose "steps" do nothing (a swallowed error, an empty batch)
        mon.after_optimizer_step()
    assert "fast-steps" in mon.kinds
    healthy = SanityMonitor(model, on_problem="record")
    x = torch.randn(16, 1024)
    _train(model, x, x, healthy, steps=6, batch=16)
    assert "fast-steps" not in healthy.kinds, healthy.format_problems()


def test_flags_once_and_warns():
    mon = SanityMonitor(expected_samples=10)
    with pytest.warns(SanityWarning, match="small-dataset"):
        mon.check_dataset(1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mon.check_dataset(1)  # already flagged: no second warning
    assert len(mon.problems) == 1
    with pytest.raises(SanityError, match="small-dataset"):
        SanityMonitor(expected_samples=10, on_problem="raise").check_dataset(1)


# -- monitor as a Lightning callback -----------------------------------------------------------------------------


def _lightning_run(n_samples, zeros, expected=64, steps=12):
    import lightning.pytorch as pl
    from torch.utils.data import DataLoader, TensorDataset

    from tts_nb_utils.monitors.lightning import MonitorCallback

    class Regressor(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = _mlp()

        def training_step(self, batch, batch_idx):
            xb, yb = batch
            return nn.functional.mse_loss(self.net(xb), yb)

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), lr=1e-2)

    x, y = _data(n=n_samples, zeros=zeros)
    loader = DataLoader(TensorDataset(x, y), batch_size=min(8, n_samples), shuffle=False)
    callback = MonitorCallback(SanityMonitor(expected_samples=expected, on_problem="record"))
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=1,
        max_steps=steps,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[callback],
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Lightning's advice about num_workers
        trainer.fit(Regressor(), loader)
    return callback.monitor


def test_lightning_callback_flags_a_broken_run():
    mon = _lightning_run(n_samples=2, zeros=True)
    assert {"small-dataset", "zero-grad", "unchanged-params"} <= mon.kinds, mon.format_problems()
    assert mon.step == 12 and len(mon.loss_history) == 12


def test_lightning_callback_quiet_on_a_healthy_run():
    mon = _lightning_run(n_samples=64, zeros=False)
    assert mon.ok, mon.format_problems()
    assert mon.step == 12 and np.isfinite(mon.loss_history).all()
