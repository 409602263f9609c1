"""Measure the peak memory of real Dia training steps, to check the planner (``tts_nb_utils.dia.memory``).

``measure_peak`` runs :func:`tts_nb_utils.dia.train.train` for two optimizer steps of two accumulated
micro-batches on items of exactly the planned lengths, and returns the peak bytes above what was in use
before the model was built. That is the moment the planner describes: the second micro-batch's backward pass
starts while the first one's gradients and the optimizer states exist. On CUDA the figure is
``torch.cuda.max_memory_allocated``; on a Linux CPU it is glibc's bytes in use (``mallinfo2``: heap plus
mmapped blocks), sampled after every aten operation (a ``TorchDispatchMode``), which also sees the backward
pass. Used by notebook 05 and ``benchmarks/bench_dia.py``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from dataclasses import dataclass

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from ..device import resolve_device
from .data import DiaDataset
from .memory import estimate
from .model import DiaConfig, DiaModel
from .train import TrainConfig, train


class _MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                "fsmblks", "uordblks", "fordblks", "keepcost")]


def _cpu_bytes_in_use():
    """A function returning glibc's bytes in use, or None where ``mallinfo2`` is missing (not glibc >= 2.33)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        fn = libc.mallinfo2
    except (OSError, AttributeError):
        return None
    fn.restype = _MallInfo2

    def in_use() -> int:
        m = fn()
        return m.uordblks + m.hblkhd
    return in_use


class _PeakCPU(TorchDispatchMode):
    """Samples the bytes in use after every aten operation (forward, backward and optimizer)."""

    def __init__(self, in_use):
        super().__init__()
        self.in_use, self.peak = in_use, in_use()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        self.peak = max(self.peak, self.in_use())
        return out


@dataclass
class PeakCheck:
    """Measured peak and the planner's estimate for one setting, in bytes; ``ratio`` = planned / measured."""

    measured_bytes: int
    planned_bytes: int
    settings: dict

    @property
    def ratio(self) -> float:
        return self.planned_bytes / self.measured_bytes


def _items(batch: int, text_len: int, audio_len: int, delays) -> list[tuple[str, torch.Tensor]]:
    frames = audio_len - max(delays) - 1  # decoder rows = frames + max_delay + 1 (delay.decoder_length)
    if frames < 1:
        raise ValueError(f"audio_len={audio_len} is shorter than one frame plus the delays ({max(delays) + 2} rows)")
    g = torch.Generator().manual_seed(0)
    return [("x" * text_len, torch.randint(0, 1024, (frames, len(delays)), generator=g)) for _ in range(batch)]


def measure_peak(config: DiaConfig, batch_size: int, text_len: int, audio_len: int, precision: str = "32-true",
                 optimizer: str = "adamw", grad_checkpointing: bool = False, freeze_encoder: bool = False,
                 lora_rank: int | None = None, device: str | torch.device = "cpu",
                 implementation: str = "tts-nb") -> PeakCheck:
    """Peak bytes of two training steps of ``batch_size`` items (2 accumulated micro-batches each) of
    ``text_len`` bytes and ``audio_len`` decoder rows, next to ``memory.estimate`` for the same setting.
    ``implementation``: this package's ``DiaModel`` (``"tts-nb"``) or transformers' (``"transformers"``)."""
    dev = resolve_device(device)
    dataset = DiaDataset(_items(2 * batch_size, text_len, audio_len, config.delay_pattern),
                         config.delay_pattern, max_text_len=text_len, max_audio_len=audio_len)
    cfg = TrainConfig(steps=2, micro_batch_size=batch_size, grad_accum=2, lr=1e-4, precision=precision,
                      optimizer=optimizer, freeze_encoder=freeze_encoder, lora_rank=lora_rank, text_dropout=0.0,
                      progress=False)
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
        torch.cuda.reset_peak_memory_stats(dev)
        base = torch.cuda.memory_allocated(dev)
        result = train(_model(config, grad_checkpointing, implementation), dataset, cfg, dev)
        torch.cuda.synchronize(dev)
        peak = torch.cuda.max_memory_allocated(dev) - base
    else:
        in_use = _cpu_bytes_in_use()
        if in_use is None:
            raise RuntimeError("measuring CPU memory needs glibc's mallinfo2 (Linux, glibc >= 2.33); use a GPU")
        base = in_use()
        with _PeakCPU(in_use) as mode:
            result = train(_model(config, grad_checkpointing, implementation), dataset, cfg, dev)
        peak = mode.peak - base
    kw = dict(precision=result.precision, optimizer=optimizer, grad_checkpointing=grad_checkpointing,
              freeze_encoder=freeze_encoder, lora_rank=lora_rank)
    est = estimate(config, batch_size, text_len, audio_len, **kw)
    return PeakCheck(peak, est.total_bytes, est.settings | {"device": str(dev)})


def _model(config: DiaConfig, grad_checkpointing: bool, implementation: str) -> torch.nn.Module:
    if implementation == "transformers":
        from .hf import transformers_model

        return transformers_model(config, grad_checkpointing=grad_checkpointing)
    if implementation != "tts-nb":
        raise ValueError(f"implementation={implementation!r}: use 'tts-nb' or 'transformers'")
    return DiaModel(config, grad_checkpointing)
