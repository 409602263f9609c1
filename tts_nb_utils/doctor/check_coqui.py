"""The doctor's Coqui run check (notebook 08; notebook 04 explains the failures): the LR plan of a Coqui trainer
run folder (``config.json`` and ``trainer_0_log.txt``, as the trainer writes them) against the installed
trainer version and against the LR the log shows.

``config.json`` gives ``lr``, ``lr_scheduler``, ``lr_scheduler_params``, ``scheduler_after_epoch`` and ``epochs``
(``TrainerConfig``), or for a two-optimizer model (VITS, GAN vocoders) ``lr_disc``/``lr_scheduler_disc*`` for
optimizer 0 and ``lr_gen``/``lr_scheduler_gen*`` for optimizer 1, logged as ``current_lr_0``/``current_lr_1``.
The batches per epoch come from the log's ``STEP: i/N`` lines (the console logger prints
``N = len(train_loader) - 1``, ``trainer/logging/console_logger.py:69`` at coqui-tts-trainer 0.4.0).
``grad_accum_steps`` is a ``TrainerArgs`` field that ``config.json`` does not hold: for a per-step schedule it is
inferred from the log (the values that put each logged LR at its ``GLOBAL_STEP``); a per-epoch schedule moves
at epoch boundaries whatever the accumulation, and two optimizers cannot accumulate (``trainer.py:960-962``).
Batches the model skipped (``train_step()`` returned None, e.g. GlowTTS' data-dependent init) step no scheduler:
the per-step comparison counts only the batches that trained.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..io import read_mapping
from ..schedules.plan import LRPlan, lr_plan
from ..schedules.trace import ScheduleConfigError
from ..upstream.coqui import coqui_optimizer_step_of_batch, read_coqui_lr_log, read_coqui_skips, read_log_text
from .report import Target

_STEP = re.compile(r"STEP:\s*\d+/(\d+)\s*--\s*GLOBAL_STEP")
_PLANNED_STEPS = 200_000  # optimizer steps traced at most (a few seconds); a longer run is planned in part
_MAX_ACCUM = 256  # grad_accum_steps values tried against the log


@dataclass(frozen=True)
class _Schedule:
    """One optimizer's scheduler as config.json spells it, and the log key of its LR."""

    name: str
    params: dict[str, Any]
    lr: Any
    key: str  # config.json key of the scheduler name
    lr_key: str  # config.json key of the LR
    log_key: str  # current_lr, current_lr_0, current_lr_1


def batches_per_epoch(log: Path) -> int | None:
    """``len(train_loader)`` from the log's ``STEP: i/N`` lines (N + 1), or None when none was printed."""
    text = read_log_text(log)
    found = [int(m.group(1)) for m in _STEP.finditer(text)]
    return max(found) + 1 if found else None


def _schedules(cfg: dict[str, Any]) -> list[_Schedule]:
    pairs = [s for s in ("disc", "gen") if cfg.get(f"lr_scheduler_{s}")]
    if pairs:  # VITS, GAN vocoders: get_scheduler() builds disc on optimizer 0, gen on optimizer 1
        return [_Schedule(cfg[f"lr_scheduler_{s}"], dict(cfg.get(f"lr_scheduler_{s}_params") or {}),
                          cfg.get(f"lr_{s}", cfg.get("lr")), f"lr_scheduler_{s}", f"lr_{s}", f"current_lr_{i}")
                for i, s in enumerate(("disc", "gen")) if s in pairs]
    if cfg.get("lr_scheduler"):
        return [_Schedule(cfg["lr_scheduler"], dict(cfg.get("lr_scheduler_params") or {}), cfg.get("lr"),
                          "lr_scheduler", "lr", "current_lr")]
    return []


