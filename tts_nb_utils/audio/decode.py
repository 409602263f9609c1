"""Decode a file the way GPT-SoVITS does before slicing: ffmpeg to mono float32 at 32 kHz (``-ac 1 -ar 32000``).

GPT-SoVITS's ``tools/my_utils.py:16-37`` (``load_audio``, at 48b1a01) runs
``ffmpeg -nostdin -threads 0 -i FILE -f f32le -acodec pcm_f32le -ac 1 -ar SR -``. :func:`decode_like_ffmpeg`
runs that same command with the ffmpeg :func:`ffmpeg_exe` finds (PATH, else imageio-ffmpeg's static binary),
reading its output in large blocks straight into the array. Without any ffmpeg, a fallback reproduces what that command does to
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

import contextlib
import math
import os
import shutil
import subprocess
import tempfile
import threading
from functools import lru_cache

try:
    import fcntl
except ImportError:  # Windows: default pipe size
    fcntl = None

import numpy as np
import soundfile as sf

from ..errors import UsageError
from .files import read_audio_file

#: libswresample defaults (``filter_size``, ``cutoff``, ``kaiser_beta``).
SWR_FILTER_SIZE = 32
SWR_CUTOFF = 0.97
SWR_KAISER_BETA = 9.0
#: Overlap between the stretches of a file decoded in parallel, and the shortest stretch worth a process.
PART_MARGIN_S = 0.5
PART_MIN_S = 20.0
#: Environment variable naming the ffmpeg executable to use, or "bundled" (else PATH's, else imageio-ffmpeg's).
FFMPEG_ENV = "TTS_NB_FFMPEG"


class DecodeError(UsageError):
    """A file that neither ffmpeg nor the fallback can decode; the message names the file and what to do."""


def ffmpeg_command(path: str | os.PathLike, sr: int) -> list[str]:
    """The command GPT-SoVITS's ``load_audio`` builds through ffmpeg-python (mono float32 at ``sr`` Hz)."""
    return ["ffmpeg", "-nostdin", "-threads", "0", "-i", str(path), "-f", "f32le", "-ac", "1",
            "-acodec", "pcm_f32le", "-ar", str(int(sr)), "-"]


@lru_cache(maxsize=1)
def _bundled_ffmpeg() -> str | None:
    try:
        import imageio_ffmpeg
    except ImportError:
        return None
    try:
        return imageio_ffmpeg.get_ffmpeg_exe()
    except RuntimeError:  # a platform without a bundled binary
        return None


def ffmpeg_exe() -> str | None:
    """The ffmpeg to run: :data:`FFMPEG_ENV` when set (a path, or ``bundled``), else ``ffmpeg`` on PATH, else the
    static binary that imageio-ffmpeg (a dependency) bundles, else None. Their clips are byte-identical
    (tests/test_slice_presets.py checks the bundled one against hashes recorded with Debian's ffmpeg 5.1;
    imageio-ffmpeg 0.8.1 bundles ffmpeg 9.0). The static binary also starts faster: 13 ms of CPU against 75 ms
    for Debian's dynamically linked one (issue 29), which a folder of short takes notices."""
    chosen = os.environ.get(FFMPEG_ENV)
    if chosen == "bundled":
        return _bundled_ffmpeg()
    return chosen or shutil.which("ffmpeg") or _bundled_ffmpeg()


def _run_command(path: str | os.PathLike, sr: int, exe: str, start: int = 0, length: int | None = None,
                 in_rate: int = 1) -> list[str]:
    """:func:`ffmpeg_command` run with ``exe``, quiet, from input sample ``start`` for ``length`` samples."""
    seek = [] if not start else ["-ss", f"{start * 10**6 // in_rate}us"]
    seek += [] if length is None else ["-t", f"{length * 10**6 // in_rate}us"]
    return [exe, "-hide_banner", "-loglevel", "error", *seek, *ffmpeg_command(path, sr)[1:]]


