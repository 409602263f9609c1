"""A small Lightning task shaped like DiffSinger's variance task, on synthetic phoneme/pitch data.

Notebook 03 (``03_zero_loss_config.ipynb``) trains it with the real Lightning ``Trainer`` to reproduce the
zero-loss failures. Like upstream ``training/variance_task.py`` + ``basics/base_task.py``:

- an encoder over phoneme tokens (plus the note pitch) feeds a duration head, a pitch head and a variance
  head (energy, breathiness, voicing, tension), each built only when its ``predict_*`` switch is truthy;
- ``run_model`` puts ``dur_loss``, ``pitch_loss`` and ``var_loss`` in a dict only for enabled predictions,
  each multiplied by its ``lambda_*_loss`` weight; the duration loss mixes phoneme, word and sentence
  levels with ``dur_prediction_args.lambda_{p,w,s}dur_loss``;
- ``training_step`` returns ``sum(losses.values())``: the int 0 when the dict is empty.

The real model is diffusion-based and far larger; the toy uses MSE heads so a CPU trains it in seconds.
``detach_heads`` injects the "detached head" bug on purpose, for the notebook's quiet-failure demo.

``ToyAcousticTask`` is the acoustic task in the same miniature (``training/acoustic_task.py:149-169`` with
``modules/toplevel.py:107-117`` at upstream ``753b7cc``): with shallow diffusion, an auxiliary mel decoder
gives ``aux_mel_loss`` only when ``train_aux_decoder`` is on and the diffusion decoder gives ``mel_loss`` only
when ``train_diffusion`` is on (both small MSE heads here). :func:`toy_task_for` picks the toy by ``task_cls``
and refuses a config that names no task, as upstream's ``scripts/train.py`` cannot start one.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
import torch.nn.functional as F
import yaml
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from ..io import atomic_write_text
from ..monitors.lightning import log_loss_terms
from ..upstream.diffsinger import VARIANCE_SWITCHES, LoadedConfig, expected_loss_terms, get_dotted, task_kind

VARIANCE_NAMES: tuple[str, ...] = tuple(s.removeprefix("predict_") for s in VARIANCE_SWITCHES)


# -------------------------------------------------------------------------------------------------- data


@dataclass
class VarianceData:
    """Synthetic utterances, all ``n_phones`` long. ``dur``: frames per phoneme; ``midi``: note pitch per
    phoneme (semitones); ``pitch``: sung pitch (semitones); ``variances``: [N, T, 4] in 0..1, in the order
    of ``VARIANCE_NAMES``; ``ph2word``: 1-based word index of each phoneme."""

    tokens: torch.Tensor
    ph2word: torch.Tensor
    midi: torch.Tensor
    dur: torch.Tensor
    pitch: torch.Tensor
    variances: torch.Tensor

    def dataset(self) -> TensorDataset:
        return TensorDataset(self.tokens, self.ph2word, self.midi, self.dur, self.pitch, self.variances)


def make_variance_data(n_utts: int = 256, n_phones: int = 16, vocab: int = 24, seed: int = 0) -> VarianceData:
    """Deterministic phoneme sequences whose durations, pitch and variances depend on the phoneme, its place
    in the word and the note, plus a little noise, so each head has something learnable."""
    rng = np.random.default_rng(seed)
    base_dur = rng.uniform(3, 15, vocab)
    pitch_offset = rng.normal(0, 0.7, vocab)
    var_table = rng.uniform(0.1, 0.9, (vocab, len(VARIANCE_NAMES)))
    tokens = rng.integers(1, vocab, (n_utts, n_phones))
    ph2word = np.zeros((n_utts, n_phones), dtype=np.int64)
    midi = np.zeros((n_utts, n_phones))
    last_in_word = np.zeros((n_utts, n_phones), dtype=bool)
    for u in range(n_utts):
        pos, word = 0, 1
        while pos < n_phones:
            size = min(int(rng.integers(1, 4)), n_phones - pos)
            ph2word[u, pos:pos + size] = word
            midi[u, pos:pos + size] = rng.integers(55, 72)
            last_in_word[u, pos + size - 1] = True
            pos, word = pos + size, word + 1
    dur = base_dur[tokens] * np.where(last_in_word, 1.6, 1.0) * rng.uniform(0.9, 1.1, tokens.shape)
    pitch = midi + pitch_offset[tokens] + rng.normal(0, 0.05, tokens.shape)
    variances = np.clip(var_table[tokens] + rng.normal(0, 0.02, (*tokens.shape, len(VARIANCE_NAMES))), 0, 1)
    return VarianceData(
        tokens=torch.as_tensor(tokens, dtype=torch.long),
        ph2word=torch.as_tensor(ph2word, dtype=torch.long),
        midi=torch.as_tensor(midi, dtype=torch.float32),
        dur=torch.as_tensor(dur, dtype=torch.float32),
        pitch=torch.as_tensor(pitch, dtype=torch.float32),
        variances=torch.as_tensor(variances, dtype=torch.float32),
    )


def make_loader(data: VarianceData, batch_size: int = 16, seed: int = 0) -> DataLoader:
    """A shuffling DataLoader (seeded) over the data; no worker processes."""
    return DataLoader(
        data.dataset(), batch_size=batch_size, shuffle=True, generator=torch.Generator().manual_seed(seed)
    )


# ------------------------------------------------------------------------------------------------- model


class ToyVarianceModel(nn.Module):
    """Token + note encoder with optional duration, pitch and variance heads (None when switched off)."""

    def __init__(self, vocab: int, hidden: int, predict_dur: bool, predict_pitch: bool, variances: Sequence[str]):
        super().__init__()
        self.embed = nn.Embedding(vocab, hidden)
        self.note = nn.Linear(1, hidden)
        self.encoder = nn.Sequential(
            nn.Conv1d(hidden, hidden, 3, padding=1), nn.ReLU(), nn.Conv1d(hidden, hidden, 3, padding=1), nn.ReLU()
        )
        self.dur_head = nn.Linear(hidden, 1) if predict_dur else None
        self.pitch_head = nn.Linear(hidden, 1) if predict_pitch else None
        self.variances = list(variances)
        self.var_head = nn.Linear(hidden, len(self.variances)) if self.variances else None

    def forward(self, tokens: torch.Tensor, midi: torch.Tensor) -> tuple[Any, Any, Any]:
        x = self.embed(tokens) + self.note(((midi - 63.0) / 6.0).unsqueeze(-1))
        h = self.encoder(x.transpose(1, 2)).transpose(1, 2) + x
        dur = self.dur_head(h).squeeze(-1) if self.dur_head is not None else None  # log(frames + 1)
        pitch = self.pitch_head(h).squeeze(-1) if self.pitch_head is not None else None  # semitones above note
        var = torch.sigmoid(self.var_head(h)) if self.var_head is not None else None
        return dur, pitch, var


def _word_sum(values: torch.Tensor, ph2word: torch.Tensor) -> torch.Tensor:
    n_words = int(ph2word.max())
    out = values.new_zeros(values.shape[0], n_words + 1)
    return out.scatter_add(1, ph2word, values)[:, 1:]


class ToyVarianceTask(pl.LightningModule):
    """The variance task in miniature. ``config``: a (loaded) DiffSinger variance config; switches are read
    with Python truthiness and weights only for enabled predictions, as upstream does.
    ``detach_heads``: any of "dur", "pitch", "var" to detach that head's output (a deliberate bug)."""

    def __init__(
        self,
        config: LoadedConfig | Mapping[str, Any],
        vocab: int = 24,
        hidden: int = 64,
        lr: float = 3e-3,
        detach_heads: Sequence[str] = (),
    ):
        super().__init__()
        hp = config.data if isinstance(config, LoadedConfig) else dict(config)
        if task_kind(hp) != "variance":
            raise ValueError(f"ToyVarianceTask needs a variance config; task_cls is {hp.get('task_cls')!r}")
        self.hp, self.lr, self.detach_heads = hp, lr, set(detach_heads)
        self.predict_dur = hp.get("predict_dur", False)
        if self.predict_dur:
            self.lambda_dur_loss = hp["lambda_dur_loss"]
            dur_args = hp["dur_prediction_args"]
            self.dur_weights = (dur_args["lambda_pdur_loss"], dur_args["lambda_wdur_loss"], dur_args["lambda_sdur_loss"])
        self.predict_pitch = hp.get("predict_pitch", False)
        if self.predict_pitch:
            self.lambda_pitch_loss = hp["lambda_pitch_loss"]
        self.variance_list = [name for name, s in zip(VARIANCE_NAMES, VARIANCE_SWITCHES, strict=True) if hp.get(s)]
        self.lambda_var_loss = hp.get("lambda_var_loss", 1.0)
        self.expected_terms = expected_loss_terms(hp)
        self.model = ToyVarianceModel(vocab, hidden, bool(self.predict_dur), bool(self.predict_pitch), self.variance_list)
        self.loss_terms: dict[str, torch.Tensor] | None = None

    def _maybe_detach(self, name: str, value: torch.Tensor) -> torch.Tensor:
        return value.detach() if name in self.detach_heads else value

    def duration_loss(self, pred_log: torch.Tensor, dur: torch.Tensor, ph2word: torch.Tensor) -> torch.Tensor:
        """Phoneme-, word- and sentence-level MSE of log(frames + 1), weighted like DiffSinger's DurationLoss."""
        w_ph, w_word, w_sent = self.dur_weights
        pred = torch.expm1(pred_log).clamp(min=0)
        ph = F.mse_loss(pred_log, torch.log1p(dur))
        word = F.mse_loss(torch.log1p(_word_sum(pred, ph2word)), torch.log1p(_word_sum(dur, ph2word)))
        sent = F.mse_loss(torch.log1p(pred.sum(1)), torch.log1p(dur.sum(1)))
        return w_ph * ph + w_word * word + w_sent * sent

    def run_model(self, batch: Sequence[torch.Tensor]) -> dict[str, torch.Tensor]:
        """The losses dict: only the enabled predictions' terms, each times its lambda (may be empty)."""
        tokens, ph2word, midi, dur, pitch, variances = batch
        dur_pred, pitch_pred, var_pred = self.model(tokens, midi)
        losses = {}
        if dur_pred is not None:
            dur_pred = self._maybe_detach("dur", dur_pred)
            losses["dur_loss"] = self.lambda_dur_loss * self.duration_loss(dur_pred, dur, ph2word)
        if pitch_pred is not None:
            pitch_pred = self._maybe_detach("pitch", pitch_pred)
            losses["pitch_loss"] = self.lambda_pitch_loss * F.mse_loss(pitch_pred, pitch - midi)
        if var_pred is not None:
            var_pred = self._maybe_detach("var", var_pred)
            idx = [VARIANCE_NAMES.index(n) for n in self.variance_list]
            losses["var_loss"] = self.lambda_var_loss * F.mse_loss(var_pred, variances[..., idx])
        return losses

    def training_step(self, batch: Sequence[torch.Tensor], batch_idx: int) -> Any:
        losses = self.run_model(batch)
        total_loss = sum(losses.values())  # as DiffSinger's BaseTask: the int 0 for an empty dict
        log_loss_terms(self, losses, total_loss, expected=self.expected_terms, batch_size=len(batch[0]))
        return total_loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        params = [p for p in self.parameters() if p.requires_grad]
        if not params:  # an empty model (every head off, no encoder use) still needs an optimiser to start
            params = [nn.Parameter(torch.zeros(1))]
        return torch.optim.Adam(params, lr=self.lr)


