"""Loss-term guard: stop a run whose loss cannot teach anything, naming the config switch or weight to fix.

Notebook 03 (``03_zero_loss_config.ipynb``) uses it on a DiffSinger-shaped variance task. The failures it
catches on the first training step(s), each with a message saying which config switch or weight to change:

- an empty loss dict (every ``predict_*`` switch off): ``sum({}.values())`` is the int 0, which Lightning
  rejects with the generic "`training_step` must return a Tensor, a dict, or None";
- a total that is not a tensor, or that does not require grad (every head detached or frozen);
- one term that does not require grad (its head's output was detached) or that is exactly 0 (its weight is 0).

In a plain PyTorch loop call :func:`guarded_total` (or :func:`check_losses`); :class:`LossTermGuard` is the
same check as a ``monitors.base.Monitor``, for ``monitors.lightning.MonitorCallback`` and ``monitors.coqui``.
Logging each term through Lightning's loggers is ``monitors.lightning.log_loss_terms``; reading the curves
back is ``diagnose.loss_curves``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

from ..upstream.diffsinger import DEFAULT_WEIGHTS, LoadedConfig, display_path, loss_terms_for, task_kind
from .base import Monitor, MonitorError


class LossGuardError(MonitorError):
    """The training step produced a loss that cannot train the model (empty, not a tensor, no grad, zero)."""


# ------------------------------------------------------------------------------------------- checking


def _config_data(config: LoadedConfig | Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    if config is None:
        return None
    return config.data if isinstance(config, LoadedConfig) else config


def _value_note(config: LoadedConfig | Mapping[str, Any] | None, key: str) -> str:
    return _values_note(config, [key])


def _values_note(config: LoadedConfig | Mapping[str, Any] | None, keys: Sequence[str]) -> str:
    """``"a=False, b=False in file.yaml; c not set"``: the keys' values, grouped by the file that set them."""
    data = _config_data(config)
    if data is None:
        return ""
    groups: dict[str, list[str]] = {}
    for key in keys:
        if key not in data:
            groups.setdefault("", []).append(f"{key} not set")
            continue
        src = config.source(key) if isinstance(config, LoadedConfig) else None
        groups.setdefault(f" in {display_path(src)}" if src else "", []).append(f"{key}={data[key]!r}")
    return "; ".join(", ".join(items) + where for where, items in groups.items())


def _enable_hint(config: LoadedConfig | Mapping[str, Any] | None) -> str:
    if config is not None and task_kind(config) == "acoustic":
        return "set shallow_diffusion_args.train_diffusion (or train_aux_decoder) to true in your config."
    return "enable at least one prediction (e.g. `predict_dur: true`) in your config."


def explain_terms(
    config: LoadedConfig | Mapping[str, Any] | None = None,
    term_switches: Mapping[str, Sequence[str]] | None = None,
) -> str:
    """Which config switches produce which loss term, with the config's current values when given."""
    term_switches = loss_terms_for(config)[0] if term_switches is None else term_switches
    lines = []
    for term, switches in term_switches.items():
        line = f"  {term} <- {' or '.join(switches)}"
        if _config_data(config) is not None:
            line += f"  (now: {_values_note(config, switches)})"
        lines.append(line)
    return "\n".join(lines)


def check_losses(
    losses: Mapping[str, Any] | None,
    total: Any = None,
    *,
    config: LoadedConfig | Mapping[str, Any] | None = None,
    step: int | None = None,
    term_switches: Mapping[str, Sequence[str]] | None = None,
    term_weights: Mapping[str, str] | None = None,
    allow_zero_terms: bool = False,
) -> torch.Tensor:
    """Check one step's loss terms and total; return the total, or raise LossGuardError saying what to fix.

    ``losses``: the step's loss dict (``None`` when only the total is known). ``total``: what the step
    returns; default ``sum(losses.values())``, as DiffSinger's ``BaseTask`` computes it. ``config``: the
    (loaded) config, quoted in the message. ``term_switches`` / ``term_weights``: which switches produce
    each term and which weight scales it (default: those of the config's task, ``loss_terms_for``). A term that is exactly 0
    is an error unless ``allow_zero_terms``.
    """
    default_switches, default_weights = loss_terms_for(config)
    term_switches = default_switches if term_switches is None else term_switches
    term_weights = default_weights if term_weights is None else term_weights
    at = f" at step {step}" if step is not None else ""
    if losses is not None and total is None:
        total = sum(losses.values())

    if losses is not None and len(losses) == 0:
        raise LossGuardError(
            f"the loss dict is empty{at}: no loss term was computed, so the total is "
            f"sum({{}}.values()) == {total!r} ({type(total).__name__}), which cannot be backpropagated "
            "(Lightning would stop with \"`training_step` must return a Tensor, a dict, or None\").\n"
            f"Loss terms come from these config switches:\n{explain_terms(config, term_switches)}\n"
            f"Fix: {_enable_hint(config)}"
        )
    if not isinstance(total, torch.Tensor):
        raise LossGuardError(
            f"the total loss{at} is {total!r} ({type(total).__name__}), not a tensor, so there is nothing to "
            "backpropagate (Lightning would stop with \"`training_step` must return a Tensor, a dict, or None\").\n"
            f"Loss terms come from these config switches:\n{explain_terms(config, term_switches)}\n"
            "Fix: enable the predictions whose terms you expect, and return the sum of tensor terms."
        )

    terms = dict(losses or {})
    no_grad = [k for k, v in terms.items() if isinstance(v, torch.Tensor) and not v.requires_grad]
    if not total.requires_grad:
        which = f" (terms without a graph: {', '.join(no_grad)})" if no_grad else ""
        raise LossGuardError(
            f"the total loss{at} = {total.detach().float().item():.4g} does not require grad{which}: "
            "nothing connects it to a trainable parameter. Usual causes: a head's output passed through "
            ".detach() or computed under torch.no_grad(), or every parameter frozen (requires_grad=False). "
            "Fix: compute each loss from the heads' outputs without detaching them."
        )
    if no_grad:
        raise LossGuardError(
            f"loss term(s) {', '.join(no_grad)}{at} do not require grad, so their heads never learn even though "
            "the other terms train (the total still backpropagates, so nothing else complains). Usual cause: "
            "the head's output was .detach()ed or computed under torch.no_grad(). Fix: keep the graph from "
            "the prediction to the loss."
        )
    if not allow_zero_terms:
        for name, value in terms.items():
            if isinstance(value, torch.Tensor) and value.numel() == 1 and float(value.detach()) == 0.0:
                weight = term_weights.get(name)
                data = _config_data(config)
                if weight and data is not None and weight in data:
                    cause = f"its weight is {_value_note(config, weight)}"
                else:
                    cause = f"its weight{' ' + weight if weight else ''} is probably 0"
                raise LossGuardError(
                    f"loss term {name}{at} is exactly 0.0: {cause}, so it adds no gradient and its head learns "
                    f"nothing while training appears to run. Fix: give {weight or 'its weight'} a positive value "
                    f"(DiffSinger's default is {DEFAULT_WEIGHTS.get(weight or '', 1.0)}), or switch the prediction off. "
                    "Pass allow_zero_terms=True if a zero term is expected."
                )
    if not torch.isfinite(total.detach()).all():
        raise LossGuardError(
            f"the total loss{at} is {total.detach().float().item()}: "
            + ", ".join(f"{k}={float(v.detach()):.4g}" for k, v in terms.items() if isinstance(v, torch.Tensor))
        )
    return total


