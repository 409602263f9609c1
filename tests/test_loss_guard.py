"""The loss guard (plain loop and real Lightning Trainer), per-term loss logging, and the toy variance task."""

from __future__ import annotations

import math

import pytest
import torch
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from torch import nn

from tts_nb_utils.demos.nb03_variance_task import (
    ToyVarianceTask,
    make_loader,
    make_trainer,
    make_variance_data,
)
from tts_nb_utils.diagnose.loss_curves import read_metrics_csv, summarize_loss_terms
from tts_nb_utils.diagnose.params import parameter_changes, snapshot_parameters
from tts_nb_utils.monitors.lightning import MonitorCallback, log_loss_terms, loss_loggers
from tts_nb_utils.monitors.loss_terms import LossGuardError, LossTermGuard, check_losses, guarded_total
from tts_nb_utils.runner.paths import data_dir
from tts_nb_utils.upstream.diffsinger import load_config

ROOT = data_dir() / "diffsinger"
LIGHTNING_MESSAGE = "`training_step` must return a Tensor, a dict, or None"


def LossGuard(*args, **kwargs):  # noqa: N802 - the Lightning callback the tests below use
    return MonitorCallback(LossTermGuard(*args, **kwargs))


@pytest.fixture(autouse=True)
def one_thread():
    # The toy model is tiny: one thread is many times faster than two contending ones.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def data():
    return make_variance_data(n_utts=64, n_phones=12, seed=0)


def cfg(name):
    return load_config(ROOT / f"{name}.yaml", root=ROOT)


def fit(task, data, tmp_path, steps=3, callbacks=(), loggers=False):
    trainer = make_trainer(steps, str(tmp_path), "cpu", callbacks=callbacks, loggers=loggers)
    trainer.fit(task, make_loader(data, batch_size=8))
    return trainer


# ---------------------------------------------------------------------------------------- check_losses


def test_empty_dict_names_the_switches_and_their_values():
    with pytest.raises(LossGuardError) as e:
        check_losses({}, config=cfg("template_variance"), step=0)
    msg = str(e.value)
    assert "empty" in msg and "sum({}.values()) == 0 (int)" in msg and "step 0" in msg
    for switch in ("predict_dur", "predict_pitch", "predict_energy", "predict_tension"):
        assert f"{switch}=False" in msg
    assert "template_variance.yaml" in msg and "dur_loss <- predict_dur" in msg


def test_total_that_is_not_a_tensor():
    with pytest.raises(LossGuardError, match=r"is 0 \(int\), not a tensor"):
        check_losses(None, 0)


def test_detached_total_and_detached_term():
    w = nn.Parameter(torch.ones(2))
    live = (w**2).sum()
    dead = (w.detach() ** 2).sum()
    with pytest.raises(LossGuardError, match="does not require grad.*dur_loss"):
        check_losses({"dur_loss": dead})
    with pytest.raises(LossGuardError) as e:
        check_losses({"dur_loss": dead, "pitch_loss": live})
    assert "dur_loss" in str(e.value) and "pitch_loss" not in str(e.value) and "detach" in str(e.value)


def test_zero_term_names_the_weight_and_its_value():
    w = nn.Parameter(torch.ones(2))
    config = cfg("broken_zero_lambda")
    with pytest.raises(LossGuardError) as e:
        check_losses({"dur_loss": 0.0 * (w**2).sum()}, config=config, step=0)
    msg = str(e.value)
    assert "dur_loss" in msg and "lambda_dur_loss=0.0" in msg and "broken_zero_lambda.yaml" in msg
    total = check_losses({"dur_loss": 0.0 * (w**2).sum()}, allow_zero_terms=True)
    assert total.requires_grad and total.item() == 0.0


def test_good_losses_return_the_total():
    w = nn.Parameter(torch.ones(2))
    losses = {"dur_loss": (w**2).sum(), "pitch_loss": w.sum()}
    total = check_losses(losses)
    assert total.item() == pytest.approx(4.0) and total.requires_grad


