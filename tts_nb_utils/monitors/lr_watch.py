"""LR watch: record the learning rate each optimizer step really uses and check it against the plan (notebook 04).

A ``monitors.base.Monitor``: in a plain loop call :meth:`LRWatch.record` (or ``before_optimizer_step``) once
per optimizer step before ``optimizer.step()``; ``monitors.lightning`` and ``monitors.coqui`` do it for you.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import torch

from ..schedules.trace import LRTrace
from .base import Monitor, MonitorError, MonitorWarning


class LRWatchError(MonitorError):
    """The LR in use at a watched step is not the expected one (``on_problem="raise"``)."""


class LRWatchWarning(MonitorWarning):
    """Issued instead of :class:`LRWatchError` when an :class:`LRWatch` is set to warn."""


class LRWatch(Monitor):
    """Record the LR in use at each optimizer step and check it against expectations.

    ``expect`` maps 0-based optimizer steps to the LR that step should use (e.g. a StepwiseGradualLR list
    ``[[0, 5e-4], [100, 4e-4]]``, or a dict). When the first recorded step at or after an expected step holds
    an LR not within ``rel_tol`` of the expected one, the watch reports an ``lr-mismatch`` problem (raise,
    warn or record, as ``on_problem`` says). :meth:`on_train_end` reports expectations the run never reached.
    ``history`` holds ``(step, lr)`` pairs; ``group`` is the param group watched.
    """

    name = "lr-watch"
    error = LRWatchError
    warning = LRWatchWarning

    def __init__(
        self,
        expect: dict[int, float] | Sequence[Sequence[float]] | None = None,
        *,
        on_problem: str = "raise",
        rel_tol: float = 1e-6,
        group: int = 0,
        optimizer: torch.optim.Optimizer | None = None,
    ) -> None:
        super().__init__(on_problem)
        pairs = (expect or {}).items() if isinstance(expect, dict) or expect is None else expect
        self._pending = sorted((int(s), float(v)) for s, v in pairs)
        self.expect = dict(self._pending)
        self.rel_tol, self.group, self.optimizer = rel_tol, group, optimizer
        self.history: list[tuple[int, float]] = []

    @property
    def failures(self) -> list[str]:
        """The messages of the mismatches found so far."""
        return [p.message for p in self.problems]

    def on_train_start(self, model=None, optimizer=None, schedulers=(), dataset_size=None) -> None:
        if optimizer is not None:
            self.optimizer = optimizer

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
        while self._pending and self._pending[0][0] <= step:
            want_step, want = self._pending.pop(0)
            if not math.isclose(lr, want, rel_tol=self.rel_tol, abs_tol=0.0):
                where = f"step {step}" if step == want_step else f"step {step} (first recorded at or after {want_step})"
                self.report(
                    "lr-mismatch",
                    step,
                    f"LR at {where} is {lr:.6g}, expected {want:.6g} from step {want_step}. The schedule has not "
                    "moved as configured: is the scheduler stepped per epoch while its milestones count steps "
                    "(Coqui: scheduler_after_epoch=True), or stepped before optimizer.step()?"
                )
        return lr

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
