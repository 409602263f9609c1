"""Notebook 04's miniature: a linear regression trained by the real Coqui trainer, and a runner that reads back
the learning rate the trainer logged.

Small enough for seconds on a CPU; the trainer, its config, its scheduler handling and its log file are the
real ``coqui-tts-trainer`` ones. The model mixes in ``monitors.coqui.MonitoredModelMixin`` so any monitor can
watch its steps (``monitors=CoquiMonitors(...)``); a subclass that overrides ``get_scheduler`` (``model_cls=``)
is how a scheduler the config string cannot express reaches the trainer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn
from trainer import Trainer, TrainerArgs, TrainerConfig, TrainerModel
from trainer.logging.dummy_logger import DummyLogger

from ..monitors.coqui import CoquiMonitors, MonitoredModelMixin, merge_callbacks, quiet_coqui_console
from ..upstream.coqui import read_coqui_lr_log


class TinyCoquiModel(MonitoredModelMixin, TrainerModel):
    """``y = W x`` on ``n_samples`` fixed random rows. The scheduler is the config's (``lr_scheduler``)."""

    def __init__(self, n_samples: int, batch_size: int, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.x = torch.randn(n_samples, 8, generator=g)
        self.y = self.x @ torch.randn(8, 1, generator=g)
        self.net, self.batch_size = nn.Linear(8, 1), batch_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def train_step(self, batch, criterion, optimizer_idx=None):
        out = self(batch["x"])
        return {"model_outputs": out}, {"loss": criterion(out, batch["y"])}

    def eval_step(self, batch, criterion, optimizer_idx=None):
        return self.train_step(batch, criterion)

    def get_criterion(self) -> nn.Module:
        return nn.MSELoss()

    def get_data_loader(self, config, assets=None, is_eval=False, samples=None, verbose=True, num_gpus=1, rank=0):
        rows = [{"x": a, "y": b} for a, b in zip(self.x, self.y, strict=True)]
        return torch.utils.data.DataLoader(rows, batch_size=self.batch_size, shuffle=False, drop_last=True)


def train_coqui(
    workdir: str | Path,
    name: str,
    *,
    epochs: int,
    steps_per_epoch: int,
    batch_size: int,
    lr: float,
    seed: int = 0,
    gpu: int | None = None,
    grad_accum: int = 1,
    model_cls: type[TinyCoquiModel] = TinyCoquiModel,
    callbacks: Mapping[str, Callable] | None = None,
    monitors: CoquiMonitors | None = None,
    **config: Any,
) -> tuple[list[tuple[int, float]], Path]:
    """Train ``model_cls`` (a :class:`TinyCoquiModel`) with the Coqui ``Trainer`` for ``epochs`` of
    ``steps_per_epoch`` batches (SGD at ``lr``, ``grad_accum`` batches per optimizer step, ``config`` as
    TrainerConfig fields); return the ``(global_step, lr)`` pairs its own log recorded, and the log file."""
    cfg = TrainerConfig(output_path=str(Path(workdir) / name), run_name=name, epochs=epochs, batch_size=batch_size,
                        optimizer="SGD", optimizer_params={}, lr=lr, print_step=1, run_eval=False,
                        save_checkpoints=False, save_step=10**9, plot_step=10**9, **config)
    model = model_cls(steps_per_epoch * batch_size, batch_size, seed)
    all_callbacks = dict(callbacks or {})
    if monitors is not None:
        monitors.attach(model)
        all_callbacks = merge_callbacks(all_callbacks, monitors.callbacks)
    with quiet_coqui_console():  # the console stays quiet; the log file keeps every line
        trainer = Trainer(TrainerArgs(grad_accum_steps=grad_accum), cfg, output_path=cfg.output_path, model=model, callbacks=all_callbacks,
                          parse_command_line_args=False, dashboard_logger=DummyLogger(), gpu=gpu)
        trainer.fit()
    if monitors is not None:
        monitors.on_train_end()
    log = next(Path(cfg.output_path).rglob("trainer_0_log.txt"))
    return read_coqui_lr_log(log), log
