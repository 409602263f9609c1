"""The stages around feature extraction in notebooks 06 and 07: clips, pitch files, mute entries, the file list
(Applio 3.2.2 ``rvc/train/extract/preparing_files.py:18-60``) and a small training loop whose input layer reads
768 values per frame, like a v2 model's ``emb_phone`` (``rvc/lib/algorithm/encoders.py:122``)."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ...audio import load_audio, save_audio, speechlike
from ...io import atomic_path, atomic_write_text
from .embedder import HOP, load_embedder

SAMPLE_RATE = 16000
V2_DIM = 768  # text_enc_hidden_dim of a v2 model (Applio 3.2.2 synthesizers.py:60, configs/v2/*.json)
BANDS = 40  # the miniature's training target: a 40-band log spectrum per frame (see log_bands)


def make_clips(exp_dir: str | Path, n_clips: int, seconds: float = 2.0, seed: int = 0) -> list[Path]:
    """Write ``n_clips`` speech-like 16 kHz clips to ``exp_dir/sliced_audios/0_<i>.wav`` (speaker 0)."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n_clips):
        y = speechlike(seconds, SAMPLE_RATE, seed=seed * 1000 + i, f0=float(rng.uniform(100, 220)))
        out.append(save_audio(Path(exp_dir) / "sliced_audios" / f"0_{i}.wav", y, SAMPLE_RATE))
    return out


def _save_npy(path: Path, array: np.ndarray) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.save(f, array, allow_pickle=False)


