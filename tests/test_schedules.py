"""tts_nb_utils.schedules.trace: LR traces of real torch/Coqui schedulers, converters, warm-up+decay, LR watch, CLI."""

from __future__ import annotations

import json
import math
import warnings

import pytest
import torch
from torch.optim import lr_scheduler as S
from trainer.torch import NoamLR, StepwiseGradualLR

from tts_nb_utils import cli
from tts_nb_utils.monitors.lightning import MonitorCallback
from tts_nb_utils.monitors.lr_watch import LRWatch, LRWatchError, LRWatchWarning
from tts_nb_utils.schedules.build import gradual_lr_at, warmup_then_decay
from tts_nb_utils.schedules.plan import lr_plan
from tts_nb_utils.schedules.trace import (
    ScheduleConfigError,
    catch_order_warnings,
    epochs_to_steps,
    gradual_to_epochs,
    milestone_warnings,
    scaler_skipped_step,
    scheduler_class,
    scheduler_factory,
    steps_to_epochs,
    trace_lr,
)
from tts_nb_utils.upstream.coqui import (
    RunSize,
    coqui_epoch_stepping,
    coqui_first_batches,
    coqui_optimizer_steps_per_epoch,
    coqui_tts_run_size,
    coqui_update_batches,
    installed_trainer_version,
    read_coqui_lr_log,
)

GRADUAL = [[0, 5e-4], [12, 4e-4], [24, 3e-4]]


def _opt(lr=1e-3):
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=lr)


# ------------------------------------------------------------------------------------------------ trace_lr


def test_steplr_per_step_and_per_epoch():
    per_step = trace_lr(lambda o: S.StepLR(o, step_size=3, gamma=0.5), steps_per_epoch=4, epochs=3, lr=1.0)
    assert per_step.lrs == [1, 1, 1, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.125, 0.125, 0.125]
    per_epoch = trace_lr(lambda o: S.StepLR(o, step_size=2, gamma=0.5), 4, 3, after_epoch=True, lr=1.0)
    assert per_epoch.lrs == [1.0] * 8 + [0.5] * 4
    assert per_epoch.changes() == [(0, 1.0), (8, 0.5)]


def test_multisteplr_per_step_vs_per_epoch():
    make = lambda o: S.MultiStepLR(o, milestones=[5, 9], gamma=0.1)  # noqa: E731
    step = trace_lr(make, 5, 3, lr=1.0)
    assert [s for s, _ in step.changes()] == [0, 5, 9]
    epoch = trace_lr(make, 5, 3, after_epoch=True, lr=1.0)
    assert epoch.never_changes() and epoch.total_steps == 15


def test_stepwise_gradual_per_epoch_never_moves_per_step_moves_at_thresholds():
    make = lambda o: StepwiseGradualLR(o, GRADUAL)  # noqa: E731
    # 10 epochs < first threshold (12) read as epochs: flat for the whole run
    flat = trace_lr(make, steps_per_epoch=4, epochs=10, after_epoch=True, lr=5e-4)
    assert flat.never_changes() and flat.lrs[0] == 5e-4
    moving = trace_lr(make, steps_per_epoch=4, epochs=10, after_epoch=False, lr=5e-4)
    assert moving.changes() == [(0, 5e-4), (12, 4e-4), (24, 3e-4)]
    for threshold, lr in GRADUAL:
        assert moving.lr_at(threshold) == pytest.approx(lr)
        assert moving.lr_at(threshold) == pytest.approx(gradual_lr_at(GRADUAL, threshold))
    # stepped per epoch it moves at the threshold *epoch*
    late = trace_lr(make, steps_per_epoch=2, epochs=14, after_epoch=True, lr=5e-4)
    assert late.changes() == [(0, 5e-4), (12 * 2, 4e-4)]


