"""Make the demo corpus of notebook 01: raw "takes" of synthetic speech (espeak-ng) with realistic defects.

    python data/make_demo_corpus.py        # needs espeak-ng (apt-get install espeak-ng); ~10 s

Writes data/demo/raw/*.{flac,wav} and data/demo/manifest.json (the defects of each file and the issue codes
``tts-nb validate --sample-rate 22050`` must report). Deterministic: every random draw comes from SEED.
The generated files are committed, so users never need espeak-ng.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tts_nb_utils.audio import save_audio  # noqa: E402
from tts_nb_utils.io import atomic_path, atomic_write_json  # noqa: E402

SEED = 1234
SR = 22050
VOICE = "en-us"
OUT = Path(__file__).resolve().parent / "demo"

SENTENCES = [
    "The old lighthouse keeper climbed the stairs every evening at dusk.",
    "He checked the lamp, wiped the glass, and wrote the weather in his book.",
    "On clear nights the beam reached the fishing boats far beyond the bay.",
    "When fog rolled in, he rang the bell until the morning came.",
    "Nobody in the village remembered a night when the light had failed.",
    "A small grey cat kept him company and slept beside the warm lamp.",
    "In winter the waves climbed halfway up the rocks below the tower.",
    "Visitors asked whether he felt lonely, and he always smiled and shook his head.",
    "The radio brought him news, music, and the voices of distant ships.",
    "Every spring he painted the door a brighter shade of blue.",
    "Children from the school came once a year to count the steps.",
    "There were one hundred and twelve of them, and he knew each one by its creak.",
    "At last a machine replaced him, but the cat refused to leave.",
    "Some people say the light still blinks twice at midnight.",
]


def speak(text: str, speed: int = 165, pitch: int = 45) -> np.ndarray:
    """One sentence from espeak-ng at SR, float32, peak-normalised to 0.7."""
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "s.wav"
        subprocess.run(["espeak-ng", "-v", VOICE, "-s", str(speed), "-p", str(pitch), "-w", str(wav), text], check=True)
        y, sr = sf.read(str(wav), dtype="float32")
    assert sr == SR, f"espeak-ng wrote {sr} Hz, expected {SR}"
    return (0.7 * y / np.abs(y).max()).astype(np.float32)


def take(rng: np.random.Generator, sentences: list[str], pause_s=(0.45, 1.1), lead_s=0.3, tail_s=0.4,
         long_pause: tuple[int, float] | None = None) -> np.ndarray:
    """Sentences joined by pauses (seconds); ``long_pause=(after_sentence, seconds)`` puts one long pause in."""
    parts = [np.zeros(int(lead_s * SR), np.float32)]
    for k, text in enumerate(sentences):
        parts.append(speak(text, speed=int(rng.integers(150, 180))))
        gap = long_pause[1] if long_pause and long_pause[0] == k else rng.uniform(*pause_s)
        parts.append(np.zeros(int((gap if k < len(sentences) - 1 else tail_s) * SR), np.float32))
    return np.concatenate(parts)


def room_tone(rng: np.random.Generator, n: int, level_dbfs: float) -> np.ndarray:
    """Low-passed noise at ``level_dbfs`` RMS: the air of a quiet room."""
    white = rng.standard_normal(n + 64)
    pink = np.convolve(white, np.ones(16) / 16, mode="same")[:n]
    return (pink / pink.std() * 10 ** (level_dbfs / 20)).astype(np.float32)


def fan_noise(rng: np.random.Generator, n: int, level_dbfs: float) -> np.ndarray:
    """Broadband noise with a low-frequency tilt (a fan or air conditioning) at ``level_dbfs`` RMS."""
    white = rng.standard_normal(n)
    spec = np.fft.rfft(white)
    f = np.fft.rfftfreq(n, 1 / SR)
    spec /= np.sqrt(np.maximum(f, 60.0) / 60.0)
    noise = np.fft.irfft(spec, n)
    return (noise / noise.std() * 10 ** (level_dbfs / 20)).astype(np.float32)


def hum(n: int, level_dbfs: float, mains_hz: float = 50.0) -> np.ndarray:
    """Mains hum: 50 Hz and odd harmonics at ``level_dbfs`` RMS."""
    t = np.arange(n) / SR
    y = sum(a * np.sin(2 * np.pi * mains_hz * k * t) for k, a in ((1, 1.0), (3, 0.5), (5, 0.3), (7, 0.15)))
    return (y / y.std() * 10 ** (level_dbfs / 20)).astype(np.float32)


def scale_to(y: np.ndarray, active_rms_dbfs: float) -> np.ndarray:
    """Scale so the RMS of the non-silent samples is ``active_rms_dbfs``."""
    active = y[np.abs(y) > 1e-4]
    return (y * 10 ** (active_rms_dbfs / 20) / np.sqrt(np.mean(active**2))).astype(np.float32)


def float_wav_bytes(y: np.ndarray, sr: int) -> bytes:
    """A mono 32-bit float WAV file (format 3), byte for byte reproducible."""
    data = np.asarray(y, "<f4").tobytes()
    fmt = struct.pack("<HHIIHH", 3, 1, sr, sr * 4, 4, 32)
    return b"RIFF" + struct.pack("<I", 4 + 8 + len(fmt) + 8 + len(data)) + b"WAVE" + b"fmt " + \
        struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data


def main() -> None:
    if shutil.which("espeak-ng") is None:
        sys.exit("espeak-ng not found: apt-get install espeak-ng (or use the committed files in data/demo)")
    rng = np.random.default_rng(SEED)
    raw = OUT / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    s = SENTENCES
    files = []

    def add(name, y, sr, defects, issues, subtype="PCM_16"):
        save_audio(raw / name, y, sr, subtype=subtype)
        files.append({"path": name, "defects": defects, "issues": issues})

    clean = scale_to(take(rng, s[0:6]), -20)
    add("take01_clean.flac", clean + room_tone(rng, len(clean), -66), SR,
        ["none: speech with light room tone, a raw take longer than a training clip"], ["too_long"])

    noisy = scale_to(take(rng, s[6:12]), -20)
    add("take02_fan_noise.flac", noisy + fan_noise(rng, len(noisy), -29), SR,
        ["background fan noise about 9 dB below the speech"], ["too_long", "low_snr"])

    hummed = scale_to(take(rng, s[2:8]), -20)
    add("take03_mains_hum.flac", hummed + hum(len(hummed), -31) + room_tone(rng, len(hummed), -66), SR,
        ["50 Hz mains hum with harmonics, 11 dB below the speech"], ["too_long", "low_snr"])

    hot = scale_to(take(rng, s[8:14]), -20) * 10 ** (13 / 20)
    add("take04_clipped.flac", np.clip(hot + room_tone(rng, len(hot), -60), -1.0, 1.0), SR,
        ["recorded 13 dB too hot: hard clipping at full scale"], ["too_long", "clipping"])

    dc = scale_to(take(rng, s[4:10]), -20)
    add("take05_dc_offset.flac", dc + room_tone(rng, len(dc), -66) + 0.04, SR,
        ["DC offset of 0.04 (a faulty interface)"], ["too_long", "dc_offset"])

    add("take06_silent.flac", room_tone(rng, 8 * SR, -62), SR,
        ["a silent take: the microphone was muted"], ["silent"])

    header = bytearray(b"RIFF\x24\x00\x10\x00WAVEfmt ")
    header += rng.integers(0, 256, 3000, dtype=np.uint8).tobytes()
    with atomic_path(raw / "take07_corrupt.wav") as tmp:
        tmp.write_bytes(bytes(header))
    files.append({"path": "take07_corrupt.wav", "defects": ["a corrupt file: truncated header and random bytes"],
                  "issues": ["unreadable"]})

    phone = scale_to(take(rng, s[10:14], pause_s=(0.4, 0.8)), -20)
    phone = phone + room_tone(rng, len(phone), -66)
    delayed = np.concatenate((np.zeros(9, np.float32), phone[:-9])) * 0.8
    stereo = np.stack((phone, delayed), axis=1)
    stereo16k = np.stack([np.interp(np.arange(0, len(phone), SR / 16000), np.arange(len(phone)), c) for c in stereo.T], 1)
    add("take08_stereo_16k.wav", stereo16k.astype(np.float32), 16000,
        ["exported as 16 kHz stereo instead of the corpus's 22.05 kHz mono"], ["wrong_sample_rate", "not_mono", "too_long"])

    quiet = take(rng, s[0:4], lead_s=1.6, long_pause=(1, 4.0))
    quiet = scale_to(quiet, -43) + room_tone(rng, len(quiet), -85)
    add("take09_quiet_long_pause.flac", quiet, SR,
        ["recorded far too quietly", "1.6 s of silence before the speech and a 4 s pause in the middle"],
        ["too_long", "too_quiet", "long_silence"])

    nan = scale_to(take(rng, s[12:13]), -20)
    nan[len(nan) // 2 : len(nan) // 2 + 50] = np.nan
    with atomic_path(raw / "take10_nan.wav") as tmp:  # by hand: libsndfile's float WAVs carry a timestamp
        tmp.write_bytes(float_wav_bytes(nan, SR))
    files.append({"path": "take10_nan.wav", "defects": ["NaN samples (a float WAV written by a buggy script)"],
                  "issues": ["non_finite"]})

    short = scale_to(speak("Yes."), -20)
    add("take11_too_short.flac", short + room_tone(rng, len(short), -66), SR,
        ["a clip of one word, under a second"], ["too_short"])

    manifest = {
        "description": "Demo takes for notebook 01: synthetic speech (espeak-ng, voice en-us) with defects.",
        "generator": "data/make_demo_corpus.py",
        "seed": SEED,
        "sample_rate": SR,
        "validate_with": {"sample_rate": SR},
        "files": files,
    }
    atomic_write_json(OUT / "manifest.json", manifest)
    total = sum(p.stat().st_size for p in raw.iterdir())
    print(f"wrote {len(files)} files, {total / 1e6:.2f} MB, to {raw}")


if __name__ == "__main__":
    main()