# --------------------------------------------------------------------------------------------- monitor


class LossTermGuard(Monitor):
    """The loss checks as a monitor: :func:`check_losses` on the first ``check_steps`` training steps' output.

    ``on_step_output`` takes what the step returned: the total tensor, a dict ``{"loss": total, term: ...}``,
    or None. Loss terms come from the dict, or from ``terms`` (what ``monitors.lightning.log_loss_terms``
    stored on the module); without either, only the total is checked. A step returning None is a problem
    unless ``allow_none`` (Lightning skips such a step; every step doing so never trains). Each problem names
    the config switch or weight to change (``config``). Adapters: ``monitors.lightning.MonitorCallback`` sees
    the output *before* Lightning does, so its generic "`training_step` must return a Tensor, a dict, or None"
    never hides ours; ``monitors.coqui`` checks the loss dict the model returns.
    """

    name = "loss-terms"
    error = LossGuardError

    def __init__(
        self,
        config: LoadedConfig | Mapping[str, Any] | None = None,
        check_steps: int = 1,
        *,
        term_switches: Mapping[str, Sequence[str]] | None = None,
        term_weights: Mapping[str, str] | None = None,
        allow_zero_terms: bool = False,
        allow_none: bool = False,
        on_problem: str = "raise",
    ) -> None:
        super().__init__(on_problem)
        self.config, self.check_steps = config, int(check_steps)
        self.term_switches, self.term_weights = term_switches, term_weights
        self.allow_zero_terms, self.allow_none = allow_zero_terms, allow_none
        self.checked = 0

    def on_train_start(self, model=None, optimizer=None, schedulers=(), dataset_size=None) -> None:
        self.checked = 0

    def on_step_output(self, output: Any, step: int, terms: Mapping[str, Any] | None = None) -> None:
        if self.checked >= self.check_steps:
            return
        self.checked += 1
        try:
            self._check(output, step, terms)
        except LossGuardError as e:
            self.report("loss", step, str(e))

    def _check(self, out: Any, step: int, terms: Mapping[str, Any] | None) -> None:
        if isinstance(out, Mapping):
            total = out.get("loss")
            if total is None:
                raise LossGuardError(
                    f"training_step returned a dict without a 'loss' key (keys: {sorted(out)}) at step {step}. "
                    "Fix: return {'loss': total_loss, ...} or the total tensor itself."
                )
            extra = {k: v for k, v in out.items() if k != "loss" and isinstance(v, torch.Tensor)}
            terms = terms if terms is not None else (extra or None)
        elif out is None:
            if self.allow_none:
                return
            raise LossGuardError(
                f"training_step returned None at step {step}: Lightning skips the step with a warning (and "
                "multi-GPU training hangs or fails). If every step does this, the model never trains.\n"
                f"Loss terms come from these config switches:\n{explain_terms(self.config, self.term_switches)}\n"
                "Fix: return the total loss tensor; pass allow_none=True if skipping is intended."
            )
        else:
            total = out
        check_losses(
            terms, total, config=self.config, step=step, term_switches=self.term_switches,
            term_weights=self.term_weights, allow_zero_terms=self.allow_zero_terms,
        )


def guarded_total(
    losses: Mapping[str, Any],
    config: LoadedConfig | Mapping[str, Any] | None = None,
    step: int | None = None,
    check: Callable[[int], bool] = lambda step: step == 0,
    **kwargs: Any,
) -> Any:
    """For plain loops: ``sum(losses.values())``, checked with :func:`check_losses` when ``check(step)``."""
    total = sum(losses.values())
    if step is None or check(step):
        check_losses(losses, total, config=config, step=step, **kwargs)
    return total
