"""How much GPU memory does training a Dia-style model take, and what fits on a 24 GB card?

``estimate`` adds up the bytes of each thing a training step keeps alive at its peak (the start of the
backward pass); ``plan`` tries the usual settings (precision, optimizer, gradient checkpointing, frozen
encoder, LoRA) and reports the largest batch and audio length that fit. Used by notebook 05 and
``tts-nb dia-plan``.

What is exact and what is an estimate:

* **Exact** (checked in tests against real tensors): parameter counts (the model is built on the meta
  device), weight, gradient and optimizer-state bytes for torch's AdamW and SGD with momentum.
* **Exact for bitsandbytes' layout**: ``adamw8bit`` (``bnb.optim.AdamW8bit``): two uint8 states per element for
  tensors of at least 4096 elements, plus per 256-element block one float32 ``absmax`` per state (0.03 B/param)
  and a 256-entry float32 ``qmap`` per state and tensor; float32 states below 4096 elements.
* **Estimate**: activations. The model counts, per token and layer, the tensors autograd saves in this
  package's ``DiaModel`` (projections, RoPE's float32 copies, the GQA-expanded keys and values, the gated MLP,
  RMSNorm's float32 intermediates), assumes a memory-efficient SDPA kernel (no T x T score matrix: true
  for CUDA's flash / efficient kernels), and with checkpointing keeps each layer's input plus one layer's full
  activations. The logits term counts the three float32 tensors alive when the backward pass starts: the
  saved log-probabilities, their gradient and the gradient of the logits (``B x T x 9 x 1028`` elements each);
  with checkpointing the recomputed layer comes after they are freed, so the larger of the two counts. CUDA context, cuDNN/cuBLAS workspaces and allocator
  fragmentation are not in ``total_bytes``: ``plan`` keeps ``reserve_gib`` free for them.

Precision names are ``tts_nb_utils.device``'s (Lightning's, aliases ``"fp32"``, ``"fp16"``, ``"bf16"``):
``"32-true"`` (float32 everything), ``"bf16-mixed"`` / ``"16-mixed"`` (float32 parameters, gradients and
optimizer states -- the *master weights* -- with autocast making 16-bit working copies of the matmul weights,
which autograd keeps until the backward pass), ``"bf16-true"`` (bfloat16 parameters, gradients and optimizer
states; no float32 copy at all).
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from ..device import autocast_dtype, canonical_precision, param_dtype
from .model import DiaConfig, DiaModel

GIB = 2**30
OPTIMIZERS = ("adamw", "adamw8bit", "sgd")
BNB_MIN_8BIT_SIZE = 4096  # bitsandbytes keeps 32-bit states for smaller tensors
BNB_BLOCK = 256  # bitsandbytes' blockwise quantisation: one float32 absmax per state and 256 elements
MARGIN = 0.10  # a setting "fits" when its estimate plus 10 % stays within the usable memory (see plan)


class MemoryConfigError(ValueError):
    """An unknown precision or optimizer name, or impossible sizes."""


@dataclass
class MemoryEstimate:
    """Bytes at the peak of one training step. ``breakdown`` keys: ``weights`` (parameters used in the
    forward pass: the parameters themselves, or autocast's 16-bit copies in mixed precision),
    ``master_weights`` (float32 parameters in mixed precision), ``gradients``, ``optimizer_states``,
    ``activations``, ``logits``."""

    total_bytes: int
    breakdown: dict[str, int]
    params: int
    trainable_params: int
    settings: dict = field(default_factory=dict)

    @property
    def total_gib(self) -> float:
        return self.total_bytes / GIB

    def bytes_per_param(self, keys=("master_weights", "weights", "gradients", "optimizer_states")) -> float:
        """Bytes per parameter of the model-state terms (no activations) with the weights as stored."""
        return sum(self.breakdown[k] for k in keys) / self.params


def _check(precision: str, optimizer: str) -> str:
    """The canonical precision name; MemoryConfigError for an unknown precision or optimizer."""
    try:
        precision = canonical_precision(precision)
    except ValueError as e:
        raise MemoryConfigError(str(e)) from None
    if optimizer not in OPTIMIZERS:
        raise MemoryConfigError(f"optimizer={optimizer!r}: use one of {OPTIMIZERS}")
    return precision


_SHAPES: dict[tuple, dict] = {}


def _shapes(config: DiaConfig) -> dict:
    """Parameter tensors of the model, grouped, from a meta-device build (no memory allocated)."""
    key = tuple(sorted(config.as_dict().items()))
    if key not in _SHAPES:
        with torch.device("meta"):
            model = DiaModel(config)
        groups = {"encoder": model.encoder, "decoder": model.decoder}
        info = {}
        for name, mod in groups.items():
            info[name] = [p.numel() for p in mod.parameters()]
            info[name + "_linear"] = [(m.in_features, m.out_features) for layer in mod.layers
                                      for m in layer.modules() if isinstance(m, nn.Linear)]
        info["head"] = model.decoder.logits_dense.weight.numel()
        info["enc_layer"] = sum(p.numel() for p in model.encoder.layers[0].parameters()) if config.enc_layers else 0
        info["dec_layer"] = sum(p.numel() for p in model.decoder.layers[0].parameters()) if config.dec_layers else 0
        _SHAPES[key] = info
    return _SHAPES[key]


def _activation_bytes_per_token(config: DiaConfig, a: int) -> tuple[float, float, float]:
    """Saved bytes per (decoder row, layer), per (text byte, encoder layer), per (text byte, decoder layer)."""
    D, F = config.dec_dim, config.dec_mlp
    qd, kv = config.dec_q_heads * config.dec_head_dim, config.dec_kv_heads * config.dec_head_dim
    cd = config.cross_heads * config.cross_head_dim
    norms = 3 * (a + 8) * D
    self_attn = a * (5 * qd + 3 * kv) + 4 * (qd + kv)
    cross_q = a * 3 * cd + 4 * cd
    mlp = a * (D + 4 * F)
    dec = norms + self_attn + cross_q + mlp
    cross_kv = a * 3 * cd + 4 * cd  # keys (with RoPE) and values over the text, per decoder layer
    E, FE = config.enc_dim, config.enc_mlp
    ed = config.enc_heads * config.enc_head_dim
    enc = 2 * (a + 8) * E + a * 8 * ed + 4 * 2 * ed + a * (E + 4 * FE)
    return dec, enc, cross_kv


def estimate(
    config: DiaConfig,
    batch_size: int,
    text_len: int,
    audio_len: int,
    precision: str = "bf16-mixed",
    optimizer: str = "adamw",
    grad_checkpointing: bool = False,
    freeze_encoder: bool = False,
    lora_rank: int | None = None,
) -> MemoryEstimate:
    """Peak training memory in bytes for ``batch_size`` items of ``text_len`` bytes and ``audio_len`` decoder
    rows (``delay.decoder_length(frames)``: frames + 16). See the module docstring for what is exact.

    ``freeze_encoder``: the encoder gets no gradients or optimizer states and runs without autograd.
    ``lora_rank``: every linear layer of the transformer blocks (not the embeddings or the output layer) gets
    a frozen base weight plus trainable rank-r factors (r x in + out x r); only those are trained.
    """
    precision = _check(precision, optimizer)
    if min(batch_size, text_len, audio_len) < 1:
        raise MemoryConfigError(f"batch_size, text_len and audio_len must be >= 1, got {batch_size}, "
                                f"{text_len}, {audio_len}")
    s = _shapes(config)
    pb = param_dtype(precision).itemsize  # bytes per parameter element as stored
    a = (autocast_dtype(precision) or param_dtype(precision)).itemsize  # bytes per activation element
    train_encoder = not freeze_encoder
    params = sum(s["encoder"]) + sum(s["decoder"])
    trainable, added = _trainable_sizes(s, train_encoder, lora_rank)
    n_train = sum(trainable)
    mixed = autocast_dtype(precision) is not None
    breakdown = _weight_bytes(s, (params + added) * pb, mixed, train_encoder, grad_checkpointing)
    breakdown |= {
        "gradients": n_train * pb,
        "optimizer_states": _optimizer_bytes(optimizer, trainable, pb),
        "logits": batch_size * audio_len * config.channels * config.tgt_vocab * 12,
    }
    breakdown["activations"] = _activation_bytes(config, batch_size, text_len, audio_len, a, train_encoder,
                                                 grad_checkpointing, breakdown["logits"])
    settings = {"batch_size": batch_size, "text_len": text_len, "audio_len": audio_len, "precision": precision,
                "optimizer": optimizer, "grad_checkpointing": grad_checkpointing, "freeze_encoder": freeze_encoder,
                "lora_rank": lora_rank}
    return MemoryEstimate(sum(breakdown.values()), breakdown, params, n_train, settings)


def _trainable_sizes(s: dict, train_encoder: bool, lora_rank: int | None) -> tuple[list[int], int]:
    """Element counts of the trained tensors, and how many parameters LoRA adds to the model (0 without)."""
    if not lora_rank:
        return s["decoder"] + (s["encoder"] if train_encoder else []), 0
    linears = s["decoder_linear"] + (s["encoder_linear"] if train_encoder else [])
    # one A [r, in] and one B [out, r] per adapted linear layer, only where training happens
    trainable = [lora_rank * i for i, _ in linears] + [lora_rank * o for _, o in linears]
    return trainable, sum(trainable)


def _optimizer_bytes(optimizer: str, trainable: list[int], pb: int) -> int:
    """Optimizer-state bytes for tensors of ``trainable`` elements stored in ``pb`` bytes each."""
    n_train = sum(trainable)
    if optimizer == "adamw":
        return 2 * n_train * pb + 4 * len(trainable)  # exp_avg, exp_avg_sq in the parameter dtype; float32 step
    if optimizer == "adamw8bit":  # state1/2 uint8, absmax1/2 float32 per block, qmap1/2 256 x float32
        return sum(2 * n + 8 * -(-n // BNB_BLOCK) + 2 * 4 * 256 if n >= BNB_MIN_8BIT_SIZE else 8 * n
                   for n in trainable)
    return n_train * pb  # sgd with momentum: one buffer per parameter


def _activation_bytes(config: DiaConfig, B: int, S: int, T: int, a: int, train_encoder: bool,
                      grad_checkpointing: bool, logits: int) -> int:
    """Bytes autograd saves for ``B`` items of ``S`` text bytes and ``T`` decoder rows, ``a`` bytes per element.

    With checkpointing: each layer's input, and one layer recomputed in the backward pass. That layer is
    recomputed after the ``logits`` bytes are freed, so only what it needs beyond them counts."""
    dec_tok, enc_tok, cross_kv = _activation_bytes_per_token(config, a)
    enc_rows, dec_rows = B * S, B * T
    enc_act = enc_rows * config.enc_layers * enc_tok if train_encoder else 0
    if grad_checkpointing:
        one_layer = max(dec_rows * dec_tok + enc_rows * cross_kv, enc_rows * enc_tok if enc_act else 0)
        dec_act = dec_rows * config.dec_layers * a * config.dec_dim + max(0, one_layer - logits)
        if enc_act:
            enc_act = enc_rows * config.enc_layers * a * config.enc_dim
    else:
        dec_act = config.dec_layers * (dec_rows * dec_tok + enc_rows * cross_kv)
    embed_and_head = dec_rows * config.dec_dim * (2 * a + 8) + enc_rows * config.enc_dim * a
    return int(enc_act + dec_act + embed_and_head)


def _weight_bytes(s: dict, stored: int, mixed: bool, train_encoder: bool, grad_checkpointing: bool,
                  ) -> dict[str, int]:
    """``weights`` (what the forward pass uses) and ``master_weights`` (float32 parameters in mixed precision).

    In mixed precision the forward pass uses autocast's 16-bit copies of the matmul weights, kept for the
    backward pass (one layer's with checkpointing); otherwise the ``stored`` parameters themselves.
    """
    if not mixed:
        return {"weights": stored, "master_weights": 0}
    lin = lambda pairs: sum(i * o for i, o in pairs)  # noqa: E731
    used = lin(s["decoder_linear"]) + (lin(s["encoder_linear"]) if train_encoder else 0)
    if grad_checkpointing:
        used = max(s["dec_layer"], s["enc_layer"] if train_encoder else 0)
    return {"weights": 2 * (used + s["head"]), "master_weights": stored}


def autocast_cache_bytes(config: DiaConfig, freeze_encoder: bool = False) -> int:
    """Bytes of the 16-bit weight copies ``torch.autocast`` caches until its block exits (``cache_enabled``,
    the default): every linear weight of the trained blocks plus the output layer. Our loop turns the cache off;
    a loop that keeps it needs these bytes on top of :func:`estimate` (at most; without checkpointing autograd
    keeps most of them anyway)."""
    s = _shapes(config)
    pairs = s["decoder_linear"] + ([] if freeze_encoder else s["encoder_linear"])
    return 2 * (sum(i * o for i, o in pairs) + s["head"])


@dataclass
class PlanRow:
    """One setting at the given lengths. ``verdict``: ``"fits"`` (batch 1 plus :data:`MARGIN` fits), ``"tight"``
    (batch 1 fits only without the margin: expect out-of-memory errors), ``"no"``. ``max_batch`` and
    ``max_audio_len`` (decoder rows at batch 1) keep the margin; ``why`` says in words what decides the row."""

    precision: str
    optimizer: str
    grad_checkpointing: bool
    freeze_encoder: bool
    lora_rank: int | None
    fits: bool
    max_batch: int
    max_audio_len: int
    gib_at_max_batch: float
    gib_at_batch_1: float
    verdict: str = "fits"
    why: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def _largest(fits, lo: int, hi: int) -> int:
    """Largest n in [lo, hi] with fits(n) (monotone), or lo - 1 when none."""
    if not fits(lo):
        return lo - 1
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid - 1)
    return lo


_PARTS = {"weights": "weights", "master_weights": "fp32 weights", "gradients": "gradients",
          "optimizer_states": "optimizer states", "activations": "activations", "logits": "logits"}
BF16_TRUE_NOTE = ("bf16-true keeps no float32 weights: at Dia's fine-tuning LR of 1e-5 most updates fall below "
                  "bfloat16's step and are lost")


def fit_verdict(total_bytes: float, budget_bytes: float, margin: float = MARGIN) -> str:
    """``"fits"`` when ``total_bytes`` times ``1 + margin`` is within ``budget_bytes``, ``"tight"`` when only
    without the margin, ``"no"`` when not at all (the planner's rows and the doctor's Dia check)."""
    if total_bytes * (1 + margin) <= budget_bytes:
        return "fits"
    return "tight" if total_bytes <= budget_bytes else "no"


def _why(one: MemoryEstimate, budget: float, verdict: str, margin: float) -> str:
    part = max(one.breakdown, key=one.breakdown.get)
    spare = (budget - one.total_bytes) / GIB
    text = f"{-spare:.1f} GiB over" if verdict == "no" else f"{spare:.1f} GiB spare"
    text += f" (< {margin:.0%} margin)" if verdict == "tight" else ""
    text += f"; most: {_PARTS.get(part, part)} {one.breakdown[part] / GIB:.1f}"
    return text


def plan(
    gpu_gib: float = 24,
    config: DiaConfig | None = None,
    text_len: int = 256,
    audio_len: int = 877,
    reserve_gib: float = 1.5,
    precisions: tuple[str, ...] = ("bf16-mixed",),
    optimizers: tuple[str, ...] = ("adamw", "adamw8bit"),
    lora_ranks: tuple[int | None, ...] = (None, 16),
    max_batch: int = 256,
    margin: float = MARGIN,
) -> list[PlanRow]:
    """Every combination of the settings, fitting ones first (then by largest batch).

    Defaults: Dia-1.6B, 256 text bytes, 877 decoder rows (10 s of audio: ``decoder_length(861)``), the settings
    that make sense for fine-tuning (bf16-mixed, AdamW or 8-bit AdamW; pass ``precisions=("bf16-mixed",
    "bf16-true")`` or ``optimizers=OPTIMIZERS`` for the others), and ``gpu_gib - reserve_gib`` usable GiB (the
    reserve covers the CUDA context). A setting fits when its estimate times ``1 + margin`` is within that:
    the margin covers allocator fragmentation, library workspaces and the activation estimate's error (within
    15 % of measured peaks in ``tests/test_dia_memory.py``).
    """
    config = config or DiaConfig.dia_1_6b()
    budget = (gpu_gib - reserve_gib) * GIB
    rows = []
    for prec, opt, ckpt, frz, lora in itertools.product(precisions, optimizers, (False, True), (False, True),
                                                        lora_ranks):
        if lora and opt == "adamw8bit" and "adamw" in optimizers:
            continue  # LoRA's adapter states are a few MB: 8-bit AdamW changes nothing there
        kw = dict(precision=prec, optimizer=opt, grad_checkpointing=ckpt, freeze_encoder=frz, lora_rank=lora)

        def ok(b, t, kw=kw):
            return fit_verdict(estimate(config, b, text_len, t, **kw).total_bytes, budget, margin) == "fits"

        one = estimate(config, 1, text_len, audio_len, **kw)
        mb = _largest(lambda b: ok(b, audio_len), 1, max_batch)
        ml = _largest(lambda t: ok(1, t), 1, config.max_audio_len)
        verdict = fit_verdict(one.total_bytes, budget, margin)  # "fits" exactly when mb >= 1
        at = estimate(config, max(mb, 1), text_len, audio_len, **kw)
        rows.append(PlanRow(prec, opt, ckpt, frz, lora, mb >= 1, max(mb, 0), max(ml, 0), round(at.total_gib, 2),
                            round(one.total_gib, 2), verdict, _why(one, budget, verdict, margin)))
    rows.sort(key=lambda r: (not r.fits, r.verdict != "tight", -r.max_batch, -r.max_audio_len))
    return rows


def format_breakdown(est: MemoryEstimate) -> str:
    """A small text table of the breakdown in GiB."""
    lines = [f"{k:>17}: {v / GIB:7.2f} GiB" for k, v in est.breakdown.items()]
    return "\n".join([*lines, f"{'total':>17}: {est.total_gib:7.2f} GiB"])


def format_memory_plan(rows: list[PlanRow], limit: int | None = None) -> str:
    """A text table of ``plan`` rows (fitting first), each with its reason; lines under 120 characters."""
    head = (f"{'setting':<42}{'fits':<6}{'batch':>5}{'rows@b1':>8}{'GiB@b1':>7}  why (at batch 1, GiB)")
    lines = [head, "-" * 116]
    for r in rows[:limit]:
        name = ("bf16-true " if r.precision == "bf16-true" else "") + (
            "8-bit AdamW" if r.optimizer == "adamw8bit" else r.optimizer)
        name += " +ckpt" * r.grad_checkpointing + " +frozen enc" * r.freeze_encoder
        name += f" +LoRA{r.lora_rank}" if r.lora_rank else ""
        lines.append(f"{name:<42}{r.verdict:<6}{r.max_batch:>5}{r.max_audio_len:>8}{r.gib_at_batch_1:>7.1f}  "
                     f"{r.why}")
    return "\n".join(lines)
