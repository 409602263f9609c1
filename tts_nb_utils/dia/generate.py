"""Generate codes from a Dia model with classifier-free guidance, the way nari-labs/dia's ``Dia.generate`` does.

Followed at ``876125e`` (``dia/model.py``): the batch holds an unconditional row (text bytes replaced by 0, masks
of the real text, ``:363-372`` and ``state.py:60``) and the conditional row; the logits are guided as
``cond + cfg_scale * (cond - uncond)`` and their top ``cfg_filter_top_k`` entries select which tokens of the
*conditional* logits may be sampled (``:440-444``); EOS is allowed only in channel 0 and nothing above it
(``:446-453``); sampling uses temperature, top-p and "EOS only when it is the top token" (``:28-77``); the
delayed channels stay BOS until their delay has passed (``:743-749``), and after channel 0's EOS channel ``c``
gets EOS ``d_c`` rows later and PAD after (``:717-741``); the loop ends when the countdown reaches 0
(``:697-698``), one row before the last channel's EOS. Without a KV cache the decoder reruns the whole
prefix each step: fine for the tiny model of notebook 05, which uses it to play what it learned.
"""

from __future__ import annotations

import torch

from .data import encode_text
from .delay import BOS, EOS, PAD
from .model import DiaModel


def _sample(logits: torch.Tensor, temperature: float, top_p: float, gen: torch.Generator) -> torch.Tensor:
    """One token per row of ``logits [C, V]``: greedy at temperature 0, else temperature, EOS only when it is
    the top token, top-p, multinomial (upstream's ``_sample_next_token``; top-k was applied by the caller)."""
    if temperature == 0.0:
        return logits.argmax(-1)
    logits = logits / temperature
    top = logits.argmax(-1)
    logits[top != EOS, EOS] = -torch.inf
    logits[top == EOS, :EOS] = -torch.inf
    if top_p < 1.0:
        probs, order = logits.softmax(-1).sort(-1, descending=True)
        drop = (probs.cumsum(-1) > top_p).roll(1, -1)
        drop[:, 0] = False
        logits = logits.masked_fill(torch.zeros_like(drop).scatter(-1, order, drop), -torch.inf)
    return torch.multinomial(logits.softmax(-1), 1, generator=gen)[:, 0]


def _guided_step(logits2: torch.Tensor, cfg_scale: float, top_k: int) -> torch.Tensor:
    """``logits2 [2, C, V]`` (unconditional, conditional) -> the conditional logits outside the top-k of the
    guided ones set to -inf, with the EOS rules applied."""
    uncond, cond = logits2[0], logits2[1]
    guided = cond + cfg_scale * (cond - uncond)
    keep = torch.zeros_like(guided, dtype=torch.bool).scatter(-1, guided.topk(top_k, -1).indices, True)
    out = cond.masked_fill(~keep, -torch.inf)
    out[:, EOS + 1:] = -torch.inf
    out[1:, EOS:] = -torch.inf
    return out


@torch.no_grad()
def generate(model: DiaModel, text: str, max_rows: int = 300, cfg_scale: float = 3.0, temperature: float = 1.2,
             top_p: float = 0.95, cfg_filter_top_k: int = 45, seed: int = 0) -> torch.Tensor:
    """Codes ``[frames, C]`` (int64, 0..1023) for ``text``; at most ``max_rows`` decoder rows (upstream's
    ``max_tokens``), defaults as upstream's ``generate``. ``temperature=0`` decodes greedily."""
    model.eval()
    dev = next(model.parameters()).device
    delays = torch.tensor(model.config.delay_pattern, device=dev)
    tokens = torch.tensor(encode_text(text), device=dev)
    enc = model.encode(torch.stack([torch.zeros_like(tokens), tokens]))  # no padding: no masks needed
    seq = torch.full((1, model.config.channels), BOS, dtype=torch.long, device=dev)
    gen = torch.Generator(device=dev).manual_seed(seed)
    countdown, max_delay = -1, int(delays.max())
    while countdown != 0:  # the max-length trigger below guarantees the end
        row = seq.shape[0]  # the row being predicted
        logits = model.decode(seq[None].expand(2, -1, -1), enc)[:, -1]
        pred = _sample(_guided_step(logits, cfg_scale, cfg_filter_top_k), temperature, top_p, gen)
        if countdown < 0 and (pred[0] == EOS or row >= max_rows - max_delay):
            countdown = max_delay
        if countdown > 0:  # channel c gets EOS d_c rows after channel 0's, then PAD
            after = max_delay - countdown
            pred = torch.where(delays == after, EOS, torch.where(delays < after, PAD, pred))
            countdown -= 1
        pred = torch.where(row <= delays, BOS, pred)  # delayed channels are still BOS
        seq = torch.cat([seq, pred[None]])
    # Like upstream, the loop stops before the last channel's EOS row; channel 0's EOS gives the length
    L = int((seq[:, 0] == EOS).nonzero()[0]) - 1
    return torch.stack([seq[1 + d: 1 + d + L, c] for c, d in enumerate(model.config.delay_pattern)], 1).cpu()
