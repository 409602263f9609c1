"""``tts-nb dia-plan`` and ``tts-nb dia-train`` (notebook 05): the Dia memory planner and the training loop."""

from __future__ import annotations

import argparse
import os
import sys

from ..errors import UsageError
from ._common import check_outputs, nonnegative_float, positive_float, positive_int, seed


def _cmd_plan(args: argparse.Namespace) -> int:
    from ..dia.codec import FRAMES_PER_SECOND
    from ..dia.delay import decoder_length
    from ..dia.memory import BF16_TRUE_NOTE, MARGIN, MemoryConfigError, estimate, format_memory_plan, plan
    from ..dia.model import DiaConfig

    if args.gpu_gib <= args.reserve_gib:
        raise UsageError(f"--gpu-gib {args.gpu_gib} leaves nothing after --reserve-gib {args.reserve_gib}")
    config = getattr(DiaConfig, args.preset)()
    audio_len = decoder_length(round(args.audio_seconds * FRAMES_PER_SECOND))
    if audio_len > config.max_audio_len:
        print(f"warning: {args.audio_seconds:g} s of audio make {audio_len} decoder rows, more than Dia's "
              f"{config.max_audio_len} (max_position_embeddings, about "
              f"{(config.max_audio_len - 16) / FRAMES_PER_SECOND:.0f} s): cut the clips; planned anyway",
              file=sys.stderr)
    precisions = ("bf16-mixed", "bf16-true") if args.bf16_true else ("bf16-mixed",)
    try:
        rows = plan(args.gpu_gib, config, args.text_len, audio_len, args.reserve_gib, precisions=precisions)
    except MemoryConfigError as e:
        raise UsageError(str(e)) from None
    print(f"{args.preset}: {estimate(config, 1, 1, 1).params:,} parameters; {args.gpu_gib:g} GiB card "
          f"({args.reserve_gib:g} reserved, {MARGIN:.0%} margin)")
    print(f"text {args.text_len} bytes, audio {args.audio_seconds:g} s = {audio_len} decoder rows")
    if args.bf16_true:
        print(f"note: {BF16_TRUE_NOTE}")
    shown = rows if args.all else [r for r in rows if r.fits]
    print(format_memory_plan(shown) if shown else "nothing fits; --all shows every setting and how far over it is")
    return 0 if any(r.fits for r in rows) else 1


def _load_init(args: argparse.Namespace):
    """The model of ``--init`` (a file or folder in any official layout) and ``--init-config`` (default: the
    config.json beside it); any failure to read them is a usage error naming both."""
    from ..dia.checkpoint import DiaCheckpointError, dia_version, load_dia_checkpoint
    from ..io import not_a_file

    why_init = not_a_file(args.init)
    if why_init and not os.path.isdir(args.init):
        raise UsageError(f"--init {args.init} {why_init}")
    if args.init_config is not None and not_a_file(args.init_config):
        raise UsageError(f"--init-config {args.init_config} {not_a_file(args.init_config)}")
    try:
        ours = dia_version(args.init, args.init_config) == "v0.1"
        return load_dia_checkpoint(args.init, args.init_config, grad_checkpointing=args.grad_checkpointing,
                                   implementation="tts-nb" if ours else "transformers")
    except DiaCheckpointError:
        raise
    except Exception as e:  # noqa: BLE001 - torch, safetensors and json each raise their own types for a bad file
        why = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
        raise UsageError(f"--init {args.init} with --init-config {args.init_config} cannot be read as Dia weights "
                         f"and their config.json ({why}); pass the folder or file of an official Dia release "
                         "(transformers shards, pytorch_model.bin, dia-v1.pth, dia-v0_1.pth) and its config.json") from None


