"""The memory planner: exact bytes against real tensors of the tiny preset, and the 24 GB verdicts for 1.6B."""

from __future__ import annotations

import pytest
import torch

from tts_nb_utils.dia.data import DiaDataset, collate
from tts_nb_utils.dia.loss import dia_loss
from tts_nb_utils.dia.memory import GIB, MemoryConfigError, estimate, plan
from tts_nb_utils.dia.model import DiaConfig, DiaModel

TINY = DiaConfig.tiny()


def _nbytes(tensors) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def _one_step(model, optimizer):
    g = torch.Generator().manual_seed(0)
    ds = DiaDataset([("[S1] hi", torch.randint(0, 1024, (6, 9), generator=g))])
    b = collate([ds[0]])
    dia_loss(model(**b.model_inputs()).float(), b.targets).loss.backward()
    optimizer.step()


@pytest.mark.parametrize("precision", ["32-true", "bf16-mixed", "bf16-true"])
@pytest.mark.parametrize("freeze_encoder", [False, True])
def test_weights_gradients_and_adamw_states_are_exact(precision, freeze_encoder):
    torch.manual_seed(0)
    model = DiaModel(TINY)
    if precision == "bf16-true":
        model = model.to(torch.bfloat16)
    if freeze_encoder:
        model.encoder.requires_grad_(False)
    trainable = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(trainable, lr=1e-3)
    _one_step(model, opt)
    est = estimate(TINY, 1, 8, 30, precision=precision, optimizer="adamw", freeze_encoder=freeze_encoder)
    stored = "master_weights" if precision.endswith("mixed") else "weights"
    assert est.breakdown[stored] == _nbytes(model.parameters())
    assert est.breakdown["gradients"] == _nbytes(p.grad for p in trainable)
    states = [t for st in opt.state.values() for t in st.values() if torch.is_tensor(t)]
    assert est.breakdown["optimizer_states"] == _nbytes(states)
    assert est.trainable_params == sum(p.numel() for p in trainable)


def test_sgd_momentum_states_are_exact():
    torch.manual_seed(0)
    model = DiaModel(TINY)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    _one_step(model, opt)
    est = estimate(TINY, 1, 8, 30, precision="32-true", optimizer="sgd")
    assert est.breakdown["optimizer_states"] == _nbytes(st["momentum_buffer"] for st in opt.state.values())


def test_full_adamw_mixed_precision_is_16_bytes_per_param_and_does_not_fit_24gb():
    est = estimate(DiaConfig.dia_1_6b(), 1, 256, 877, precision="bf16-mixed", optimizer="adamw")
    assert est.params == 1_611_160_576
    state = est.bytes_per_param(("master_weights", "gradients", "optimizer_states"))
    assert state == pytest.approx(16.0, abs=1e-3)
    assert state * est.params / 1e9 == pytest.approx(25.8, abs=0.05)  # 25.8 GB before activations
    assert est.total_bytes > 24 * GIB


def test_planner_verdicts_for_a_24gb_card():
    rows = {(r.precision, r.optimizer, r.grad_checkpointing, r.freeze_encoder, r.lora_rank): r
            for r in plan(gpu_gib=24)}
    assert not rows[("bf16-mixed", "adamw", False, False, None)].fits
    assert not rows[("bf16-mixed", "adamw", True, False, None)].fits  # checkpointing alone is not enough
    best = rows[("bf16-mixed", "adamw8bit", True, False, None)]
    assert best.fits and best.max_batch >= 2 and best.max_audio_len >= 877
    assert best.gib_at_max_batch <= 24 - 1.5
    # a bigger card fits full AdamW; smaller lengths never need more memory
    assert {r.fits for r in plan(gpu_gib=48, optimizers=("adamw",), lora_ranks=(None,))} == {True}
    c = DiaConfig.dia_1_6b()
    assert estimate(c, 2, 128, 400).total_bytes < estimate(c, 2, 256, 877).total_bytes


def test_marginal_settings_are_tight_not_fits():
    """21.2 and 21.6 GiB of 22.5 usable: no room for fragmentation and workspaces, so not called fits."""
    rows = {(r.optimizer, r.grad_checkpointing, r.freeze_encoder, r.lora_rank): r for r in plan(gpu_gib=24)}
    for key in (("adamw8bit", False, False, None), ("adamw", True, True, None)):
        r = rows[key]
        assert 22.5 / 1.1 < r.gib_at_batch_1 <= 22.5 and r.verdict == "tight" and not r.fits, r
    assert all(r.optimizer != "sgd" and r.precision == "bf16-mixed" for r in rows.values())
    assert all(r.gib_at_max_batch * 1.1 <= 22.5 for r in rows.values() if r.fits)


