"""The Dia training loop: accumulation equals a bigger batch, exact resume, DDP (2 gloo processes) equals one
process, warm-up + cosine schedule, AMP."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from tts_nb_utils.dia.checkpoint import export_dia_checkpoint
from tts_nb_utils.dia.data import DiaDataset, collate
from tts_nb_utils.dia.memory import estimate
from tts_nb_utils.dia.model import DiaConfig, DiaModel
from tts_nb_utils.dia.train import (
    DiaTrainResult,
    ResumeError,
    TrainConfig,
    TrainConfigError,
    make_optimizer,
    make_scheduler,
    merge_lora,
    numbered_checkpoint,
    stream_indices,
    train,
)

CFG = DiaConfig(enc_layers=1, enc_dim=32, enc_heads=2, enc_head_dim=16, enc_mlp=64, dec_layers=1, dec_dim=64,
                dec_q_heads=4, dec_kv_heads=2, dec_head_dim=16, cross_heads=2, cross_head_dim=16, dec_mlp=128)


def _dataset(n=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    return DiaDataset([(f"[S1] line {i}" + "!" * (i % 3), torch.randint(0, 1024, (5 + 4 * i, 9), generator=g))
                       for i in range(n)])


def _model(implementation="tts-nb"):
    torch.manual_seed(0)
    if implementation == "transformers":
        from tts_nb_utils.dia.hf import transformers_model

        return transformers_model(CFG)
    return DiaModel(CFG)


def _cfg(**kw):
    base = dict(steps=4, micro_batch_size=4, grad_accum=1, lr=3e-3, warmup_steps=1, progress=False,
                text_dropout=0.3, seed=1)
    return TrainConfig(**(base | kw))


def _flat(model):
    return torch.cat([p.detach().flatten() for p in model.parameters()])


@pytest.mark.parametrize("implementation", ["transformers", "tts-nb"])
def test_accumulating_4_by_1_equals_batch_4(implementation):
    ds = _dataset()
    a, b = _model(implementation), _model(implementation)
    ra = train(a, ds, _cfg(micro_batch_size=4, grad_accum=1), "cpu")
    rb = train(b, ds, _cfg(micro_batch_size=1, grad_accum=4), "cpu")
    assert ra.losses == pytest.approx(rb.losses, abs=1e-5)
    assert torch.allclose(_flat(a), _flat(b), atol=1e-5)
    assert ra.losses[-1] < ra.losses[0] and abs(ra.losses[0] - math.log(1028)) < 0.1


def test_resume_continues_the_same_loss_curve(tmp_path):
    ds = _dataset()
    full = train(_model(), ds, _cfg(steps=6), "cpu")
    ckpt = tmp_path / "run" / "ckpt.pt"
    first = train(_model(), ds, _cfg(steps=6), "cpu", checkpoint=ckpt, stop_at=3)
    assert first.step == 3 and ckpt.is_file() and not list(ckpt.parent.glob(".*part*"))
    torch.manual_seed(123)  # a different process state: everything must come from the checkpoint
    other = DiaModel(CFG)
    second = train(other, ds, _cfg(steps=6), "cpu", checkpoint=ckpt)
    assert second.resumed_from == 3 and len(second.losses) == 6
    assert second.losses == pytest.approx(full.losses, abs=1e-6)
    assert second.lrs == pytest.approx(full.lrs)
    with pytest.raises(ResumeError, match="global_batch was 4, now 2"):
        train(DiaModel(CFG), ds, _cfg(steps=6, micro_batch_size=2), "cpu", checkpoint=ckpt)


def test_kept_checkpoints_are_resume_points_of_the_uninterrupted_run(tmp_path):
    """keep_checkpoints: each periodic save stays as dia-stepN.pt; resuming from the halfway one (what a session
    killed after that step leaves) continues the uninterrupted run's curve exactly."""
    ds = _dataset()
    ckpt = tmp_path / "dia.pt"
    cfg = _cfg(steps=6, checkpoint_every=3, keep_checkpoints=True)
    full = train(_model(), ds, cfg, "cpu", checkpoint=ckpt)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dia-step3.pt", "dia-step6.pt", "dia.pt"]
    assert numbered_checkpoint(ckpt, 3) == tmp_path / "dia-step3.pt"
    killed = tmp_path / "killed" / "dia.pt"
    killed.parent.mkdir()
    killed.write_bytes(numbered_checkpoint(ckpt, 3).read_bytes())
    torch.manual_seed(123)
    resumed = train(DiaModel(CFG), ds, cfg, "cpu", checkpoint=killed)
    assert resumed.resumed_from == 3 and resumed.losses == pytest.approx(full.losses, abs=1e-6)
    assert resumed.losses[:3] == full.losses[:3]  # the history up to the save comes from the file
    assert sorted(p.name for p in killed.parent.iterdir()) == ["dia-step6.pt", "dia.pt"]

