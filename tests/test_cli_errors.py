"""Exit codes everywhere: 0 ok, 1 findings, 2 usage errors (bad values, unreadable paths), 3 internal errors as
one line (``--debug`` for the traceback); never a traceback and never exit 1 for a crash."""

from __future__ import annotations

import pytest

import tts_nb_utils.cli.gpt_sovits as gpt_sovits_cli
from tts_nb_utils.cli import main


def test_internal_error_is_one_line_and_exit_3_and_debug_shows_the_traceback(tmp_path, capsys, monkeypatch):
    log = tmp_path / "train.log"
    log.write_text("[1, 1, 1, 1, 0, 1, 7, 0.0001]\n")

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr("tts_nb_utils.upstream.gpt_sovits.scan_sovits_log", broken)
    monkeypatch.setattr(gpt_sovits_cli, "scan_sovits_log", broken)
    assert main(["sovits-log", str(log)]) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "internal error: RuntimeError: boom" in err and "--debug" in err
    with pytest.raises(RuntimeError, match="boom"):
        main(["--debug", "sovits-log", str(log)])


def test_unreadable_path_is_a_usage_error(tmp_path, capsys):
    assert main(["scan-checkpoints", str(tmp_path / "missing")]) == 2
    assert "missing: no such file or folder" in capsys.readouterr().err


@pytest.mark.parametrize(
    "args, message",
    [
        (["sovits-log", "x", "--lr0", "0"], "--lr0: '0' is not a finite number above 0"),
        (["sovits-log", "x", "--lr-decay", "1.5"], "--lr-decay: '1.5' is not a number between 0 and 1"),
        (["check-features", "a", "b", "--expect-dim", "-3"], "--expect-dim: '-3' is not a whole number of 1 or more"),
        (["run", "--timeout", "nan"], "--timeout: 'nan' is not a finite number above 0"),
        (["lr-plan", "--scheduler", "StepLR", "--params", '{"step_size": 0}', "--lr", "1", "--batches-per-epoch",
          "2", "--epochs", "2"], "fails when stepped"),
        (["lr-plan", "--scheduler", "CosineAnnealingLR", "--params", '{"T_max": 0}', "--lr", "1",
          "--batches-per-epoch", "2", "--epochs", "2"], "fails when stepped"),
        (["lr-plan", "--scheduler", "NoamLR", "--params", '{"warmup_steps": 0}', "--lr", "1",
          "--batches-per-epoch", "2", "--epochs", "2"], "NoamLR(optimizer"),
        (["lr-plan", "--scheduler", "OneCycleLR", "--params", '{"max_lr": 0.1, "total_steps": 5}', "--lr", "1",
          "--batches-per-epoch", "10", "--epochs", "3", "--per-step"], "fails at optimizer step 6 of 30"),
        (["lr-plan", "--scheduler", "StepLR", "--params", '{"step_size": 1}', "--lr", "1",
          "--batches-per-epoch", "100000", "--epochs", "1000000"], "more than the 2,000,000 a trace holds"),
    ],
)
def test_bad_values_are_usage_errors_naming_the_value(capsys, args, message):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_yaml_alias_bomb_and_deep_nesting_are_refused_quickly(tmp_path, capsys):
    import time

    bomb, prev = 'a: &a ["x", "x", "x", "x", "x", "x", "x", "x", "x"]\n', "a"
    for name in "bcdefghi":  # 9 levels of 9 aliases: 387 million values once expanded, in 370 bytes
        bomb += f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 9) + "]\n"
        prev = name
    (tmp_path / "bomb.yaml").write_text(bomb + "task_cls: training.variance_task.VarianceTask\n")
    (tmp_path / "deep.yaml").write_text("x: " + "[" * 5000 + "]" * 5000 + "\n")
    start = time.monotonic()
    assert main(["check-config", str(tmp_path / "bomb.yaml")]) == 2
    assert "expands to more than 200,000 values through its aliases" in capsys.readouterr().err
    assert main(["check-config", str(tmp_path / "deep.yaml")]) == 2
    assert "nested more than 100 levels deep" in capsys.readouterr().err
    assert time.monotonic() - start < 10


@pytest.mark.parametrize("args", [["dia-plan", "--audio-seconds", "nan"], ["dia-plan", "--gpu-gib", "-1"],
                                  ["dia-train", "--steps", "0"], ["dia-train", "--lr", "inf"]])
def test_dia_options_are_checked(capsys, args):
    assert main(args) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_an_output_option_pointing_at_a_folder_is_a_usage_error(tmp_path, capsys):
    import numpy as np
    import soundfile as sf

    (tmp_path / "in").mkdir()
    sf.write(tmp_path / "in" / "a.wav", np.zeros(16000, dtype="float32"), 16000)
    (tmp_path / "a_folder").mkdir()
    assert main(["validate", str(tmp_path / "in"), "--json", str(tmp_path / "a_folder"), "-q"]) == 2
    assert main(["lr-plan", "--scheduler", "StepLR", "--params", '{"step_size": 2}', "--lr", "1",
                 "--batches-per-epoch", "2", "--epochs", "2", "--plot", str(tmp_path / "a_folder")]) == 2
    err = capsys.readouterr().err
    assert err.count("a_folder") >= 2 and "Traceback" not in err and "internal error" not in err
