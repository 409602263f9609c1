"""What the Coqui trainer (``coqui-tts-trainer``) does with a learning-rate schedule, and what it logged (notebook 04).

- :func:`read_coqui_lr_log`: the ``(GLOBAL_STEP, current_lr)`` pairs of a run's ``trainer_0_log.txt``;
- :func:`coqui_steps_optimizer`, :func:`coqui_update_batches`, :func:`coqui_optimizer_steps_per_epoch`: which batches of an epoch update the
  weights under gradient accumulation (the trainer's own rule, ``trainer/trainer.py:943-945`` at v0.4.0);
- :func:`coqui_tts_run_size`: batches and optimizer steps of a coqui-tts run on N clips (the XTTS recipe's);
- :func:`coqui_epoch_stepping`: whether a trainer version steps a per-epoch scheduler at all
  (``scheduler_after_epoch=True``), from the trainer's git history, each version checked by running it.

Used by ``schedules.plan`` (``tts-nb lr-plan``) and ``monitors.coqui``. Nothing here imports the trainer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from ..io import strip_ansi


def read_log_text(path: Path) -> str:
    """A Coqui trainer log without its terminal colour codes (the file keeps the console's ANSI escapes)."""
    return strip_ansi(path.read_text(encoding="utf-8", errors="replace"))


_GLOBAL = re.compile(r"GLOBAL_STEP:\s*(\d+)")
_LR = re.compile(r"\|\s*>\s*(current_lr(?:_\d+)?):\s*([-+0-9.eE]+)")

#: The repository whose tags the version rules below were checked at.
TRAINER_REPO = "idiap/coqui-ai-Trainer"


def read_coqui_lr_log(path: str | Path, key: str = "current_lr") -> list[tuple[int, float]]:
    """``[(global_step, lr), ...]`` from a Coqui trainer log (``trainer_0_log.txt`` in the run folder).

    The trainer prints ``GLOBAL_STEP: N`` and ``| > current_lr: V`` every ``print_step`` batches, the LR as it
    was before that batch. ``GLOBAL_STEP`` counts batches, not optimizer steps (they differ under gradient
    accumulation). Use ``key="current_lr_1"`` for a second optimizer. Raises FileNotFoundError naming the
    file; returns [] when the log has no such lines.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Coqui trainer log {path} not found: it is trainer_0_log.txt in the run folder")
    out: list[tuple[int, float]] = []
    step: int | None = None
    for line in read_log_text(path).splitlines():
        if (m := _GLOBAL.search(line)) is not None:
            step = int(m.group(1))
        elif step is not None and (m := _LR.search(line)) is not None and m.group(1) == key:
            out.append((step, float(m.group(2))))
            step = None
    return out


_SKIPPED = "Skipping training step"


def read_coqui_skips(path: str | Path) -> dict[int, int]:
    """For each ``GLOBAL_STEP`` printed in a Coqui trainer log, how many earlier batches the trainer skipped.

    A model whose ``train_step()`` returns no outputs (GlowTTS during its data-dependent initialisation) makes
    the trainer log `` [!] `train_step()` retuned `None` outputs. Skipping training step.`` after that batch
    (``trainer/trainer.py:1070-1074`` at v0.4.0): such a batch steps neither the optimizer nor a per-step
    scheduler, yet ``GLOBAL_STEP`` still counts it. Empty when nothing was skipped."""
    out: dict[int, int] = {}
    skipped = 0
    for line in read_log_text(Path(path)).splitlines():
        if (m := _GLOBAL.search(line)) is not None:
            out[int(m.group(1))] = skipped
        elif _SKIPPED in line:
            skipped += 1
    return out if skipped else {}


# ---------------------------------------------------------------------------------- gradient accumulation


def coqui_steps_optimizer(batch: int, batches_per_epoch: int, grad_accum: int) -> bool:
    """Whether the Coqui trainer steps the optimizer after 0-based batch ``batch`` of an epoch.

    Its rule (``train_step``, ``trainer/trainer.py:943-945`` at v0.4.0, the same since v0.0.x): step when
    ``(batch + 1) % grad_accum_steps == 0`` or on the epoch's last batch, so an epoch whose batch count is not
    a multiple of ``grad_accum`` ends with one smaller group.
    """
    return (batch + 1) % grad_accum == 0 or batch + 1 == batches_per_epoch


def coqui_update_batches(batches_per_epoch: int, grad_accum: int) -> list[int]:
    """The 0-based batch indices of one epoch after which the Coqui trainer steps the optimizer
    (:func:`coqui_steps_optimizer`). E.g. 10 batches, accumulation 3: ``[2, 5, 8, 9]``."""
    if batches_per_epoch < 1 or grad_accum < 1:
        raise ValueError(f"batches_per_epoch ({batches_per_epoch}) and grad_accum ({grad_accum}) must be at least 1")
    return [b for b in range(batches_per_epoch) if coqui_steps_optimizer(b, batches_per_epoch, grad_accum)]


def coqui_optimizer_steps_per_epoch(batches_per_epoch: int, grad_accum: int) -> int:
    """Optimizer steps per epoch under the Coqui trainer's accumulation rule: ``ceil(batches / grad_accum)``."""
    return len(coqui_update_batches(batches_per_epoch, grad_accum))


def coqui_optimizer_step_of_batch(global_batch: int, batches_per_epoch: int, grad_accum: int) -> int:
    """The 0-based optimizer step whose accumulation group holds batch ``global_batch`` (the log's
    ``GLOBAL_STEP``): the step whose LR that batch logs (:func:`coqui_steps_optimizer`'s groups)."""
    epoch, batch = divmod(global_batch, batches_per_epoch)
    return epoch * -(-batches_per_epoch // grad_accum) + batch // grad_accum


def coqui_first_batches(batches_per_epoch: int, grad_accum: int, epochs: int) -> list[int]:
    """For each optimizer step of the run (0-based), the global batch index (Coqui's ``GLOBAL_STEP``) of the
    first batch of its accumulation group: where the LR that step uses first appears in the trainer's log."""
    ends = coqui_update_batches(batches_per_epoch, grad_accum)
    starts = [0] + [e + 1 for e in ends[:-1]]
    return [epoch * batches_per_epoch + s for epoch in range(epochs) for s in starts]


@dataclass(frozen=True)
class RunSize:
    """How many batches and optimizer steps a coqui-tts training run has (see :func:`coqui_tts_run_size`)."""

    train_clips: int
    batches_per_epoch: int
    steps_per_epoch: int
    total_steps: int


def coqui_tts_run_size(clips: int, batch_size: int, grad_accum: int, epochs: int,
                       eval_split_max_size: int | None = 256, eval_split_size: float = 0.01) -> RunSize:
    """The optimizer steps of a coqui-tts run on ``clips`` clips: ``load_tts_samples``' eval split (coqui-tts
    ``TTS/tts/datasets/__init__.py:33-39`` at v0.27.2: ``min(eval_split_max_size, int(clips * eval_split_size))``
    clips held out), ``drop_last=False`` batches, then the trainer's accumulation groups. Exact for XTTS too:
    its training ``XTTSDataset`` counts every sample (``__len__``, ``TTS/tts/layers/xtts/trainer/dataset.py:202-205``
    at v0.27.2) and serves another one in place of an over-long or unreadable clip (lines 150-184); only the
    eval samples are filtered (81-98)."""
    if eval_split_size > 1:
        held_out = int(eval_split_size)
    else:
        held_out = int(clips * eval_split_size)
        held_out = min(eval_split_max_size, held_out) if eval_split_max_size else held_out
    train = clips - held_out
    if held_out < 1 or train < 1:
        raise ValueError(f"{clips} clips: the eval split holds out {held_out}, leaving {train} to train on; "
                         "coqui-tts needs at least one of each (raise eval_split_size or add clips)")
    batches = -(-train // batch_size)
    steps = coqui_optimizer_steps_per_epoch(batches, grad_accum)
    return RunSize(train, batches, steps, steps * epochs)


# ------------------------------------------------------------------------------------ per-epoch stepping

#: coqui-tts releases and the coqui-tts-trainer range each requires (``Requires-Dist`` in each wheel's METADATA,
#: read from the wheels on PyPI), with the newest trainer release in that range.
COQUI_TTS_TRAINER_PINS = {
    "0.26.0": (">=0.2.0,<0.3.0", "0.2.3"),
    "0.27.0": (">=0.3.0,<0.4.0", "0.3.3"),
    "0.27.2": (">=0.3.0,<0.4.0", "0.3.3"),
    "0.28.0": (">=0.4.0,<0.5.0", "0.4.0"),
}

#: GlowTTSConfig's optimiser defaults in coqui-tts 0.28.0 (``TTS/tts/configs/glow_tts_config.py:148-151`` in the
#: wheel; FastPitch, FastSpeech, FastSpeech2, SpeedySpeech and Tacotron share the NoamLR warm-up with their own
#: ``lr``); ``scheduler_after_epoch`` is left at TrainerConfig's True (``trainer/config.py:186-189`` at 0.4.0).
GLOWTTS_DEFAULTS = {"lr": 1e-3, "lr_scheduler": "NoamLR", "lr_scheduler_params": {"warmup_steps": 4000}}


@dataclass(frozen=True)
class EpochStepping:
    """Whether a trainer version steps a per-epoch scheduler (``None``: a version newer than those checked)."""

    version: str
    steps: bool | None
    reason: str


def installed_trainer_version() -> str | None:
    """The installed ``coqui-tts-trainer`` version (read from package metadata, without importing it)."""
    try:
        return metadata.version("coqui-tts-trainer")
    except metadata.PackageNotFoundError:
        return None


def _version_tuple(version: str) -> tuple[int, ...]:
    parts = re.findall(r"\d+", version.split("+")[0])[:3]
    if not parts:
        raise ValueError(f"trainer version {version!r} is not a version number such as 0.4.0")
    return tuple(int(p) for p in parts) + (0,) * (3 - len(parts))


#: Checked at the tags of idiap/coqui-ai-Trainer (notebook 04's probe run on each tag's ``trainer/``).
_GATED_SINCE = (0, 3, 1)  # 98df25a: step a scheduler only if its optimizer was recorded as stepped
_LISTS_SINCE = (0, 4, 0)  # 6c603fe: optimizers always a list; a single one is recorded as None, looked up as 0
_LAST_CHECKED = (0, 4, 0)


def coqui_epoch_stepping(version: str, optimizers: int = 1, model_optimize: bool = False) -> EpochStepping:
    """Does coqui-tts-trainer ``version`` step a per-epoch scheduler (``scheduler_after_epoch=True``)?

    ``optimizers``: how many the model uses; ``model_optimize``: the model implements its own ``optimize()``.
    Rules from the trainer's history: up to v0.3.0 every scheduler is stepped at each epoch's end; v0.3.1
    (98df25a) steps only those whose optimizer ``Trainer.optimize()`` recorded as stepped, so a model with its
    own ``optimize()`` never gets its per-epoch scheduler stepped; v0.4.0 (6c603fe) records a single optimizer
    as index ``None`` (``trainer.py:949-957``, default ``optimizer_idx=None`` at 782) but looks for index 0 at
    the epoch's end (1091-1094), so a single optimizer's per-epoch scheduler is never stepped.
    """
    v = _version_tuple(version)
    if model_optimize and v >= _GATED_SINCE:
        return EpochStepping(version, False, f"coqui-tts-trainer {version} never steps the per-epoch scheduler of "
                             "a model with its own optimize() (only Trainer.optimize() records a stepped optimizer)")
    if optimizers == 1 and v >= _LISTS_SINCE and v <= _LAST_CHECKED:
        return EpochStepping(version, False, f"coqui-tts-trainer {version} never steps a single optimizer's "
                             "per-epoch scheduler (the optimizer is recorded as index None, looked up as 0)")
    if v > _LAST_CHECKED:
        return EpochStepping(version, None, f"coqui-tts-trainer {version} is newer than the versions checked (up "
                             "to 0.4.0, which never steps a single optimizer's per-epoch scheduler): verify with "
                             "an LR watch or notebook 04's probe")
    return EpochStepping(version, True, f"coqui-tts-trainer {version} steps the scheduler once after each epoch")


def coqui_stepping_table() -> str:
    """Markdown: each coqui-tts release of :data:`COQUI_TTS_TRAINER_PINS`, the trainer range it requires, and
    whether that range's newest trainer steps a per-epoch scheduler (one optimizer, two, own ``optimize()``)."""
    cases = (("one optimizer", 1, False), ("two optimizers", 2, False), ("own `optimize()`", 1, True))
    rows = ["| coqui-tts | requires trainer | newest | " + " | ".join(c[0] for c in cases) + " |",
            "|---" * (3 + len(cases)) + "|"]
    for tts, (spec, newest) in COQUI_TTS_TRAINER_PINS.items():
        cells = ["steps" if coqui_epoch_stepping(newest, k, own).steps else "**never**" for _, k, own in cases]
        rows.append(f"| {tts} | `{spec}` | {newest} | " + " | ".join(cells) + " |")
    return "\n".join(rows)
