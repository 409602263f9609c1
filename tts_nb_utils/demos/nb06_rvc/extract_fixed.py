"""Feature extraction with the fixes from notebook 07: ``parse_bool`` for the half-precision flag (half only
on a GPU), input normalisation in float32 before any cast or move, fail fast on the first file that cannot be
processed (exit status 1, naming the file), atomic outputs, and a check of every output (present, 768 wide
for a v2 model, finite, not all zeros) before saying "completed".

``python -m tts_nb_utils.demos.nb06_rvc.extract_fixed DEVICE EXP_DIR EMBEDDER_DIR IS_HALF``
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torch.nn.functional as F

from tts_nb_utils.demos.nb06_rvc.embedder import load_embedder
from tts_nb_utils.diagnose.features import check_features
from tts_nb_utils.io import BoolParseError, atomic_path, parse_bool

V2_DIM = 768  # what an RVC v2 model reads per frame (Applio 3.2.2 synthesizers.py:60, encoders.py:122)


def read_wave(path: Path, normalize: bool) -> torch.Tensor:
    """``[1, samples]`` float32, layer-normalised over the whole clip when the embedder asks for it."""
    wav, sr = sf.read(path, dtype="float32", always_2d=True)
    if sr != 16000:
        raise ValueError(f"sample rate {sr} Hz, expected 16000 Hz: resample the sliced audio")
    feats = torch.from_numpy(wav).mean(-1).view(1, -1)
    return F.layer_norm(feats, feats.shape) if normalize else feats  # in float32, whatever runs the model


def extract(device: str, exp_dir: Path, embedder_dir: Path, is_half: bool) -> int:
    if is_half and not device.startswith("cuda"):
        print(f"is_half=True on {device}: using float32 (half precision is for GPUs)", file=sys.stderr)
        is_half = False
    dtype = torch.float16 if is_half else torch.float32
    model, config = load_embedder(embedder_dir)
    model = model.to(device=device, dtype=dtype)
    wav_dir, out_dir = exp_dir / "sliced_audios", exp_dir / "v2_extracted"
    out_dir.mkdir(parents=True, exist_ok=True)
    files = sorted(wav_dir.glob("*.wav"))
    for path in files:
        out = out_dir / f"{path.stem}.npy"
        if out.exists():
            continue  # resumable: outputs are written atomically, so an existing one is complete
        try:
            feats = read_wave(path, config["normalize"]).to(device=device, dtype=dtype)
            with torch.no_grad():
                array = model(feats)[0].float().cpu().numpy()
            with atomic_path(out) as tmp, open(tmp, "wb") as f:
                np.save(f, array, allow_pickle=False)
        except Exception as e:
            raise RuntimeError(f"feature extraction failed on {path}: {e}") from e
    report = check_features(wav_dir, out_dir, ".npy", V2_DIM, (".wav",))
    if not report.ok:
        raise RuntimeError(f"the extracted features are not usable by a v2 model:\n{report.format(limit=3)}")
    return len(files)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 4:  # positional, as upstream's script takes them; the fix is parse_bool, not the syntax
        print("usage: extract_fixed DEVICE EXP_DIR EMBEDDER_DIR IS_HALF (true/false, 1/0, yes/no, on/off)",
              file=sys.stderr)
        return 2
    try:
        is_half = parse_bool(argv[3], name="IS_HALF")
    except BoolParseError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    device, exp_dir, embedder_dir = argv[0], Path(argv[1]), Path(argv[2])
    start = time.perf_counter()
    try:
        n = extract(device, exp_dir, embedder_dir, is_half)
    except (RuntimeError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"Feature extraction completed: {n} file(s) in {time.perf_counter() - start:.2f} seconds.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
