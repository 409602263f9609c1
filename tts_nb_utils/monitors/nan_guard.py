"""A NaN guard: skip non-finite optimizer steps, recover after several in a row (notebook 02).

Each step it computes one flag on the device: "the loss or the gradient norm is not finite" (the total norm
is one foreach pass over the gradients, the pass ``clip_grad_norm_`` makes). A bad step is skipped, so the
weights and the optimizer state stay as they were. After ``patience`` bad steps in a row it restores the last
good weights (and optimizer state) and multiplies the learning rate by ``lr_factor``. Every skip, restore and
LR change goes to ``guard.events``.

Cost: one flag per step. Reading it is the only device-to-host synchronisation the guard adds (``GradScaler``
makes the same one). With an optimizer that takes ``found_inf`` (torch's ``fused=True`` Adam, AdamW, SGD: the
route ``GradScaler`` uses) and ``check_every=K`` the skip itself happens on the device and the flags are read
once every K steps, so K-1 of K steps add no synchronisation at all.

``on_problem`` (see ``monitors.base``): ``"record"`` (default) skips and logs each bad step, ``"warn"`` also
warns, ``"raise"`` stops at the first one with :class:`NonFiniteTrainingError` (no skipping). Running out of
``max_recoveries`` always raises.

Plain loop::

    guard = NanGuard(model, optimizer, patience=3, lr_factor=0.5)
    for batch in loader:
        optimizer.zero_grad()
        loss = compute_loss(model, batch)
        loss.backward()
        guard.step(loss)          # instead of optimizer.step()

Lightning: ``Trainer(callbacks=[MonitorCallback(NanGuard(patience=3))])`` (``monitors.lightning``); the Coqui
trainer: ``monitors.coqui``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
from torch import nn

from .base import Monitor, MonitorError, MonitorWarning

log = logging.getLogger(__name__)


class NonFiniteTrainingError(MonitorError):
    """A non-finite step with ``on_problem="raise"``, or NaN/Inf again after ``max_recoveries`` recoveries."""


class NonFiniteWarning(MonitorWarning):
    """A non-finite step was skipped (``on_problem="warn"``)."""


@dataclass
class GuardEvent:
    """One entry of the guard's log. ``kind`` is "skip", "restore" or "lower_lr"; ``step`` counts the calls
    to ``guard.step`` (0-based)."""

    step: int
    kind: str
    detail: str
    loss: float | None = None
    grad_norm: float | None = None

    def __str__(self) -> str:
        extra = ""
        if self.loss is not None:
            extra += f" loss={self.loss:.4g}"
        if self.grad_norm is not None:
            extra += f" grad_norm={self.grad_norm:.4g}"
        return f"step {self.step:>5} {self.kind:<8} {self.detail}{extra}"


def _grad_norm(params: list[torch.Tensor]) -> torch.Tensor | None:
    """L2 norm of all gradients as a float32 device tensor (no synchronisation), or None without gradients."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return None
    per_group: dict[torch.device, list[torch.Tensor]] = {}
    for g in grads:
        per_group.setdefault(g.device, []).append(g)
    norms = []
    for dev_grads in per_group.values():
        if hasattr(torch, "_foreach_norm"):
            try:
                norms.extend(torch._foreach_norm(dev_grads, 2, dtype=torch.float32))
                continue
            except (TypeError, RuntimeError):
                pass
        norms.extend(torch.linalg.vector_norm(g, dtype=torch.float32) for g in dev_grads)
    device = norms[0].device
    return torch.linalg.vector_norm(torch.stack([n.to(device) for n in norms]))


