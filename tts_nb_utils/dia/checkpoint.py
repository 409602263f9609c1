"""Read and write nari-labs/dia's own checkpoints: both released model versions, in upstream's layouts.

* **v0.1** (``dia-v0_1.pth`` with its ``config.json``; nari-labs/dia ``2811af1``): a ``torch.save``'d state dict
  and a config with ``model.encoder`` / ``model.decoder`` / ``data`` sections (``dia/config.py``). Its
  cross-attention rotates queries and keys (``dia/layers.py:279``, ``:790``).
* **Dia-1.6B-0626** (``model.safetensors`` with ``config.json``; ``876125e``): the same tensor names and shapes,
  a config with ``encoder_config`` / ``decoder_config`` (``dia/config.py``), and no RoPE in cross-attention
  (``dia/layers.py:278-310``, ``:763-782``).

Upstream stores every projection as a ``DenseGeneral`` kernel ``[in..., out...]`` (``q_proj [dim, heads,
head_dim]``, ``o_proj [heads, head_dim, dim]``, ``mlp.wi_fused [dim, 2, hidden]``, ``logits_dense [dim, 9,
1028]``); ours are ``nn.Linear`` weights ``[out, in]``, so loading is a reshape and a transpose, exact to the bit.
The config picks the version; :mod:`.layouts` finds the file in a folder, reads every format (``.pth``/``.bin``,
``.safetensors``, sharded index) and maps transformers' names, so every official file loads, into this model or
transformers' ``DiaForConditionalGeneration``. Used by notebook 05 and ``tts-nb dia-train --init``.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import torch

from ..io import atomic_path, atomic_write_json
from .delay import BOS, EOS, PAD
from .layouts import (
    DiaCheckpointError,
    find_weights,
    is_transformers_layout,
    kernel_shape,
    nari_to_transformers,
    read_tensors,
    safetensors_torch,
    transformers_to_nari,
)
from .model import DiaConfig, DiaModel

VERSIONS = ("v0.1", "0626")
IMPLEMENTATIONS = ("tts-nb", "transformers")
__all__ = ["DiaCheckpointError", "dia_version", "export_dia_checkpoint", "load_dia_checkpoint", "read_nari_state_dict",
           "read_state_dict", "read_upstream_config", "upstream_config"]


def read_upstream_config(config_path: str | os.PathLike) -> tuple[DiaConfig, str]:
    """Our :class:`DiaConfig` and the version (``"v0.1"`` or ``"0626"``) of upstream's ``config.json``."""
    path = Path(config_path)
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise DiaCheckpointError(f"{path}: cannot read it as JSON ({e}); pass the config.json of the checkpoint") from None
    try:
        if "encoder_config" in d and "decoder_config" in d:
            return _config_0626(d, path), "0626"
        if "model" in d and "data" in d:
            return _config_v01(d, path), "v0.1"
    except KeyError as e:
        raise DiaCheckpointError(f"{path}: key {e} is missing; is this nari-labs/dia's config.json?") from None
    raise DiaCheckpointError(f"{path}: neither Dia v0.1 ('model', 'data') nor Dia-1.6B-0626 ('encoder_config', "
                             "'decoder_config') keys found; pass the config.json that came with the weights")


def _require(path: Path, what: str, found, expected) -> None:
    if found != expected:
        raise DiaCheckpointError(f"{path}: {what} is {found!r}; this model supports only {expected!r}")


