"""Which saved checkpoints hold NaN/Inf, and, per experiment, what to resume from (notebook 02,
``tts-nb scan-checkpoints``, the doctor).

GPT-SoVITS's ``s2_train.py`` resumes from the highest-numbered ``D_*.pth`` and then ``G_*.pth`` in
``logs_s2_<version>/`` (``s2_train.py:206-221`` and ``utils.latest_checkpoint_path``, ``utils.py:112-117``, at
``48b1a01``): a checkpoint written after the weights went NaN is loaded again on every restart. If either load
fails (no ``D_*.pth``, a file without its ``optimizer`` key: ``utils.py:26-28``), the bare ``except`` at
``s2_train.py:224`` restarts silently from the pretrained weights at epoch 1. This reads checkpoints without a
model and without running pickled code (:mod:`.safe_load`):

- ``G_<step>.pth`` / ``D_<step>.pth``: ``{"model", "iteration", "optimizer", "learning_rate"}``
  (``utils.save_checkpoint``, ``utils.py:75-90``; ``iteration`` holds the *epoch*, ``s2_train.py:514-556``;
  ``G_233333333333.pth`` is the WebUI's "save only the latest" name);
- exported weights (``SoVITS_weights_*/<name>_e<E>_s<S>.pth``, ``process_ckpt.savee``): fp16 generator weights
  without ``enc_q``, the config and an ``info`` string: for inference, not a resume point;
- Lightning ``.ckpt`` and plain state dicts.

Every floating-point tensor (weights, buffers, optimizer moments) is checked: first the cheap
``isfinite(t.sum())`` (one reduction, no mask), the per-element count only when that fails.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..device import configure_threads
from ..errors import UsageError
from ..io import ANSI_ESCAPE, list_files
from .safe_load import load_checkpoint_safely

CHECKPOINT_SUFFIXES = (".pth", ".pt", ".ckpt")
SAVE_LATEST_STEP = 233333333333  #: the step in the file name when ``if_save_latest`` is on (``s2_train.py:537-556``)
_GPT_SOVITS_NAME = re.compile(r"^([GD])_(\d+)\.pth$")
_CONTROL = re.compile(rf"{ANSI_ESCAPE.pattern}|[\x00-\x08\x0b-\x1f\x7f]")  # escapes, then control characters
_UNSUPPORTED = re.compile(r"GLOBAL (\S+?)(?: was not| whose)|unrecognized function (\S+)")


@dataclass
class BadTensor:
    """One tensor holding NaN or Inf: where it lives (``model.enc_q.proj.weight``, ``optimizer.state.3.exp_avg``)."""

    name: str
    n_nan: int
    n_inf: int
    numel: int

    def __str__(self) -> str:
        parts = [f"{n} {what}" for n, what in ((self.n_nan, "NaN"), (self.n_inf, "Inf")) if n]
        return f"{self.name} ({', '.join(parts)} of {self.numel})"


@dataclass
class CheckpointReport:
    """One file: its format (``"gpt-sovits-G"``, ``"gpt-sovits-D"``, ``"gpt-sovits-weights"``, ``"lightning"``,
    ``"state-dict"``), the step from its name (GPT-SoVITS) or contents (Lightning), the epoch when stored, how many
    float tensors were read, and those holding NaN/Inf. ``error`` says why a file could not be read; ``missing``
    lists keys ``utils.load_checkpoint`` needs and the file lacks; ``about`` describes an exported weight."""

    path: Path
    kind: str = "unknown"
    step: int | None = None
    epoch: int | None = None
    tensors: int = 0
    bad: list[BadTensor] = field(default_factory=list)
    error: str | None = None
    missing: list[str] = field(default_factory=list)
    about: str = ""

    @property
    def clean(self) -> bool:
        return self.error is None and not self.bad

    @property
    def resumable(self) -> bool:
        """A G_/D_ file ``s2_train.py`` can resume from (clean, with every key ``utils.load_checkpoint`` reads)."""
        return self.clean and self.kind in ("gpt-sovits-G", "gpt-sovits-D") and not self.missing

    def format(self, root: Path | None = None, limit: int = 3) -> str:
        name = relative_name(self.path, root)
        where = " ".join(x for x in (self.kind, f"step {self.step}" if self.step is not None else "",
                                     f"epoch {self.epoch}" if self.epoch is not None else "") if x)
        if self.error:
            return f"{name}: UNREADABLE: {self.error}"
        about = f"; {self.about}" if self.about else ""
        lacks = f"; no {', '.join(repr(k) for k in self.missing)} key: s2_train.py cannot resume from it" \
            if self.missing else ""
        if not self.bad:
            return f"{name} [{where}]: clean ({self.tensors} float tensors){lacks}{about}"
        shown = ", ".join(str(b) for b in self.bad[:limit])
        more = f", and {len(self.bad) - limit} more" if len(self.bad) > limit else ""
        return f"{name} [{where}]: NaN/Inf in {len(self.bad)} of {self.tensors} tensors: {shown}{more}{lacks}{about}"


def relative_name(path: Path, root: Path | None) -> str:
    """``path`` relative to ``root`` when it lies under it (POSIX separators), else as given."""
    if root is not None and path.is_relative_to(root) and path != root:
        return path.relative_to(root).as_posix()
    return str(path)


def _float_tensors(obj: Any, prefix: str) -> Iterator[tuple[str, torch.Tensor]]:
    if isinstance(obj, torch.Tensor):
        if obj.is_floating_point() or obj.is_complex():
            yield prefix, obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield from _float_tensors(v, f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(obj, list | tuple):
        for i, v in enumerate(obj):
            yield from _float_tensors(v, f"{prefix}.{i}")


def _kind(path: Path, data: Any) -> tuple[str, dict[str, Any]]:
    """The format and the parts to check, by the keys upstream writes."""
    m = _GPT_SOVITS_NAME.match(path.name)
    if isinstance(data, dict) and "model" in data and "iteration" in data and (
            m or {"optimizer", "learning_rate"} <= set(data)):
        return f"gpt-sovits-{m.group(1) if m else 'G/D'}", {"model": data["model"], "optimizer": data.get("optimizer")}
    if isinstance(data, dict) and "weight" in data and "config" in data:  # process_ckpt.savee
        return "gpt-sovits-weights", {"weight": data["weight"]}
    if isinstance(data, dict) and "state_dict" in data:
        return "lightning", {"state_dict": data["state_dict"], "optimizer_states": data.get("optimizer_states", [])}
    if isinstance(data, dict) and data and all(isinstance(v, torch.Tensor) for v in data.values()):
        return "state-dict", {"": data}
    raise ValueError("not a checkpoint layout this tool knows (GPT-SoVITS G_/D_ or exported weights, Lightning "
                     ".ckpt, a state dict)")


def _load_error(e: Exception) -> str:
    """One clean line for a file torch could not read (torch's own message has terminal colour codes)."""
    text = _CONTROL.sub("", str(e))
    if m := _UNSUPPORTED.search(text):
        return (f"it holds a pickled object this reader does not admit ({m.group(1) or m.group(2)}); nothing was run. "
                "Pass --trust only if you made this file yourself")
    first = text.strip().splitlines()[0][:200] if text.strip() else type(e).__name__
    return first


def _describe_weights(data: dict, header: str | None) -> str:
    weights = data["weight"]
    dtypes = sorted({str(v.dtype).replace("torch.", "") for v in weights.values() if isinstance(v, torch.Tensor)})
    has_enc_q = any("enc_q" in k for k in weights)
    lora = f", LoRA rank {data['lora_rank']}" if data.get("lora_rank") else ""
    version = header or "v1/v2"
    return (f"exported weights ({version}{lora}, {'/'.join(dtypes)}, {'with' if has_enc_q else 'no'} enc_q, "
            f"{data.get('info', '?')}): for inference, not a resume point")


def scan_checkpoint(path: str | os.PathLike, trust: bool = False) -> CheckpointReport:
    """Read one checkpoint and list every float tensor holding NaN/Inf. Never raises for a bad file: the
    report's ``error`` says what is wrong. ``trust=True`` allows any pickled object (only for files you made)."""
    path = Path(path)
    report = CheckpointReport(path)
    m = _GPT_SOVITS_NAME.match(path.name)
    report.step = int(m.group(2)) if m else None
    try:
        data, header = load_checkpoint_safely(path, trust=trust)
        report.kind, parts = _kind(path, data)
    except Exception as e:  # noqa: BLE001 - unpickling raises many types; the report names the reason
        report.error = _load_error(e)
        return report
    if report.kind.startswith("gpt-sovits-") and report.kind != "gpt-sovits-weights":
        report.epoch = int(data["iteration"])
        report.missing = [k for k in ("optimizer", "learning_rate") if k not in data]
    elif report.kind == "gpt-sovits-weights":
        report.about = _describe_weights(data, header)
    elif report.kind == "lightning":
        report.epoch, report.step = data.get("epoch"), data.get("global_step", report.step)
    for prefix, part in parts.items():
        for name, t in _float_tensors(part, prefix):
            report.tensors += 1
            if t.layout != torch.strided:  # a sparse tensor: its stored values are what can be NaN
                t = t._values() if t.is_sparse else t.values()
            total = t.sum(dtype=torch.float64) if t.is_floating_point() else t.sum()
            if bool(torch.isfinite(total).all()):  # NaN or Inf anywhere makes the sum non-finite
                continue
            finite = torch.isfinite(t)
            if not bool(finite.all()):  # the sum can also overflow on large finite values
                n_nan = int(torch.isnan(t).sum())
                report.bad.append(BadTensor(name, n_nan, int((~finite).sum()) - n_nan, t.numel()))
    return report


def scan_checkpoints(files: Iterable[str | os.PathLike], trust: bool = False,
                     threads: int | str = "auto") -> list[CheckpointReport]:
    """:func:`scan_checkpoint` on each file, with torch's CPU threads set as the notebooks set them
    (:func:`~tts_nb_utils.device.configure_threads`: 1 on a machine with up to 4 cores, where more threads
    only wait on each other when other work shares the cores) and restored afterwards."""
    before = torch.get_num_threads()
    configure_threads(threads)
    try:
        return [scan_checkpoint(f, trust=trust) for f in files]
    finally:
        torch.set_num_threads(before)


def checkpoint_files(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """The checkpoint files named, and those under the folders named (recursively), in resume order: by the
    number in the file name as ``utils.latest_checkpoint_path`` sorts them, so ``G_233333333333.pth`` (the
    "save latest only" name) comes last. Raises UsageError for a path that does not exist."""
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found += list_files(p, CHECKPOINT_SUFFIXES)
        elif p.is_file():
            found.append(p)
        else:
            raise UsageError(f"{p}: no such file or folder (give checkpoint files or the logs_s2_* folder)")
    return sorted(dict.fromkeys(found), key=lambda f: (_number(f), f.name))


def _number(path: Path) -> int:
    digits = "".join(ch for ch in path.name if ch.isdigit())
    return int(digits) if digits else -1


def latest_clean(reports: list[CheckpointReport]) -> list[CheckpointReport]:
    """What to resume from: for GPT-SoVITS the latest step whose ``G_`` and ``D_`` (when saved) are both clean and
    complete, returned as that pair; otherwise the latest clean file. Empty when nothing is clean. Give the
    reports of one experiment (:func:`experiments`)."""
    pairs: dict[int, dict[str, CheckpointReport]] = {}
    for r in reports:
        if r.kind in ("gpt-sovits-G", "gpt-sovits-D") and r.step is not None:
            pairs.setdefault(r.step, {})[r.kind[-1]] = r
    if pairs:
        for step in sorted(pairs, reverse=True):
            pair = pairs[step]
            if "G" in pair and all(r.resumable for r in pair.values()):
                return [pair[k] for k in sorted(pair, key="GD".index)]
        return []
    clean = [r for r in reports if r.clean and r.kind != "gpt-sovits-weights"]
    return clean[-1:]


def newer_than(reports: list[CheckpointReport], clean: list[CheckpointReport]) -> list[CheckpointReport]:
    """The checkpoints numbered after the clean ones (:func:`latest_clean`): what to move out of the folder so
    that ``s2_train.py``, which resumes from the highest number, resumes from the clean pair."""
    if not clean or clean[0].step is None:
        return []
    return [r for r in reports if r.step is not None and r.step > clean[0].step]
