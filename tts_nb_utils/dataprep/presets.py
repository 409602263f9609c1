"""``tts-nb slice`` presets: the clips upstream's own slicing scripts write, plus a GPT-SoVITS ``.list``.

* ``gpt-sovits`` (the default): ``tools/slice_audio.py`` at GPT-SoVITS 48b1a01. Every file directly in IN
  (``:15-18``, not recursive) is decoded to 32 kHz mono float32 by ffmpeg (``:35``, ``tools/my_utils.py:24-28``;
  without ffmpeg, ``audio/decode.py``'s fallback), sliced with ``tools/slicer2.py`` (no DC removal), every chunk
  mixed as ``chunk / max * (max * alpha) + (1 - alpha) * chunk`` (``:38-41``) and written as 32 kHz int16 WAV
  ``(chunk * 32767).astype(int16)`` named ``<file name with extension>_<start>_<end>.wav`` in 32 kHz samples,
  ten digits (``:42-47``). One difference, on purpose: a chunk that is exact digital silence makes that mix
  0/0 = NaN, which upstream casts to int16 and writes; here it is left out and reported.
* ``openvpi``: what openvpi/audio-slicer's ``slicer2.py`` command writes at 9958eed (``:204-226``): each file at
  its own rate and channels, the fixed short-take rule (``:73``), no mix, ``<stem>_<index>.wav`` by soundfile.

Both write ``<OUT name>.list`` beside the clips in GPT-SoVITS's annotation format, ``path|speaker|language|text``
(as ``tools/asr/fasterwhisper_asr.py:136`` writes it and ``GPT_SoVITS/prepare_datasets/1-get-text.py:129``
reads it); text comes from a ``.txt``/``.lab`` file beside the source when the source gives exactly one clip.
Used by notebook 01 and ``tts-nb slice``. Imports no torch.
"""

from __future__ import annotations

import os
import struct
from dataclasses import astuple, dataclass, field
from pathlib import Path

import numpy as np

from ..audio.decode import DecodeError, decode_like_ffmpeg, have_ffmpeg
from ..audio.files import read_audio_file
from ..errors import UsageError
from ..io import atomic_path, atomic_write_text, list_audio_files, remove_dead_parts_under
from ..parallel import ordered_map
from .normalize import DEFAULT_ALPHA, DEFAULT_MAX
from .slicer import SlicerConfig, slice_frames

PRESETS = ("gpt-sovits", "openvpi")
GPT_SOVITS_SR = 32000
#: Language codes GPT-SoVITS's 1-get-text.py accepts in a .list (its language_v1_to_language_v2 keys).
LIST_LANGUAGES = ("ZH", "zh", "JP", "jp", "JA", "ja", "EN", "en", "En", "KO", "Ko", "ko", "yue", "YUE", "Yue")
SIDECAR_SUFFIXES = (".txt", ".lab")


@dataclass(frozen=True)
class SliceJob:
    """One ``tts-nb slice`` run: the preset, slicer settings, the mix (gpt-sovits only) and the .list fields."""

    preset: str = "gpt-sovits"
    slicer: SlicerConfig = SlicerConfig()
    max_: float = DEFAULT_MAX
    alpha: float = DEFAULT_ALPHA
    decoder: str = "auto"
    speaker: str | None = None  # None: the output folder's name, as GPT-SoVITS's ASR step names it
    language: str = "EN"

    def check(self) -> None:
        if self.preset not in PRESETS:
            raise UsageError(f"preset {self.preset!r}: use one of {', '.join(PRESETS)}")
        if self.language not in LIST_LANGUAGES:
            raise UsageError(f"language {self.language!r} is not one GPT-SoVITS trains on; use one of "
                             f"{', '.join(LIST_LANGUAGES)}")
        self.slicer.check()


@dataclass
class SliceResult:
    """Clips written (name, start and end as in the name, text), left-out chunks, failed files, the .list."""

    clips: list[dict] = field(default_factory=list)
    left_out: list[dict] = field(default_factory=list)
    failed: list[dict] = field(default_factory=list)
    list_path: Path | None = None
    decoder: str = ""
    texts_not_applied: list[str] = field(default_factory=list)


