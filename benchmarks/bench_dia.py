"""Training throughput of the Dia tiny preset (frames/s), and the memory planner against measured peaks
(tts_nb_utils.dia.memcheck): on the CPU always, on a GPU (max_memory_allocated) when CUDA is present.
Run: .venv/bin/python benchmarks/bench_dia.py"""

from __future__ import annotations

import torch

from tts_nb_utils.dia.codec import demo_corpus
from tts_nb_utils.dia.data import DiaDataset
from tts_nb_utils.dia.memcheck import measure_peak
from tts_nb_utils.dia.memory import GIB, estimate
from tts_nb_utils.dia.model import DiaConfig, DiaModel
from tts_nb_utils.dia.train import TrainConfig, train

STEPS, BATCH = 20, 4


def run(preset: str, device: str, precision: str, ckpt: bool = False):
    torch.manual_seed(0)
    config = getattr(DiaConfig, preset)()
    ds = DiaDataset(demo_corpus(8, seconds=2.0))
    model = DiaModel(config, grad_checkpointing=ckpt)
    cfg = TrainConfig(steps=2, micro_batch_size=BATCH, precision=precision, progress=False)
    train(model, ds, cfg, device)  # warm-up (kernels, allocator)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    cfg = TrainConfig(steps=STEPS, micro_batch_size=BATCH, precision=precision, progress=False)
    result = train(DiaModel(config, grad_checkpointing=ckpt), ds, cfg, device)
    line = f"{preset:>5} {device:>5} {result.precision:>10} ckpt={ckpt!s:<5}: {result.frames_per_second:8.0f} frames/s"
    if device.startswith("cuda"):
        peak = torch.cuda.max_memory_allocated()
        text_len = max(len(e.text) for e in ds.examples)
        rows = max(len(e.seq) - 1 for e in ds.examples)
        est = estimate(config, BATCH, text_len, rows, precision=result.precision, grad_checkpointing=ckpt)
        line += f" | peak {peak / GIB:.3f} GiB, planner {est.total_gib:.3f} GiB, ratio {est.total_bytes / peak:.2f}"
    print(line, flush=True)
    return result


PEAK_SETTINGS = (dict(precision="32-true"), dict(precision="32-true", grad_checkpointing=True),
                 dict(precision="bf16-mixed"), dict(precision="bf16-mixed", grad_checkpointing=True),
                 dict(precision="bf16-true"), dict(optimizer="adamw8bit", grad_checkpointing=True, freeze_encoder=True),
                 dict(lora_rank=8, grad_checkpointing=True))


def peak_ratios(device: str) -> None:
    """Planned / measured peak for the tiny and small presets (2 steps of 2 accumulated micro-batches)."""
    for preset, sizes in (("tiny", (4, 64, 300)), ("small", (2, 128, 400))):
        for kw in PEAK_SETTINGS:
            c = measure_peak(getattr(DiaConfig, preset)(), *sizes, device=device, **kw)
            print(f"{preset:>5} {device:>4} B,S,T={sizes} {kw}: measured {c.measured_bytes / 2**20:7.1f} MiB, "
                  f"planned {c.planned_bytes / 2**20:7.1f} MiB, planned/measured {c.ratio:.2f}", flush=True)


if __name__ == "__main__":
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {STEPS} steps of batch {BATCH}, 8 demo "
          "utterances of ~2 s (synthetic codes)")
    run("tiny", "cpu", "fp32")
    run("tiny", "cpu", "bf16")
    peak_ratios("cpu")
    if torch.cuda.is_available():
        peak_ratios("cuda")
        for preset in ("tiny", "small"):
            for ckpt in (False, True):
                run(preset, "cuda", "bf16", ckpt)
    else:
        print("no CUDA GPU here: skipping the bf16 GPU throughput and the measured-vs-planned memory check")
