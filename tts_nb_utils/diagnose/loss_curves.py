"""Read a run's per-term loss curves back and say which terms learn: decreasing, flat, stuck at zero, absent.

Notebook 03 logs every loss term with Lightning's CSVLogger (``monitors.lightning.loss_loggers``); this reads
its ``metrics.csv`` (or any CSV with a ``step`` column and one column per term), classifies each curve and
plots them. No Lightning needed to read a file.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def metrics_csv_path(logger_or_dir: Any) -> Path:
    """The ``metrics.csv`` of a CSVLogger, a Trainer (its first CSVLogger), or a folder containing one."""
    for attr in ("loggers",):
        if hasattr(logger_or_dir, attr):
            from lightning.pytorch.loggers import CSVLogger

            for lg in getattr(logger_or_dir, attr):
                if isinstance(lg, CSVLogger):
                    return Path(lg.log_dir) / "metrics.csv"
            raise FileNotFoundError("this Trainer has no CSVLogger; add loss_loggers(save_dir) to its loggers")
    if hasattr(logger_or_dir, "log_dir"):
        return Path(logger_or_dir.log_dir) / "metrics.csv"
    path = Path(logger_or_dir)
    if path.is_file():
        return path
    found = sorted(path.rglob("metrics.csv"), key=lambda p: p.stat().st_mtime)
    if not found:
        raise FileNotFoundError(f"no metrics.csv under {path}: was the run logged with a CSVLogger?")
    return found[-1]


def read_metrics_csv(source: Any) -> dict[str, list[tuple[int, float]]]:
    """Read a CSVLogger ``metrics.csv`` into ``{column: [(step, value), ...]}`` (empty cells skipped)."""
    path = metrics_csv_path(source)
    history: dict[str, list[tuple[int, float]]] = {}
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            step = int(float(row.get("step") or 0))
            for key, cell in row.items():
                if key in ("step", "epoch") or cell in (None, ""):
                    continue
                history.setdefault(key, []).append((step, float(cell)))
    return history


@dataclass
class TermSummary:
    """One loss term over a run: ``status`` is "decreasing", "increasing", "flat", "stuck at zero" or "absent".

    ``first``/``last``: the first and last logged values; ``ratio``: mean of the last quarter of the values
    over the mean of the first quarter (NaN when undefined)."""

    name: str
    steps: int
    first: float
    last: float
    ratio: float
    status: str


def summarize_loss_terms(
    history: Mapping[str, Sequence[tuple[int, float]]],
    terms: Sequence[str] | None = None,
    prefix: str = "train/",
    min_change: float = 0.3,
) -> list[TermSummary]:
    """Classify each term's curve. ``terms``: names without the prefix (default: every ``prefix*`` column).

    "absent": never logged, or only NaN; "stuck at zero": every value is 0; otherwise the mean of the last
    quarter of the values is compared with the mean of the first quarter: "decreasing" when it is at least
    ``min_change`` (relative) lower, "increasing" when that much higher, else "flat". A term that drifts with
    the shared encoder but is never trained itself comes out "flat".
    """
    if terms is None:
        terms = [k[len(prefix):] for k in history if k.startswith(prefix)]
    out = []
    for name in terms:
        values = [v for _, v in history.get(f"{prefix}{name}", []) if not math.isnan(v)]
        if not values:
            out.append(TermSummary(name, 0, math.nan, math.nan, math.nan, "absent"))
            continue
        if all(v == 0.0 for v in values):
            out.append(TermSummary(name, len(values), 0.0, 0.0, math.nan, "stuck at zero"))
            continue
        q = max(len(values) // 4, 1)
        head, tail = sum(values[:q]) / q, sum(values[-q:]) / q
        ratio = tail / head if head != 0 else math.inf
        if ratio <= 1 - min_change:
            status = "decreasing"
        elif ratio >= 1 + min_change:
            status = "increasing"
        else:
            status = "flat"
        out.append(TermSummary(name, len(values), values[0], values[-1], ratio, status))
    return out


def plot_loss_terms(
    history: Mapping[str, Sequence[tuple[int, float]]],
    terms: Sequence[str] | None = None,
    prefix: str = "train/",
    ax: Any = None,
    title: str | None = None,
) -> Any:
    """Plot each term's curve on one axis (log scale when all values are positive); returns the axis."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.2))
    summaries = {s.name: s for s in summarize_loss_terms(history, terms, prefix)}
    positive = True
    for name, summary in summaries.items():
        points = [(s, v) for s, v in history.get(f"{prefix}{name}", []) if not math.isnan(v)]
        if not points:
            ax.plot([], [], label=f"{name} (absent)")
            continue
        steps, values = zip(*points, strict=True)
        positive = positive and min(values) > 0
        style = {"linestyle": "--", "color": "0.5", "linewidth": 1.2, "zorder": 3} if name == "total" else {}
        ax.plot(steps, values, marker="." if len(values) < 30 else None, label=f"{name} ({summary.status})", **style)
    if positive and summaries:
        ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    return ax
