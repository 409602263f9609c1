"""doctor.compact: the doctor's JSON report as Markdown that fits a notebook screen, nothing of it lost."""

from __future__ import annotations

import re

from tts_nb_utils.doctor.compact import compact_markdown

ROOT = "/home/me/project"


def _report():
    long_what = "no prediction | is enabled, so the variance task computes no loss terms " + "x " * 200
    return {
        "paths": [
            {"path": f"{ROOT}/diffsinger/my_variance.yaml", "kind": "diffsinger-config", "given": ROOT,
             "findings": [{"severity": "warning", "what": "short", "where": "a.yaml:3", "fix": "", "notebook": ""},
                          {"severity": "error", "what": long_what, "where": "my_variance.yaml:11#predict_*",
                           "fix": "set predict_dur: true " * 30, "notebook": "03_zero_loss_config.ipynb"}],
             "notes": [f"checkout (base_config root): {ROOT}/diffsinger " + "y " * 100]},
            {"path": f"{ROOT}/applio/logs/m", "kind": "applio-model", "given": ROOT,
             "findings": [{"severity": "info", "what": "dup", "where": "applio/rvc/models/embedders/contentvec/"
                           "pytorch_model (1).bin", "fix": "delete it", "notebook": "06_applio.ipynb"}],
             "notes": []},
        ],
        "counts": {"error": 1, "warning": 1, "info": 1},
        "exit_code": 1,
    }


def test_every_line_fits_and_every_word_is_kept():
    for width in (100, 120):
        text = compact_markdown(_report(), ROOT, width=width)
        assert max(len(line) for line in text.splitlines()) <= width
        words = " ".join(text.split())
        assert words.count("set predict_dur: true") == 30 and words.count(" y") >= 100  # fix and notes in full
        assert ROOT not in text  # paths relative to the project, in the text too


def test_table_has_one_row_per_finding_errors_first_with_the_notebook_number():
    text = compact_markdown(_report(), ROOT)
    rows = [line for line in text.splitlines() if re.match(r"\| (error|warning|info) \|", line)]
    assert [r.split(" | ")[0] for r in rows] == ["| error", "| warning", "| info"]
    assert rows[0].endswith("| 03 |") and rows[2].endswith("| 06 |") and rows[1].endswith("|  |")
    assert "\\|" in rows[0]  # a pipe in the text does not split the row
    assert "`…" in rows[2] and "pytorch_model (1).bin`" in rows[2]  # a long path keeps its end
    assert "**1 error(s), 1 warning(s), 1 note(s)** in 2 path(s); exit code 1" in text
    assert "<details>" in text and text.rstrip().endswith("</details>")


def test_clean_report_has_no_table():
    clean = {"paths": [{"path": f"{ROOT}/audio", "kind": "audio", "given": ROOT, "findings": [], "notes": []}],
             "counts": {"error": 0, "warning": 0, "info": 0}, "exit_code": 0}
    assert compact_markdown(clean, ROOT) == "**0 error(s), 0 warning(s), 0 note(s)** in 1 path(s); exit code 0\n"
