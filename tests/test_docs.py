"""`tts-nb docs`: an offline site from executed copies, reusing fresh copies and running only stale ones."""

from __future__ import annotations

import json
import os
import re

import nbformat
from nbformat.v4 import new_markdown_cell

from tts_nb_utils.cli import main
from tts_nb_utils.runner.paths import colab_badge

#: A script or stylesheet the browser would fetch from a network, and a remote image.
REMOTE = re.compile(r'<(?:script|link)\b[^>]*\b(?:src|href)\s*=\s*["\']?(?:https?:)?//|<img\b[^>]*\bsrc="https?:', re.I)


def _titled(path, title):
    nb = nbformat.read(str(path), as_version=4)
    nb.cells.insert(0, new_markdown_cell(f"# {title}\n\n{colab_badge(path.name)}\nWhat this shows."))
    nbformat.write(nb, str(path))
    return path


def _counting(make_notebook, tmp_path, name):
    """A notebook that appends one line to a file each time it executes."""
    log = tmp_path / f"{name}.runs"
    return make_notebook(name, "SEED = 0  # seed", f"open({str(log)!r}, 'a').write('run\\n')\nprint('ran')"), log


def _runs(log):
    return len(log.read_text().splitlines()) if log.exists() else 0


def test_site_works_offline_links_the_index_and_renders_titles(make_notebook, tmp_path):
    plot = "import matplotlib.pyplot as plt\nplt.plot([1, 2, 3])\nplt.show()"
    a = _titled(make_notebook("01_plot.ipynb", "SEED = 0  # seed", plot), "01 · A `training_step` that **fails**")
    b = _titled(make_notebook("02_text.ipynb", "SEED = 0  # seed", "print('hello')"), "02 · Plain")
    out, site = tmp_path / "out", tmp_path / "site"
    assert main(["docs", str(a), str(b), "--from", str(out), "--out", str(site)]) == 0

    pages = {p: (site / p).read_text() for p in ("index.html", "01_plot.html", "02_text.html")}
    for name, text in pages.items():
        assert not REMOTE.search(text), (name, REMOTE.search(text))
        assert "mathjax" not in text.lower() and "require.js" not in text and "cdnjs" not in text, name
    for name in ("01_plot.html", "02_text.html"):
        assert pages[name].count('href="index.html"') == 2, name  # top and bottom of every page
    assert 'href="02_text.html"' in pages["01_plot.html"] and 'href="01_plot.html"' in pages["02_text.html"]
    index = pages["index.html"]
    assert "01 · A <code>training_step</code> that <strong>fails</strong>" in index and "`" not in index
    assert index.count("<td>ok</td>") == 2
    assert "<title>01 · A training_step that fails</title>" in pages["01_plot.html"]
    assert '<img src="data:image/png;base64,' in pages["01_plot.html"] or 'src="data:image/png' in pages["01_plot.html"]
    assert "Open In Colab" in pages["01_plot.html"] and "hello" in pages["02_text.html"]


def test_fresh_copies_are_reused_and_stale_or_failed_ones_run(make_notebook, tmp_path, capsys):
    a, a_log = _counting(make_notebook, tmp_path, "01_a.ipynb")
    b, b_log = _counting(make_notebook, tmp_path, "02_b.ipynb")
    out, site = tmp_path / "out", tmp_path / "site"
    assert main(["run", str(a), str(b), "--out", str(out)]) == 0
    assert (_runs(a_log), _runs(b_log)) == (1, 1)

    assert main(["docs", str(a), str(b), "--from", str(out), "--out", str(site)]) == 0
    assert (_runs(a_log), _runs(b_log)) == (1, 1), "fresh executed copies must not be executed again"
    assert capsys.readouterr().out.count("(ok, reused,") == 2

    later = (out / "02_b.ipynb").stat().st_mtime + 10
    os.utime(b, (later, later))  # the notebook was edited after its copy was made
    assert main(["docs", str(a), str(b), "--from", str(out), "--out", str(site)]) == 0
    assert (_runs(a_log), _runs(b_log)) == (1, 2)
    report = json.loads((out / "report.json").read_text())
    assert [r["notebook"] for r in report["notebooks"]] == ["01_a.ipynb", "02_b.ipynb"] and report["ok"]

    assert main(["docs", str(a), str(b), "--from", str(out), "--out", str(site), "--rerun"]) == 0
    assert (_runs(a_log), _runs(b_log)) == (2, 3)


def test_missing_and_failed_copies_are_executed_and_marked(make_notebook, tmp_path):
    ok, ok_log = _counting(make_notebook, tmp_path, "01_ok.ipynb")
    bad = make_notebook("02_bad.ipynb", "SEED = 0  # seed", "raise RuntimeError('boom')")
    out, site = tmp_path / "out", tmp_path / "site"
    assert main(["docs", str(ok), str(bad), "--from", str(out), "--out", str(site)]) == 1  # nothing there: both run
    assert _runs(ok_log) == 1
    index = (site / "index.html").read_text()
    assert "<td>failed</td>" in index and "<td>ok</td>" in index and 'href="02_bad.html"' in index
    assert main(["docs", str(ok), str(bad), "--from", str(out), "--out", str(site)]) == 1
    assert _runs(ok_log) == 1  # the failed copy ran again, the good one was reused
    report = json.loads((out / "report.json").read_text())
    assert {r["notebook"]: r["status"] for r in report["notebooks"]} == {"01_ok.ipynb": "ok", "02_bad.ipynb": "failed"}


def test_a_copy_without_report_row_uses_papermill_metadata(make_notebook, tmp_path):
    a, a_log = _counting(make_notebook, tmp_path, "01_a.ipynb")
    out, site = tmp_path / "out", tmp_path / "site"
    assert main(["run", str(a), "--out", str(out)]) == 0
    (out / "report.json").unlink()  # copies handed over without their report
    assert main(["docs", str(a), "--from", str(out), "--out", str(site)]) == 0
    assert _runs(a_log) == 1 and "<td>ok</td>" in (site / "index.html").read_text()


def test_math_is_named_as_lost(make_notebook, tmp_path, capsys):
    nb = _titled(make_notebook("01_m.ipynb", "SEED = 0  # seed", "print(1)"), "01 · Math")
    doc = nbformat.read(str(nb), as_version=4)
    doc.cells.append(new_markdown_cell("The loss is $\\sum_i x_i^2$."))
    nbformat.write(doc, str(nb))
    assert main(["docs", str(nb), "--from", str(tmp_path / "o"), "--out", str(tmp_path / "s")]) == 0
    assert "TeX math shown as source" in capsys.readouterr().out


def test_no_notebooks_is_a_usage_error(tmp_path):
    assert main(["docs", str(tmp_path / "nope.ipynb"), "--out", str(tmp_path / "s")]) == 2
