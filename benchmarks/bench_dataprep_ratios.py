"""The data commands against their peers and floors (notebook 01; issues 14 and 29), measured side by side in one
run: every command of a comparison runs once per round, rounds interleaved, medians and per-round ratios shown.

1. ``tts-nb slice --preset gpt-sovits`` against GPT-SoVITS's ``tools/slice_audio.py`` (48b1a01) end to end, on a
   folder (``--files`` takes of 20-60 s at 22.05-48 kHz, some stereo, WAV and FLAC; aim >= 1.5x) and on one
   13-minute 44.1 kHz stereo FLAC (aim >= 2x), with ``--jobs 1`` and the default jobs; every clip compared
   byte for byte with upstream's. ``slice_audio.py`` runs from a scratch copy with a stand-in ``my_utils.py``
   (the same ffmpeg command through ``subprocess``, as ffmpeg-python runs it; the real file imports gradio).
   Needs a GPT-SoVITS checkout (``GPT_SOVITS_DIR``); upstream gets the same ffmpeg binary as ours (PATH's,
   else imageio-ffmpeg's, linked into a scratch PATH);
2. ``tts-nb validate`` on 60 minutes (60 FLAC files, 22.05 kHz), start-up included, ``--jobs 1`` and ``--jobs 2``
   (aims: >= 2500x real time with 2 jobs; jobs 2 / jobs 1 <= 0.6), beside its floor (``soundfile.read`` of
   every file in one process, no start-up);
3. the loudness filter against ``scipy.signal.sosfilt`` (time, and the import it saves per process) and the
   loudness against pyloudnorm on the same files;
4. the slicer core against PyPI's ``audio-slicer`` (the ``bench`` extra), same cut points checked.

    GPT_SOVITS_DIR=/path/to/GPT-SoVITS .venv/bin/python benchmarks/bench_dataprep_ratios.py [--rounds 3]
    .venv/bin/python benchmarks/bench_dataprep_ratios.py --only validate [--baseline /path/to/other/checkout]

Also prints whether a data command imports torch. Timings are wall-clock on whatever else the machine runs.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from tts_nb_utils.audio.decode import ffmpeg_command, ffmpeg_exe
from tts_nb_utils.dataprep.slicer import SlicerConfig, slice_ranges
from tts_nb_utils.parallel import default_jobs

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_dataprep import speech_take as take  # noqa: E402

ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
UI_DEFAULTS = ["-34", "4000", "300", "10", "500", "0.9", "0.25", "0", "1"]
STAND_IN = """import subprocess, numpy as np
def load_audio(file, sr):
    return np.frombuffer(subprocess.run({cmd!r}[:5] + [file] + {cmd!r}[6:-2] + [str(sr), "-"],
                         capture_output=True, check=True).stdout, np.float32).flatten()
"""
OURS = [sys.executable, "-m", "tts_nb_utils.cli"]
SECTIONS = ("torch", "slice", "validate", "core")


CPU: dict[str, list] = {}  # CPU seconds (user + system, the command and its children) per command name


def wall(cmd: list[str], env: dict | None = None, name: str = "", cwd: Path | None = None) -> float:
    """Wall seconds of ``cmd``; its CPU seconds go to ``CPU[name]`` (a figure a busy machine disturbs less)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    subprocess.run(cmd, env=env or ENV, check=True, capture_output=True, cwd=cwd)
    seconds = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU.setdefault(name, []).append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    return seconds


def interleaved(cmds: dict[str, list[str]], rounds: int, envs: dict[str, dict] | None = None,
                cwd: Path | None = None) -> dict[str, list]:
    """Seconds per round for each command, the commands of a round run back to back (``envs``: per command)."""
    times: dict[str, list] = {k: [] for k in cmds}
    for _ in range(rounds):
        for name, cmd in cmds.items():
            times[name].append(wall(cmd, (envs or {}).get(name), name=name, cwd=cwd))
    return times