def test_noam_warmup_per_step_vs_per_epoch():
    make = lambda o: NoamLR(o, warmup_steps=8)  # noqa: E731
    step = trace_lr(make, 4, 4, lr=1.0)
    peak = max(range(step.total_steps), key=step.lr_at)
    assert peak == 7 and step.lr_at(7) == pytest.approx(1.0)  # peak at step warmup-1 (scale uses last_epoch+1)
    epoch = trace_lr(make, 4, 4, after_epoch=True, lr=1.0)
    assert max(epoch.lrs) == pytest.approx(4 / 8) and epoch.lrs[:4] == [pytest.approx(1 / 8)] * 4


def test_trace_does_not_trigger_order_warning_and_rejects_bad_sizes():
    with catch_order_warnings() as found:
        trace_lr(lambda o: S.StepLR(o, 1), 2, 2)
    assert found == []
    with pytest.raises(ValueError, match="steps_per_epoch"):
        trace_lr(lambda o: S.StepLR(o, 1), 0, 2)


# --------------------------------------------------------------------------------------- lookup and warnings


def test_scheduler_lookup_and_factory_errors():
    assert scheduler_class("MultiStepLR") is S.MultiStepLR
    assert scheduler_class("StepwiseGradualLR") is StepwiseGradualLR
    with pytest.raises(ScheduleConfigError, match="AttributeError; write 'MultiStepLR'"):
        scheduler_class("multisteplr")
    with pytest.raises(ScheduleConfigError, match="unknown scheduler 'Nope'.*MultiStepLR"):
        scheduler_class("Nope")
    with pytest.raises(ScheduleConfigError, match="StepLR.*step_size"):
        scheduler_factory("StepLR", {"stepsize": 3})
    with pytest.raises(ScheduleConfigError, match="Python function"):
        scheduler_factory("LambdaLR", {})


def test_milestone_warnings_name_unreachable_milestones():
    params = {"gradual_learning_rates": GRADUAL}
    tr = trace_lr(scheduler_factory("StepwiseGradualLR", params), 4, 10, after_epoch=True, lr=5e-4)
    ws = milestone_warnings("StepwiseGradualLR", params, 4, 10, True, tr)
    assert any("12 lies beyond the run" in w and "epoch 3" in w for w in ws)
    assert any("stays" in w for w in ws)
    assert milestone_warnings("StepwiseGradualLR", params, 4, 10, False) == []
    ws = milestone_warnings("StepwiseGradualLR", {"gradual_learning_rates": [[0, 1], [20, 2], [10, 3]]}, 10, 10, False)
    assert any("not in increasing order" in w for w in ws)


def test_scheduler_names_match_exactly_as_the_coqui_trainer_does():
    from trainer.trainer_utils import get_scheduler

    for name in ("noamlr", "NOAMLR", "stepwisegraduallr", "StepLR", "steplr", "MultiStepLR", "multisteplr"):
        params = {"gradual_learning_rates": [[0, 1.0]]} if "gradual" in name.lower() else {}
        params |= {"step_size": 1} if name.lower() == "steplr" else {}
        params |= {"milestones": [1]} if "multistep" in name.lower() else {}
        try:
            coqui = type(get_scheduler(name, params, _opt()))
        except AttributeError:
            coqui = None
        try:
            ours = scheduler_class(name)
        except ScheduleConfigError:
            ours = None
        assert ours is coqui, name


# ----------------------------------------------------------------------------------------------- converters


def test_converters():
    assert epochs_to_steps([3, 5], 100) == [300, 500]
    assert steps_to_epochs([250, 300, 301], 100) == [3, 3, 4]
    assert steps_to_epochs([250, 349], 100, rounding="floor") == [2, 3]
    assert steps_to_epochs([249, 250], 100, rounding="nearest") == [2, 3]
    assert steps_to_epochs(epochs_to_steps([7, 9], 13), 13) == [7, 9]
    with pytest.raises(ValueError):
        steps_to_epochs([1], 0)
    assert gradual_to_epochs([[0, 5e-4], [10000, 4e-4]], 500) == [[0, 5e-4], [20, 4e-4]]
    with pytest.raises(ValueError, match="both map to epoch 1"):
        gradual_to_epochs([[0, 1], [60, 2], [90, 3]], 100)


