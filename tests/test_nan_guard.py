"""NanGuard: skips non-finite steps without touching the weights, recovers (restore + lower LR) after
``patience`` bad steps, logs events; in a plain loop, in device-skip mode, and in a real Lightning Trainer."""

from __future__ import annotations

import math

import lightning.pytorch as pl
import pytest
import torch
from torch import nn

from tts_nb_utils.monitors.lightning import MonitorCallback
from tts_nb_utils.monitors.nan_guard import NanGuard, NonFiniteTrainingError


def _setup(fused: bool = False, lr: float = 0.05):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 1))
    opt = torch.optim.Adam(model.parameters(), lr=lr, fused=fused or None)
    x, y = torch.randn(32, 4), torch.randn(32, 1)
    return model, opt, x, y


def _weights(model):
    return [p.detach().clone() for p in model.parameters()]


def _same(a, b):
    return all(torch.equal(u, v) for u, v in zip(a, b, strict=True))


def _loss(model, x, y, poison: bool = False):
    loss = nn.functional.mse_loss(model(x), y)
    return loss * math.nan if poison else loss


def test_good_steps_train_and_bad_steps_leave_weights_and_state_unchanged():
    model, opt, x, y = _setup()
    guard = NanGuard(model, opt, patience=None)
    losses = []
    for i in range(30):
        opt.zero_grad()
        loss = _loss(model, x, y, poison=(i == 10))
        loss.backward()
        before = _weights(model)
        state_before = {k: v.clone() for k, v in opt.state[model[0].weight].items()} if i else None
        stepped = guard.step(loss)
        if i == 10:
            assert stepped is False
            assert _same(before, _weights(model)), "a bad step must not change the weights"
            assert all(torch.equal(v, opt.state[model[0].weight][k]) for k, v in state_before.items())
        else:
            assert stepped is True and not _same(before, _weights(model))
            losses.append(loss.item())
    assert guard.skipped == 1 and guard.steps == 30
    assert [(e.step, e.kind) for e in guard.events] == [(10, "skip")]
    assert math.isnan(guard.events[0].loss)
    assert losses[-1] < losses[0]


def test_inf_gradient_with_finite_loss_is_caught():
    model, opt, x, y = _setup()
    guard = NanGuard(model, opt)
    loss = _loss(model, x, y)
    loss.backward()
    model[2].bias.grad.fill_(math.inf)
    before = _weights(model)
    assert guard.step(loss) is False and _same(before, _weights(model))
    assert math.isinf(guard.events[0].grad_norm)


def test_recovery_restores_last_good_weights_and_lowers_lr():
    model, opt, x, y = _setup()
    guard = NanGuard(model, opt, patience=3, lr_factor=0.1, snapshot_every=5)
    for i in range(12):  # snapshots before the updates of good steps 4 and 9 (after 4 and 9 updates)
        opt.zero_grad()
        loss = _loss(model, x, y)
        loss.backward()
        if i == 9:
            expected = _weights(model)
        guard.step(loss)
    assert guard._snapshot[0] == 9
    snapshot = guard._snapshot[1]
    assert _same(snapshot, expected)
    with torch.no_grad():  # the weights blow up: every later step is non-finite
        model[0].weight.fill_(math.inf)
    for _ in range(3):
        opt.zero_grad()
        loss = _loss(model, x, y)
        loss.backward()
        assert guard.step(loss) is False
    kinds = [e.kind for e in guard.events]
    assert kinds == ["skip", "skip", "skip", "restore", "lower_lr"]
    assert _same(snapshot, _weights(model))
    assert opt.param_groups[0]["lr"] == pytest.approx(0.005)
    assert guard.recoveries == 1 and "after 9 steps" in guard.events[3].detail
    opt.zero_grad()
    loss = _loss(model, x, y)
    loss.backward()
    assert guard.step(loss) is True and torch.isfinite(loss)
    assert "1 recoveries" in guard.summary() and "restore" in guard.format_events()


def test_max_recoveries_raises():
    model, opt, x, y = _setup()
    guard = NanGuard(model, opt, patience=1, max_recoveries=1)
    with pytest.raises(NonFiniteTrainingError, match="after 1 recoveries"):
        for _ in range(3):
            opt.zero_grad()
            loss = _loss(model, x, y, poison=True)
            loss.backward()
            guard.step(loss)


