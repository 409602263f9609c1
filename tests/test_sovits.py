"""sovits: decoding and writing GPT-SoVITS s2_train.py loss lines, and the sovits-log command."""

from __future__ import annotations

import json
import math
import warnings

import pytest
import torch

from tests.sovits_files import log_lines, save_run
from tts_nb_utils.cli import main
from tts_nb_utils.doctor.run import run_doctor
from tts_nb_utils.upstream.gpt_sovits import (
    LOSS_NAMES,
    SovitsLogError,
    decode_sovits_log,
    format_sovits_log,
    scan_sovits_log,
    sovits_lr,
)

EXAMPLE = "[nan, nan, nan, nan, 0.0, nan, 200, 9.993751562304699e-05]"


def test_example_line_is_epoch_5_step_200():
    e = decode_sovits_log(EXAMPLE)
    assert e.epoch == 5 and e.global_step == 200
    assert e.lr == pytest.approx(9.993751562304699e-05, rel=0, abs=0)
    assert list(e.losses) == list(LOSS_NAMES)
    assert e.losses["kl_ssl"] == 0.0 and math.isnan(e.losses["loss_mel"])
    assert e.nonfinite == ["loss_disc", "loss_gen", "loss_fm", "loss_mel", "loss_kl"] and not e.finite
    assert "epoch 5 (3-5 if the run was ever resumed), step 200" in str(e)


def test_logger_prefix_and_custom_schedule():
    e = decode_sovits_log("INFO:my-voice:[2.75, 1.91, 9.37, 20.8, 0.0, 1.2, 1234, 0.0001]")
    assert e.epoch == 0 and e.finite and e.losses["loss_mel"] == 20.8
    lr = sovits_lr(12, lr0=2e-4, lr_decay=0.999)
    e = decode_sovits_log(f"[1, 1, 1, 1, 0, 1, 5, {lr!r}]", lr0=2e-4, lr_decay=0.999)
    assert e.epoch == 12
    assert decode_sovits_log(f"[1, 1, 1, 1, 0, 1, 5, {lr!r}]").epoch is None  # does not fit 1e-4 * 0.999875^e


@pytest.mark.parametrize(
    "line, match",
    [
        ("Train Epoch: 5 [50%]", "epoch header"),
        ("[nan, nan, nan, 0.0, nan, 200, 9.99e-05]", "7 entries .* expected 8"),
        ("[nan, nan, nan, nan, 0.0, nan, 200.5, 9.99e-05]", "global_step"),
        ("[nan, nan, nan, nan, 0.0, nan, 200, -1e-4]", "lr="),
        ("[nan, nan, oops, nan, 0.0, nan, 200, 9.99e-05]", "loss_fm='oops'"),
        ("", "no \\[...\\] list"),
    ],
)
def test_malformed_lines_raise_clear_errors(line, match):
    with pytest.raises(SovitsLogError, match=match):
        decode_sovits_log(line)


def test_format_round_trips_and_matches_upstream_layout():
    text = format_sovits_log(
        {"loss_mel": float("nan"), "loss_kl": float("nan")}, 200, sovits_lr(5), epoch=5, progress=40, logger_name="x"
    )
    first, second = text.splitlines()
    assert first == "INFO:x:Train Epoch: 5 [40%]"
    assert second == "INFO:x:[0.0, 0.0, 0.0, nan, 0.0, nan, 200, 9.993751562304699e-05]"
    assert decode_sovits_log(second).epoch == 5
    assert format_sovits_log([float("nan")] * 4 + [0.0, float("nan")], 200, sovits_lr(5)) == EXAMPLE
    with pytest.raises(KeyError, match="loss_foo"):
        format_sovits_log({"loss_foo": 1.0}, 1, 1e-4)
    with pytest.raises(ValueError, match="6"):
        format_sovits_log([1.0, 2.0], 1, 1e-4)