def show(times: dict[str, list], peer: str, aims: dict[str, float] | None = None, audio_s: float | None = None,
         cpu_prefix: str | None = None):
    """Medians, ranges and ratios to ``peer`` (per round too); CPU seconds where :func:`wall` measured them."""
    ref = statistics.median(times[peer])
    for name, ts in times.items():
        med = statistics.median(ts)
        line = f"   {name:<34} median {med:6.2f} s  [{min(ts):.2f}-{max(ts):.2f}]"
        if audio_s:
            line += f"  {audio_s / med:7.0f}x real time"
        if name != peer:
            rounds = [p / o for p, o in zip(times[peer], ts, strict=True)]
            line += f"  {peer} / this: {ref / med:4.2f}x (rounds {min(rounds):.2f}-{max(rounds):.2f})"
            if aims and name in aims:
                line += f"  aim >= {aims[name]}x"
        cpu = CPU.get(f"{cpu_prefix}{name}") if cpu_prefix is not None else None
        if cpu:
            line += f"  CPU {statistics.median(cpu):.2f} s"
        print(line)


def _upstream(gsv: Path, tmp: Path) -> tuple[list[str], dict]:
    tools = tmp / "gsv" / "tools"
    tools.mkdir(parents=True)
    for name in ("slice_audio.py", "slicer2.py"):
        shutil.copy(gsv / "tools" / name, tools / name)
    (tools / "__init__.py").write_text("")
    (tools / "my_utils.py").write_text(STAND_IN.format(cmd=ffmpeg_command("FILE", 0)))
    bin_dir = tmp / "bin"  # upstream calls "ffmpeg": give it the binary ours uses
    bin_dir.mkdir()
    (bin_dir / "ffmpeg").symlink_to(ffmpeg_exe())
    env = {**ENV, "PYTHONPATH": f"{tools.parent}{os.pathsep}{tools}",
           "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    return [sys.executable, str(tools / "slice_audio.py")], env


def make_folder(folder: Path, files: int) -> float:
    folder.mkdir()
    rng, total = np.random.default_rng(0), 0.0
    for k in range(files):
        seconds, sr = float(rng.uniform(20, 60)), (44100, 48000, 22050, 32000)[k % 4]
        y = take(seconds, sr, k)
        y = np.stack([y, 0.9 * y], axis=1) if k % 3 == 0 else y
        sf.write(str(folder / f"take{k:02d}.{'flac' if k % 2 else 'wav'}"), y, sr, subtype="PCM_16")
        total += seconds
    return total


def slice_ratios(tmp: Path, rounds: int, files: int) -> None:
    gsv = os.environ.get("GPT_SOVITS_DIR")
    if not (gsv and ffmpeg_exe()):
        print("1. slice vs slice_audio.py: skipped (set GPT_SOVITS_DIR to a GPT-SoVITS 48b1a01 checkout)")
        return
    up, env_up = _upstream(Path(gsv), tmp)
    folder_s = make_folder(tmp / "folder", files)
    (tmp / "long").mkdir()
    sf.write(str(tmp / "long" / "talk.flac"), np.stack([take(780.0, 44100, 99)] * 2, axis=1), 44100,
             subtype="PCM_16")
    jobs = default_jobs()
    print(f"1. slice, end to end (ffmpeg {ffmpeg_exe()}; default --jobs {jobs}); {rounds} interleaved rounds")
    for label, src, audio_s, aim in (("folder", tmp / "folder", folder_s, 1.5), ("one long file", tmp / "long", 780.0, 2.0)):
        outs = {"slice_audio.py": tmp / "up", "tts-nb slice --jobs 1": tmp / "j1",
                f"tts-nb slice --jobs {jobs}": tmp / "jn"}
        cmds = {"slice_audio.py": [*up, str(src), str(outs["slice_audio.py"]), *UI_DEFAULTS],
                "tts-nb slice --jobs 1": [*OURS, "slice", str(src), str(outs["tts-nb slice --jobs 1"]), "-q", "--jobs", "1"],
                f"tts-nb slice --jobs {jobs}": [*OURS, "slice", str(src), str(outs[f"tts-nb slice --jobs {jobs}"]), "-q",
                                                "--jobs", str(jobs)]}
        times: dict[str, list] = {k: [] for k in cmds}
        for _ in range(rounds):
            for name, cmd in cmds.items():
                shutil.rmtree(outs[name], ignore_errors=True)
                times[name].append(wall(cmd, env_up if name == "slice_audio.py" else None, f"{label}: {name}"))
        theirs = sorted(p.name for p in outs["slice_audio.py"].glob("*.wav"))
        same = all(sorted(p.name for p in o.glob("*.wav")) == theirs
                   and all((o / n).read_bytes() == (outs["slice_audio.py"] / n).read_bytes() for n in theirs)
                   for o in list(outs.values())[1:])
        print(f" {label}: {audio_s / 60:.1f} min of audio, {len(theirs)} clips, every clip byte-identical: {same}")
        show(times, "slice_audio.py", {f"tts-nb slice --jobs {jobs}": aim}, cpu_prefix=f"{label}: ")


def validate_ratios(tmp: Path, rounds: int, baseline: str | None = None) -> None:
    hour = tmp / "hour"
    hour.mkdir()
    for k in range(60):
        sf.write(str(hour / f"take{k:02d}.flac"), take(60.0, 22050, k), 22050, subtype="PCM_16")
    files = sorted(hour.iterdir())
    cmds = {f"tts-nb validate --jobs {j}": [*OURS, "validate", str(hour), "-q", "--jobs", str(j)] for j in (1, 2)}
    envs = {name: ENV for name in cmds}
    if baseline:  # the same commands with another checkout's package first on the path
        env = {**ENV, "PYTHONPATH": os.pathsep.join(filter(None, [baseline, os.environ.get("PYTHONPATH")]))}
        for j in (1, 2):
            cmds[f"baseline --jobs {j}"], envs[f"baseline --jobs {j}"] = cmds[f"tts-nb validate --jobs {j}"], env
    times = interleaved(cmds, rounds, envs, cwd=tmp)  # not a checkout: `python -m` puts the cwd first on the path
    floor = []
    for _ in range(rounds):
        t = time.perf_counter()
        for f in files:
            sf.read(str(f), dtype="float32")
        floor.append(time.perf_counter() - t)
    times["floor: soundfile.read, no start-up"] = floor
    print(f"2. validate, 60 min (60 FLAC files, 22.05 kHz), start-up included; {rounds} interleaved rounds"
          + (f" (baseline: {baseline})" if baseline else ""))
    show(times, "tts-nb validate --jobs 1", audio_s=3600.0, cpu_prefix="")
    for who in ("tts-nb validate", "baseline") if baseline else ("tts-nb validate",):
        j1, j2 = (statistics.median(times[f"{who} --jobs {j}"]) for j in (1, 2))
        print(f"   {who}: jobs 2 / jobs 1 in time: {j2 / j1:.2f} (aim <= 0.6); jobs 2 at {3600 / j2:.0f}x (aim >= "
              f"2500x); {j2 / statistics.median(floor):.1f}x the decode floor")
    loudness_ratios(files[:10])


def loudness_ratios(files: list[Path]) -> None:
    import pyloudnorm

    from tts_nb_utils.audio.loudness import integrated_loudness, k_weighted, k_weighting_biquads

    probe = "import time; t = time.perf_counter(); import scipy.signal; print(time.perf_counter() - t)"
    imports = [float(subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True).stdout)
               for _ in range(3)]
    from scipy.signal import sosfilt

    ys = [sf.read(str(f), dtype="float32")[0] for f in files]
    sr = sf.info(str(files[0])).samplerate
    sos = np.array([np.concatenate([b, a]) for b, a in k_weighting_biquads(sr)], np.float32)
    ours, theirs = [], []
    for _ in range(5):
        t = time.perf_counter()
        for y in ys:
            k_weighted(y, sr)
        ours.append(time.perf_counter() - t)
        t = time.perf_counter()
        for y in ys:
            sosfilt(sos, y)
        theirs.append(time.perf_counter() - t)
    diff = max(abs(integrated_loudness(y, sr) - pyloudnorm.Meter(sr).integrated_loudness(y.astype(np.float64)))
               for y in ys)
    print(f"3. K-weighting on {len(ys)} min: NumPy block filter {statistics.median(ours) * 1000:.0f} ms, float32 "
          f"sosfilt {statistics.median(theirs) * 1000:.0f} ms (ratio {statistics.median(ours) / statistics.median(theirs):.2f}); "
          f"importing scipy.signal, saved per process: {statistics.median(imports) * 1000:.0f} ms; "
          f"largest difference from pyloudnorm: {diff:.1e} LU (aim <= 0.01)")


