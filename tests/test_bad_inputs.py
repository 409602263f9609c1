"""Issue 28, item by item: outputs never touch inputs, a killed run's temporaries are removed by a rerun, an
unreadable file or folder is a finding (never an all-clear, never the end of the report), bad inputs are
usage errors or findings instead of internal errors, findings are in plain words, and every option is checked
before any work. Each test builds its artefacts in upstream's formats."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tts_nb_utils import io
from tts_nb_utils.cli import build_parser, main
from tts_nb_utils.demos import nb08_broken_project as bp
from tts_nb_utils.io import OutputPathError, atomic_write_text, check_output_file
from tts_nb_utils.runner.papermill import check_parameter, discover, notebook_parameters

from .conftest import ROOT
from .test_exit_codes import _tone


def _run(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    assert "Traceback" not in out.err and "internal error" not in out.err, out.err
    return code, out.out, out.err


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.fixture
def unreadable(monkeypatch, request):
    """``unreadable(folder)``: the folder cannot be listed (chmod 000; as root, who reads anything, the refusal
    is simulated where Python lists a folder: os.scandir and os.listdir)."""

    def make(folder: Path) -> Path:
        folder.chmod(0)
        request.addfinalizer(lambda: folder.chmod(0o755))
        if os.geteuid() == 0:
            real_scandir, real_listdir = os.scandir, os.listdir

            def deny(p):
                if isinstance(p, str | os.PathLike) and Path(p).absolute() == folder.absolute():
                    raise PermissionError(13, "Permission denied", str(p))

            monkeypatch.setattr(os, "scandir", lambda p=".": deny(p) or real_scandir(p))
            monkeypatch.setattr(os, "listdir", lambda p=".": deny(p) or real_listdir(p))
        return folder

    return make


# -- outputs never touch inputs --------------------------------------------------------------------------------
def test_a_report_path_that_is_an_input_is_refused_and_the_input_kept(tmp_path, capsys):
    bp.make_sovits(tmp_path / "W")
    ckpt = tmp_path / "W" / "logs_s2_v2" / "G_100.pth"
    before = ckpt.read_bytes()
    code, _, err = _run(capsys, "scan-checkpoints", ckpt, "--json", ckpt)
    assert code == 2 and "--json" in err and "is an input" in err and ckpt.read_bytes() == before
    cfg = bp.make_diffsinger(tmp_path / "ds")
    text = cfg.read_text()
    code, _, err = _run(capsys, "doctor", cfg, "--json", cfg)
    assert code == 2 and cfg.read_text() == text
    bp.make_audio(tmp_path / "a")
    wav = tmp_path / "a" / "clip_0.wav"
    audio = wav.read_bytes()
    code, _, err = _run(capsys, "doctor", tmp_path / "a", "--md", wav)
    assert code == 2 and "--md" in err and wav.read_bytes() == audio
    code, _, err = _run(capsys, "doctor", tmp_path / "a", "--md", tmp_path / "a" / "new_report.md")
    assert code == 2 and "inside the input folder" in err and not (tmp_path / "a" / "new_report.md").exists()
    code, _, err = _run(capsys, "validate", tmp_path / "a", "-q", "--json", tmp_path / "r", "--csv", tmp_path / "r")
    assert code == 2 and "same file" in err


def _special(tmp_path: Path, kind: str) -> Path:
    path = tmp_path / f"special_{kind}"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "link":
        (tmp_path / "target.txt").write_text("keep")
        path.symlink_to(tmp_path / "target.txt")
    else:
        path.mkdir()
    return path


@pytest.mark.parametrize("kind", ["fifo", "link", "folder"])
@pytest.mark.parametrize("command", ["validate --json", "validate --csv", "scan-checkpoints --json", "doctor --json",
                                     "doctor --md", "lr-plan --plot", "dia-train --checkpoint", "denoise OUT"])
def test_an_output_that_is_no_regular_file_is_refused_before_any_work(tmp_path, capsys, kind, command):
    name, option = command.split()
    out = _special(tmp_path, kind)
    audio = _tone(tmp_path / "in" / "a.wav")
    bp.make_sovits(tmp_path / "W") if name == "scan-checkpoints" else None
    argv = {
        "validate": ["validate", tmp_path / "in", "-q"],
        "scan-checkpoints": ["scan-checkpoints", tmp_path / "W"],
        "doctor": ["doctor", tmp_path / "in"],
        "lr-plan": ["lr-plan", "--scheduler", "StepLR", "--params", '{"step_size": 2}', "--lr", "1",
                    "--batches-per-epoch", "2", "--epochs", "2"],
        "dia-train": ["dia-train", "--steps", "1"],
        "denoise": ["denoise", audio],
    }[name]
    code, _, err = _run(capsys, *argv, *([out] if option == "OUT" else [option, out]))
    assert code == 2 and str(out) in err and option in err
    if kind == "fifo":
        assert stat.S_ISFIFO(out.lstat().st_mode)
    elif kind == "link":
        assert out.is_symlink() and (tmp_path / "target.txt").read_text() == "keep"
    assert not list(tmp_path.glob(".*part*"))


def test_atomic_writes_never_replace_a_device_pipe_or_link_and_never_show_their_temporary_name(tmp_path):
    fifo = _special(tmp_path, "fifo")
    with pytest.raises(OutputPathError, match="not a regular file"):
        atomic_write_text(fifo, "x")
    with pytest.raises(OutputPathError, match="not a regular file"):
        check_output_file("/dev/null", "--json")
    assert Path("/dev/null").is_char_device()
    with pytest.raises(OutputPathError, match="link"):
        atomic_write_text(_special(tmp_path, "link"), "x")
    with pytest.raises(OSError) as e:  # /proc takes no new files: the error names the path asked for
        atomic_write_text("/proc/tts_nb_report.json", "{}")
    assert e.value.filename == "/proc/tts_nb_report.json" and ".part" not in str(e.value)


def test_a_report_under_proc_is_named_by_its_own_path(tmp_path, capsys):
    _tone(tmp_path / "in" / "a.wav")
    code = main(["doctor", str(tmp_path / "in"), "--json", "/proc/tts_nb_report.json"])
    err = capsys.readouterr().err
    assert code == 2 and "/proc/tts_nb_report.json" in err and ".part" not in err


# -- a killed run's temporaries --------------------------------------------------------------------------------
def test_a_rerun_removes_what_a_killed_slice_or_doctor_left_and_keeps_a_live_writers_file(tmp_path, capsys):
    _tone(tmp_path / "in" / "a.wav")
    out = tmp_path / "out"
    out.mkdir()
    dead, live = _dead_pid(), 1  # pid 1 always runs
    stale = out / f".a.wav_0000000000_0000032000.{dead}.x1.part.wav"
    kept = out / f".other.{live}.x2.part.wav"
    stale.write_bytes(b"half a clip")
    kept.write_bytes(b"being written")
    assert main(["slice", str(tmp_path / "in"), str(out), "-q"]) == 0
    assert not stale.exists() and kept.exists()
    report = tmp_path / "report.json"
    old = tmp_path / f".report.{dead}.abc.part.json"
    old.write_text("{")
    main(["doctor", str(tmp_path / "in"), "--json", str(report)])
    capsys.readouterr()
    assert report.is_file() and not old.exists()


def test_a_killed_doctor_leaves_nothing_a_rerun_does_not_remove(tmp_path):
    bp.make_audio(tmp_path / "a")
    report = tmp_path / "r.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    code = ("import os, signal, tts_nb_utils.io as io\n"
            "real = io.os.replace\n"
            "def killed(*a): os.kill(os.getpid(), signal.SIGKILL)\n"
            "io.os.replace = killed\n"
            "from tts_nb_utils.cli import main\n"
            f"main(['doctor', {str(tmp_path / 'a')!r}, '--json', {str(report)!r}])\n")
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True)
    assert proc.returncode == -9
    assert list(tmp_path.glob(".r.*.part.json")) and not report.exists()  # killed just before the rename
    assert main(["doctor", str(tmp_path / "a"), "--json", str(report)]) == 1
    assert report.is_file() and not list(tmp_path.glob(".r.*part*"))


# -- unreadable items are findings -----------------------------------------------------------------------------
def test_an_unreadable_subfolder_is_a_finding_in_scan_checkpoints(tmp_path, capsys, unreadable):
    bp.make_sovits(tmp_path / "W")
    hidden = tmp_path / "W" / "logs_s2_v2" / "later"
    hidden.mkdir()
    (tmp_path / "W" / "logs_s2_v2" / "G_200.pth").rename(hidden / "G_300.pth")
    (tmp_path / "W" / "logs_s2_v2" / "D_200.pth").unlink()
    unreadable(hidden)
    code, out, _ = _run(capsys, "scan-checkpoints", tmp_path / "W" / "logs_s2_v2")
    assert code == 1 and "later: UNREADABLE folder" in out and "G_100.pth" in out


def test_an_unreadable_subfolder_is_a_finding_in_check_embedders(tmp_path, capsys, unreadable):
    (tmp_path / "emb" / "sub").mkdir(parents=True)
    (tmp_path / "emb" / "model.pt").write_bytes(b"w")
    (tmp_path / "emb" / "sub" / "model (1).pt").write_bytes(b"w")
    unreadable(tmp_path / "emb" / "sub")
    code, out, _ = _run(capsys, "check-embedders", tmp_path / "emb")
    assert code == 1 and "unreadable" in out and "sub" in out and "0 finding" not in out


def test_one_unreadable_folder_does_not_stop_the_doctor(tmp_path, capsys, unreadable):
    bp.make_audio(tmp_path / "p" / "audio")
    (tmp_path / "p" / "locked").mkdir()
    unreadable(tmp_path / "p" / "locked")
    code, out, _ = _run(capsys, "doctor", tmp_path / "p")
    assert code == 1 and "locked`: unreadable" in out and "clip_silent.wav" in out


def test_an_unreadable_subfolder_is_a_finding_in_validate_and_check_features(tmp_path, capsys, unreadable):
    _tone(tmp_path / "in" / "a.wav")
    _tone(tmp_path / "in" / "takes" / "b.wav")
    (tmp_path / "feats" / "takes").mkdir(parents=True)
    np.save(tmp_path / "feats" / "a.npy", np.ones((20, 768), np.float32))
    unreadable(tmp_path / "in" / "takes")
    code, out, _ = _run(capsys, "validate", tmp_path / "in", "-q")
    assert code == 1 and "takes: UNREADABLE folder" in out
    assert main(["validate", str(tmp_path / "in"), "-q", "--fail-on", "unreadable"]) == 1
    capsys.readouterr()
    code, out, _ = _run(capsys, "check-features", tmp_path / "in", tmp_path / "feats")
    assert code == 1 and "takes: UNREADABLE folder" in out


def test_a_folder_where_nothing_is_recognised_is_no_all_clear(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    code, out, _ = _run(capsys, "doctor", tmp_path / "empty")
    assert code == 1 and "1 error(s)" in out and "nothing to check" in out


# -- bad input is a finding or a usage error, never exit 3 -----------------------------------------------------
def test_broken_feature_files_are_findings(tmp_path, capsys):
    audio, feats = tmp_path / "audio", tmp_path / "feats"
    feats.mkdir()
    audio.mkdir()
    names = ["zero_bytes", "negative_shape", "npz_named_npy", "no_frames"]
    for name in names:
        sf.write(audio / f"{name}.wav", np.full(800, 0.1), 16000)
    (feats / "zero_bytes.npy").write_bytes(b"")
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (-5, 768), }"
    (feats / "negative_shape.npy").write_bytes(b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode())
    with open(feats / "npz_named_npy.npy", "wb") as f:
        np.savez(f, a=np.ones((3, 768)))
    np.save(feats / "no_frames.npy", np.zeros((0, 768), np.float32))
    code, out, _ = _run(capsys, "check-features", audio, feats, "--expect-dim", "768")
    assert code == 1
    for name in names:
        assert f"unreadable: {name}.npy" in out
    assert "npz archive" in out and "shape (0, 768)" in out


@pytest.mark.parametrize("entry, message", [('{"size": "big"}', "size 'big' is not a number of bytes"),
                                            ('{"sha256": "xyz"}', "not 64 hexadecimal digits"),
                                            ('{"size": true}', "is not a number of bytes")])
def test_a_bad_manifest_entry_is_a_usage_error(tmp_path, capsys, entry, message):
    (tmp_path / "emb").mkdir()
    (tmp_path / "m.json").write_text(f'{{"model.pt": {entry}}}')
    code, _, err = _run(capsys, "check-embedders", tmp_path / "emb", "--manifest", tmp_path / "m.json")
    assert code == 2 and message in err


def test_a_base_chain_1500_deep_is_refused_in_words(tmp_path, capsys):
    (tmp_path / "configs").mkdir()
    for i in range(1500):
        text = f"base_config: ./c{i + 1}.yaml\n" if i < 1499 else "task_cls: x\n"
        (tmp_path / "configs" / f"c{i}.yaml").write_text(text)
    code, _, err = _run(capsys, "check-config", tmp_path / "configs" / "c0.yaml", "--root", tmp_path)
    assert code == 2 and "more than 100 files deep" in err


def test_base_config_paths_that_are_no_file_are_named_for_what_they_are(tmp_path, capsys):
    (tmp_path / "configs").mkdir()
    cases = {"./configs": "is a folder, not a file", "/dev/null": "is not a regular file", "''": "empty entry",
             "./gone.yaml": "does not exist"}
    for entry, words in cases.items():
        (tmp_path / "c.yaml").write_text(f"base_config: {entry}\ntask_cls: training.variance_task.VarianceTask\n")
        code, _, err = _run(capsys, "check-config", tmp_path / "c.yaml", "--root", tmp_path)
        assert code == 2 and words in err, entry
    for a, b in (("a", "b"), ("b", "a")):  # upstream skips an entry spelt as a name already loaded: not these
        (tmp_path / f"{a}.yaml").write_text(f"base_config: {b}.yaml\n")
    code, _, err = _run(capsys, "check-config", tmp_path / "a.yaml", "--root", tmp_path)
    assert code == 2 and "base_config cycle" in err
    ds = bp.make_diffsinger(tmp_path / "ds")
    (tmp_path / "file").write_text("x")
    code, _, err = _run(capsys, "check-config", ds, "--root", ds.parent, "--binary-dir", tmp_path / "file")
    assert code == 2 and "is a file, not a folder" in err
    (tmp_path / "bin" / "train.meta").mkdir(parents=True)
    code, _, err = _run(capsys, "check-config", ds, "--root", ds.parent, "--binary-dir", tmp_path / "bin")
    assert code == 2 and "train.meta is a folder" in err


def test_a_huge_file_without_aliases_is_not_blamed_on_aliases(monkeypatch):
    monkeypatch.setattr(io, "YAML_MAX_NODES", 50)
    with pytest.raises(io.YAMLLimitError) as e:
        io.load_yaml("".join(f"k{i}: {i}\n" for i in range(60)), "big.yaml")
    assert "alias" not in str(e.value) and "holds more than 50 values" in str(e.value)
    with pytest.raises(io.YAMLLimitError, match="through its aliases"):
        io.load_yaml("a: &a [1, 2, 3, 4, 5, 6, 7, 8]\nb: [*a, *a, *a, *a, *a, *a, *a, *a]\n", "bomb.yaml")


def test_an_ffmpeg_that_prints_garbage_is_a_finding(tmp_path, capsys, monkeypatch):
    fake = tmp_path / "bin" / "ffmpeg"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\nprintf 'not float samples'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    _tone(tmp_path / "in" / "a.wav")
    code, _, err = _run(capsys, "slice", tmp_path / "in", tmp_path / "out", "--decoder", "ffmpeg", "-q")
    assert code == 1 and "not 4-byte float samples" in err


def _torch_file(path: Path, obj) -> Path:
    torch.save(obj, path)
    return path


@pytest.mark.parametrize("case", ["truncated", "not_a_checkpoint", "config_is_wav", "precision", "seed", "missing"])
def test_dia_train_bad_inputs_are_usage_errors(tmp_path, capsys, case):
    wav = _tone(tmp_path / "a.wav", seconds=0.2)
    full = _torch_file(tmp_path / "w.pth", {"x": torch.ones(3)})
    (tmp_path / "cut.pth").write_bytes(full.read_bytes()[:40])
    (tmp_path / "text.pth").write_text("hello")
    config = tmp_path / "config.json"
    config.write_text("{}")
    argv = {
        "truncated": ["--init", tmp_path / "cut.pth", "--init-config", config],
        "not_a_checkpoint": ["--init", tmp_path / "text.pth", "--init-config", config],
        "config_is_wav": ["--init", full, "--init-config", wav],
        "precision": ["--precision", "fp8"],
        "seed": ["--seed", str(2**64)],
        "missing": ["--init", tmp_path / "gone.pth", "--init-config", config],
    }[case]
    code, _, err = _run(capsys, "dia-train", "--steps", "1", *argv)
    assert code == 2 and err.strip()


def test_denoise_of_a_file_that_is_not_audio_is_a_usage_error(tmp_path, capsys):
    (tmp_path / "notes.wav").write_text("not audio")
    code, _, err = _run(capsys, "denoise", tmp_path / "notes.wav", tmp_path / "out.wav")
    assert code == 2 and "notes.wav" in err and not (tmp_path / "out.wav").exists()


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(option=st.sampled_from(["--hop-size", "--min-interval", "--min-length", "--max-sil-kept", "--threshold"]),
       value=st.one_of(st.floats(allow_nan=False, allow_infinity=False, min_value=-1e300, max_value=1e300),
                       st.sampled_from([1e-9, 0.001, 0.5, 1e12, 1e300, -0.0])))
def test_slice_never_crashes_on_any_finite_setting(tmp_path_factory, capsys, option, value):
    folder = tmp_path_factory.mktemp("slice")
    _tone(folder / "in" / "a.wav", seconds=1.5, gap=(0.5, 0.8))
    code = main(["slice", str(folder / "in"), str(folder / "out"), f"{option}={value!r}", "-q"])
    err = capsys.readouterr().err
    assert code in (0, 1, 2) and "internal error" not in err and "Traceback" not in err


# -- wording ---------------------------------------------------------------------------------------------------
def test_slice_names_a_silent_take_and_refuses_separators_in_list_fields(tmp_path, capsys):
    _tone(tmp_path / "in" / "a.wav")
    sf.write(tmp_path / "in" / "quiet.wav", np.zeros(64000, np.float32), 32000)
    code, _, err = _run(capsys, "slice", tmp_path / "in", tmp_path / "out", "-q")
    assert code == 0 and "left out: quiet.wav: no clip: silent" in err and "-34 dB" in err
    assert main(["slice", str(tmp_path / "in"), str(tmp_path / "out"), "-q", "--strict"]) == 1
    for option, value in (("--speaker", "a|b"), ("--speaker", "a\nb"), ("--language", "E|N")):
        code = main(["slice", str(tmp_path / "in"), str(tmp_path / "out2"), option, value, "-q"])
        assert code == 2 and "'|' or line breaks" in capsys.readouterr().err


def test_findings_are_in_plain_words_with_value_threshold_and_fix(tmp_path, capsys):
    bp.make_audio(tmp_path / "a")
    code, out, _ = _run(capsys, "validate", tmp_path / "a", "-q")
    assert code == 1  # a silent and a clipped file are errors without --fail-on
    code, out, _ = _run(capsys, "validate", tmp_path / "a")
    silent = next(line for line in out.splitlines() if "clip_silent.wav:" in line)
    assert "error" in silent and "digital silence" in silent and "re-record or remove it" in silent
    loud = next(line for line in out.splitlines() if "clip_loud.wav:" in line)
    assert "% of samples at full scale, limit 0.10%" in loud and "less gain" in loud
    sf.write(tmp_path / "a" / "hum.wav", np.full(32000, 0.0025, np.float32), 32000, subtype="FLOAT")
    code, out, _ = _run(capsys, "validate", tmp_path / "a")
    assert "hum.wav: peak -52.0 dBFS, below -45 dBFS: the file is silent" in out
    _, doctor, _ = _run(capsys, "doctor", tmp_path / "a")
    for internal in ("silent_peak_dbfs", "clip_fraction", "clip_level", "quiet_rms_dbfs", "min_snr_db"):
        assert internal not in out and internal not in doctor


def test_a_closed_pipe_ends_the_output_quietly(tmp_path):
    bp.make_audio(tmp_path / "a")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "tts_nb_utils.cli", "doctor", str(tmp_path / "a")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    proc.stdout.readline()
    proc.stdout.close()  # as `| head -1` does
    err = proc.stderr.read().decode()
    assert proc.wait() == 1 and err == ""  # the doctor's own code: its errors are found, the reader left


# -- options checked before work -------------------------------------------------------------------------------
@pytest.mark.parametrize("argv, message", [
    (["lr-plan", "--scheduler", "MultiStepLR", "--params", '{"milestones": [NaN]}'], "holds NaN"),
    (["lr-plan", "--scheduler", "StepLR", "--params", '{"step_size": 2, "gamma": NaN}'], "holds NaN"),
    (["lr-plan", "--scheduler", "StepLR", "--params", '{"step_size": 2, "gamma": 1e999}'], "holds 1e999"),
    (["prepare", "IN", "OUT", "--sample-rate", "1"], "a sample rate in Hz"),
    (["validate", "IN", "--sample-rate", "0"], "a sample rate in Hz"),
    (["check-features", "IN", "IN", "--ext", ""], "is not a file extension"),
    (["check-features", "IN", "IN", "--audio-ext", ""], "is not a file extension"),
    (["check-config", "IN", "--hparams", "=1"], "is not key=value"),
    (["check-config", "IN", "--hparams", "a=1,b"], "is not key=value"),
])
def test_bad_options_are_refused_naming_the_option(tmp_path, capsys, argv, message):
    lr = ["--lr", "1", "--batches-per-epoch", "2", "--epochs", "2"] if argv[0] == "lr-plan" else []
    code = main([a.replace("IN", str(tmp_path)).replace("OUT", str(tmp_path / "o")) for a in argv] + lr)
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err


def test_notebook_parameters_with_a_none_default_declare_their_type():
    for path in discover():
        for name, p in notebook_parameters(path).items():
            if p["default"] == "None":
                assert p["type"] in ("str", "int", "float", "bool", "list", "dict"), (
                    f"{path.name}: {name} = None declares no type: write `{name} = None  # str: help`")


def test_a_value_that_does_not_fit_a_declared_type_is_refused_before_the_kernel(make_notebook, tmp_path, capsys):
    nb = make_notebook("t.ipynb", "N = None  # int: a count\nCONFIG = None  # str: a path\n", "assert N is None")
    assert check_parameter(nb, "N", 3, "None", "int") == 3
    assert check_parameter(nb, "CONFIG", 42, "None", "str") == "42"
    assert check_parameter(nb, "CONFIG", None, "None", "str") is None
    code = main(["run", str(nb), "-p", "N", "abc", "--out", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    assert code == 2 and "declared int" in err and not (tmp_path / "runs").exists()
    assert main(["list", str(nb)]) == 0 and "# int: a count" in capsys.readouterr().out


def test_run_never_writes_an_executed_copy_over_its_notebook(make_notebook, capsys):
    nb = make_notebook("t.ipynb", "SEED = 0  # seed", "x = 1")
    text = nb.read_text()
    code = main(["run", str(nb), "--out", str(nb.parent)])
    assert code == 2 and "is an input" in capsys.readouterr().err and nb.read_text() == text


def _typed_options():
    """(command, option) for every option that takes a number: parsed by a type, never by bare int/float."""
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    for command, parser in sub.choices.items():
        for action in parser._actions:
            if action.option_strings and action.type is not None and action.nargs != 0:
                yield command, action.option_strings[-1], action.type


@pytest.mark.parametrize("command, option, parse", list(_typed_options()), ids=lambda x: getattr(x, "__name__", x))
def test_every_numeric_option_refuses_nan_inf_and_text_before_work(capsys, command, option, parse):
    assert parse not in (int, float), f"{command} {option}: bare {parse.__name__} accepts nan/inf or any size"
    numeric = getattr(parse, "__module__", "") == "tts_nb_utils.cli._common" and parse.__name__ not in (
        "bool_arg", "file_extension", "list_field")
    if not numeric:
        return
    for value in ("nan", "inf", "-inf", "1e999", "abc"):  # each refused while parsing: no work starts
        code = main([command, f"{option}={value}"])
        err = capsys.readouterr().err
        assert code == 2 and "argument " in err and option in err, (command, option, value, err)


def test_a_sparse_tensor_in_a_checkpoint_is_checked_not_a_crash(tmp_path, capsys):
    # A state dict may hold sparse tensors (embedding gradients, pruned weights): their stored values are checked.
    w = torch.sparse_coo_tensor([[0, 1], [1, 0]], [1.0, float("nan")], (2, 2))
    torch.save({"model": {"emb.weight": w}, "iteration": 3, "learning_rate": 1e-4}, tmp_path / "G_3.pth")
    torch.save({"model": {"w": torch.ones(2)}, "iteration": 3, "learning_rate": 1e-4}, tmp_path / "D_3.pth")
    assert main(["scan-checkpoints", str(tmp_path)]) == 1
    out = capsys.readouterr()
    assert "emb.weight (1 NaN of 2)" in out.out and "internal error" not in out.err
