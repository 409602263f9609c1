"""tools/notebook_metrics.py on small notebooks built here: each figure, each limit, the sweep file, the exit code."""

from __future__ import annotations

import json
import os

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from tools.notebook_metrics import main, measure, output_lines, prose_words


def _nb(path, cells):
    nb = new_notebook()
    nb.cells = cells
    nbformat.write(nb, str(path))
    return path


def _code(src, tags=(), outputs=()):
    cell = new_code_cell(src)
    cell.metadata["tags"] = list(tags)
    cell.outputs = list(outputs)
    return cell


def _pair(tmp_path, name, prose_words_n=10, symptom_at=1, out_line=50, code_lines=5):
    """A notebook (title, setup, parameters, code cells, Sources) and its executed copy with one output line."""
    words = " ".join(["word"] * prose_words_n)
    body = [_code("\n".join(["x = 1"] * code_lines), tags=["symptom"] if k == symptom_at else [],
                  outputs=[new_output("stream", name="stdout", text="y" * out_line + "\n")]) for k in (1, 2, 3, 4)]
    cells = [new_markdown_cell(f"# Title\n\n{words}"), _code("# setup"), _code("SEED = 0", tags=["parameters"]),
             *body, new_markdown_cell("## Sources\n" + " ".join(["cited"] * 900))]
    (tmp_path / "nbs").mkdir(exist_ok=True)
    (tmp_path / "ran").mkdir(exist_ok=True)
    src = _nb(tmp_path / "nbs" / name, cells)
    ran = _nb(tmp_path / "ran" / name, cells)
    return src, ran


def _sweep(path, rows):
    path.write_text(json.dumps({"notebooks": [{"notebook": n, "passed": p, "total": t, "runs": []}
                                              for n, p, t in rows]}))
    return path


def test_prose_words_leave_out_code_images_links_and_html():
    md = ("# 01 · A `fp16_run` story\n\n[![Open In Colab](https://x/badge.svg)](https://colab/x)\n"
          "Read [the trainer](https://github.com/a/b/blob/c/t.py#L1) here: https://example.org/page <b>now</b>.\n"
          "```bash\ntts-nb run 02 -p SEED 3 --out build\n```\n| a | b |\n|---|---|\n")
    # 01 A fp16_run story Read the trainer here: now. a b  ("·", "|", "---" have no letter or digit)
    assert prose_words(md) == 11


def test_main_path_stops_at_sources_and_symptom_cell_counts_after_parameters(tmp_path):
    src, ran = _pair(tmp_path, "01_x.ipynb", prose_words_n=20, symptom_at=2)
    m = measure(src, ran, (10, 10))
    assert m.prose == 21  # "Title" + 20 words; the 900 words under Sources are not main path
    assert (m.symptom_cell, m.words_before_symptom) == (2, 21)
    assert (m.output_line, m.code_cell, m.problems) == (50, 5, [])


def test_each_limit_is_checked(tmp_path):
    src, ran = _pair(tmp_path, "01_x.ipynb", prose_words_n=701, symptom_at=4, out_line=121, code_lines=26)
    m = measure(src, ran, (9, 10))
    assert m.problems == ["prose 702 > 700 words", "symptom in code cell 4 > 3", "output line 121 > 120 characters",
                          "code cell 26 > 25 lines", "sweep 9/10"]
    src, _ = _pair(tmp_path, "02_y.ipynb", symptom_at=0)
    m = measure(src, None, (3, 3))
    assert m.problems == ["no code cell tagged 'symptom'", "no executed copy", "sweep 3/3"]  # 3 runs are not 10


def test_output_lines_count_what_a_reader_sees():
    cell = _code("", outputs=[
        new_output("stream", name="stdout", text="\x1b[31m" + "a" * 10 + "\x1b[0m\nbb\n"),
        new_output("error", ename="RuntimeError", evalue="boom", traceback=["x" * 500]),
        new_output("display_data", data={"text/markdown": "| " + "c" * 30 + " |", "text/plain": "<Markdown>"}),
        new_output("display_data", data={"text/html": "<table>" + "d" * 900, "text/plain": "e" * 900}),
        new_output("execute_result", data={"text/plain": "f" * 7}, execution_count=1),
    ])
    assert [len(line) for line in output_lines(cell)] == [10, 2, 18, 34, 7]


def test_script_prints_the_table_reads_the_newest_sweep_and_exits_by_the_limits(tmp_path, capsys):
    good, _ = _pair(tmp_path, "01_good.ipynb")
    wide, _ = _pair(tmp_path, "02_wide.ipynb", out_line=300)
    (tmp_path / "sweeps" / "a").mkdir(parents=True)
    (tmp_path / "sweeps" / "b").mkdir()
    old = _sweep(tmp_path / "sweeps" / "a" / "sweep.json", [("01_good.ipynb", 4, 10), ("02_wide.ipynb", 10, 10)])
    new = _sweep(tmp_path / "sweeps" / "b" / "sweep.json", [("01_good.ipynb", 10, 10)])
    os.utime(old, (1, 1))
    args = [str(good), str(wide), "--executed", str(tmp_path / "ran"), "--sweep", str(tmp_path / "sweeps")]
    assert main(args) == 1
    out = capsys.readouterr().out
    assert "| 01_good | 11 | 1, 11 words | 50 | 5 | 10/10 |" in out
    assert "| 02_wide | 11 | 1, 11 words | 300 ✗ | 5 | 10/10 |" in out
    assert "02_wide.ipynb: output line 300 > 120 characters" in out and "1 of 2 notebook(s) within every limit" in out
    assert main([str(good), "--executed", str(tmp_path / "ran"), "--sweep", str(new)]) == 0
    assert main([str(good), "--sweep", str(tmp_path / "nope.json")]) == 2
