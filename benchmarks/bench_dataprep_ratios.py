"""Three speed ratios for the data commands (notebook 01, issue 14), measured side by side in one run:

1. ``tts-nb validate`` on an hour of audio, one core, start-up included: times real time (aim >= 1000x);
2. ``tts-nb slice --preset gpt-sovits`` against GPT-SoVITS's ``tools/slice_audio.py`` end to end on the same
   files (aim: ratio >= 1, ours at least as fast); needs ffmpeg and a GPT-SoVITS checkout (``GPT_SOVITS_DIR``,
   48b1a01), whose ``slice_audio.py``/``slicer2.py`` run from a scratch copy with a stand-in ``my_utils.py``
   (the same ffmpeg command; the real one imports gradio);
3. the slicer core against PyPI's ``audio-slicer`` (openvpi's slicer2, the ``bench`` extra) on the same array,
   same cut points checked.

    GPT_SOVITS_DIR=/path/to/GPT-SoVITS .venv/bin/python benchmarks/bench_dataprep_ratios.py

Also prints whether a data command imports torch. One core: ``taskset -c 0`` where available, one BLAS thread.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from tts_nb_utils.audio.decode import ffmpeg_command, have_ffmpeg
from tts_nb_utils.dataprep.slicer import SlicerConfig, slice_ranges

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_dataprep import speech_take as take  # noqa: E402

ONE_CORE = ["taskset", "-c", "0"] if shutil.which("taskset") else []
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
       "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
UI_DEFAULTS = ["-34", "4000", "300", "10", "500", "0.9", "0.25", "0", "1"]
STAND_IN = """import subprocess, numpy as np
def load_audio(file, sr):
    return np.frombuffer(subprocess.run({cmd!r}[:5] + [file] + {cmd!r}[6:-2] + [str(sr), "-"],
                         capture_output=True, check=True).stdout, np.float32).flatten()
"""


def wall(cmd: list[str], repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        subprocess.run(ONE_CORE + cmd, env=ENV, check=False, capture_output=True)
        best = min(best, time.perf_counter() - t)
    return best


def validate_ratio(tmp: Path) -> None:
    hour = tmp / "hour"
    hour.mkdir()
    for k in range(60):
        sf.write(str(hour / f"take{k:02d}.flac"), take(60.0, 22050, k), 22050, subtype="PCM_16")
    t = wall([sys.executable, "-m", "tts_nb_utils.cli", "validate", str(hour), "-q"])
    print(f"1. tts-nb validate, 60 min (60 FLAC files), one core, start-up included: {3600 / t:6.0f}x real time "
          f"({t:.2f} s; aim >= 1000x)")


def _upstream_scratch(gsv: Path, tmp: Path) -> Path:
    tools = tmp / "gsv" / "tools"
    tools.mkdir(parents=True)
    for name in ("slice_audio.py", "slicer2.py"):
        shutil.copy(gsv / "tools" / name, tools / name)
    (tools / "__init__.py").write_text("")
    (tools / "my_utils.py").write_text(STAND_IN.format(cmd=ffmpeg_command("FILE", 0)))
    return tools


def slice_ratio(tmp: Path) -> None:
    gsv = os.environ.get("GPT_SOVITS_DIR")
    if not (gsv and have_ffmpeg()):
        print("2. slice vs slice_audio.py: skipped (set GPT_SOVITS_DIR to a GPT-SoVITS checkout; needs ffmpeg)")
        return
    src = tmp / "long"
    src.mkdir()
    sf.write(str(src / "talk.flac"), np.stack([take(780.0, 44100, 99)] * 2, axis=1), 44100, subtype="PCM_16")
    tools = _upstream_scratch(Path(gsv), tmp)
    env_up = {"PYTHONPATH": f"{tools.parent}:{tools}"}
    up = [sys.executable, str(tools / "slice_audio.py"), str(src), str(tmp / "up"), *UI_DEFAULTS]
    ENV.update(env_up)  # harmless for ours: tts_nb_utils comes first on the path
    t_up = wall(up)
    ours = [sys.executable, "-m", "tts_nb_utils.cli", "slice", str(src), str(tmp / "ours"), "-q"]
    t_ours = wall(ours)
    t_fb = wall(ours[:-2] + [str(tmp / "fb"), "-q", "--decoder", "fallback"])
    same = sorted(p.name for p in (tmp / "up").glob("*.wav")) == sorted(p.name for p in (tmp / "ours").glob("*.wav"))
    print(f"2. 13-min 44.1 kHz stereo take, end to end, one core: slice_audio.py {t_up:.2f} s, "
          f"tts-nb slice --preset gpt-sovits {t_ours:.2f} s (ffmpeg) / {t_fb:.2f} s (fallback decoder): "
          f"{t_up / t_ours:.2f}x / {t_up / t_fb:.2f}x (aim >= 1); same clip names: {same}")


def core_ratio() -> None:
    try:
        from src.slicer2 import Slicer  # PyPI audio-slicer (openvpi), the bench extra
    except ImportError:
        print("3. slicer core vs audio-slicer: skipped (pip install -e '.[bench]')")
        return
    y, sr = take(600.0, 44100, 7), 44100
    cfg = SlicerConfig()
    theirs = Slicer(sr, threshold=-34, min_length=4000, min_interval=300, hop_size=10, max_sil_kept=500)
    t = time.perf_counter()
    chunks = theirs.slice(y)
    t_theirs = time.perf_counter() - t
    t = time.perf_counter()
    ranges = slice_ranges(y, sr, cfg, rule="openvpi")
    t_ours = time.perf_counter() - t
    base = y.__array_interface__["data"][0]
    starts = [(c.__array_interface__["data"][0] - base) // 4 for c in chunks]
    same = starts == [a for a, _ in ranges] and [len(c) for c in chunks] == [b - a for a, b in ranges]
    print(f"3. slicer core on 10 min at 44.1 kHz: audio-slicer {t_theirs * 1000:.0f} ms, ours {t_ours * 1000:.0f} ms:"
          f" {t_theirs / t_ours:.1f}x faster; same cut points: {same}")


def torch_check() -> None:
    probe = ("import sys; from tts_nb_utils.cli import main\n"
             "for c in ('validate', 'slice', 'prepare'):\n"
             "    try: main([c, '--help'])\n    except SystemExit: pass\n"
             "import tts_nb_utils.dataprep.presets, tts_nb_utils.dataprep.prepare\n"
             "print('torch' in sys.modules, file=sys.stderr)")
    out = subprocess.run([sys.executable, "-c", probe], env=ENV, capture_output=True, text=True)
    print(f"data commands (validate, slice, prepare) import torch: {out.stderr.strip().splitlines()[-1]}")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        torch_check()
        validate_ratio(Path(tmp))
        slice_ratio(Path(tmp))
        core_ratio()


if __name__ == "__main__":
    main()
