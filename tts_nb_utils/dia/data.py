"""Dia training data: text to byte tokens, codes to delayed decoder inputs and targets, the three attention
masks, text dropout for classifier-free guidance, and length bucketing.

Works on any list of ``(text, codes [frames, 9])`` pairs, whatever codec made the codes. Used by notebook 05
and by ``tts_nb_utils.dia.train``.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from .delay import CODEBOOK_SIZE, DELAY_PATTERN, PAD, decoder_length, delay_example

TEXT_PAD = 0
SPEAKER_TAGS = {"[S1]": "\x01", "[S2]": "\x02"}


class DiaDataError(ValueError):
    """A training item that cannot be used (empty or too long text, codes of the wrong shape or range)."""


def encode_text(text: str) -> list[int]:
    """UTF-8 byte tokens, with Dia's speaker tags ``[S1]`` -> 0x01 and ``[S2]`` -> 0x02."""
    for tag, byte in SPEAKER_TAGS.items():
        text = text.replace(tag, byte)
    return list(text.encode("utf-8"))


def decode_text(tokens: Sequence[int]) -> str:
    """Inverse of :func:`encode_text` (padding bytes dropped)."""
    text = bytes(int(t) for t in tokens if int(t) != TEXT_PAD).decode("utf-8", errors="replace")
    for tag, byte in SPEAKER_TAGS.items():
        text = text.replace(byte, tag)
    return text


@dataclass
class DiaExample:
    """One item: byte tokens ``[S]`` and the delayed code sequence ``[delayed_length(num_frames), C]``."""

    text: torch.Tensor
    seq: torch.Tensor
    num_frames: int


class DiaDataset(torch.utils.data.Dataset):
    """``(text, codes [frames, C])`` pairs -> :class:`DiaExample`. Items are checked when the dataset is built,
    so a bad one is reported with its index before training starts."""

    def __init__(self, items: Sequence[tuple[str, torch.Tensor]], delay_pattern: Sequence[int] = DELAY_PATTERN,
                 max_text_len: int = 1024, max_audio_len: int = 3072, codebook_size: int = CODEBOOK_SIZE):
        self.delay_pattern = tuple(delay_pattern)
        self.examples: list[DiaExample] = []
        for i, (text, codes) in enumerate(items):
            tokens = encode_text(text)
            if not tokens:
                raise DiaDataError(f"item {i}: empty text; drop the item or give it a transcript")
            if len(tokens) > max_text_len:
                raise DiaDataError(f"item {i}: text is {len(tokens)} bytes, more than max_text_len={max_text_len}; "
                                   "split the utterance or raise max_text_len")
            codes = torch.as_tensor(codes).long()
            if codes.ndim != 2 or codes.shape[1] != len(self.delay_pattern) or codes.shape[0] == 0:
                raise DiaDataError(f"item {i}: codes must be [frames, {len(self.delay_pattern)}], "
                                   f"got {tuple(codes.shape)}")
            if int(codes.min()) < 0 or int(codes.max()) >= codebook_size:
                raise DiaDataError(f"item {i}: codes must lie in 0..{codebook_size - 1}, found "
                                   f"{int(codes.min())}..{int(codes.max())}")
            rows = decoder_length(codes.shape[0], self.delay_pattern)
            if rows > max_audio_len:
                raise DiaDataError(f"item {i}: {codes.shape[0]} frames make {rows} decoder rows, more than "
                                   f"max_audio_len={max_audio_len}; cut the clip shorter")
            seq = delay_example(codes, self.delay_pattern)
            self.examples.append(DiaExample(torch.tensor(tokens, dtype=torch.long), seq, int(codes.shape[0])))

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, i: int) -> DiaExample:
        return self.examples[i]

    def lengths(self) -> list[int]:
        """Decoder rows per item (:func:`~tts_nb_utils.dia.delay.decoder_length`, for bucketing)."""
        return [decoder_length(e.num_frames, self.delay_pattern) for e in self.examples]


@dataclass
class DiaBatch:
    """A collated batch. Masks are boolean, True = may attend / counts.

    ``text [B, S]``, ``text_mask [B, S]``; ``audio_in [B, T, C]`` (delayed sequence without its last row),
    ``targets [B, T, C]`` (without its first row: the next row), ``audio_mask [B, T]``;
    ``enc_mask [B, 1, S, S]``, ``dec_mask [B, 1, T, T]`` (causal), ``cross_mask [B, 1, T, S]``.
    """

    text: torch.Tensor
    text_mask: torch.Tensor
    audio_in: torch.Tensor
    targets: torch.Tensor
    audio_mask: torch.Tensor
    enc_mask: torch.Tensor
    dec_mask: torch.Tensor
    cross_mask: torch.Tensor

    def to(self, device: torch.device | str) -> DiaBatch:
        return DiaBatch(**{k: v.to(device, non_blocking=True) for k, v in vars(self).items()})

    @property
    def frames(self) -> int:
        """Decoder rows that are not padding (what throughput counts)."""
        return int(self.audio_mask.sum())

    def model_inputs(self) -> dict[str, torch.Tensor | None]:
        """The model's arguments. ``dec_mask`` is always causal (padding sits after the real rows), so it is
        passed as None (SDPA's ``is_causal``); the text masks too when no item has text padding. Without an
        explicit mask SDPA can use its flash / memory-efficient kernels (no ``T x T`` matrix)."""
        padded = not bool(self.text_mask.all())
        return {"text": self.text, "audio_in": self.audio_in, "enc_mask": self.enc_mask if padded else None,
                "dec_mask": None, "cross_mask": self.cross_mask if padded else None}


