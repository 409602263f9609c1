"""Applio 3.2.3-3.2.4 on a CPU-only machine with chinese-hubert-large, end to end in miniature (notebook 07):
preprocessed clips and pitch, :mod:`.extract_324` (1024-wide features, "completed"), the file list with two
768-wide mute entries, the model's ``config.json`` (768), then :mod:`.train_324` (the shape error in the
training process, and "trained successfully" anyway).

The extraction runs in the notebook's own interpreter (``extract_324.main``, the same code the subprocess
would run): on this path it succeeds, so nothing depends on the process boundary, and it saves an interpreter
start. Training runs as a real subprocess, because its exit code is the story.
"""

from __future__ import annotations

import contextlib
import io
import subprocess
from dataclasses import dataclass
from pathlib import Path

import torch

from . import extract_324, train_324
from .pipeline import extract_pitch, generate_filelist, make_clips, write_config
from .text import wrap


@dataclass
class ApplioRun:
    """One model folder taken through extraction and training."""

    exp: Path
    extraction_log: str
    message: str  # what core.py returns to the UI
    proc: subprocess.CompletedProcess
    seconds: float  # wall time of the training subprocess

    @property
    def error(self) -> str | None:
        """The last line of the training child's traceback (``RuntimeError: ...``), or None."""
        lines = [ln for ln in self.proc.stderr.splitlines() if ln.startswith(("RuntimeError", "ValueError"))]
        return lines[-1] if lines else None

    @property
    def epochs_done(self) -> int:
        return sum("| epoch=" in ln for ln in self.proc.stdout.splitlines())

    def console(self, width: int = 110) -> str:
        """What Applio's console and UI show, shortened to the lines that matter, wrapped at ``width``."""
        lines = [*self.extraction_log.strip().splitlines(), *self.proc.stdout.strip().splitlines()[:3]]
        if self.error:
            lines += ["Traceback (most recent call last): ... (in the training process)", self.error]
        lines += [f"[training process exit code {self.proc.returncode}, {self.seconds:.1f} s]", f"UI: {self.message}"]
        return wrap("\n".join(lines), width)


def gpus_arg(device: torch.device) -> str:
    """Applio's GPU argument for ``device``: its index on CUDA, ``-`` (the CPU) otherwise."""
    return str(device.index or 0) if device.type == "cuda" else "-"


def model_folder(exp: Path, embedder_dir: Path, mute_dir: Path, n_clips: int, seed: int, device: torch.device,
                 seconds: float = 1.5) -> str:
    """Preprocessed clips, pitch, extraction (its console output is returned), file list and config.json."""
    make_clips(exp, n_clips, seconds=seconds, seed=seed)
    extract_pitch(exp)
    log = io.StringIO()
    with contextlib.redirect_stdout(log):
        extract_324.main([str(exp), "v2", gpus_arg(device), str(embedder_dir)])
    generate_filelist(exp, mute_dir, shuffle_seed=seed)
    write_config(exp, 768)  # a v2 model: rvc/configs/v2/<sr>.json
    return log.getvalue()


def run_applio(exp: Path, embedder_dir: Path, mute_dir: Path, n_clips: int, seed: int, device: torch.device,
               epochs: int, strict: bool = False) -> ApplioRun:
    """:func:`model_folder`, then training launched as core.py does (``strict``: our exit-code fix, with the
    return code read as 3.6.3+ does)."""
    log = model_folder(exp, embedder_dir, mute_dir, n_clips, seed, device)
    message, proc, secs = train_324.launch(exp, epochs, str(device), strict=strict, read_return_code=strict, seed=seed)
    return ApplioRun(exp, log, message, proc, secs)