def check_coqui(target: Target) -> None:
    """Plan each scheduler of the run as the installed trainer applies it and compare it with the logged LR."""
    config_path, log = target.path / "config.json", target.path / "trainer_0_log.txt"
    cfg = read_mapping(config_path) or {}
    schedules = _schedules(cfg)
    if not schedules:
        target.notes.append("no lr_scheduler (nor lr_scheduler_gen/_disc) in config.json: the LR is constant by design")
        return
    batches = batches_per_epoch(log)
    if batches is None:
        target.notes.append("no STEP lines in trainer_0_log.txt yet: the plan needs the batches per epoch")
        return
    after = bool(cfg.get("scheduler_after_epoch", True))
    run_epochs = int(cfg.get("epochs", 1) or 1)
    epochs = max(1, min(run_epochs, _PLANNED_STEPS // batches))
    optimizers = 2 if schedules[0].key != "lr_scheduler" else 1
    skips = read_coqui_skips(log)  # the run's, shared by its schedulers
    for sched in schedules:
        _check_one(target, log, sched, batches, epochs, after, optimizers, epochs == run_epochs, skips)
    if epochs < run_epochs:
        target.notes.append(f"planned the first {epochs} of {run_epochs} epochs; milestones beyond them: "
                            "tts-nb lr-plan")


def _check_one(target: Target, log: Path, s: _Schedule, batches: int, epochs: int, after: bool,
               optimizers: int, whole_run: bool, skips: dict[int, int]) -> None:
    lr = s.lr
    if not (isinstance(lr, int | float) and not isinstance(lr, bool) and math.isfinite(lr) and lr > 0):
        target.add("error", f"{s.lr_key} is {lr!r}: the trainer needs one positive learning rate",
                   f"config.json#{s.lr_key}")
        return
    where = f"config.json#{s.key}"
    logged = read_coqui_lr_log(log, s.log_key)
    if skips and not after:  # skipped batches step no per-step scheduler: count only the batches that trained
        logged = [(g - skips.get(g, 0), lr) for g, lr in logged]
        target.notes.append(f"{s.name}: the model skipped {max(skips.values())} batch(es) (train_step() returned "
                            "None): the per-step plan is compared on the batches that trained")
    try:
        base = lr_plan(s.name, s.params, float(lr), batches, epochs, after, optimizers=optimizers)
    except ScheduleConfigError as e:
        target.add("error", f"the trainer cannot build this scheduler: {e}", where)
        return
    accum, how = _accumulation(base, logged, batches, after, optimizers)
    plan = base if accum == 1 else lr_plan(s.name, s.params, float(lr), batches, epochs, after, grad_accum=accum)
    stepped = "per epoch" if after else "per optimizer step"
    target.notes.append(f"{s.name} ({s.key}), {batches} batches per epoch, {epochs} epoch(s), stepped {stepped}; "
                        f"grad_accum_steps {accum}: {how}")
    expected = plan.trace
    if plan.intended is not None and plan.trainer is not None:
        if _mismatch(plan.intended, logged, batches, accum) is None and plan.intended.changes() != plan.trace.changes() \
                and len({round(v, 15) for _, v in logged}) > 1:
            target.notes.append(f"{s.name}: the log follows the configured plan although coqui-tts-trainer "
                                f"{plan.trainer.version} alone would not step it: something in the run steps it")
            expected = plan.intended
        else:
            target.add("error", f"{s.name}: {plan.trainer.reason}: the LR stays {plan.trace.lrs[0]:.6g} for the whole "
                       f"run, where the config plans {len(plan.intended.changes()) - 1} change(s)",
                       "config.json#scheduler_after_epoch", "scheduler_after_epoch: false with step thresholds "
                       "(tts-nb lr-plan converts them), or add monitors.coqui.coqui_epoch_step_callbacks()")
    if whole_run:
        for w in plan.warnings:
            if getattr(w, "kind", "") in ("beyond", "partial", "order"):
                target.add("warning", w if w.startswith(s.name) else f"{s.name}: {w}", f"config.json#{s.key}_params")
    bad = _mismatch(expected, logged, batches, accum)
    if bad is not None:
        step, got, want = bad
        target.add("error", f"the log shows {s.log_key} {got:.6g} at GLOBAL_STEP {step}, where {s.name}'s plan for "
                   f"this trainer has {want:.6g}: the trainer is not applying {s.key} as configured",
                   f"trainer_0_log.txt#GLOBAL_STEP {step}", "check the installed trainer with notebook 04's probe")
    else:
        target.notes.append(f"trainer_0_log.txt: {len(logged)} logged {s.log_key} value(s) follow the plan")


def _lr_at(trace, batch: int, batches: int, accum: int) -> float | None:
    k = coqui_optimizer_step_of_batch(batch, batches, accum) if not trace.after_epoch else \
        (batch // batches) * trace.steps_per_epoch
    return trace.lrs[k] if k < trace.total_steps else None


def _mismatch(trace, logged: list[tuple[int, float]], batches: int, accum: int) -> tuple[int, float, float] | None:
    """The first ``(GLOBAL_STEP, logged, planned)`` where the log leaves the trace, or None."""
    for step, lr in logged:
        want = _lr_at(trace, step, batches, accum)
        if want is None:
            break
        if not math.isclose(lr, want, rel_tol=1e-4):
            return step, lr, want
    return None


def _accumulation(plan: LRPlan, logged: list[tuple[int, float]], batches: int, after: bool,
                  optimizers: int) -> tuple[int, str]:
    """``grad_accum_steps`` for the comparison, and how it was found."""
    if optimizers > 1:
        return 1, "two optimizers cannot accumulate in the Coqui trainer"
    if after:
        return 1, "a per-epoch schedule moves at epoch boundaries whatever the accumulation"
    per_step = plan.configured  # per step, accumulation 1: optimizer step k uses lrs[k]
    moves = [i for i in range(1, len(logged)) if logged[i][1] != logged[i - 1][1]]
    edges = sorted({0, len(logged) - 1, *moves, *(i - 1 for i in moves)}) if logged else []
    points = [logged[i] for i in edges]  # where the logged LR changes, and the entries just before
    fits = [a for a in range(1, min(batches, _MAX_ACCUM) + 1)
            if _mismatch(per_step, points, batches, a) is None and _covered(per_step, points, batches, a)]
    changes = len(moves)
    if len(fits) == 1:
        return fits[0], f"inferred from the log (the only value that puts its {changes} LR change(s) at the " \
                        "logged GLOBAL_STEPs)"
    if fits:
        shown = ", ".join(map(str, fits[:5])) + ("..." if len(fits) > 5 else "")
        return fits[0], f"the log fits {shown} (too few LR changes logged to tell); {fits[0]} assumed"
    return 1, "no value fits the log; 1 assumed"


def _covered(trace, logged: list[tuple[int, float]], batches: int, accum: int) -> bool:
    """Every logged batch lies inside the traced run under ``accum`` (else the fit proves nothing)."""
    return all(_lr_at(trace, step, batches, accum) is not None for step, _ in logged)