def test_non_finite_total():
    w = nn.Parameter(torch.ones(1))
    with pytest.raises(LossGuardError, match="nan"):
        check_losses({"dur_loss": w.sum() * float("nan")})


def test_plain_pytorch_loop():
    torch.manual_seed(0)
    model = nn.Linear(3, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = torch.randn(16, 3), torch.randn(16, 1)

    def losses_for(enabled):
        return {"dur_loss": nn.functional.mse_loss(model(x), y)} if enabled else {}

    with pytest.raises(LossGuardError, match="empty"):
        guarded_total(losses_for(False), config={"predict_dur": False}, step=0)
    first = None
    for step in range(20):
        total = guarded_total(losses_for(True), step=step)
        first = total.item() if first is None else first
        opt.zero_grad()
        total.backward()
        opt.step()
    assert total.item() < first


# -------------------------------------------------------------------------------------------- Lightning


def test_template_config_reproduces_lightnings_error(data, tmp_path):
    task = ToyVarianceTask(cfg("template_variance"))
    with pytest.raises(MisconfigurationException, match=LIGHTNING_MESSAGE):
        fit(task, data, tmp_path)


def test_guard_raises_our_message_before_lightnings(data, tmp_path):
    config = cfg("template_variance")
    task = ToyVarianceTask(config)
    with pytest.raises(LossGuardError) as e:
        fit(task, data, tmp_path, callbacks=[LossGuard(config)])
    assert not isinstance(e.value, MisconfigurationException)
    assert "predict_dur=False" in str(e.value) and "empty" in str(e.value)
    assert "training_step" not in task.__dict__  # the wrapper is removed after the failed fit


def test_guard_catches_zero_lambda_and_detached_head(data, tmp_path):
    config = cfg("broken_zero_lambda")
    with pytest.raises(LossGuardError, match="dur_loss.*exactly 0.0.*lambda_dur_loss=0.0"):
        fit(ToyVarianceTask(config), data, tmp_path, callbacks=[LossGuard(config)])
    fixed = cfg("fixed_variance")
    with pytest.raises(LossGuardError, match=r"loss term\(s\) pitch_loss .*do not require grad"):
        fit(ToyVarianceTask(fixed, detach_heads=["pitch"]), data, tmp_path, callbacks=[LossGuard(fixed)])


def test_guard_passes_a_good_run_and_checks_only_the_first_steps(data, tmp_path):
    fixed = cfg("fixed_variance")
    guard = LossGuard(fixed, check_steps=2)
    task = ToyVarianceTask(fixed)
    trainer = fit(task, data, tmp_path, steps=4, callbacks=[guard])
    assert guard.monitor.checked == 2 and trainer.global_step == 4
    assert "training_step" not in task.__dict__


class DictStepModule(__import__("lightning.pytorch", fromlist=["LightningModule"]).LightningModule):
    """A user's module that returns {"loss": ..., term: ...} and does not use log_loss_terms."""

    def __init__(self, detach: bool):
        super().__init__()
        self.lin = nn.Linear(1, 1)
        self.detach = detach

    def training_step(self, batch, batch_idx):
        x = batch[2][..., :1]
        a = (self.lin(x) ** 2).mean()
        b = (self.lin(x).detach() if self.detach else self.lin(x)).abs().mean()
        return {"loss": a + b, "aux_loss": b}

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


def test_guard_reads_terms_from_a_returned_dict(data, tmp_path):
    fit(DictStepModule(detach=False), data, tmp_path, steps=2, callbacks=[LossGuard()])
    with pytest.raises(LossGuardError, match="aux_loss"):
        fit(DictStepModule(detach=True), data, tmp_path, steps=2, callbacks=[LossGuard()])


# ---------------------------------------------------------------------------------------------- logging


def test_per_term_logging_to_csv_and_tensorboard(data, tmp_path):
    fixed = cfg("fixed_variance")
    torch.manual_seed(0)
    trainer = fit(ToyVarianceTask(fixed), data, tmp_path, steps=40, loggers=loss_loggers(tmp_path, "fixed"))
    history = read_metrics_csv(trainer)
    assert {"train/dur_loss", "train/pitch_loss", "train/var_loss", "train/total"} <= set(history)
    assert len(history["train/dur_loss"]) == 40
    summary = {s.name: s for s in summarize_loss_terms(history)}
    assert summary["total"].status == "decreasing" and summary["total"].last < 0.5 * summary["total"].first
    assert list((tmp_path / "fixed" / "tensorboard").rglob("events.out.tfevents.*"))

    # zero weight: dur_loss is logged and stuck at zero
    trainer = fit(
        ToyVarianceTask(cfg("broken_zero_lambda")),
        data,
        tmp_path / "z",
        steps=5,
        loggers=loss_loggers(tmp_path / "z", "zero", tensorboard=False),
    )
    (dur,) = summarize_loss_terms(read_metrics_csv(trainer), ["dur_loss"])
    assert dur.status == "stuck at zero" and dur.steps == 5


def test_expected_but_absent_terms_are_logged_as_nan(data, tmp_path):
    import lightning.pytorch as pl

    class Forgetful(pl.LightningModule):  # its config enables pitch, but the code never computes pitch_loss
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(1, 1)

        def training_step(self, batch, batch_idx):
            losses = {"dur_loss": (self.lin(batch[2][..., :1]) ** 2).mean()}
            log_loss_terms(self, losses, expected=["dur_loss", "pitch_loss"], batch_size=8)
            return sum(losses.values())

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.01)

    trainer = fit(
        Forgetful(), data, tmp_path, steps=3, loggers=loss_loggers(tmp_path, "f", tensorboard=False)
    )
    history = read_metrics_csv(trainer)
    assert all(math.isnan(v) for _, v in history["train/pitch_loss"])
    statuses = {
        s.name: s.status for s in summarize_loss_terms(history, ["dur_loss", "pitch_loss", "var_loss"])
    }
    assert statuses["pitch_loss"] == "absent" and statuses["var_loss"] == "absent"
    assert statuses["dur_loss"] != "absent"


