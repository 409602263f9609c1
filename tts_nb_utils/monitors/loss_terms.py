"""Loss guard and per-term loss logging: stop a run whose loss cannot teach anything, and show every term.

Notebook 03 (``03_zero_loss_config.ipynb``) uses it on a DiffSinger-shaped variance task. The failures it
catches on the first training step(s), each with a message saying which config switch or weight to change:

- an empty loss dict (every ``predict_*`` switch off): ``sum({}.values())`` is the int 0, which Lightning
  rejects with the generic "`training_step` must return a Tensor, a dict, or None";
- a total that is not a tensor, or that does not require grad (every head detached or frozen);
- one term that does not require grad (its head's output was detached) or that is exactly 0 (its weight is 0).

Use :class:`LossGuard` as a Lightning callback, or call :func:`check_losses` in a plain PyTorch loop.
:func:`log_loss_terms` logs each term (and the expected-but-absent ones as NaN) through Lightning's loggers,
:func:`read_metrics_csv` and :func:`summarize_loss_terms` read a CSVLogger's ``metrics.csv`` back and flag
terms that are absent, stuck at zero or flat.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from ..upstream.diffsinger import LOSS_TERMS, TERM_WEIGHTS, LoadedConfig, display_path

try:  # Lightning is a dependency; keep the plain-loop helpers importable without it all the same
    from lightning.pytorch.callbacks import Callback
except ImportError:  # pragma: no cover
    Callback = object  # type: ignore[assignment,misc]


class LossGuardError(RuntimeError):
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


def explain_terms(
    config: LoadedConfig | Mapping[str, Any] | None = None,
    term_switches: Mapping[str, Sequence[str]] | None = None,
) -> str:
    """Which config switches produce which loss term, with the config's current values when given."""
    term_switches = LOSS_TERMS if term_switches is None else term_switches
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
    each term and which weight scales it (default: DiffSinger's variance task). A term that is exactly 0
    is an error unless ``allow_zero_terms``.
    """
    term_switches = LOSS_TERMS if term_switches is None else term_switches
    term_weights = TERM_WEIGHTS if term_weights is None else term_weights
    at = f" at step {step}" if step is not None else ""
    if losses is not None and total is None:
        total = sum(losses.values())

    if losses is not None and len(losses) == 0:
        raise LossGuardError(
            f"the loss dict is empty{at}: no loss term was computed, so the total is "
            f"sum({{}}.values()) == {total!r} ({type(total).__name__}), which cannot be backpropagated "
            "(Lightning would stop with \"`training_step` must return a Tensor, a dict, or None\").\n"
            f"Loss terms come from these config switches:\n{explain_terms(config, term_switches)}\n"
            "Fix: enable at least one prediction (e.g. `predict_dur: true`) in your config."
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
                    "(DiffSinger's default is 1.0), or switch the prediction off. "
                    "Pass allow_zero_terms=True if a zero term is expected."
                )
    if not torch.isfinite(total.detach()).all():
        raise LossGuardError(
            f"the total loss{at} is {total.detach().float().item()}: "
            + ", ".join(f"{k}={float(v.detach()):.4g}" for k, v in terms.items() if isinstance(v, torch.Tensor))
        )
    return total


# ----------------------------------------------------------------------------------------- Lightning


class LossGuard(Callback):
    """Lightning callback: check the first ``check_steps`` training steps' loss with :func:`check_losses`.

    It wraps the module's ``training_step`` for the run, so it sees what the step returns *before*
    Lightning does and raises :class:`LossGuardError` instead of Lightning's generic message. Loss terms
    are taken from a returned dict (``{"loss": total, "dur_loss": ...}``) or from ``module.loss_terms``,
    which :func:`log_loss_terms` sets; without either, only the total is checked.
    """

    def __init__(
        self,
        config: LoadedConfig | Mapping[str, Any] | None = None,
        check_steps: int = 1,
        *,
        term_switches: Mapping[str, Sequence[str]] | None = None,
        term_weights: Mapping[str, str] | None = None,
        allow_zero_terms: bool = False,
        allow_none: bool = False,
    ) -> None:
        self.config = config
        self.check_steps = int(check_steps)
        self.term_switches = term_switches
        self.term_weights = term_weights
        self.allow_zero_terms = allow_zero_terms
        self.allow_none = allow_none
        self.checked = 0
        self._wrapped: Any = None

    def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
        self._unwrap()
        self.checked = 0
        original = pl_module.training_step  # bound method (or an earlier wrapper)

        def guarded_training_step(*args: Any, **kwargs: Any) -> Any:
            if self.checked >= self.check_steps:
                return original(*args, **kwargs)
            if hasattr(pl_module, "loss_terms"):
                pl_module.loss_terms = None
            out = original(*args, **kwargs)
            self.checked += 1
            self._check(out, pl_module, trainer.global_step)
            return out

        pl_module.training_step = guarded_training_step
        self._wrapped = (pl_module, guarded_training_step)

    def _check(self, out: Any, pl_module: Any, step: int) -> None:
        terms = getattr(pl_module, "loss_terms", None)
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
            if self.allow_none or not pl_module.automatic_optimization:
                return
            raise LossGuardError(
                f"training_step returned None at step {step}: Lightning skips the step with a warning (and "
                "multi-GPU training hangs or fails). If every step does this, the model never trains.\n"
                f"Loss terms come from these config switches:\n{explain_terms(self.config, self.term_switches)}\n"
                "Fix: return the total loss tensor; pass LossGuard(allow_none=True) if skipping is intended."
            )
        else:
            total = out
        if not pl_module.automatic_optimization and terms is None:
            return
        check_losses(
            terms, total, config=self.config, step=step, term_switches=self.term_switches,
            term_weights=self.term_weights, allow_zero_terms=self.allow_zero_terms,
        )

    def teardown(self, trainer: Any, pl_module: Any, stage: str) -> None:
        self._unwrap()

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        self._unwrap()

    def _unwrap(self) -> None:
        if self._wrapped is not None:
            module, wrapper = self._wrapped
            if module.__dict__.get("training_step") is wrapper:
                del module.training_step  # back to the class's own method
            self._wrapped = None


# -------------------------------------------------------------------------------------------- logging


def log_loss_terms(
    module: Any,
    losses: Mapping[str, Any],
    total: Any = None,
    *,
    expected: Sequence[str] = (),
    prefix: str = "train/",
    batch_size: int | None = None,
    on_step: bool = True,
    on_epoch: bool = False,
) -> None:
    """Log each loss term, the total and any ``expected`` term that is absent (as NaN) with ``module.log``.

    Every Lightning logger the Trainer has (CSV, TensorBoard) gets ``{prefix}{term}`` and ``{prefix}total``,
    so a term stuck at 0 or missing shows up as its own curve or column. Also sets ``module.loss_terms``
    (read by :class:`LossGuard`).
    """
    module.loss_terms = dict(losses)
    values: dict[str, float | torch.Tensor] = {}
    for name, value in losses.items():
        values[f"{prefix}{name}"] = value.detach().float() if isinstance(value, torch.Tensor) else float(value)
    for name in expected:
        values.setdefault(f"{prefix}{name}", float("nan"))
    if total is None:
        total = sum(losses.values())
    values[f"{prefix}total"] = total.detach().float() if isinstance(total, torch.Tensor) else float(total)
    try:
        has_logger = bool(module.trainer.loggers)
    except RuntimeError:  # not attached to a Trainer
        has_logger = False
    module.log_dict(
        values, on_step=on_step, on_epoch=on_epoch, prog_bar=False, logger=has_logger, batch_size=batch_size
    )


def loss_loggers(save_dir: str | os.PathLike, name: str = "losses", tensorboard: bool | None = None) -> list[Any]:
    """A CSVLogger, plus a TensorBoardLogger when ``tensorboard`` (or tensorboardX) is installed.

    ``tensorboard=None`` adds it when available; True requires it. The CSV file is
    ``<save_dir>/<name>/csv/version_N/metrics.csv`` (see :func:`metrics_csv_path`).
    """
    from lightning.pytorch.loggers import CSVLogger

    loggers: list[Any] = [CSVLogger(save_dir=str(Path(save_dir) / name), name="csv")]
    if tensorboard is not False:
        try:
            from lightning.pytorch.loggers import TensorBoardLogger

            loggers.append(TensorBoardLogger(save_dir=str(Path(save_dir) / name), name="tensorboard"))
        except ModuleNotFoundError:
            if tensorboard:
                raise
    return loggers


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
