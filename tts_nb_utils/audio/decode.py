"""Decode a file the way GPT-SoVITS does before slicing: ffmpeg to mono float32 at 32 kHz (``-ac 1 -ar 32000``).

GPT-SoVITS's ``tools/my_utils.py:16-37`` (``load_audio``, at 48b1a01) runs
``ffmpeg -nostdin -threads 0 -i FILE -f f32le -acodec pcm_f32le -ac 1 -ar SR -``. :func:`decode_like_ffmpeg`
runs that same command when ``ffmpeg`` is on PATH. Without it, a fallback reproduces what that command does to
PCM files (WAV, FLAC, AIFF: soundfile decodes them bit-exactly), measured within 1.5e-7 of ffmpeg 5.1's output:

* downmix as libswresample does for float output: every channel of a stereo file times ``sqrt(1/2)``, summed
  (3 dB hotter than averaging, so a loud stereo take can exceed 1.0);
* resample with libswresample's default filter (exact-rational polyphase, 32 taps at the input rate widened by
  ``1/factor`` when downsampling, Kaiser window beta 9, cutoff 0.97), mirrored edges, ``ceil(n * out / in)``
  samples out; computed with ``scipy.signal.upfirdn`` in float32.

Measured on 8 to 96 kHz and odd rates (11025, 22051, 44056 Hz: up to 32000 phases) against ffmpeg 5.1: at
most 3e-6 apart. Lossy formats (MP3, Ogg) are decoded by libsndfile's decoders, not ffmpeg's, so they are close,
not identical; files with more than two channels are refused (ffmpeg's surround downmix is not reproduced).
Used by ``dataprep/gpt_sovits.py`` (``tts-nb slice --preset gpt-sovits``) and notebook 01.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
from functools import lru_cache

import numpy as np

from ..errors import UsageError
from .files import read_audio_file

#: libswresample defaults (``filter_size``, ``cutoff``, ``kaiser_beta``).
SWR_FILTER_SIZE = 32
SWR_CUTOFF = 0.97
SWR_KAISER_BETA = 9.0


class DecodeError(UsageError):
    """A file that neither ffmpeg nor the fallback can decode; the message names the file and what to do."""


def ffmpeg_command(path: str | os.PathLike, sr: int) -> list[str]:
    """The command GPT-SoVITS's ``load_audio`` builds through ffmpeg-python (mono float32 at ``sr`` Hz)."""
    return ["ffmpeg", "-nostdin", "-threads", "0", "-i", str(path), "-f", "f32le", "-ac", "1",
            "-acodec", "pcm_f32le", "-ar", str(int(sr)), "-"]


def decode_ffmpeg(path: str | os.PathLike, sr: int) -> np.ndarray:
    """Run :func:`ffmpeg_command`; float32 samples. Raises DecodeError with ffmpeg's last message line."""
    run = subprocess.run(ffmpeg_command(path, sr), capture_output=True)
    if run.returncode != 0:
        last = (run.stderr.decode(errors="replace").strip().splitlines() or ["no message"])[-1]
        raise DecodeError(f"{path}: ffmpeg cannot decode it ({last}); check the file")
    if len(run.stdout) % 4:  # not f32le samples: a wrapper or another program answers to the name ffmpeg
        raise DecodeError(f"{path}: the ffmpeg on PATH ({shutil.which('ffmpeg')}) wrote {len(run.stdout)} bytes, "
                          "not 4-byte float samples; check that it is FFmpeg, or use --decoder fallback")
    return np.frombuffer(run.stdout, np.float32).copy()