def test_schedule_warms_up_then_decays_to_the_floor():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    cfg = TrainConfig(steps=20, lr=1.0, warmup_steps=5, min_lr_ratio=0.1)
    sched = make_scheduler(opt, cfg)
    lrs = []
    for _ in range(20):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] == pytest.approx(1 / 6)  # step k of the warm-up runs at lr * (k + 1) / (warmup + 1)
    assert lrs[0] < lrs[4] < lrs[5] == pytest.approx(1.0)
    assert all(x >= y for x, y in zip(lrs[5:], lrs[6:], strict=False)) and lrs[-1] > 0.1
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1)


def test_stream_is_a_permutation_per_epoch():
    idx = stream_indices(range(12), 6, seed=0)
    assert sorted(idx[:6]) == sorted(idx[6:]) == list(range(6)) and idx[:6] != idx[6:]


def test_bf16_autocast_training_runs_on_cpu():
    r = train(_model(), _dataset(), _cfg(steps=2, precision="bf16"), "cpu")
    assert isinstance(r, DiaTrainResult) and len(r.losses) == len(r.lrs) == r.step == 2
    assert r.precision == "bf16-mixed" and all(math.isfinite(x) for x in r.losses)  # the alias, resolved


def _ddp_worker(rank, world, init_file, out_file):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        result = train(_model(), _dataset(), _cfg(micro_batch_size=2), "cpu")
        if rank == 0:
            torch.save(result.losses, out_file)
    finally:
        dist.destroy_process_group()


def test_ddp_two_gloo_processes_equal_one_process_on_the_same_global_batch(tmp_path):
    single = train(_model(), _dataset(), _cfg(micro_batch_size=4), "cpu")
    out = tmp_path / "ddp_losses.pt"
    mp.spawn(_ddp_worker, args=(2, str(tmp_path / "init"), str(out)), nprocs=2, join=True)
    assert torch.load(out) == pytest.approx(single.losses, abs=1e-5)


def test_unknown_precisions_and_optimizers_are_refused_before_training():
    with pytest.raises(ValueError, match=r"precision='bf16-fast'.*'bf16-true'"):
        train(_model(), _dataset(), _cfg(steps=1, precision="bf16-fast"), "cpu")
    with pytest.raises(TrainConfigError, match=r"optimizer='adam'.*adamw8bit"):
        train(_model(), _dataset(), _cfg(steps=1, optimizer="adam"), "cpu")
    assert train(_model(), _dataset(), _cfg(steps=1, precision="auto"), "cpu").precision == "32-true"
    assert TrainConfig().lr == 1e-5  # the fine-tuning default; the tiny model here asks for more


def test_bf16_true_keeps_weights_and_optimizer_states_in_bfloat16():
    model = _model()
    r = train(model, _dataset(), _cfg(steps=3, precision="bf16-true"), "cpu")
    assert r.precision == "bf16-true" and r.losses[-1] < r.losses[0]
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}


