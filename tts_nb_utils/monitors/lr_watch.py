"""LR watch: record the learning rate each optimizer step really uses and check it against the plan (notebook 04).

A ``monitors.base.Monitor``: in a plain loop call :meth:`LRWatch.record` (or ``before_optimizer_step``) once
per optimizer step before ``optimizer.step()``; ``monitors.lightning`` and ``monitors.coqui`` do it for you.

Given a whole plan (an ``LRTrace``, e.g. ``schedules.plan.lr_plan(...).trace``) the watch checks every step's
LR, and also the scheduler's own counter (``last_epoch``, the number of ``scheduler.step()`` calls): a
scheduler the plan steps per optimizer step but the trainer steps per epoch (Coqui's default) is caught at the
first epoch's last step, long before its first milestone; one the plan steps per epoch but the trainer never
steps (coqui-tts-trainer 0.4.0) at the first step after the first epoch.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import torch

from ..schedules.trace import LRTrace
from .base import Monitor, MonitorError, MonitorWarning


class LRWatchError(MonitorError):
    """The LR in use at a watched step is not the expected one (``on_problem="raise"``)."""


class LRWatchWarning(MonitorWarning):
    """Issued instead of :class:`LRWatchError` when an :class:`LRWatch` is set to warn."""


class LRWatch(Monitor):
    """Record the LR in use at each optimizer step and check it against the plan.

    ``expect``: an ``LRTrace`` (the LR of every step, and how its scheduler is stepped), or a map of 0-based
    optimizer steps to the LR from that step on (a StepwiseGradualLR list ``[[0, 5e-4], [100, 4e-4]]``, or a
    dict). A step whose LR is not within ``rel_tol`` of the plan gives an ``lr-mismatch`` problem (once per
    stretch of wrong steps); with a trace and a known scheduler (``scheduler=`` or an adapter's
    ``on_train_start``), a scheduler stepped more or less often than the trace says gives one
    ``scheduler-clock`` problem. Raise, warn or record, as ``on_problem`` says. :meth:`on_train_end` reports
    expectations the run never reached. ``history`` holds ``(step, lr)`` pairs; ``group`` is the param group.
    """

    name = "lr-watch"
    error = LRWatchError
    warning = LRWatchWarning

    def __init__(
        self,
        expect: LRTrace | dict[int, float] | Sequence[Sequence[float]] | None = None,
        *,
        on_problem: str = "raise",
        rel_tol: float = 1e-6,
        group: int = 0,
        optimizer: torch.optim.Optimizer | None = None,
        scheduler: Any = None,
    ) -> None:
        super().__init__(on_problem)
        self.plan = expect if isinstance(expect, LRTrace) else None
        if self.plan is not None:
            pairs = list(self.plan.changes())
        else:
            pairs = (expect or {}).items() if isinstance(expect, dict) or expect is None else expect
        self._pending = sorted((int(s), float(v)) for s, v in pairs)
        self.expect = dict(self._pending)
        self.rel_tol, self.group, self.optimizer, self.scheduler = rel_tol, group, optimizer, scheduler
        self.history: list[tuple[int, float]] = []
        self._clock_base: int | None = None
        self._clock_reported = False
        self._last_ok = True

    @property
    def failures(self) -> list[str]:
        """The messages of the problems found so far."""
        return [p.message for p in self.problems]

    def on_train_start(self, model=None, optimizer=None, schedulers=(), dataset_size=None) -> None:
        if optimizer is not None:
            self.optimizer = optimizer
        if self.scheduler is None and schedulers:
            self.scheduler = schedulers[0]

    def before_optimizer_step(self, step: int | None = None, loss: torch.Tensor | None = None) -> bool:
        """Record the LR this step is about to use (once per step, whatever the adapter calls)."""
        if self.optimizer is None:
            raise ValueError("LRWatch needs the optimizer: LRWatch(optimizer=...) or an adapter's on_train_start")
        if step is None or not self.history or self.history[-1][0] < step:
            self.record(self.optimizer, step)
        return True

    def record(self, optimizer: torch.optim.Optimizer, step: int | None = None) -> float:
        """Record the LR of param group ``group`` for ``step`` (default: one after the last recorded)."""
        if step is None:
            step = self.history[-1][0] + 1 if self.history else 0
        lr = float(optimizer.param_groups[self.group]["lr"])
        self.history.append((int(step), lr))
        if self.plan is not None and step < self.plan.total_steps:
            self._check_plan(step, lr)
        else:
            self._check_changes(step, lr)
        if self.plan is not None and self.scheduler is not None and not self._clock_reported:
            self._check_clock(step)
        return lr

    def _check_changes(self, step: int, lr: float) -> None:
        while self._pending and self._pending[0][0] <= step:
            want_step, want = self._pending.pop(0)
            if not math.isclose(lr, want, rel_tol=self.rel_tol, abs_tol=0.0):
                where = f"step {step}" if step == want_step else f"step {step} (first recorded at or after {want_step})"
                self._mismatch(step, f"LR at {where} is {lr:.6g}, expected {want:.6g} from step {want_step}.")

    def _check_plan(self, step: int, lr: float) -> None:
        self._pending = [p for p in self._pending if p[0] > step]
        want = self.plan.lrs[step]
        ok = math.isclose(lr, want, rel_tol=self.rel_tol, abs_tol=0.0)
        prev = self.history[-2][0] if len(self.history) > 1 else None
        moved = prev is None or prev >= self.plan.total_steps or not math.isclose(self.plan.lrs[prev], want)
        if not ok and (self._last_ok or moved):
            self._mismatch(step, f"LR at step {step} is {lr:.6g}, the plan says {want:.6g}.")
        self._last_ok = ok

    def _mismatch(self, step: int, what: str) -> None:
        self.report("lr-mismatch", step, f"{what} The schedule has not moved as planned: check how often the "
                    "scheduler is stepped (per optimizer step or per epoch; Coqui: scheduler_after_epoch, default "
                    "True) and that it is stepped after optimizer.step().")

    def _check_clock(self, step: int) -> None:
        """Compare ``scheduler.last_epoch`` (its ``step()`` calls) with the number the plan has made by ``step``."""
        spe, per_epoch = self.plan.steps_per_epoch, self.plan.after_epoch
        expected = step // spe if per_epoch else step
        count = int(getattr(self.scheduler, "last_epoch", 0))
        if self._clock_base is None:
            self._clock_base = count - expected
        count -= self._clock_base
        if count > expected:
            why = "is it stepped per batch under gradient accumulation, or per step while the plan is per epoch?"
        elif count == 0 and expected > 0 and not per_epoch and step >= spe - 1:
            why = "the trainer steps it per epoch (Coqui: scheduler_after_epoch=True, the default) or not at all."
        elif count == 0 and expected > 0 and per_epoch:
            why = ("the trainer never steps it (coqui-tts-trainer 0.4.0 with one optimizer: add "
                   "monitors.coqui.coqui_epoch_step_callbacks(), or step per optimizer step).")
        elif per_epoch and count != expected:
            why = "a per-epoch scheduler must be stepped once at each epoch's end."
        else:
            return
        self._clock_reported = True
        plan_says = "once per epoch" if per_epoch else "after every optimizer step"
        self.report("scheduler-clock", step, f"by optimizer step {step} the scheduler was stepped {count} time(s); "
                    f"the plan steps it {plan_says} ({expected} by now): {why}")

    def on_train_end(self) -> list[str]:
        """Call at the end of the run: expectations beyond the last recorded step are reported (a warning,
        whatever ``on_problem`` says: the run did not get there, so nothing was wrong yet)."""
        last = self.history[-1][0] if self.history else -1
        notes = [
            f"expected LR {v:.6g} from step {s}, but the run ended at step {last}: that part of the schedule "
            "never ran" for s, v in self._pending
        ]
        for n in notes:
            warnings.warn(n, LRWatchWarning, stacklevel=2)
        self._pending = []
        return notes

    def as_trace(self, steps_per_epoch: int = 1, label: str = "watched") -> LRTrace:
        """The recorded LRs as an :class:`LRTrace` (for :func:`plot_lr_traces`); assumes consecutive steps."""
        lrs = [lr for _, lr in self.history]
        return LRTrace(lrs, steps_per_epoch, max(1, math.ceil(len(lrs) / steps_per_epoch)), False, label)
