"""A Dia-architecture text-to-speech transformer in plain PyTorch (SDPA attention), for training experiments.

Same structure and parameter count as nari-labs/dia's Dia-1.6B (``DiaConfig.dia_1_6b()``: 1,611,160,576
parameters): a byte-level text encoder and an audio decoder that reads 9 delayed DAC code channels. The official
checkpoints load into it (``tts_nb_utils.dia.checkpoint``) and give upstream's logits. Tiny presets train on a
CPU in seconds. Used by notebook 05 and ``tts_nb_utils.dia.memory``.

Conventions kept from Dia: RMSNorm (eps 1e-5, computed in float32), RoPE (theta 10000, half-split rotation) on
self-attention queries and keys, attention *without* the 1/sqrt(head_dim) scale (``scale=1.0``), gated SiLU
MLPs, no biases anywhere, GQA in the decoder's self-attention, the sum of 9 channel embeddings as the decoder
input and one ``dim -> channels x vocab`` output projection. The two released versions differ in one place,
``DiaConfig.cross_rope``: v0.1 (``dia-v0_1.pth``, nari-labs/dia ``2811af1``) rotates cross-attention queries and
keys too (``dia/layers.py:279`` and ``:790``), Dia-1.6B-0626 (``876125e``) does not (``dia/layers.py:278-310``,
``:763-782``). New configs follow the current version (False).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from .delay import DELAY_PATTERN, VOCAB_SIZE


@dataclass
class DiaConfig:
    """Sizes of a Dia-style model. Widths are in features; heads are counts; ``head_dim`` in features."""

    enc_layers: int = 12
    enc_dim: int = 1024
    enc_heads: int = 16
    enc_head_dim: int = 128
    enc_mlp: int = 4096
    dec_layers: int = 18
    dec_dim: int = 2048
    dec_q_heads: int = 16
    dec_kv_heads: int = 4
    dec_head_dim: int = 128
    cross_heads: int = 16
    cross_head_dim: int = 128
    dec_mlp: int = 8192
    src_vocab: int = 256  # UTF-8 bytes; [S1] -> 0x01, [S2] -> 0x02, 0 = padding
    tgt_vocab: int = VOCAB_SIZE
    delay_pattern: tuple[int, ...] = field(default=DELAY_PATTERN)
    norm_eps: float = 1e-5
    rope_theta: float = 10000.0
    max_text_len: int = 1024  # bytes
    max_audio_len: int = 3072  # decoder rows (about 35 s at 86 frames/s)
    cross_rope: bool = False  # RoPE in cross-attention: True for Dia v0.1, False for Dia-1.6B-0626 and later

    @property
    def channels(self) -> int:
        return len(self.delay_pattern)

    def __post_init__(self) -> None:
        self.delay_pattern = tuple(int(d) for d in self.delay_pattern)
        if self.dec_q_heads % self.dec_kv_heads:
            raise ValueError(
                f"dec_q_heads={self.dec_q_heads} must be a multiple of dec_kv_heads={self.dec_kv_heads} (GQA)"
            )
        for name in ("enc_head_dim", "dec_head_dim", "cross_head_dim"):
            if getattr(self, name) % 2:
                raise ValueError(f"{name}={getattr(self, name)} must be even for RoPE")

    @classmethod
    def dia_1_6b(cls) -> DiaConfig:
        """nari-labs/Dia-1.6B: 1,611,160,576 parameters."""
        return cls()

    @classmethod
    def tiny(cls) -> DiaConfig:
        """About 2.9 M parameters (most in the 9 embeddings and the output layer): a CPU trains it in seconds."""
        return cls(enc_layers=2, enc_dim=64, enc_heads=2, enc_head_dim=32, enc_mlp=128,
                   dec_layers=2, dec_dim=128, dec_q_heads=4, dec_kv_heads=2, dec_head_dim=32,
                   cross_heads=4, cross_head_dim=32, dec_mlp=256)

    @classmethod
    def small(cls) -> DiaConfig:
        """About 17 M parameters: Dia's shape (GQA 4:1) at 1/8 of the width, for benchmarks."""
        return cls(enc_layers=4, enc_dim=256, enc_heads=4, enc_head_dim=64, enc_mlp=1024,
                   dec_layers=6, dec_dim=256, dec_q_heads=4, dec_kv_heads=1, dec_head_dim=64,
                   cross_heads=4, cross_head_dim=64, dec_mlp=1024)

    def as_dict(self) -> dict:
        return asdict(self)


class RMSNorm(nn.Module):
    """Root-mean-square norm with a learned scale, computed in float32 whatever the autocast dtype."""

    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x32 = x.float()
        return x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight.float()