class NanGuard(Monitor):
    """Skips optimizer steps whose loss or gradients are not finite; recovers after ``patience`` in a row.

    ``model``: the module (or an iterable of parameters) being trained; ``optimizer``: its optimizer. Both may
    be left out when an adapter passes them at the start of training (``on_train_start``).
    ``patience``: bad steps in a row before a recovery (restore + LR change); None never recovers.
    ``lr_factor``: multiply every param group's LR (and schedulers' ``base_lrs``) by this at a recovery;
    None keeps the LR. ``restore``: load the last good weights and optimizer state at a recovery.
    ``snapshot_every``: good steps between snapshots of the weights (a copy in device memory; 0 disables).
    A snapshot holds weights whose forward and backward were just checked finite (taken before the update);
    in device-skip mode it is taken when a window of ``check_every`` steps was all finite.
    ``check_every``: with a ``found_inf``-capable (fused) optimizer, read the flags once every this many steps.
    ``max_recoveries``: raise NonFiniteTrainingError after this many recoveries (None: never).
    ``schedulers``: LR schedulers whose ``base_lrs`` should be lowered with the LR.
    ``scaler``: a ``GradScaler`` to watch: once its scale falls below ``min_scale`` (it starts at 65536 and halves
    at every overflowing step) the guard reports ``scale-collapse``: overflow on nearly every step, which loss
    scaling cannot cure (a forward value beyond fp16's range). One read of the scale per step while watching.
    """

    name = "nan-guard"
    needs_gradients = True
    error = NonFiniteTrainingError
    warning = NonFiniteWarning

    def __init__(
        self,
        model: nn.Module | list[torch.Tensor] | None = None,
        optimizer: torch.optim.Optimizer | None = None,
        *,
        patience: int | None = 3,
        lr_factor: float | None = 0.5,
        restore: bool = True,
        snapshot_every: int = 10,
        check_every: int = 1,
        max_recoveries: int | None = None,
        schedulers: tuple = (),
        scaler: torch.amp.GradScaler | None = None,
        min_scale: float = 1.0,
        on_problem: str = "record",
    ) -> None:
        super().__init__(on_problem)
        if lr_factor is not None and not 0 < lr_factor <= 1:
            raise ValueError(f"lr_factor={lr_factor}: use a factor in (0, 1] (e.g. 0.5), or None to keep the LR")
        if patience is not None and patience < 1:
            raise ValueError(f"patience={patience}: use 1 or more bad steps in a row, or None")
        if check_every < 1:
            raise ValueError(f"check_every={check_every}: use 1 or more")
        self.patience, self.lr_factor, self.restore = patience, lr_factor, restore
        self.snapshot_every, self.max_recoveries = snapshot_every, max_recoveries
        self._check_every = check_every
        self.scaler, self.min_scale, self._scale_reported = scaler, float(min_scale), False
        self.events: list[GuardEvent] = []
        self.steps = self.skipped = self.recoveries = self.bad_in_a_row = 0
        self.last_flag: torch.Tensor | None = None
        self.last_grad_norm: torch.Tensor | None = None
        self._good_since_snapshot = 0
        self._snapshot: tuple[int, list[torch.Tensor], dict] | None = None
        self._pending: list[tuple[int, torch.Tensor, torch.Tensor | None, torch.Tensor | None]] = []
        self.params: list[torch.Tensor] = []
        self.optimizer = optimizer
        if model is not None and optimizer is not None:
            self.on_train_start(model, optimizer, schedulers)

    def on_train_start(self, model=None, optimizer=None, schedulers=(), dataset_size=None) -> None:
        """Bind the parameters, optimizer and schedulers, and take the first snapshot."""
        if model is None or optimizer is None:
            raise ValueError("NanGuard needs the model (or its parameters) and the optimizer")
        self.params = list(model.parameters()) if isinstance(model, nn.Module) else list(model)
        self.optimizer = optimizer
        self.schedulers = tuple(schedulers)
        self.device_skip = bool(getattr(optimizer, "_step_supports_amp_scaling", False)) and self._check_every > 1
        self.check_every = self._check_every if self.device_skip else 1
        if self.snapshot_every and self.restore:
            self._take_snapshot(self.steps)

    # -- the flag -------------------------------------------------------------------------------------------
    def check(self, loss: torch.Tensor | None = None) -> torch.Tensor:
        """The device-side flag for this step: True when ``loss`` or the gradients hold NaN/Inf. No sync."""
        norm = _grad_norm(self.params)
        flag = None
        if norm is not None:
            flag = ~torch.isfinite(norm)
        if loss is not None:
            loss_bad = ~torch.isfinite(loss.detach()).all()
            flag = loss_bad if flag is None else flag | loss_bad.to(flag.device)
        if flag is None:
            raise ValueError("NanGuard.check: no gradients and no loss to check; call it after loss.backward()")
        self.last_flag, self.last_grad_norm = flag, norm
        return flag

    # -- the monitor hook (adapters) and the plain loop -----------------------------------------------------
    def before_optimizer_step(self, step: int | None = None, loss: torch.Tensor | None = None) -> bool:
        """Check this step; False when it must be skipped (the adapter drops the gradients). One sync."""
        return self._decide(self.check(loss), loss)

    def _decide(self, flag: torch.Tensor, loss: torch.Tensor | None) -> bool:
        self._watch_scale(self.steps)
        bad = bool(flag)  # the one device-to-host read per step
        if bad:
            self._record_bad(self.steps, loss, self.last_grad_norm)
        else:
            # snapshot (when due) before the update: these weights just gave a finite loss and gradients
            self._record_good(completed=self.steps)
        self.steps += 1
        return not bad

    def step(self, loss: torch.Tensor | None = None, closure=None, step_fn=None) -> bool | None:
        """Check this step and call ``optimizer.step()`` only if it is finite. Returns True (stepped) or False
        (skipped); None in device-skip mode, where the result is known at the next flag read.

        ``step_fn`` is called instead of ``optimizer.step()``, e.g. ``lambda: scaler.step(optimizer)`` with a
        GradScaler (call ``scaler.unscale_(optimizer)`` before, so the guard sees the real gradients)."""
        flag = self.check(loss)
        if self.device_skip and step_fn is None:
            self.optimizer.found_inf = flag.float()
            self.optimizer.grad_scale = None
            try:
                self.optimizer.step(closure) if closure is not None else self.optimizer.step()
            finally:
                del self.optimizer.found_inf, self.optimizer.grad_scale
            self._pending.append((self.steps, flag, loss.detach() if loss is not None else None, self.last_grad_norm))
            self.steps += 1
            if len(self._pending) >= self.check_every:
                self.flush()
            return None
        ok = self._decide(flag, loss)
        if ok:
            if step_fn is not None:
                step_fn()
            else:
                self.optimizer.step(closure) if closure is not None else self.optimizer.step()
        return ok

    def flush(self) -> None:
        """Read the pending device-side flags (device-skip mode) and update the log; one synchronisation."""
        if not self._pending:
            return
        flags = torch.stack([f.to(self._pending[0][1].device) for _, f, _, _ in self._pending]).tolist()
        pending, self._pending = self._pending, []
        for (step, _, loss, norm), bad in zip(pending, flags, strict=True):
            if bad:
                self._record_bad(step, loss, norm)
            else:
                self._record_good(completed=step + 1)  # device-skip mode: after the window's last update

    def _watch_scale(self, step: int) -> None:
        if self.scaler is None or self._scale_reported or not self.scaler.is_enabled():
            return
        scale = float(self.scaler.get_scale())
        if scale < self.min_scale:
            self._scale_reported = True
            self.report(
                "scale-collapse", step,
                f"GradScaler's scale fell to {scale:.3g} (from 65536, halved at each overflowing step): nearly every "
                "step overflows, which loss scaling cannot fix when the overflow is in the forward pass. Train in "
                "bf16 or fp32, or keep the overflowing op in float32 (autocast disabled)",
            )

    # -- bookkeeping ----------------------------------------------------------------------------------------
    def _record_good(self, completed: int) -> None:
        """A finite step; ``completed`` is how many steps the current weights have seen."""
        self.bad_in_a_row = 0
        self._good_since_snapshot += 1
        if self.restore and self.snapshot_every and self._good_since_snapshot >= self.snapshot_every:
            self._take_snapshot(completed)

    def _record_bad(self, step: int, loss: torch.Tensor | None, norm: torch.Tensor | None) -> None:
        self.skipped += 1
        self.bad_in_a_row += 1
        loss_v = float(loss.detach().float().reshape(-1)[0]) if loss is not None else None
        norm_v = float(norm) if norm is not None else None
        self.events.append(GuardEvent(step, "skip", "non-finite loss or gradient; step skipped", loss_v, norm_v))
        log.info("NanGuard: step %d skipped (loss=%s, grad_norm=%s)", step, loss_v, norm_v)
        self.report("non-finite", step, f"loss={loss_v} grad_norm={norm_v}: step skipped, weights unchanged")
        if self.patience is not None and self.bad_in_a_row >= self.patience:
            self._recover(step)

    def _recover(self, step: int) -> None:
        self.bad_in_a_row = 0
        self.recoveries += 1
        if self.max_recoveries is not None and self.recoveries > self.max_recoveries:
            raise NonFiniteTrainingError(
                f"NanGuard: {self.patience} non-finite steps in a row at step {step}, after "
                f"{self.max_recoveries} recoveries; check the data (clip_problems), the LR and the precision"
            )
        if self.restore and self._snapshot is not None:
            snap_step, weights, opt_state = self._snapshot
            with torch.no_grad():
                for p, w in zip(self.params, weights, strict=True):
                    p.copy_(w)
            for p in list(self.optimizer.state):
                if p not in opt_state:
                    del self.optimizer.state[p]
            for p, st in opt_state.items():
                self.optimizer.state[p] = {k: v.clone() if torch.is_tensor(v) else v for k, v in st.items()}
            self.events.append(GuardEvent(step, "restore", f"weights and optimizer state as after {snap_step} steps"))
            log.warning("NanGuard: restored the weights as after %d steps, at step %d", snap_step, step)
        if self.lr_factor is not None and self.lr_factor != 1:
            old = [g["lr"] for g in self.optimizer.param_groups]
            for g in self.optimizer.param_groups:
                g["lr"] = _scaled(g["lr"], self.lr_factor)
                if "initial_lr" in g:
                    g["initial_lr"] = _scaled(g["initial_lr"], self.lr_factor)
            for s in self.schedulers:
                if hasattr(s, "base_lrs"):
                    s.base_lrs = [_scaled(lr, self.lr_factor) for lr in s.base_lrs]
            new = [g["lr"] for g in self.optimizer.param_groups]
            self.events.append(GuardEvent(step, "lower_lr", f"lr {_fmt(old)} -> {_fmt(new)}"))
            log.warning("NanGuard: lr %s -> %s at step %d", _fmt(old), _fmt(new), step)

    def _take_snapshot(self, completed: int) -> None:
        """Copy the weights and optimizer state (device memory, no synchronisation)."""
        weights = [p.detach().clone() for p in self.params]
        opt_state = {
            p: {k: v.detach().clone() if torch.is_tensor(v) else v for k, v in st.items()}
            for p, st in self.optimizer.state.items()
        }
        self._snapshot = (completed, weights, opt_state)
        self._good_since_snapshot = 0

    def summary(self) -> str:
        """One line: steps, skipped, recoveries, current LR."""
        lrs = _fmt([g["lr"] for g in self.optimizer.param_groups])
        return (f"NanGuard: {self.steps} steps, {self.skipped} skipped, {self.recoveries} recoveries, lr {lrs}")

    def format_events(self, limit: int = 20) -> str:
        """The event log as text (the first ``limit`` entries and a count of the rest)."""
        lines = [str(e) for e in self.events[:limit]]
        if len(self.events) > limit:
            lines.append(f"... and {len(self.events) - limit} more events")
        return "\n".join(lines) if lines else "no events: every step was finite"


def _scaled(lr, factor: float):
    return lr * factor if not torch.is_tensor(lr) else lr.mul_(factor)


def _fmt(lrs: list) -> str:
    vals = sorted({float(lr) for lr in lrs})
    return ", ".join(f"{v:.3g}" for v in vals)
