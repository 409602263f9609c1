"""The README's exit-code table, command by command: each ``tts-nb`` command runs on a clean input and on a
broken one (artefacts in upstream's formats, built here), and its code is the one the rule gives: 0 no finding
at error level, 1 findings at error level, 2 usage errors (bad option, unreadable input, refused output)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import soundfile as sf

from tts_nb_utils.cli import COMMAND_MODULES, EXIT_CODES, build_parser, main
from tts_nb_utils.demos import nb08_broken_project as bp
from tts_nb_utils.runner.paths import data_dir

from .conftest import ROOT

COMMANDS = ("validate", "denoise", "slice", "prepare", "sovits-log", "scan-checkpoints", "check-config", "lr-plan",
            "dia-plan", "dia-train", "check-features", "check-embedders", "doctor", "run", "sweep", "list", "strip", "docs")


def _tone(path, seconds=3.0, sr=32000, gap=(1.0, 1.3)):
    """A 220 Hz tone at -10 dBFS with a pause: sliced at the pause, passes validation."""
    t = np.arange(int(seconds * sr)) / sr
    y = 0.3 * np.sin(2 * np.pi * 220 * t) * (1 + 0.2 * np.sin(2 * np.pi * 3 * t))
    y[int(gap[0] * sr):int(gap[1] * sr)] = 0
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, y.astype(np.float32), sr, subtype="PCM_16")
    return path


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    """Clean and broken inputs for every command, built once."""
    w = tmp_path_factory.mktemp("exit")
    audio = w / "audio"
    bp.make_audio(audio)
    for name in ("clip_0.wav", "clip_1.wav"):
        (w / "clean_audio").mkdir(exist_ok=True)
        shutil.copy(audio / name, w / "clean_audio" / name)
    (w / "bad_audio").mkdir()
    shutil.copy(audio / "clip_silent.wav", w / "bad_audio" / "clip_silent.wav")
    _tone(w / "takes" / "a.wav")
    (w / "junk").mkdir()
    _tone(w / "junk" / "a.wav")
    (w / "junk" / "b.wav").write_bytes(b"this is not audio")
    bp.make_sovits(w / "sovits")
    (w / "ckpt_clean").mkdir()
    for name in ("G_100.pth", "D_100.pth"):  # a pair: s2_train.py resumes from both
        shutil.copy(w / "sovits" / "logs_s2_v2" / name, w / "ckpt_clean" / name)
    rng = np.random.default_rng(0)
    for folder in ("feat_audio", "feat_ok", "feat_zero"):
        (w / folder).mkdir()
    for name in ("ok", "zero"):
        sf.write(w / "feat_audio" / f"{name}.wav", np.full(1600, 0.1, np.float32), 16000)
        np.save(w / "feat_ok" / f"{name}.npy", rng.standard_normal((20, 768)).astype(np.float32))
        wide = rng.standard_normal((20, 768)) if name == "ok" else np.zeros((20, 768))
        np.save(w / "feat_zero" / f"{name}.npy", wide.astype(np.float32))
    (w / "emb").mkdir()
    (w / "emb" / "model.pt").write_bytes(b"weights")
    shutil.copytree(w / "emb", w / "emb_dup")
    (w / "emb_dup" / "model (1).pt").write_bytes(b"weights")
    return w


def _nb(make_notebook, name, body):
    return make_notebook(name, "SEED = 0  # seed", body)


def _cases(w, make_notebook):
    """command -> (clean argv, broken argv, code for the broken one)."""
    ds = data_dir() / "diffsinger"
    lr = ["lr-plan", "--lr", "1e-3", "--batches-per-epoch", "4", "--epochs", "6"]
    ok_nb, bad_nb = _nb(make_notebook, "ok.ipynb", "x = 1"), _nb(make_notebook, "bad.ipynb", "assert False, 'no'")
    not_nb = make_notebook("x.ipynb", "SEED = 0  # seed").with_name("broken.ipynb")
    not_nb.write_text("{ not json")
    (w / "empty_site").mkdir(exist_ok=True)
    return {
        "validate": (["validate", w / "clean_audio", "-q"], ["validate", w / "bad_audio", "-q"], 1),
        "denoise": (["denoise", w / "takes" / "a.wav", w / "dn" / "a.wav", "-q"], ["denoise", w / "junk", w / "dn2", "-q"], 1),
        "slice": (["slice", w / "takes", w / "sl", "-q"], ["slice", w / "junk", w / "sl2", "-q"], 1),
        "prepare": (["prepare", w / "takes", w / "pr", "-q", "--no-denoise", "--min-duration", "0.3"],
                    ["prepare", w / "junk", w / "pr2", "-q", "--no-denoise", "--min-duration", "0.3"], 1),
        "sovits-log": (["sovits-log", "[1.0, 2.0, 3.0, 4.0, 0, 5.0, 50, 9.99e-05]"],
                       ["sovits-log", "[nan, nan, nan, nan, 0, nan, 200, 9.99e-05]"], 1),
        "scan-checkpoints": (["scan-checkpoints", w / "ckpt_clean"], ["scan-checkpoints", w / "sovits"], 1),
        "check-config": (["check-config", ds / "fixed_variance.yaml", "--root", ds],
                         ["check-config", ds / "template_variance.yaml", "--root", ds], 1),
        "lr-plan": ([*lr, "--per-step", "--scheduler", "StepLR", "--params", '{"step_size": 8}'],
                    [*lr, "--scheduler", "MultiStepLR", "--params", '{"milestones": [100000]}'], 1),
        "dia-plan": (["dia-plan"], ["dia-plan", "--gpu-gib", "4", "--reserve-gib", "3.9"], 1),
        "dia-train": (["dia-train", "--steps", "1", "--items", "2", "--micro-batch-size", "1", "--precision", "fp32"],
                      ["dia-train", "--init", w / "takes" / "a.wav", "--init-config", w / "takes" / "a.wav"], 2),
        "check-features": (["check-features", w / "feat_audio", w / "feat_ok", "--expect-dim", "768"],
                           ["check-features", w / "feat_audio", w / "feat_zero", "--expect-dim", "768"], 1),
        "check-embedders": (["check-embedders", w / "emb"], ["check-embedders", w / "emb_dup"], 1),
        "doctor": (["doctor", w / "clean_audio"], ["doctor", w / "bad_audio"], 1),
        "run": (["run", ok_nb, "--out", w / "runs"], ["run", bad_nb, "--out", w / "runs_bad"], 1),
        "sweep": (["sweep", ok_nb, "--seeds", "0,1", "--out", w / "sweep"],
                  ["sweep", bad_nb, "--seeds", "3", "--out", w / "sweep_bad"], 1),
        "list": (["list", ok_nb], ["list", not_nb], 1),
        "strip": (["strip", ok_nb], ["strip", w / "takes" / "a.wav"], 2),
        # Named notebooks only: without names, docs brings every project notebook's executed copy up to date.
        "docs": (["docs", ok_nb, "--from", w / "runs", "--out", w / "site"],
                 ["docs", w / "nope.ipynb", "--from", w / "empty_site", "--out", w / "site2"], 2),
    }


def test_every_command_is_in_the_table_and_every_help_states_the_rule(capsys):
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    assert set(sub.choices) == set(COMMANDS), "a new command needs a row in the README's exit-code table"
    readme = (ROOT / "README.md").read_text()
    assert "| 2 |" in readme and "--strict" in readme and "| 3 |" in readme
    for command in COMMANDS:
        assert main([command, "--help"]) == 0
        out = " ".join(capsys.readouterr().out.split())
        assert " ".join(EXIT_CODES.split()) in out, command
    assert len(COMMAND_MODULES) == 8


@pytest.mark.parametrize("command", COMMANDS)
def test_clean_input_exits_0_and_broken_input_exits_as_the_table_says(ws, make_notebook, capsys, command):
    clean, broken, code = _cases(ws, make_notebook)[command]
    got = main([str(a) for a in clean])
    out = capsys.readouterr()
    assert got == 0, f"{command} on a clean input: {got}\n{out.out[-2000:]}\n{out.err[-2000:]}"
    got = main([str(a) for a in broken])
    out = capsys.readouterr()
    assert got == code, f"{command} on a broken input: {got}\n{out.out[-2000:]}\n{out.err[-2000:]}"
    assert "Traceback" not in out.err and "internal error" not in out.err


def test_strict_turns_warnings_into_exit_1(ws, capsys):
    takes = ws / "strict"
    _tone(takes / "long.wav", seconds=3.0)
    assert main(["validate", str(takes), "-q", "--max-duration", "2"]) == 0  # too_long is a warning
    assert main(["validate", str(takes), "-q", "--max-duration", "2", "--strict"]) == 1
    assert main(["validate", str(takes), "-q", "--max-duration", "2", "--fail-on", "too_long"]) == 1
    assert main(["validate", str(takes), "-q", "--fail-on", "silent"]) == 0
