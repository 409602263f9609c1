"""The one monitor interface: on_problem, MonitorSet ordering, and the Coqui trainer adapter on a real Trainer."""

from __future__ import annotations

import math
import subprocess
import sys
import warnings

import pytest
import torch

from tts_nb_utils.demos.nb04_toy_model import train_coqui
from tts_nb_utils.monitors import LRWatch, Monitor, MonitorError, MonitorSet, MonitorWarning, NanGuard
from tts_nb_utils.monitors.coqui import CoquiMonitors, coqui_epoch_step_callbacks, merge_callbacks
from tts_nb_utils.schedules.plan import lr_plan


class Recorder(Monitor):
    name = "recorder"

    def __init__(self, skip_at=(), **kw):
        super().__init__(**kw)
        self.calls, self.skip_at = [], set(skip_at)

    def before_optimizer_step(self, step, loss=None):
        self.calls.append(("before", step))
        return step not in self.skip_at

    def after_optimizer_step(self, step, loss=None):
        self.calls.append(("after", step))


def test_on_problem_raises_warns_or_records_and_always_keeps_the_problem():
    for choice in ("raise", "warn", "record"):
        m = Monitor(on_problem=choice)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            if choice == "raise":
                with pytest.raises(MonitorError, match=r"\[flat-loss @ step 3\] stuck"):
                    m.report("flat-loss", 3, "stuck")
            else:
                assert m.report("flat-loss", 3, "stuck").kind == "flat-loss"
        assert [str(p) for p in m.problems] == ["[flat-loss @ step 3] stuck"]
        assert [w.category for w in caught] == ([MonitorWarning] if choice == "warn" else [])
    with pytest.raises(ValueError, match="on_problem='loud'"):
        Monitor(on_problem="loud")


def test_monitor_set_stops_at_the_first_skip_and_skipped_steps_reach_no_after_hook():
    first, second = Recorder(skip_at={1}), Recorder()
    both = MonitorSet(first, second)
    for step in range(3):
        if both.before_optimizer_step(step):
            pass
        both.after_optimizer_step(step)
    assert first.calls == [("before", 0), ("after", 0), ("before", 1), ("before", 2), ("after", 2)]
    assert second.calls == [("before", 0), ("after", 0), ("before", 2), ("after", 2)]


def test_merge_callbacks_runs_both_in_order():
    seen = []
    merged = merge_callbacks({"on_x": lambda t: seen.append(("a", t))}, {"on_x": lambda t: seen.append(("b", t))})
    merged["on_x"]("T")
    assert seen == [("a", "T"), ("b", "T")]


# ------------------------------------------------------------------------------- the real Coqui trainer


def _coqui(tmp_path, name, monitors, **config):
    return train_coqui(tmp_path, name, epochs=2, steps_per_epoch=5, batch_size=4, lr=0.05, monitors=monitors,
                       **config)


def test_coqui_lr_watch_sees_every_optimizer_step_without_the_model_hooks(tmp_path):
    watch = LRWatch({0: 0.05, 3: 0.025}, on_problem="record")
    _coqui(tmp_path, "watch", CoquiMonitors(watch), lr_scheduler="StepLR",
           lr_scheduler_params={"step_size": 3, "gamma": 0.5}, scheduler_after_epoch=False)
    assert [s for s, _ in watch.history] == list(range(10))
    assert watch.history[2][1] == pytest.approx(0.05) and watch.history[3][1] == pytest.approx(0.025)
    assert watch.ok, watch.format_problems()


GRADUAL_6_12 = [[0, 0.05], [6, 0.025], [12, 0.0125]]


def test_coqui_lr_watch_counts_optimizer_steps_as_the_trainer_accumulates(tmp_path):
    # 10 batches per epoch, accumulation 3: the trainer steps after batches 2, 5, 8 and 9, so 4 steps per epoch
    plan = lr_plan("StepwiseGradualLR", {"gradual_learning_rates": GRADUAL_6_12}, 0.05, 10, 4, False, grad_accum=3)
    watch = LRWatch(plan.configured, on_problem="record")
    train_coqui(tmp_path, "accum", epochs=4, steps_per_epoch=10, batch_size=4, lr=0.05, grad_accum=3,
                monitors=CoquiMonitors(watch), lr_scheduler="StepwiseGradualLR",
                lr_scheduler_params={"gradual_learning_rates": GRADUAL_6_12}, scheduler_after_epoch=False)
    assert [s for s, _ in watch.history] == list(range(16)) and watch.ok, watch.format_problems()
    assert watch.history[5][1] == pytest.approx(0.05) and watch.history[6][1] == pytest.approx(0.025)