def _fill(stream, views: list[memoryview]) -> tuple[int, int]:
    """Read ``stream`` straight into each view in turn, then drain it; ``(bytes into the views, bytes over)``."""
    got = 0
    for view in views:
        pos = 0
        while pos < len(view):
            n = stream.readinto(view[pos:])
            if not n:
                return got + pos, 0
            pos += n
        got += pos
    over, sink = 0, bytearray(1 << 16)
    while n := stream.readinto(sink):
        over += n
    return got, over


def _read_all(stream, size: int) -> tuple[np.ndarray, int]:
    """Read ``stream`` to its end straight into a ``size``-byte buffer (doubled when a header undercounted)."""
    buf, got = np.empty(size, np.uint8), 0
    while True:
        if got == len(buf):
            buf = np.concatenate([buf, np.empty(len(buf), np.uint8)])
        n = stream.readinto(memoryview(buf)[got:])
        if not n:
            return buf, got
        got += n


class _Ffmpeg:
    """One ffmpeg process whose stdout is read with large ``readinto`` calls (no poll loop, no joins, no
    copies); stderr goes to a file, so a chatty decoder can never block the pipe."""

    def __init__(self, cmd: list[str]):
        self.err = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self.err,
                                     bufsize=0)
        with contextlib.suppress(OSError, AttributeError):  # a 1 MiB pipe: fewer, larger reads (Linux)
            fcntl.fcntl(self.proc.stdout.fileno(), fcntl.F_SETPIPE_SZ, 1 << 20)

    def finish(self) -> str | None:
        """Wait for ffmpeg; None when it succeeded, else its last message line."""
        self.proc.stdout.close()
        code = self.proc.wait()
        self.err.seek(0)
        text = self.err.read().decode(errors="replace").strip()
        self.err.close()
        return None if code == 0 else (text.splitlines() or [f"exit code {code}"])[-1]


def _pcm_length(path: str | os.PathLike) -> tuple[int, int] | None:
    """``(frames, rate)`` of a WAV/FLAC/AIFF file (decoded sample-exactly from any point), else None."""
    try:
        with open(path, "rb") as fh, sf.SoundFile(fh) as f:
            ok = f.format in ("WAV", "WAVEX", "FLAC", "AIFF", "W64") and f.frames > 0
            return (int(f.frames), int(f.samplerate)) if ok else None
    except Exception:  # noqa: BLE001 - anything libsndfile cannot open is decoded in one piece
        return None