class ToyAcousticTask(pl.LightningModule):
    """The acoustic task in miniature: phoneme tokens -> an 8-bin "mel" per phoneme. With shallow diffusion
    the aux decoder and the main decoder each give a loss only when their ``train_*`` switch is truthy."""

    def __init__(self, config: LoadedConfig | Mapping[str, Any], vocab: int = 24, hidden: int = 64, lr: float = 3e-3):
        super().__init__()
        hp = config.data if isinstance(config, LoadedConfig) else dict(config)
        if task_kind(hp) != "acoustic":
            raise ValueError(f"ToyAcousticTask needs an acoustic config; task_cls is {hp.get('task_cls')!r}")
        shallow = bool(hp.get("use_shallow_diffusion", False))
        self.train_aux = shallow and bool(get_dotted(hp, "shallow_diffusion_args.train_aux_decoder"))
        self.train_diffusion = not shallow or bool(get_dotted(hp, "shallow_diffusion_args.train_diffusion"))
        self.lambda_aux_mel_loss = hp.get("lambda_aux_mel_loss", 0.0)
        self.expected_terms, self.lr = expected_loss_terms(hp), lr
        self.embed = nn.Embedding(vocab, hidden)
        self.aux_decoder = nn.Linear(hidden, 8)
        self.decoder = nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 8))

    def run_model(self, batch: Sequence[torch.Tensor]) -> dict[str, torch.Tensor]:
        tokens, _, midi, dur, pitch, variances = batch
        target = torch.cat([variances, (pitch - midi).unsqueeze(-1), torch.log1p(dur).unsqueeze(-1) / 3,
                            variances[..., :2]], dim=-1)  # [B, T, 8], a stand-in for mel frames
        h = self.embed(tokens)
        losses = {}
        if self.train_aux:
            losses["aux_mel_loss"] = self.lambda_aux_mel_loss * F.mse_loss(self.aux_decoder(h), target)
        if self.train_diffusion:
            losses["mel_loss"] = F.mse_loss(self.decoder(h), target)
        return losses

    def training_step(self, batch: Sequence[torch.Tensor], batch_idx: int) -> Any:
        losses = self.run_model(batch)
        total_loss = sum(losses.values())  # the int 0 when neither part trains
        log_loss_terms(self, losses, total_loss, expected=self.expected_terms, batch_size=len(batch[0]))
        return total_loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.lr)


