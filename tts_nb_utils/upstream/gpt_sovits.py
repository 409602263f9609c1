"""Read and write GPT-SoVITS SoVITS (stage 2) training log lines; notebook 02 and ``tts-nb sovits-log``.

At GPT-SoVITS ``48b1a01``, ``GPT_SoVITS/s2_train.py:451-461`` logs, every ``log_interval`` steps,
``Train Epoch: E [P%]`` and then a bare Python list ``[loss_disc, loss_gen, loss_fm, loss_mel, kl_ssl,
loss_kl, global_step, lr]``, through a logger whose file format is ``asctime<TAB>name<TAB>levelname<TAB>message``
(``utils.py:309-321``; the console shows ``INFO:name:message``). v3/v4 LoRA runs (``s2_train_v3_lora.py:329-334``)
log ``[cfm_loss, global_step, lr]`` instead. The logged LR is ``param_groups[0]`` (the text encoder's groups run at
``text_low_lr_rate`` = 0.4 times it, ``s2_train.py:172-198``). It comes from an ``ExponentialLR`` built with
``last_epoch=-1`` and stepped ``epoch_str`` times before training (``s2_train.py:268-281``), so a fresh run logs
``lr = learning_rate * lr_decay ** epoch`` (``configs/s2.json``: 1e-4 and 0.999875). After a resume the scheduler
starts from the restored, already decayed LR and decays it again: the exponent becomes ``epoch + k``, where ``k`` is
the sum of the epochs of the checkpoints resumed from (``utils.load_checkpoint`` logs each as ``Loaded checkpoint
'...G_<step>.pth' (iteration <epoch>)``, ``utils.py:54-59``). One line alone therefore gives the epoch only if the
run was never resumed.

``decode_sovits_log`` names the entries of one line and infers the epoch from the LR; ``scan_sovits_log`` reads
a whole ``train.log``, takes the epoch from the ``Train Epoch`` line before each list (the LR only when there is
none), and tells intermittent NaN (finite lines between them: GradScaler skips those steps and training goes
on) from persistent NaN (every line from the first NaN on). ``format_sovits_log`` writes lines the same way.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

LOSS_NAMES = ("loss_disc", "loss_gen", "loss_fm", "loss_mel", "kl_ssl", "loss_kl")
ENTRY_NAMES = (*LOSS_NAMES, "global_step", "lr")
LORA_LOSS_NAMES = ("cfm_loss",)  #: v3/v4 LoRA lines (``s2_train_v3_lora.py:332-334``)
S2_LEARNING_RATE = 1e-4  #: ``train.learning_rate`` in GPT-SoVITS ``configs/s2.json``
S2_LR_DECAY = 0.999875  #: ``train.lr_decay`` (per epoch)

_LIST = re.compile(r"\[([^\[\]]*)\]\s*$")
_EPOCH_LINE = re.compile(r"Train Epoch:\s*(\d+)")
_LOADED = re.compile(r"Loaded checkpoint '([^']*)' \(iteration (\d+)\)")


class SovitsLogError(ValueError):
    """A line that is not a GPT-SoVITS loss line; the message shows the line and what was expected."""


@dataclass
class SovitsLogEntry:
    """One decoded loss line. ``epoch`` is inferred from the LR as if the run was never resumed (None when the
    LR does not fit ``lr0 * lr_decay ** n``; ``epoch_exact`` is the real-valued ``n`` either way);
    ``epoch_range`` is what a line alone can tell. ``lr_offset``: ``n - logged_epoch`` when the log has a
    ``Train Epoch`` line (0 for a run never resumed, the epochs resumed from otherwise)."""

    losses: dict[str, float]
    global_step: int
    lr: float
    epoch: int | None
    epoch_exact: float
    line_number: int | None = None
    logged_epoch: int | None = None
    nonfinite: list[str] = field(default_factory=list)
    lr_offset: int | None = None

    @property
    def epoch_range(self) -> tuple[int, int] | None:
        """``(lowest, highest)`` epoch this line's LR allows: the highest if the run was never resumed, the lowest
        if it was resumed after every epoch (each resume adds the epoch resumed from to the exponent)."""
        if self.epoch is None:
            return None
        low = next(e for e in range(1, self.epoch + 2) if e * (e + 1) // 2 >= self.epoch) if self.epoch else 0
        return min(low, self.epoch), self.epoch

    @property
    def best_epoch(self) -> int | None:
        """The epoch from the log's ``Train Epoch`` line when there was one, else the one the LR gives."""
        return self.logged_epoch if self.logged_epoch is not None else self.epoch

    @property
    def finite(self) -> bool:
        return not self.nonfinite

    def __str__(self) -> str:
        if self.logged_epoch is not None:
            where = f"epoch {self.logged_epoch}, step {self.global_step}"
        elif self.epoch is not None:
            low, high = self.epoch_range
            also = f" ({low}-{high} if the run was ever resumed)" if low < high else ""
            where = f"epoch {self.epoch}{also}, step {self.global_step}"
        else:
            where = f"epoch ? (lr fits {self.epoch_exact:.2f}), step {self.global_step}"
        losses = ", ".join(f"{k}={v:.4g}" for k, v in self.losses.items())
        bad = f"  NON-FINITE: {', '.join(self.nonfinite)}" if self.nonfinite else ""
        return f"{where}, lr {self.lr:.6g}: {losses}{bad}"