def core_ratio() -> None:
    try:
        from src.slicer2 import Slicer  # PyPI audio-slicer (openvpi), the bench extra
    except ImportError:
        print("4. slicer core vs audio-slicer: skipped (pip install -e '.[bench]')")
        return
    y, sr = take(600.0, 44100, 7), 44100
    theirs = Slicer(sr, threshold=-34, min_length=4000, min_interval=300, hop_size=10, max_sil_kept=500)
    t = time.perf_counter()
    chunks = theirs.slice(y)
    t_theirs = time.perf_counter() - t
    t = time.perf_counter()
    ranges = slice_ranges(y, sr, SlicerConfig(), rule="openvpi")
    t_ours = time.perf_counter() - t
    base = y.__array_interface__["data"][0]
    starts = [(c.__array_interface__["data"][0] - base) // 4 for c in chunks]
    same = starts == [a for a, _ in ranges] and [len(c) for c in chunks] == [b - a for a, b in ranges]
    print(f"4. slicer core on 10 min at 44.1 kHz: audio-slicer {t_theirs * 1000:.0f} ms, ours {t_ours * 1000:.0f} ms:"
          f" {t_theirs / t_ours:.1f}x faster; same cut points: {same}")


def torch_check() -> None:
    probe = ("import sys; from tts_nb_utils.cli import main\n"
             "for c in ('validate', 'slice', 'prepare'):\n"
             "    try: main([c, '--help'])\n    except SystemExit: pass\n"
             "import tts_nb_utils.dataprep.presets, tts_nb_utils.dataprep.prepare\n"
             "print('torch' in sys.modules, 'scipy.signal' in sys.modules, file=sys.stderr)")
    out = subprocess.run([sys.executable, "-c", probe], env=ENV, capture_output=True, text=True)
    torch, signal = out.stderr.strip().splitlines()[-1].split()
    print(f"data commands (validate, slice, prepare) import torch: {torch}; scipy.signal: {signal}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per comparison (default 3)")
    parser.add_argument("--files", type=int, default=40, help="takes in the folder to slice (default 40)")
    parser.add_argument("--only", choices=SECTIONS, help="run one section (validate: 2 and 3)")
    parser.add_argument("--baseline", metavar="DIR", help="with --only validate: also time the tts_nb_utils of "
                        "this checkout (e.g. the main branch), interleaved round by round with this one's")
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPU(s), load average {os.getloadavg()[0]:.1f} at the start")
    with tempfile.TemporaryDirectory() as tmp:
        run = {"torch": torch_check, "slice": lambda: slice_ratios(Path(tmp), args.rounds, args.files),
               "validate": lambda: validate_ratios(Path(tmp), args.rounds, args.baseline), "core": core_ratio}
        for name in [args.only] if args.only else SECTIONS:
            run[name]()
    print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