def test_converted_epoch_milestones_reproduce_step_schedule_at_epoch_boundaries():
    spe, epochs = 5, 8
    step_ms = [10, 25]
    per_step = trace_lr(lambda o: S.MultiStepLR(o, step_ms, 0.5), spe, epochs, lr=1.0)
    ep_ms = steps_to_epochs(step_ms, spe)
    per_epoch = trace_lr(lambda o: S.MultiStepLR(o, ep_ms, 0.5), spe, epochs, after_epoch=True, lr=1.0)
    assert per_epoch.lrs == per_step.lrs  # milestones on epoch boundaries: identical schedules


# ------------------------------------------------------------------------------------------ warm-up + decay


def test_warmup_then_gradual_hits_each_threshold():
    base = 5e-4
    tr = trace_lr(lambda o: warmup_then_decay(o, 6, "gradual", gradual_lr=GRADUAL), 4, 10, lr=base)
    assert tr.lr_at(0) == pytest.approx(0.0)
    assert tr.lrs[:7] == pytest.approx([base * s / 6 for s in range(7)])
    for threshold, lr in GRADUAL[1:]:
        assert tr.lr_at(threshold) == pytest.approx(lr)
        assert tr.lr_at(threshold - 1) != pytest.approx(lr)
    assert tr.lr_at(11) == pytest.approx(base)


def test_warmup_then_cosine_and_multistep():
    cos = trace_lr(lambda o: warmup_then_decay(o, 4, "cosine", total_steps=20, min_lr=0.1, start_factor=0.5),
                   5, 4, lr=1.0)
    assert cos.lr_at(0) == pytest.approx(0.5) and cos.lr_at(4) == pytest.approx(1.0)
    assert cos.lr_at(12) == pytest.approx(0.1 + 0.9 * (1 + math.cos(math.pi * 8 / 16)) / 2)
    assert min(cos.lrs) >= 0.1 - 1e-12
    ms = trace_lr(lambda o: warmup_then_decay(o, 4, "multistep", milestones=[10, 15], gamma=0.1), 5, 4, lr=1.0)
    assert ms.lr_at(9) == pytest.approx(1.0) and ms.lr_at(10) == pytest.approx(0.1)
    assert ms.lr_at(15) == pytest.approx(0.01)
    with pytest.raises(ValueError, match="inside the warm-up"):
        warmup_then_decay(_opt(), 10, "multistep", milestones=[5])
    with pytest.raises(ValueError, match="total_steps"):
        warmup_then_decay(_opt(), 10, "cosine")


# ---------------------------------------------------------------------------------------------- LR watch


def _loop(watch, scheduler_per_epoch, spe=4, epochs=7):
    model = torch.nn.Linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=5e-4)
    sched = StepwiseGradualLR(opt, GRADUAL)
    step = 0
    for _ in range(epochs):
        for _ in range(spe):
            watch.record(opt, step)
            model(torch.ones(1, 2)).sum().backward()
            opt.step()
            opt.zero_grad()
            if not scheduler_per_epoch:
                sched.step()
            step += 1
        if scheduler_per_epoch:
            sched.step()
    return watch.on_train_end()


