"""Notebook 05's miniature of the official Dia weight files: one small model written in every layout the Hugging
Face repositories ship (transformers shards with their index; nari-labs' ``dia-v1.pth``, ``pytorch_model.bin`` and
``model.safetensors``; v0.1's ``dia-v0_1.pth``), each in its own folder with its ``config.json``, and read back
through :func:`tts_nb_utils.dia.checkpoint.load_dia_checkpoint`."""

from __future__ import annotations

from pathlib import Path

import torch

from ..dia.checkpoint import IMPLEMENTATIONS, DiaCheckpointError, export_dia_checkpoint, load_dia_checkpoint
from ..dia.data import DiaBatch
from ..dia.hf import from_transformers
from ..dia.train import forward_logits


def write_every_layout(hf_model, folder: str | Path) -> dict[str, Path]:
    """``{file label: folder}`` with ``hf_model`` (transformers' Dia) saved in each 0626 layout."""
    from transformers.utils import logging as hf_logging

    folder = Path(folder)
    out = {"model-0000N-of-0000M.safetensors": folder / "transformers-shards"}
    hf_logging.disable_progress_bar()  # a bar per save is noise in a notebook
    try:
        hf_model.save_pretrained(out["model-0000N-of-0000M.safetensors"], max_shard_size="5MB")
    finally:
        hf_logging.enable_progress_bar()
    for name in ("dia-v1.pth", "pytorch_model.bin", "model.safetensors"):
        sub = folder / f"nari-{name.replace('.', '-')}"
        export_dia_checkpoint(hf_model, sub / name, sub / "config.json")
        out[f"{name} (nari)"] = sub
    return out


@torch.no_grad()
def compare_layouts(hf_model, folder: str | Path, batch: DiaBatch) -> list[dict]:
    """Max abs. logit difference to ``hf_model`` of every layout loaded by each implementation, and the v0.1 row:
    the same weights as v0.1 (cross-attention RoPE) give other logits, and transformers refuses them."""
    ref = forward_logits(hf_model.eval(), batch)
    rows = []
    for label, path in write_every_layout(hf_model, folder).items():
        rows.append({"file": label} | {impl: float((forward_logits(load_dia_checkpoint(path, implementation=impl),
                                                                   batch) - ref).abs().max())
                                       for impl in IMPLEMENTATIONS})
    v01 = Path(folder) / "v0.1"
    export_dia_checkpoint(from_transformers(hf_model, cross_rope=True), v01 / "dia-v0_1.pth", v01 / "config.json")
    row = {"file": "dia-v0_1.pth (v0.1)",
           "tts-nb": float((forward_logits(load_dia_checkpoint(v01), batch) - ref).abs().max())}
    try:
        load_dia_checkpoint(v01, implementation="transformers")
        row["transformers"] = "loaded"
    except DiaCheckpointError as e:
        row["transformers"] = "refused: " + str(e).split(": ", 1)[1][:60] + "..."
    return rows + [row]


def markdown_table(rows: list[dict]) -> str:
    """:func:`compare_layouts`' rows as a Markdown table."""
    def cell(v):
        return f"{v:.1e}" if isinstance(v, float) else v

    head = "| file | max abs. logit change, as transformers' model | as `tts-nb`'s model |\n|---|---|---|\n"
    return head + "\n".join(f"| `{r['file']}` | {cell(r['transformers'])} | {cell(r['tts-nb'])} |" for r in rows)
