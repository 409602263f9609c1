"""Produce ``tests/data/slice_reference.json`` once, from upstream's own code (run by hand; needs ffmpeg).

    python tests/data/make_slice_reference.py --gpt-sovits /path/to/GPT-SoVITS --audio-slicer /path/to/audio-slicer

``--gpt-sovits``: a checkout at 48b1a01; ``--audio-slicer``: openvpi/audio-slicer at 9958eed. Upstream files are
only imported from those checkouts (nothing of theirs is copied here). GPT-SoVITS's ``tools/my_utils.py`` imports
gradio and ffmpeg-python just for ``load_audio``; a scratch copy of ``tools/`` gets a stand-in ``my_utils.py``
that runs the same ffmpeg command (``tts_nb_utils.audio.decode.ffmpeg_command``). Records:

* ``slice_audio``: for the demo takes and ``tests/slice_cases.py``'s takes, each input's sha256 and the clips
  ``tools/slice_audio.py`` wrote with the web UI defaults (name, sha256 of the WAV, samples, int16 peak);
* ``slicer``: cut ranges of GPT-SoVITS's ``Slicer`` and openvpi's ``Slicer`` on channels-first stereo
  arrays (upstream's layout; two are short takes around ``min_length``), in samples.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.slice_cases import make_take, write_cases  # noqa: E402
from tts_nb_utils.audio.decode import ffmpeg_command  # noqa: E402

STAND_IN = """import subprocess, numpy as np
def load_audio(file, sr):
    return np.frombuffer(subprocess.run({cmd!r}[:5] + [file] + {cmd!r}[6:-2] + [str(sr), "-"],
                         capture_output=True, check=True).stdout, np.float32).flatten()
"""
UI_DEFAULTS = ["-34", "4000", "300", "10", "500", "0.9", "0.25", "0", "1"]
#: name -> (sample rate, seconds, seed, silence at the start and end in seconds) for the slicer-only cases
ARRAYS = {"stereo_cf_32k": (32000, 14.0, 21, 0.0), "short_3s_32k": (32000, 3.1, 22, 0.9),
          "short_4s_44k": (44100, 3.95, 23, 0.7), "stereo_cf_40k": (40000, 9.0, 24, 0.0)}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run_slice_audio(gsv: Path, inp: Path, scratch: Path) -> dict:
    tools = scratch / "tools"
    if not tools.exists():
        tools.mkdir(parents=True)
        for name in ("slice_audio.py", "slicer2.py"):
            shutil.copy(gsv / "tools" / name, tools / name)
        (tools / "__init__.py").write_text("")
        (tools / "my_utils.py").write_text(STAND_IN.format(cmd=ffmpeg_command("FILE", 0)))
    out = scratch / f"out_{inp.name}"
    env_path = f"{scratch}:{tools}"
    subprocess.run([sys.executable, str(tools / "slice_audio.py"), str(inp), str(out), *UI_DEFAULTS], check=True,
                   env={"PYTHONPATH": env_path, "PATH": "/usr/bin:/bin:/usr/local/bin"}, capture_output=True)
    files = {}
    for src in sorted(p for p in inp.iterdir() if p.is_file()):
        clips = []
        for clip in sorted(out.glob(f"{src.name}_*.wav")):
            data, _ = sf.read(str(clip), dtype="int16")
            clips.append({"name": clip.name, "sha256": sha256(clip), "samples": len(data),
                          "peak": int(np.abs(data.astype(np.int32)).max()) if len(data) else 0})
        files[src.name] = {"sha256": sha256(src), "clips": clips}
    return files


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.Slicer


def array_case(sr: int, seconds: float, seed: int, edge: float) -> np.ndarray:
    """``[channels, n]`` float32 (upstream's layout): a take from slice_cases with ``edge`` s of silence each end."""
    x = make_take(sr, 2, seconds, seed)
    k = int(edge * sr)
    if k:
        x[:k] = 0.0
        x[-k:] = 0.0
    return np.ascontiguousarray(x.T)


def offsets(chunks, base: np.ndarray) -> list[list[int]]:
    """Sample ranges of the views upstream returns (openvpi's Slicer returns arrays only)."""
    step = base.strides[-1]
    start = base.__array_interface__["data"][0]
    return [[(c.__array_interface__["data"][0] - start) // step,
             (c.__array_interface__["data"][0] - start) // step + c.shape[-1]] for c in chunks]


def slicer_cases(gsv: Path, openvpi: Path) -> dict:
    gsv_slicer, ov_slicer = _load(gsv / "tools" / "slicer2.py", "gsv_slicer2"), _load(openvpi / "slicer2.py", "ov2")
    out = {}
    for name, (sr, seconds, seed, edge) in ARRAYS.items():
        x = array_case(sr, seconds, seed, edge)
        args = dict(sr=sr, threshold=-34, min_length=4000, min_interval=300, hop_size=10, max_sil_kept=500)
        g = gsv_slicer(**args).slice(x)
        g_ranges = [[0, x.shape[-1]]] if isinstance(g[0], np.ndarray) else [[int(s), int(e)] for _, s, e in g]
        out[name] = {"sr": sr, "seconds": seconds, "seed": seed, "edge_s": edge, "samples": int(x.shape[-1]),
                     "gpt_sovits_names": g_ranges, "openvpi": offsets(ov_slicer(**args).slice(x), x)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gpt-sovits", type=Path, required=True)
    ap.add_argument("--audio-slicer", type=Path, required=True)
    args = ap.parse_args()
    version = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True).stdout.split("\n")[0]
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        unseen = scratch / "unseen"
        write_cases(unseen)
        ref = {"ffmpeg": version, "gpt_sovits": "48b1a01", "audio_slicer": "9958eed",
               "slice_audio": {"demo": run_slice_audio(args.gpt_sovits, ROOT / "data" / "demo" / "raw", scratch),
                               "unseen": run_slice_audio(args.gpt_sovits, unseen, scratch)},
               "slicer": slicer_cases(args.gpt_sovits, args.audio_slicer)}
    dest = Path(__file__).with_name("slice_reference.json")
    dest.write_text(json.dumps(ref, indent=1) + "\n")
    print(f"wrote {dest}")


if __name__ == "__main__":
    main()
