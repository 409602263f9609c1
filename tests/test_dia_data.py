"""Dia data: byte tokens, collate (inputs, targets, masks), text dropout, bucketing, and the loss."""

from __future__ import annotations

import math

import pytest
import torch

from tts_nb_utils.dia.data import (
    DiaDataError,
    DiaDataset,
    bucket_batches,
    collate,
    decode_text,
    encode_text,
    padding_fraction,
    text_dropout_flags,
)
from tts_nb_utils.dia.delay import BOS, EOS, PAD, decoder_length, delayed_length, undelay_example
from tts_nb_utils.dia.loss import channel_ce_sums, dia_loss, weighted_loss


def test_text_bytes_and_speaker_tags():
    assert encode_text("[S1] hé[S2]") == [1, 32, 104, 0xC3, 0xA9, 2]
    assert decode_text(encode_text("[S1] hé [S2] ok")) == "[S1] hé [S2] ok"


def _items(lengths, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [(f"[S1] {'a' * (i + 1)}", torch.randint(0, 1024, (n, 9), generator=g)) for i, n in enumerate(lengths)]


def test_collate_inputs_targets_and_masks():
    items = _items([10, 4])
    ds = DiaDataset(items)
    b = collate([ds[0], ds[1]])
    T = 1 + 10 + 15 + 1 - 1
    assert T == decoder_length(10) == delayed_length(10) - 1 and ds.lengths() == [T, decoder_length(4)]
    assert b.audio_in.shape == b.targets.shape == (2, T, 9)
    assert torch.equal(b.audio_in[0, 1:], b.targets[0, :-1])  # targets are the next row (teacher forcing)
    assert (b.audio_in[:, 0] == BOS).all()
    assert torch.equal(undelay_example(torch.cat([b.audio_in[1, :1], b.targets[1]])), items[1][1])
    assert b.audio_mask[1].sum() == 1 + 4 + 15 and not b.audio_mask[1, 20:].any()
    assert (b.targets[1, 20:] == PAD).all() and b.targets[0, 10, 0] == EOS
    # text: item 0 has 3 bytes (0x01, space, "a"), item 1 has 4; masks are True where attention is allowed
    assert b.text_mask.sum(1).tolist() == [3, 4] and b.text[0, 3] == 0
    assert b.enc_mask.shape == (2, 1, 4, 4) and not b.enc_mask[0, 0, 0, 3] and b.enc_mask[0, 0, 3, 3]
    assert b.enc_mask.any(-1).all()  # no empty row (SDPA would give NaN)
    assert torch.equal(b.dec_mask[0, 0], torch.ones(T, T, dtype=torch.bool).tril())
    assert b.cross_mask.shape == (2, 1, T, 4) and not b.cross_mask[0, 0, :, 3].any() and b.cross_mask[1].all()
    assert b.frames == (1 + 10 + 15) + (1 + 4 + 15)


def test_text_dropout_zeroes_bytes_but_keeps_length_and_is_deterministic():
    ds = DiaDataset(_items([5, 5]))
    b = collate([ds[0], ds[1]], drop_text=[True, False])
    assert (b.text[0] == 0).all() and b.text_mask[0].sum() == 3 and (b.text[1, :4] != 0).all()
    flags = text_dropout_flags(range(4000), 0.15, seed=1)
    assert abs(sum(flags) / len(flags) - 0.15) < 0.02
    assert flags[100:110] == text_dropout_flags(range(100, 110), 0.15, seed=1)
    assert flags != text_dropout_flags(range(4000), 0.15, seed=2)


def test_bad_items_are_reported_with_their_index():
    with pytest.raises(DiaDataError, match=r"item 1: codes must be \[frames, 9\]"):
        DiaDataset([("ok", torch.zeros(3, 9)), ("bad", torch.zeros(3, 8))])
    with pytest.raises(DiaDataError, match="item 0: codes must lie in 0..1023"):
        DiaDataset([("ok", torch.full((3, 9), 1024))])
    with pytest.raises(DiaDataError, match="item 0: empty text"):
        DiaDataset([("", torch.zeros(3, 9))])
    with pytest.raises(DiaDataError, match="10 frames make 26 decoder rows, more than max_audio_len=25"):
        DiaDataset([("ok", torch.zeros(10, 9))], max_audio_len=25)
    assert len(DiaDataset([("ok", torch.zeros(10, 9))], max_audio_len=26)) == 1  # 26 rows fit exactly


def test_bucketing_reduces_padding_and_keeps_every_item_once():
    lengths = [int(x) for x in torch.randint(20, 400, (200,), generator=torch.Generator().manual_seed(0))]
    buckets = bucket_batches(lengths, 8, seed=0)
    assert sorted(i for b in buckets for i in b) == list(range(200))
    plain = [list(range(i, i + 8)) for i in range(0, 200, 8)]
    assert padding_fraction(buckets, lengths) < padding_fraction(plain, lengths) / 3


def test_loss_ignores_pad_and_bos_and_weights_channels():
    V = 1028
    targets = torch.tensor([[[BOS, 5], [7, PAD], [EOS, 3]]])  # [1, 3, 2]
    logits = torch.zeros(1, 3, 2, V)
    logits[0, 1, 0, 7] = 10.0  # channel 0 right at row 1, uniform elsewhere
    sums, counts = channel_ce_sums(logits, targets)
    assert counts.tolist() == [2, 2]
    uniform = math.log(V)
    right = -torch.log_softmax(logits[0, 1, 0], -1)[7].item()
    assert torch.allclose(sums, torch.tensor([right + uniform, 2 * uniform]), atol=1e-4)
    loss = dia_loss(logits, targets, channel_weights=[4, 1]).loss.item()
    assert loss == pytest.approx((4 * (right + uniform) / 2 + uniform) / 5, rel=1e-5)
    # With the counts of a bigger step, two halves add up to the whole.
    a = weighted_loss(*channel_ce_sums(logits[:, :2], targets[:, :2])[:1], counts, [4, 1])
    b = weighted_loss(*channel_ce_sums(logits[:, 2:], targets[:, 2:])[:1], counts, [4, 1])
    assert (a + b).item() == pytest.approx(loss, rel=1e-5)
