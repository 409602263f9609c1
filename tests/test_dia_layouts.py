"""Every official Dia file layout loads through one loader: transformers' shards with their index (written here by
transformers' own ``save_pretrained``), and nari-labs' ``dia-v1.pth`` / ``pytorch_model.bin`` / ``model.safetensors``
exported from the same weights. Logits are compared with transformers' own model and with upstream's formulation
(``tests.test_dia_checkpoint._reference_logits``, read from nari-labs' ``dia/layers.py``)."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import DiaForConditionalGeneration

from tests.test_dia_checkpoint import _batch, _config, _reference_logits, _upstream_tensors
from tts_nb_utils.dia.checkpoint import (
    DiaCheckpointError,
    export_dia_checkpoint,
    load_dia_checkpoint,
    read_state_dict,
    read_upstream_config,
)
from tts_nb_utils.dia.hf import config_from_transformers, to_transformers, transformers_logits
from tts_nb_utils.dia.layouts import find_weights, nari_to_transformers, transformers_to_nari
from tts_nb_utils.dia.model import DiaModel

NARI_FILES = ("dia-v1.pth", "pytorch_model.bin", "model.safetensors")


@pytest.fixture(scope="module")
def hf_folder(tmp_path_factory):
    """A small Dia saved by transformers' save_pretrained in shards, as nari-labs/Dia-1.6B-0626 holds it."""
    folder = tmp_path_factory.mktemp("hf")
    (folder / "nari-config.json").write_text(json.dumps(_config("0626")))
    cfg, _ = read_upstream_config(folder / "nari-config.json")
    torch.manual_seed(0)
    model = to_transformers(DiaModel(cfg))
    with torch.no_grad():  # weights far from init, so a wrong mapping cannot hide in small logits
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    model.save_pretrained(folder / "repo", max_shard_size="300KB")
    return folder / "repo"


def _hf_logits(model, b):
    with torch.no_grad():
        return transformers_logits(model, b.text, b.audio_in, b.text_mask)


def test_transformers_shards_load_and_give_transformers_logits(hf_folder):
    shards = sorted(p.name for p in hf_folder.glob("model-*-of-*.safetensors"))
    assert len(shards) >= 2 and (hf_folder / "model.safetensors.index.json").is_file()
    ref_model = DiaForConditionalGeneration.from_pretrained(hf_folder).eval()
    b = _batch()
    ref = _hf_logits(ref_model, b)
    assert ref.abs().max() > 1.0
    ours = load_dia_checkpoint(hf_folder)  # folder: the index and config.json are found
    hf = load_dia_checkpoint(hf_folder / "model.safetensors.index.json", hf_folder / "config.json",
                             implementation="transformers")
    with torch.no_grad():
        assert (ours(**b.model_inputs()) - ref).abs().max() < 1e-4
    assert torch.equal(_hf_logits(hf, b), ref)
    assert isinstance(hf, DiaForConditionalGeneration) and not hf.training


@pytest.mark.parametrize("filename", NARI_FILES)
def test_export_to_nari_layouts_gives_upstreams_logits(hf_folder, tmp_path, filename):
    hf = DiaForConditionalGeneration.from_pretrained(hf_folder).eval()
    export_dia_checkpoint(hf, tmp_path / filename, tmp_path / "config.json")
    state = read_state_dict(tmp_path / filename)
    assert set(state) == set(_upstream_tensors())  # nari-labs' names, DenseGeneral shapes
    assert all(state[k].shape == v.shape for k, v in _upstream_tensors().items())
    b = _batch()
    upstream = _reference_logits(state, b.text, b.audio_in, b.text_mask, cross_rope=False)
    assert (upstream - _hf_logits(hf, b)).abs().max() < 1e-4
    back = load_dia_checkpoint(tmp_path, implementation="transformers")  # the folder of one nari file
    assert torch.equal(_hf_logits(back, b), _hf_logits(hf, b))