def test_lr_watch_plain_loop_raises_warns_and_passes():
    with pytest.raises(LRWatchError, match="step 12.*expected 0.0004"):
        _loop(LRWatch(GRADUAL), scheduler_per_epoch=True)
    w = LRWatch(GRADUAL, on_problem="warn")
    with pytest.warns(LRWatchWarning) as caught:
        _loop(w, scheduler_per_epoch=True)
    messages = [str(c.message) for c in caught]
    assert any("step 12" in m and "expected 0.0004" in m for m in messages)
    assert any("step 24" in m and "expected 0.0003" in m for m in messages)
    assert len(w.failures) == 2 and len(w.history) == 28
    ok = LRWatch(GRADUAL)
    assert _loop(ok, scheduler_per_epoch=False) == [] and ok.failures == []
    assert ok.as_trace(4).changes() == [(0, 5e-4), (12, 4e-4), (24, 3e-4)]
    late = LRWatch({0: 5e-4, 100: 1e-5})
    with pytest.warns(LRWatchWarning, match="run ended at step 7"):
        notes = _loop(late, scheduler_per_epoch=False, epochs=10 // 4)
    assert len(notes) == 1 and "1e-05" in notes[0]


def test_lr_watch_checks_first_recorded_step_after_expected_one():
    w = LRWatch({5: 0.5})
    opt = _opt(1.0)
    w.record(opt, 0)
    with pytest.raises(LRWatchError, match="first recorded at or after 5"):
        w.record(opt, 8)


def _clock_loop(watch, stepped_every, spe=4, epochs=7):
    """A plain loop stepping StepwiseGradualLR every ``stepped_every`` optimizer steps (``"epoch"``, ``"never"``)."""
    opt = _opt(5e-4)
    sched = StepwiseGradualLR(opt, GRADUAL)
    watch.on_train_start(optimizer=opt, schedulers=[sched])
    for step in range(spe * epochs):
        watch.before_optimizer_step(step)
        opt.step()
        if stepped_every == "step" or (stepped_every == "epoch" and (step + 1) % spe == 0):
            sched.step()
        if stepped_every == "twice":  # e.g. per micro-batch under accumulation
            sched.step(), sched.step()
    return watch


def test_lr_watch_with_a_plan_checks_the_scheduler_clock_within_the_first_epoch():
    per_step = trace_lr(lambda o: StepwiseGradualLR(o, GRADUAL), 4, 7, lr=5e-4)
    per_epoch = trace_lr(lambda o: StepwiseGradualLR(o, GRADUAL), 4, 7, after_epoch=True, lr=5e-4)
    assert _clock_loop(LRWatch(per_step), "step").ok and _clock_loop(LRWatch(per_epoch), "epoch").ok
    # the plan steps per optimizer step, the loop per epoch: caught at the first epoch's last step (3), long
    # before the first threshold (12), where the LR itself would first differ
    with pytest.raises(LRWatchError, match=r"scheduler-clock @ step 3\].*stepped 0 time"):
        _clock_loop(LRWatch(per_step), "epoch")
    with pytest.raises(LRWatchError, match=r"scheduler-clock @ step 4\].*never steps it"):
        _clock_loop(LRWatch(per_epoch), "never")
    with pytest.raises(LRWatchError, match=r"scheduler-clock @ step 1\].*stepped 2 time.*per batch"):
        _clock_loop(LRWatch(per_step), "twice")
    w = _clock_loop(LRWatch(per_step, on_problem="record"), "epoch")
    assert [(p.kind, p.step) for p in w.problems] == [("scheduler-clock", 3), ("lr-mismatch", 12),
                                                      ("lr-mismatch", 24)]


def test_lr_watch_with_a_plan_checks_every_step():
    plan = trace_lr(lambda o: S.StepLR(o, 3, 0.5), 4, 2, lr=1.0)
    early = trace_lr(lambda o: S.StepLR(o, 2, 0.5), 4, 2, lr=1.0)  # changes one step too early
    w = LRWatch(plan, on_problem="record")
    for step, lr in enumerate(early.lrs):
        w.record(torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr), step)
    # the change-point check alone would pass step 3 (0.5 both); every-step catches 2, then 4 and 6, once each
    assert [p.step for p in w.problems] == [2, 4, 6]


def test_lr_watch_lightning_callback(tmp_path):
    import lightning.pytorch as pl

    class Tiny(pl.LightningModule):
        def __init__(self, per_epoch):
            super().__init__()
            self.layer = torch.nn.Linear(2, 1)
            self.per_epoch = per_epoch

        def training_step(self, batch, batch_idx):
            return self.layer(batch[0]).pow(2).mean()

        def configure_optimizers(self):
            opt = torch.optim.SGD(self.parameters(), lr=5e-4)
            sched = StepwiseGradualLR(opt, GRADUAL)
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched,
                                                       "interval": "epoch" if self.per_epoch else "step"}}

    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(16, 2)), batch_size=4)

    def fit(per_epoch, **kw):
        cb = MonitorCallback(LRWatch(GRADUAL, **kw))
        trainer = pl.Trainer(max_epochs=7, accelerator="cpu", logger=False, enable_checkpointing=False,
                             enable_progress_bar=False, enable_model_summary=False, callbacks=[cb],
                             default_root_dir=tmp_path)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*(num_workers|does not have many workers).*")
            trainer.fit(Tiny(per_epoch), data)
        return cb.monitor

    watch = fit(per_epoch=False)
    assert watch.failures == [] and [s for s, _ in watch.history] == list(range(28))
    assert dict(watch.history)[12] == pytest.approx(4e-4) and dict(watch.history)[24] == pytest.approx(3e-4)
    with pytest.raises(LRWatchError, match="step 12"):
        fit(per_epoch=True)


