"""sovits: decoding and writing GPT-SoVITS s2_train.py loss lines, and the sovits-log command."""

from __future__ import annotations

import math

import pytest

from tts_nb_utils.cli import main
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
    assert "epoch 5, step 200" in str(e)


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
    assert "epoch 5, step 200" in capsys.readouterr().out
    assert main(["sovits-log", "[1, 1, 1, 1, 0, 1, 7, 0.0001]"]) == 0
    assert main(["sovits-log", str(_write_log(tmp_path))]) == 1
    assert "first non-finite loss line: line 5, epoch 5, step 200" in capsys.readouterr().out
    assert main(["sovits-log", "[1, 2]"]) == 2
    assert main(["sovits-log", str(tmp_path / "missing.log")]) == 2
    empty = tmp_path / "empty.log"
    empty.write_text("nothing here\n")
    assert main(["sovits-log", str(empty)]) == 2
