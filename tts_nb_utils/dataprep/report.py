"""The report of a ``prepare`` run: JSON for tools, and a Markdown page with a duration histogram for people.

Used by :mod:`.prepare` (``tts-nb prepare``) and notebook 01. No timestamps, so a resumed run writes the same
report as an uninterrupted one.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

from ..io import atomic_path, atomic_write_json, atomic_write_text
from .validate import CODE_MEANINGS, CODES, FileReport, summarize


def build_report(sources: list[FileReport], clips: list[FileReport], source_status: list[dict],
                 drops: list[dict], config: dict) -> dict:
    """Everything about a run: per-source status, dropped clips with reasons, validation before and after."""
    return {
        "config": config,
        "summary": {
            "sources": len(sources),
            "sources_used": sum(s["status"] == "used" for s in source_status),
            "clips": len(clips),
            "clips_ok": sum(c.ok for c in clips),
            "clip_seconds": round(sum(c.duration_s or 0 for c in clips), 3),
            "dropped": dict(Counter(d["reason"] for d in drops)),
        },
        "before": summarize(sources),
        "after": summarize(clips),
        "source_status": source_status,
        "dropped": drops,
        "sources": [s.as_dict() for s in sources],
        "clips": [c.as_dict() for c in clips],
    }


def _markdown(report: dict, histogram: str | None) -> str:
    s = report["summary"]
    lines = [
        "# Dataset preparation report", "",
        f"- sources: {s['sources']} ({s['sources_used']} used)",
        f"- clips: {s['clips']} ({s['clips_ok']} pass validation), {s['clip_seconds']:.1f} s of audio",
        f"- dropped clips: {', '.join(f'{k}: {v}' for k, v in s['dropped'].items()) or 'none'}",
        *([f"- sample rate of every clip: {s['sample_rate']}"] if s.get("sample_rate") else []), "",
        "## Issues per code", "",
        "| code | meaning | sources | clips |", "|---|---|---:|---:|",
    ]
    for code in CODES:
        lines.append(f"| {code} | {CODE_MEANINGS[code]} | {report['before']['by_code'][code]} | "
                     f"{report['after']['by_code'][code]} |")
    lines += ["", "## Sources", "", "| source | issues | status |", "|---|---|---|"]
    status = {x["source"]: x for x in report["source_status"]}
    for src in report["sources"]:
        st = status.get(src["path"], {})
        what = st.get("status", "")
        if st.get("reason"):
            what += f" ({st['reason']})"
        lines.append(f"| {src['path']} | {', '.join(src['issues']) or 'ok'} | {what} |")
    bad = [c for c in report["clips"] if c["issues"]]
    if bad:
        lines += ["", "## Clips that still fail validation", ""]
        lines += [f"- {c['path']}: {', '.join(c['issues'])}" for c in bad]
    if histogram:
        lines += ["", "## Clip durations", "", f"![clip durations]({histogram})"]
    return "\n".join(lines) + "\n"


def write_report(out_dir: str | os.PathLike, report: dict, duration_limits: tuple[float, float] | None = None) -> Path:
    """Write ``report.json``, ``durations.png`` and ``report.md`` into ``out_dir`` (atomically); returns the .md path."""
    from matplotlib.figure import Figure  # not pyplot: no backend switch, no figure left open in a notebook

    from ..plot import plot_durations

    out_dir = Path(out_dir)
    atomic_write_json(out_dir / "report.json", report)
    durations = [c["duration_s"] for c in report["clips"] if c["duration_s"]]
    histogram = None
    if durations:
        fig = Figure(figsize=(5, 2.6), layout="constrained")
        plot_durations(durations, ax=fig.subplots(), limits=duration_limits)
        with atomic_path(out_dir / "durations.png") as tmp:
            fig.savefig(tmp, dpi=80, metadata={"Software": None})
        histogram = "durations.png"
    return atomic_write_text(out_dir / "report.md", _markdown(report, histogram))