def _write_log(tmp_path):
    lines = ["INFO:v:start training", "INFO:v:Train Epoch: 4 [0%]",
             "INFO:v:" + format_sovits_log([2.7, 1.9, 9.3, 20.8, 0.0, 1.5], 100, sovits_lr(4)),
             "INFO:v:Train Epoch: 5 [50%]", "INFO:v:" + EXAMPLE,
             "INFO:v:[1.0, 2.0, x, 4.0, 0.0, 1.0, 300, 9.99e-05]"]
    path = tmp_path / "train.log"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_scan_finds_first_nan_and_keeps_going_past_bad_lines(tmp_path):
    scan = scan_sovits_log(_write_log(tmp_path))
    assert [e.global_step for e in scan.entries] == [100, 200]
    assert scan.entries[0].logged_epoch == 4 == scan.entries[0].epoch
    first = scan.first_nonfinite
    assert first.global_step == 200 and first.epoch == first.logged_epoch == 5 and first.line_number == 5
    assert len(scan.problems) == 1 and scan.problems[0][0] == 6
    with pytest.raises(FileNotFoundError, match="nope.log"):
        scan_sovits_log(tmp_path / "nope.log")


def test_cli_exit_codes(tmp_path, capsys):
    assert main(["sovits-log", EXAMPLE]) == 1
    assert "epoch 5 (3-5 if the run was ever resumed), step 200" in capsys.readouterr().out
    assert main(["sovits-log", "[1, 1, 1, 1, 0, 1, 7, 0.0001]"]) == 0
    assert main(["sovits-log", str(_write_log(tmp_path))]) == 1
    assert "first non-finite loss line: line 5, epoch 5, step 200" in capsys.readouterr().out
    assert main(["sovits-log", "[1, 2]"]) == 2
    assert main(["sovits-log", str(tmp_path / "missing.log")]) == 2
    empty = tmp_path / "empty.log"
    empty.write_text("nothing here\n")
    assert main(["sovits-log", str(empty)]) == 2


def _s2_schedule(opt, epoch_str, gamma=0.999875):
    """s2_train.py:268-281 at 48b1a01: ExponentialLR(last_epoch=-1), stepped epoch_str times before training."""
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=gamma, last_epoch=-1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(epoch_str):
            sched.step()
    return sched


def _logged_run(tmp_path, resume_at=4, until=7):
    """A fresh run to ``resume_at``, then a resume from that checkpoint, on upstream's scheduler code path; the
    train.log it writes (Loaded checkpoint line included)."""
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.AdamW([p], lr=1e-4)
    rows, sched = [], _s2_schedule(opt, 1)
    for epoch in range(1, resume_at + 1):
        rows.append((epoch, epoch * 10, [1.0, 1.0, 1.0, 20.0, 0.0, 1.0], opt.param_groups[0]["lr"]))
        if epoch == resume_at:  # utils.save_checkpoint at the end of train_and_evaluate (s2_train.py:514-535)
            saved = opt.state_dict()
        sched.step()  # then the scheduler, after train_and_evaluate (s2_train.py:285-315)
    opt = torch.optim.AdamW([p], lr=1e-4)
    opt.load_state_dict(saved)  # utils.load_checkpoint, utils.py:28-29
    sched = _s2_schedule(opt, resume_at + 1)
    after = []
    for epoch in range(resume_at + 1, until + 1):
        after.append((epoch, epoch * 10, [1.0, 1.0, 1.0, 20.0, 0.0, 1.0], opt.param_groups[0]["lr"]))
        sched.step()
    log = tmp_path / "train.log"
    loaded = [(f"logs/x/logs_s2_v2/G_{resume_at * 10}.pth", resume_at)]
    log.write_text("\n".join(log_lines("x", rows) + log_lines("x", after, loaded)) + "\n")
    return log