def _config_v01(d: dict, path: Path) -> DiaConfig:
    m, data = d["model"], d["data"]
    enc, dec = m["encoder"], m["decoder"]
    _require(path, "model.rope_min_timescale", m.get("rope_min_timescale", 1), 1)
    for key, ours in (("audio_eos_value", EOS), ("audio_pad_value", PAD), ("audio_bos_value", BOS),
                      ("text_pad_value", 0)):
        _require(path, f"data.{key}", data.get(key, ours), ours)
    cfg = DiaConfig(
        enc_layers=enc["n_layer"], enc_dim=enc["n_embd"], enc_heads=enc["n_head"], enc_head_dim=enc["head_dim"],
        enc_mlp=enc["n_hidden"], dec_layers=dec["n_layer"], dec_dim=dec["n_embd"],
        dec_q_heads=dec["gqa_query_heads"], dec_kv_heads=dec["kv_heads"], dec_head_dim=dec["gqa_head_dim"],
        cross_heads=dec["cross_query_heads"], cross_head_dim=dec["cross_head_dim"], dec_mlp=dec["n_hidden"],
        src_vocab=m.get("src_vocab_size", 128), tgt_vocab=m.get("tgt_vocab_size", 1028),
        delay_pattern=tuple(data.get("delay_pattern", (0, 8, 9, 10, 11, 12, 13, 14, 15))),
        norm_eps=m.get("normalization_layer_epsilon", 1e-5), rope_theta=float(m.get("rope_max_timescale", 10000)),
        max_text_len=data["text_length"], max_audio_len=data["audio_length"], cross_rope=True)
    _require(path, "data.channels", data.get("channels", cfg.channels), cfg.channels)
    return cfg


def _rope_theta(sub: dict, where: str, path: Path) -> float:
    """RoPE theta of a 0626 (``rope_theta``) or transformers 5 (``rope_parameters``) sub-config."""
    params = sub.get("rope_parameters") or {}
    _require(path, f"{where}.rope_parameters.rope_type", params.get("rope_type", "default"), "default")
    _require(path, f"{where}.rope_scaling", sub.get("rope_scaling"), None)
    return float(sub.get("rope_theta", params.get("rope_theta", 10000.0)))


def _config_0626(d: dict, path: Path) -> DiaConfig:
    """nari-labs' 0626 ``config.json``, which is also transformers' (4.x writes ``rope_theta`` and the token ids at
    the top, 5.x ``rope_parameters`` and the token ids in ``decoder_config``)."""
    enc, dec = d["encoder_config"], d["decoder_config"]
    _require(path, "encoder_config.num_key_value_heads", enc["num_key_value_heads"], enc["num_attention_heads"])
    _require(path, "decoder_config.cross_num_key_value_heads", dec["cross_num_key_value_heads"],
             dec["cross_num_attention_heads"])
    _require(path, "decoder_config.cross_hidden_size", dec.get("cross_hidden_size", enc["hidden_size"]),
             enc["hidden_size"])
    theta = _rope_theta(enc, "encoder_config", path)
    _require(path, "decoder_config.rope_theta", _rope_theta(dec, "decoder_config", path), theta)
    _require(path, "decoder_config.norm_eps", dec.get("norm_eps", 1e-5), enc.get("norm_eps", 1e-5))
    for part, sub in (("encoder_config", enc), ("decoder_config", dec)):
        _require(path, f"{part}.hidden_act", sub.get("hidden_act", "silu"), "silu")
    for key, ours in (("eos_token_id", EOS), ("pad_token_id", PAD), ("bos_token_id", BOS)):
        top = d.get(key)
        _require(path, key if top is not None else f"decoder_config.{key}",
                 top if top is not None else dec.get(key, ours), ours)
    cfg = DiaConfig(
        enc_layers=enc["num_hidden_layers"], enc_dim=enc["hidden_size"], enc_heads=enc["num_attention_heads"],
        enc_head_dim=enc["head_dim"], enc_mlp=enc["intermediate_size"], dec_layers=dec["num_hidden_layers"],
        dec_dim=dec["hidden_size"], dec_q_heads=dec["num_attention_heads"], dec_kv_heads=dec["num_key_value_heads"],
        dec_head_dim=dec["head_dim"], cross_heads=dec["cross_num_attention_heads"],
        cross_head_dim=dec["cross_head_dim"], dec_mlp=dec["intermediate_size"], src_vocab=enc["vocab_size"],
        tgt_vocab=dec["vocab_size"], delay_pattern=tuple(d.get("delay_pattern", (0, 8, 9, 10, 11, 12, 13, 14, 15))),
        norm_eps=enc.get("norm_eps", 1e-5), rope_theta=theta, max_text_len=enc["max_position_embeddings"], max_audio_len=dec["max_position_embeddings"],
        cross_rope=False)
    _require(path, "decoder_config.num_channels", dec.get("num_channels", cfg.channels), cfg.channels)
    return cfg


