"""Find and read every official Dia weight file, and map tensor names between nari-labs' and transformers' layouts.

The files as distributed (Hugging Face ``nari-labs/Dia-1.6B`` and ``nari-labs/Dia-1.6B-0626``):

* **transformers layout**: ``model.safetensors.index.json`` with ``model-0000N-of-0000M.safetensors`` shards, or one
  ``model.safetensors``, as ``save_pretrained`` writes them. Names carry a ``model.`` prefix, the MLP is
  ``gate_up_proj``/``down_proj``, the 9 code embeddings are one concatenated ``model.decoder.embeddings.embed.weight``
  ``[9 * 1028, dim]`` and the output layer is a top-level ``logits_dense.weight`` ``[9 * 1028, dim]``; every
  projection is an ``nn.Linear`` weight ``[out, in]`` (transformers ``models/dia/convert_dia_to_hf.py``).
* **nari-labs layout**: ``dia-v1.pth`` / ``pytorch_model.bin`` (``torch.save``) and nari's ``model.safetensors``
  (``PyTorchModelHubMixin``), and v0.1's ``dia-v0_1.pth``: names as in ``dia/layers.py`` (``mlp.wi_fused``,
  ``mlp.wo``, ``decoder.embeddings.{c}``, ``decoder.logits_dense``), projections as ``DenseGeneral`` kernels
  ``[in..., out...]``.

The layout is told by the names, never by the file name, so a renamed file still loads. Shapes come from the
model's :class:`~tts_nb_utils.dia.model.DiaConfig`. Used by :mod:`tts_nb_utils.dia.checkpoint`.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import torch

from .model import DiaConfig

# Preferred order when a folder holds several copies of the same weights (the 0626 repository holds three).
WEIGHT_FILES = ("model.safetensors.index.json", "model.safetensors", "pytorch_model.bin", "dia-v1.pth",
                "dia-v0_1.pth")
_RENAMES = ((".mlp.wi_fused.", ".mlp.gate_up_proj."), (".mlp.wo.", ".mlp.down_proj."))
_EMBED = "model.decoder.embeddings.embed.weight"


class DiaCheckpointError(ValueError):
    """A weight file or folder that is not one of Dia's layouts (names the file and what to pass instead)."""


def find_weights(path: str | os.PathLike) -> tuple[Path, Path | None]:
    """``(weights, config.json or None)`` for a weight file or a folder holding one of :data:`WEIGHT_FILES`
    (a single other ``*.pth``/``*.safetensors`` is accepted too)."""
    path = Path(path)
    if path.is_file():
        cfg = path.parent / "config.json"
        return path, cfg if cfg.is_file() else None
    if not path.is_dir():
        raise DiaCheckpointError(f"{path}: no such file or folder; pass a Dia weight file or the folder holding it")
    for name in WEIGHT_FILES:
        if (path / name).is_file():
            cfg = path / "config.json"
            return path / name, cfg if cfg.is_file() else None
    others = sorted(p for p in path.iterdir() if p.suffix in (".pth", ".pt", ".safetensors", ".bin"))
    if len(others) == 1:
        cfg = path / "config.json"
        return others[0], cfg if cfg.is_file() else None
    raise DiaCheckpointError(f"{path}: none of {', '.join(WEIGHT_FILES)} found"
                         + (f" and several candidates ({', '.join(p.name for p in others)}); pass one file"
                            if others else "; pass the folder of a Dia checkpoint"))


