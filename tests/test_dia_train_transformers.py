"""The training loop on transformers' DiaForConditionalGeneration (a tiny config, offline): the same loss as this
package's model on the same weights, 8-bit AdamW with a frozen encoder and gradient checkpointing, LoRA through
peft on its module names (gate_up_proj / down_proj), and export of the trained weights to nari-labs' layout.
Accumulation 4 x 1 = batch 4 is checked on both models in test_dia_train.py."""

from __future__ import annotations

import pytest
import torch
from transformers import DiaForConditionalGeneration

from tests.test_dia_train import CFG, _cfg, _dataset, _model
from tts_nb_utils.dia.checkpoint import export_dia_checkpoint, load_dia_checkpoint
from tts_nb_utils.dia.data import collate
from tts_nb_utils.dia.hf import enable_checkpointing, to_transformers
from tts_nb_utils.dia.memory import estimate
from tts_nb_utils.dia.model import DiaModel
from tts_nb_utils.dia.train import encoder_of, forward_logits, merge_lora, train


def _hf(grad_checkpointing=False):
    model = _model("transformers")
    if grad_checkpointing:
        enable_checkpointing(model)
    return model


def test_same_weights_same_losses_as_this_packages_model():
    torch.manual_seed(0)
    ours = DiaModel(CFG)
    hf = to_transformers(ours).train()
    ds = _dataset()
    b = collate([ds[i] for i in range(4)], drop_text=[False, True, False, False])
    with torch.no_grad():
        assert (forward_logits(hf, b) - forward_logits(ours, b)).abs().max() < 1e-4
    r_ours, r_hf = (train(m, ds, _cfg(steps=3), "cpu") for m in (ours, hf))
    assert r_hf.losses == pytest.approx(r_ours.losses, abs=1e-4)


def test_8bit_adamw_frozen_encoder_and_checkpointing_train_the_decoder_only():
    model = _hf(grad_checkpointing=True)
    assert model.is_activation_checkpointing
    enc = [p.detach().clone() for p in encoder_of(model).parameters()]
    r = train(model, _dataset(), _cfg(steps=6, optimizer="adamw8bit", freeze_encoder=True), "cpu")
    assert r.losses[-1] < r.losses[0] - 0.1
    assert all(torch.equal(a, b) for a, b in zip(enc, encoder_of(model).parameters(), strict=True))


def test_lora_on_transformers_names_trains_adapters_and_merges_for_export(tmp_path):
    model = _hf()
    r = train(model, _dataset(), _cfg(steps=4, lora_rank=4, freeze_encoder=True, lr=1e-2), "cpu")
    assert r.losses[-1] < r.losses[0]
    adapted = {n.split(".lora_A")[0] for n, _ in model.named_parameters() if ".lora_A" in n}
    assert any(n.endswith("mlp.gate_up_proj") for n in adapted) and any(n.endswith("down_proj") for n in adapted)
    assert all(".decoder." in n for n in adapted)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert trainable == estimate(CFG, 1, 8, 8, freeze_encoder=True, lora_rank=4).trainable_params
    b = collate([_dataset()[0]])
    model.eval()
    with torch.no_grad():
        before = forward_logits(model, b)
        merge_lora(model)
        assert isinstance(model, DiaForConditionalGeneration) and not any(hasattr(m, "lora_A") for m in model.modules())
        assert torch.allclose(forward_logits(model, b), before, atol=1e-5)
    export_dia_checkpoint(model, tmp_path / "dia-v1.pth", tmp_path / "config.json")
    with torch.no_grad():
        assert torch.allclose(forward_logits(load_dia_checkpoint(tmp_path), b), before, atol=1e-4)

