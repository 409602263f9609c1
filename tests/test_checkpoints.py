"""scan-checkpoints, the per-experiment verdicts and the safe loader on files in GPT-SoVITS's own formats
(48b1a01, written by tests/sovits_files.py): G_/D_ as utils.save_checkpoint writes them, exported weights as
process_ckpt.savee writes them (v2 and the version-coded headers of v2Pro and v3/v4 LoRA)."""

from __future__ import annotations

import json
import os
import sys

import pytest
import torch

from tests.sovits_files import save_checkpoint, save_run, savee, tiny_net
from tts_nb_utils.cli import main
from tts_nb_utils.diagnose.checkpoints import (
    checkpoint_files,
    latest_clean,
    scan_checkpoint,
    scan_checkpoints,
)
from tts_nb_utils.diagnose.resume import experiments
from tts_nb_utils.diagnose.safe_load import load_checkpoint_safely, sovits_header


@pytest.fixture
def logs_s2(tmp_path):
    folder = tmp_path / "logs" / "myvoice" / "logs_s2_v2"
    save_run(folder, [(40, 2, False), (80, 4, False)])
    save_checkpoint(folder / "G_120.pth", *tiny_net(1, nan=True), 6)
    save_checkpoint(folder / "D_120.pth", *tiny_net(2), 6)
    return folder


def test_scan_names_the_nan_file_and_tensors_and_the_pair_to_resume_from(logs_s2):
    reports = scan_checkpoints(checkpoint_files([logs_s2]))
    assert [r.path.name for r in reports] == ["D_40.pth", "G_40.pth", "D_80.pth", "G_80.pth", "D_120.pth", "G_120.pth"]
    bad = {r.path.name: r for r in reports}["G_120.pth"]
    assert bad.kind == "gpt-sovits-G" and bad.step == 120 and bad.epoch == 6 and not bad.clean
    names = {b.name for b in bad.bad}
    assert {"model.dec.weight", "optimizer.state.0.exp_avg", "optimizer.state.0.exp_avg_sq"} <= names
    assert sum(not r.clean for r in reports) == 1
    assert [r.path.name for r in latest_clean(reports)] == ["G_80.pth", "D_80.pth"]


def test_cli_one_verdict_with_relative_paths_exit_codes_and_json(logs_s2, tmp_path, capsys):
    out_json = tmp_path / "scan.json"
    assert main(["scan-checkpoints", str(logs_s2), "--json", str(out_json)]) == 1
    out = " ".join(capsys.readouterr().out.split())  # lines are wrapped at 118 characters
    assert "G_120.pth [gpt-sovits-G step 120 epoch 6]: NaN/Inf in" in out and str(tmp_path) not in out
    assert "s2_train.py resumes from G_120.pth, which holds NaN/Inf" in out
    assert "move D_120.pth, G_120.pth out of the folder; s2_train.py then resumes from G_80.pth + D_80.pth" in out
    assert "\x1b" not in out
    exp = json.loads(out_json.read_text())["experiments"]
    assert len(exp) == 1 and not exp[0]["ok"] and exp[0]["resume_from"][0].endswith("G_80.pth")
    assert main(["scan-checkpoints", str(logs_s2 / "G_80.pth"), str(logs_s2 / "D_80.pth")]) == 0
    assert "nothing to do" in capsys.readouterr().out
    assert main(["scan-checkpoints", str(tmp_path / "nope")]) == 2
    (tmp_path / "empty").mkdir()
    assert main(["scan-checkpoints", str(tmp_path / "empty")]) == 2


def test_two_experiments_get_their_own_verdicts(tmp_path, capsys):
    save_run(tmp_path / "logs" / "alice" / "logs_s2_v2", [(20, 1, False), (40, 2, True)])
    save_run(tmp_path / "logs" / "bob" / "logs_s2_v2", [(10, 1, False), (20, 2, False)])
    verdicts = {v.folder.parent.name: v for v in experiments(scan_checkpoints(checkpoint_files([tmp_path / "logs"])))}
    assert not verdicts["alice"].ok and verdicts["bob"].ok
    assert [r.path.name for r in verdicts["alice"].resume] == ["G_20.pth", "D_20.pth"]
    assert [r.path.name for r in verdicts["alice"].move] == ["D_40.pth", "G_40.pth"]
    assert [r.path.name for r in verdicts["bob"].resume] == ["G_20.pth", "D_20.pth"] and not verdicts["bob"].move
    assert main(["scan-checkpoints", str(tmp_path / "logs")]) == 1
    out = " ".join(capsys.readouterr().out.split())  # lines are wrapped at 118 characters
    assert "alice/logs_s2_v2/ (4 file(s))" in out and "bob/logs_s2_v2/ (4 file(s))" in out
    bob = out[out.index("bob/"):]
    assert "D_40.pth" not in bob and "nothing to do" in bob


def test_save_latest_only_leaves_no_clean_pair_and_says_what_works(tmp_path, capsys):
    folder = tmp_path / "logs_s2_v2"  # webui.py:1750-1755: "save only the latest" is on by default
    save_run(folder, [(233333333333, 8, True)])
    v = experiments(scan_checkpoints(checkpoint_files([folder])))[0]
    assert not v.ok and not v.resume
    assert "save only the latest" in v.advice and "pretrained_s2G" in v.advice and "untick" in v.advice