def decode_ffmpeg(path: str | os.PathLike, sr: int, parts: int = 1, exe: str | None = None) -> np.ndarray:
    """Run :func:`ffmpeg_command`; float32 samples. Raises DecodeError with ffmpeg's last message line.

    ``parts > 1`` decodes a long WAV/FLAC/AIFF file as that many ffmpeg processes in parallel (see
    :func:`_decode_parts`); the result is bit-identical to one process, checked on every call. ``exe``: the
    ffmpeg to run when the caller has found it already (default :func:`ffmpeg_exe`).
    """
    exe = exe or ffmpeg_exe()
    if exe is None:
        raise UsageError("no ffmpeg found: install imageio-ffmpeg (a dependency of tts-nb) or put ffmpeg on PATH")
    known = _pcm_length(path)
    if parts > 1 and known is not None:
        y = _decode_parts(path, sr, exe, parts, *known)
        if y is not None:
            return y
    expect = -(-known[0] * int(sr) // known[1]) * 4 if known else 1 << 23
    run = _Ffmpeg(_run_command(path, sr, exe))
    buf, got = _read_all(run.proc.stdout, expect + (1 << 16))  # slack: end of file is a read of 0
    message = run.finish()
    if message is not None:
        raise DecodeError(f"{path}: ffmpeg cannot decode it ({message}); check the file")
    if got % 4:  # not f32le samples: a wrapper or another program answers to the name ffmpeg
        raise DecodeError(f"{path}: the ffmpeg at {exe} wrote {got} bytes, not 4-byte float samples; check that "
                          "it is FFmpeg, or use --decoder fallback")
    return buf[:got].view(np.float32)


def _decode_parts(path, sr: int, exe: str, parts: int, frames: int, in_rate: int) -> np.ndarray | None:
    """Decode ``parts`` stretches of the input in parallel, each with :data:`PART_MARGIN_S` of overlap, into
    one array; None (decode in one piece instead) when the file is short or a seam differs in any bit.

    libswresample is exact-rational: an output sample depends only on input samples within its filter, and
    its phase on the input position modulo ``in_rate / gcd``. A stretch that starts on that grid (and on whole
    microseconds, ffmpeg's ``-ss`` unit) gives the same bits as one process once it is past its first
    filter length; the overlap is compared both ways at every seam to prove it for the file at hand.
    """
    g = math.gcd(in_rate, int(sr))
    up, down = int(sr) // g, in_rate // g
    grid = math.lcm(down, in_rate // math.gcd(in_rate, 10**6))
    margin = -(-int(PART_MARGIN_S * in_rate) // grid) * grid
    if frames < parts * max(4 * margin, int(PART_MIN_S * in_rate)):
        return None
    cuts = [0, *(round(frames * k / parts / grid) * grid for k in range(1, parts)), frames]
    n_out = -(-frames * up // down)
    out = np.empty(n_out, np.float32)
    half = margin * up // down // 2
    heads, tails, runs, threads = [], [], [], []
    for k in range(parts):
        a, b = cuts[k], cuts[k + 1]
        lo, hi = max(0, a - margin), min(frames, b + margin)
        head = np.empty((a - lo) * up // down, np.float32)
        tail = np.empty((hi - b) * up // down, np.float32)
        body = out[a * up // down : (b * up // down if k < parts - 1 else n_out)]
        run = _Ffmpeg(_run_command(path, sr, exe, lo, None if hi == frames else hi - lo, in_rate))
        views = [memoryview(x).cast("B") for x in (head, body, tail)]
        result: list = []  # the reader thread's (bytes read into the views, bytes over)
        threads.append(threading.Thread(target=lambda r=run, v=views, res=result: res.append(_fill(r.proc.stdout, v))))
        threads[-1].start()
        heads.append(head)
        tails.append(tail)
        runs.append((run, result, 4 * (len(head) + len(body) + len(tail))))
    for t in threads:
        t.join()
    failed = [run.finish() is not None for run, _, _ in runs]  # every process waited for, failed or not
    ok = not any(failed) and all(res == [(want, 0)] for _, res, want in runs)
    for k in range(parts - 1):
        seam = cuts[k + 1] * up // down
        ok = ok and _same(tails[k][:half], out[seam : seam + half]) and _same(heads[k + 1][-half:], out[seam - half : seam])
    return out if ok else None


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and bool(np.array_equal(a.view(np.int32), b.view(np.int32)))


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
    """Whether an ffmpeg executable is available (:func:`ffmpeg_exe`)."""
    return ffmpeg_exe() is not None


def decode_like_ffmpeg(path: str | os.PathLike, sr: int = 32000, backend: str = "auto",
                       parts: int = 1) -> tuple[np.ndarray, str]:
    """Mono float32 at ``sr`` Hz as GPT-SoVITS decodes it; returns ``(samples, backend used)``.

    ``backend``: "auto" (ffmpeg when one is found, else the fallback), "ffmpeg" or "fallback". ``parts``: ffmpeg
    processes for one long PCM file (:func:`decode_ffmpeg`).
    """
    if backend not in ("auto", "ffmpeg", "fallback"):
        raise UsageError(f"decoder backend {backend!r}: use auto, ffmpeg or fallback")
    exe = ffmpeg_exe() if backend != "fallback" else None  # looked up once per file (PATH is scanned)
    if backend == "ffmpeg" or (backend == "auto" and exe):
        if not exe:
            raise UsageError("no ffmpeg found (not on PATH, imageio-ffmpeg not installed); install one or use "
                             "the fallback decoder")
        return decode_ffmpeg(path, sr, parts, exe), "ffmpeg"
    return decode_fallback(path, sr), "fallback"
