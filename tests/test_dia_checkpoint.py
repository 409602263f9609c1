"""Upstream checkpoints: small v0.1 (.pth) and 0626 (.safetensors) files in nari-labs/dia's layout load into
our model and give the logits of upstream's formulation (DenseGeneral kernels contracted with tensordot); the
export writes the same tensors back."""

from __future__ import annotations

import json

import pytest
import safetensors.torch
import torch
import torch.nn.functional as F

from tts_nb_utils.dia.checkpoint import (
    DiaCheckpointError,
    export_dia_checkpoint,
    load_dia_checkpoint,
    read_state_dict,
    read_upstream_config,
)
from tts_nb_utils.dia.data import DiaDataset, collate

E, EH, ED, EF = 32, 2, 16, 64  # encoder width, heads, head dim, MLP
D, QH, KH, HD, CH, CD, DF = 48, 4, 2, 16, 2, 16, 96  # decoder width, GQA heads, cross heads, MLP
V, C, L = 1028, 9, 64  # code vocab, channels, max text bytes


def _config(version: str) -> dict:
    """config.json as upstream's DiaConfig of each version writes it (dia/config.py at 2811af1 / 876125e)."""
    if version == "v0.1":
        return {"version": "1.0", "model": {
            "encoder": {"n_layer": 2, "n_embd": E, "n_hidden": EF, "n_head": EH, "head_dim": ED},
            "decoder": {"n_layer": 2, "n_embd": D, "n_hidden": DF, "gqa_query_heads": QH, "kv_heads": KH,
                        "gqa_head_dim": HD, "cross_query_heads": CH, "cross_head_dim": CD},
            "src_vocab_size": 256, "tgt_vocab_size": V, "dropout": 0.0, "normalization_layer_epsilon": 1e-5,
            "weight_dtype": "float32", "rope_min_timescale": 1, "rope_max_timescale": 10000}, "training": None,
            "data": {"text_length": L, "audio_length": 128, "channels": C, "text_pad_value": 0,
                     "audio_eos_value": 1024, "audio_pad_value": 1025, "audio_bos_value": 1026,
                     "delay_pattern": [0, 8, 9, 10, 11, 12, 13, 14, 15]}}
    enc = {"head_dim": ED, "hidden_size": E, "intermediate_size": EF, "max_position_embeddings": L,
           "num_attention_heads": EH, "num_hidden_layers": 2, "num_key_value_heads": EH, "vocab_size": 256,
           "norm_eps": 1e-5, "rope_theta": 10000.0, "rope_scaling": None, "hidden_act": "silu"}
    dec = {"cross_head_dim": CD, "cross_hidden_size": E, "cross_num_attention_heads": CH,
           "cross_num_key_value_heads": CH, "head_dim": HD, "hidden_size": D, "intermediate_size": DF,
           "max_position_embeddings": 128, "num_attention_heads": QH, "num_channels": C, "num_hidden_layers": 2,
           "num_key_value_heads": KH, "vocab_size": V, "norm_eps": 1e-5, "rope_theta": 10000.0}
    return {"encoder_config": enc, "decoder_config": dec, "delay_pattern": [0, 8, 9, 10, 11, 12, 13, 14, 15],
            "bos_token_id": 1026, "eos_token_id": 1024, "pad_token_id": 1025, "torch_dtype": "float32"}