def write_wav_int16(path: str | os.PathLike, samples: np.ndarray, sr: int) -> Path:
    """An int16 PCM WAV with the canonical 44-byte header (as ``scipy.io.wavfile.write``), atomically; the
    samples go from the array to the file without a copy."""
    data = np.ascontiguousarray(samples, dtype="<i2")
    channels = 1 if data.ndim == 1 else data.shape[1]
    header = struct.pack("<4sI4s4sIHHIIHH4sI", b"RIFF", 36 + data.nbytes, b"WAVE", b"fmt ", 16, 1, channels,
                         int(sr), int(sr) * channels * 2, channels * 2, 16, b"data", data.nbytes)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(header)
        f.write(data.data)
    return Path(path)


def gpt_sovits_chunks(y: np.ndarray, cfg: SliceJob) -> tuple[list[tuple[int, int, np.ndarray | None]], bool]:
    """slice_audio.py's loop on 32 kHz mono ``y``: ``(start, end, int16 samples or None for NaN)`` per chunk, in
    32 kHz samples as its names give them, and whether the take was too short for the slicer at all."""
    slicer = SlicerConfig(*(int(v) for v in astuple(cfg.slicer)))  # slice_audio.py:21-28 passes int(...) of each
    bounds, hop, _ = slice_frames(y, GPT_SOVITS_SR, slicer, rule="gpt-sovits")
    if bounds is None:  # upstream's slicer returns the bare waveform; unpacking it fails (slice_audio.py:37)
        return [], True
    return [(a * hop, b * hop, mix_to_pcm(y[a * hop : min(len(y), b * hop)], cfg.max_, cfg.alpha))
            for a, b in bounds], False


def mix_to_pcm(chunk: np.ndarray, max_: float = DEFAULT_MAX, alpha: float = DEFAULT_ALPHA) -> np.ndarray | None:
    """``(gpt_sovits_mix(chunk) * 32767).astype(int16)`` with the same float32 operations in the same order,
    in place (two temporaries instead of six); None where the mix is not finite (silence, NaN or Inf in the
    chunk: exactly when the peak is 0 or not finite)."""
    peak = np.maximum(chunk.max(), -chunk.min()) if len(chunk) else np.float32(0)  # == np.abs(chunk).max()
    if not (np.isfinite(peak) and peak > 0):
        return None
    if peak > 1:
        chunk = chunk / peak  # slice_audio.py:39-40: divides by the old peak once more below
    mixed = chunk / peak
    mixed *= max_ * alpha
    mixed += (1 - alpha) * chunk
    mixed *= 32767
    return mixed.astype(np.int16)


def sidecar_text(src: Path) -> str | None:
    """The transcript in ``<stem>.txt`` or ``<stem>.lab`` beside ``src`` (one line), else None."""
    for suffix in SIDECAR_SUFFIXES:
        side = src.with_suffix(suffix)
        if side.is_file():
            text = " ".join(side.read_text(encoding="utf-8").split())
            if "|" in text:
                raise UsageError(f"{side}: contains '|', the .list field separator; remove it from the transcript")
            return text
    return None


def _slice_gpt_sovits(src: Path, out_dir: Path, cfg: SliceJob, result: SliceResult, parts: int = 1) -> list[dict]:
    y, result.decoder = decode_like_ffmpeg(src, GPT_SOVITS_SR, cfg.decoder, parts)
    chunks, too_short = gpt_sovits_chunks(y, cfg)
    if too_short:
        result.failed.append({"source": src.name, "reason": f"too short to slice ({len(y)} samples at 32 kHz)"})
    written = []
    for start, end, pcm in chunks:
        name = f"{src.name}_{start:010d}_{end:010d}.wav"
        if pcm is None:
            why = "NaN/Inf samples in the source" if not np.isfinite(y[start:end]).all() else "digital silence"
            result.left_out.append({"source": src.name, "name": name, "reason": f"{why}: the mix gives NaN "
                                    "(GPT-SoVITS writes it cast to int16)"})
            continue
        write_wav_int16(out_dir / name, pcm, GPT_SOVITS_SR)
        written.append({"name": name, "source": src.name, "start": start, "end": end})
    return written