def test_missing_d_or_deleted_optimizer_is_a_silent_pretrained_restart_but_none_is_fine(tmp_path):
    only_g = tmp_path / "a" / "logs_s2_v2"
    save_checkpoint(only_g / "G_80.pth", *tiny_net(0), 4, optimizer_none=True)  # what notebook 02 used to copy
    v = experiments(scan_checkpoints(checkpoint_files([only_g])))[0]
    assert not v.ok and "no D_*.pth beside it" in v.problems[0][1] and "D_ file of step 80" in v.advice
    deleted = tmp_path / "b" / "logs_s2_v2"
    for part in "GD":
        save_checkpoint(deleted / f"{part}_80.pth", *tiny_net(0), 4, drop=("optimizer",))
    v = experiments(scan_checkpoints(checkpoint_files([deleted])))[0]
    assert not v.ok and any("no 'optimizer' key" in text for _, text, _ in v.problems)
    none = tmp_path / "c" / "logs_s2_v2"
    for part in "GD":
        save_checkpoint(none / f"{part}_80.pth", *tiny_net(0), 4, optimizer_none=True)
    v = experiments(scan_checkpoints(checkpoint_files([none])))[0]
    assert v.ok and [r.path.name for r in v.resume] == ["G_80.pth", "D_80.pth"]
    lora = tmp_path / "d" / "logs_s2_v4_lora_32"  # s2_train_v3_lora.py:177-189 saves and loads G_ only
    save_run(lora, [(50, 1, False)], parts="G")
    assert experiments(scan_checkpoints(checkpoint_files([lora])))[0].ok


@pytest.mark.parametrize("version, lora, header", [(None, None, None), ("v2Pro", None, "v2Pro"),
                                                    ("v2ProPlus", None, "v2ProPlus"), ("v4", 32, "v4 LoRA"),
                                                    ("v3", 16, "v3 LoRA")])
def test_exported_weights_are_read_without_running_code(tmp_path, capsys, version, lora, header):
    net, _ = tiny_net(3)
    state = net.state_dict()
    state["flow.weight"][0, 0, 0] = float("nan")
    path = tmp_path / "SoVITS_weights_v2" / "myvoice_e8_s160.pth"
    savee(state, path, 8, 160, model_version=version, lora_rank=lora)
    assert "utils" not in sys.modules and sovits_header(path) == header
    data, found = load_checkpoint_safely(path)
    assert found == header and data["config"].train.learning_rate == 1e-4 and data["info"] == "8epoch_160iteration"
    assert "utils" not in sys.modules  # upstream's module was neither imported nor needed
    r = scan_checkpoint(path)
    assert r.kind == "gpt-sovits-weights" and [str(b) for b in r.bad] == ["weight.flow.weight (1 NaN of 8)"]
    assert "float16" in r.about and "no enc_q" in r.about and "not a resume point" in r.about
    assert (header or "v1/v2") in r.about
    assert main(["scan-checkpoints", str(path.parent)]) == 1
    out = " ".join(capsys.readouterr().out.split())  # lines are wrapped at 118 characters
    assert "UNREADABLE" not in out and "pretrained" not in out and "\x1b" not in out


def test_pickled_code_is_refused_and_not_run(tmp_path, capsys):
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return os.mkdir, (str(marker),)

    path = tmp_path / "G_10.pth"
    torch.save({"model": {}, "iteration": 1, "optimizer": None, "learning_rate": 1e-4, "x": Payload()}, path)
    r = scan_checkpoint(path)
    assert not marker.exists() and r.error and "nothing was run" in r.error and "posix.mkdir" in r.error
    assert main(["scan-checkpoints", str(path)]) == 1
    out = " ".join(capsys.readouterr().out.split())  # lines are wrapped at 118 characters
    assert "UNREADABLE" in out and "\x1b" not in out and not marker.exists()


def test_unreadable_and_other_layouts_are_reported_and_the_scan_goes_on(tmp_path):
    (tmp_path / "G_10.pth").write_bytes(b"not a checkpoint")
    torch.save({"state_dict": {"w": torch.tensor([1.0, float("inf")])}, "epoch": 3, "global_step": 30,
                "optimizer_states": []}, tmp_path / "last.ckpt")
    torch.save({"w": torch.ones(3)}, tmp_path / "plain.pt")
    torch.save({"w": torch.full((3,), 60000.0, dtype=torch.float16)}, tmp_path / "big.pt")  # finite; sum overflows
    torch.save({"w": torch.ones(3)}, tmp_path / "legacy.pt", _use_new_zipfile_serialization=False)
    reports = {r.path.name: r for r in scan_checkpoints(checkpoint_files([tmp_path]))}
    assert reports["G_10.pth"].error and not reports["G_10.pth"].clean
    lightning = reports["last.ckpt"]
    assert lightning.kind == "lightning" and lightning.step == 30 and [str(b) for b in lightning.bad] == [
        "state_dict.w (1 Inf of 2)"
    ]
    assert reports["plain.pt"].kind == "state-dict" and reports["plain.pt"].clean
    assert reports["big.pt"].clean and reports["legacy.pt"].clean


def test_scan_restores_the_callers_thread_count(tmp_path):
    save_run(tmp_path, [(10, 1, False)])
    before = torch.get_num_threads()
    scan_checkpoints(checkpoint_files([tmp_path]), threads=1)
    assert torch.get_num_threads() == before