def upstream_config(cfg: DiaConfig, version: str) -> dict:
    """The ``config.json`` content upstream's ``DiaConfig`` of that version reads for these sizes."""
    if version == "v0.1":
        return {"version": "1.0", "model": {
            "encoder": {"n_layer": cfg.enc_layers, "n_embd": cfg.enc_dim, "n_hidden": cfg.enc_mlp,
                        "n_head": cfg.enc_heads, "head_dim": cfg.enc_head_dim},
            "decoder": {"n_layer": cfg.dec_layers, "n_embd": cfg.dec_dim, "n_hidden": cfg.dec_mlp,
                        "gqa_query_heads": cfg.dec_q_heads, "kv_heads": cfg.dec_kv_heads,
                        "gqa_head_dim": cfg.dec_head_dim, "cross_query_heads": cfg.cross_heads,
                        "cross_head_dim": cfg.cross_head_dim},
            "src_vocab_size": cfg.src_vocab, "tgt_vocab_size": cfg.tgt_vocab, "dropout": 0.0,
            "normalization_layer_epsilon": cfg.norm_eps, "weight_dtype": "float32", "rope_min_timescale": 1,
            "rope_max_timescale": int(cfg.rope_theta)}, "training": None,
            "data": {"text_length": cfg.max_text_len, "audio_length": cfg.max_audio_len, "channels": cfg.channels,
                     "text_pad_value": 0, "audio_eos_value": EOS, "audio_pad_value": PAD, "audio_bos_value": BOS,
                     "delay_pattern": list(cfg.delay_pattern)}}
    if version == "0626":
        common = {"hidden_act": "silu", "initializer_range": 0.02, "norm_eps": cfg.norm_eps, "rope_scaling": None,
                  "rope_theta": cfg.rope_theta}
        enc = common | {"head_dim": cfg.enc_head_dim, "hidden_size": cfg.enc_dim, "intermediate_size": cfg.enc_mlp,
                        "max_position_embeddings": cfg.max_text_len, "model_type": "dia_encoder",
                        "num_attention_heads": cfg.enc_heads, "num_hidden_layers": cfg.enc_layers,
                        "num_key_value_heads": cfg.enc_heads, "vocab_size": cfg.src_vocab}
        dec = common | {"cross_head_dim": cfg.cross_head_dim, "cross_hidden_size": cfg.enc_dim,
                        "cross_num_attention_heads": cfg.cross_heads, "cross_num_key_value_heads": cfg.cross_heads,
                        "head_dim": cfg.dec_head_dim, "hidden_size": cfg.dec_dim, "intermediate_size": cfg.dec_mlp,
                        "max_position_embeddings": cfg.max_audio_len, "model_type": "dia_decoder",
                        "num_attention_heads": cfg.dec_q_heads, "num_channels": cfg.channels,
                        "num_hidden_layers": cfg.dec_layers, "num_key_value_heads": cfg.dec_kv_heads,
                        "vocab_size": cfg.tgt_vocab}
        return {"architectures": ["DiaForConditionalGeneration"], "bos_token_id": BOS, "decoder_config": dec,
                "delay_pattern": list(cfg.delay_pattern), "encoder_config": enc, "eos_token_id": EOS,
                "initializer_range": 0.02, "is_encoder_decoder": True, "model_type": "dia", "norm_eps": cfg.norm_eps,
                "pad_token_id": PAD, "torch_dtype": "float32"}
    raise DiaCheckpointError(f"version={version!r}: use one of {VERSIONS}")


def _upstream_name(ours: str) -> str:
    return ours.replace(".mlp.wi.", ".mlp.wi_fused.")


def to_upstream_state_dict(model: DiaModel) -> dict[str, torch.Tensor]:
    """Our weights under upstream's names and ``DenseGeneral`` kernel shapes (contiguous copies)."""
    out = {}
    linear = {n + ".weight" for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)}
    for name, t in model.state_dict().items():
        if name in linear:
            t = t.T.reshape(kernel_shape(model.config, name, *t.shape))
        out[_upstream_name(name)] = t.detach().contiguous().clone()
    return out


