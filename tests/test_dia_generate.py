"""Generation with classifier-free guidance (nari-labs/dia's rules) and the synthetic codes' sonification."""

from __future__ import annotations

import numpy as np
import torch

from tts_nb_utils.dia import codec
from tts_nb_utils.dia.data import DiaDataset
from tts_nb_utils.dia.delay import EOS
from tts_nb_utils.dia.generate import _guided_step, generate
from tts_nb_utils.dia.model import DiaConfig, DiaModel
from tts_nb_utils.dia.train import TrainConfig, train


def test_guidance_picks_the_top_k_of_the_guided_logits_from_the_conditional_ones():
    V = 1028
    uncond, cond = torch.full((9, V), -1.0), torch.full((9, V), -1.0)
    cond[:, 5], cond[:, 7], cond[:, 9] = 2.0, 1.0, 0.5  # the conditional favourite is 5 ...
    uncond[:, 5], uncond[:, 7], uncond[:, 9] = 3.0, 0.0, 0.0  # ... but without text it is 5 too: guided top-2 = 7, 9
    cond[0, EOS], cond[0, EOS + 1] = 9.0, 8.0
    out = _guided_step(torch.stack([uncond, cond]), cfg_scale=3.0, top_k=2)
    finite = [torch.isfinite(row).nonzero().flatten().tolist() for row in out]
    assert finite[1:] == [[7, 9]] * 8 and (out[1:, 7] == 1.0).all()  # conditional values of the guided picks
    assert finite[0] == [EOS]  # EOS + 1 and above never; EOS only in channel 0


def test_an_overfit_tiny_model_generates_its_training_codes_greedily():
    cfg = DiaConfig(enc_layers=1, enc_dim=32, enc_heads=2, enc_head_dim=16, enc_mlp=64, dec_layers=2, dec_dim=64,
                    dec_q_heads=4, dec_kv_heads=2, dec_head_dim=16, cross_heads=2, cross_head_dim=16, dec_mlp=128)
    g = torch.Generator().manual_seed(0)
    codes = torch.randint(0, 1024, (1, 9), generator=g).repeat(20, 1) + torch.arange(20)[:, None]
    torch.manual_seed(0)
    model = DiaModel(cfg)
    train(model, DiaDataset([("[S1] hello", codes)]), TrainConfig(steps=60, micro_batch_size=2, lr=1e-2,
                                                                 warmup_steps=5, text_dropout=0.0, progress=False))
    out = generate(model, "[S1] hello", max_rows=80, temperature=0.0)
    assert out.shape == codes.shape and torch.equal(out, codes)
    capped = generate(model, "[S1] hello", max_rows=30, temperature=0.0)  # max length ends it like EOS
    assert capped.shape == (30 - 15 - 1, 9) and torch.equal(capped[:, 0], codes[:14, 0])


def test_synthetic_codes_decode_to_a_bounded_envelope_of_the_same_length():
    items = codec.demo_corpus(1, seconds=1.0)
    audio = codec.decode(items[0][1])
    assert audio.dtype == np.float32 and np.isfinite(audio).all() and abs(np.abs(audio).max() - 0.5) < 1e-3
    assert abs(len(audio) - len(items[0][1]) * codec.DAC_HOP) <= codec.DAC_HOP
