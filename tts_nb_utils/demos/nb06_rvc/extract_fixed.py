"""Feature extraction with the fixes from notebook 06: ``parse_bool`` for the half-precision flag (and half
only where the device supports it), fail fast on the first file that cannot be processed (exit status 1,
naming the file), atomic outputs, and a stage check before saying "completed".

``python -m tts_nb_utils.demos.nb06_rvc.extract_fixed DEVICE EXP_DIR EMBEDDER_DIR False``
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from tts_nb_utils.demos.nb06_rvc.embedder import load_embedder
from tts_nb_utils.diagnose.stage import StageCheckError, check_stage
from tts_nb_utils.io import BoolParseError, atomic_path, parse_bool


def extract(device: str, exp_dir: Path, embedder_dir: Path, is_half: bool) -> int:
    if is_half and device == "cpu":
        print("is_half=True on the CPU: using float32 (half precision is for GPUs)", file=sys.stderr)
        is_half = False
    dtype = torch.float16 if is_half else torch.float32
    model = load_embedder(embedder_dir).to(device=device, dtype=dtype)
    wav_dir, out_dir = exp_dir / "sliced_audios", exp_dir / "extracted"
    out_dir.mkdir(parents=True, exist_ok=True)
    files = sorted(wav_dir.glob("*.wav"))
    for path in files:
        out = out_dir / f"{path.stem}.npy"
        if out.exists():
            continue  # resumable: outputs are written atomically, so an existing one is complete
        try:
            wav, sr = sf.read(path, dtype="float32")
            if sr != 16000:
                raise ValueError(f"sample rate {sr} Hz, expected 16000 Hz: resample the sliced audio")
            with torch.no_grad():
                feats = model(torch.from_numpy(wav).to(device=device, dtype=dtype).view(1, -1))[0]
            with atomic_path(out) as tmp, open(tmp, "wb") as f:
                np.save(f, feats.float().cpu().numpy(), allow_pickle=False)
        except Exception as e:
            raise RuntimeError(f"feature extraction failed on {path}: {e}") from e
    check_stage(wav_dir, out_dir, ".npy", (".wav",)).raise_if_missing()
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
    except (RuntimeError, StageCheckError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"Feature extraction completed: {n} file(s) in {time.perf_counter() - start:.2f} seconds.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
