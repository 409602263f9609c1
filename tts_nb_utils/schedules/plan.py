"""``tts-nb lr-plan``'s report: when a scheduler config really changes the LR in a Coqui run (notebook 04).

A plan steps the real scheduler (``schedules.trace``) the way the Coqui trainer will: per optimizer step or per
epoch, with gradient accumulation grouping batches into optimizer steps (``upstream.coqui``'s copy of the
trainer's rule), and, for a per-epoch scheduler, as the installed trainer version really does (v0.4.0 never
steps a single optimizer's). Each LR change is reported at its optimizer step and at the ``GLOBAL_STEP``
(batches) where the trainer's log first shows it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..upstream.coqui import (
    EpochStepping,
    coqui_epoch_stepping,
    coqui_first_batches,
    coqui_optimizer_steps_per_epoch,
    installed_trainer_version,
)
from .trace import LRTrace, Note, milestone_warnings, trace_config

#: ``trainer_version`` default of :func:`lr_plan`: the installed coqui-tts-trainer.
INSTALLED = "installed"


@dataclass
class LRPlan:
    """The schedule a run will apply (``trace``), the one configured when they differ (``intended``), warnings.

    ``first_batches[k]``: the global batch index (Coqui ``GLOBAL_STEP``) where optimizer step ``k``'s LR is
    first logged. ``trainer``: what the trainer version does with a per-epoch scheduler (None when not asked).
    """

    trace: LRTrace
    batches_per_epoch: int
    grad_accum: int
    first_batches: list[int]
    warnings: list[str] = field(default_factory=list)
    intended: LRTrace | None = None
    trainer: EpochStepping | None = None

    @property
    def unreached(self) -> list[Note]:
        """Warnings about milestones that lie beyond the run (they never take effect)."""
        return [w for w in self.warnings if getattr(w, "kind", "") == "beyond"]

    @property
    def moves(self) -> bool:
        """True when the applied LR changes during the run and every milestone is reached:
        ``tts-nb lr-plan`` exits 0 then, else 1."""
        return not self.trace.never_changes() and not self.unreached

    @property
    def configured(self) -> LRTrace:
        """The schedule as configured (``intended`` when the trainer would not apply it): what an ``LRWatch``
        should hold the run to."""
        return self.intended if self.intended is not None else self.trace

    def changes(self, trace: LRTrace | None = None) -> list[dict[str, Any]]:
        """``[{"global_step", "optimizer_step", "epoch", "lr"}, ...]``, one per LR change (first: step 0)."""
        tr = trace or self.trace
        return [{"global_step": self.first_batches[s], "optimizer_step": s, "epoch": s // tr.steps_per_epoch,
                 "lr": lr} for s, lr in tr.changes()]

    def as_json(self) -> dict[str, Any]:
        """What ``tts-nb lr-plan --json`` prints."""
        out: dict[str, Any] = {"changes": self.changes(), "warnings": list(self.warnings)}
        if self.intended is not None:
            out["intended_changes"] = self.changes(self.intended)
        if self.trainer is not None:
            out["trainer"] = {"version": self.trainer.version, "steps_epoch_scheduler": self.trainer.steps}
        return out


def lr_plan(
    name: str,
    params: dict[str, Any],
    lr: float,
    batches_per_epoch: int,
    epochs: int,
    after_epoch: bool,
    *,
    grad_accum: int = 1,
    trainer_version: str | None = INSTALLED,
    optimizers: int = 1,
    model_optimize: bool = False,
) -> LRPlan:
    """The LR a Coqui run applies at each optimizer step, from the real scheduler ``name(**params)``.

    ``batches_per_epoch``: ``len(train_loader)``; with ``grad_accum`` the trainer makes
    ``ceil(batches / grad_accum)`` optimizer steps of it. With ``after_epoch`` the scheduler is stepped once
    per epoch, as ``trainer_version`` really does (default: the installed one; None: as configured, e.g. for a
    plain loop); ``optimizers`` and ``model_optimize`` (the model has its own ``optimize()``) matter there.
    Raises ScheduleConfigError for a config the trainer cannot build.
    """
    steps = coqui_optimizer_steps_per_epoch(batches_per_epoch, grad_accum)
    intended = trace_config(name, params, lr, steps, epochs, after_epoch)
    version = installed_trainer_version() if trainer_version == INSTALLED else trainer_version
    stepping = coqui_epoch_stepping(version, optimizers, model_optimize) if version else None  # checks version
    stepping = stepping if after_epoch else None
    trace, notes = intended, []
    if stepping is not None and stepping.steps is False:
        trace = LRTrace([intended.lrs[0]] * intended.total_steps, steps, epochs, True,
                        f"{name}, per epoch, as coqui-tts-trainer {version} runs it (never stepped)")
        notes.append(Note(
            f"{name}: {stepping.reason}: the LR stays {intended.lrs[0]:.6g} for the whole run, not the intended "
            "plan shown beside it. Step it per optimizer step (scheduler_after_epoch=False) with step "
            "milestones, or add monitors.coqui.coqui_epoch_step_callbacks() to the Trainer's callbacks.",
            f"{name} per epoch: coqui-tts-trainer {version} never steps it; the LR stays {intended.lrs[0]:.3g}",
            "trainer"))
    elif stepping is not None and stepping.steps is None:
        notes.append(Note(stepping.reason, f"coqui-tts-trainer {version} is newer than the versions checked: "
                          "verify with an LR watch", "trainer"))
    notes += milestone_warnings(name, params, steps, epochs, after_epoch, intended)
    if grad_accum > 1:
        notes.append(_accumulation_note(batches_per_epoch, grad_accum, steps))
    return LRPlan(trace, batches_per_epoch, grad_accum, coqui_first_batches(batches_per_epoch, grad_accum, epochs),
                  notes, intended if trace is not intended else None, stepping)


def _accumulation_note(batches: int, accum: int, steps: int) -> Note:
    last = batches - (steps - 1) * accum
    tail = f" (the last has {last} batch(es): the trainer steps the optimizer at each epoch's end)" if last < accum else ""
    return Note(f"grad_accum_steps={accum}: {batches} batches make {steps} optimizer steps per epoch{tail}. The "
                "scheduler counts optimizer steps while GLOBAL_STEP in the trainer's log counts batches: read a "
                "change's global_step, not its optimizer_step, in the log.",
                f"grad_accum_steps={accum}: {steps} optimizer steps per epoch; the log's GLOBAL_STEP counts batches",
                "accumulation")


def format_lr_plan(plan: LRPlan, max_lines: int = 30, detail: bool = False) -> str:
    """The text ``tts-nb lr-plan`` prints: one line per LR change, the intended LR beside it when the trainer
    does not apply it, then the warnings: one short line each, or their full text with ``detail``."""
    tr = plan.trace
    how = ("once per epoch (scheduler_after_epoch=True)" if tr.after_epoch
           else "after every optimizer step (scheduler_after_epoch=False)")
    accum = f", {plan.grad_accum} batches per step" if plan.grad_accum > 1 else ""
    lines = [f"{tr.epochs} epochs x {plan.batches_per_epoch} batches = {tr.total_steps} optimizer steps "
             f"({tr.steps_per_epoch} per epoch{accum});", f"scheduler stepped {how}."]
    rows = _rows(plan)
    head = f"{'global_step':>11}  {'opt_step':>8}  {'epoch':>6}  lr"
    if plan.intended is not None:
        who = f"trainer {plan.trainer.version}" if plan.trainer else "applied"
        head = f"{head} ({who}){'':<4}intended lr"
    lines.append(head)
    shown = rows if len(rows) <= max_lines else rows[: max_lines - 1]
    lines += shown
    if len(shown) < len(rows):
        lines.append(f"{'...':>11}  ({len(rows) - len(shown)} more changes; --json lists all)")
    lines.append(f"final LR {tr.lrs[-1]:.6g}; the LR changes {len(tr.changes()) - 1} time(s) during the run.")
    lines += [f"WARNING: {w if detail else getattr(w, 'short', w)}" for w in plan.warnings]
    return "\n".join(lines)


def _rows(plan: LRPlan) -> list[str]:
    traces = [plan.trace] + ([plan.intended] if plan.intended is not None else [])
    steps = sorted({s for tr in traces for s, _ in tr.changes()})
    rows = []
    for s in steps:
        row = f"{plan.first_batches[s]:>11}  {s:>8}  {s // plan.trace.steps_per_epoch:>6}  {plan.trace.lrs[s]:<.6g}"
        if plan.intended is not None:
            row = f"{row:<52}{plan.intended.lrs[s]:.6g}"
        rows.append(row)
    return rows
