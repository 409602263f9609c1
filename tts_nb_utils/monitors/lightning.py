"""The Lightning adapter: any ``monitors.base.Monitor`` as a Lightning callback, and per-term loss logging.

One of the two modules that import Lightning (the other is notebook 03's demo task). Use::

    trainer = Trainer(callbacks=[MonitorCallback(NanGuard(), SanityMonitor(expected_samples=n), LRWatch(plan))])

The callback calls the monitors' hooks at Lightning's matching moments: ``on_train_start`` (the module, its
one optimizer, the schedulers, ``len(dataset)`` of the train dataloader); the training step's output, seen
*before* Lightning validates it, only when a monitor needs it (the loss-term guard); ``on_before_optimizer_step``
(after AMP unscaling; a monitor that returns False makes the callback drop the gradients, so the optimizer
leaves the weights and its state alone); the end of each batch that stepped the optimizer; and the end of
training. Steps are ``trainer.global_step``, which counts optimizer steps (gradient accumulation handled).

:func:`log_loss_terms` logs every loss term, and :func:`loss_loggers` gives a CSV (and TensorBoard) logger
whose ``metrics.csv`` ``diagnose.loss_curves`` reads back. Used by notebooks 02, 03, 04 and 06.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.callbacks import Callback

from .base import Monitor, MonitorSet, drop_gradients


class MonitorCallback(Callback):
    """Lightning callback driving one or more monitors (in order; put a NaN guard first). ``.monitor`` is the
    single monitor given, or a ``MonitorSet`` of several; ``.monitors`` lists them."""

    def __init__(self, *monitors: Monitor) -> None:
        if not monitors:
            raise ValueError("MonitorCallback needs at least one monitor, e.g. MonitorCallback(NanGuard())")
        super().__init__()
        self.monitors = list(monitors)
        self._driver = MonitorSet(*monitors)
        self.monitor = monitors[0] if len(monitors) == 1 else self._driver
        self._loss: torch.Tensor | None = None
        self._stepped = False
        self._wrapped: tuple[Any, Any] | None = None

    # -- the step's output, before Lightning checks it -----------------------------------------------------
    def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
        self._unwrap()
        if not self._driver.wants_step_output:
            return
        original = pl_module.training_step  # bound method (or an earlier wrapper)

        def monitored_training_step(*args: Any, **kwargs: Any) -> Any:
            if hasattr(pl_module, "loss_terms"):
                pl_module.loss_terms = None
            out = original(*args, **kwargs)
            terms = getattr(pl_module, "loss_terms", None)
            if pl_module.automatic_optimization or terms is not None or _has_terms(out):
                self._driver.on_step_output(out, int(trainer.global_step), terms)
            return out

        # Lightning offers no hook between training_step and its own check of the output, so the step is
        # wrapped for the run (and unwrapped at teardown or on an exception).
        pl_module.training_step = monitored_training_step
        self._wrapped = (pl_module, monitored_training_step)

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

    # -- the training loop ---------------------------------------------------------------------------------
    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        if len(trainer.optimizers) > 1:
            raise ValueError(f"MonitorCallback supports one optimizer, this run has {len(trainer.optimizers)}")
        optimizer = trainer.optimizers[0] if trainer.optimizers else None
        schedulers = tuple(c.scheduler for c in getattr(trainer, "lr_scheduler_configs", []))
        self._driver.on_train_start(pl_module, optimizer, schedulers, _dataset_size(trainer))

    def on_before_backward(self, trainer: Any, pl_module: Any, loss: torch.Tensor) -> None:
        self._loss = loss.detach()

    def on_before_optimizer_step(self, trainer: Any, pl_module: Any, optimizer: Any) -> None:
        self._stepped = True
        if not self._driver.before_optimizer_step(int(trainer.global_step), self._loss):
            drop_gradients(list(pl_module.parameters()))

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        if not self._stepped:  # gradient accumulation: no optimizer step in this batch
            return
        self._stepped = False
        loss = outputs.get("loss") if isinstance(outputs, Mapping) else outputs
        loss = loss if isinstance(loss, torch.Tensor | float | int) else self._loss
        self._driver.after_optimizer_step(int(trainer.global_step) - 1, loss)

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        self._driver.on_train_end()


def _has_terms(out: Any) -> bool:
    return isinstance(out, Mapping) and any(k != "loss" and isinstance(v, torch.Tensor) for k, v in out.items())


def _dataset_size(trainer: Any) -> int | None:
    dataset = getattr(trainer.train_dataloader, "dataset", None)
    try:
        return len(dataset) if dataset is not None else None
    except TypeError:  # an IterableDataset without a length
        return None


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
    (the loss-term guard reads it through :class:`MonitorCallback`).
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