# ----------------------------------------------------------------------------------- ordering and GradScaler


def test_order_warning_detected_and_first_value_skipped():
    opt = _opt(1.0)
    sched = S.StepLR(opt, step_size=1, gamma=0.5)
    used = []
    with catch_order_warnings() as found:
        for _ in range(3):
            sched.step()  # wrong order
            used.append(opt.param_groups[0]["lr"])
            opt.step()
    assert len(found) == 1 and "before `optimizer.step()`" in found[0]
    assert used == [0.5, 0.25, 0.125]  # the initial 1.0 was never used


def test_gradscaler_skipped_step_fires_the_warning_falsely_and_the_guard_avoids_it():
    def run(guard):
        p = torch.nn.Parameter(torch.ones(1))
        opt = torch.optim.SGD([p], lr=1.0)
        sched = S.StepLR(opt, 1, 0.5)
        scaler = torch.amp.GradScaler("cpu")
        with catch_order_warnings() as found:
            loss = (p * 1e35).sum()  # scaled by 65536 its gradient overflows float32 -> step skipped
            scaler.scale(loss).backward()
            before = scaler.get_scale()
            scaler.step(opt)  # correct order: optimizer (via scaler) first ...
            scaler.update()
            skipped = scaler_skipped_step(before, scaler)
            if not (guard and skipped):
                sched.step()  # ... then the scheduler
        return found, skipped, p.item()

    found, skipped, value = run(guard=False)
    assert skipped and value == 1.0 and len(found) == 1
    found, skipped, _ = run(guard=True)
    assert skipped and found == []


# -------------------------------------------------------------------------------------------- Coqui log


def test_read_coqui_lr_log(tmp_path):
    log = tmp_path / "trainer_0_log.txt"
    log.write_text(
        "\x1b[1m   --> TIME: x -- STEP: 0/3 -- GLOBAL_STEP: 0\x1b[0m\n     | > loss: 1.0  (1.0)\n"
        "     | > current_lr: 0.0005 \n\n   --> STEP: 1/3 -- GLOBAL_STEP: 1\n     | > current_lr: 4e-04 \n"
    )
    assert read_coqui_lr_log(log) == [(0, 5e-4), (1, 4e-4)]
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        read_coqui_lr_log(tmp_path / "nope.txt")


# ------------------------------------------------------------------------------------------------------ CLI

BASE = ["lr-plan", "--scheduler", "StepwiseGradualLR", "--params", json.dumps({"gradual_learning_rates": GRADUAL}),
        "--lr", "5e-4", "--steps-per-epoch", "4", "--epochs", "10"]


def _json(capsys, *args, code=0):
    assert cli.main([*args, "--json"]) == code
    return json.loads(capsys.readouterr().out)


def _at(changes, key="optimizer_step"):
    return [c[key] for c in changes]


def test_cli_json_per_step_and_per_epoch(capsys):
    out = _json(capsys, *BASE, "--per-step")
    assert out == {"changes": [{"global_step": 0, "optimizer_step": 0, "epoch": 0, "lr": 5e-4},
                               {"global_step": 12, "optimizer_step": 12, "epoch": 3, "lr": 4e-4},
                               {"global_step": 24, "optimizer_step": 24, "epoch": 6, "lr": 3e-4}],
                   "warnings": []}
    out = _json(capsys, *BASE, "--after-epoch", "--trainer-version", "none", code=1)
    assert _at(out["changes"]) == [0] and "intended_changes" not in out
    assert any("beyond the run" in w for w in out["warnings"])
    assert _json(capsys, *BASE, "--trainer-version", "none", code=1) == out  # per epoch is the default


