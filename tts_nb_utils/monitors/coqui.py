"""The Coqui trainer adapter: monitors as Coqui trainer callbacks, and the helpers notebook 04 needs.

The Coqui trainer (``coqui-tts-trainer``) gives user callbacks only the trainer, at the start and end of
each step and epoch (``Trainer(callbacks={"on_train_step_start": fn, ...})``). The moments a NaN guard or a
sanity monitor needs, after ``backward()`` and before ``optimizer.step()``, reach only the model, through
``TrainerModel.before_backward_pass(loss_dict, optimizer)`` and ``before_gradient_clipping()``. So::

    monitors = CoquiMonitors(NanGuard(), SanityMonitor(), LRWatch(plan))
    class MyModel(MonitoredModelMixin, TrainerModel): ...      # forwards the two model hooks
    monitors.attach(model)
    trainer = Trainer(args, config, output_path, model=model, callbacks=monitors.callbacks)

An LR watch alone needs no mixin: it records the LR at ``on_train_step_start`` and counts optimizer steps
with the trainer's own accumulation rule (``upstream.coqui.coqui_steps_optimizer``: every
``grad_accum_steps`` batches and at each epoch's last batch). In 0.4.0's mixed-precision path
``before_gradient_clipping`` runs only when ``grad_clip > 0`` (there the trainer's GradScaler already skips
non-finite steps). Steps are optimizer steps (the trainer's ``total_steps_done`` and logged ``GLOBAL_STEP``
count batches). ``on_problem="raise"`` stops the run: the trainer prints the error and exits with status 1.

This module imports the trainer only inside the functions that need it. Used by notebook 04.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import torch

from ..upstream.coqui import coqui_steps_optimizer
from .base import Monitor, MonitorSet, drop_gradients


class CoquiMonitors(MonitorSet):
    """Monitors driven by the Coqui trainer: pass ``.callbacks`` to ``Trainer(callbacks=...)`` and set
    ``model.monitors = self`` on a model with :class:`MonitoredModelMixin`."""

    name = "coqui-monitors"

    def __init__(self, *monitors: Monitor) -> None:
        super().__init__(*monitors)
        self.optimizer_steps = 0
        self._batch = 0  # batch index in the current epoch, as the trainer's train_epoch counts it
        self._started = False
        self._loss: torch.Tensor | None = None
        self._hooked = False
        self.after_step_pending: tuple[int, torch.Tensor | None] | None = None

    @property
    def callbacks(self) -> dict[str, Callable[[Any], None]]:
        """The trainer callbacks (merge them with others through :func:`merge_callbacks`)."""
        return {
            "on_train_epoch_start": self._epoch_start,
            "on_train_step_start": self._step_start,
            "on_train_step_end": self._step_end,
        }

    def attach(self, model: Any) -> Any:
        """Let ``model`` forward its hooks here; a clear error now when it cannot (the Coqui trainer turns an
        exception raised inside ``fit()`` into ``sys.exit(1)``). Returns the model."""
        if not isinstance(model, MonitoredModelMixin):
            raise ValueError(
                f"{type(model).__name__} does not forward the Coqui trainer's model hooks: add "
                "MonitoredModelMixin first in its bases (class MyModel(MonitoredModelMixin, TrainerModel))"
            )
        model.monitors = self
        return model

    # -- trainer callbacks --------------------------------------------------------------------------------
    def _epoch_start(self, trainer: Any) -> None:
        self._batch = 0
        if self._started:
            return
        self._started = True
        self._hooked = getattr(trainer.model, "monitors", None) is self
        needy = [m.name for m in self.monitors if getattr(m, "needs_gradients", False)]
        if needy and not self._hooked:
            raise ValueError(
                f"{', '.join(needy)} need the gradients, which the Coqui trainer shows only to the model: mix "
                "MonitoredModelMixin into your TrainerModel class and set model.monitors to this CoquiMonitors"
            )
        optimizers = trainer.optimizer if isinstance(trainer.optimizer, list | tuple) else [trainer.optimizer]
        schedulers = trainer.scheduler if isinstance(trainer.scheduler, list | tuple) else [trainer.scheduler]
        loader = getattr(trainer, "train_loader", None)
        size = len(loader.dataset) if loader is not None and hasattr(loader.dataset, "__len__") else None
        self.on_train_start(trainer.model, optimizers[0], [s for s in schedulers if s is not None], size)

    def _step_start(self, trainer: Any) -> None:
        if not self._hooked:  # an LR watch alone: record the LR this batch's accumulation group will use
            self.before_optimizer_step(self.optimizer_steps, None)

    # -- model hooks (MonitoredModelMixin) -----------------------------------------------------------------
    def model_before_backward(self, loss_dict: Mapping[str, Any]) -> None:
        """The model's loss dict, before the trainer divides the loss for accumulation and backpropagates."""
        total = loss_dict.get("loss")
        self._loss = total.detach() if isinstance(total, torch.Tensor) else None
        terms = {k: v for k, v in loss_dict.items() if k != "loss" and isinstance(v, torch.Tensor)}
        self.on_step_output(dict(loss_dict), self.optimizer_steps, terms or None)

    def model_before_step(self, model: torch.nn.Module) -> None:
        """After backward (and unscaling), before ``optimizer.step()``: a False from a monitor drops the grads."""
        step, loss = self.optimizer_steps, self._loss
        self.optimizer_steps += 1
        if not self.before_optimizer_step(step, loss):
            drop_gradients(list(model.parameters()))
            return
        self.after_step_pending = (step, loss)

    def _step_end(self, trainer: Any) -> None:
        if not self._hooked:  # count optimizer steps as the trainer takes them
            accum = max(1, int(getattr(trainer, "grad_accum_steps", 1)))
            if coqui_steps_optimizer(self._batch, len(trainer.train_loader), accum):
                self.optimizer_steps += 1
        self._batch += 1
        pending = self.after_step_pending
        if pending is not None:
            self.after_step_pending = None
            self.after_optimizer_step(*pending)