def test_frozen_encoder_is_not_updated():
    model = _model()
    enc = [p.detach().clone() for p in model.encoder.parameters()]
    dec = [p.detach().clone() for p in model.decoder.parameters()]
    train(model, _dataset(), _cfg(steps=2, freeze_encoder=True), "cpu")
    assert all(torch.equal(a, b) for a, b in zip(enc, model.encoder.parameters(), strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(dec, model.decoder.parameters(), strict=True))


def test_adamw8bit_trains_with_8bit_states_as_the_planner_counts():
    big = DiaConfig(enc_layers=1, enc_dim=64, enc_heads=2, enc_head_dim=32, enc_mlp=128, dec_layers=1,
                    dec_dim=64, dec_q_heads=2, dec_kv_heads=1, dec_head_dim=32, cross_heads=2, cross_head_dim=32,
                    dec_mlp=128)
    torch.manual_seed(0)
    model = DiaModel(big)
    cfg = _cfg(steps=6, optimizer="adamw8bit")
    r = train(model, _dataset(), cfg, "cpu", checkpoint=None)
    assert r.losses[-1] < r.losses[0] - 0.1
    opt = make_optimizer(model, cfg)
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()
    states = [(t.dtype, t.numel() * t.element_size()) for st in opt.state.values() for t in st.values()
              if torch.is_tensor(t)]  # state1/2, and for 8-bit tensors absmax1/2 (per 256 elements), qmap1/2
    assert {d for d, _ in states} == {torch.uint8, torch.float32}  # 8-bit for tensors of >= 4096 elements
    est = estimate(big, 1, 8, 8, precision="32-true", optimizer="adamw8bit")
    assert sum(n for _, n in states) == est.breakdown["optimizer_states"]


def test_lora_trains_only_adapters_and_merges_back_for_export(tmp_path):
    model = _model()
    base = {n: p.detach().clone() for n, p in model.named_parameters()}
    cfg = _cfg(steps=4, lora_rank=4, freeze_encoder=True, lr=1e-2)
    r = train(model, _dataset(), cfg, "cpu")
    assert r.losses[-1] < r.losses[0]
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert trainable == estimate(CFG, 1, 8, 8, freeze_encoder=True, lora_rank=4).trainable_params
    now = dict(model.named_parameters())
    assert all(torch.equal(now[n.replace(".weight", ".base_layer.weight")] if n not in now else now[n], t)
               for n, t in base.items())
    b = collate([_dataset()[0]])
    model.eval()
    with torch.no_grad():
        before = model(**b.model_inputs())
        merge_lora(model)
        assert not any(hasattr(m, "lora_A") for m in model.modules())
        assert torch.allclose(model(**b.model_inputs()), before, atol=1e-5)
    export_dia_checkpoint(model, tmp_path / "merged.pth")


def test_missing_optional_packages_give_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "bitsandbytes", None)
    monkeypatch.setitem(sys.modules, "peft", None)
    with pytest.raises(TrainConfigError, match=r"optimizer='adamw8bit' needs the optional package bitsandbytes"):
        train(_model(), _dataset(), _cfg(steps=1, optimizer="adamw8bit"), "cpu")
    with pytest.raises(TrainConfigError, match=r"lora_rank=4 needs the optional package peft.*tts-nb\[dia\]"):
        train(_model(), _dataset(), _cfg(steps=1, lora_rank=4), "cpu")


def test_loading_peft_and_bitsandbytes_never_loads_the_hub_kernel_fetcher():
    # bitsandbytes (imported by peft too) would ask the Hugging Face Hub for an optional CPU kernel through
    # `kernels`; the training code hides that package for the import, so nothing reaches the network.
    code = ("import sys; from tts_nb_utils.dia.train import _optional; _optional('peft', 'x'); "
            "_optional('bitsandbytes', 'x'); print('bitsandbytes' in sys.modules, sys.modules.get('kernels') is None)")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.split() == ["True", "True"], run.stdout + run.stderr
    assert "kernels-community" not in run.stderr
