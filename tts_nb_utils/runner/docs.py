"""A static HTML site of the executed notebooks, for a workshop to hand out (``make docs``, ``tts-nb docs``).

Reads the executed copies and ``report.json`` that ``tts-nb run`` writes (``build/notebooks``), renders each
notebook with nbconvert's HTML exporter (plots stay embedded as images, so the site works offline and from a
USB stick), and writes an ``index.html`` listing every notebook with its status and run time. Pages are
written atomically; a notebook that failed is still rendered, and marked in the index.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from pathlib import Path

import nbformat

from ..errors import UsageError
from ..io import atomic_write_text


@dataclass
class Page:
    """One rendered notebook: its HTML file, title, status from report.json and how many images it embeds."""

    notebook: str
    html: Path
    title: str
    status: str
    seconds: float | None
    images: int


def _title(nb: nbformat.NotebookNode, fallback: str) -> str:
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return fallback


def build_site(executed_dir: str | Path, out_dir: str | Path) -> list[Page]:
    """Render every executed notebook in ``executed_dir`` to ``out_dir``, plus ``index.html``; returns the pages.

    Raises UsageError when ``executed_dir`` holds no executed notebooks (run ``tts-nb run`` or ``make run`` first).
    """
    from nbconvert import HTMLExporter

    src, out = Path(executed_dir), Path(out_dir)
    notebooks = sorted(src.glob("*.ipynb")) if src.is_dir() else []
    if not notebooks:
        raise UsageError(f"{src}: no executed notebooks; run `make run` (or `tts-nb run --out {src}`) first")
    report = {}
    if (src / "report.json").is_file():
        report = {r["notebook"]: r for r in json.loads((src / "report.json").read_text(encoding="utf-8"))["notebooks"]}
    exporter = HTMLExporter(template_name="lab")
    pages = []
    for path in notebooks:
        nb = nbformat.read(str(path), as_version=4)
        body, _ = exporter.from_notebook_node(nb)
        page = out / f"{path.stem}.html"
        atomic_write_text(page, body)
        row = report.get(path.name, {})
        pages.append(Page(path.name, page, _title(nb, path.stem), row.get("status", "unknown"), row.get("seconds"),
                          body.count("data:image/png;base64,")))
    atomic_write_text(out / "index.html", _index(pages))
    return pages


def _index(pages: list[Page]) -> str:
    rows = "\n".join(
        f'<tr><td><a href="{p.html.name}">{html.escape(p.title)}</a></td><td>{html.escape(p.status)}</td>'
        f"<td>{'' if p.seconds is None else f'{p.seconds:.0f} s'}</td></tr>"
        for p in pages
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>tts-nb: TTS training failures, reproduced and fixed</title>
<style>body{{font-family:sans-serif;max-width:60em;margin:2em auto;padding:0 1em}}
td,th{{padding:.3em .8em;text-align:left;border-bottom:1px solid #8884}}</style></head>
<body><h1>tts-nb: TTS training failures, reproduced and fixed</h1>
<p>Executed notebooks, rendered with their outputs. Each reads: symptom, reproduction, diagnosis, fix, verification.</p>
<table><tr><th>notebook</th><th>status</th><th>run time</th></tr>
{rows}
</table></body></html>
"""
