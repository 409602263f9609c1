"""The miniature Applio pipeline behind notebooks 06 and 07: file list by intersection plus mute entries, and the
buggy and fixed extraction scripts run as real subprocesses."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from tts_nb_utils.demos.nb06_rvc import extract_324, train_324
from tts_nb_utils.demos.nb06_rvc.cpu_path import model_folder
from tts_nb_utils.demos.nb06_rvc.embedder import embedder_files, load_embedder
from tts_nb_utils.demos.nb06_rvc.pipeline import (
    collate_like_applio,
    extract_pitch,
    generate_filelist,
    make_clips,
    make_mute,
    pitch_track,
    run_extraction,
    train,
)
from tts_nb_utils.demos.nb06_rvc.probe import kernel_dtype_error, probe_half_layer_norm
from tts_nb_utils.diagnose.stage import check_stage


def _embedder_dir(tmp_path, variant="base"):
    folder = tmp_path / f"embedder-{variant}"
    folder.mkdir()
    for name, data in embedder_files(seed=0, variant=variant).items():
        (folder / name).write_bytes(data)
    return folder


def test_embedder_roundtrip_widths_and_frame_rate(tmp_path):
    for variant, dim, normalize in (("base", 768, False), ("large", 1024, True)):
        folder = _embedder_dir(tmp_path, variant)
        config = json.loads((folder / "config.json").read_text())
        assert config["hop"] == 160 and config["normalize"] is normalize
        model, loaded = load_embedder(folder)
        assert loaded == config and model(torch.zeros(1, 16000)).shape == (1, 100, dim)
    assert embedder_files(seed=0)["config.json"] == embedder_files(seed=0)["config.json"]


def test_mute_features_are_the_embedders_output_for_silence(tmp_path):
    mute = make_mute(tmp_path / "mute", _embedder_dir(tmp_path))
    feats = np.load(mute / "v2_extracted" / "mute.npy")
    assert feats.shape == (300, 768) and np.abs(feats).max() > 0  # like upstream's (149, 768), not zeros


def test_filelist_is_the_intersection_plus_two_mutes(tmp_path):
    exp, mute = tmp_path / "exp", make_mute(tmp_path / "mute", _embedder_dir(tmp_path))
    make_clips(exp, 3, seconds=1.2, seed=0)
    assert extract_pitch(exp) == 3
    (exp / "v2_extracted").mkdir()
    for stem in ("0_0", "0_2"):
        (exp / "v2_extracted" / f"{stem}.npy").write_bytes(b"")
    lines = generate_filelist(exp, mute)
    assert [line.split("|")[0].rsplit("/", 1)[1] for line in lines] == ["0_0.wav", "0_2.wav"] + [
        "mute16000.wav"
    ] * 2
    assert all(line.endswith("|0") and line.count("|") == 4 for line in lines)
    (exp / "v2_extracted" / "0_0.npy").unlink()
    (exp / "v2_extracted" / "0_2.npy").unlink()
    only_mutes = generate_filelist(exp, mute)  # nothing extracted: the mute entries are still added
    assert len(only_mutes) == 2 and all("mute" in line for line in only_mutes)
    assert (exp / "filelist.txt").read_text().count("\n") == 2


def test_buggy_extraction_fails_every_file_on_the_cpu_and_exits_zero(tmp_path):
    exp = tmp_path / "exp"
    make_clips(exp, 3, seconds=1.0, seed=0)
    proc = run_extraction("buggy", exp, _embedder_dir(tmp_path, "large"), is_half="False")  # bool("False")
    assert proc.returncode == 0 and "completed" in proc.stdout
    assert proc.stdout.count("An error occurred processing") == 3
    assert len(check_stage(exp / "sliced_audios", exp / "v2_extracted").missing) == 3


def test_buggy_read_wave_normalises_a_half_tensor_on_the_cpu():
    """The 3.2.2 order: cast to half, then F.layer_norm on the CPU; the script's own source says so."""
    import importlib.util
    from pathlib import Path

    source = Path(importlib.util.find_spec("tts_nb_utils.demos.nb06_rvc.extract_buggy").origin).read_text()
    body = source[source.index("def read_wave"):source.index("start = time.perf_counter()")]
    assert body.index("feats.half()") < body.index("F.layer_norm(feats, feats.shape)")
    assert "feats.to(" not in body and "is_half = bool(sys.argv[7])" in source