def sovits_lr(epoch: int, lr0: float = S2_LEARNING_RATE, lr_decay: float = S2_LR_DECAY) -> float:
    """The LR GPT-SoVITS logs during ``epoch`` (1-based): ``lr0 * lr_decay ** epoch``."""
    return lr0 * lr_decay**epoch


def infer_epoch(lr: float, lr0: float = S2_LEARNING_RATE, lr_decay: float = S2_LR_DECAY,
                tol: float = 0.02) -> tuple[int | None, float]:
    """``(epoch, exact)``: the epoch whose LR is ``lr`` (None if no whole epoch >= 0 is within ``tol``)."""
    if not (lr > 0 and lr0 > 0 and 0 < lr_decay < 1):
        raise ValueError(f"cannot infer the epoch from lr={lr}, lr0={lr0}, lr_decay={lr_decay}: "
                         "need lr > 0, lr0 > 0 and 0 < lr_decay < 1 (use the values from your s2 config)")
    exact = math.log(lr / lr0) / math.log(lr_decay)
    nearest = round(exact)
    return (int(nearest) if nearest >= 0 and abs(exact - nearest) <= tol else None), exact


def _number(text: str, name: str, line: str) -> float:
    t = text.strip()
    if t.startswith("tensor(") and t.endswith(")"):
        t = t[len("tensor("):-1].split(",")[0]
    try:
        return float(t)
    except ValueError:
        raise SovitsLogError(f"entry {name}={text.strip()!r} is not a number in line {line.strip()!r}") from None


def decode_sovits_log(line: str, lr0: float = S2_LEARNING_RATE, lr_decay: float = S2_LR_DECAY) -> SovitsLogEntry:
    """Decode one ``s2_train.py`` loss line (with or without a logger prefix such as ``INFO:exp:``).

    ``decode_sovits_log("[nan, nan, nan, nan, 0.0, nan, 200, 9.993751562304699e-05]")`` -> epoch 5, step 200,
    every loss but ``kl_ssl`` non-finite. Pass ``lr0``/``lr_decay`` from your own config if you changed them.
    Raises SovitsLogError for anything else, saying what was found.
    """
    if _EPOCH_LINE.search(line):
        raise SovitsLogError(
            f"{line.strip()[:120]!r} is the epoch header; the loss list is the line after it in train.log"
        )
    m = _LIST.search(line.strip())
    if not m:
        raise SovitsLogError(
            f"no [...] list at the end of {line.strip()[:120]!r}; expected a GPT-SoVITS s2_train.py loss line "
            f"like [{', '.join(ENTRY_NAMES)}]"
        )
    parts = [p for p in m.group(1).split(",")]
    names = {len(LOSS_NAMES): LOSS_NAMES, len(LORA_LOSS_NAMES): LORA_LOSS_NAMES}.get(len(parts) - 2)
    if names is None:
        raise SovitsLogError(
            f"{len(parts)} entries in {m.group(0)!r}, expected {len(ENTRY_NAMES)}: [{', '.join(ENTRY_NAMES)}] "
            f"(or 3 for a v3/v4 LoRA run: [cfm_loss, global_step, lr])"
        )
    values = [_number(p, n, line) for p, n in zip(parts, (*names, "global_step", "lr"), strict=True)]
    step_v, lr = values[-2], values[-1]
    if not (math.isfinite(step_v) and step_v == int(step_v) and step_v >= 0):
        raise SovitsLogError(f"global_step={parts[-2].strip()!r} is not a whole number >= 0 in {line.strip()!r}")
    if not (math.isfinite(lr) and lr > 0):
        raise SovitsLogError(f"lr={parts[-1].strip()!r} is not a positive number in {line.strip()!r}")
    epoch, exact = infer_epoch(lr, lr0, lr_decay)
    losses = dict(zip(names, values[:-2], strict=True))
    return SovitsLogEntry(
        losses=losses, global_step=int(step_v), lr=lr, epoch=epoch, epoch_exact=exact,
        nonfinite=[k for k, v in losses.items() if not math.isfinite(v)],
    )