def test_string_false_enables_the_head_like_upstream():
    task = ToyVarianceTask(cfg("broken_string_false"))
    assert task.model.var_head is not None and task.variance_list == ["energy"]


def test_summarize_loss_terms_statuses():
    def curve(values):
        return [(i, float(v)) for i, v in enumerate(values)]

    history = {
        "train/down": curve([10, 8, 6, 4, 3, 2, 1.5, 1]),
        "train/noisy": curve([5, 6, 4, 5.5, 4.5, 6, 5, 4.8]),
        "train/up": curve([1, 1, 2, 2, 3, 3, 4, 4]),
        "train/zero": curve([0] * 8),
        "train/nan": curve([math.nan] * 8),
        "val/other": curve([1, 2]),
    }
    got = {s.name: s for s in summarize_loss_terms(history)}
    assert set(got) == {"down", "noisy", "up", "zero", "nan"}
    assert got["down"].status == "decreasing" and got["down"].ratio == pytest.approx(1.25 / 9)
    assert got["noisy"].status == "flat" and got["up"].status == "increasing"
    assert got["zero"].status == "stuck at zero" and got["nan"].status == "absent"
    assert summarize_loss_terms(history, ["missing"])[0].status == "absent"


def test_detached_head_never_moves_while_the_others_train(data, tmp_path):
    task = ToyVarianceTask(cfg("fixed_variance"), detach_heads=["dur"])
    before = snapshot_parameters(task)
    fit(task, data, tmp_path, steps=5)  # no guard: Lightning trains happily
    changes = parameter_changes(task, before)
    assert changes["model.dur_head.weight"] == 0.0 and changes["model.dur_head.bias"] == 0.0
    assert changes["model.pitch_head.weight"] > 0 and changes["model.embed.weight"] > 0
