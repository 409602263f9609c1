"""Which saved checkpoints hold NaN/Inf, and the latest clean one to resume from (notebook 02,
``tts-nb scan-checkpoints``).

GPT-SoVITS's ``s2_train.py`` resumes from the highest-numbered ``G_*.pth`` / ``D_*.pth`` in
``logs_s2_<version>/`` whenever one exists (``s2_train.py:206-221`` and ``utils.latest_checkpoint_path``,
``utils.py:112-117``, at ``48b1a01``): a checkpoint written after the weights went NaN is loaded again on every
restart, and every loss line is NaN from the first step. This reads checkpoints without a model:

- GPT-SoVITS ``G_<step>.pth`` / ``D_<step>.pth``: ``{"model", "iteration", "optimizer", "learning_rate"}``
  (``utils.save_checkpoint``, ``utils.py:75-90``; ``iteration`` holds the *epoch*, ``s2_train.py:514-535``);
- Lightning ``.ckpt``: ``{"state_dict", "optimizer_states", "epoch", "global_step", ...}``;
- a plain state dict ``{name: tensor}``.

Every floating-point tensor (weights, buffers, optimizer moments) is checked. Files are loaded with
``weights_only=True`` unless the caller trusts them; the files are only read.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..errors import UsageError
from ..io import list_files

CHECKPOINT_SUFFIXES = (".pth", ".pt", ".ckpt")
_GPT_SOVITS_NAME = re.compile(r"^([GD])_(\d+)\.pth$")


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
    """One file: its format (``"gpt-sovits-G"``, ``"gpt-sovits-D"``, ``"lightning"``, ``"state-dict"``), the step
    from its name (GPT-SoVITS) or contents (Lightning), the epoch when stored, how many float tensors were read,
    and those holding NaN/Inf. ``error`` says why a file could not be read."""

    path: Path
    kind: str = "unknown"
    step: int | None = None
    epoch: int | None = None
    tensors: int = 0
    bad: list[BadTensor] = field(default_factory=list)
    error: str | None = None

    @property
    def clean(self) -> bool:
        return self.error is None and not self.bad

    def format(self, root: Path | None = None, limit: int = 3) -> str:
        name = self.path.relative_to(root).as_posix() if root and self.path.is_relative_to(root) else str(self.path)
        where = " ".join(x for x in (self.kind, f"step {self.step}" if self.step is not None else "",
                                     f"epoch {self.epoch}" if self.epoch is not None else "") if x)
        if self.error:
            return f"{name}: UNREADABLE: {self.error}"
        if not self.bad:
            return f"{name} [{where}]: clean ({self.tensors} float tensors)"
        shown = ", ".join(str(b) for b in self.bad[:limit])
        more = f", and {len(self.bad) - limit} more" if len(self.bad) > limit else ""
        return f"{name} [{where}]: NaN/Inf in {len(self.bad)} of {self.tensors} tensors: {shown}{more}"


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
    if isinstance(data, dict) and {"model", "iteration", "optimizer", "learning_rate"} <= set(data):
        m = _GPT_SOVITS_NAME.match(path.name)
        return f"gpt-sovits-{m.group(1) if m else 'G/D'}", {"model": data["model"], "optimizer": data["optimizer"]}
    if isinstance(data, dict) and "state_dict" in data:
        return "lightning", {"state_dict": data["state_dict"], "optimizer_states": data.get("optimizer_states", [])}
    if isinstance(data, dict) and data and all(isinstance(v, torch.Tensor) for v in data.values()):
        return "state-dict", {"": data}
    if isinstance(data, dict) and "weight" in data:  # GPT-SoVITS exported weights (process_ckpt.savee)
        return "gpt-sovits-weights", {"weight": data["weight"]}
    raise ValueError("not a checkpoint layout this tool knows (GPT-SoVITS G_/D_, Lightning .ckpt, a state dict)")


def scan_checkpoint(path: str | os.PathLike, trust: bool = False) -> CheckpointReport:
    """Read one checkpoint and list every float tensor holding NaN/Inf. Never raises for a bad file: the
    report's ``error`` says what is wrong. ``trust=True`` allows pickled objects (only for files you made)."""
    path = Path(path)
    report = CheckpointReport(path)
    m = _GPT_SOVITS_NAME.match(path.name)
    report.step = int(m.group(2)) if m else None
    try:
        data = torch.load(path, map_location="cpu", weights_only=not trust)
        report.kind, parts = _kind(path, data)
    except Exception as e:  # noqa: BLE001 - unpickling raises many types; the report names the reason
        reason = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
        hint = " (it holds pickled objects: pass --trust if you made this file yourself)" if "weights_only" in str(e) else ""
        report.error = f"{reason}{hint}"
        return report
    if report.kind == "gpt-sovits-G" or report.kind == "gpt-sovits-D":
        report.epoch = int(data["iteration"])
    elif report.kind == "lightning":
        report.epoch, report.step = data.get("epoch"), data.get("global_step", report.step)
    for prefix, part in parts.items():
        for name, t in _float_tensors(part, prefix):
            report.tensors += 1
            finite = torch.isfinite(t)
            if not bool(finite.all()):
                n_nan = int(torch.isnan(t).sum())
                report.bad.append(BadTensor(name, n_nan, int((~finite).sum()) - n_nan, t.numel()))
    return report


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
    """What to resume from: for GPT-SoVITS the latest step whose ``G_`` and ``D_`` (when saved) are both clean,
    returned as that pair; otherwise the latest clean file. Empty when nothing is clean."""
    pairs: dict[int, dict[str, CheckpointReport]] = {}
    for r in reports:
        if r.kind in ("gpt-sovits-G", "gpt-sovits-D") and r.step is not None:
            pairs.setdefault(r.step, {})[r.kind[-1]] = r
    if pairs:
        for step in sorted(pairs, reverse=True):
            pair = pairs[step]
            if "G" in pair and all(r.clean for r in pair.values()):
                return [pair[k] for k in sorted(pair, key="GD".index)]
        return []
    clean = [r for r in reports if r.clean]
    return clean[-1:]


def newer_than(reports: list[CheckpointReport], clean: list[CheckpointReport]) -> list[CheckpointReport]:
    """The checkpoints numbered after the clean ones (:func:`latest_clean`): what to move out of the folder so
    that ``s2_train.py``, which resumes from the highest number, resumes from the clean pair."""
    if not clean or clean[0].step is None:
        return []
    return [r for r in reports if r.step is not None and r.step > clean[0].step]