def _value(v) -> float:
    return float(v.detach().float().reshape(-1)[0]) if hasattr(v, "detach") else float(v)


def format_sovits_log(
    losses: Mapping[str, float] | Sequence[float],
    global_step: int,
    lr: float,
    epoch: int | None = None,
    progress: float | None = None,
    logger_name: str | None = None,
) -> str:
    """A loss line as ``s2_train.py`` logs it: ``[loss_disc, loss_gen, loss_fm, loss_mel, kl_ssl, loss_kl,
    global_step, lr]`` (Python's list repr, so NaN prints as ``nan``). ``losses`` is the six values in that
    order, or a mapping by name (missing names are written as 0.0, e.g. for a model without a discriminator).
    With ``epoch``, the ``Train Epoch: E [P%]`` line comes first; ``logger_name`` adds ``INFO:name:``.
    """
    if isinstance(losses, Mapping):
        unknown = set(losses) - set(LOSS_NAMES)
        if unknown:
            raise KeyError(f"unknown loss names {sorted(unknown)}; GPT-SoVITS logs {list(LOSS_NAMES)}")
        vals = [_value(losses.get(n, 0.0)) for n in LOSS_NAMES]
    else:
        vals = [_value(v) for v in losses]
        if len(vals) != len(LOSS_NAMES):
            raise ValueError(f"{len(vals)} losses given, GPT-SoVITS logs {len(LOSS_NAMES)}: {list(LOSS_NAMES)}")
    prefix = f"INFO:{logger_name}:" if logger_name else ""
    line = prefix + repr([*vals, int(global_step), float(lr)])
    if epoch is not None:
        line = f"{prefix}Train Epoch: {epoch} [{progress or 0:.0f}%]\n{line}"
    return line


