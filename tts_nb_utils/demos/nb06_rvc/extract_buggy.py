"""Feature extraction as Applio 3.2.x ran it (``rvc/train/extract/extract_feature_print.py``), in miniature.

Run as ``python -m tts_nb_utils.demos.nb06_rvc.extract_buggy DEVICE N_PARTS I_PART I_GPU EXP_DIR VERSION IS_HALF
EMBEDDER_DIR``: the same positional arguments, the same three faults, kept on purpose for notebook 06:

1. ``is_half = bool(sys.argv[7])``: any non-empty string is True, so "False" asks for half precision;
2. the waveform is cast to half while the model stays float32 on the CPU, and every file fails;
3. the per-file ``try/except`` only prints, and the script exits 0 saying extraction completed.
"""

import os
import sys
import time

import numpy as np
import soundfile as sf
import torch

from tts_nb_utils.demos.nb06_rvc.embedder import load_embedder

device = sys.argv[1]
n_parts = int(sys.argv[2])
i_part = int(sys.argv[3])
i_gpu = sys.argv[4]
exp_dir = sys.argv[5]
version = sys.argv[6]
is_half = bool(sys.argv[7])  # THE BUG: bool("False") is True
embedder_dir = sys.argv[8]

wav_path = os.path.join(exp_dir, "sliced_audios")
out_path = os.path.join(exp_dir, "extracted")
os.makedirs(out_path, exist_ok=True)


def read_wave(path):
    wav, sr = sf.read(path, dtype="float32")
    assert sr == 16000
    feats = torch.from_numpy(wav)
    feats = feats.half() if is_half else feats.float()
    return feats.view(1, -1)


start = time.perf_counter()
print("Starting feature extraction...")
model = load_embedder(embedder_dir).to(device)
if device not in ("mps", "cpu"):
    model = model.half()  # on a GPU both sides are half and nothing fails: the bug only bites on a CPU
todo = sorted(os.listdir(wav_path))[i_part::n_parts]
for file in todo:
    try:
        if file.endswith(".wav"):
            feats = read_wave(os.path.join(wav_path, file)).to(device)
            with torch.no_grad():
                out = model(feats)[0].float().cpu().numpy()
            np.save(os.path.join(out_path, file.replace(".wav", ".npy")), out, allow_pickle=False)
    except Exception as error:  # THE SECOND BUG: the error is printed and the loop goes on
        print(f"An error occurred processing {file}: {error}")
print(f"Feature extraction completed in {time.perf_counter() - start:.2f} seconds.")