def toy_task_for(config: LoadedConfig | Mapping[str, Any], **kwargs: Any) -> pl.LightningModule:
    """The toy task for the config's ``task_cls``; ValueError for a config without a task."""
    kind = task_kind(config)
    if kind == "acoustic":
        return ToyAcousticTask(config, **{k: v for k, v in kwargs.items() if k != "detach_heads"})
    if kind == "variance":
        return ToyVarianceTask(config, **kwargs)
    data = config.data if isinstance(config, LoadedConfig) else config
    raise ValueError(f"the config names no task DiffSinger can train (task_cls: {data.get('task_cls')!r})")


def save_like_set_hparams(config: LoadedConfig, root: str | Path, exp_name: str) -> Path:
    """Write ``checkpoints/<exp_name>/config.yaml`` under ``root`` as upstream's first run does
    (``utils/hparams.py:112-122``: the merged config, ``base_config`` emptied, plain ``yaml.safe_dump``)."""
    data = {**config.data, "base_config": [], "work_dir": f"checkpoints/{exp_name}"}
    out = Path(root) / "checkpoints" / exp_name / "config.yaml"
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, yaml.safe_dump(data, allow_unicode=True))
    return out


# ----------------------------------------------------------------------------------------------- trainer


def quiet_lightning() -> None:
    """Silence Lightning's start-up banners and the small-data warnings a toy run triggers."""
    for name in ("lightning.pytorch", "lightning.fabric", "pytorch_lightning", "lightning"):
        logging.getLogger(name).setLevel(logging.WARNING)
    for pattern in (
        ".*does not have many workers.*",
        ".*number of training batches.*",
        ".*GPU available but not used.*",
        ".*LightningModule.log.*",
        ".*tensorboardX.*",
        ".*LeafSpec.*",
    ):
        warnings.filterwarnings("ignore", message=pattern)