def test_cli_defaults_to_the_trainers_per_epoch_stepping_and_exits_1_when_the_lr_never_moves(capsys):
    noam = ["lr-plan", "--scheduler", "NoamLR", "--params", '{"warmup_steps": 4000}', "--lr", "1e-3",
            "--batches-per-epoch", "100", "--epochs", "5"]  # GlowTTS' and FastPitch's defaults, 500 batches
    out = _json(capsys, *noam, "--trainer-version", "0.4.0", code=1)  # the config's default: per epoch, never stepped
    assert _at(out["changes"]) == [0] and out["changes"][0]["lr"] == pytest.approx(1e-3 / 4000)
    assert _at(out["intended_changes"]) == [0, 100, 200, 300, 400]
    assert _json(capsys, *noam, "--trainer-version", "0.3.3")["changes"][1]["lr"] == pytest.approx(2e-3 / 4000)
    assert len(_json(capsys, *noam, "--per-step")["changes"]) == 500  # the warm-up moves every step
    assert cli.main([*noam, "--trainer-version", "0.4.0"]) == 1
    text = capsys.readouterr().out
    assert "(scheduler_after_epoch=True)" in text and "WARNING: NoamLR: coqui-tts-trainer" in text
    assert max(len(line) for line in text.splitlines()) <= 110  # warnings wrapped for a terminal
    steplr = ["lr-plan", "--scheduler", "StepLR", "--params", '{"step_size": 1000}', "--lr", "1",
              "--batches-per-epoch", "10", "--epochs", "5", "--per-step"]
    assert cli.main(steplr) == 1  # step_size beyond the run: the LR never changes
    assert cli.main([*steplr[:4], '{"step_size": 10}', *steplr[5:]]) == 0
    capsys.readouterr()
    assert cli.main([*noam, "--per-step", "--after-epoch"]) == 2
    assert "not allowed with" in capsys.readouterr().err


GRADUAL_6_12 = ["lr-plan", "--scheduler", "StepwiseGradualLR", "--lr", "1e-3", "--params",
                json.dumps({"gradual_learning_rates": [[0, 1e-3], [6, 5e-4], [12, 2.5e-4]]})]


def test_cli_grad_accum_reports_global_and_optimizer_steps(capsys):
    # 10 batches, accumulation 3: the trainer steps after batches 2, 5, 8 and 9 (the epoch's last), 4 per epoch
    out = _json(capsys, *GRADUAL_6_12, "--batches-per-epoch", "10", "--epochs", "5", "--grad-accum", "3", "--per-step")
    assert _at(out["changes"]) == [0, 6, 12] and _at(out["changes"], "global_step") == [0, 16, 30]
    assert any("4 optimizer steps per epoch" in w and "GLOBAL_STEP" in w for w in out["warnings"])
    # 9 batches: groups never straddle an epoch, a change at optimizer step k is logged at batch 3k
    out = _json(capsys, *GRADUAL_6_12, "--steps-per-epoch", "9", "--epochs", "5", "--grad-accum", "3", "--per-step")
    assert _at(out["changes"], "global_step") == [0, 18, 36]


STEPLR = ["lr-plan", "--scheduler", "StepLR", "--params", '{"step_size": 1, "gamma": 0.5}', "--lr", "1",
          "--batches-per-epoch", "4", "--epochs", "3", "--after-epoch"]


