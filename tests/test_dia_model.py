"""The Dia-architecture model: exact parameter count of Dia-1.6B, shapes, masks, autocast, checkpointing."""

from __future__ import annotations

import math

import torch
from torch import nn

from tts_nb_utils.dia.data import DiaDataset, collate
from tts_nb_utils.dia.loss import dia_loss
from tts_nb_utils.dia.model import DiaConfig, DiaModel, count_parameters


def test_dia_1_6b_has_exactly_dias_parameter_count_on_meta():
    with torch.device("meta"):
        model = DiaModel(DiaConfig.dia_1_6b())
    assert count_parameters(model) == 1_611_160_576
    assert count_parameters(model.encoder) == 251_945_984
    assert count_parameters(model.decoder) == 1_359_214_592
    assert not any(m.bias is not None for m in model.modules() if isinstance(m, nn.Linear))
    assert model.decoder.logits_dense.weight.shape == (9 * 1028, 2048)
    assert model.decoder.layers[0].self_attention.k_proj.weight.shape == (4 * 128, 2048)  # GQA: 4 KV heads


def _batch(seed=0, n=3):
    g = torch.Generator().manual_seed(seed)
    items = [(f"[S1] item {i}" + "x" * i, torch.randint(0, 1024, (8 + 3 * i, 9), generator=g)) for i in range(n)]
    ds = DiaDataset(items)
    return collate([ds[i] for i in range(n)])


def test_tiny_forward_shapes_and_loss_at_init_is_ln_vocab():
    torch.manual_seed(0)
    model = DiaModel(DiaConfig.tiny())
    b = _batch()
    logits = model(**b.model_inputs())
    assert logits.shape == (*b.audio_in.shape, 1028) and logits.dtype == torch.float32
    out = dia_loss(logits, b.targets)
    assert abs(out.loss.item() - math.log(1028)) < 0.1
    assert torch.allclose(out.per_channel, torch.full((9,), math.log(1028)), atol=0.15)


def test_decoder_is_causal_and_padding_does_not_leak():
    torch.manual_seed(0)
    model = DiaModel(DiaConfig.tiny()).eval()
    b = _batch()
    ref = model(**b.model_inputs())
    changed = b.audio_in.clone()
    changed[:, 10:] = 7  # future rows must not change earlier logits
    out = model(b.text, changed, b.enc_mask, b.dec_mask, b.cross_mask)
    assert torch.allclose(out[:, :10], ref[:, :10], atol=1e-5)
    assert not torch.allclose(out[:, 10:], ref[:, 10:])
    # Item 0 alone (no text padding) gives the same logits on its real rows as inside the padded batch.
    n_text = int(b.text_mask[0].sum())
    one = {k: None if v is None else v[:1] for k, v in b.model_inputs().items()}
    one["text"] = b.text[:1, :n_text]
    one["enc_mask"] = b.enc_mask[:1, :, :n_text, :n_text]
    one["cross_mask"] = b.cross_mask[:1, :, :, :n_text]
    rows = int(b.audio_mask[0].sum())
    assert torch.allclose(model(**one)[0, :rows], ref[0, :rows], atol=1e-5)


def test_gradient_checkpointing_gives_the_same_gradients():
    torch.manual_seed(0)
    model = DiaModel(DiaConfig.tiny())
    b = _batch(1)
    grads = []
    for flag in (False, True):
        model.zero_grad()
        model.grad_checkpointing = flag
        dia_loss(model(**b.model_inputs()), b.targets).loss.backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters()]))
    assert torch.allclose(grads[0], grads[1], atol=1e-6)


def test_bf16_autocast_runs_and_stays_close():
    torch.manual_seed(0)
    model = DiaModel(DiaConfig.tiny())
    b = _batch(2)
    ref = dia_loss(model(**b.model_inputs()), b.targets).loss
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = dia_loss(model(**b.model_inputs()), b.targets).loss
    loss.backward()
    assert abs(loss.item() - ref.item()) < 0.05
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


def test_without_padding_no_mask_is_passed_and_the_logits_are_the_same():
    torch.manual_seed(0)
    model = DiaModel(DiaConfig.tiny()).eval()
    g = torch.Generator().manual_seed(0)
    ds = DiaDataset([("[S1] same", torch.randint(0, 1024, (8 + 3 * i, 9), generator=g)) for i in range(2)])
    b = collate([ds[0], ds[1]])
    inputs = b.model_inputs()
    assert inputs["enc_mask"] is None and inputs["dec_mask"] is None and inputs["cross_mask"] is None
    explicit = model(b.text, b.audio_in, b.enc_mask, b.dec_mask, b.cross_mask)
    assert torch.allclose(model(**inputs), explicit, atol=1e-5)
    assert _batch().model_inputs()["cross_mask"] is not None  # texts of different lengths keep their masks