def _upstream_tensors(seed: int = 0) -> dict[str, torch.Tensor]:
    """Random tensors under upstream's names, in its DenseGeneral kernel shapes [in..., out...]."""
    shapes = {"encoder.embedding.weight": (256, E), "encoder.norm.weight": (E,), "decoder.norm.weight": (D,),
              "decoder.logits_dense.weight": (D, C, V)}
    shapes |= {f"decoder.embeddings.{c}.weight": (V, D) for c in range(C)}
    for i in range(2):
        p = f"encoder.layers.{i}."
        shapes |= {p + "pre_sa_norm.weight": (E,), p + "post_sa_norm.weight": (E,),
                   p + "self_attention.q_proj.weight": (E, EH, ED), p + "self_attention.k_proj.weight": (E, EH, ED),
                   p + "self_attention.v_proj.weight": (E, EH, ED), p + "self_attention.o_proj.weight": (EH, ED, E),
                   p + "mlp.wi_fused.weight": (E, 2, EF), p + "mlp.wo.weight": (EF, E)}
        p = f"decoder.layers.{i}."
        shapes |= {p + n: (D,) for n in ("pre_sa_norm.weight", "pre_ca_norm.weight", "pre_mlp_norm.weight")}
        shapes |= {p + "self_attention.q_proj.weight": (D, QH, HD), p + "self_attention.k_proj.weight": (D, KH, HD),
                   p + "self_attention.v_proj.weight": (D, KH, HD), p + "self_attention.o_proj.weight": (QH, HD, D),
                   p + "cross_attention.q_proj.weight": (D, CH, CD), p + "cross_attention.k_proj.weight": (E, CH, CD),
                   p + "cross_attention.v_proj.weight": (E, CH, CD), p + "cross_attention.o_proj.weight": (CH, CD, D),
                   p + "mlp.wi_fused.weight": (D, 2, DF), p + "mlp.wo.weight": (DF, D)}
    g = torch.Generator().manual_seed(seed)
    return {n: (1 + 0.1 * torch.randn(s, generator=g)) if "norm" in n else 0.2 * torch.randn(s, generator=g)
            for n, s in shapes.items()}


def _dense(x, w, n_in=1):
    return torch.tensordot(x, w, dims=(list(range(x.ndim - n_in, x.ndim)), list(range(n_in))))


def _rope(x, pos):  # x [B, T, N, H]; Dia's half-split rotation, timescale 10000 ** (2i / H)
    half = x.shape[-1] // 2
    ang = pos[..., None, None].float() / 10000.0 ** (2.0 * torch.arange(half) / x.shape[-1])
    a, b = x.chunk(2, -1)
    return torch.cat([a * ang.cos() - b * ang.sin(), b * ang.cos() + a * ang.sin()], -1)


def _attn(sd, p, xq, xkv, qpos, kpos, mask, rope, causal=False):
    q, k, v = (_dense(x, sd[p + n + ".weight"]) for x, n in ((xq, "q_proj"), (xkv, "k_proj"), (xkv, "v_proj")))
    if rope:
        q, k = _rope(q, qpos), _rope(k, kpos)
    rep = q.shape[2] // k.shape[2]
    q, k, v = q.transpose(1, 2), k.transpose(1, 2).repeat_interleave(rep, 1), v.transpose(1, 2).repeat_interleave(rep, 1)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal, scale=1.0)
    return _dense(out.transpose(1, 2), sd[p + "o_proj.weight"], 2)


def _norm(x, w):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5) * w


def _mlp(sd, p, x):
    h = _dense(x, sd[p + "wi_fused.weight"])
    return _dense(F.silu(h[..., 0, :]) * h[..., 1, :], sd[p + "wo.weight"])


def _reference_logits(sd, text, audio, text_mask, cross_rope):
    """Upstream's teacher-forced forward (Encoder.forward, Decoder.forward with prefill) read from layers.py."""
    m = text_mask
    enc_mask = ((m[:, :, None] & m[:, None, :]) | (~m[:, :, None] & ~m[:, None, :]))[:, None]
    cross = m[:, None, None, :].expand(-1, 1, audio.shape[1], -1)
    spos, tpos = torch.arange(text.shape[1])[None], torch.arange(audio.shape[1])[None]
    x = sd["encoder.embedding.weight"][text]
    for i in range(2):
        p = f"encoder.layers.{i}."
        h = _norm(x, sd[p + "pre_sa_norm.weight"])
        x = x + _attn(sd, p + "self_attention.", h, h, spos, spos, enc_mask, True)
        x = x + _mlp(sd, p + "mlp.", _norm(x, sd[p + "post_sa_norm.weight"]))
    enc = _norm(x, sd["encoder.norm.weight"])
    x = sum(sd[f"decoder.embeddings.{c}.weight"][audio[..., c]] for c in range(C))
    for i in range(2):
        p = f"decoder.layers.{i}."
        h = _norm(x, sd[p + "pre_sa_norm.weight"])
        x = x + _attn(sd, p + "self_attention.", h, h, tpos, tpos, None, True, causal=True)
        x = x + _attn(sd, p + "cross_attention.", _norm(x, sd[p + "pre_ca_norm.weight"]), enc, tpos, spos, cross,
                      cross_rope)
        x = x + _mlp(sd, p + "mlp.", _norm(x, sd[p + "pre_mlp_norm.weight"]))
    return _dense(_norm(x, sd["decoder.norm.weight"]), sd["decoder.logits_dense.weight"])


