"""scan-checkpoints and sovits-log on a logs_s2 folder in GPT-SoVITS's own format (48b1a01): train.log lines as
utils.get_logger writes them, G_/D_ checkpoints as utils.save_checkpoint writes them, one of them NaN."""

from __future__ import annotations

import json

import pytest
import torch

from tts_nb_utils.cli import main
from tts_nb_utils.diagnose.checkpoints import checkpoint_files, latest_clean, scan_checkpoint
from tts_nb_utils.upstream.gpt_sovits import format_sovits_log, scan_sovits_log, sovits_lr


def _save(path, model, optimizer, epoch):
    # utils.save_checkpoint (utils.py:75-90): "iteration" receives the epoch (s2_train.py:514-535)
    torch.save({"model": model.state_dict(), "iteration": epoch, "optimizer": optimizer.state_dict(),
                "learning_rate": 1e-4}, path)


def _trained(seed, poison=False):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Conv1d(4, 8, 3), torch.nn.Conv1d(8, 2, 1))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.8, 0.99), eps=1e-9)
    loss = model(torch.randn(2, 4, 16)).pow(2).mean() * (float("nan") if poison else 1.0)
    loss.backward()
    opt.step()  # a NaN gradient makes the weights and both Adam moments NaN, as in an fp32 run
    return model, opt


@pytest.fixture
def logs_s2(tmp_path):
    folder = tmp_path / "logs" / "myvoice" / "logs_s2_v2"
    folder.mkdir(parents=True)
    for step, epoch, poison in ((40, 2, False), (80, 4, False), (120, 6, True)):
        for net in "GD":
            _save(folder / f"{net}_{step}.pth", *_trained(step, poison and net == "G"), epoch)
    lines = []
    for step in range(0, 140, 20):
        epoch = step // 20 + 1
        nan = step >= 100
        losses = [float("nan") if nan else 2.5, 2.1, 3.0, 20.0, 0.0, 1.5]
        header, body = format_sovits_log(losses, step, sovits_lr(epoch), epoch=epoch, progress=0).split("\n")
        lines += [f"2026-11-22 02:00:{step % 60:02d},000\tmyvoice\tINFO\t{header}",
                  f"2026-11-22 02:00:{step % 60:02d},001\tmyvoice\tINFO\t{body}"]
    (folder.parent / "train.log").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def test_scan_names_the_nan_file_and_tensors_and_the_pair_to_resume_from(logs_s2):
    reports = [scan_checkpoint(f) for f in checkpoint_files([logs_s2])]
    assert [r.path.name for r in reports] == ["D_40.pth", "G_40.pth", "D_80.pth", "G_80.pth", "D_120.pth", "G_120.pth"]
    by_name = {r.path.name: r for r in reports}
    bad = by_name["G_120.pth"]
    assert bad.kind == "gpt-sovits-G" and bad.step == 120 and bad.epoch == 6 and not bad.clean
    names = {b.name for b in bad.bad}
    assert "model.0.weight" in names and "optimizer.state.0.exp_avg" in names and "optimizer.state.0.exp_avg_sq" in names
    assert all(r.clean for n, r in by_name.items() if n != "G_120.pth")
    assert [r.path.name for r in latest_clean(reports)] == ["G_80.pth", "D_80.pth"]


def test_cli_scan_checkpoints_exit_codes_and_json(logs_s2, tmp_path, capsys):
    out_json = tmp_path / "scan.json"
    assert main(["scan-checkpoints", str(logs_s2), "--json", str(out_json)]) == 1
    out = capsys.readouterr().out
    assert "G_120.pth [gpt-sovits-G step 120 epoch 6]: NaN/Inf in" in out
    assert "latest clean checkpoint to resume from: G_80.pth + D_80.pth" in out
    assert "move the later ones out of the folder (D_120.pth, G_120.pth)" in out
    data = json.loads(out_json.read_text())
    assert data["resume_from"][0].endswith("G_80.pth") and sum(not c["clean"] for c in data["checkpoints"]) == 1
    assert main(["scan-checkpoints", str(logs_s2 / "G_80.pth"), str(logs_s2 / "D_80.pth")]) == 0
    assert main(["scan-checkpoints", str(tmp_path / "nope")]) == 2
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["scan-checkpoints", str(empty)]) == 2


def test_unreadable_and_other_layouts_are_reported_and_the_scan_goes_on(tmp_path):
    (tmp_path / "G_10.pth").write_bytes(b"not a checkpoint")
    torch.save({"state_dict": {"w": torch.tensor([1.0, float("inf")])}, "epoch": 3, "global_step": 30,
                "optimizer_states": []}, tmp_path / "last.ckpt")
    torch.save({"w": torch.ones(3)}, tmp_path / "plain.pt")
    reports = {r.path.name: r for r in map(scan_checkpoint, checkpoint_files([tmp_path]))}
    assert reports["G_10.pth"].error and not reports["G_10.pth"].clean
    lightning = reports["last.ckpt"]
    assert lightning.kind == "lightning" and lightning.step == 30 and [str(b) for b in lightning.bad] == [
        "state_dict.w (1 Inf of 2)"
    ]
    assert reports["plain.pt"].kind == "state-dict" and reports["plain.pt"].clean


def test_sovits_log_takes_the_epoch_from_train_epoch_lines_and_calls_the_nan_persistent(logs_s2, capsys):
    scan = scan_sovits_log(logs_s2.parent / "train.log")
    assert len(scan.entries) == 7 and scan.nonfinite_count == 2 and scan.pattern == "persistent"
    first = scan.first_nonfinite
    assert (first.best_epoch, first.global_step, first.logged_epoch) == (6, 100, 6)
    assert main(["sovits-log", str(logs_s2.parent / "train.log")]) == 1
    out = capsys.readouterr().out
    assert "7 loss line(s), 2 with NaN/Inf (persistent)" in out and "epoch 6, step 100" in out


def test_intermittent_nan_is_told_apart(tmp_path):
    lines = []
    for step in range(10):
        losses = [float("nan") if step in (3, 7) else 1.0, 1.0, 1.0, 1.0, 0.0, 1.0]
        lines.append(format_sovits_log(losses, step, sovits_lr(1), epoch=1))
    log = tmp_path / "train.log"
    log.write_text("\n".join(lines) + "\n")
    scan = scan_sovits_log(log)
    assert scan.pattern == "intermittent" and scan.nonfinite_count == 2 and scan.first_nonfinite.global_step == 3
