"""Notebook 04's miniature: a linear regression trained by the real Coqui trainer, and a runner that reads back
the learning rate the trainer logged.

Small enough for seconds on a CPU; the trainer, its config, its scheduler handling and its log file are the
real ``coqui-tts-trainer`` ones. The model mixes in ``monitors.coqui.MonitoredModelMixin`` so any monitor can
watch its steps (``monitors=CoquiMonitors(...)``); a subclass that overrides ``get_scheduler`` (``model_cls=``)
is how a scheduler the config string cannot express reaches the trainer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from trainer import Trainer, TrainerArgs, TrainerConfig, TrainerModel
from trainer.logging.dummy_logger import DummyLogger
from trainer.trainer_utils import get_scheduler

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


@dataclass
class GanConfig(TrainerConfig):
    """The two-optimizer fields as coqui-tts's VITS and GAN vocoder configs spell them (``lr_disc``,
    ``lr_scheduler_disc``... for optimizer 0, ``*_gen`` for optimizer 1); defaults are VitsConfig's."""

    grad_clip: list = field(default_factory=lambda: [0.0, 0.0])  # one per optimizer, as VitsConfig's
    lr_disc: float = 2e-4
    lr_gen: float = 2e-4
    lr_scheduler_disc: str = "ExponentialLR"
    lr_scheduler_disc_params: dict = field(default_factory=lambda: {"gamma": 0.999875, "last_epoch": -1})
    lr_scheduler_gen: str = "ExponentialLR"
    lr_scheduler_gen_params: dict = field(default_factory=lambda: {"gamma": 0.999875, "last_epoch": -1})


class TinyGanModel(TinyCoquiModel):
    """Two optimizers as VITS builds them (``get_optimizer``/``get_lr``/``get_scheduler``: index 0 the
    discriminator, 1 the generator), each fitting its own linear layer; trained with a :class:`GanConfig`."""

    config: GanConfig

    def __init__(self, n_samples: int, batch_size: int, seed: int = 0):
        super().__init__(n_samples, batch_size, seed)
        self.disc = nn.Linear(8, 1)

    def train_step(self, batch, criterion, optimizer_idx=None):
        out = (self.disc if optimizer_idx == 0 else self.net)(batch["x"])
        return {"model_outputs": out}, {"loss": criterion(out, batch["y"])}

    def get_criterion(self) -> list[nn.Module]:
        return [nn.MSELoss(), nn.MSELoss()]

    def get_optimizer(self) -> list[torch.optim.Optimizer]:
        return [torch.optim.SGD(self.disc.parameters(), lr=self.config.lr_disc),
                torch.optim.SGD(self.net.parameters(), lr=self.config.lr_gen)]

    def get_lr(self) -> list[float]:
        return [self.config.lr_disc, self.config.lr_gen]

    def get_scheduler(self, optimizer):
        c = self.config
        return [get_scheduler(c.lr_scheduler_disc, c.lr_scheduler_disc_params, optimizer[0]),
                get_scheduler(c.lr_scheduler_gen, c.lr_scheduler_gen_params, optimizer[1])]


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
    TrainerConfig fields; a :class:`GanConfig` for a :class:`TinyGanModel`); return the ``(global_step, lr)``
    pairs its own log recorded (the first optimizer's), and the log file."""
    config_cls = GanConfig if issubclass(model_cls, TinyGanModel) else TrainerConfig
    cfg = config_cls(output_path=str(Path(workdir) / name), run_name=name, epochs=epochs, batch_size=batch_size,
                        optimizer="SGD", optimizer_params={}, lr=lr, print_step=1, run_eval=False,
                        save_checkpoints=False, save_step=10**9, plot_step=10**9, **config)
    model = model_cls(steps_per_epoch * batch_size, batch_size, seed)
    model.config = cfg
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
    return read_coqui_lr_log(log, "current_lr_0" if issubclass(model_cls, TinyGanModel) else "current_lr"), log
