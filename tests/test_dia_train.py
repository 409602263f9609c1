"""The Dia training loop: accumulation equals a bigger batch, exact resume, DDP (2 gloo processes) equals one
process, warm-up + cosine schedule, AMP."""

from __future__ import annotations

import math

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from tts_nb_utils.dia.data import DiaDataset
from tts_nb_utils.dia.model import DiaConfig, DiaModel
from tts_nb_utils.dia.train import (
    DiaTrainResult,
    ResumeError,
    TrainConfig,
    make_scheduler,
    stream_indices,
    train,
)

CFG = DiaConfig(enc_layers=1, enc_dim=32, enc_heads=2, enc_head_dim=16, enc_mlp=64, dec_layers=1, dec_dim=64,
                dec_q_heads=4, dec_kv_heads=2, dec_head_dim=16, cross_heads=2, cross_head_dim=16, dec_mlp=128)


def _dataset(n=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    return DiaDataset([(f"[S1] line {i}" + "!" * (i % 3), torch.randint(0, 1024, (5 + 4 * i, 9), generator=g))
                       for i in range(n)])


def _model():
    torch.manual_seed(0)
    return DiaModel(CFG)


def _cfg(**kw):
    base = dict(steps=4, micro_batch_size=4, grad_accum=1, lr=3e-3, warmup_steps=1, progress=False,
                text_dropout=0.3, seed=1)
    return TrainConfig(**(base | kw))


def _flat(model):
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def test_accumulating_4_by_1_equals_batch_4():
    ds = _dataset()
    a, b = _model(), _model()
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


def test_unknown_and_unsupported_precisions_are_refused_before_training():
    with pytest.raises(ValueError, match=r"precision='bf16-true'.*'32-true', '16-mixed', 'bf16-mixed'"):
        train(_model(), _dataset(), _cfg(steps=1, precision="bf16-true"), "cpu")  # the loop keeps fp32 weights
    assert train(_model(), _dataset(), _cfg(steps=1, precision="auto"), "cpu").precision == "32-true"
