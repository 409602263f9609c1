"""numerics: first non-finite module (forward and backward) and fp16/bf16 headroom, on small built models."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from tts_nb_utils.audio.signal import clip_problems
from tts_nb_utils.diagnose.numerics import first_nonfinite_gradient, first_nonfinite_module, fp16_headroom


class Scale(nn.Module):
    def __init__(self, factor: float) -> None:
        super().__init__()
        self.factor = factor

    def forward(self, x):
        return x * self.factor


def _model(blow_up: float = 1.0) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(4, 8),
        nn.Sequential(nn.Linear(8, 8), Scale(blow_up), nn.Tanh()),
        nn.Linear(8, 2),
    )


def test_finite_model_reports_none():
    report = first_nonfinite_module(_model(), torch.randn(3, 4))
    assert report.module_name is None and report.finite
    assert report.modules_checked == 7  # root, 3 children, the inner Sequential's 3 modules
    assert "all 7 module outputs finite" in str(report)


def test_names_the_overflowing_layer_by_qualified_name():
    report = first_nonfinite_module(_model(blow_up=1e39), torch.randn(3, 4))  # float32 max is ~3.4e38
    assert report.module_name == "1.1"
    assert report.module_type == "Scale"
    assert report.inputs[0].finite and not report.outputs[0].finite
    assert report.outputs[0].n_inf > 0
    # tanh squashes +-inf back to +-1, so no later module is non-finite: only hooks on every module see it
    assert report.nonfinite_modules == ["1.1"]
    assert not report.input_was_nonfinite and report.bad_weights == []


def test_nonfinite_weights_are_named():
    model = _model()
    with torch.no_grad():
        model[2].bias[0] = math.inf
    report = first_nonfinite_module(model, torch.randn(3, 4))
    assert report.module_name == "2" and report.bad_weights == ["bias"]
    assert "its own weights are non-finite (bias)" in str(report)


def test_nan_input_is_reported_as_such():
    x = torch.randn(3, 4)
    x[0, 0] = math.nan
    report = first_nonfinite_module(_model(), x)
    assert report.module_name == "0" and report.input_was_nonfinite
    assert "already non-finite" in str(report)


def test_fp16_overflow_under_autocast_is_found():
    model = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4))
    with torch.no_grad():
        model[1].weight.fill_(1e4)
    x = torch.ones(2, 4) * 10
    assert first_nonfinite_module(model, x).finite  # fine in float32
    with torch.autocast("cpu", dtype=torch.float16):
        report = first_nonfinite_module(model, x)
    if report.finite:
        pytest.skip("this CPU's autocast does not run Linear in float16")
    assert report.module_name == "1"


def test_backward_names_first_parameter_with_nonfinite_grad_and_keeps_grads():
    model = _model()
    sentinel = torch.full_like(model[2].weight, 7.0)
    model[2].weight.grad = sentinel.clone()

    def loss_fn(out):
        # sqrt at 0 has an infinite derivative: the gradient of layer "2" becomes inf/NaN, the forward is fine
        return torch.sqrt(out * 0).sum()

    report = first_nonfinite_gradient(model, torch.randn(3, 4), loss_fn=loss_fn)
    assert report.module_name is None and report.backward_checked
    assert report.parameter_name == "2.bias" or report.parameter_name == "2.weight"
    assert set(report.nonfinite_parameters) >= {"2.weight", "2.bias"}
    assert torch.equal(model[2].weight.grad, sentinel), "existing gradients must be put back"
    assert model[0].weight.grad is None

    ok = first_nonfinite_gradient(model, torch.randn(3, 4), loss_fn=lambda out: out.pow(2).mean())
    assert ok.parameter_name is None and ok.finite and ok.loss is not None


def test_backward_rejects_non_scalar_loss():
    with pytest.raises(ValueError, match="scalar"):
        first_nonfinite_gradient(_model(), torch.randn(3, 4), loss_fn=lambda out: out)


def test_fp16_headroom_counts_overflow_flush_and_bf16():
    x = torch.tensor([1e-9, 1e-7, 1.0, 65504.0, 65519.0, 70000.0, 1e6, -2e5, 0.0, math.nan, 1e39], dtype=torch.float64)
    r = fp16_headroom(x)
    assert r.nonfinite == 2  # NaN, and 1e39 as float32 is inf after the float() cast
    assert r.count == 9
    assert r.fp16.overflow == 3  # 70000, 1e6, -2e5 (65519 rounds down to 65504)
    assert r.fp16.flush_to_zero == 1  # 1e-9 (0.0 is not counted: it was zero already)
    assert r.fp16.subnormal == 1  # 1e-7
    assert r.bf16.overflow == 0 and r.bf16.flush_to_zero == 0
    assert r.absmax == pytest.approx(1e6)
    assert r.fp16_ratio > 1 and not r.fp16.ok and r.bf16.ok
    big = fp16_headroom(torch.tensor([3.4e38, 3.3e38, 1e-45]))
    assert big.bf16.overflow == 1  # 3.4e38 is finite in float32 but above bfloat16's max (~3.39e38)
    assert big.bf16.flush_to_zero == 1  # 1e-45 (a float32 subnormal) is below bfloat16's smallest subnormal


def test_adam_eps_1e9_is_zero_in_half():
    assert torch.tensor(1e-9, dtype=torch.float16) == 0
    assert fp16_headroom(torch.tensor([1e-9])).fp16.flush_to_zero == 1


def test_fp16_headroom_on_modules_state_dicts_and_grads():
    model = nn.Linear(3, 2)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1e5, 1.0, 1e-9], [0.5, 0.5, 0.5]]))
    r = fp16_headroom(model)
    assert r.count == 8 and r.fp16.overflow == 1 and r.fp16.flush_to_zero == 1
    assert r.worst[0] == ("weight", 1, 1)
    assert fp16_headroom({"weight": model.state_dict()}).worst[0][0] == "weight.weight"
    model(torch.ones(1, 3) * 1e-8).sum().backward()
    g = fp16_headroom(model, grads=True)
    assert g.count == 8 and g.fp16.flush_to_zero == 6  # weight grads equal the input, 1e-8; bias grads are 1
    with pytest.raises(TypeError):
        fp16_headroom(torch.ones(2), grads=True)


def test_clip_problems():
    t = np.linspace(0, 1, 1600)
    good = 0.5 * np.sin(2 * np.pi * 220 * t)
    assert clip_problems(good) == []
    silent = np.zeros(1600)
    assert "silent" in clip_problems(silent)[0]
    with np.errstate(invalid="ignore"):
        normalised = silent / np.abs(silent).max()  # GPT-SoVITS-style peak normalisation of a silent chunk
    assert "NaN" in clip_problems(normalised)[0]
    assert "not normalised" in clip_problems(good * 32767)[0]
    assert clip_problems(torch.tensor(good, dtype=torch.float32)) == []