def _batch():
    g = torch.Generator().manual_seed(3)
    ds = DiaDataset([("[S1] a small check", torch.randint(0, 1024, (12, 9), generator=g)),
                     ("[S2] longer text for the other item", torch.randint(0, 1024, (7, 9), generator=g))])
    return collate([ds[0], ds[1]], drop_text=[False, True], pad_to_text=L)


@pytest.mark.parametrize("version,filename", [("v0.1", "dia-v0_1.pth"), ("0626", "model.safetensors")])
def test_small_upstream_checkpoints_load_and_give_upstreams_logits(tmp_path, version, filename):
    save = safetensors.torch.save_file if filename.endswith(".safetensors") else torch.save
    sd = _upstream_tensors()
    save(sd, str(tmp_path / filename))
    (tmp_path / "config.json").write_text(json.dumps(_config(version)))
    model = load_dia_checkpoint(tmp_path / filename, tmp_path / "config.json")
    assert model.config.cross_rope is (version == "v0.1")
    b = _batch()
    ref = _reference_logits(sd, b.text, b.audio_in, b.text_mask, cross_rope=version == "v0.1")
    with torch.no_grad():
        got = model(**b.model_inputs())
        other = _reference_logits(sd, b.text, b.audio_in, b.text_mask, cross_rope=version != "v0.1")
    assert ref.abs().max() > 1.0
    assert (got - ref).abs().max() < 1e-4
    assert (got - other).abs().max() > 0.1  # the cross-attention switch matters on the same weights

    out = tmp_path / "export" / filename
    export_dia_checkpoint(model, out, tmp_path / "export" / "config.json")
    back = read_state_dict(out)
    assert back.keys() == sd.keys() and all(torch.equal(back[k], sd[k]) for k in sd)
    assert read_upstream_config(tmp_path / "export" / "config.json") == (model.config, version)


def test_mismatched_config_and_bad_files_are_named(tmp_path):
    torch.save(_upstream_tensors(), tmp_path / "w.pth")
    cfg = _config("0626")
    cfg["decoder_config"]["intermediate_size"] = 80
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(DiaCheckpointError, match=r"w.pth: decoder.layers.0.mlp.wi_fused.weight has shape"):
        load_dia_checkpoint(tmp_path / "w.pth", tmp_path / "config.json")
    (tmp_path / "bad.json").write_text(json.dumps({"foo": 1}))
    with pytest.raises(DiaCheckpointError, match="bad.json: neither Dia v0.1"):
        read_upstream_config(tmp_path / "bad.json")
    cfg = _config("0626")
    cfg["decoder_config"]["cross_num_key_value_heads"] = 1
    (tmp_path / "gqa.json").write_text(json.dumps(cfg))
    with pytest.raises(DiaCheckpointError, match="cross_num_key_value_heads is 1"):
        read_upstream_config(tmp_path / "gqa.json")
    (tmp_path / "w.npz").write_bytes(b"")
    with pytest.raises(DiaCheckpointError, match="w.npz: unknown suffix '.npz'"):
        read_state_dict(tmp_path / "w.npz")