def test_cli_after_epoch_says_what_each_trainer_version_does(capsys):
    out = _json(capsys, *STEPLR, "--trainer-version", "0.4.0", code=1)
    assert _at(out["changes"]) == [0] and _at(out["intended_changes"]) == [0, 4, 8]
    assert out["trainer"] == {"version": "0.4.0", "steps_epoch_scheduler": False}
    assert any("coqui-tts-trainer 0.4.0 never steps a single optimizer's per-epoch scheduler" in w
               for w in out["warnings"])
    for version, extra in (("0.3.3", []), ("0.0.36", ["--model-optimize"]), ("0.4.0", ["--optimizers", "2"])):
        out = _json(capsys, *STEPLR, "--trainer-version", version, *extra)
        assert _at(out["changes"]) == [0, 4, 8] and not any("never" in w for w in out["warnings"]), version
    out = _json(capsys, *STEPLR, "--trainer-version", "0.3.1", "--model-optimize", code=1)
    assert _at(out["changes"]) == [0] and any("its own optimize()" in w for w in out["warnings"])
    out = _json(capsys, *STEPLR, "--trainer-version", "0.5.0")
    assert _at(out["changes"]) == [0, 4, 8] and any("newer than the versions checked" in w for w in out["warnings"])
    assert cli.main([*STEPLR, "--trainer-version", "0.4.0"]) == 1
    text = capsys.readouterr().out
    assert "lr (trainer 0.4.0)" in text and "intended lr" in text and "0.5" in text.split("intended lr")[1]


def test_cli_text_and_plot(capsys, tmp_path):
    plot = tmp_path / "lr.png"
    assert cli.main([*BASE, "--after-epoch", "--plot", str(plot)]) == 1
    text = capsys.readouterr().out
    assert "WARNING" in text and "24 lies beyond the run" in text and "changes 0 time(s)" in text
    assert plot.read_bytes()[:4] == b"\x89PNG"
    assert [p.name for p in tmp_path.iterdir()] == ["lr.png"]  # no temporary file left behind
    assert cli.main([*BASE, "--per-step"]) == 0
    text = capsys.readouterr().out
    assert "         12        12       3  0.0004" in text and "WARNING" not in text


@pytest.mark.parametrize(
    "args, message",
    [
        (["--scheduler", "NoSuchLR", "--params", "{}"], "unknown scheduler"),
        (["--scheduler", "StepLR", "--params", "{step_size: 2}"], "not valid JSON"),
        (["--scheduler", "StepLR", "--params", "[2]"], "JSON object"),
        (["--scheduler", "StepLR", "--params", '{"stepsize": 2}'], "step_size"),
        (["--scheduler", "ReduceLROnPlateau", "--params", "{}"], "metric"),
        (["--scheduler", "multisteplr", "--params", '{"milestones": [2]}'], "write 'MultiStepLR'"),
        (["--scheduler", "StepLR", "--params", '{"step_size": 2}', "--trainer-version", "x"], "--trainer-version"),
        (["--scheduler", "StepLR", "--params", '{"step_size": 2}', "--grad-accum", "0"], "--grad-accum"),
    ],
)
def test_cli_usage_errors_exit_2(capsys, args, message):
    assert cli.main(["lr-plan", *args, "--lr", "1e-3", "--steps-per-epoch", "4", "--epochs", "2"]) == 2
    assert message in capsys.readouterr().err