def _accelerator(device: str | torch.device) -> tuple[str, Any]:
    dev = torch.device(device)
    if dev.type == "cuda":
        return "gpu", [dev.index or 0]
    return dev.type, 1


def make_trainer(
    max_steps: int,
    root_dir: str,
    device: str | torch.device = "cpu",
    callbacks: Sequence[Any] = (),
    loggers: Sequence[Any] | bool = False,
) -> pl.Trainer:
    """A quiet Lightning Trainer for short runs: no progress bar, summary, checkpoints or validation;
    everything it writes goes under ``root_dir``."""
    quiet_lightning()
    accelerator, devices = _accelerator(device)
    return pl.Trainer(
        accelerator=accelerator,
        devices=devices,
        max_steps=max_steps,
        max_epochs=-1,
        logger=list(loggers) if not isinstance(loggers, bool) else loggers,
        callbacks=list(callbacks),
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        log_every_n_steps=1,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        default_root_dir=root_dir,
    )


@dataclass
class Attempt:
    """What :func:`train_attempt` saw: the trainer (None when no task could be built), the exception or None,
    and how far each head's weights moved (max absolute change)."""

    trainer: pl.Trainer | None
    error: BaseException | None
    moved: dict[str, float]


def train_attempt(config: LoadedConfig | Mapping[str, Any], steps: int, data: VarianceData, log_dir: str | Path,
                  device: str | torch.device = "cpu", seed: int = 0, batch_size: int = 16, guard: bool = False,
                  detach: Sequence[str] = (), name: str = "run") -> Attempt:
    """Train the toy task for ``config`` (notebook 03): the real Trainer, every loss term logged under
    ``log_dir/name``, with ``LossTermGuard`` when ``guard``; the exception is returned, not raised."""
    from ..device import seed_everything
    from ..diagnose.params import parameter_changes, snapshot_parameters
    from ..monitors.lightning import MonitorCallback, loss_loggers
    from ..monitors.loss_terms import LossTermGuard

    seed_everything(seed)
    try:
        task = toy_task_for(config, detach_heads=detach)
    except ValueError as e:  # a config that names no task: DiffSinger cannot start it either
        return Attempt(None, e, {})
    before = snapshot_parameters(task)
    callbacks = [MonitorCallback(LossTermGuard(config))] if guard else []
    trainer = make_trainer(steps, str(log_dir), device, callbacks=callbacks, loggers=loss_loggers(Path(log_dir), name))
    try:
        trainer.fit(task, make_loader(data, batch_size, seed=seed))
        error = None
    except Exception as e:  # noqa: BLE001 - the notebook shows and asserts it
        error = e
    moved = {k.split(".")[1]: v for k, v in parameter_changes(task, before).items()
             if k.endswith("head.weight") or "decoder" in k}
    return Attempt(trainer, error, moved)
