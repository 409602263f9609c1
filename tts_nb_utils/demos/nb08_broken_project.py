"""Notebook 08's "broken project": one small case of each failure class ``tts-nb doctor`` knows, written in
each upstream's own layout by the project's own writers, and the fixes that make the doctor's report clean.

- ``audio/``: 32 kHz mono int16 clips (the gpt-sovits preset's format), one silent and one clipped;
- ``diffsinger/``: upstream's variance template with every ``predict_*`` off, its two bases beside it
  (copied from ``data/diffsinger``, trimmed from openvpi/DiffSinger ``753b7cc``);
- ``gpt_sovits/logs/my_voice/``: ``config.json`` with ``fp16_run: true``, a ``train.log`` whose loss lines turn
  NaN for good, and ``logs_s2_v2/`` with a clean ``G_/D_`` pair and a later NaN pair (``s2_train.py``'s layout);
- ``coqui/``: a real Coqui trainer run of notebook 04's linear model with ``StepwiseGradualLR`` stepped per
  epoch (coqui-tts-trainer 0.4.0 never steps it);
- ``applio/``: ``logs/my_model/`` after a failed extraction (no features, a file list of the mute entries
  only), ``logs/mute/``, and ``rvc/models/embedders/`` with a second download ``pytorch_model (1).bin``;
- ``dia_train.yaml``: Dia-1.6B with full AdamW in bf16 on a 24 GB card.

Deterministic for a seed (the Coqui run folder carries the trainer's date in its name); about 1.8 MB; nothing
downloads.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..audio import speechlike
from ..dataprep.presets import GPT_SOVITS_SR, write_wav_int16
from ..io import atomic_write_bytes, atomic_write_json, atomic_write_text
from ..runner.paths import data_dir
from ..upstream.gpt_sovits import S2_LEARNING_RATE, S2_LR_DECAY, format_sovits_log, sovits_lr
from .nb02_tiny_vits import save_checkpoint, upstream_logger
from .nb06_rvc.embedder import embedder_files
from .nb06_rvc.extract_fixed import extract
from .nb06_rvc.pipeline import extract_pitch, generate_filelist, make_clips, make_mute

COQUI_GRADUAL = [[0, 1e-3], [2, 5e-4], [4, 2.5e-4]]  # thresholds in epochs: what the user meant


def _int16(y: np.ndarray) -> np.ndarray:
    return (np.clip(y, -1, 1) * 32767).astype(np.int16)  # slice_audio.py's (chunk * 32767).astype(int16)


def make_audio(folder: Path, seed: int = 0) -> None:
    """Four clean 2 s clips (pauses over a -80 dBFS floor), one of digital silence, one clipped 8x over full
    scale."""
    rng = np.random.default_rng(seed)
    for i in range(4):
        y = speechlike(2.0, GPT_SOVITS_SR, seed=seed + i, pauses=[(0.0, 0.15), (0.9, 1.1), (1.85, 2.0)])
        write_wav_int16(folder / f"clip_{i}.wav", _int16(y + 1e-4 * rng.standard_normal(len(y))), GPT_SOVITS_SR)
    write_wav_int16(folder / "clip_silent.wav", np.zeros(2 * GPT_SOVITS_SR, np.int16), GPT_SOVITS_SR)
    write_wav_int16(folder / "clip_loud.wav", _int16(8 * speechlike(2.0, GPT_SOVITS_SR, seed=seed + 9)), GPT_SOVITS_SR)


def make_diffsinger(folder: Path) -> Path:
    """``configs/base.yaml``, ``configs/variance.yaml`` and the all-off ``my_variance.yaml`` (the template)."""
    src = data_dir() / "diffsinger"
    (folder / "configs").mkdir(parents=True, exist_ok=True)
    for name in ("base.yaml", "variance.yaml"):
        shutil.copyfile(src / "configs" / name, folder / "configs" / name)
    shutil.copyfile(src / "template_variance.yaml", folder / "my_variance.yaml")
    return folder / "my_variance.yaml"


def _s2_config(exp_dir: Path, fp16: bool) -> dict:
    """The keys of GPT-SoVITS ``configs/s2.json`` (48b1a01) that webui.py sets and the doctor reads."""
    return {"train": {"epochs": 8, "learning_rate": S2_LEARNING_RATE, "batch_size": 4, "fp16_run": fp16,
                      "lr_decay": S2_LR_DECAY, "text_low_lr_rate": 0.4},
            "data": {"exp_dir": exp_dir.as_posix(), "sampling_rate": 32000},
            "model": {"version": "v2"}, "s2_ckpt_dir": exp_dir.as_posix(), "name": exp_dir.name, "version": "v2"}


def _sovits_log(exp_dir: Path, epochs: int, nan_from: int, seed: int) -> None:
    """``train.log`` as ``utils.get_logger`` writes it, one loss line per epoch, NaN from ``nan_from`` on."""
    rng = np.random.default_rng(seed)
    logger = upstream_logger(exp_dir, exp_dir.name)
    for epoch in range(1, epochs + 1):
        losses = [float("nan") if epoch >= nan_from and k != 4 else float(v)
                  for k, v in enumerate(rng.uniform(0.5, 30, 6))]
        logger.info(format_sovits_log(losses, epoch * 50, sovits_lr(epoch), epoch=epoch, progress=0))
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()


def make_sovits(exp_dir: Path, seed: int = 0) -> None:
    """A run that went NaN at epoch 3: clean ``G_/D_100`` (epoch 2), NaN ``G_/D_200`` (epoch 4)."""
    ckpts = exp_dir / "logs_s2_v2"
    ckpts.mkdir(parents=True, exist_ok=True)
    atomic_write_json(exp_dir / "config.json", _s2_config(exp_dir, fp16=True))
    _sovits_log(exp_dir, 4, 3, seed)
    torch.manual_seed(seed)
    for step, epoch in ((100, 2), (200, 4)):
        for part in "GD":
            model = nn.Linear(4, 4)
            opt = torch.optim.AdamW(model.parameters(), lr=S2_LEARNING_RATE)
            model(torch.randn(2, 4)).sum().backward()
            opt.step()
            if step == 200:
                with torch.no_grad():
                    model.weight.fill_(float("nan"))
            save_checkpoint(ckpts / f"{part}_{step}.pth", model, opt, epoch, S2_LEARNING_RATE)


def make_coqui(folder: Path, after_epoch: bool = True) -> Path:
    """A Coqui run of 6 epochs x 4 batches; ``after_epoch=False`` is the fix (thresholds in steps)."""
    from .nb04_toy_model import train_coqui  # here: importing this module loads no Coqui trainer

    gradual = COQUI_GRADUAL if after_epoch else [[e * 4, lr] for e, lr in COQUI_GRADUAL]
    shutil.rmtree(folder, ignore_errors=True)
    _, log = train_coqui(folder, "run", epochs=6, steps_per_epoch=4, batch_size=2, lr=1e-3,
                         lr_scheduler="StepwiseGradualLR", lr_scheduler_params={"gradual_learning_rates": gradual},
                         scheduler_after_epoch=after_epoch)
    return log.parent


def make_applio(root: Path, seed: int = 0) -> Path:
    """Applio after a failed extraction: clips and pitch, no features, the mute-only file list; embedders with a
    duplicate download."""
    embedders = root / "rvc" / "models" / "embedders" / "contentvec"
    for name, data in embedder_files(seed, "base").items():
        atomic_write_bytes(embedders / name, data)
    atomic_write_bytes(embedders / "pytorch_model (1).bin", (embedders / "pytorch_model.bin").read_bytes())
    model = root / "logs" / "my_model"
    make_clips(model, 3, seconds=1.0, seed=seed)
    extract_pitch(model)
    (model / "v2_extracted").mkdir(parents=True, exist_ok=True)
    make_mute(root / "logs" / "mute", embedders, seconds=1.0)
    generate_filelist(model, root / "logs" / "mute")
    return model


def make_dia(path: Path, optimizer: str = "adamw", checkpointing: bool = False) -> None:
    """Our Dia training config (``doctor.check_dia``'s format)."""
    atomic_write_text(path, f"dia_train:\n  model: dia_1_6b\n  micro_batch_size: 2\n  precision: bf16-mixed\n"
                      f"  optimizer: {optimizer}\n  grad_checkpointing: {str(checkpointing).lower()}\n"
                      "  text_len: 256\n  audio_seconds: 10\n  gpu_gib: 24\n")


def make_broken_project(dest: str | Path, seed: int = 0) -> Path:
    """Write the whole project under ``dest`` (replaced if it exists); returns ``dest``."""
    dest = Path(dest)
    shutil.rmtree(dest, ignore_errors=True)
    make_audio(dest / "audio", seed)
    make_diffsinger(dest / "diffsinger")
    make_sovits(dest / "gpt_sovits" / "logs" / "my_voice", seed)
    make_coqui(dest / "coqui")
    make_applio(dest / "applio", seed)
    make_dia(dest / "dia_train.yaml")
    return dest


def fix_project_files(dest: str | Path, drop: list[str]) -> None:
    """The audio, DiffSinger and GPT-SoVITS fixes: drop the flagged ``drop`` clips, enable two predictions,
    fp16_run off and the NaN checkpoints moved out (so s2_train.py resumes from the clean pair)."""
    dest = Path(dest)
    for name in drop:
        (dest / "audio" / name).unlink()
    text = (dest / "diffsinger" / "my_variance.yaml").read_text(encoding="utf-8")
    text = text.replace("predict_dur: false", "predict_dur: true").replace("predict_pitch: false", "predict_pitch: true")
    atomic_write_text(dest / "diffsinger" / "my_variance.yaml", text)
    exp = dest / "gpt_sovits" / "logs" / "my_voice"
    atomic_write_json(exp / "config.json", _s2_config(exp, fp16=False))
    (exp / "moved_out").mkdir(exist_ok=True)
    for part in "GD":
        (exp / "logs_s2_v2" / f"{part}_200.pth").rename(exp / "moved_out" / f"{part}_200.pth.nan")


def fix_project(dest: str | Path, drop: list[str], device: str = "cpu") -> list[tuple[str, str]]:
    """Apply each fix the doctor named (:func:`fix_project_files`, then the Coqui run again with per-step
    thresholds, features extracted again on ``device`` in float32, the Dia recipe); returns
    ``[(what, how), ...]`` for the table."""
    dest = Path(dest)
    fix_project_files(dest, drop)
    make_coqui(dest / "coqui", after_epoch=False)
    applio = dest / "applio"
    embedders = applio / "rvc" / "models" / "embedders" / "contentvec"
    (embedders / "pytorch_model (1).bin").unlink()
    extract(str(device), applio / "logs" / "my_model", embedders, False)
    generate_filelist(applio / "logs" / "my_model", applio / "logs" / "mute")
    make_dia(dest / "dia_train.yaml", optimizer="adamw8bit", checkpointing=True)
    return [("audio", f"dropped {', '.join(drop)}"),
            ("DiffSinger", "predict_dur and predict_pitch true in my_variance.yaml"),
            ("GPT-SoVITS", "fp16_run false; G_200/D_200 (NaN) moved out, so s2_train.py resumes from G_100/D_100"),
            ("Coqui", "StepwiseGradualLR stepped per optimizer step, thresholds in steps; run again"),
            ("Applio", "duplicate embedder deleted; features extracted again (float32); file list rewritten"),
            ("Dia", "8-bit AdamW and gradient checkpointing")]
