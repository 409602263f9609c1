"""Dia's delay pattern: channel ``c`` of the 9 DAC codebooks is shifted ``d_c`` frames later in time.

The four index functions keep nari-labs/dia's signatures and results (``dia/audio.py``), so code written
against Dia works with them; ``delay_example`` / ``undelay_example`` build and invert one training sequence in
readable steps; ``delayed_length`` and ``decoder_length`` count its rows for the data, the planner and the CLI.
Used by notebook 05 (``05_dia_training_on_a_3090.ipynb``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

#: Dia-1.6B's delay per channel, in frames (channel 0 is the coarse codebook, undelayed).
DELAY_PATTERN: tuple[int, ...] = (0, 8, 9, 10, 11, 12, 13, 14, 15)
NUM_CHANNELS = len(DELAY_PATTERN)  # DAC codebooks, one delay each
CODEBOOK_SIZE = 1024  # DAC codes 0..1023
EOS = 1024
PAD = 1025
BOS = 1026
VOCAB_SIZE = 1028  # per channel: 1024 codes + EOS, PAD, BOS and one unused entry


class DelayPatternError(ValueError):
    """A code tensor or sequence that does not fit the delay pattern (wrong shape, values or EOS)."""


def build_delay_indices(B: int, T: int, C: int, delay_pattern: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Precompute ``(t_idx_BxTxC, indices_BTCx3)`` so that ``out[b, t, c] = in[b, t - delay[c], c]``.

    ``t_idx`` is the source time (negative: before the start, becomes BOS; ``>= T``: PAD); ``indices`` are the
    clamped ``(b, t, c)`` gather indices, one row per output element (int64).
    """
    delays = torch.as_tensor(list(delay_pattern), dtype=torch.int32)
    if delays.numel() != C:
        raise DelayPatternError(f"delay_pattern has {delays.numel()} entries but C={C} channels")
    t = torch.arange(T, dtype=torch.int32).view(1, T, 1).expand(B, T, C)
    t_idx = t - delays.view(1, 1, C)
    return t_idx, _gather_indices(B, T, C, t_idx.clamp(0, T - 1))


def _gather_indices(B: int, T: int, C: int, t_src: torch.Tensor) -> torch.Tensor:
    b = torch.arange(B).view(B, 1, 1).expand(B, T, C)
    c = torch.arange(C).view(1, 1, C).expand(B, T, C)
    return torch.stack([b.reshape(-1), t_src.reshape(-1).long(), c.reshape(-1)], dim=1).long()


def apply_audio_delay(
    audio_BxTxC: torch.Tensor,
    pad_value: int,
    bos_value: int,
    precomp: tuple[torch.Tensor, torch.Tensor],
) -> torch.Tensor:
    """Delay each channel using ``precomp`` from :func:`build_delay_indices`; BOS where the source time is
    before the start, PAD where it is past the end. Same shape and dtype as the input."""
    t_idx, idx = (p.to(audio_BxTxC.device) for p in precomp)
    gathered = audio_BxTxC[idx[:, 0], idx[:, 1], idx[:, 2]].view(audio_BxTxC.shape)
    bos = torch.tensor(bos_value, dtype=audio_BxTxC.dtype, device=audio_BxTxC.device)
    pad = torch.tensor(pad_value, dtype=audio_BxTxC.dtype, device=audio_BxTxC.device)
    return torch.where(t_idx < 0, bos, torch.where(t_idx >= audio_BxTxC.shape[1], pad, gathered))