def rope(x: torch.Tensor, positions: torch.Tensor, theta: float) -> torch.Tensor:
    """Rotate ``x`` ``[B, T, heads, head_dim]`` by ``positions`` ``[B, T]`` (Dia's half-split RoPE)."""
    half = x.shape[-1] // 2
    timescale = theta ** (2.0 * torch.arange(half, device=x.device, dtype=torch.float32) / x.shape[-1])
    angle = positions.float()[..., None, None] / timescale
    sin, cos = torch.sin(angle), torch.cos(angle)
    a, b = x.float().chunk(2, dim=-1)
    return torch.cat([a * cos - b * sin, b * cos + a * sin], dim=-1).to(x.dtype)


class Attention(nn.Module):
    """Multi-head attention with optional GQA (fewer key/value heads), RoPE and no 1/sqrt(d) scaling."""

    def __init__(self, q_dim: int, kv_dim: int, q_heads: int, kv_heads: int, head_dim: int, out_dim: int,
                 theta: float | None):
        super().__init__()
        self.q_heads, self.kv_heads, self.head_dim, self.theta = q_heads, kv_heads, head_dim, theta  # None: no RoPE
        self.q_proj = nn.Linear(q_dim, q_heads * head_dim, bias=False)
        self.k_proj = nn.Linear(kv_dim, kv_heads * head_dim, bias=False)
        self.v_proj = nn.Linear(kv_dim, kv_heads * head_dim, bias=False)
        self.o_proj = nn.Linear(q_heads * head_dim, out_dim, bias=False)

    def forward(self, xq, xkv, q_pos, kv_pos, mask=None, is_causal=False):
        B, T, _ = xq.shape
        S = xkv.shape[1]
        q = self.q_proj(xq).view(B, T, self.q_heads, self.head_dim)
        k = self.k_proj(xkv).view(B, S, self.kv_heads, self.head_dim)
        v = self.v_proj(xkv).view(B, S, self.kv_heads, self.head_dim)
        if self.theta is not None:
            q, k = rope(q, q_pos, self.theta), rope(k, kv_pos, self.theta)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))
        if self.kv_heads != self.q_heads:  # GQA: each key/value head serves q_heads / kv_heads query heads
            k = k.repeat_interleave(self.q_heads // self.kv_heads, dim=1)
            v = v.repeat_interleave(self.q_heads // self.kv_heads, dim=1)
        if mask is not None:
            mask = mask.to(q.device)
        # no mask (no padding; causal via is_causal): SDPA may pick its flash / memory-efficient kernels
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=is_causal and mask is None,
                                             scale=1.0)
        return self.o_proj(out.transpose(1, 2).reshape(B, T, self.q_heads * self.head_dim))


class GatedMLP(nn.Module):
    """``wo(silu(gate) * up)`` with the gate and up projections fused in one matrix, as in Dia."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.wi = nn.Linear(dim, 2 * hidden, bias=False)
        self.wo = nn.Linear(hidden, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, up = self.wi(x).chunk(2, dim=-1)
        return self.wo(F.silu(gate) * up)


class EncoderLayer(nn.Module):
    def __init__(self, cfg: DiaConfig):
        super().__init__()
        self.pre_sa_norm = RMSNorm(cfg.enc_dim, cfg.norm_eps)
        self.self_attention = Attention(cfg.enc_dim, cfg.enc_dim, cfg.enc_heads, cfg.enc_heads,
                                        cfg.enc_head_dim, cfg.enc_dim, cfg.rope_theta)
        self.post_sa_norm = RMSNorm(cfg.enc_dim, cfg.norm_eps)
        self.mlp = GatedMLP(cfg.enc_dim, cfg.enc_mlp)

    def forward(self, x, pos, mask):
        h = self.pre_sa_norm(x).to(x.dtype)
        x = x + self.self_attention(h, h, pos, pos, mask)
        return x + self.mlp(self.post_sa_norm(x).to(x.dtype))


class DecoderLayer(nn.Module):
    def __init__(self, cfg: DiaConfig):
        super().__init__()
        self.pre_sa_norm = RMSNorm(cfg.dec_dim, cfg.norm_eps)
        self.self_attention = Attention(cfg.dec_dim, cfg.dec_dim, cfg.dec_q_heads, cfg.dec_kv_heads,
                                        cfg.dec_head_dim, cfg.dec_dim, cfg.rope_theta)
        self.pre_ca_norm = RMSNorm(cfg.dec_dim, cfg.norm_eps)
        self.cross_attention = Attention(cfg.dec_dim, cfg.enc_dim, cfg.cross_heads, cfg.cross_heads,
                                         cfg.cross_head_dim, cfg.dec_dim, cfg.rope_theta if cfg.cross_rope else None)
        self.pre_mlp_norm = RMSNorm(cfg.dec_dim, cfg.norm_eps)
        self.mlp = GatedMLP(cfg.dec_dim, cfg.dec_mlp)

    def forward(self, x, pos, enc_out, enc_pos, self_mask, cross_mask):
        h = self.pre_sa_norm(x).to(x.dtype)
        x = x + self.self_attention(h, h, pos, pos, self_mask, is_causal=self_mask is None)
        x = x + self.cross_attention(self.pre_ca_norm(x).to(x.dtype), enc_out, pos, enc_pos, cross_mask)
        return x + self.mlp(self.pre_mlp_norm(x).to(x.dtype))


class DiaEncoder(nn.Module):
    def __init__(self, cfg: DiaConfig):
        super().__init__()
        self.embedding = nn.Embedding(cfg.src_vocab, cfg.enc_dim)
        self.layers = nn.ModuleList(EncoderLayer(cfg) for _ in range(cfg.enc_layers))
        self.norm = RMSNorm(cfg.enc_dim, cfg.norm_eps)


class DiaDecoder(nn.Module):
    def __init__(self, cfg: DiaConfig):
        super().__init__()
        self.embeddings = nn.ModuleList(nn.Embedding(cfg.tgt_vocab, cfg.dec_dim) for _ in range(cfg.channels))
        self.layers = nn.ModuleList(DecoderLayer(cfg) for _ in range(cfg.dec_layers))
        self.norm = RMSNorm(cfg.dec_dim, cfg.norm_eps)
        self.logits_dense = nn.Linear(cfg.dec_dim, cfg.channels * cfg.tgt_vocab, bias=False)


class DiaModel(nn.Module):
    """Encoder-decoder: ``model(text [B, S], audio_in [B, T, C]) -> logits [B, T, C, tgt_vocab]`` (float32).

    Masks are boolean, True = may attend: ``enc_mask [B, 1, S, S]``, ``dec_mask [B or 1, 1, T, T]`` (causal
    when None), ``cross_mask [B, 1, T, S]`` (all text when None). ``tts_nb_utils.dia.data.collate`` builds them.
    Set ``grad_checkpointing = True`` to recompute each layer in the backward pass instead of storing its
    activations (trades about 30 % more compute for far less memory).
    """

    def __init__(self, config: DiaConfig, grad_checkpointing: bool = False):
        super().__init__()
        self.config = config
        self.grad_checkpointing = grad_checkpointing
        self.encoder = DiaEncoder(config)
        self.decoder = DiaDecoder(config)
        if not any(p.is_meta for p in self.parameters()):
            self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """Normal(0, 0.02) linears and embeddings, ones for the norms (deterministic under a torch seed)."""
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, std=0.02)
            elif isinstance(m, RMSNorm):
                m.weight.fill_(1.0)

    def _run(self, layer, *args):
        if self.grad_checkpointing and self.training and torch.is_grad_enabled():
            return checkpoint(layer, *args, use_reentrant=False)
        return layer(*args)

    def encode(self, text: torch.Tensor, enc_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Encoder output ``[B, S, enc_dim]`` for byte tokens ``[B, S]``."""
        pos = torch.arange(text.shape[1], device=text.device).expand(text.shape[0], -1)
        x = self.encoder.embedding(text)
        if torch.is_autocast_enabled(x.device.type):
            x = x.to(torch.get_autocast_dtype(x.device.type))
        for layer in self.encoder.layers:
            x = self._run(layer, x, pos, enc_mask)
        return self.encoder.norm(x).to(x.dtype)

    def decode(self, audio_in: torch.Tensor, enc_out: torch.Tensor, dec_mask: torch.Tensor | None = None,
               cross_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Logits ``[B, T, C, tgt_vocab]`` (float32) for delayed codes ``[B, T, C]`` and encoder output."""
        B, T, C = audio_in.shape
        if C != self.config.channels:
            raise ValueError(f"audio_in has {C} channels, the model expects {self.config.channels}")
        x = sum(emb(audio_in[..., c]) for c, emb in enumerate(self.decoder.embeddings))
        if torch.is_autocast_enabled(x.device.type):
            x = x.to(torch.get_autocast_dtype(x.device.type))
        pos = torch.arange(T, device=x.device).expand(B, -1)
        enc_pos = torch.arange(enc_out.shape[1], device=x.device).expand(B, -1)
        for layer in self.decoder.layers:
            x = self._run(layer, x, pos, enc_out, enc_pos, dec_mask, cross_mask)
        x = self.decoder.norm(x).to(x.dtype)
        return self.decoder.logits_dense(x).view(B, T, C, -1).float()

    def forward(self, text, audio_in, enc_mask=None, dec_mask=None, cross_mask=None) -> torch.Tensor:
        return self.decode(audio_in, self.encode(text, enc_mask), dec_mask, cross_mask)


def count_parameters(module: nn.Module) -> int:
    """Number of parameter elements (works on the meta device)."""
    return sum(p.numel() for p in module.parameters())
