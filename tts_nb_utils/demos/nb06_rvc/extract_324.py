"""Embedding extraction as Applio 3.2.3-3.2.4 runs it, in miniature (notebook 07): 3.2.4
``rvc/train/extract/extract.py:42-56`` (``read_wave``) and ``:231-297`` (per file, per device), with the
precision rule of ``rvc/configs/config.py:30-31, 113-118, 134-140``.

``python -m tts_nb_utils.demos.nb06_rvc.extract_324 EXP_DIR VERSION GPUS EMBEDDER_DIR`` (``GPUS``: ``-`` for the
CPU, as upstream). Kept on purpose:

1. ``is_half`` is the config's: True on a CUDA device unless its name is in the low-end list, False on the CPU
   (the 3.2.2 ``bool("False")`` bug is gone), so on a CPU the input is float32 and the LayerNorm of ``read_wave``
   runs on any torch;
2. nothing compares the embedder's width with the model's: chinese-hubert-large's 1024 values per frame are
   saved to ``v2_extracted/`` for a model that reads 768;
3. a per-file ``except`` that only prints, and "completed" at the end.
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np
import soundfile as sf
import torch
import torch.nn.functional as F

from tts_nb_utils.demos.nb06_rvc.embedder import load_embedder

LOW_END_GPUS = ("16", "P40", "P10", "1060", "1070", "1080")  # config.py:134: these get is_half = False


def config_is_half(device: str) -> bool:
    """``Config().is_half`` for ``device``: CUDA and not a low-end card."""
    if not device.startswith("cuda"):
        return False
    name = torch.cuda.get_device_name(torch.device(device))
    return not (any(g in name for g in LOW_END_GPUS) and "V100" not in name.upper())


def read_wave(path: str, normalize: bool, is_half: bool) -> torch.Tensor:
    wav, sr = sf.read(path)
    assert sr == 16000, "Sample rate must be 16000"
    feats = torch.from_numpy(wav).float()
    if is_half:
        feats = feats.half()
    if feats.dim() == 2:
        feats = feats.mean(-1)
    feats = feats.view(1, -1)
    if normalize:  # on the CPU, before any move; float32 here unless is_half
        feats = F.layer_norm(feats, feats.shape)
    return feats


def extract_file(file: str, wav_path: str, out_path: str, model, device: str, config: dict, is_half: bool) -> None:
    out_file = os.path.join(out_path, file.replace("wav", "npy"))
    if os.path.exists(out_file):
        return
    feats = read_wave(os.path.join(wav_path, file), config["normalize"], is_half)
    dtype = torch.float16 if device.startswith("cuda") else torch.float32
    with torch.no_grad():
        out = model.to(device).to(dtype)(feats.to(dtype).to(device))
    array = out.squeeze(0).float().cpu().numpy()
    if not np.isnan(array).any():
        np.save(out_file, array, allow_pickle=False)
    else:
        print(f"{file} contains NaN values and will be skipped.")


def main(argv: list[str] | None = None) -> int:
    exp_dir, version, gpus, embedder_dir = (sys.argv[1:] if argv is None else argv)[:4]
    wav_path = os.path.join(exp_dir, "sliced_audios")  # upstream reads sliced_audios_16k; ours are 16 kHz already
    out_path = os.path.join(exp_dir, "v1_extracted" if version == "v1" else "v2_extracted")
    os.makedirs(out_path, exist_ok=True)
    print("Starting embedding extraction...")
    start = time.time()
    model, config = load_embedder(embedder_dir)
    devices = ["cpu"] if gpus == "-" else [f"cuda:{g}" for g in gpus.split("-")]
    for file in sorted(f for f in os.listdir(wav_path) if f.endswith(".wav")):
        for device in devices:
            try:
                extract_file(file, wav_path, out_path, model, device, config, config_is_half(device))
            except Exception as error:  # printed, and the loop goes on
                print(f"An error occurred processing {file}: {error}")
    print(f"Embedding extraction completed in {time.time() - start:.2f} seconds.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
