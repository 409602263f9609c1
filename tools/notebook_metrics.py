"""Are the notebooks workshop-ready (issue 30)? Prints one row per notebook, each figure checked against its limit.

Usage (from the repository root):
    tts-nb run --out build/notebooks                        # executed copies, for the output lines
    tts-nb sweep 02 --seeds 0-9 --out build/sweep/02        # one sweep.json per sweep, for the pass counts
    python tools/notebook_metrics.py --executed build/notebooks --sweep build/sweep
Exit 0 when every figure is within its limit, 1 otherwise (a figure that could not be measured fails too).

The figures, and how each is measured:
- **prose**: words of Markdown in the main path, i.e. every Markdown cell before the ``Sources`` heading (a line
  ``# Sources`` at any level; the rest of that cell and all later cells are the reference section). Code is not
  prose: fenced blocks, images (the Colab badge), link targets, bare URLs and HTML tags are removed first; a
  word is a whitespace-separated token with a letter or digit in it (inline code such as `fp16_run` counts as
  one word, as a reader reads it). Limit: 700.
- **symptom**: the symptom's code cell, counted among the code cells after the ``parameters`` cell (the Colab
  setup cell and the parameters cell print nothing and are the same in every notebook), and the prose words
  before it (a figure for the reader's first screen; no limit of its own). The notebook marks that cell with the
  cell tag ``symptom``: the first code cell whose *output* shows the error text or log line users saw. In
  Jupyter: View > Cell toolbar > Tags (or the property inspector in JupyterLab); in the JSON:
  ``"metadata": {"tags": ["symptom"]}``. Limit: cell 3 at the latest. No tag: the check fails.
- **output line**: the longest output line in the executed copy (``--executed DIR``, as ``tts-nb run --out DIR``
  writes it): stream text, error messages (``ename: evalue``, not the traceback), ``text/markdown`` lines (a
  Markdown table row is one line) and ``text/plain`` where the output has no richer form. HTML (DataFrames) and
  images are left out: the browser lays them out. ANSI colour codes are removed. Limit: 120 characters.
- **code cell**: the most lines in one code cell (trailing blank lines not counted). Limit: 25.
- **sweep**: passed/total runs from ``sweep.json`` files (``tts-nb sweep NOTEBOOK --seeds 0-9``); ``--sweep``
  takes files or folders searched for ``sweep.json``; where several hold a notebook, the newest file counts.
  Limit: every run passed, and at least 10 runs.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from tts_nb_utils.io import strip_ansi

ROOT = Path(__file__).resolve().parents[1]
LIMITS = {"prose": 700, "symptom_cell": 3, "output_line": 120, "code_cell": 25, "sweep_runs": 10}
SYMPTOM_TAG = "symptom"

_SOURCES = re.compile(r"^#{1,6}\s+Sources\b", re.MULTILINE)
_FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
_IMAGE = re.compile(r"!\[[^\]]*\]\([^)]*\)")
_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
_URL = re.compile(r"https?://\S+")
_TAG = re.compile(r"<[^>]+>")
_WORD = re.compile(r"[A-Za-z0-9]")


@dataclass
class Metrics:
    notebook: str
    prose: int = 0
    symptom_cell: int | None = None  # 1-based among the code cells after the parameters cell
    words_before_symptom: int | None = None
    output_line: int | None = None  # None: no executed copy given or found
    code_cell: int = 0
    sweep: tuple[int, int] | None = None  # (passed, total); None: no sweep found
    problems: list[str] = field(default_factory=list)


def prose_words(markdown: str) -> int:
    """Words of prose in Markdown text: code blocks, images, link targets, URLs and HTML tags removed."""
    text = _FENCE.sub(" ", markdown)
    text = _IMAGE.sub(" ", text)
    text = _LINK.sub(r"\1", text)
    text = _TAG.sub(" ", _URL.sub(" ", text))
    return sum(1 for token in text.split() if _WORD.search(token))


def main_path(nb: nbformat.NotebookNode) -> list[tuple[int, str]]:
    """(cell index, Markdown text) of each Markdown cell before the Sources heading, cut at that heading."""
    out = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "markdown":
            continue
        found = _SOURCES.search(cell.source)
        out.append((i, cell.source[: found.start()] if found else cell.source))
        if found:
            break
    return out


def output_lines(cell: nbformat.NotebookNode) -> list[str]:
    """The lines a reader sees in a code cell's outputs (see the module docstring for what counts)."""
    lines: list[str] = []
    for out in cell.get("outputs", []):
        if out.output_type == "stream":
            lines += out.text.splitlines()
        elif out.output_type == "error":
            lines += f"{out.ename}: {out.evalue}".splitlines()
        else:
            data = out.get("data", {})
            if "text/markdown" in data:
                lines += data["text/markdown"].splitlines()
            elif "text/plain" in data and not any(k.startswith("image/") or k == "text/html" for k in data):
                lines += data["text/plain"].splitlines()
    return [strip_ansi(line) for line in lines]