def from_upstream_state_dict(state: dict[str, torch.Tensor], model: DiaModel, source: str = "checkpoint") -> None:
    """Copy upstream's tensors into ``model`` (names and shapes checked; kernels reshaped to ``[out, in]``)."""
    ours = model.state_dict()
    expected = {_upstream_name(n): n for n in ours}
    _check_names(state, set(expected), source)
    with torch.no_grad():
        for up_name, name in expected.items():
            t, target = state[up_name], ours[name]
            if t.dim() > 1 and math.prod(t.shape) == target.numel() and t.shape != target.shape:
                split = _split(t.shape, target.shape[1])
                t = t.reshape(math.prod(t.shape[:split]), -1).T
            _check_shape(source, up_name, state[up_name], t, target)
            target.copy_(t)


def _check_names(state: dict, expected: set[str], source: str) -> None:
    missing = sorted(expected - set(state))
    unexpected = sorted(set(state) - expected)
    if missing or unexpected:
        raise DiaCheckpointError(f"{source}: {len(missing)} tensors missing (first: {missing[:3]}), "
                                 f"{len(unexpected)} unexpected (first: {unexpected[:3]}); the config.json does not "
                                 "describe these weights (another model size or layout?)")


def _check_shape(source: str, name: str, stored: torch.Tensor, t: torch.Tensor, target: torch.Tensor) -> None:
    if tuple(t.shape) != tuple(target.shape):
        raise DiaCheckpointError(f"{source}: {name} has shape {tuple(stored.shape)}, the config "
                                 f"gives {tuple(target.shape)}; use the config.json of these weights")


def _split(shape, inp: int) -> int:
    """Number of leading kernel axes that hold the input features (``prod(shape[:i]) == inp``)."""
    for i in range(1, len(shape)):
        if math.prod(shape[:i]) == inp:
            return i
    return len(shape)