def test_after_a_resume_the_lr_decays_again_and_the_log_reader_follows_it(tmp_path):
    log = _logged_run(tmp_path)
    scan = scan_sovits_log(log)
    assert [e.lr_offset for e in scan.entries] == [0, 0, 0, 0, 4, 4, 4]  # exponent = epoch + the epoch resumed from
    assert not scan.lr_misfits and scan.resumes == [(9, "logs/x/logs_s2_v2/G_40.pth", 4)]
    last = scan.entries[-1]
    assert last.epoch == 11 and last.logged_epoch == 7  # alone, the line would say 11
    assert last.epoch_range[0] <= 7 <= last.epoch_range[1]
    assert "resumed run" in scan.summary()


def test_lora_lines_are_read_and_their_nan_reported(tmp_path, capsys):
    rows = [(e, e * 10, [float("nan") if e >= 3 else 0.5], sovits_lr(e)) for e in range(1, 5)]
    log = tmp_path / "logs" / "v4run" / "train.log"  # s2_train_v3_lora.py:329-334: [cfm_loss, global_step, lr]
    log.parent.mkdir(parents=True)
    log.write_text("\n".join(["2026-11-22 02:00:00,000\tv4run\tINFO\t{'train': {'betas': [0.8, 0.99]}}",
                              *log_lines("v4run", rows)]) + "\n")
    scan = scan_sovits_log(log)
    assert len(scan.entries) == 4 and scan.pattern == "persistent" and not scan.problems
    assert scan.first_nonfinite.nonfinite == ["cfm_loss"] and scan.first_nonfinite.logged_epoch == 3
    assert main(["sovits-log", str(log)]) == 1
    assert "4 loss line(s), 2 with NaN/Inf (persistent)" in " ".join(capsys.readouterr().out.split())


def test_doctor_reads_a_resumed_run_without_alarm_and_points_data_nan_at_the_clip(tmp_path):
    exp = tmp_path / "logs" / "x"
    exp.mkdir(parents=True)
    (exp / "train.log").write_text(_logged_run(tmp_path).read_text())
    (exp / "config.json").write_text(json.dumps({"train": {"fp16_run": True}}))
    target = run_doctor([exp]).targets[0]
    assert target.kind == "gpt-sovits" and not [f for f in target.findings if f.severity != "info"], target.findings
    assert any("resumed run" in n for n in target.notes)
    rows = [(e, e * 10, [float("nan")] * 6 if e >= 2 else [1.0] * 6, sovits_lr(e)) for e in range(1, 4)]
    (exp / "train.log").write_text("\n".join(log_lines("x", rows)) + "\n")  # kl_ssl NaN as well: the data
    (exp / "config.json").write_text(json.dumps({"train": {"fp16_run": True, "if_save_latest": True}}))
    (nan,) = [f for f in run_doctor([exp]).targets[0].findings if "NaN/Inf loss" in f.what]
    assert nan.severity == "error" and "kl_ssl is NaN too" in nan.what
    assert "2-get-hubert-wav32k.py" in nan.fix and "tts-nb validate" in nan.fix and "fp16_run false" not in nan.fix[:40]


def test_doctor_on_the_webui_default_save_latest_nan_pair(tmp_path):
    exp = tmp_path / "logs" / "x"
    save_run(exp / "logs_s2_v2", [(233333333333, 8, True)])
    rows = [(e, e * 10, [1.0] * 6, sovits_lr(e)) for e in range(1, 3)]
    (exp / "train.log").write_text("\n".join(log_lines("x", rows)) + "\n")
    (exp / "config.json").write_text(json.dumps({"train": {"fp16_run": False, "if_save_latest": True}}))
    target = run_doctor([exp]).targets[0]
    errors = [f for f in target.findings if f.severity == "error"]
    assert {f.where for f in errors} == {"logs_s2_v2/G_233333333333.pth", "logs_s2_v2/D_233333333333.pth"}
    assert all("save only the latest" in f.fix for f in errors)
    assert any("if_save_latest is true" in n for n in target.notes)