@lru_cache(maxsize=16)
def _swr_filter(in_rate: int, out_rate: int) -> tuple[np.ndarray, int, int, int]:
    """libswresample's polyphase bank flattened for upfirdn: ``(h, up, down, taps)``, float32, cached."""
    g = math.gcd(in_rate, out_rate)
    up, down = out_rate // g, in_rate // g  # phases = up: output k sits at input position k * down / up
    factor = min(out_rate * SWR_CUTOFF / in_rate, 1.0)
    taps = max(math.ceil(SWR_FILTER_SIZE / factor), 1)
    center = (taps - 1) // 2
    i, ph = np.arange(taps), np.arange(up)[:, None]
    x = np.pi * ((i - center) - ph / up) * factor
    with np.errstate(invalid="ignore", divide="ignore"):
        y = np.where(x == 0, 1.0, np.sin(x) / x)
    w = 2.0 * x / (factor * taps * np.pi)
    y = y * np.i0(SWR_KAISER_BETA * np.sqrt(np.maximum(1 - w * w, 0)))
    bank = (y / y[0].sum()).astype(np.float32)  # normalised on phase 0, as swr does
    # upfirdn needs h[j] with y[k] = sum_n x[n] h[k*down - n*up]: tap i of phase p sits at p + (taps-1-i) * up.
    h = np.zeros(taps * up, np.float32)
    h[(np.arange(up)[:, None] + (taps - 1 - i) * up).ravel()] = bank.ravel()
    return h, up, down, taps


def swr_resample(x: np.ndarray, in_rate: int, out_rate: int) -> np.ndarray:
    """Resample mono float32 ``x`` as ffmpeg's default resampler does (see the module docstring)."""
    from scipy.signal import upfirdn

    x = np.asarray(x, dtype=np.float32)
    if in_rate == out_rate or not len(x):
        return x.copy()
    h, up, down, taps = _swr_filter(in_rate, out_rate)
    center = (taps - 1) // 2
    n_out = -(-len(x) * up // down)
    head = min(taps, len(x) - 1)  # swr mirrors the start without its first sample, the end with its last
    tail = (min(len(x), taps) + 1) // 2
    shift = taps - 1 - center  # the flattened filter is delayed by shift * up
    blocks = -(-(shift + taps) // down)
    lead = blocks * down - shift  # left padding that makes the delay a whole number of output samples
    padded = np.concatenate([np.zeros(lead - head, np.float32), x[1 : head + 1][::-1], x, x[::-1][:tail],
                             np.zeros(taps, np.float32)])
    y = upfirdn(h, padded, up=up, down=down)
    first = (lead + shift) * up // down
    return np.ascontiguousarray(y[first : first + n_out], dtype=np.float32)


def ffmpeg_downmix(data: np.ndarray, path: str | os.PathLike = "") -> np.ndarray:
    """``[n, channels]`` float32 -> mono as ``-ac 1`` does for float output: stereo is ``(L + R) * sqrt(1/2)``."""
    channels = data.shape[1]
    if channels == 1:
        return data[:, 0]
    if channels == 2:
        return (data * np.float32(math.sqrt(0.5))).sum(axis=1, dtype=np.float32)
    raise DecodeError(f"{path}: {channels} channels; without ffmpeg only mono and stereo are decoded as "
                      "GPT-SoVITS does. Install ffmpeg (it is on GPT-SoVITS's own requirements) or downmix first")


def decode_fallback(path: str | os.PathLike, sr: int) -> np.ndarray:
    """soundfile + :func:`ffmpeg_downmix` + :func:`swr_resample`: ffmpeg's result without ffmpeg."""

    try:
        data, file_sr = read_audio_file(path, dtype="float32", always_2d=True)
    except Exception as e:  # noqa: BLE001 - libsndfile raises several types
        raise DecodeError(f"{path}: cannot decode audio ({e}); check the file or install ffmpeg") from e
    return swr_resample(ffmpeg_downmix(data, path), int(file_sr), int(sr))


def have_ffmpeg() -> bool:
    """Whether an ``ffmpeg`` executable is on PATH."""
    return shutil.which("ffmpeg") is not None


def decode_like_ffmpeg(path: str | os.PathLike, sr: int = 32000, backend: str = "auto") -> tuple[np.ndarray, str]:
    """Mono float32 at ``sr`` Hz as GPT-SoVITS decodes it; returns ``(samples, backend used)``.

    ``backend``: "auto" (ffmpeg when on PATH, else the fallback), "ffmpeg" or "fallback".
    """
    if backend not in ("auto", "ffmpeg", "fallback"):
        raise UsageError(f"decoder backend {backend!r}: use auto, ffmpeg or fallback")
    if backend == "ffmpeg" or (backend == "auto" and have_ffmpeg()):
        if not have_ffmpeg():
            raise UsageError("ffmpeg is not on PATH; install it or use the fallback decoder")
        return decode_ffmpeg(path, sr), "ffmpeg"
    return decode_fallback(path, sr), "fallback"