def test_probe_reports_the_installed_torch(tmp_path):
    probe = probe_half_layer_norm(np.random.default_rng(0).standard_normal(16000) * 0.1)
    assert probe.torch_version == torch.__version__
    if probe.error:  # a torch without the CPU Half kernel: the message of Applio issue 546
        assert "LayerNormKernelImpl" in probe.error and "Half" in probe.error
    else:  # the input is rounded to float16 before it is normalised
        assert 0 < probe.max_abs_diff < 1e-2 and 0 < probe.differing < 1
    assert "LayerNormKernelImpl" in kernel_dtype_error(torch.int32)


def test_fixed_extraction_completes_and_fails_fast(tmp_path):
    exp = tmp_path / "exp"
    make_clips(exp, 3, seconds=1.0, seed=0)
    emb = _embedder_dir(tmp_path)
    proc = run_extraction("fixed", exp, emb, is_half="False")
    assert proc.returncode == 0, proc.stderr
    assert check_stage(exp / "sliced_audios", exp / "v2_extracted").ok
    (exp / "sliced_audios" / "0_9.wav").write_bytes(b"not audio")
    bad = run_extraction("fixed", exp, emb, is_half="no")
    assert bad.returncode == 1 and "0_9.wav" in bad.stderr
    assert not (exp / "v2_extracted" / "0_9.npy").exists()


def test_fixed_extraction_refuses_1024_wide_features_and_training_would_crash(tmp_path):
    exp, mute = tmp_path / "exp", make_mute(tmp_path / "mute", _embedder_dir(tmp_path))
    make_clips(exp, 2, seconds=1.2, seed=0)
    extract_pitch(exp)
    proc = run_extraction("fixed", exp, _embedder_dir(tmp_path, "large"), is_half="True")
    assert proc.returncode == 1 and "last dimension 1024, expected 768" in proc.stderr
    with pytest.raises(RuntimeError, match="mat1 and mat2|expanded size of the tensor"):
        train(generate_filelist(exp, mute), 1, seed=0)


def test_collate_like_applio_takes_the_width_from_the_first_item():
    """3.2.4 ``data_utils.py:201-223``: the padded tensor is as wide as ``batch[0]``'s features."""
    item = lambda width: (torch.ones(100, width), torch.ones(100, 1), torch.ones(100, 40))  # noqa: E731
    x, pitch, mel = collate_like_applio([item(768), item(768)])
    assert x.shape == (2, 100, 768) and pitch.shape == (2, 100, 1) and mel.shape == (2, 100, 40)
    with pytest.raises(RuntimeError, match=r"expanded size of the tensor \(1024\) must match the existing size \(768\)"):
        collate_like_applio([item(1024), item(768)])


def test_pitch_track_follows_a_synthetic_voice():
    from tts_nb_utils.audio import speechlike

    f0, rms = pitch_track(speechlike(1.0, 16000, seed=1, f0=150.0))
    assert f0.shape == rms.shape == (100,) and 120 < float(np.median(f0[rms > 1e-3])) < 190


def test_324_cpu_path_writes_1024_wide_features_then_training_crashes_and_reports_success(tmp_path, monkeypatch):
    """Applio 3.2.4 on a CPU: is_half False (config.py:30-31), float32 LayerNorm, 1024-wide features saved;
    train.py's child fails on the first batch, the parent exits 0 (train.py:141-164) and core.py says
    "trained successfully" (core.py:377-379). Our strict script and a caller reading the code say it failed."""
    monkeypatch.chdir(tmp_path)
    assert not extract_324.config_is_half("cpu")
    mute = make_mute(Path("logs/mute"), _embedder_dir(tmp_path))
    exp = Path("logs/model-cpu")
    log = model_folder(exp, _embedder_dir(tmp_path, "large"), mute, 3, 0, torch.device("cpu"), seconds=1.2)
    assert "completed" in log and "An error occurred" not in log
    assert {np.load(p).shape[-1] for p in (exp / "v2_extracted").glob("*.npy")} == {1024}
    message, proc, _ = train_324.launch(exp, 2, "cpu")
    assert proc.returncode == 0 and message == "Model model-cpu trained successfully."
    assert "RuntimeError" in proc.stderr and "1024" in proc.stderr and "| epoch=" not in proc.stdout
    message, proc, _ = train_324.launch(exp, 2, "cpu", strict=True, read_return_code=True)
    assert proc.returncode == 1 and message.startswith("Training failed for model model-cpu")
    assert not train_324.launch(exp, 2, "cpu", read_return_code=True)[0].startswith("Training failed")  # 3.6.3+
