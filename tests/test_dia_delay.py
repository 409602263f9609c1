"""The delay pattern: Dia's index functions and the readable training-example helpers."""

from __future__ import annotations

import pytest
import torch

from tts_nb_utils.dia.delay import (
    BOS,
    DELAY_PATTERN,
    EOS,
    PAD,
    DelayPatternError,
    apply_audio_delay,
    build_delay_indices,
    build_revert_indices,
    delay_example,
    delayed_length,
    revert_audio_delay,
    undelay_example,
)


def _codes(B, T, C, seed=0):
    return torch.randint(0, 1024, (B, T, C), generator=torch.Generator().manual_seed(seed))


def test_apply_delay_shifts_each_channel_with_bos_before_start():
    B, T, C = 2, 20, 9
    x = _codes(B, T, C)
    out = apply_audio_delay(x, PAD, BOS, build_delay_indices(B, T, C, DELAY_PATTERN))
    assert out.shape == x.shape and out.dtype == x.dtype
    for c, d in enumerate(DELAY_PATTERN):
        assert (out[:, :d, c] == BOS).all()
        assert torch.equal(out[:, d:, c], x[:, : T - d, c])


def test_apply_delay_pads_where_source_is_past_the_end():
    # A negative delay reads from the future: Dia's function must put PAD where t - d >= T.
    x = _codes(1, 5, 2)
    out = apply_audio_delay(x, PAD, BOS, build_delay_indices(1, 5, 2, [0, -2]))
    assert torch.equal(out[0, :3, 1], x[0, 2:, 1]) and (out[0, 3:, 1] == PAD).all()


def test_revert_undoes_apply_except_the_trailing_delay_frames():
    B, T, C = 3, 40, 9
    x = _codes(B, T, C, seed=1)
    delayed = apply_audio_delay(x, PAD, BOS, build_delay_indices(B, T, C, DELAY_PATTERN))
    back = revert_audio_delay(delayed, PAD, build_revert_indices(B, T, C, DELAY_PATTERN), T)
    keep = T - max(DELAY_PATTERN)
    assert torch.equal(back[:, :keep], x[:, :keep])
    # As in Dia, revert indices clamp at T - 1: the last d_c frames of channel c repeat the final input row.
    t_idx, _ = build_revert_indices(B, T, C, DELAY_PATTERN)
    assert int(t_idx.max()) == T - 1
    assert (back[:, -1, 8] == delayed[:, -1, 8]).all()


def test_revert_with_shorter_T_pads():
    x = _codes(1, 10, 2)
    back = revert_audio_delay(x, PAD, build_revert_indices(1, 10, 2, [0, 3]), T=8)
    assert (back[0, 8:, 0] == PAD).all() and torch.equal(back[0, :8, 0], x[0, :8, 0])


def test_delay_example_layout_and_round_trip():
    L = 30
    codes = _codes(1, L, 9, seed=2)[0]
    seq = delay_example(codes)
    assert seq.shape == (delayed_length(L), 9) == (1 + L + 15 + 1, 9)
    assert (seq[0] == BOS).all()
    for c, d in enumerate(DELAY_PATTERN):
        assert (seq[: 1 + d, c] == BOS).all()
        assert torch.equal(seq[1 + d : 1 + d + L, c], codes[:, c])
        assert seq[1 + L + d, c] == EOS
        assert (seq[2 + L + d :, c] == PAD).all()
    assert torch.equal(undelay_example(seq), codes)


def test_delay_example_agrees_with_dias_apply_audio_delay():
    L = 25
    codes = _codes(1, L, 9, seed=3)[0]
    framed = torch.cat([torch.full((1, 9), BOS), codes, torch.full((1, 9), EOS), torch.full((15, 9), PAD)])
    dia = apply_audio_delay(framed[None], PAD, BOS, build_delay_indices(1, len(framed), 9, DELAY_PATTERN))[0]
    assert torch.equal(delay_example(codes), dia)


def test_bad_inputs_name_the_problem():
    with pytest.raises(DelayPatternError, match=r"\[frames, 9\]"):
        delay_example(torch.zeros(10, 8, dtype=torch.long))
    seq = delay_example(_codes(1, 12, 9)[0])
    with pytest.raises(DelayPatternError, match="no EOS"):
        undelay_example(seq[:10])
    seq[1 + 12 + 8, 1] = PAD
    with pytest.raises(DelayPatternError, match="channel 1"):
        undelay_example(seq)
    with pytest.raises(DelayPatternError, match="3 entries"):
        build_delay_indices(1, 4, 2, [0, 1, 2])