class MonitoredModelMixin:
    """Mix into a Coqui ``TrainerModel`` (before it in the bases) to forward the trainer's model hooks to
    ``self.monitors`` (a :class:`CoquiMonitors`)."""

    monitors: CoquiMonitors | None = None

    def before_backward_pass(self, loss_dict: dict[str, Any], optimizer: Any) -> None:
        if self.monitors is not None:
            self.monitors.model_before_backward(loss_dict)

    def before_gradient_clipping(self) -> None:
        if self.monitors is not None:
            self.monitors.model_before_step(self)


def merge_callbacks(*dicts: Mapping[str, Callable[[Any], None]]) -> dict[str, Callable[[Any], None]]:
    """One Coqui callbacks dict from several: callbacks under the same name run in the order given."""
    merged: dict[str, list[Callable[[Any], None]]] = {}
    for d in dicts:
        for name, fn in d.items():
            merged.setdefault(name, []).append(fn)

    def chain(fns: list[Callable[[Any], None]]) -> Callable[[Any], None]:
        if len(fns) == 1:
            return fns[0]

        def run_all(trainer: Any) -> None:
            for fn in fns:
                fn(trainer)

        return run_all

    return {name: chain(fns) for name, fns in merged.items()}


@contextlib.contextmanager
def quiet_coqui_console(level: int = 30) -> Iterator[None]:
    """Silence the Coqui trainer's console output below ``level`` (default WARNING) during the block.

    Only the ``trainer`` logger's console handlers are raised; its log file (``trainer_0_log.txt``, which
    :func:`read_coqui_lr_log` reads) keeps every line. Levels are restored afterwards, and the log-file
    handlers each ``Trainer`` adds during the block are closed, so several runs in one process do not write
    into each other's log files.
    """
    import logging

    with contextlib.suppress(ImportError):
        import trainer  # noqa: F401 - sets up the "trainer" logger and its console handler
    log = logging.getLogger("trainer")
    before = list(log.handlers)
    saved = [(h, h.level) for h in before if not isinstance(h, logging.FileHandler)]
    for h, _ in saved:
        h.setLevel(level)
    try:
        yield
    finally:
        for h, old in saved:
            h.setLevel(old)
        for h in [h for h in log.handlers if h not in before and isinstance(h, logging.FileHandler)]:
            log.removeHandler(h)
            h.close()


def coqui_epoch_step_callbacks() -> dict[str, Callable[[Any], None]]:
    """Callbacks for ``trainer.Trainer(..., callbacks=...)`` that make per-epoch scheduler stepping happen.

    In coqui-tts-trainer 0.4.0, with a single optimizer and ``scheduler_after_epoch=True``, the scheduler is
    never stepped: ``optimize()`` records the stepped optimizer as index ``None`` while ``train_epoch()``
    looks for index ``0``. This ``on_train_epoch_end`` callback (it runs just before that check) records index
    0 as well when ``None`` was recorded. On a trainer without the bug it changes nothing.
    """

    def on_train_epoch_end(trainer: Any) -> None:
        stepped = getattr(trainer, "_stepped_optimizers", None)
        if isinstance(stepped, set) and None in stepped:
            stepped.add(0)

    return {"on_train_epoch_end": on_train_epoch_end}