def test_checkpointing_and_8bit_reduce_the_right_terms():
    c = DiaConfig.dia_1_6b()
    base = estimate(c, 2, 256, 877)
    ck = estimate(c, 2, 256, 877, grad_checkpointing=True)
    b8 = estimate(c, 2, 256, 877, optimizer="adamw8bit")
    assert ck.breakdown["activations"] < base.breakdown["activations"] / 5
    assert ck.breakdown["optimizer_states"] == base.breakdown["optimizer_states"]
    # 2 uint8 states + 2 float32 absmax per 256 elements (bitsandbytes' block statistics): 2.03 of 8 B/param
    assert b8.breakdown["optimizer_states"] == pytest.approx(base.breakdown["optimizer_states"] * 2.03125 / 8,
                                                             rel=0.002)
    lora = estimate(c, 2, 256, 877, lora_rank=16)
    assert lora.trainable_params < 0.02 * lora.params


def test_bad_names_are_rejected_and_aliases_accepted():
    with pytest.raises(MemoryConfigError, match="precision='bf16-fast'.*bf16-mixed"):
        estimate(TINY, 1, 8, 8, precision="bf16-fast")
    with pytest.raises(MemoryConfigError, match="precision='auto'"):
        estimate(TINY, 1, 8, 8, precision="auto")  # the planner has no device to choose for
    alias = estimate(TINY, 1, 8, 8, precision="bf16")
    assert alias.total_bytes == estimate(TINY, 1, 8, 8, precision="bf16-mixed").total_bytes
    assert alias.settings["precision"] == "bf16-mixed"
    with pytest.raises(MemoryConfigError, match="adamw8bit"):
        estimate(TINY, 1, 8, 8, optimizer="adam")


def test_cli_dia_plan_exit_codes(capsys):
    from tts_nb_utils.cli import main

    assert main(["dia-plan", "--gpu-gib", "24"]) == 0
    out = capsys.readouterr().out
    assert "1,611,160,576 parameters" in out and "8-bit AdamW +ckpt " in out
    assert "audio 10 s = 877 decoder rows" in out  # 861 frames + 16, the planner's default length
    table = out.split("---\n", 1)[1].splitlines()
    assert table and all(" fits " in line and "spare" in line for line in table)  # only what fits, with why
    assert "sgd" not in out and "bf16-true" not in out and max(map(len, out.splitlines())) <= 120
    assert main(["dia-plan", "--bf16-true", "--all"]) == 0
    out = capsys.readouterr().out
    assert "bf16-true 8-bit AdamW +ckpt" in out and "note: bf16-true keeps no float32 weights" in out
    assert " tight " in out and " no " in out
    assert main(["dia-plan", "--audio-seconds", "100"]) == 0
    assert "8629 decoder rows, more than Dia's 3072" in capsys.readouterr().err
    assert main(["dia-plan", "--gpu-gib", "4"]) == 1  # nothing fits the 1.6B model in 4 GiB
    assert main(["dia-plan", "--gpu-gib", "1"]) == 2  # less than the reserve: a usage error


@pytest.mark.parametrize("implementation,preset,sizes,kw", [
    ("transformers", "tiny", (4, 64, 300), dict(precision="32-true")),
    ("transformers", "tiny", (4, 64, 300), dict(precision="bf16-mixed", grad_checkpointing=True)),
    ("transformers", "small", (2, 128, 400), dict(precision="32-true", optimizer="adamw8bit",
                                                  grad_checkpointing=True, freeze_encoder=True)),
    ("tts-nb", "tiny", (4, 64, 300), dict(precision="32-true")),  # the model the activation terms were read from
])
def test_planner_is_within_15_percent_of_the_measured_cpu_peak(preset, sizes, kw, implementation):
    from tts_nb_utils.dia.memcheck import _cpu_bytes_in_use, measure_peak

    if _cpu_bytes_in_use() is None:
        pytest.skip("no glibc mallinfo2 here to measure CPU memory")
    check = measure_peak(getattr(DiaConfig, preset)(), *sizes, implementation=implementation, **kw)
    assert check.measured_bytes > 20 * 2**20  # the step really allocated its tensors
    assert 0.85 <= check.ratio <= 1.15, (check.measured_bytes, check.planned_bytes)


def test_doctor_warns_when_a_dia_config_fits_only_without_margin(tmp_path):
    from tts_nb_utils.doctor.run import run_doctor

    path = tmp_path / "train.yaml"  # 8-bit AdamW without checkpointing, batch 1: 21.2 of 22.5 usable GiB
    path.write_text("dia_train:\n  micro_batch_size: 1\n  optimizer: adamw8bit\n  gpu_gib: 24\n")
    findings = run_doctor([path]).targets[0].findings
    assert [f.severity for f in findings] == ["warning"], findings
    assert "less than the 10% margin" in findings[0].what and "grad_checkpointing: True" in findings[0].fix