def test_name_mapping_is_exact_both_ways():
    sd = _upstream_tensors()
    cfg = _cfg_0626()
    hf = nari_to_transformers(sd, cfg)
    assert "logits_dense.weight" in hf and "model.decoder.embeddings.embed.weight" in hf
    assert hf["model.decoder.embeddings.embed.weight"].shape == (9 * 1028, 48)
    assert hf["model.encoder.layers.0.mlp.gate_up_proj.weight"].shape == (128, 32)
    target = DiaForConditionalGeneration(_hf_config()).state_dict()
    assert {k: tuple(v.shape) for k, v in hf.items()} == {k: tuple(v.shape) for k, v in target.items()}
    back = transformers_to_nari(hf, cfg)
    assert back.keys() == sd.keys() and all(torch.equal(back[k], sd[k]) for k in sd)


def _cfg_0626():
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as d:
        (Path(d) / "config.json").write_text(json.dumps(_config("0626")))
        return read_upstream_config(Path(d) / "config.json")[0]


def _hf_config():
    from tts_nb_utils.dia.hf import transformers_config

    return transformers_config(_cfg_0626())


def test_configs_of_transformers_4_and_5_read_the_same(hf_folder):
    cfg5, v5 = read_upstream_config(hf_folder / "config.json")  # rope_parameters, token ids in decoder_config
    assert (cfg5, v5) == (_cfg_0626(), "0626")
    assert config_from_transformers(_hf_config()) == cfg5


def test_official_folder_picks_one_copy_and_bad_folders_are_named(hf_folder, tmp_path):
    repo = tmp_path / "Dia-1.6B-0626"  # the 0626 repository holds the same weights three times
    repo.mkdir()
    for f in hf_folder.iterdir():
        (repo / f.name).write_bytes(f.read_bytes())
    hf = DiaForConditionalGeneration.from_pretrained(hf_folder)
    for name in ("pytorch_model.bin", "dia-v1.pth"):
        export_dia_checkpoint(hf, repo / name)
    assert find_weights(repo) == (repo / "model.safetensors.index.json", repo / "config.json")
    shard = sorted(repo.glob("model-*.safetensors"))[0]
    shard.unlink()
    with pytest.raises(DiaCheckpointError, match=f"shard {shard.name} is missing"):
        load_dia_checkpoint(repo)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DiaCheckpointError, match="empty: none of model.safetensors.index.json"):
        load_dia_checkpoint(empty)
    (empty / "dia-v1.pth").write_bytes((repo / "dia-v1.pth").read_bytes())
    with pytest.raises(DiaCheckpointError, match="dia-v1.pth: no config.json beside it"):
        load_dia_checkpoint(empty)


def test_v01_is_refused_by_transformers_and_kept_by_ours(tmp_path):
    torch.save(_upstream_tensors(), tmp_path / "dia-v0_1.pth")
    (tmp_path / "config.json").write_text(json.dumps(_config("v0.1")))
    with pytest.raises(DiaCheckpointError, match="cannot represent; load it with implementation='tts-nb'"):
        load_dia_checkpoint(tmp_path, implementation="transformers")
    assert load_dia_checkpoint(tmp_path).config.cross_rope is True


def test_dia_train_init_takes_the_official_folder(hf_folder, capsys):
    from tts_nb_utils.cli import main

    assert main(["dia-train", "--init", str(hf_folder), "--steps", "2", "--items", "2", "--micro-batch-size", "1",
                 "--lr", "1e-5", "--optimizer", "adamw8bit", "--freeze-encoder"]) == 0
    assert "loss" in capsys.readouterr().out
    assert main(["dia-train", "--init", str(hf_folder / "model.safetensors.index.json"), "--init-config",
                 str(hf_folder / "missing.json")]) == 2
    assert "--init-config" in (err := capsys.readouterr().err) and "missing.json does not exist" in err