def test_bad_options_are_rejected():
    model, opt, _, _ = _setup()
    with pytest.raises(ValueError, match="lr_factor"):
        NanGuard(model, opt, lr_factor=2.0)
    with pytest.raises(ValueError, match="patience"):
        NanGuard(model, opt, patience=0)


def test_device_skip_mode_with_fused_adam_reads_flags_once_per_window():
    model, opt, x, y = _setup(fused=True)
    guard = NanGuard(model, opt, patience=None, check_every=4)
    assert guard.device_skip
    for i in range(8):
        opt.zero_grad()
        loss = _loss(model, x, y, poison=(i == 5))
        loss.backward()
        before = _weights(model)
        assert guard.step(loss) is None
        if i == 5:
            assert _same(before, _weights(model)), "the fused optimizer must skip on the device"
        if i == 6:
            assert guard.skipped == 0, "flags are read only at the end of a window"
    assert guard.skipped == 1 and [(e.step, e.kind) for e in guard.events] == [(5, "skip")]
    assert opt.state[model[0].weight]["step"].item() == 7  # the skipped step is not counted by Adam either


class _Regressor(pl.LightningModule):
    def __init__(self, poison_steps: set[int]):
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 1))
        self.poison_steps = poison_steps
        self.losses: list[float] = []
        self.weights_at: dict[int, list[torch.Tensor]] = {}
        self.first_batch_losses: list[float] = []

    def training_step(self, batch, batch_idx):
        x, y = batch
        if batch_idx == 0:
            self.first_batch_losses.append(nn.functional.mse_loss(self.net(x), y).item())
        loss = nn.functional.mse_loss(self.net(x), y)
        self.weights_at[self.global_step] = _weights(self)
        if batch_idx in self.poison_steps:
            loss = loss * math.nan
        self.losses.append(loss.item())
        return loss

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=0.05)


def test_lightning_callback_skips_bad_steps_in_a_real_trainer(tmp_path):
    torch.manual_seed(0)
    x = torch.randn(64, 4)
    data = torch.utils.data.TensorDataset(x, x @ torch.randn(4, 1))
    loader = torch.utils.data.DataLoader(data, batch_size=8)
    module = _Regressor(poison_steps={3, 4, 5})
    callback = MonitorCallback(NanGuard(patience=3, lr_factor=0.5, snapshot_every=2))
    trainer = pl.Trainer(
        max_epochs=2, accelerator="cpu", devices=1, callbacks=[callback], logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    trainer.fit(module, loader)
    guard = callback.monitor
    assert guard.steps == 16 and guard.skipped == 6  # batches 3, 4, 5 of both epochs
    assert [e.kind for e in guard.events[:5]] == ["skip", "skip", "skip", "restore", "lower_lr"]
    assert trainer.optimizers[0].param_groups[0]["lr"] == pytest.approx(0.05 * 0.25)
    assert all(math.isfinite(p.detach().sum().item()) for p in module.parameters())
    assert _same(module.weights_at[3], module.weights_at[4]), "the skipped step 3 must not move the weights"
    assert not _same(module.weights_at[1], module.weights_at[2])
    assert module.first_batch_losses[1] < module.first_batch_losses[0]


def test_guard_reports_a_collapsing_gradscaler_scale_once():
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 1)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**4)
    guard = NanGuard(model, opt, patience=None, scaler=scaler, min_scale=1.0)
    for step in range(8):
        loss = model(torch.randn(2, 4)).sum() * (float("inf") if step >= 2 else 1.0)  # overflow from step 2 on
        opt.zero_grad()
        scaler.scale(loss).backward()
        scaler.unscale_(opt)
        guard.step(loss, step_fn=lambda: scaler.step(opt))
        scaler.update()
    collapse = [p for p in guard.problems if p.kind == "scale-collapse"]
    assert scaler.get_scale() < 1.0 and len(collapse) == 1
    assert collapse[0].step == 7 and "fell to 0.5" in collapse[0].message  # 16 halved at steps 2..6 -> 0.5
    assert guard.skipped == 6
