"""Applio checkouts with a trained-for model folder, laid out exactly as upstream's scripts write them (our own
code; no upstream file is copied). Used by ``test_applio_layouts.py``.

Release 3.2.9 (``2614ccd``), what each file is and who writes it:

- ``logs/<model>/sliced_audios/<sid>_<idx0>_<idx1>.wav`` at the model's rate and ``sliced_audios_16k/`` (same
  names, 16 kHz), both float32 WAV (``rvc/train/preprocess/preprocess.py:74-89``, ``scipy.io.wavfile.write`` of
  float32 arrays); ``model_info.json`` with ``total_dataset_duration``/``total_seconds``
  (``preprocess.py:208-223``);
- ``f0/<clip>.wav.npy`` (coarse pitch, integers) and ``f0_voiced/<clip>.wav.npy`` (Hz, float64), ``extracted/
  <clip>.npy`` (``[frames, 768]`` float32), ``embedder_model`` added to ``model_info.json``
  (``rvc/train/extract/extract.py:210-236``, ``:87-97``, ``:152-162``);
- ``config.json`` copied from ``rvc/configs/<sr>.json`` (``model.text_enc_hidden_dim`` 768) and
  ``filelist.txt``: ``wav|features|f0|f0_voiced|sid`` with absolute paths, two mute lines per speaker, shuffled,
  joined with ``\\n`` and no newline at the end; ``speakers_id`` added to ``model_info.json``
  (``rvc/train/extract/preparing_files.py:11-75``);
- upstream's own ``logs/mute/`` (``extracted/mute.npy`` ``(149, 768)`` float32, ``f0/mute.wav.npy`` ``(301,)``
  int32, ``f0_voiced/mute.wav.npy`` float64, ``sliced_audios/mute<sr>.wav`` 16-bit PCM,
  ``sliced_audios_16k/mute.wav``) and ``logs/reference/ref<sr>.wav`` with ``ref<sr>_feats.npy`` ``(153, 768)``,
  ``_f0c.npy``, ``_f0f.npy``, as shipped in the 3.2.9 tree.

``layout="main"`` (``b9c0ccb``) differs in the file list's paths, relative to the checkout
(``preparing_files.py:55-83``), adds ``logs/mute_spin/`` and ``logs/mute_spin-v2/``, and ships
``logs/reference/reference.wav`` with ``contentvec/feats.npy`` beside it. ``layout="3.2.4"`` (``9d91ed4``):
``v2_extracted/`` (``rvc/train/extract/extract.py:25-33``), ``config.json`` from ``rvc/configs/v2/<sr>.json``,
no ``model_info.json``, always two mute lines (``preparing_files.py:18-60``).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import soundfile as sf

SR = 40000


def _wav(path: Path, seconds: float, sr: int, rng, subtype: str = "FLOAT", silent: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    n = int(seconds * sr)
    y = np.zeros(n, np.float32) if silent else (0.2 * rng.standard_normal(n)).astype(np.float32)
    sf.write(path, y, sr, subtype=subtype)


def _npy(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, array, allow_pickle=False)


def _shipped(root: Path, layout: str, rng) -> None:
    mutes = ["mute"] + (["mute_spin", "mute_spin-v2"] if layout == "main" else [])
    feats = "v2_extracted" if layout == "3.2.4" else "extracted"
    for name in mutes:
        mute = root / "logs" / name
        for sr in (32000, 40000, 48000):
            _wav(mute / "sliced_audios" / f"mute{sr}.wav", 3.0, sr, rng, "PCM_16", silent=True)
        _wav(mute / "sliced_audios_16k" / "mute.wav", 3.0, 16000, rng, "PCM_16", silent=True)
        _npy(mute / feats / "mute.npy", rng.standard_normal((149, 768)).astype(np.float32))
        _npy(mute / "f0" / "mute.wav.npy", np.ones(301, np.int32))
        _npy(mute / "f0_voiced" / "mute.wav.npy", np.zeros(301, np.float64))
        if layout == "3.2.4":
            _npy(mute / "v1_extracted" / "mute.npy", rng.standard_normal((149, 256)).astype(np.float32))
    ref = root / "logs" / "reference"
    if layout == "3.2.9":
        for sr in (32000, 40000, 48000):
            _wav(ref / f"ref{sr}.wav", 1.5, sr, rng, "PCM_16")
            _npy(ref / f"ref{sr}_feats.npy", rng.standard_normal((153, 768)).astype(np.float32))
            _npy(ref / f"ref{sr}_f0c.npy", np.ones(307, np.int32))
            _npy(ref / f"ref{sr}_f0f.npy", np.full(307, 150.0))
    elif layout == "main":
        _wav(ref / "reference.wav", 1.5, 16000, rng, "PCM_16")
        _npy(ref / "contentvec" / "feats.npy", rng.standard_normal((153, 768)).astype(np.float32))
        _npy(ref / "pitch_coarse.npy", np.ones(307, np.int32))
        _npy(ref / "pitch_fine.npy", np.full(307, 150.0))


def make_applio(root: str | Path, layout: str = "3.2.9", model: str = "my-voice", clips: int = 4,
                width: int = 768, seed: int = 0) -> Path:
    """Write ``root/logs/<model>/`` after preprocessing and extraction, plus upstream's shipped folders;
    ``width``: what the embedder wrote (1024 for chinese-hubert-large). Returns the model folder."""
    if layout not in ("3.2.4", "3.2.9", "main"):
        raise ValueError(f"layout={layout!r}")
    root, rng = Path(root).absolute(), np.random.default_rng(seed)
    _shipped(root, layout, rng)
    exp = root / "logs" / model
    names = [f"0_{i}_0" for i in range(clips)]
    for name in names:
        _wav(exp / "sliced_audios" / f"{name}.wav", 1.0, SR, rng)
        _wav(exp / "sliced_audios_16k" / f"{name}.wav", 1.0, 16000, rng)
    feats = "v2_extracted" if layout == "3.2.4" else "extracted"
    for name in names:
        _npy(exp / "f0" / f"{name}.wav.npy", rng.integers(1, 255, 101))
        _npy(exp / "f0_voiced" / f"{name}.wav.npy", rng.uniform(80, 300, 101))
        _npy(exp / feats / f"{name}.npy", rng.standard_normal((49, width)).astype(np.float32))
    config = {"data": {"sample_rate": SR, "hop_length": 400}, "model": {"text_enc_hidden_dim": 768,
                                                                        "hidden_channels": 192}}
    (exp / "config.json").write_text(json.dumps(config, indent=2))
    if layout != "3.2.4":
        info = {"total_dataset_duration": "00:00:04", "total_seconds": float(clips), "embedder_model": "contentvec",
                "speakers_id": 1}
        (exp / "model_info.json").write_text(json.dumps(info, indent=4))
    write_filelist(root, exp, names, layout)
    return exp


def write_filelist(root: Path, exp: Path, names: list[str], layout: str) -> None:
    """``filelist.txt`` for the clips ``names`` (empty: a failed extraction), as that release writes it."""
    feats = "v2_extracted" if layout == "3.2.4" else "extracted"
    mute = root / "logs" / "mute"

    def path(p: Path) -> str:
        return p.relative_to(root).as_posix() if layout == "main" else str(p)

    lines = [f"{path(exp / 'sliced_audios' / n)}.wav|{path(exp / feats / n)}.npy|{path(exp / 'f0' / n)}.wav.npy|"
             f"{path(exp / 'f0_voiced' / n)}.wav.npy|0" for n in names]
    speakers = 1 if layout == "3.2.4" else len({n.split("_")[0] for n in names})  # 3.2.4: two mutes always
    lines += [f"{path(mute / 'sliced_audios' / f'mute{SR}.wav')}|{path(mute / feats / 'mute.npy')}|"
              f"{path(mute / 'f0' / 'mute.wav.npy')}|{path(mute / 'f0_voiced' / 'mute.wav.npy')}|0"] * (2 * speakers)
    random.Random(0).shuffle(lines)
    (exp / "filelist.txt").write_text("\n".join(lines))
