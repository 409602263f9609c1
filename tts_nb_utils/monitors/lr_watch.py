"""LR watch: record the learning rate each optimizer step really uses and check it against the plan (notebook 04).

"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from ..schedules.trace import LRTrace


class LRWatchError(RuntimeError):
    """The LR in use at a watched step is not the expected one."""


class LRWatchWarning(UserWarning):
    """Issued instead of :class:`LRWatchError` when an :class:`LRWatch` is set to warn."""


@dataclass
class LRWatch:
    """Record the LR in use at each optimizer step and check it against expectations.

    ``expect`` maps 0-based optimizer steps to the LR that step should use (e.g. a StepwiseGradualLR list
    ``[[0, 5e-4], [100, 4e-4]]``, or a dict). Call :meth:`record` once per optimizer step, *before*
    ``optimizer.step()`` (the LR that step will use). When the first recorded step at or after an expected
    step holds an LR not within ``rel_tol`` of the expected one, it raises :class:`LRWatchError`
    (``action="raise"``) or warns with :class:`LRWatchWarning` (``action="warn"``). :meth:`finish` reports
    expectations the run never reached. ``history`` holds ``(step, lr)`` pairs.
    """

    expect: dict[int, float] | Sequence[Sequence[float]] = field(default_factory=dict)
    action: str = "raise"
    rel_tol: float = 1e-6
    group: int = 0
    history: list[tuple[int, float]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.action not in ("raise", "warn"):
            raise ValueError(f"action={self.action!r}: use 'raise' or 'warn'")
        pairs = self.expect.items() if isinstance(self.expect, dict) else self.expect
        self._pending = sorted((int(s), float(v)) for s, v in pairs)
        self.expect = dict(self._pending)

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
                self._fail(
                    f"LR at {where} is {lr:.6g}, expected {want:.6g} from step {want_step}. The schedule has not "
                    "moved as configured: is the scheduler stepped per epoch while its milestones count steps "
                    "(Coqui: scheduler_after_epoch=True), or stepped before optimizer.step()?"
                )
        return lr

    def finish(self) -> list[str]:
        """Call at the end of the run: expectations beyond the last recorded step are reported (warning)."""
        last = self.history[-1][0] if self.history else -1
        notes = [
            f"expected LR {v:.6g} from step {s}, but the run ended at step {last}: that part of the schedule "
            "never ran" for s, v in self._pending
        ]
        for n in notes:
            warnings.warn(n, LRWatchWarning, stacklevel=2)
        self._pending = []
        return notes

    def _fail(self, msg: str) -> None:
        self.failures.append(msg)
        if self.action == "raise":
            raise LRWatchError(msg)
        warnings.warn(msg, LRWatchWarning, stacklevel=3)

    def as_trace(self, steps_per_epoch: int = 1, label: str = "watched") -> LRTrace:
        """The recorded LRs as an :class:`LRTrace` (for :func:`plot_lr_traces`); assumes consecutive steps."""
        lrs = [lr for _, lr in self.history]
        return LRTrace(lrs, steps_per_epoch, max(1, math.ceil(len(lrs) / steps_per_epoch)), False, label)


def lightning_lr_watch(watch: LRWatch | None = None, **kwargs: Any) -> Any:
    """A Lightning callback recording the LR of ``trainer.optimizers[0]`` at each optimizer step.

    It records at the first batch of every optimizer step (``trainer.global_step`` counts optimizer steps,
    so gradient accumulation is handled) before the step runs, and calls :meth:`LRWatch.finish` when
    training ends. ``kwargs`` build a new :class:`LRWatch` when ``watch`` is None. The watch is ``.watch``.
    """
    from lightning.pytorch.callbacks import Callback

    class LRWatchCallback(Callback):
        def __init__(self, w: LRWatch) -> None:
            self.watch = w

        def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int) -> None:
            step = int(trainer.global_step)
            if trainer.optimizers and (not self.watch.history or self.watch.history[-1][0] < step):
                self.watch.record(trainer.optimizers[0], step)

        def on_train_end(self, trainer: Any, pl_module: Any) -> None:
            self.watch.finish()

    return LRWatchCallback(watch if watch is not None else LRWatch(**kwargs))