def encoder_mask(text_mask: torch.Tensor) -> torch.Tensor:
    """``[B, 1, S, S]``: real bytes attend to real bytes, padding to padding (as Dia; no row is empty)."""
    m = text_mask.bool()
    return ((m[:, :, None] & m[:, None, :]) | (~m[:, :, None] & ~m[:, None, :]))[:, None]


def causal_mask(T: int, B: int = 1, device: torch.device | str | None = None) -> torch.Tensor:
    """``[B, 1, T, T]`` lower-triangular: row t sees rows 0..t. Padding sits after real rows, so real rows
    never see it; padded rows see real rows and are ignored by the loss."""
    return torch.ones(T, T, dtype=torch.bool, device=device).tril().expand(B, 1, T, T)


def cross_mask(text_mask: torch.Tensor, T: int) -> torch.Tensor:
    """``[B, 1, T, S]``: every decoder row attends to the real text bytes of its own item."""
    return text_mask.bool()[:, None, None, :].expand(-1, 1, T, -1)


def collate(examples: Sequence[DiaExample], drop_text: Sequence[bool] | None = None,
            pad_to_text: int | None = None, pad_to_audio: int | None = None) -> DiaBatch:
    """Pad and stack examples into a :class:`DiaBatch`.

    ``drop_text[i]`` True replaces item i's bytes by the padding byte 0 (the unconditional input of
    classifier-free guidance, as Dia's inference builds it) while its masks keep the text's length.
    """
    B = len(examples)
    S = max(pad_to_text or 0, max(len(e.text) for e in examples))
    T = max(pad_to_audio or 0, max(len(e.seq) - 1 for e in examples))
    C = examples[0].seq.shape[1]
    text = torch.full((B, S), TEXT_PAD, dtype=torch.long)
    text_mask = torch.zeros(B, S, dtype=torch.bool)
    audio_in = torch.full((B, T, C), PAD, dtype=torch.long)
    targets = torch.full((B, T, C), PAD, dtype=torch.long)
    audio_mask = torch.zeros(B, T, dtype=torch.bool)
    for i, e in enumerate(examples):
        n = len(e.text)
        text_mask[i, :n] = True
        if not (drop_text is not None and drop_text[i]):
            text[i, :n] = e.text
        L = len(e.seq) - 1  # decoder rows: decoder_length(e.num_frames)
        audio_in[i, :L] = e.seq[:-1]
        targets[i, :L] = e.seq[1:]
        audio_mask[i, :L] = True
    return DiaBatch(text, text_mask, audio_in, targets, audio_mask, encoder_mask(text_mask),
                    causal_mask(T, B), cross_mask(text_mask, T))


def text_dropout_flags(positions: Sequence[int], p: float, seed: int) -> list[bool]:
    """Whether to drop the text of the items at these stream positions, with probability ``p`` each.

    Decided from ``(seed, position)`` alone, so the decision is the same whichever process, micro-batch or
    resumed run draws the item (DDP and gradient accumulation give the same batches as one process).
    """
    return [random.Random(f"{seed}:{int(i)}").random() < p for i in positions]


def bucket_batches(lengths: Sequence[int], batch_size: int, seed: int = 0, bucket_size: int | None = None,
                   ) -> list[list[int]]:
    """Index batches of similar length: shuffle, sort each window of ``bucket_size`` items (default 50 x the
    batch) by length, cut into batches, and shuffle the batches. Less padding, still random."""
    rng = random.Random(seed)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    window = bucket_size or 50 * batch_size
    batches = []
    for start in range(0, len(order), window):
        chunk = sorted(order[start : start + window], key=lambda i: lengths[i])
        batches += [chunk[j : j + batch_size] for j in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


def padding_fraction(batches: Sequence[Sequence[int]], lengths: Sequence[int]) -> float:
    """Share of padded decoder rows when each batch is padded to its longest item (0..1)."""
    total = sum(max(lengths[i] for i in b) * len(b) for b in batches)
    real = sum(lengths[i] for b in batches for i in b)
    return 1.0 - real / total if total else 0.0


__all__ = ["TEXT_PAD", "DiaBatch", "DiaDataError", "DiaDataset", "DiaExample",
           "bucket_batches", "causal_mask", "collate", "cross_mask", "decode_text", "encode_text",
           "encoder_mask", "padding_fraction", "text_dropout_flags"]
