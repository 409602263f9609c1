"""The doctor's Coqui run check on run folders written by the real coqui-tts-trainer (notebooks 04 and 08):
accumulation 1 and 2, per-step and per-epoch, one and two optimizers; right verdicts, no false alarm."""

from __future__ import annotations

import json

import pytest

from tts_nb_utils.demos.nb04_toy_model import TinyCoquiModel, TinyGanModel, train_coqui
from tts_nb_utils.doctor.run import run_doctor
from tts_nb_utils.monitors.coqui import coqui_epoch_step_callbacks
from tts_nb_utils.upstream.coqui import coqui_epoch_stepping, installed_trainer_version

# 6 epochs x 5 batches; thresholds in optimizer steps: mid-epoch under accumulation 2, so only one value fits
GRADUAL = {"gradual_learning_rates": [[0, 1e-3], [4, 5e-4], [10, 2.5e-4]]}
HALVING = {"step_size": 1, "gamma": 0.5}
ONE_OPTIMIZER_NEVER_STEPS = coqui_epoch_stepping(installed_trainer_version() or "0.4.0").steps is False


def _run(tmp_path, name, accum=1, **config):
    _, log = train_coqui(tmp_path / name, "run", epochs=6, steps_per_epoch=5, batch_size=2, lr=1e-3,
                         grad_accum=accum, **config)
    return run_doctor([log.parent]).targets[0]


def _errors(target):
    return [f.what for f in target.findings if f.severity == "error"]


@pytest.mark.parametrize("accum", [1, 2])
def test_per_step_schedule_is_healthy_and_the_accumulation_is_read_from_the_log(tmp_path, accum):
    target = _run(tmp_path, f"step{accum}", accum, lr_scheduler="StepwiseGradualLR", lr_scheduler_params=GRADUAL,
                  scheduler_after_epoch=False)
    assert target.kind == "coqui-run" and target.findings == [], target.findings
    notes = " ".join(target.notes)
    assert f"grad_accum_steps {accum}: inferred from the log" in notes, notes
    assert "follow the plan" in notes


@pytest.mark.parametrize("accum", [1, 2])
def test_per_epoch_single_optimizer_is_flagged_naming_the_scheduler(tmp_path, accum):
    target = _run(tmp_path, f"epoch{accum}", accum, lr_scheduler="StepLR", lr_scheduler_params=HALVING)
    errors = _errors(target)
    if ONE_OPTIMIZER_NEVER_STEPS:
        assert len(errors) == 1 and errors[0].startswith("StepLR: coqui-tts-trainer"), errors
        assert "never steps a single optimizer's per-epoch scheduler" in errors[0] and "5 change(s)" in errors[0]
    else:
        assert errors == []
    assert "follow the plan" in " ".join(target.notes)  # the log agrees with the prediction: one finding, not two
    assert "whatever the accumulation" in " ".join(target.notes)


def test_per_epoch_with_the_callback_is_not_a_false_alarm(tmp_path):
    target = _run(tmp_path, "callback", callbacks=coqui_epoch_step_callbacks(), lr_scheduler="StepLR",
                  lr_scheduler_params=HALVING)
    assert _errors(target) == []
    if ONE_OPTIMIZER_NEVER_STEPS:
        assert any("something in the run steps it" in n for n in target.notes)


@pytest.mark.parametrize("after_epoch", [True, False])
def test_two_optimizers_are_recognised_and_step(tmp_path, after_epoch):
    params = {"step_size": 1, "gamma": 0.5} if after_epoch else {"step_size": 4, "gamma": 0.5}
    target = _run(tmp_path, f"gan{after_epoch}", model_cls=TinyGanModel, scheduler_after_epoch=after_epoch,
                  lr_disc=1e-3, lr_gen=2e-3, lr_scheduler_disc="StepLR", lr_scheduler_disc_params=params,
                  lr_scheduler_gen="ExponentialLR", lr_scheduler_gen_params={"gamma": 0.9})
    assert target.findings == [], target.findings
    notes = " ".join(target.notes)
    assert "constant by design" not in notes
    assert "StepLR (lr_scheduler_disc)" in notes and "ExponentialLR (lr_scheduler_gen)" in notes
    assert "current_lr_0 value(s) follow the plan" in notes and "current_lr_1 value(s) follow the plan" in notes


def test_a_log_that_leaves_the_plan_is_an_error_at_its_global_step(tmp_path):
    _, log = train_coqui(tmp_path / "edited", "run", epochs=6, steps_per_epoch=5, batch_size=2, lr=1e-3,
                         lr_scheduler="StepwiseGradualLR", lr_scheduler_params=GRADUAL, scheduler_after_epoch=False)
    config = log.parent / "config.json"
    cfg = json.loads(config.read_text())
    cfg["lr_scheduler_params"] = {"gradual_learning_rates": [[0, 1e-3], [6, 5e-4]]}  # not what the run used
    config.write_text(json.dumps(cfg))
    errors = _errors(run_doctor([log.parent]).targets[0])
    assert len(errors) == 1 and "current_lr 0.0005 at GLOBAL_STEP 4" in errors[0], errors
    assert "StepwiseGradualLR's plan" in errors[0]


def test_milestones_beyond_the_run_are_a_warning_naming_the_scheduler(tmp_path):
    target = _run(tmp_path, "beyond", lr_scheduler="MultiStepLR", lr_scheduler_params={"milestones": [100]},
                  scheduler_after_epoch=False)
    warnings = [f.what for f in target.findings if f.severity == "warning"]
    assert _errors(target) == [] and len(warnings) == 1 and warnings[0].startswith("MultiStepLR")
    assert "beyond the run" in warnings[0]


class _DataDepInit(TinyCoquiModel):
    """Returns no outputs for its first 3 training batches, as GlowTTS does during data-dependent init."""

    calls = 0

    def train_step(self, batch, criterion, optimizer_idx=None):
        self.calls += 1
        return (None, None) if self.calls <= 3 else super().train_step(batch, criterion, optimizer_idx)


def test_batches_the_model_skips_are_not_a_false_alarm(tmp_path):
    target = _run(tmp_path, "skips", model_cls=_DataDepInit, lr_scheduler="StepwiseGradualLR",
                  lr_scheduler_params=GRADUAL, scheduler_after_epoch=False)
    assert target.findings == [], target.findings
    notes = " ".join(target.notes)
    assert "skipped 3 batch(es)" in notes and "follow the plan" in notes
    assert "grad_accum_steps 1: inferred from the log" in notes
