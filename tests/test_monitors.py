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
from tts_nb_utils.monitors.coqui import CoquiMonitors, merge_callbacks


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
