"""A doctor report that fits a notebook screen: one short table row per finding, the full text behind a toggle.

``tts-nb doctor`` prints every finding's what, where and fix in a five-column table, which is right in a
terminal or a CI log and too wide for a notebook (notebook 08). :func:`compact_markdown` reads the same
``--json`` report and keeps every Markdown line within ``width`` characters: a table of severity, kind, where
and the start of what, with the notebook's number; then a ``<details>`` toggle with each finding's what and
fix in full, wrapped, and the notes.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

from .report import SEVERITIES


def _fit(text: str, width: int, keep_end: bool = False) -> str:
    """``text`` cut to ``width`` characters with an ellipsis (at its start when ``keep_end``: file paths)."""
    text = " ".join(text.split()).replace("|", "\\|")
    if len(text) <= width:
        return text
    return "…" + text[-(width - 1):] if keep_end else text[: width - 1].rstrip() + "…"


def _wrapped(first: str, text: str, width: int) -> list[str]:
    """A list item wrapped to ``width``; continuation lines indented under it."""
    indent = " " * (len(first) - len(first.lstrip()) + 2)
    return textwrap.wrap(" ".join(text.split()), width, initial_indent=first, subsequent_indent=indent)


def compact_markdown(report: dict[str, Any], root: str | Path | None = None, width: int = 120) -> str:
    """The doctor's ``--json`` report as Markdown whose lines are at most ``width`` characters; paths (and
    paths in the findings' text) are shown relative to ``root`` when given."""
    def rel(path: str) -> str:
        if root is not None:
            try:
                return Path(path).relative_to(root).as_posix()
            except ValueError:
                pass
        return path

    counts = report.get("counts", {})
    lines = [f"**{counts.get('error', 0)} error(s), {counts.get('warning', 0)} warning(s), "
             f"{counts.get('info', 0)} note(s)** in {len(report['paths'])} path(s); exit code {report['exit_code']}",
             ""]
    findings = [(p, f) for p in report["paths"] for f in p["findings"]]
    findings.sort(key=lambda pf: SEVERITIES.index(pf[1]["severity"]) if pf[1]["severity"] in SEVERITIES
                  else len(SEVERITIES))
    if findings:
        lines += ["| severity | kind | where | what | nb |", "|---|---|---|---|---|"]
        for p, f in findings:
            head = f"| {f['severity']} | {p['kind']} | `{_fit(f['where'], 30, keep_end=True)}` | "
            tail = f" | {f['notebook'][:2]} |"
            lines.append(head + _fit(f["what"], max(20, width - len(head) - len(tail))) + tail)
    details = []
    for p, f in findings:
        details += _wrapped(f"- **{f['severity']}**, `{rel(p['path'])}`, `{f['where']}`: ", f["what"], width)
        if f.get("fix"):
            details += _wrapped("  - *fix:* ", f["fix"], width)
    for p in report["paths"]:
        details += [line for note in p["notes"] for line in _wrapped(f"- {rel(p['path'])}: ", note, width)]
    if details:
        lines += ["", "<details><summary>every finding in full, with its fix, and what was checked</summary>", "",
                  *details, "", "</details>"]
    text = "\n".join(lines)
    return text.replace(f"{Path(root).as_posix()}/", "") if root is not None else text
