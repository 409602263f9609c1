"""The doctor's Dia training-config check (notebook 08; notebook 05 explains the memory plan).

nari-labs/dia ships no training config (its ``config.json`` describes the model only), so this project reads
its own small format, a JSON or YAML file with one ``dia_train`` mapping; the keys are
:class:`~tts_nb_utils.dia.train.TrainConfig`'s and :func:`~tts_nb_utils.dia.memory.estimate`'s names::

    dia_train:
      model: dia_1_6b          # a preset (dia_1_6b, small, tiny) or the path of upstream's config.json
      micro_batch_size: 2
      grad_accum: 1
      precision: bf16-mixed    # auto, 32-true, 16-mixed, bf16-mixed, bf16-true (aliases fp32, fp16, bf16)
      optimizer: adamw         # adamw, adamw8bit, sgd
      grad_checkpointing: false
      freeze_encoder: false
      lora_rank: null
      text_len: 256            # bytes
      audio_seconds: 10
      gpu_gib: 24              # the card; tts-nb doctor --gpu-gib overrides it

The estimate is compared with the card less :data:`RESERVE_GIB`; a config that does not fit is an error, one
that fits only without the planner's margin (:data:`~tts_nb_utils.dia.memory.MARGIN`) a warning; the fix is the
fitting row of :func:`~tts_nb_utils.dia.memory.plan` that changes the fewest settings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..io import read_mapping
from .report import Target

RESERVE_GIB = 1.5  # CUDA context and fragmentation, as tts-nb dia-plan keeps free
DEFAULTS: dict[str, Any] = {
    "model": "dia_1_6b", "micro_batch_size": 2, "grad_accum": 1, "precision": "bf16-mixed", "optimizer": "adamw",
    "grad_checkpointing": False, "freeze_encoder": False, "lora_rank": None, "text_len": 256,
    "audio_seconds": 10.0, "gpu_gib": 24.0,
}
#: TrainConfig keys that do not change the memory plan (accepted, not used here).
OTHER_KEYS = frozenset({"steps", "lr", "warmup_steps", "min_lr_ratio", "weight_decay", "betas", "clip_norm",
                        "lora_alpha", "channel_weights", "text_dropout", "seed", "checkpoint_every", "progress"})
_SETTINGS = ("precision", "optimizer", "grad_checkpointing", "freeze_encoder", "lora_rank")


def read_dia_config(path: Path, gpu_gib: float | None = None) -> tuple[dict[str, Any], list[str]]:
    """The settings (defaults filled in, ``gpu_gib`` overriding the file's) and the unknown keys."""
    raw = (read_mapping(path) or {}).get("dia_train") or {}
    unknown = sorted(set(raw) - set(DEFAULTS) - OTHER_KEYS)
    settings = {**DEFAULTS, **{k: v for k, v in raw.items() if k in DEFAULTS}}
    if gpu_gib is not None:
        settings["gpu_gib"] = gpu_gib
    return settings, unknown


def _model(spec: str, base: Path):
    from ..dia.checkpoint import read_upstream_config
    from ..dia.model import DiaConfig

    if spec in ("dia_1_6b", "small", "tiny"):
        return getattr(DiaConfig, spec)()
    return read_upstream_config(base / spec)[0]


def check_dia(target: Target, gpu_gib: float | None = None) -> None:
    """Estimate the peak memory of the configured step and compare it with the card."""
    from ..dia.codec import FRAMES_PER_SECOND
    from ..dia.delay import decoder_length
    from ..dia.memory import GIB, MARGIN, MemoryConfigError, estimate, fit_verdict

    s, unknown = read_dia_config(target.path, gpu_gib)
    for key in unknown:
        target.add("warning", f"unknown key {key}: not a TrainConfig or memory-plan setting", f"{target.path.name}"
                   f"#dia_train.{key}", f"one of {', '.join(sorted(DEFAULTS))}")
    precision = "bf16-mixed" if s["precision"] == "auto" else s["precision"]
    try:
        config = _model(str(s["model"]), target.path.parent)
        audio_len = decoder_length(round(float(s["audio_seconds"]) * FRAMES_PER_SECOND))
        est = estimate(config, int(s["micro_batch_size"]), int(s["text_len"]), audio_len, precision, s["optimizer"],
                       bool(s["grad_checkpointing"]), bool(s["freeze_encoder"]), s["lora_rank"] or None)
    except (MemoryConfigError, ValueError, TypeError, OSError) as e:
        target.add("error", f"the memory plan cannot read these settings: {e}", f"{target.path.name}#dia_train",
                   "fix the value named")
        return
    budget = float(s["gpu_gib"]) - RESERVE_GIB
    target.notes.append(f"{s['model']}: {est.params:,} parameters, micro-batch {s['micro_batch_size']}, "
                        f"{s['audio_seconds']} s audio, {precision}, {s['optimizer']}: {est.total_gib:.1f} GiB "
                        f"planned for a {s['gpu_gib']:g} GiB card ({RESERVE_GIB} GiB kept free)")
    verdict = fit_verdict(est.total_bytes, budget * GIB)
    if verdict == "no":
        target.add("error", f"needs {est.total_gib:.1f} GiB, the card has {budget:.1f} GiB to give: out of memory "
                   "at the first step", f"{target.path.name}#dia_train",
                   _fitting(config, s, est.settings["precision"], audio_len), "05_dia_training_on_a_3090.ipynb")
    elif verdict == "tight":
        target.add("warning", f"needs {est.total_gib:.1f} GiB of the {budget:.1f} GiB the card has to give: less than "
                   f"the {MARGIN:.0%} margin for allocator fragmentation and library workspaces",
                   f"{target.path.name}#dia_train", _fitting(config, s, est.settings["precision"], audio_len),
                   "05_dia_training_on_a_3090.ipynb")


def _fitting(config, s: dict[str, Any], precision: str, audio_len: int) -> str:
    from ..dia.memory import plan

    rows = [r for r in plan(float(s["gpu_gib"]), config, int(s["text_len"]), audio_len, RESERVE_GIB)
            if r.fits and r.max_batch >= int(s["micro_batch_size"])]
    if not rows:
        return "nothing fits this card at this batch and length: shorter audio, micro_batch_size 1, or a larger card"
    mine = {"precision": precision, **{k: s[k] for k in _SETTINGS[1:]}}
    best = min(rows, key=lambda r: (sum(getattr(r, k) != mine[k] for k in _SETTINGS), -r.max_batch))
    changes = [f"{k}: {getattr(best, k)}" for k in _SETTINGS if getattr(best, k) != mine[k]]
    return f"{', '.join(changes)} (fits micro-batch {best.max_batch} at {best.gib_at_max_batch:.1f} GiB)"
