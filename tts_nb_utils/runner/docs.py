"""A static HTML site of the executed notebooks, for a workshop to hand out (``make docs``, ``tts-nb docs``).

Reuses the executed copies ``tts-nb run`` wrote (``build/notebooks``) when they are newer than their notebook
and did not fail; runs only the missing, stale or failed ones. Renders each with nbconvert's ``lab`` template
made self-contained for a room without network: plots are embedded images, Markdown and code highlighting
are rendered at build time, and the template's CDN scripts (require.js, MathJax, mermaid, the widget
manager) are dropped. What that loses: TeX math and mermaid diagrams show as their source (no notebook uses
either; ``tts-nb docs`` names a page that does), and saved widget state is not drawn (headless runs save
none). Remote images (the Colab badge) become their alt text, still linked. Every page links to the index
and its neighbours; ``index.html`` lists each notebook's rendered title, status and run time.
"""

from __future__ import annotations

import html
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from ..errors import UsageError
from ..io import atomic_write_json, atomic_write_text, remove_dead_parts_under

#: nbconvert's ``lab`` page without anything fetched from a network, with a navigation bar at both ends.
OFFLINE_TEMPLATE = """{%- extends 'lab/index.html.j2' -%}
{%- block html_head_js -%}{%- endblock html_head_js -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block extra_css -%}<style>nav.tts-nb{font-family:sans-serif;padding:.6em 1em;display:flex;gap:1.5em}
nav.tts-nb a{text-decoration:none}</style>{%- endblock extra_css -%}
{%- block body_header -%}{{ super() }}{{ resources.tts_nb_nav }}{%- endblock body_header -%}
{%- block body_footer -%}{{ resources.tts_nb_nav }}{{ super() }}{%- endblock body_footer -%}
"""

_REMOTE_IMG = re.compile(r'<img\b[^>]*\bsrc="https?://[^"]*"[^>]*>', re.IGNORECASE)
_ALT = re.compile(r'\balt="([^"]*)"')
_MATH = re.compile(r"\$\$|\\\(|\\\[|(?<![\\$])\$[^\s$][^$\n]*(?<!\s)\$")


@dataclass
class Page:
    """One notebook of the site: its HTML file (None when it has no executed copy), rendered title, status,
    run time, whether this build executed it, how many images it embeds, and what the offline page cannot show."""

    notebook: str
    html: Path | None
    title: str
    status: str
    seconds: float | None
    executed: bool = False
    images: int = 0
    lost: list[str] = field(default_factory=list)


def _title_markdown(nb: nbformat.NotebookNode, fallback: str) -> str:
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return fallback


def render_title(markdown: str) -> tuple[str, str]:
    """A Markdown title line as (inline HTML, plain text): backticks become ``<code>``, emphasis is rendered."""
    import mistune

    inline = mistune.html(markdown).strip().removeprefix("<p>").removesuffix("</p>")
    return inline, html.unescape(re.sub(r"<[^>]+>", "", inline))


def _lost(nb: nbformat.NotebookNode) -> list[str]:
    """What the offline page shows as source: TeX math or mermaid diagrams in Markdown cells."""
    md = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    return [name for name, hit in (("TeX math", _MATH.search(md)), ("mermaid diagrams", "```mermaid" in md)) if hit]


def _offline(body: str) -> str:
    """Remote images replaced by their alt text (the link around them stays)."""

    def alt(m: re.Match) -> str:
        found = _ALT.search(m.group(0))
        return f'<span class="tts-nb-offline-img">{found.group(1) if found else "image"}</span>'

    return _REMOTE_IMG.sub(alt, body)


def _nav(prev: Page | None, nxt: Page | None) -> str:
    links = ['<a href="index.html">&#8593; all notebooks</a>']
    for arrow, page in (("&#8592;", prev), ("&#8594;", nxt)):
        if page is not None and page.html is not None:
            links.append(f'<a href="{html.escape(page.html.name)}">{arrow} {page.title}</a>')
    return f'<nav class="tts-nb">{"".join(links)}</nav>'


# ------------------------------------------------------------------------------------ executed copies


def _read_report(folder: Path) -> dict[str, dict]:
    try:
        rows = json.loads((folder / "report.json").read_text(encoding="utf-8"))["notebooks"]
        return {r["notebook"]: r for r in rows}
    except (OSError, ValueError, KeyError, TypeError):
        return {}  # no report (copies from elsewhere) or a broken one: each copy's own metadata says the rest


def copy_status(copy: Path, row: dict | None) -> tuple[str, float | None]:
    """(status, seconds) of an executed copy: from its report.json row, else papermill's metadata in the copy."""
    if row and row.get("status") in {"ok", "failed"}:
        return row["status"], row.get("seconds")
    try:
        meta = nbformat.read(str(copy), as_version=4).metadata.get("papermill", {})
    except Exception:  # noqa: BLE001 - an unreadable copy is stale; it is run again
        return "failed", None
    if "exception" not in meta:
        return "unknown", None
    return ("failed" if meta["exception"] else "ok"), meta.get("duration")


