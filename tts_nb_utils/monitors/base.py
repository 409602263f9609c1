"""The one interface every training monitor shares, and the loop that drives several of them.

A monitor is framework-free logic with five optional hooks, called in the order a training step runs:

==========================  =============================================================================
``on_train_start``          the model, optimizer, schedulers and dataset size, once before the first step
``on_step_output``          what the training step returned (loss or dict), before ``backward()``
``before_optimizer_step``   after ``backward()`` (and AMP unscaling), before ``optimizer.step()``; return
                            False to skip the update (the adapters then drop the gradients)
``after_optimizer_step``    after ``optimizer.step()``
``on_train_end``            once, when training ends
==========================  =============================================================================

Steps are 0-based optimizer steps. What happens when a monitor finds a problem is one choice, ``on_problem``:
``"raise"`` (its error type, a :class:`MonitorError`), ``"warn"`` (its warning type, a :class:`MonitorWarning`)
or ``"record"`` (only ``monitor.problems``). Every problem is recorded whichever is chosen.

The adapters are thin: a plain loop calls the hooks (or :class:`MonitorSet`), ``monitors.lightning`` turns
them into a Lightning callback and ``monitors.coqui`` into Coqui trainer callbacks. This is the pattern of
Lightning's ``callbacks/spike.py`` over ``fabric/utilities/spike.py``. Used by notebooks 02, 03, 04 and 06.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

ON_PROBLEM = ("raise", "warn", "record")


class MonitorError(RuntimeError):
    """A monitor found a problem and was set to raise (``on_problem="raise"``)."""


class MonitorWarning(UserWarning):
    """A monitor found a problem and was set to warn (``on_problem="warn"``)."""


@dataclass
class Problem:
    """One finding: which monitor, what kind (``"flat-loss"``, ``"non-finite"``...), at which step, and why."""

    monitor: str
    kind: str
    step: int
    message: str

    def __str__(self) -> str:
        return f"[{self.kind} @ step {self.step}] {self.message}"


class Monitor:
    """Base class: the hooks (each a no-op here) and :meth:`report`, which applies ``on_problem``."""

    name = "monitor"
    needs_gradients = False  #: True when ``before_optimizer_step`` reads gradients (adapters check it)
    error: type[MonitorError] = MonitorError
    warning: type[MonitorWarning] = MonitorWarning

    def __init__(self, on_problem: str = "raise") -> None:
        if on_problem not in ON_PROBLEM:
            raise ValueError(f"on_problem={on_problem!r}: use 'raise', 'warn' or 'record'")
        self.on_problem = on_problem
        self.problems: list[Problem] = []

    # -- hooks --------------------------------------------------------------------------------------------
    def on_train_start(
        self,
        model: torch.nn.Module | None = None,
        optimizer: torch.optim.Optimizer | None = None,
        schedulers: Sequence[Any] = (),
        dataset_size: int | None = None,
    ) -> None:
        """Called once before the first step with what the run trains."""

    def on_step_output(self, output: Any, step: int, terms: dict[str, Any] | None = None) -> None:
        """Called with what the training step returned, before ``backward()``; ``terms``: its loss terms."""

    def before_optimizer_step(self, step: int, loss: torch.Tensor | None = None) -> bool:
        """Called after ``backward()``, before ``optimizer.step()``. Return False to skip this update."""
        return True

    def after_optimizer_step(self, step: int, loss: torch.Tensor | float | None = None) -> None:
        """Called after ``optimizer.step()`` with the step's loss."""

    def on_train_end(self) -> None:
        """Called once when training ends."""

    # -- problems -----------------------------------------------------------------------------------------
    def report(self, kind: str, step: int, message: str) -> Problem:
        """Record a problem, then raise or warn as ``on_problem`` says; returns it when not raised."""
        problem = Problem(self.name, kind, step, message)
        self.problems.append(problem)
        if self.on_problem == "raise":
            raise self.error(str(problem))
        if self.on_problem == "warn":
            warnings.warn(str(problem), self.warning, stacklevel=3)
        return problem

    @property
    def ok(self) -> bool:
        return not self.problems

    def format_problems(self) -> str:
        """One line per problem, or a line saying there were none."""
        if not self.problems:
            return f"{self.name}: no problems"
        return "\n".join(str(p) for p in self.problems)


class MonitorSet(Monitor):
    """Several monitors driven as one, in order. ``before_optimizer_step`` stops at the first monitor that
    asks to skip the update (put a NaN guard first), and a skipped step reaches no ``after_optimizer_step``.
    Every adapter drives its monitors through this."""

    name = "monitors"

    def __init__(self, *monitors: Monitor) -> None:
        super().__init__("record")
        self.monitors = list(monitors)
        self._skipped = False  # whether the current step's update was skipped

    def on_train_start(self, model=None, optimizer=None, schedulers=(), dataset_size=None) -> None:
        for m in self.monitors:
            m.on_train_start(model, optimizer, schedulers, dataset_size)

    def on_step_output(self, output: Any, step: int, terms: dict[str, Any] | None = None) -> None:
        for m in self.monitors:
            m.on_step_output(output, step, terms)

    def before_optimizer_step(self, step: int, loss: torch.Tensor | None = None) -> bool:
        self._skipped = not all(m.before_optimizer_step(step, loss) for m in self.monitors)
        return not self._skipped

    def after_optimizer_step(self, step: int, loss: torch.Tensor | float | None = None) -> None:
        if self._skipped:
            return
        for m in self.monitors:
            m.after_optimizer_step(step, loss)

    def on_train_end(self) -> None:
        for m in self.monitors:
            m.on_train_end()

    @property
    def problems(self) -> list[Problem]:  # type: ignore[override]
        return [p for m in self.monitors for p in m.problems]

    @problems.setter
    def problems(self, value: list[Problem]) -> None:  # the base __init__ assigns []; the set holds none itself
        pass

    @property
    def wants_step_output(self) -> bool:
        return any(wants_step_output(m) for m in self.monitors)


def wants_step_output(monitor: Monitor) -> bool:
    """Whether ``monitor`` looks at the training step's output (adapters only intercept it when needed)."""
    if isinstance(monitor, MonitorSet):
        return monitor.wants_step_output
    return type(monitor).on_step_output is not Monitor.on_step_output


def drop_gradients(params: Sequence[torch.Tensor]) -> None:
    """Skip the coming update: torch optimizers leave parameters without a gradient (and their state) alone."""
    for p in params:
        p.grad = None