def _precision(text: str) -> str:
    """``type=`` for --precision: auto, a Lightning precision name or an alias (fp32, fp16, bf16)."""
    from ..device import canonical_precision

    if text.strip().lower() == "auto":
        return "auto"
    try:
        return canonical_precision(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _cmd_train(args: argparse.Namespace) -> int:
    import torch
    import torch.distributed as dist

    from ..dia.checkpoint import DiaCheckpointError
    from ..dia.codec import demo_corpus
    from ..dia.data import DiaDataset
    from ..dia.hf import transformers_model
    from ..dia.model import DiaConfig
    from ..dia.train import TrainConfig, TrainConfigError, _world, train

    check_outputs([p for p in (args.init, args.init_config) if p], checkpoint=args.checkpoint)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    device = "cpu"
    if world > 1:
        cuda = torch.cuda.is_available()
        dist.init_process_group("nccl" if cuda else "gloo")
        if cuda:
            device = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
            torch.cuda.set_device(device)
    elif torch.cuda.is_available():
        device = "cuda"
    torch.manual_seed(args.seed)
    try:
        if args.init:  # any official layout; v0.1 (cross-attention RoPE) only in this package's model
            model = _load_init(args)
        else:
            model = transformers_model(getattr(DiaConfig, args.preset)(), grad_checkpointing=args.grad_checkpointing)
        cfg = TrainConfig(steps=args.steps, micro_batch_size=args.micro_batch_size, grad_accum=args.grad_accum,
                          lr=args.lr, precision=args.precision, seed=args.seed, optimizer=args.optimizer,
                          freeze_encoder=args.freeze_encoder, lora_rank=args.lora_rank)
        result = train(model, DiaDataset(demo_corpus(args.items, seed=args.seed)), cfg, device, args.checkpoint)
    except (DiaCheckpointError, TrainConfigError) as e:
        raise UsageError(str(e)) from None
    if _world()[0] == 0:
        print(f"world {result.world_size} | precision {result.precision} | loss {result.losses[0]:.3f} -> "
              f"{result.losses[-1]:.3f} | {result.frames_per_second:.0f} frames/s")
    if world > 1:
        dist.destroy_process_group()
    return 0


def register_cli(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "dia-plan",
        help="which Dia training settings fit on a GPU (memory planner of notebook 05)",
        description="Estimate peak training memory of Dia for bf16-mixed training with AdamW or 8-bit AdamW, "
        "with or without gradient checkpointing, a frozen encoder and LoRA; print the settings that fit with a "
        "10 %% margin, with the largest batch and audio length and why. Exit 1 when nothing fits.",
    )
    p.add_argument("--gpu-gib", type=positive_float, default=24.0, help="GPU memory in GiB (default 24)")
    p.add_argument("--reserve-gib", type=nonnegative_float, default=1.5, help="kept free for CUDA context (default 1.5)")
    p.add_argument("--preset", default="dia_1_6b", choices=["dia_1_6b", "small", "tiny"])
    p.add_argument("--text-len", type=positive_int, default=256, help="text bytes per item (default 256)")
    p.add_argument("--audio-seconds", type=positive_float, default=10.0, help="audio per item in seconds (default 10)")
    p.add_argument("--all", action="store_true", help="also list the settings that do not fit or fit without margin")
    p.add_argument("--bf16-true", action="store_true",
                   help="also plan bf16-true (bfloat16 weights without a float32 copy: small updates are lost)")
    p.set_defaults(func=_cmd_plan)

    t = sub.add_parser(
        "dia-train",
        help="train a small Dia preset on synthetic demo codes (one process, or DDP under torchrun)",
        description="Train transformers' DiaForConditionalGeneration (a preset, or --init weights) on synthetic "
        "demo codes with the notebook 05 training loop. Under "
        "`torchrun --nproc_per_node N -m tts_nb_utils.cli dia-train` each process trains one shard (DDP).",
    )
    t.add_argument("--preset", default="tiny", choices=["tiny", "small"])
    t.add_argument("--steps", type=positive_int, default=20)
    t.add_argument("--micro-batch-size", type=positive_int, default=2)
    t.add_argument("--grad-accum", type=positive_int, default=1)
    t.add_argument("--lr", type=positive_float, default=2e-3,
                   help="peak LR (default 2e-3 for a preset from scratch; use about 1e-5 with --init)")
    t.add_argument("--precision", type=_precision, default="auto",
                   help="auto (default), 32-true, 16-mixed, bf16-mixed or bf16-true; aliases fp32, fp16, bf16")
    t.add_argument("--optimizer", default="adamw", choices=["adamw", "adamw8bit"],
                   help="adamw (torch) or adamw8bit (bitsandbytes, the dia extra)")
    t.add_argument("--freeze-encoder", action="store_true", help="train the decoder only")
    t.add_argument("--lora-rank", type=positive_int, default=None, help="train rank-r LoRA adapters only (peft)")
    t.add_argument("--grad-checkpointing", action="store_true", help="recompute each layer in the backward pass")
    t.add_argument("--init", default=None,
                   help="start from Dia weights instead of the preset: a folder or file in any official layout "
                   "(transformers shards, pytorch_model.bin, dia-v1.pth, dia-v0_1.pth, model.safetensors)")
    t.add_argument("--init-config", default=None, help="the config.json of --init (default: the one beside it)")
    t.add_argument("--items", type=positive_int, default=8)
    t.add_argument("--checkpoint", default=None)
    t.add_argument("--seed", type=seed, default=0)
    t.set_defaults(func=_cmd_train)