def read_state_dict(checkpoint_path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Tensors of a ``.pth``/``.pt``/``.bin``, ``.safetensors`` or sharded ``*.index.json`` file, on the CPU."""
    return read_tensors(checkpoint_path)


def _resolve(checkpoint_or_folder, config_path) -> tuple[Path, DiaConfig, str]:
    weights, found_config = find_weights(checkpoint_or_folder)
    config_path = config_path or found_config
    if config_path is None:
        raise DiaCheckpointError(f"{weights}: no config.json beside it; pass the config.json that came with the "
                                 "weights (config_path / --init-config)")
    return (weights, *read_upstream_config(config_path))


def dia_version(checkpoint_or_folder: str | os.PathLike, config_path: str | os.PathLike | None = None) -> str:
    """``"v0.1"`` or ``"0626"`` for a Dia weight file or folder (from its config.json; no tensors are read)."""
    return _resolve(checkpoint_or_folder, config_path)[2]


def read_nari_state_dict(checkpoint_or_folder: str | os.PathLike, config_path: str | os.PathLike | None = None,
                         ) -> tuple[dict[str, torch.Tensor], DiaConfig, str, Path]:
    """``(tensors in nari-labs' layout, config, version, weight file)`` of any official Dia file or folder.

    ``config_path`` defaults to the ``config.json`` beside the weights. Transformers-layout files (shards with
    their index, ``model.safetensors``) are mapped to nari's names and kernels, exactly."""
    weights, cfg, version = _resolve(checkpoint_or_folder, config_path)
    state = read_tensors(weights)
    if is_transformers_layout(state):
        if version == "v0.1":
            raise DiaCheckpointError(f"{weights}: transformers-layout weights with a v0.1 config.json; transformers "
                                     "has no Dia v0.1 (cross-attention RoPE): pass the 0626 config.json")
        state = transformers_to_nari(state, cfg)
    return state, cfg, version, weights


def load_dia_checkpoint(checkpoint_or_folder: str | os.PathLike, config_path: str | os.PathLike | None = None,
                        grad_checkpointing: bool = False, implementation: str = "tts-nb"):
    """A float32 model with the weights of any official Dia file or folder (see :mod:`.layouts`).

    ``implementation="tts-nb"``: our :class:`DiaModel`, configured like the version its config names (v0.1 and
    0626). ``"transformers"``: transformers' ``DiaForConditionalGeneration``; v0.1 is refused, because
    transformers' Dia has no RoPE in cross-attention and would compute other logits from those weights."""
    if implementation not in IMPLEMENTATIONS:
        raise DiaCheckpointError(f"implementation={implementation!r}: use one of {IMPLEMENTATIONS}")
    state, cfg, version, weights = read_nari_state_dict(checkpoint_or_folder, config_path)
    if implementation == "transformers":
        if version == "v0.1":
            raise DiaCheckpointError(f"{weights}: Dia v0.1 rotates cross-attention queries and keys, which "
                                     "transformers' Dia cannot represent; load it with implementation='tts-nb'")
        from .hf import transformers_model
        model = transformers_model(cfg, device="meta")
        hf_state = nari_to_transformers(state, cfg)
        target = model.state_dict()
        _check_names(hf_state, set(target), str(weights))
        for name, t in hf_state.items():
            _check_shape(str(weights), name, t, t, target[name])
        model.load_state_dict(hf_state, assign=True)
        model.model.decoder.embeddings.offsets = torch.arange(cfg.channels) * cfg.tgt_vocab  # a meta buffer
        for rotary in (model.model.encoder.rotary_emb, model.model.decoder.rotary_emb):  # not in the file either
            inv_freq, _ = rotary.compute_default_rope_parameters(rotary.config)
            rotary.inv_freq, rotary.original_inv_freq = inv_freq, inv_freq.clone()
        if grad_checkpointing:
            from .hf import enable_checkpointing
            enable_checkpointing(model)
        return model.eval()
    with torch.device("meta"):
        model = DiaModel(cfg, grad_checkpointing=grad_checkpointing)
    model = model.to_empty(device="cpu")
    from_upstream_state_dict(state, model, str(weights))
    return model.eval()


def export_dia_checkpoint(model, checkpoint_path: str | os.PathLike,
                          config_path: str | os.PathLike | None = None, version: str | None = None) -> Path:
    """Write ``model`` (ours or transformers' ``DiaForConditionalGeneration``) in nari-labs' layout, for the
    community scripts and nari's ``Dia.from_local`` (``.pth``/``.bin`` or ``.safetensors`` by suffix), atomically,
    and its ``config.json`` when ``config_path`` is given. ``version`` defaults to the model's: ``"v0.1"`` when
    ``config.cross_rope`` is True, else ``"0626"``; a version that does not match the model is refused.
    (For transformers' layout call the transformers model's ``save_pretrained``: see :func:`.hf.to_transformers`.)"""
    if not isinstance(model, DiaModel):
        from .hf import config_from_transformers
        cfg = config_from_transformers(model.config)
        state = transformers_to_nari({k: v.detach() for k, v in model.state_dict().items()}, cfg)
        state = {k: v.contiguous().clone() for k, v in state.items()}  # its chunks share storage; files need their own
    else:
        cfg, state = model.config, None
    version = version or ("v0.1" if cfg.cross_rope else "0626")
    if (version == "v0.1") != cfg.cross_rope:
        raise DiaCheckpointError(f"version={version!r} but the model has cross_rope={cfg.cross_rope}: "
                                 "upstream would compute other logits from these weights")
    if any(hasattr(m, "lora_A") for m in model.modules()):
        raise DiaCheckpointError("the model still has LoRA adapters: merge them first "
                                 "(tts_nb_utils.dia.train.merge_lora)")
    state = state if state is not None else to_upstream_state_dict(model)  # already contiguous copies
    path = Path(checkpoint_path)
    with atomic_path(path) as tmp:
        if path.suffix == ".safetensors":
            safetensors_torch().save_file(state, str(tmp))
        else:
            torch.save(state, tmp)
    if config_path is not None:
        atomic_write_json(config_path, upstream_config(cfg, version))
    return path
