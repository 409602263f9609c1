"""Dia (nari-labs/dia) training on a 24 GB card: the delay pattern, a Dia-architecture model, data and loss,
a memory planner and a training loop. Notebook 05 (``05_dia_training_on_a_3090.ipynb``) walks through them.

Modules: ``delay`` (delay pattern), ``model`` (DiaConfig, DiaModel), ``data`` (dataset, collate, masks),
``loss`` (per-channel weighted cross-entropy), ``codec`` (DAC or synthetic codes, demo corpus), ``plots``,
``memory`` (estimate, plan), ``memcheck`` (measured peaks), ``train`` (training loop with accumulation, AMP,
8-bit AdamW, LoRA, checkpoints, DDP; trains this package's model or transformers'), ``checkpoint`` (every official
weight file, ``load_dia_checkpoint``), ``layouts`` (file discovery, nari <-> transformers names), ``hf`` (transformers'
DiaForConditionalGeneration: configs, building, generation), ``generate`` (the readable CFG reference loop).
"""