def _slice_openvpi(src: Path, out_dir: Path, cfg: SliceJob, result: SliceResult, parts: int = 1) -> list[dict]:
    import soundfile as sf

    try:
        data, sr = read_audio_file(src, dtype="float32", always_2d=True)
    except Exception as e:  # noqa: BLE001 - libsndfile raises several types
        raise DecodeError(f"{src}: cannot decode audio ({e})") from e
    result.decoder = "soundfile"
    mono = data.mean(axis=1)
    bounds, hop, _ = slice_frames(mono, int(sr), cfg.slicer, rule="openvpi")
    ranges = [(0, len(mono))] if bounds is None else [(a * hop, min(len(mono), b * hop)) for a, b in bounds]
    written = []
    for k, (a, b) in enumerate(ranges):
        name = f"{src.stem}_{k}.wav"
        with atomic_path(out_dir / name) as tmp, open(tmp, "wb") as f:  # a file object: any name the OS accepts
            sf.write(f, data[a:b, 0] if data.shape[1] == 1 else data[a:b], int(sr), format="WAV")
        written.append({"name": name, "source": src.name, "start": a, "end": b})
    return written


def _sources(in_path: Path) -> list[Path]:
    if in_path.is_file():
        return [in_path]
    return list_audio_files(in_path, recursive=False)  # raises UsageError naming a missing folder


def _slice_source(task: tuple[Path, Path, SliceJob, int]) -> tuple[SliceResult, list[dict] | None]:
    """One source into ``out_dir`` (a worker's task): its own result rows, and its clips (None: it failed)."""
    src, out_dir, cfg, parts = task
    part = SliceResult()
    run = _slice_gpt_sovits if cfg.preset == "gpt-sovits" else _slice_openvpi
    try:
        return part, run(src, out_dir, cfg, part, parts)
    except (DecodeError, OSError) as e:  # undecodable, or a clip name too long for OUT: reported, run goes on
        part.failed.append({"source": src.name, "reason": str(e)})
        return part, None


def slice_to_folder(in_path: str | os.PathLike, out_dir: str | os.PathLike, cfg: SliceJob = SliceJob(),
                    progress: bool = True, jobs: int = 1) -> SliceResult:
    """Slice a file, or every audio file directly in a folder, into ``out_dir`` with the preset ``cfg.preset``,
    then write ``<out_dir name>.list``. A file that cannot be decoded is reported and the run goes on.

    ``jobs``: processes for the files (``tts-nb slice --jobs``); with fewer files than jobs, a long WAV/FLAC
    source is decoded by several ffmpeg processes at once (bit-identical, :func:`~..audio.decode.decode_ffmpeg`).
    """
    cfg.check()
    in_path, out_dir = Path(in_path), Path(out_dir)
    sources = _sources(in_path)
    if in_path.is_dir() and out_dir.resolve() == in_path.resolve():
        raise UsageError(f"output folder {out_dir} is the input folder; choose another (a rerun would slice clips)")
    out_dir.mkdir(parents=True, exist_ok=True)
    remove_dead_parts_under(out_dir)  # what a killed run left (a live writer's files are kept)
    result = SliceResult()
    lines = []
    speaker = cfg.speaker or out_dir.resolve().name
    parts = max(1, int(jobs) // max(1, len(sources)))
    if cfg.preset == "gpt-sovits" and cfg.decoder != "fallback":
        have_ffmpeg()  # found once here, not once per worker
    tasks = [(src, out_dir, cfg, parts) for src in sources]
    for src, (part, clips) in zip(sources, ordered_map(_slice_source, tasks, jobs, "slice", progress), strict=True):
        result.failed += part.failed
        result.left_out += part.left_out
        result.decoder = part.decoder or result.decoder
        if clips is None:
            continue
        text = sidecar_text(src)
        if text is not None and len(clips) != 1:
            result.texts_not_applied.append(src.name)
        for clip in clips:
            clip["text"] = text if text is not None and len(clips) == 1 else ""
            lines.append(f"{(out_dir / clip['name']).resolve()}|{speaker}|{cfg.language}|{clip['text']}")
        result.clips += clips
    result.list_path = atomic_write_text(out_dir / f"{out_dir.resolve().name}.list", "\n".join(lines))
    return result