@dataclass
class SovitsLogScan:
    """``scan_sovits_log`` result: decoded entries, the first non-finite one, lines that looked like loss
    lines but did not decode (``(line_number, message)``)."""

    path: str
    entries: list[SovitsLogEntry]
    problems: list[tuple[int, str]]
    resumes: list[tuple[int, str, int]] = field(default_factory=list)  #: (line, G_ file, its epoch) per resume

    @property
    def lr_misfits(self) -> list[SovitsLogEntry]:
        """Lines whose LR fits no ``lr0 * lr_decay ** (epoch + k)`` with a whole ``k >= 0`` for their logged epoch
        (another config's learning_rate or lr_decay); lines without a ``Train Epoch`` line: no whole epoch at all."""
        return [e for e in self.entries if (e.epoch is None if e.logged_epoch is None else e.lr_offset is None)]

    @property
    def lr_offsets(self) -> list[int]:
        """The distinct ``k`` of ``lr0 * lr_decay ** (epoch + k)`` above 0 in this log: one per resume whose
        scheduler decayed the restored LR again (empty for a run never resumed)."""
        return sorted({e.lr_offset for e in self.entries if e.lr_offset})

    @property
    def data_nan(self) -> bool:
        """NaN in ``kl_ssl``, the SSL-feature term: it comes from the data, not from fp16 (with the quantizer
        frozen it is a constant 0.0 otherwise)."""
        return any("kl_ssl" in e.nonfinite for e in self.entries)

    @property
    def first_nonfinite(self) -> SovitsLogEntry | None:
        """The first loss line holding NaN/Inf."""
        return next((e for e in self.entries if not e.finite), None)

    @property
    def nonfinite_count(self) -> int:
        return sum(not e.finite for e in self.entries)

    @property
    def pattern(self) -> str:
        """``"none"``; ``"persistent"``: every line from the first NaN on is NaN (at least two of them: the
        weights or a forward activation overflow on every step); ``"intermittent"``: finite lines follow NaN
        ones (some steps overflow and are skipped); ``"single"``: one NaN line, the last one."""
        first = self.first_nonfinite
        if first is None:
            return "none"
        tail = self.entries[self.entries.index(first):]
        if any(e.finite for e in tail):
            return "intermittent"
        return "persistent" if len(tail) > 1 else "single"

    def summary(self) -> str:
        """A few lines: how many loss lines, how many NaN, where the first NaN is, and the pattern."""
        n, bad = len(self.entries), self.nonfinite_count
        lines = [f"{self.path}: {n} loss line(s), {bad} with NaN/Inf ({self.pattern})"]
        first = self.first_nonfinite
        if first is not None:
            lines.append(f"first non-finite loss line: line {first.line_number}, epoch {first.best_epoch}, "
                         f"step {first.global_step} ({', '.join(first.nonfinite)})")
            if self.pattern == "intermittent":
                lines.append("  finite lines follow: some steps overflowed and were skipped (GradScaler); "
                             "training went on")
            elif self.pattern == "persistent":
                lines.append("  every line since is NaN: a forward value overflows on every step, or the weights "
                             "are NaN (check the checkpoints: tts-nb scan-checkpoints)")
        offsets = self.lr_offsets
        if offsets:
            lines.append(f"resumed run: the lr decays again after each resume (epoch + {', '.join(map(str, offsets))} "
                         f"epochs in the exponent, s2_train.py:268-281); {len(self.resumes)} resume(s) logged")
        if self.entries:
            lines.append(f"last line: {self.entries[-1]}")
        return "\n".join(lines)


def scan_sovits_log(path: str | os.PathLike, lr0: float = S2_LEARNING_RATE,
                    lr_decay: float = S2_LR_DECAY) -> SovitsLogScan:
    """Decode every loss line of a GPT-SoVITS ``train.log``; other lines are ignored, malformed loss lines are
    reported in ``problems`` and the scan goes on. ``Train Epoch: E`` lines fill ``logged_epoch``."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8", errors="replace")
    except OSError as e:
        raise FileNotFoundError(f"{p}: cannot read the log ({e.strerror}); give the path of train.log") from None
    scan, logged = SovitsLogScan(str(p), [], []), None
    for i, line in enumerate(text.splitlines(), 1):
        if em := _EPOCH_LINE.search(line):
            logged = int(em.group(1))
            continue
        if (lm := _LOADED.search(line)) and Path(lm.group(1)).name.startswith("G_"):
            scan.resumes.append((i, lm.group(1), int(lm.group(2))))
        listed = _LIST.search(line.strip())
        commas = listed.group(1).count(",") if listed else 0  # asctime has a comma of its own
        if not listed or (commas < 6 and commas != 2):
            continue
        try:
            entry = decode_sovits_log(line, lr0, lr_decay)
        except (SovitsLogError, ValueError) as e:
            if commas >= 6:  # a 3-entry list that is not a LoRA loss line is some other log line
                scan.problems.append((i, str(e)))
            continue
        entry.line_number, entry.logged_epoch = i, logged
        if logged is not None:
            k = entry.epoch_exact - logged
            entry.lr_offset = round(k) if round(k) >= 0 and abs(k - round(k)) <= 0.02 else None
        scan.entries.append(entry)
    return scan