def read_tensors(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """All tensors of a ``.pth``/``.pt``/``.bin``, ``.safetensors`` or sharded ``*.index.json`` file, on the CPU."""
    path = Path(path)
    if not path.is_file():
        raise DiaCheckpointError(f"{path}: no such file; pass dia-v1.pth, pytorch_model.bin, model.safetensors "
                             "or model.safetensors.index.json")
    if path.name.endswith(".index.json"):
        try:
            weight_map = json.loads(path.read_text(encoding="utf-8"))["weight_map"]
        except (OSError, json.JSONDecodeError, KeyError, TypeError) as e:
            raise DiaCheckpointError(f"{path}: not a shard index with a 'weight_map' ({e})") from None
        state: dict[str, torch.Tensor] = {}
        for shard in sorted(set(weight_map.values())):
            if not (path.parent / shard).is_file():
                raise DiaCheckpointError(f"{path}: shard {shard} is missing; download every file the index names")
            state.update(read_tensors(path.parent / shard))
        missing = sorted(set(weight_map) - set(state))
        if missing:
            raise DiaCheckpointError(f"{path}: {len(missing)} tensors of the index are in no shard (first: {missing[0]})")
        return state
    if path.suffix == ".safetensors":
        return safetensors_torch().load_file(str(path), device="cpu")
    if path.suffix in (".pth", ".pt", ".bin"):
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # pickle, zip and torch errors all mean "not a plain state dict"
            raise DiaCheckpointError(f"{path}: not a torch state dict ({type(e).__name__}: {e})") from None
        if isinstance(state, dict) and isinstance(state.get("model"), dict):
            state = state["model"]  # a training checkpoint of tts_nb_utils.dia.train
        if not isinstance(state, dict):
            raise DiaCheckpointError(f"{path}: holds a {type(state).__name__}, not a dict of tensors")
        return state
    raise DiaCheckpointError(f"{path}: unknown suffix {path.suffix!r}; use .pth/.pt/.bin (torch), .safetensors "
                         "or a model.safetensors.index.json")


def safetensors_torch():
    try:
        import safetensors.torch
    except ImportError:
        raise DiaCheckpointError("reading or writing .safetensors needs the package safetensors: "
                             "`pip install safetensors` (or this project's `dia` extra)") from None
    return safetensors.torch


def is_transformers_layout(state: dict[str, torch.Tensor]) -> bool:
    return "logits_dense.weight" in state or any(k.startswith("model.") for k in state)


def _kernel_in_axes(name: str) -> int:
    """How many leading axes of nari's DenseGeneral kernel are input features (o_proj: heads and head_dim)."""
    return 2 if name.endswith("o_proj.weight") else 1


def _is_projection(name: str) -> bool:
    return bool(re.search(r"(_proj|\.mlp\.wi_fused|\.mlp\.wo|logits_dense)\.weight$", name))


def nari_to_transformers(state: dict[str, torch.Tensor], cfg: DiaConfig) -> dict[str, torch.Tensor]:
    """nari-labs' names and kernels -> transformers' names and ``[out, in]`` weights (exact: reshapes only)."""
    out, embeds = {}, {}
    for name, t in state.items():
        m = re.fullmatch(r"decoder\.embeddings\.(\d+)\.weight", name)
        if m:
            embeds[int(m.group(1))] = t
            continue
        if _is_projection(name):
            k = _kernel_in_axes(name)
            t = t.reshape(int(torch.tensor(t.shape[:k]).prod()), -1).T
        new = "logits_dense.weight" if name == "decoder.logits_dense.weight" else "model." + name
        for a, b in _RENAMES:
            new = new.replace(a, b)
        out[new] = t.contiguous()
    if embeds:
        if sorted(embeds) != list(range(cfg.channels)):
            raise DiaCheckpointError(f"decoder.embeddings: channels {sorted(embeds)} found, the config has "
                                 f"{cfg.channels}")
        out[_EMBED] = torch.cat([embeds[c] for c in range(cfg.channels)], dim=0)
    return out


def transformers_to_nari(state: dict[str, torch.Tensor], cfg: DiaConfig) -> dict[str, torch.Tensor]:
    """transformers' names and ``[out, in]`` weights -> nari-labs' names and DenseGeneral kernels (exact)."""
    out = {}
    for name, t in state.items():
        if name == _EMBED:
            for c, part in enumerate(t.chunk(cfg.channels, dim=0)):
                out[f"decoder.embeddings.{c}.weight"] = part.contiguous()
            continue
        new = "decoder.logits_dense.weight" if name == "logits_dense.weight" else name.removeprefix("model.")
        for a, b in _RENAMES:
            new = new.replace(b, a)
        if _is_projection(new):
            t = t.T.reshape(kernel_shape(cfg, new, *t.shape))
        out[new] = t.contiguous()
    return out


def _head_dim(cfg: DiaConfig, name: str) -> int:
    if name.startswith("encoder."):
        return cfg.enc_head_dim
    return cfg.cross_head_dim if ".cross_attention." in name else cfg.dec_head_dim


def kernel_shape(cfg: DiaConfig, name: str, out: int, inp: int) -> tuple[int, ...]:
    """nari-labs' DenseGeneral kernel shape for the Linear weight ``[out, inp]`` of nari's tensor ``name``."""
    if name.endswith(("q_proj.weight", "k_proj.weight", "v_proj.weight")):
        return (inp, out // _head_dim(cfg, name), _head_dim(cfg, name))
    if name.endswith("o_proj.weight"):
        return (inp // _head_dim(cfg, name), _head_dim(cfg, name), out)
    if name.endswith(("mlp.wi.weight", "mlp.wi_fused.weight")):
        return (inp, 2, out // 2)
    if name.endswith("logits_dense.weight"):
        return (inp, cfg.channels, cfg.tgt_vocab)
    return (inp, out)  # mlp.wo