def measure(notebook: Path, executed: Path | None, sweep: tuple[int, int] | None) -> Metrics:
    """All figures for one notebook; ``executed`` is its executed copy (None: output lines not measured)."""
    nb = nbformat.read(str(notebook), as_version=4)
    m = Metrics(notebook.name, sweep=sweep)
    path = main_path(nb)
    m.prose = sum(prose_words(text) for _, text in path)
    code = [(i, c) for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    m.code_cell = max((len(c.source.rstrip().splitlines()) for _, c in code), default=0)
    params = next((k for k, (_, c) in enumerate(code) if "parameters" in c.metadata.get("tags", [])), -1)
    after = code[params + 1:]
    for k, (i, c) in enumerate(after, 1):
        if SYMPTOM_TAG in c.metadata.get("tags", []):
            m.symptom_cell = k
            m.words_before_symptom = sum(prose_words(text) for j, text in path if j < i)
            break
    if executed is not None and executed.is_file():
        ran = nbformat.read(str(executed), as_version=4)
        m.output_line = max((len(line) for c in ran.cells if c.cell_type == "code" for line in output_lines(c)),
                            default=0)
    m.problems = check(m)
    return m


def check(m: Metrics) -> list[str]:
    """The figures of ``m`` that miss their limit (or could not be measured), as short phrases."""
    problems = []
    if m.prose > LIMITS["prose"]:
        problems.append(f"prose {m.prose} > {LIMITS['prose']} words")
    if m.symptom_cell is None:
        problems.append(f"no code cell tagged '{SYMPTOM_TAG}'")
    elif m.symptom_cell > LIMITS["symptom_cell"]:
        problems.append(f"symptom in code cell {m.symptom_cell} > {LIMITS['symptom_cell']}")
    if m.output_line is None:
        problems.append("no executed copy")
    elif m.output_line > LIMITS["output_line"]:
        problems.append(f"output line {m.output_line} > {LIMITS['output_line']} characters")
    if m.code_cell > LIMITS["code_cell"]:
        problems.append(f"code cell {m.code_cell} > {LIMITS['code_cell']} lines")
    if m.sweep is None:
        problems.append("no sweep")
    elif m.sweep[0] < m.sweep[1] or m.sweep[1] < LIMITS["sweep_runs"]:
        problems.append(f"sweep {m.sweep[0]}/{m.sweep[1]}")
    return problems


def read_sweeps(paths: list[Path]) -> dict[str, tuple[int, int]]:
    """notebook name -> (passed, total) from ``sweep.json`` files or folders holding them; the newest file wins."""
    files = []
    for p in paths:
        files += sorted(p.rglob("sweep.json")) if p.is_dir() else [p]
    out: dict[str, tuple[int, int]] = {}
    for f in sorted(files, key=lambda f: f.stat().st_mtime):
        try:
            rows = json.loads(f.read_text(encoding="utf-8"))["notebooks"]
            out.update({r["notebook"]: (int(r["passed"]), int(r["total"])) for r in rows})
        except (OSError, ValueError, KeyError, TypeError) as e:
            print(f"{f}: not a sweep.json from tts-nb sweep ({type(e).__name__}: {e}); skipped", file=sys.stderr)
    return out


def format_table(rows: list[Metrics]) -> str:
    """A Markdown table (the README's), limits in the header, a figure past its limit marked with ✗."""
    def mark(value: str, bad: bool) -> str:
        return f"{value} ✗" if bad else value

    head = (f"| notebook | prose words (≤{LIMITS['prose']}) | symptom: code cell (≤{LIMITS['symptom_cell']}), "
            f"words before | longest output line (≤{LIMITS['output_line']}) | longest code cell "
            f"(≤{LIMITS['code_cell']}) | sweep (all of ≥{LIMITS['sweep_runs']}) |")
    lines = [head, "|---|---:|---:|---:|---:|---:|"]
    for m in rows:
        symptom = "untagged ✗" if m.symptom_cell is None else mark(
            f"{m.symptom_cell}, {m.words_before_symptom} words", m.symptom_cell > LIMITS["symptom_cell"])
        out = "? ✗" if m.output_line is None else mark(str(m.output_line), m.output_line > LIMITS["output_line"])
        sweep = "? ✗" if m.sweep is None else mark(f"{m.sweep[0]}/{m.sweep[1]}", any("sweep" in p for p in m.problems))
        lines.append(f"| {Path(m.notebook).stem} | {mark(str(m.prose), m.prose > LIMITS['prose'])} | {symptom} | "
                     f"{out} | {mark(str(m.code_cell), m.code_cell > LIMITS['code_cell'])} | {sweep} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("notebooks", nargs="*", type=Path, help="notebooks to measure (default: notebooks/*.ipynb)")
    ap.add_argument("--executed", type=Path, default=ROOT / "build" / "notebooks",
                    help="folder of executed copies, as tts-nb run --out writes (default build/notebooks)")
    ap.add_argument("--sweep", type=Path, action="append", default=[],
                    help="a sweep.json, or a folder searched for them (repeatable)")
    args = ap.parse_args(argv)
    notebooks = args.notebooks or sorted((ROOT / "notebooks").glob("*.ipynb"))
    missing = [str(p) for p in notebooks if not p.is_file()] + [str(p) for p in args.sweep if not p.exists()]
    if missing:
        print(f"not found: {', '.join(missing)}", file=sys.stderr)
        return 2
    sweeps = read_sweeps(args.sweep)
    rows = [measure(p, args.executed / p.name, sweeps.get(p.name)) for p in notebooks]
    print(format_table(rows))
    bad = [m for m in rows if m.problems]
    for m in bad:
        print(f"{m.notebook}: {'; '.join(m.problems)}")
    print(f"{len(rows) - len(bad)} of {len(rows)} notebook(s) within every limit")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
