"""Learning-rate schedules that never move: trace and plan them before training (notebook 04, Coqui XTTS).

A scheduler's milestones count calls to ``scheduler.step()``. Step it once per epoch (the Coqui trainer's
default, ``scheduler_after_epoch=True``) and milestones written in optimizer steps arrive thousands of times
too late. The tools here work on any torch or Coqui (``trainer.torch``) scheduler:

- :func:`trace_lr` steps the real scheduler on a dummy optimizer and returns the LR each optimizer step uses;
- :func:`plot_lr_traces` draws intended against applied schedules;
- :func:`steps_to_epochs` / :func:`epochs_to_steps` / :func:`gradual_to_epochs` convert milestones;
- :func:`milestone_warnings`: milestones the run never reaches (``schedules.plan`` builds ``tts-nb lr-plan``'s
  report on it); :func:`catch_order_warnings` and :func:`scaler_skipped_step` for step ordering.

Watching the LR during training is ``monitors.lr_watch``; warm-up + decay is ``schedules.build``. Steps are
0-based optimizer steps throughout; learning rates are in the optimizer's units. The Coqui trainer is imported
only when a Coqui scheduler name is looked up.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import math
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.optim import lr_scheduler as torch_sched

from ..io import atomic_path

#: The start of the warning torch gives when ``scheduler.step()`` runs before the first ``optimizer.step()``.
ORDER_WARNING_TEXT = "Detected call of `lr_scheduler.step()` before `optimizer.step()`"

#: Schedulers that cannot be built from JSON parameters (they take callables, other schedulers or a metric).
_NOT_FROM_JSON = {
    "LambdaLR": "it takes a Python function (lr_lambda)",
    "MultiplicativeLR": "it takes a Python function (lr_lambda)",
    "SequentialLR": "it takes other scheduler objects",
    "ChainedScheduler": "it takes other scheduler objects",
    "ReduceLROnPlateau": "it steps on a validation metric, not on a step count",
}


#: The longest run a trace holds: 2 million optimizer steps (a float each, a few seconds to step).
MAX_TRACE_STEPS = 2_000_000


class ScheduleConfigError(ValueError):
    """A scheduler name or parameters that cannot build a scheduler (unknown class, wrong arguments)."""


# ------------------------------------------------------------------------------------------ scheduler lookup


def _coqui_schedulers() -> dict[str, type]:
    from trainer.torch import (  # a dependency, imported only when a name is looked up
        NoamLR,
        StepwiseGradualLR,
    )

    return {"NoamLR": NoamLR, "StepwiseGradualLR": StepwiseGradualLR}


def available_schedulers() -> list[str]:
    """Names :func:`scheduler_class` accepts: torch's LR scheduler classes, then the Coqui trainer's."""
    names = [
        n for n, obj in vars(torch_sched).items()
        if inspect.isclass(obj) and not n.startswith("_") and n not in ("LRScheduler", "Optimizer")
        and (issubclass(obj, torch_sched.LRScheduler) or n == "ReduceLROnPlateau")
    ]
    return sorted(names) + sorted(_coqui_schedulers())


def scheduler_class(name: str) -> type:
    """The scheduler class the Coqui trainer builds for ``lr_scheduler=name`` (``trainer.torch`` or torch's).

    Matched exactly as its ``get_scheduler`` does (``trainer/trainer_utils.py:126-131`` at v0.4.0): ``NoamLR`` and
    ``StepwiseGradualLR`` in any case, every other name exactly as the class in ``torch.optim.lr_scheduler`` is
    spelled. Raises ScheduleConfigError listing the known names (and the right spelling of a wrong-case one,
    which the trainer would reject with an AttributeError).
    """
    coqui = _coqui_schedulers()
    by_lower = {k.lower(): k for k in coqui}
    known = available_schedulers()
    if name.lower() in by_lower:
        return coqui[by_lower[name.lower()]]
    if name in known:
        return getattr(torch_sched, name)
    spelled = next((k for k in known if k.lower() == name.lower()), None)
    if spelled is not None:
        raise ScheduleConfigError(
            f"scheduler {name!r}: the Coqui trainer matches torch scheduler names exactly (only NoamLR and "
            f"StepwiseGradualLR in any case) and would raise AttributeError; write {spelled!r}"
        )
    raise ScheduleConfigError(
        f"unknown scheduler {name!r}: not a class of torch.optim.lr_scheduler or the Coqui trainer. "
        f"Known: {', '.join(known)}"
    )


def scheduler_factory(name: str, params: dict[str, Any] | None = None) -> Callable[[torch.optim.Optimizer], Any]:
    """A ``make_scheduler(optimizer)`` for :func:`trace_lr` from a config's name and parameters.

    This is what ``lr_scheduler`` / ``lr_scheduler_params`` in a Coqui ``TrainerConfig`` mean. Raises
    ScheduleConfigError for an unknown name, a class that cannot be built from plain values, or parameters
    the class rejects (checked now, on a throwaway optimizer, so the error names the config).
    """
    cls = scheduler_class(name)
    params = dict(params or {})
    if cls.__name__ in _NOT_FROM_JSON:
        raise ScheduleConfigError(
            f"{cls.__name__} cannot be built from plain parameters: {_NOT_FROM_JSON[cls.__name__]}. "
            "Build it in Python and pass make_scheduler=lambda opt: ... to trace_lr."
        )

    def make(optimizer: torch.optim.Optimizer) -> Any:
        try:
            return cls(optimizer, **params)
        except (TypeError, ValueError, KeyError, IndexError, ArithmeticError) as e:
            try:
                sig = str(inspect.signature(cls.__init__)).replace("self, ", "")
            except (TypeError, ValueError):
                sig = "(...)"
            raise ScheduleConfigError(
                f"{cls.__name__}(optimizer, **{json.dumps(params, default=str)}) failed: {e}. "
                f"Its arguments are {cls.__name__}{sig}."
            ) from None

    probe = _dummy_optimizer(1.0)
    sched = make(probe)  # fail early, with the config in the message
    probe.step()
    for k in range(3):  # some parameters fail only when stepped (StepLR step_size 0, T_max 0, NoamLR warm-up 0)
        try:
            sched.step()
        except (ArithmeticError, ValueError, TypeError, IndexError) as e:
            raise ScheduleConfigError(
                f"{cls.__name__}(optimizer, **{json.dumps(params, default=str)}) fails when stepped "
                f"({type(e).__name__}: {e}) at step {k + 1}: check the parameters that count steps or epochs"
            ) from None
    make.__name__ = f"make_{cls.__name__}"
    return make


def _dummy_optimizer(lr: float) -> torch.optim.Optimizer:
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)


# ------------------------------------------------------------------------------------------------- tracing


@dataclass
class LRTrace:
    """The LR each optimizer step uses (``lrs[s]`` for 0-based step ``s``), and how it was stepped."""

    lrs: list[float]
    steps_per_epoch: int
    epochs: int
    after_epoch: bool
    label: str = ""

    @property
    def total_steps(self) -> int:
        return len(self.lrs)

    def lr_at(self, step: int) -> float:
        """The LR optimizer step ``step`` (0-based) uses."""
        return self.lrs[step]

    def changes(self, rel_tol: float = 1e-9) -> list[tuple[int, float]]:
        """``[(step, lr), ...]``: the step from which each new LR is used; the first entry is step 0."""
        out: list[tuple[int, float]] = []
        for step, lr in enumerate(self.lrs):
            if not out or not math.isclose(lr, out[-1][1], rel_tol=rel_tol, abs_tol=0.0):
                out.append((step, lr))
        return out

    def never_changes(self) -> bool:
        return len(self.changes()) <= 1


def trace_lr(
    make_scheduler: Callable[[torch.optim.Optimizer], Any],
    steps_per_epoch: int,
    epochs: int,
    after_epoch: bool = False,
    lr: float = 1e-3,
    label: str = "",
) -> LRTrace:
    """The LR each optimizer step would use, from the real scheduler stepped on a dummy optimizer (no training).

    ``make_scheduler(optimizer)`` builds the scheduler (see :func:`scheduler_factory`); the optimizer starts at
    ``lr``. With ``after_epoch`` the scheduler is stepped once after each epoch's ``steps_per_epoch`` optimizer
    steps (Coqui's ``scheduler_after_epoch=True``, Lightning's ``interval="epoch"``), else after every
    optimizer step. Order is the correct one: ``optimizer.step()`` then ``scheduler.step()``.
    """
    if steps_per_epoch < 1 or epochs < 1:
        raise ValueError(f"steps_per_epoch ({steps_per_epoch}) and epochs ({epochs}) must be at least 1")
    if steps_per_epoch * epochs > MAX_TRACE_STEPS:
        raise ScheduleConfigError(
            f"{epochs} epochs x {steps_per_epoch} steps = {steps_per_epoch * epochs:,} optimizer steps: more than the "
            f"{MAX_TRACE_STEPS:,} a trace holds (one float each). Trace fewer epochs: a schedule's changes show early"
        )
    optimizer = _dummy_optimizer(lr)
    scheduler = make_scheduler(optimizer)
    optimizer.step()  # no gradients, changes nothing: only marks the optimizer as stepped, as torch expects
    group = optimizer.param_groups[0]
    lrs: list[float] = []
    try:
        for _ in range(epochs):
            for _ in range(steps_per_epoch):
                lrs.append(float(group["lr"]))
                if not after_epoch:
                    scheduler.step()
            if after_epoch:
                scheduler.step()
    except (ArithmeticError, ValueError, IndexError) as e:  # e.g. OneCycleLR stepped past its total_steps
        raise ScheduleConfigError(
            f"the scheduler fails at optimizer step {len(lrs)} of {steps_per_epoch * epochs} ({type(e).__name__}: {e}): "
            "its length parameters (total_steps, epochs, T_max...) do not cover this run"
        ) from None
    return LRTrace(lrs, steps_per_epoch, epochs, after_epoch, label)


def trace_config(
    name: str,
    params: dict[str, Any] | None,
    lr: float,
    steps_per_epoch: int,
    epochs: int,
    after_epoch: bool,
) -> LRTrace:
    """:func:`trace_lr` for a scheduler given by name and parameters (a Coqui ``lr_scheduler`` config)."""
    how = "per epoch" if after_epoch else "per step"
    return trace_lr(scheduler_factory(name, params), steps_per_epoch, epochs, after_epoch, lr, f"{name}, {how}")


# ---------------------------------------------------------------------------------------------- milestones


def scheduler_milestones(name: str, params: dict[str, Any]) -> dict[str, list[float]]:
    """The counts of ``scheduler.step()`` calls at which a scheduler config does something, by parameter.

    E.g. ``{"milestones": [900000, 2700000]}`` for MultiStepLR, ``{"gradual_learning_rates": [0, 10000]}`` for
    StepwiseGradualLR, ``{"warmup_steps": [4000]}`` for NoamLR. Unknown parameters are ignored.
    """
    cls_name = scheduler_class(name).__name__
    p = params or {}
    out: dict[str, list[float]] = {}
    if cls_name == "StepwiseGradualLR" and p.get("gradual_learning_rates"):
        out["gradual_learning_rates"] = [float(t) for t, _ in p["gradual_learning_rates"]]
    if cls_name == "MultiStepLR" and p.get("milestones"):
        out["milestones"] = [float(m) for m in p["milestones"]]
    if cls_name == "SequentialLR" and p.get("milestones"):
        out["milestones"] = [float(m) for m in p["milestones"]]
    for key in ("step_size", "warmup_steps", "total_iters", "T_max", "T_0", "total_steps", "step_size_up"):
        if isinstance(p.get(key), int | float):
            out[key] = [float(p[key])]
    return out


class Note(str):
    """A plan warning: the full text (the str itself, for ``--json`` and logs), a one-line ``short`` form (at most
    about 100 characters, for notebook outputs and the doctor's table) and a ``kind``: ``"beyond"`` (a milestone
    the run never reaches), ``"partial"``, ``"order"``, ``"flat"`` (the LR never changes), ``"trainer"``,
    ``"accumulation"``."""

    short: str
    kind: str

    def __new__(cls, text: str, short: str, kind: str) -> Note:
        note = super().__new__(cls, text)
        note.short, note.kind = short, kind
        return note


def milestone_warnings(
    name: str,
    params: dict[str, Any],
    steps_per_epoch: int,
    epochs: int,
    after_epoch: bool,
    trace: LRTrace | None = None,
) -> list[Note]:
    """Plain-language warnings for a scheduler config: milestones the run never reaches, an LR that never
    changes, StepwiseGradualLR thresholds out of order."""
    run_len = epochs if after_epoch else steps_per_epoch * epochs
    unit = "epochs (the scheduler is stepped once per epoch)" if after_epoch else "optimizer steps"
    brief = "epochs" if after_epoch else "optimizer steps"
    out: list[Note] = []
    for key, values in scheduler_milestones(name, params).items():
        discrete = key in ("milestones", "gradual_learning_rates", "step_size")
        for v in values:
            if discrete and v > 0 and v >= run_len:
                msg = (
                    f"{key} value {_num(v)} lies beyond the run: it counts {unit} and the run has only "
                    f"{run_len} of them ({epochs} epochs x {steps_per_epoch} steps), so it never takes effect."
                )
                if after_epoch and v < steps_per_epoch * epochs:
                    msg += (
                        f" Read as optimizer steps it would fall in epoch {int(v // steps_per_epoch)}: step the "
                        "scheduler per step (scheduler_after_epoch=False) or use epoch milestones "
                        f"(steps_to_epochs gives {steps_to_epochs([v], steps_per_epoch)[0]})."
                    )
                out.append(Note(msg, f"{name} {key} {_num(v)} lies beyond the run ({run_len} {brief})", "beyond"))
            elif not discrete and v > run_len:
                pct = f"{100 * run_len / v:.2g} %"
                out.append(Note(
                    f"{key}={_num(v)} counts {unit} but the run has only {run_len} of them: only "
                    f"{pct} of that part of the schedule is ever applied.",
                    f"{name} {key}={_num(v)}: only {pct} of it fits in the run ({run_len} {brief})", "partial"))
        if key == "gradual_learning_rates" and list(values) != sorted(values):
            out.append(Note(
                f"gradual_learning_rates thresholds {[_num(v) for v in values]} are not in increasing order: "
                "StepwiseGradualLR applies each one only when its step count equals it, so check the list.",
                "gradual_learning_rates thresholds are not in increasing order", "order"))
    if trace is not None and trace.never_changes():
        out.append(Note(f"the LR stays {trace.lrs[0]:.6g} for the whole run ({trace.total_steps} optimizer steps).",
                        f"{name}: the LR stays {trace.lrs[0]:.3g} for all {trace.total_steps} optimizer steps", "flat"))
    return out


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else f"{v:g}"


def epochs_to_steps(epoch_milestones: Iterable[float], steps_per_epoch: int) -> list[int]:
    """Epoch milestones (of a scheduler stepped per epoch) as the 0-based optimizer steps they take effect at.

    A milestone ``e`` changes the LR from the first step of epoch ``e``, i.e. step ``e * steps_per_epoch``.
    """
    _check_spe(steps_per_epoch)
    return [int(round(float(e) * steps_per_epoch)) for e in epoch_milestones]


def steps_to_epochs(step_milestones: Iterable[float], steps_per_epoch: int, rounding: str = "ceil") -> list[int]:
    """Optimizer-step milestones as epoch milestones for a scheduler stepped once per epoch.

    An epoch milestone can only move the LR at an epoch boundary. ``rounding="ceil"`` (default) picks the
    first boundary at or after the step (the LR never drops early), ``"floor"`` the last one before it,
    ``"nearest"`` the closest.
    """
    _check_spe(steps_per_epoch)
    rounders = {"ceil": math.ceil, "floor": math.floor, "nearest": lambda x: math.floor(x + 0.5)}
    if rounding not in rounders:
        raise ValueError(f"rounding={rounding!r}: use 'ceil', 'floor' or 'nearest'")
    return [int(rounders[rounding](float(s) / steps_per_epoch)) for s in step_milestones]


def _check_spe(steps_per_epoch: int) -> None:
    if steps_per_epoch < 1:
        raise ValueError(f"steps_per_epoch must be at least 1, got {steps_per_epoch}")


def gradual_to_epochs(
    gradual_lr: Sequence[Sequence[float]], steps_per_epoch: int, rounding: str = "ceil"
) -> list[list[float]]:
    """A StepwiseGradualLR list ``[[step, lr], ...]`` with its step thresholds converted to epochs.

    Raises ValueError when two thresholds land in the same epoch (StepwiseGradualLR would apply only the
    first), naming them: use a larger gap or step the scheduler per optimizer step instead.
    """
    epochs = steps_to_epochs([t for t, _ in gradual_lr], steps_per_epoch, rounding)
    seen: dict[int, float] = {}
    for (step, _), ep in zip(gradual_lr, epochs, strict=True):
        if ep in seen:
            raise ValueError(
                f"thresholds {_num(seen[ep])} and {_num(step)} both map to epoch {ep} with {steps_per_epoch} "
                "steps per epoch; space them at least one epoch apart or step the scheduler per step"
            )
        seen[ep] = step
    return [[ep, float(lr)] for ep, (_, lr) in zip(epochs, gradual_lr, strict=True)]


# ------------------------------------------------------------------------------------------------ plotting


def plot_lr_traces(
    traces: Sequence[LRTrace],
    ax: Any = None,
    thresholds: Sequence[float] | None = None,
    path: str | Path | None = None,
    title: str = "Learning rate per optimizer step",
) -> Any:
    """Step plots of LR against optimizer step, one line per trace (intended vs applied), with epoch
    boundaries shaded and optional threshold markers. Writes a PNG/SVG atomically when ``path`` is given.
    Returns the matplotlib Figure."""
    import matplotlib.pyplot as plt

    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(8, 3.2), dpi=90)
    fig = fig or ax.figure
    styles = ["-", "--", "-.", ":"]
    for i, tr in enumerate(traces):
        ax.step(range(tr.total_steps), tr.lrs, where="post", lw=2, ls=styles[i % len(styles)],
                label=tr.label or f"trace {i}", color=f"C{i}")
    if traces:
        spe, n = traces[0].steps_per_epoch, traces[0].total_steps
        for e in range(0, n, spe * 2):
            ax.axvspan(e, min(e + spe, n), color="gray", alpha=0.08, lw=0)
    for t in thresholds or []:
        ax.axvline(t, color="gray", ls=":", lw=1)
    ax.set_xlabel("optimizer step (shaded bands: every other epoch)")
    ax.set_ylabel("learning rate")
    ax.set_title(title)
    ax.ticklabel_format(axis="y", style="sci", scilimits=(-2, 2))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, framealpha=0.6)
    fig.tight_layout()
    if path is not None:
        path = Path(path)
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=path.suffix.lstrip(".") or "png")
    return fig


# ----------------------------------------------------------------------------------- ordering and GradScaler


@contextlib.contextmanager
def catch_order_warnings() -> Iterator[list[str]]:
    """Collect torch's "``lr_scheduler.step()`` before ``optimizer.step()``" warnings raised in the block.

    Yields a list that holds the messages once the block ends (other warnings pass through untouched).
    """
    found: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield found
    for w in caught:
        if ORDER_WARNING_TEXT in str(w.message):
            found.append(str(w.message))
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


def scaler_skipped_step(scale_before: float, scaler: Any) -> bool:
    """True when ``scaler.update()`` lowered the scale, i.e. ``scaler.step()`` skipped ``optimizer.step()``
    because of inf/NaN gradients. Step the LR scheduler only when this is False."""
    return bool(scaler.is_enabled() and scaler.get_scale() < scale_before)