def test_coqui_lr_watch_stops_the_default_config_within_the_first_epoch(tmp_path, capsys):
    # thresholds written in optimizer steps (per-step plan), the trainer's default steps per epoch
    plan = lr_plan("StepwiseGradualLR", {"gradual_learning_rates": GRADUAL_6_12}, 0.05, 5, 3, False)
    watch = LRWatch(plan.configured)
    with pytest.raises(SystemExit):  # the Coqui trainer turns the error into exit status 1
        _coqui(tmp_path, "stop", CoquiMonitors(watch), lr_scheduler="StepwiseGradualLR",
               lr_scheduler_params={"gradual_learning_rates": GRADUAL_6_12})
    assert [(p.kind, p.step) for p in watch.problems] == [("scheduler-clock", 4)]  # last step of epoch 0
    assert "scheduler_after_epoch=True" in capsys.readouterr().err
    assert len(watch.history) == 5


def test_coqui_lr_watch_warns_when_a_per_epoch_scheduler_is_never_stepped(tmp_path):
    plan = lr_plan("StepLR", {"step_size": 1, "gamma": 0.5}, 0.05, 5, 2, True)
    halving = {"lr_scheduler": "StepLR", "lr_scheduler_params": {"step_size": 1, "gamma": 0.5}}
    watch = LRWatch(plan.configured, on_problem="warn")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _coqui(tmp_path, "never", CoquiMonitors(watch), **halving)
    if plan.trainer is not None and plan.trainer.steps is False:  # the installed trainer (0.4.0) never steps it
        assert [(p.kind, p.step) for p in watch.problems] == [("lr-mismatch", 5), ("scheduler-clock", 5)]
        assert any(issubclass(w.category, MonitorWarning) for w in caught)
    else:
        assert watch.ok, watch.format_problems()
    fixed = LRWatch(plan.configured, on_problem="record")
    _coqui(tmp_path, "fixed", CoquiMonitors(fixed), callbacks=coqui_epoch_step_callbacks(), **halving)
    assert fixed.ok and fixed.history[5][1] == pytest.approx(0.025), fixed.format_problems()


def test_coqui_nan_guard_skips_poisoned_steps_through_the_model_hooks(tmp_path, monkeypatch):
    from tts_nb_utils.demos.nb04_toy_model import TinyCoquiModel

    original = TinyCoquiModel.train_step
    calls = {"n": 0}

    def poisoned(self, batch, criterion, optimizer_idx=None):
        outputs, losses = original(self, batch, criterion, optimizer_idx)
        calls["n"] += 1
        if calls["n"] in (3, 4):  # the 3rd and 4th batches give a NaN loss
            losses = {"loss": losses["loss"] * float("nan")}
        return outputs, losses

    monkeypatch.setattr(TinyCoquiModel, "train_step", poisoned)
    guard = NanGuard(patience=None, on_problem="record")
    _coqui(tmp_path, "guard", CoquiMonitors(guard))
    assert guard.steps == 10 and guard.skipped == 2
    assert [p.step for p in guard.problems] == [2, 3]
    assert all(math.isfinite(float(p.detach().abs().sum())) for p in guard.params), "NaN reached the weights"


def test_coqui_monitor_needing_gradients_without_the_mixin_is_a_clear_error(tmp_path, capsys):
    with pytest.raises(ValueError, match="Plain does not forward.*MonitoredModelMixin"):
        CoquiMonitors(NanGuard()).attach(type("Plain", (torch.nn.Module,), {})())
    # Not attached at all: the first epoch stops with the same advice (the trainer exits 1 after printing it).
    with pytest.raises(SystemExit):
        train_coqui(tmp_path, "nomixin", epochs=1, steps_per_epoch=2, batch_size=4, lr=0.05,
                    callbacks=CoquiMonitors(NanGuard()).callbacks)
    assert "nan-guard need the gradients" in capsys.readouterr().err


def test_importing_the_monitors_loads_neither_lightning_nor_the_coqui_trainer():
    code = (
        "import sys, tts_nb_utils.monitors, tts_nb_utils.diagnose.params, tts_nb_utils.schedules.trace; "
        "print(sorted(m for m in ('lightning', 'pytorch_lightning', 'trainer') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    assert torch  # the monitors work on torch alone
