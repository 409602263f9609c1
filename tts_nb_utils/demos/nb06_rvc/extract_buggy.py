"""Feature extraction as Applio 3.2.2 ran it (``rvc/train/extract/extract_feature_print.py``), in miniature
(notebooks 06 and 07).

Run as ``python -m tts_nb_utils.demos.nb06_rvc.extract_buggy DEVICE N_PARTS I_PART I_GPU EXP_DIR VERSION IS_HALF
EMBEDDER_DIR``: the same positional arguments and the same order of operations, kept on purpose:

1. ``is_half = bool(sys.argv[7])`` (upstream line 21): any non-empty string is True, "False" included;
2. ``read_wave`` casts the waveform to half, then, when the embedder's config sets ``normalize``, calls
   ``F.layer_norm`` on that half tensor while it is still on the CPU (upstream lines 36-46); the move to the
   device comes later (line 83). On a torch whose CPU LayerNorm has no Half kernel this raises
   '"LayerNormKernelImpl" not implemented for 'Half'', on a GPU machine too;
3. on the CPU the model stays float32 (lines 57-58 halve it only on a GPU), so a half input fails there anyway;
4. the per-file ``try/except`` only prints (lines 101-102), and the script exits 0 saying it completed.
"""

import os
import sys
import time

import numpy as np
import soundfile as sf
import torch
import torch.nn.functional as F

from tts_nb_utils.demos.nb06_rvc.embedder import load_embedder

device = sys.argv[1]
n_parts = int(sys.argv[2])
i_part = int(sys.argv[3])
i_gpu = sys.argv[4]
exp_dir = sys.argv[5]
version = sys.argv[6]
is_half = bool(sys.argv[7])  # fault 1: bool("False") is True
embedder_dir = sys.argv[8]

wav_path = os.path.join(exp_dir, "sliced_audios")
out_path = os.path.join(exp_dir, f"{version}_extracted")
os.makedirs(out_path, exist_ok=True)


def read_wave(path, normalize=False):
    wav, sr = sf.read(path)
    assert sr == 16000
    feats = torch.from_numpy(wav)
    feats = feats.half() if is_half else feats.float()
    feats = feats.mean(-1) if feats.dim() == 2 else feats
    feats = feats.view(1, -1)
    if normalize:  # fault 2: a half tensor, normalised on the CPU, before any .to(device)
        with torch.no_grad():
            feats = F.layer_norm(feats, feats.shape)
    return feats


start = time.perf_counter()
print("Starting feature extraction...")
model, config = load_embedder(embedder_dir)
model = model.to(device)
if device not in ("mps", "cpu"):
    model = model.half()  # fault 3: only on a GPU; on the CPU the model stays float32
todo = sorted(os.listdir(wav_path))[i_part::n_parts]
for file in todo:
    try:
        if file.endswith(".wav"):
            feats = read_wave(os.path.join(wav_path, file), normalize=config["normalize"])
            with torch.no_grad():
                out = model(feats.to(device))[0].float().cpu().numpy()
            np.save(os.path.join(out_path, file.replace(".wav", ".npy")), out, allow_pickle=False)
    except Exception as error:  # fault 4: printed, and the loop goes on
        print(f"An error occurred processing {file}: {error}")
print(f"Feature extraction completed in {time.perf_counter() - start:.2f} seconds.")