def build_revert_indices(B: int, T: int, C: int, delay_pattern: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Precompute ``(t_idx_BxTxC, indices_BTCx3)`` for undoing the delay: ``out[b, t, c] = in[b, t + delay[c], c]``.

    As in Dia, ``t_idx`` is ``min(t + delay[c], T - 1)``: the last ``delay[c]`` frames of channel ``c`` repeat
    the final input frame (they have no source; trim them, as Dia's generate does).
    """
    delays = torch.as_tensor(list(delay_pattern), dtype=torch.int64)
    if delays.numel() != C:
        raise DelayPatternError(f"delay_pattern has {delays.numel()} entries but C={C} channels")
    t = torch.arange(T).view(1, T, 1).expand(B, T, C)
    t_idx = torch.minimum(t + delays.view(1, 1, C), torch.tensor(T - 1))
    return t_idx, _gather_indices(B, T, C, t_idx)


def revert_audio_delay(
    audio_BxTxC: torch.Tensor,
    pad_value: int,
    precomp: tuple[torch.Tensor, torch.Tensor],
    T: int,
) -> torch.Tensor:
    """Undo the delay with ``precomp`` from :func:`build_revert_indices`; positions whose source time is
    ``>= T`` become ``pad_value``. Same shape and dtype as the input."""
    t_idx, idx = (p.to(audio_BxTxC.device) for p in precomp)
    gathered = audio_BxTxC[idx[:, 0], idx[:, 1], idx[:, 2]].view(audio_BxTxC.size())
    pad = torch.tensor(pad_value, dtype=audio_BxTxC.dtype, device=audio_BxTxC.device)
    return torch.where(t_idx >= T, pad, gathered)


def delayed_length(num_frames: int, delay_pattern: Sequence[int] = DELAY_PATTERN) -> int:
    """Rows of one delayed training sequence (:func:`delay_example`) for ``num_frames`` code frames:
    a BOS row, the frames, ``max(delay_pattern)`` rows (15 for Dia) while the delayed channels finish, and
    the row holding the last channel's EOS: ``num_frames + 17`` for Dia (BOS at ``dia/model.py:316``, channel
    ``c``'s EOS ``d_c`` rows after channel 0's, ``:726-738``, at ``876125e``; upstream's ``generate`` stops one
    row earlier, ``:697-698``, so that last row is only ever a training target)."""
    return 1 + int(num_frames) + max(delay_pattern) + 1


def decoder_length(num_frames: int, delay_pattern: Sequence[int] = DELAY_PATTERN) -> int:
    """Rows the decoder runs on for ``num_frames`` code frames: ``delayed_length - 1`` (``num_frames + 16``
    for Dia). The input is the delayed sequence without its last row (the final EOS is predicted, never fed
    back) and the target is the sequence without its BOS row, so both have this many rows. This is ``T`` of
    the decoder's activations and logits, and what Dia's ``max_tokens`` / our ``max_audio_len`` (3072) bound."""
    return delayed_length(num_frames, delay_pattern) - 1


def delay_example(
    codes_TxC: torch.Tensor,
    delay_pattern: Sequence[int] = DELAY_PATTERN,
    bos: int = BOS,
    eos: int = EOS,
    pad: int = PAD,
) -> torch.Tensor:
    """One training sequence ``[1 + L + max_delay + 1, C]`` from codes ``[L, C]`` (int64).

    Row 0 is BOS in every channel. Channel ``c`` then holds BOS for ``d_c`` more rows, its ``L`` codes
    from row ``1 + d_c``, EOS at row ``1 + L + d_c`` and PAD after it.
    """
    codes = torch.as_tensor(codes_TxC)
    if codes.ndim != 2 or codes.shape[1] != len(delay_pattern):
        raise DelayPatternError(
            f"codes must be [frames, {len(delay_pattern)}] (one column per delay), got shape {tuple(codes.shape)}"
        )
    L, C = codes.shape
    seq = torch.full((delayed_length(L, delay_pattern), C), pad, dtype=torch.long)
    for c, d in enumerate(delay_pattern):
        seq[: 1 + d, c] = bos
        seq[1 + d : 1 + d + L, c] = codes[:, c]
        seq[1 + d + L, c] = eos
    return seq


def undelay_example(
    seq_TxC: torch.Tensor,
    delay_pattern: Sequence[int] = DELAY_PATTERN,
    eos: int = EOS,
) -> torch.Tensor:
    """Invert :func:`delay_example`: the codes ``[L, C]``, with ``L`` read from channel 0's EOS.

    Raises DelayPatternError when channel 0 has no EOS or another channel's EOS is not at ``1 + L + d_c``.
    """
    seq = torch.as_tensor(seq_TxC)
    eos_rows = (seq[:, 0] == eos).nonzero().flatten()
    if not len(eos_rows):
        raise DelayPatternError("channel 0 has no EOS: the sequence was cut before its end")
    L = int(eos_rows[0]) - 1
    out = torch.empty((L, seq.shape[1]), dtype=seq.dtype)
    for c, d in enumerate(delay_pattern):
        if 1 + d + L >= seq.shape[0] or int(seq[1 + d + L, c]) != eos:
            raise DelayPatternError(f"channel {c}: expected EOS at row {1 + d + L} (1 + L + delay {d})")
        out[:, c] = seq[1 + d : 1 + d + L, c]
    return out
