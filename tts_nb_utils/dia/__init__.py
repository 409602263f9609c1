"""Dia (nari-labs/dia) training on a 24 GB card: the delay pattern, a Dia-architecture model, data and loss,
a memory planner and a training loop. Notebook 05 (``05_dia_training_on_a_3090.ipynb``) walks through them.

Modules: ``delay`` (delay pattern), ``model`` (DiaConfig, DiaModel), ``data`` (dataset, collate, masks),
``loss`` (per-channel weighted cross-entropy), ``codec`` (DAC or synthetic codes, demo corpus), ``plots``,
``memory`` (estimate, plan), ``memcheck`` (measured peaks), ``train`` (training loop with accumulation, AMP,
8-bit AdamW, LoRA, checkpoints, DDP), ``checkpoint`` (nari-labs/dia's v0.1 and 0626 files), ``generate`` (CFG).
"""
