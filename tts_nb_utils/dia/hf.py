"""Bridge to transformers' maintained Dia (``DiaForConditionalGeneration``, transformers >= 4.54): configs both
ways, a model from our :class:`~tts_nb_utils.dia.model.DiaConfig`, and our model's weights moved into it.

transformers is imported only when these functions run (it is heavy). Used by :mod:`.checkpoint` (loading with
``implementation="transformers"``), notebook 05 and the tests that compare logits.
"""

from __future__ import annotations

import contextlib
import logging

import torch

from .delay import BOS, EOS, PAD
from .model import DiaConfig, DiaModel


def transformers_config(cfg: DiaConfig):
    """transformers' ``DiaConfig`` of the same sizes (0626 architecture: no cross-attention RoPE)."""
    from transformers import DiaConfig as HFConfig

    if cfg.cross_rope:
        raise ValueError("this config has cross_rope=True (Dia v0.1), which transformers' Dia cannot represent")
    rope = {"rope_type": "default", "rope_theta": cfg.rope_theta}
    enc = dict(num_hidden_layers=cfg.enc_layers, hidden_size=cfg.enc_dim, num_attention_heads=cfg.enc_heads,
               num_key_value_heads=cfg.enc_heads, head_dim=cfg.enc_head_dim, intermediate_size=cfg.enc_mlp,
               max_position_embeddings=cfg.max_text_len, vocab_size=cfg.src_vocab, norm_eps=cfg.norm_eps,
               rope_parameters=rope)
    dec = dict(num_hidden_layers=cfg.dec_layers, hidden_size=cfg.dec_dim, num_attention_heads=cfg.dec_q_heads,
               num_key_value_heads=cfg.dec_kv_heads, head_dim=cfg.dec_head_dim,
               cross_num_attention_heads=cfg.cross_heads, cross_num_key_value_heads=cfg.cross_heads,
               cross_head_dim=cfg.cross_head_dim, cross_hidden_size=cfg.enc_dim, intermediate_size=cfg.dec_mlp,
               max_position_embeddings=cfg.max_audio_len, vocab_size=cfg.tgt_vocab, num_channels=cfg.channels,
               norm_eps=cfg.norm_eps, rope_parameters=dict(rope), bos_token_id=BOS, eos_token_id=EOS,
               pad_token_id=PAD)
    return HFConfig(encoder_config=enc, decoder_config=dec, delay_pattern=list(cfg.delay_pattern),
                    norm_eps=cfg.norm_eps)


def config_from_transformers(hf) -> DiaConfig:
    """Our :class:`DiaConfig` for transformers' ``DiaConfig`` ``hf``."""
    enc, dec = hf.encoder_config, hf.decoder_config
    return DiaConfig(
        enc_layers=enc.num_hidden_layers, enc_dim=enc.hidden_size, enc_heads=enc.num_attention_heads,
        enc_head_dim=enc.head_dim, enc_mlp=enc.intermediate_size, dec_layers=dec.num_hidden_layers,
        dec_dim=dec.hidden_size, dec_q_heads=dec.num_attention_heads, dec_kv_heads=dec.num_key_value_heads,
        dec_head_dim=dec.head_dim, cross_heads=dec.cross_num_attention_heads, cross_head_dim=dec.cross_head_dim,
        dec_mlp=dec.intermediate_size, src_vocab=enc.vocab_size, tgt_vocab=dec.vocab_size,
        delay_pattern=tuple(hf.delay_pattern), norm_eps=enc.norm_eps,
        rope_theta=float(enc.rope_parameters["rope_theta"]), max_text_len=enc.max_position_embeddings,
        max_audio_len=dec.max_position_embeddings, cross_rope=False)


def transformers_model(cfg: DiaConfig, device: str | torch.device = "cpu", grad_checkpointing: bool = False):
    """A freshly initialised ``DiaForConditionalGeneration`` of these sizes (``device="meta"``: no memory), in
    training mode; ``grad_checkpointing`` recomputes each layer in the backward pass (non-reentrant)."""
    from transformers import DiaForConditionalGeneration

    with torch.device(device):
        model = DiaForConditionalGeneration(transformers_config(cfg))
    if grad_checkpointing:
        enable_checkpointing(model)
    return model.train()


@contextlib.contextmanager
def quiet_logger(name: str):
    """Only errors from logger ``name`` inside the block (a library's note that does not apply here)."""
    log = logging.getLogger(name)
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)


def enable_checkpointing(model) -> None:
    """transformers' gradient checkpointing, non-reentrant. Its note that Dia "does not expose input embeddings"
    is silenced: it concerns reentrant checkpointing, where inputs must require grads; here they need not."""
    with quiet_logger("transformers.modeling_utils"):
        if hasattr(model, "activation_checkpointing_enable"):  # transformers >= 5.2x; the old name warns
            model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        else:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})