def stale(sources: list[Path], executed_dir: Path, report: dict[str, dict]) -> list[Path]:
    """The notebooks whose executed copy is missing, older than the notebook, or failed: those to run."""
    out = []
    for src in sources:
        copy = executed_dir / src.name
        if not copy.is_file() or copy.stat().st_mtime < src.stat().st_mtime:
            out.append(src)
        elif copy_status(copy, report.get(src.name))[0] == "failed":
            out.append(src)
    return out


def refresh(sources: list[Path], executed_dir: Path, rerun: bool = False, kernel_name: str | None = None,
            timeout: float | None = None, jobs: int = 1) -> set[str]:
    """Run the stale notebooks (all with ``rerun``; ``jobs`` at a time) into ``executed_dir``; ``report.json``
    keeps the rows of the copies reused. Returns the names of the notebooks run."""
    from .papermill import run_notebooks

    report = _read_report(executed_dir)
    todo = list(sources) if rerun else stale(sources, executed_dir, report)
    if not todo:
        return set()
    ran = {r.notebook for r in run_notebooks(todo, executed_dir, kernel_name=kernel_name, timeout=timeout, jobs=jobs)}
    merged = json.loads((executed_dir / "report.json").read_text(encoding="utf-8"))
    rows = {**report, **{r["notebook"]: r for r in merged["notebooks"]}}  # reused copies keep their rows
    merged["notebooks"] = list(rows.values())
    merged["ok"] = all(r.get("status") == "ok" for r in rows.values())
    atomic_write_json(executed_dir / "report.json", merged)
    return ran


# ------------------------------------------------------------------------------------------- the site


def build_site(executed_dir: str | Path, out_dir: str | Path, notebooks: list[Path] | None = None,
               rerun: bool = False, kernel_name: str | None = None, timeout: float | None = None,
               jobs: int = 1) -> list[Page]:
    """Bring the executed copies of ``notebooks`` (default: all of the project's) up to date in
    ``executed_dir`` (``jobs`` notebooks at a time), render them into ``out_dir`` with ``index.html``, and
    return the pages in order."""
    try:
        import jinja2
        from nbconvert import HTMLExporter
    except ImportError:
        raise UsageError("tts-nb docs needs nbconvert: pip install nbconvert (or the project's dev extra)") from None
    from .papermill import discover

    src, out = Path(executed_dir), Path(out_dir)
    remove_dead_parts_under(out)  # pages a killed build left half-written
    sources = list(notebooks) if notebooks is not None else discover()
    if not sources:
        raise UsageError("no notebooks to render")
    ran = refresh(sources, src, rerun, kernel_name, timeout, jobs)
    report = _read_report(src)
    pages, nbs = [], {}
    for path in sources:
        copy = src / path.name
        status, seconds = copy_status(copy, report.get(path.name)) if copy.is_file() else ("failed", None)
        nb = nbformat.read(str(copy), as_version=4) if copy.is_file() else None
        title = render_title(_title_markdown(nb, path.stem) if nb else path.stem)[0]
        pages.append(Page(path.name, out / f"{path.stem}.html" if nb else None, title, status, seconds,
                          path.name in ran, lost=_lost(nb) if nb else []))
        nbs[path.name] = nb
    exporter = HTMLExporter(extra_loaders=[jinja2.DictLoader({"offline.html.j2": OFFLINE_TEMPLATE})],
                            template_file="offline.html.j2")
    linked = [p for p in pages if p.html is not None]
    for i, page in enumerate(linked):
        nb = nbs[page.notebook]
        nb.metadata["title"] = render_title(_title_markdown(nb, page.notebook))[1]
        resources = {"tts_nb_nav": _nav(linked[i - 1] if i else None, linked[i + 1] if i + 1 < len(linked) else None)}
        body = _offline(exporter.from_notebook_node(nb, resources=resources)[0])
        page.images = body.count("src=\"data:image/")
        atomic_write_text(page.html, body)
    atomic_write_text(out / "index.html", _index(pages, src))
    return pages


def _index(pages: list[Page], executed_dir: Path) -> str:
    def row(p: Page) -> str:
        name = f'<a href="{html.escape(p.html.name)}">{p.title}</a>' if p.html else f"{p.title} (no executed copy)"
        secs = "" if p.seconds is None else f"{p.seconds:.0f} s"
        return f"<tr><td>{name}</td><td>{html.escape(p.status)}</td><td>{secs}</td></tr>"

    rows = "\n".join(row(p) for p in pages)
    where = html.escape(os.path.relpath(executed_dir.resolve(), Path.cwd()))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>tts-nb: TTS training failures, reproduced and fixed</title>
<style>body{{font-family:sans-serif;max-width:60em;margin:2em auto;padding:0 1em}}
td,th{{padding:.3em .8em;text-align:left;border-bottom:1px solid #8884}}</style></head>
<body><h1>tts-nb: TTS training failures, reproduced and fixed</h1>
<p>Executed notebooks, rendered with their outputs. Each reads: symptom, reproduction, diagnosis, fix, verification.
The pages need no network.</p>
<table><tr><th>notebook</th><th>status</th><th>run time</th></tr>
{rows}
</table><p>Rendered from the executed copies in <code>{where}</code>.</p></body></html>
"""