def pitch_track(y: np.ndarray, sr: int = SAMPLE_RATE, fmin: float = 60.0, fmax: float = 500.0) -> tuple[np.ndarray, np.ndarray]:
    """``(f0 Hz, rms)`` per 160-sample frame from the autocorrelation of 640-sample Hann windows (the peak lag
    between ``sr/fmax`` and ``sr/fmin``). A cheap stand-in for Applio's RMVPE/crepe, good enough for synthetic
    voiced clips; the notebooks only need the files to exist with one value per frame."""
    frame, n = 4 * HOP, len(y) // HOP
    padded = np.pad(np.asarray(y, np.float64), (frame // 2, frame // 2))
    frames = np.lib.stride_tricks.sliding_window_view(padded, frame)[::HOP][:n] * np.hanning(frame)
    acf = np.fft.irfft(np.abs(np.fft.rfft(frames, 2 * frame)) ** 2)[:, :frame]
    lo, hi = int(sr / fmax), int(sr / fmin)
    f0 = sr / (lo + np.argmax(acf[:, lo:hi], axis=1))
    return f0, np.sqrt(acf[:, 0] / frame)


def extract_pitch(exp_dir: str | Path) -> int:
    """Pitch files for every clip: ``f0/<name>.wav.npy`` (Hz) and ``f0_voiced/`` (0 where the frame is silent),
    one value per 160-sample frame (:func:`pitch_track`). Returns the number written."""
    exp_dir = Path(exp_dir)
    n = 0
    for wav in sorted((exp_dir / "sliced_audios").glob("*.wav")):
        y, _ = load_audio(wav, SAMPLE_RATE)
        f0, rms = pitch_track(y)
        voiced = np.where(rms > 1e-3, f0, 0)
        _save_npy(exp_dir / "f0" / f"{wav.name}.npy", f0.astype(np.float32))
        _save_npy(exp_dir / "f0_voiced" / f"{wav.name}.npy", voiced.astype(np.float32))
        n += 1
    return n


def make_mute(mute_dir: str | Path, embedder_dir: str | Path, seconds: float = 3.0) -> Path:
    """Applio's ``logs/mute``: a silent clip, its features from the 768-wide embedder (upstream's
    ``logs/mute/v2_extracted/mute.npy`` is the embedder's output for silence, not zeros) and zero pitch."""
    mute_dir = Path(mute_dir)
    frames = int(seconds * SAMPLE_RATE) // HOP
    silence = np.zeros(frames * HOP, np.float32)
    save_audio(mute_dir / "sliced_audios" / f"mute{SAMPLE_RATE}.wav", silence, SAMPLE_RATE)
    model, _ = load_embedder(embedder_dir)
    with torch.no_grad():
        feats = model(torch.from_numpy(silence).view(1, -1))[0].numpy()
    _save_npy(mute_dir / "v2_extracted" / "mute.npy", feats.astype(np.float32))
    for sub in ("f0", "f0_voiced"):
        _save_npy(mute_dir / sub / "mute.wav.npy", np.zeros(frames, np.float32))
    return mute_dir


def run_extraction(
    variant: str, exp_dir: str | Path, embedder_dir: str | Path, is_half: str = "False", device: str = "cpu"
) -> subprocess.CompletedProcess:
    """Run ``extract_buggy`` or ``extract_fixed`` as a real subprocess, the way Applio's UI launches its
    extraction script; returns the finished process (stdout, stderr, returncode) without checking it."""
    if variant == "buggy":
        args = [
            "-m",
            "tts_nb_utils.demos.nb06_rvc.extract_buggy",
            device,
            "1",
            "0",
            "0",
            str(exp_dir),
            "v2",
            is_half,
        ]
        args.append(str(embedder_dir))
    elif variant == "fixed":
        args = ["-m", "tts_nb_utils.demos.nb06_rvc.extract_fixed", device, str(exp_dir), str(embedder_dir)]
        args += [is_half]
    else:
        raise ValueError(f"variant={variant!r}: use 'buggy' or 'fixed'")
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=300)


def _stems(folder: Path, ext: str) -> set[str]:
    if not folder.is_dir():
        return set()
    return {
        p.name[: -len(ext)] for p in folder.iterdir() if p.name.endswith(ext) and not p.name.startswith(".")
    }


def generate_filelist(
    exp_dir: str | Path, mute_dir: str | Path, include_mutes: int = 2, shuffle_seed: int | None = None
) -> list[str]:
    """Applio's file list: names present in all of sliced_audios, v2_extracted, f0 and f0_voiced, each as
    ``wav|features|f0|f0_voiced|speaker``, plus ``include_mutes`` mute entries whatever happened before.
    With ``shuffle_seed``, shuffled as upstream shuffles it (unseeded there, 3.2.4 ``preparing_files.py:58``),
    so which entries share the first batch varies. Written to ``exp_dir/filelist.txt``; returns the lines."""
    exp_dir, mute_dir = Path(exp_dir), Path(mute_dir)
    names = (
        _stems(exp_dir / "sliced_audios", ".wav")
        & _stems(exp_dir / "v2_extracted", ".npy")
        & _stems(exp_dir / "f0", ".wav.npy")
        & _stems(exp_dir / "f0_voiced", ".wav.npy")
    )
    lines = [
        f"{exp_dir}/sliced_audios/{n}.wav|{exp_dir}/v2_extracted/{n}.npy|{exp_dir}/f0/{n}.wav.npy|"
        f"{exp_dir}/f0_voiced/{n}.wav.npy|0"
        for n in sorted(names)
    ]
    mute = (
        f"{mute_dir}/sliced_audios/mute{SAMPLE_RATE}.wav|{mute_dir}/v2_extracted/mute.npy|"
        f"{mute_dir}/f0/mute.wav.npy|{mute_dir}/f0_voiced/mute.wav.npy|0"
    )
    lines += [mute] * include_mutes
    if shuffle_seed is not None:
        random.Random(shuffle_seed).shuffle(lines)
    atomic_write_text(exp_dir / "filelist.txt", "\n".join(lines) + "\n")
    return lines


def log_bands(y: np.ndarray, bands: int = BANDS) -> torch.Tensor:
    """``[frames, bands]``: log magnitude of a 640-sample Hann STFT (hop 160), its first 320 bins averaged in
    ``bands`` equal groups. The miniature's stand-in for RVC's mel target: neither story depends on its exact
    shape, and unlike librosa's mel filter bank it loads no SciPy, which every training process would pay."""
    spec = torch.stft(torch.from_numpy(np.asarray(y, np.float32)), n_fft=4 * HOP, hop_length=HOP,
                      window=torch.hann_window(4 * HOP), return_complex=True).abs()
    return torch.log(spec[: 4 * HOP // 2].reshape(bands, -1, spec.shape[-1]).mean(1) + 1e-5).T


class FilelistDataset(torch.utils.data.Dataset):
    """Entries of a file list as (features ``[frames, dim]``, log-f0 ``[frames, 1]``, log spectrum ``[frames, 40]``)."""

    def __init__(self, lines: list[str], frames: int = 100):
        self.items = []
        for line in lines:
            wav, feat, f0, _, _ = line.split("|")
            y, _ = load_audio(wav, SAMPLE_RATE)
            mel = log_bands(y)
            x = torch.from_numpy(np.load(feat))
            pitch = torch.from_numpy(np.log1p(np.load(f0))).unsqueeze(1)
            n = min(len(mel), len(x), len(pitch))
            if n < frames:
                raise ValueError(f"{wav}: {n} frames, shorter than the {frames}-frame training crop")
            self.items.append((x[:n].float(), pitch[:n].float(), mel[:n].float()))
        self.frames = frames

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int):
        x, pitch, y = self.items[i]
        start = random.randrange(0, len(x) - self.frames + 1)
        crop = slice(start, start + self.frames)
        return x[crop], pitch[crop], y[crop]


class TinyVoiceModel(nn.Module):
    """Features ``[batch, frames, 768]`` + log-f0 ``[batch, frames, 1]`` -> log spectrum ``[batch, frames, n_mels]``.

    The input layer is a ``Linear(feature_dim, hidden)`` like the ``emb_phone`` of Applio's ``TextEncoder``
    (3.2.4 ``rvc/lib/algorithm/encoders.py:122``, width ``text_enc_hidden_dim``): a batch of 1024-wide features
    fails there ("mat1 and mat2 shapes cannot be multiplied (400x1024 and 768x192)"); a batch that mixes them
    with the 768-wide mute entries fails earlier, in :func:`collate_like_applio`."""

    def __init__(self, feature_dim: int = V2_DIM, hidden: int = 192, n_mels: int = BANDS):
        super().__init__()
        self.emb_phone = nn.Linear(feature_dim, hidden)
        self.emb_pitch = nn.Linear(1, hidden)
        self.mid = nn.Conv1d(hidden, hidden, 5, padding=2)
        self.out = nn.Conv1d(hidden, n_mels, 5, padding=2)

    def forward(self, x: torch.Tensor, pitch: torch.Tensor) -> torch.Tensor:
        h = torch.nn.functional.gelu(self.emb_phone(x) + self.emb_pitch(pitch)).transpose(1, 2)
        h = torch.nn.functional.gelu(self.mid(h))
        return self.out(h).transpose(1, 2)


@dataclass
class TrainResult:
    epoch_seconds: list[float] = field(default_factory=list)
    epoch_loss: list[float] = field(default_factory=list)
    steps: int = 0
    samples: int = 0


def collate_like_applio(batch: list[tuple[torch.Tensor, ...]]) -> tuple[torch.Tensor, ...]:
    """Pad a batch into tensors whose feature width is the *first* item's, as Applio's
    ``TextAudioCollateMultiNSFsid`` does (3.2.4 ``rvc/train/data_utils.py:201-223``): an item of another width
    fails on the copy ("The expanded size of the tensor (1024) must match the existing size (768)...")."""
    frames = max(len(x) for x, _, _ in batch)
    out = [torch.zeros(len(batch), frames, t.shape[-1]) for t in batch[0]]
    for i, item in enumerate(batch):
        for padded, t in zip(out, item, strict=True):
            padded[i, : len(t), :] = t
    return tuple(out)


def write_config(exp_dir: str | Path, width: int = V2_DIM) -> Path:
    """``exp_dir/config.json``: the part of Applio's model config the miniature reads, ``model.text_enc_hidden_dim``
    (768 in ``rvc/configs/v2/*.json``, 256 in ``v1/``)."""
    path = Path(exp_dir) / "config.json"
    atomic_write_text(path, json.dumps({"model": {"text_enc_hidden_dim": width, "hidden_channels": 192}}, indent=2))
    return path


def train(
    lines: list[str],
    epochs: int,
    device: str | torch.device = "cpu",
    monitor=None,
    batch_size: int = 4,
    seed: int = 0,
    lr: float = 2e-3,
    feature_dim: int = V2_DIM,
    on_epoch=None,
) -> TrainResult:
    """Train ``TinyVoiceModel`` (input width ``feature_dim``) on a file list for ``epochs`` epochs; ``monitor``:
    any ``monitors`` Monitor or None; ``on_epoch(epoch, result)`` is called after each epoch.

    Like Applio's loop, an epoch is one pass over whatever the file list holds, however short; batches are
    padded like Applio's collate (:func:`collate_like_applio`)."""
    torch.manual_seed(seed)
    random.seed(seed)
    data = FilelistDataset(lines)
    loader = torch.utils.data.DataLoader(data, batch_size=batch_size, shuffle=True, drop_last=False,
                                         collate_fn=collate_like_applio)
    model = TinyVoiceModel(feature_dim).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    if monitor is not None:
        monitor.on_train_start(model, opt, (), len(data))
    result = TrainResult(samples=len(data))
    for _ in range(epochs):
        start, total = time.perf_counter(), 0.0
        for x, pitch, y in loader:
            x, pitch, y = x.to(device), pitch.to(device), y.to(device)
            loss = nn.functional.l1_loss(model(x, pitch), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if monitor is not None:
                monitor.before_optimizer_step(result.steps, loss)
            opt.step()
            if monitor is not None:
                monitor.after_optimizer_step(result.steps, loss)
            total += float(loss.detach()) * len(x)
            result.steps += 1
        if torch.device(device).type == "cuda":
            torch.cuda.synchronize()
        result.epoch_seconds.append(time.perf_counter() - start)
        result.epoch_loss.append(total / len(data))
        if on_epoch is not None:
            on_epoch(len(result.epoch_loss), result)
    return result