def test_coqui_trainer_per_epoch_stepping_and_the_callback(tmp_path):
    from trainer import Trainer, TrainerArgs, TrainerConfig, TrainerModel
    from trainer.logging.dummy_logger import DummyLogger

    from tts_nb_utils.monitors.coqui import coqui_epoch_step_callbacks, quiet_coqui_console

    class Tiny(TrainerModel):
        def __init__(self):
            super().__init__()
            self.net = torch.nn.Linear(2, 1)

        def forward(self, x):
            return self.net(x)

        def train_step(self, batch, criterion, optimizer_idx=None):
            out = self(batch["x"])
            return {"model_outputs": out}, {"loss": criterion(out, batch["y"])}

        def get_criterion(self):
            return torch.nn.MSELoss()

        def get_data_loader(self, config, assets=None, is_eval=False, samples=None, verbose=True, num_gpus=1, rank=0):
            rows = [{"x": torch.ones(2) * i, "y": torch.ones(1)} for i in range(4)]
            return torch.utils.data.DataLoader(rows, batch_size=2)

    def run(name, callbacks):
        cfg = TrainerConfig(output_path=str(tmp_path / name), epochs=3, batch_size=2, lr=1.0, optimizer="SGD",
                            optimizer_params={}, lr_scheduler="StepLR",
                            lr_scheduler_params={"step_size": 1, "gamma": 0.5},
                            print_step=1, run_eval=False, save_checkpoints=False)
        with quiet_coqui_console():
            tr = Trainer(TrainerArgs(), cfg, output_path=cfg.output_path, model=Tiny(), callbacks=callbacks,
                         parse_command_line_args=False, dashboard_logger=DummyLogger())
            tr.fit()
        return read_coqui_lr_log(next((tmp_path / name).rglob("trainer_0_log.txt")))

    fixed = run("with_callback", coqui_epoch_step_callbacks())
    assert [lr for _, lr in fixed] == [1.0, 1.0, 0.5, 0.5, 0.25, 0.25]  # halves at each epoch boundary
    plain = run("plain", {})
    # what the version table (upstream.coqui) says the installed trainer does, it does
    stepping = coqui_epoch_stepping(installed_trainer_version())
    if stepping.steps is not None:
        assert [lr for _, lr in plain] == ([lr for _, lr in fixed] if stepping.steps else [1.0] * 6), stepping.reason


def test_coqui_accumulation_rule_and_version_table():
    assert coqui_update_batches(10, 3) == [2, 5, 8, 9] and coqui_update_batches(9, 3) == [2, 5, 8]
    assert coqui_optimizer_steps_per_epoch(10, 3) == 4 and coqui_optimizer_steps_per_epoch(4323, 84) == 52
    assert coqui_first_batches(10, 3, 2) == [0, 3, 6, 9, 10, 13, 16, 19]
    with pytest.raises(ValueError, match="grad_accum"):
        coqui_update_batches(10, 0)
    table = {(v, k, own): coqui_epoch_stepping(v, k, own).steps
             for v in ("0.0.36", "0.3.0", "0.3.1", "0.3.3", "0.4.0") for k in (1, 2) for own in (False, True)}
    assert [v for (v, k, own), steps in table.items() if not steps] == [
        "0.3.1", "0.3.1", "0.3.3", "0.3.3", "0.4.0", "0.4.0", "0.4.0"]
    assert table[("0.4.0", 2, False)] and not table[("0.4.0", 1, False)] and table[("0.3.3", 1, False)]
    assert coqui_epoch_stepping("0.4.1").steps is None
    # the XTTS recipe on LJSpeech: 131 clips held out (1 %, at most 256), batches of 3, 84 accumulated
    assert coqui_tts_run_size(13100, 3, 84, 1000) == RunSize(12969, 4323, 52, 52000)
    assert coqui_tts_run_size(1000, 3, 84, 2, eval_split_size=50).train_clips == 950
    with pytest.raises(ValueError, match="50 clips: the eval split holds out 0"):
        coqui_tts_run_size(50, 3, 84, 2)
    with pytest.raises(ValueError, match="not a version"):
        coqui_epoch_stepping("main")


def test_plan_matches_the_coqui_trainers_log_under_accumulation(tmp_path):
    from tts_nb_utils.demos.nb04_toy_model import train_coqui

    gradual = [[0, 1.0], [6, 0.5], [12, 0.25]]
    plan = lr_plan("StepwiseGradualLR", {"gradual_learning_rates": gradual}, 1.0, 10, 4, False, grad_accum=3)
    log, _ = train_coqui(tmp_path, "accum", epochs=4, steps_per_epoch=10, batch_size=2, lr=1.0, grad_accum=3,
                         lr_scheduler="StepwiseGradualLR", lr_scheduler_params={"gradual_learning_rates": gradual},
                         scheduler_after_epoch=False)
    logged = [(s, lr) for i, (s, lr) in enumerate(log) if i == 0 or lr != log[i - 1][1]]
    assert logged == [(c["global_step"], pytest.approx(c["lr"])) for c in plan.changes()] == [(0, 1.0), (16, 0.5),
                                                                                               (30, 0.25)]
