"""The doctor's Coqui run check (notebook 08; notebook 04 explains the failures): the LR plan of a Coqui trainer
run folder (``config.json`` and ``trainer_0_log.txt``, as the trainer writes them) against the installed
trainer version and against the LR the log shows.

``config.json`` gives ``lr``, ``lr_scheduler``, ``lr_scheduler_params``, ``scheduler_after_epoch`` and ``epochs``
(``TrainerConfig``); the batches per epoch come from the log's ``STEP: i/N`` lines (the console logger prints
``N = len(train_loader) - 1``, ``trainer/logging/console_logger.py:69`` at coqui-tts-trainer 0.4.0).
``grad_accum_steps`` is a ``TrainerArgs`` field that ``config.json`` does not hold: 1 is assumed, and the note
says so. :func:`~tts_nb_utils.schedules.plan.lr_plan` says what the installed trainer does with the schedule;
:func:`~tts_nb_utils.upstream.coqui.read_coqui_lr_log` what the run logged.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

from ..schedules.plan import lr_plan
from ..schedules.trace import ScheduleConfigError
from ..upstream.coqui import read_coqui_lr_log, read_log_text
from .kinds import read_mapping
from .report import Target

_STEP = re.compile(r"STEP:\s*\d+/(\d+)\s*--\s*GLOBAL_STEP")
_PLANNED_STEPS = 200_000  # optimizer steps traced at most (a few seconds); a longer run is planned in part


def batches_per_epoch(log: Path) -> int | None:
    """``len(train_loader)`` from the log's ``STEP: i/N`` lines (N + 1), or None when none was printed."""
    text = read_log_text(log)
    found = [int(m.group(1)) for m in _STEP.finditer(text)]
    return max(found) + 1 if found else None


def check_coqui(target: Target) -> None:
    """Plan the run's schedule as the installed trainer applies it and compare it with the logged LR."""
    config_path, log = target.path / "config.json", target.path / "trainer_0_log.txt"
    cfg = read_mapping(config_path) or {}
    name, lr = cfg.get("lr_scheduler"), cfg.get("lr")
    if not name:
        target.notes.append("no lr_scheduler in config.json: the LR is constant by design")
        return
    if not (isinstance(lr, int | float) and not isinstance(lr, bool) and math.isfinite(lr) and lr > 0):
        target.add("error", f"lr is {lr!r}: the trainer needs one positive learning rate", "config.json#lr")
        return
    batches = batches_per_epoch(log)
    if batches is None:
        target.notes.append("no STEP lines in trainer_0_log.txt yet: the plan needs the batches per epoch")
        return
    after = bool(cfg.get("scheduler_after_epoch", True))
    run_epochs = int(cfg.get("epochs", 1) or 1)
    epochs = max(1, min(run_epochs, _PLANNED_STEPS // batches))
    try:
        plan = lr_plan(name, dict(cfg.get("lr_scheduler_params") or {}), float(lr), batches, epochs, after)
    except ScheduleConfigError as e:
        target.add("error", f"the trainer cannot build this scheduler: {e}", "config.json#lr_scheduler")
        return
    target.notes.append(f"{name}, {batches} batches per epoch, {epochs} epoch(s), stepped "
                        f"{'per epoch' if after else 'per optimizer step'}; grad_accum_steps is not in "
                        "config.json: 1 assumed")
    if plan.intended is not None and plan.trainer is not None:
        target.add("error", f"{plan.trainer.reason}: the LR stays {plan.trace.lrs[0]:.6g} for the whole run, "
                   f"where the config plans {len(plan.intended.changes()) - 1} change(s)",
                   "config.json#scheduler_after_epoch", "scheduler_after_epoch: false with step thresholds "
                   "(tts-nb lr-plan converts them), or add monitors.coqui.coqui_epoch_step_callbacks()")
    if epochs < run_epochs:
        target.notes.append(f"planned the first {epochs} of {run_epochs} epochs; milestones beyond them: "
                            "tts-nb lr-plan")
    else:
        for w in plan.warnings[1 if plan.intended is not None else 0:]:
            target.add("warning", w, "config.json#lr_scheduler_params")
    _compare_log(target, log, plan)


def _compare_log(target: Target, log: Path, plan) -> None:
    """The first logged ``current_lr`` that is not the configured schedule's LR at that GLOBAL_STEP."""
    logged = read_coqui_lr_log(log)
    intended = plan.configured
    for step, lr in logged:
        if step >= intended.total_steps:
            break
        want = intended.lrs[step]
        if not math.isclose(lr, want, rel_tol=1e-4):
            target.add("error", f"the log shows current_lr {lr:.6g} at GLOBAL_STEP {step}, where the configured "
                       f"schedule has {want:.6g}: the trainer is not applying lr_scheduler",
                       f"trainer_0_log.txt#GLOBAL_STEP {step}", "see the finding above, or check the "
                       "installed trainer with notebook 04's probe")
            return
    target.notes.append(f"trainer_0_log.txt: {len(logged)} logged LR value(s) follow the configured schedule")