def to_transformers(model: DiaModel):
    """transformers' ``DiaForConditionalGeneration`` holding ``model``'s weights (exact copies); save it with
    ``save_pretrained`` for transformers' layout."""
    from .checkpoint import to_upstream_state_dict
    from .layouts import nari_to_transformers
    hf = transformers_model(model.config)
    hf.load_state_dict(nari_to_transformers(to_upstream_state_dict(model), model.config), strict=True)
    return hf.eval()


def transformers_logits(hf_model, text: torch.Tensor, audio_in: torch.Tensor,
                        text_mask: torch.Tensor | None = None) -> torch.Tensor:
    """Teacher-forced logits ``[B, T, C, V]`` (our layout) of transformers' model for byte tokens ``[B, S]`` and
    delayed codes ``[B, T, C]``; transformers returns them as ``[B * C, T, V]``."""
    B, T, C = audio_in.shape
    out = hf_model(input_ids=text, attention_mask=text_mask.long() if text_mask is not None else None,
                   decoder_input_ids=audio_in, use_cache=False)
    return out.logits.view(B, C, T, -1).transpose(1, 2)


@torch.no_grad()
def generate_codes(hf_model, text: str, max_rows: int = 300, cfg_scale: float = 3.0, temperature: float = 1.2,
                   top_p: float = 0.95, cfg_filter_top_k: int = 45, seed: int = 0) -> torch.Tensor:
    """Codes ``[frames, C]`` for ``text`` from transformers' ``generate`` (KV cache, classifier-free guidance),
    started the way ``DiaProcessor`` starts text-to-speech: a BOS row with the delay mask of ``1 + max_delay``
    rows (``processing_dia.py``); the delayed output is undone like :func:`.generate.generate` does. At
    ``temperature=0`` it decodes greedily and gives :func:`.generate.generate`'s codes (``tests/test_dia_hf.py``)."""
    from transformers.models.dia.processing_dia import DiaProcessor

    from .data import encode_text

    hf_model.eval()
    dev = next(hf_model.parameters()).device
    delays = list(hf_model.config.delay_pattern)
    C, D = len(delays), max(delays)
    prefill = torch.full((1, 1 + D, C), PAD, dtype=torch.long)
    prefill[:, 0] = BOS
    idx = DiaProcessor.build_indices(bsz=1, seq_len=1 + D, num_channels=C, delay_pattern=delays, revert=False)
    start = DiaProcessor.apply_audio_delay(audio=prefill, pad_token_id=PAD, bos_token_id=BOS, precomputed_idx=idx)
    ids = torch.tensor([encode_text(text)], device=dev)
    sample = {"do_sample": True, "temperature": temperature, "top_p": top_p} if temperature > 0 else {
        "do_sample": False}
    torch.manual_seed(seed)
    with quiet_logger("transformers.generation.configuration_utils"):  # top_k "unused" when greedy: it is, by CFG
        seq = hf_model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), decoder_input_ids=start.to(dev),
                                decoder_attention_mask=torch.ones(1, 1 + D, dtype=torch.long, device=dev),
                                max_new_tokens=max_rows, guidance_scale=cfg_scale, top_k=cfg_filter_top_k,
                                **sample)[0]
    eos = (seq[:, 0] == EOS).nonzero()
    L = int(eos[0]) - 1 if len(eos) else seq.shape[0] - 1 - D
    return torch.stack([seq[1 + d: 1 + d + L, c] for c, d in enumerate(delays)], 1).cpu()


def from_transformers(hf_model, cross_rope: bool = False) -> DiaModel:
    """This package's :class:`DiaModel` holding a transformers model's weights (exact copies); ``cross_rope=True``
    reads them as Dia v0.1 would (rotated cross-attention: other logits from the same weights)."""
    from dataclasses import replace

    from .checkpoint import from_upstream_state_dict
    from .layouts import transformers_to_nari

    cfg = replace(config_from_transformers(hf_model.config), cross_rope=cross_rope)
    model = DiaModel(cfg)
    state = {k: v.detach() for k, v in hf_model.state_dict().items()}
    from_upstream_state_dict(transformers_to_nari(state, cfg), model, "transformers model")
    return model.eval()


def load_model(spec: str, grad_checkpointing: bool = False):
    """transformers' Dia for notebook 05's ``MODEL``: ``"tiny"`` (about 2.9 M parameters, offline), a folder or file
    of official weights (any layout, :func:`.checkpoint.load_dia_checkpoint`), or a Hub id such as
    ``nari-labs/Dia-1.6B-0626`` (downloads about 6.4 GB: use it with a GPU and the network)."""
    from pathlib import Path

    if spec == "tiny":
        return transformers_model(DiaConfig.tiny(), grad_checkpointing=grad_checkpointing)
    if Path(spec).exists():
        from .checkpoint import load_dia_checkpoint

        model = load_dia_checkpoint(spec, implementation="transformers", grad_checkpointing=grad_checkpointing)
    else:
        from transformers import DiaForConditionalGeneration

        model = DiaForConditionalGeneration.from_pretrained(spec)
        if grad_checkpointing:
            enable_checkpointing(model)
    return model.train()
