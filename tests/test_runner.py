"""The papermill runner and the `tts-nb run` / `tts-nb list` commands, on small notebooks built here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from tts_nb_utils.cli import main
from tts_nb_utils.errors import UsageError
from tts_nb_utils.runner.papermill import parse_value, resolve_notebooks, strip_outputs


def tts_nb(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "tts_nb_utils.cli", *map(str, args)], capture_output=True, text=True, cwd=cwd
    )


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("3", 3),
        ("-2", -2),
        ("1e-4", 1e-4),
        ("0.5", 0.5),
        ("True", True),
        ("true", True),
        ("false", False),
        ("None", None),
        ("null", None),
        ("cuda", "cuda"),
        ("'cpu'", "cpu"),
        ("[[0, 5e-4], [10, 4e-4]]", [[0, 5e-4], [10, 4e-4]]),
        ("[1, 2, 3]", [1, 2, 3]),
        ("{a: 1}", {"a": 1}),
        ("../data/raw", "../data/raw"),
    ],
)
def test_parse_value(text, value):
    assert parse_value(text) == value
    assert type(parse_value(text)) is type(value)


@pytest.mark.parametrize("text", ["[1, 2", "{a: [1, 2}", "(1, "])
def test_malformed_literal_is_a_usage_error(text):
    with pytest.raises(UsageError, match="literal"):
        parse_value(text)


def test_run_writes_executed_copy_and_report(make_notebook, tmp_path):
    nb = make_notebook("01_ok.ipynb", "SEED = 0  # seed\nSCALE = 1.0  # a float", "result = SEED * SCALE\nprint(result)")
    out = tmp_path / "out"
    proc = tts_nb("run", nb, "-p", "SEED", "3", "-p", "SCALE", "2.5", "--out", out)
    assert proc.returncode == 0, proc.stderr
    report = json.loads((out / "report.json").read_text())
    (row,) = report["notebooks"]
    assert row["status"] == "ok" and row["error"] is None and row["seconds"] > 0
    assert row["parameters"] == {"SEED": 3, "SCALE": 2.5}
    executed = nbformat.read(str(out / "01_ok.ipynb"), as_version=4)
    printed = "".join(o.get("text", "") for c in executed.cells if c.cell_type == "code" for o in c.outputs)
    assert "7.5" in printed
    assert "01_ok.ipynb" in proc.stdout and "ok" in proc.stdout  # the summary table
    assert not list(out.glob(".*part*")), "no temporary files may remain"


def test_failing_notebook_reports_cell_and_error_and_later_ones_still_run(make_notebook, tmp_path):
    bad = make_notebook(
        "01_bad.ipynb", "SEED = 0  # seed", "x = 1", "raise ValueError(f'broken on purpose {SEED}')", "y = 2"
    )
    good = make_notebook("02_good.ipynb", "SEED = 0  # seed", "assert SEED == 5")
    out = tmp_path / "out"
    proc = tts_nb("run", bad, good, "-p", "SEED", "5", "--out", out)
    assert proc.returncode == 1
    report = json.loads((out / "report.json").read_text())
    first, second = report["notebooks"]
    assert first["notebook"] == "01_bad.ipynb" and first["status"] == "failed"
    err = first["error"]
    assert err["cell_index"] == 2  # parameters cell is 0; cells papermill inserts are not counted
    assert err["exception"] == "ValueError"
    assert err["message"] == "broken on purpose 5"
    assert second["status"] == "ok", "a failure must not stop the next notebook"
    assert (out / "01_bad.ipynb").exists(), "the failed executed copy is kept for inspection"
    assert "01_bad.ipynb" in proc.stdout and "ValueError" in proc.stdout
    assert report["ok"] is False


def test_unknown_notebook_is_exit_2(tmp_path):
    proc = tts_nb("run", "99_no_such_notebook", "--out", tmp_path)
    assert proc.returncode == 2
    assert "99_no_such_notebook" in proc.stderr and "00_start_here.ipynb" in proc.stderr


def test_unknown_parameter_is_exit_2_and_lists_known_ones(make_notebook, tmp_path):
    nb = make_notebook("01_ok.ipynb", "SEED = 0  # seed", "pass")
    proc = tts_nb("run", nb, "-p", "SEEED", "1", "--out", tmp_path / "out")
    assert proc.returncode == 2
    assert "SEEED" in proc.stderr and "SEED" in proc.stderr.replace("SEEED", "")
    assert not (tmp_path / "out" / "report.json").exists()


def test_malformed_parameter_is_exit_2(make_notebook, tmp_path):
    nb = make_notebook("01_ok.ipynb", "SEED = 0  # seed", "pass")
    assert main(["run", str(nb), "-p", "SEED", "[1, 2", "--out", str(tmp_path)]) == 2
    assert main(["run", str(nb), "-p", "not-a-name", "1", "--out", str(tmp_path)]) == 2


def test_parameters_go_only_to_notebooks_that_declare_them(make_notebook, tmp_path):
    a = make_notebook("01_a.ipynb", "SEED = 0  # seed\nSTEPS = 5  # steps", "assert STEPS == 9")
    b = make_notebook("02_b.ipynb", "SEED = 0  # seed", "assert 'STEPS' not in globals()")
    assert main(["run", str(a), str(b), "-p", "STEPS", "9", "--out", str(tmp_path / "o")]) == 0


def test_resolve_by_number_and_stem():
    (p,) = resolve_notebooks(["00"])
    assert p.name == "00_start_here.ipynb"
    assert resolve_notebooks(["00_start_here"]) == [p]
    assert resolve_notebooks(["00_start_here.ipynb"]) == [p]


def test_list_shows_parameters_and_help(capsys):
    assert main(["list", "00"]) == 0
    out = capsys.readouterr().out
    assert "00_start_here.ipynb" in out
    assert 'DEVICE = "auto"' in out and "# " in out


def test_strip_outputs(make_notebook):
    nb_path = make_notebook("01.ipynb", "SEED = 0  # seed", "print(1)")
    nb = nbformat.read(str(nb_path), as_version=4)
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", name="stdout", text="1\n")]
    nb.cells[1].execution_count = 1
    nbformat.write(nb, str(nb_path))
    assert strip_outputs(nb_path) is True
    clean = nbformat.read(str(nb_path), as_version=4)
    assert clean.cells[1].outputs == [] and clean.cells[1].execution_count is None
    assert strip_outputs(nb_path) is False


def test_no_command_prints_help_and_exits_2(capsys):
    assert main([]) == 2
    assert "run" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("SEED", "abc", "SEED='abc' (str) does not fit 01_types.ipynb: its default 0 is an int"),
        ("EPOCHS", "2.5", "EPOCHS=2.5 (float) does not fit 01_types.ipynb: its default 3 is an int"),
        ("FAST", "maybe", "is a bool; give True or False"),
        ("GRADUAL_LR", "40,4e-4", "is a nested list; give a list of lists"),
        ("GRADUAL_LR", "[1, 2]", "(list of numbers) does not fit"),
    ],
)
def test_parameter_of_the_wrong_type_is_refused_before_a_kernel_starts(make_notebook, tmp_path, name, value, expected):
    params = "SEED = 0  # seed\nEPOCHS = 3  # epochs\nLR = 1e-4  # lr\nFAST = False  # fast\nDEVICE = \"auto\"  # device\nGRADUAL_LR = [[0, 5e-4], [40, 4e-4]]  # table"
    nb = make_notebook("01_types.ipynb", params, "pass")
    proc = tts_nb("run", nb, "-p", name, value, "--out", tmp_path / "out")
    assert proc.returncode == 2 and expected in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "out").exists()


def test_lossless_conversions_are_accepted(make_notebook, tmp_path):
    params = "SEED = 0  # seed\nLR = 1e-4  # lr\nDEVICE = \"auto\"  # device\nGRADUAL_LR = [[0, 5e-4], [40, 4e-4]]  # table"
    body = "assert LR == 1.0 and isinstance(LR, float) and DEVICE == '0' and GRADUAL_LR == [[0, 1e-3]]"
    nb = make_notebook("01_conv.ipynb", params, body)
    assert main(["run", str(nb), "-p", "LR", "1", "-p", "DEVICE", "0", "-p", "GRADUAL_LR", "[[0, 1e-3]]",
                 "--out", str(tmp_path / "o")]) == 0


def test_git_clean_filter_hides_outputs_and_editor_metadata(make_notebook, tmp_path):
    """A notebook executed and saved in JupyterLab does not show as changed once make install set the filter."""
    repo = tmp_path / "repo"
    (repo / "notebooks").mkdir(parents=True)
    nb_path = make_notebook("01.ipynb", "SEED = 0  # seed", "print(1)")
    target = repo / "notebooks" / "01.ipynb"
    target.write_text(nb_path.read_text())

    def git(*args):
        return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True)

    git("init", "-q")
    git("config", "user.email", "t@example.com"), git("config", "user.name", "t")
    (repo / ".gitattributes").write_text((Path(__file__).resolve().parents[1] / ".gitattributes").read_text())
    git("config", "filter.tts-nb-strip.clean", f"{sys.executable} -m tts_nb_utils.cli strip -")
    git("add", "."), git("commit", "-qm", "init")
    committed = nbformat.reads(git("show", "HEAD:notebooks/01.ipynb").stdout, as_version=4)
    assert committed.metadata.kernelspec.name == "python3"
    nb = nbformat.read(str(target), as_version=4)  # what a run plus "save" in Lab leaves behind
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", name="stdout", text="1\n")]
    nb.cells[1].execution_count = 7
    nb.cells[1].metadata["jupyter"] = {"outputs_hidden": False}
    nb.metadata["kernelspec"] = {"name": "tts-nb", "display_name": "Python (tts-nb)", "language": "python"}
    nb.metadata["language_info"] = {"name": "python", "version": "3.11.7", "mimetype": "text/x-python"}
    nbformat.write(nb, str(target))
    assert git("diff", "--exit-code", "--stat").returncode == 0, git("diff").stdout
    nb.cells[1].source = "print(2)"  # a real edit still shows
    nbformat.write(nb, str(target))
    assert git("diff", "--exit-code", "--stat").returncode == 1


@pytest.mark.parametrize(
    ("body", "timeout", "exception", "message"),
    [
        ("import sys; sys.exit(0)", None, "NotebookStopped", "did not complete"),
        ("import time; time.sleep(30)", 2, "CellTimeoutError", "timed out"),
        # the pause lets papermill record that the cell started before the kernel dies, as in a real crash
        ("import os, time; time.sleep(0.5); os._exit(1)", None, "DeadKernelError", "Kernel died"),
    ],
)
def test_a_run_that_stops_early_is_failed_and_names_the_cell(make_notebook, tmp_path, body, timeout, exception, message):
    nb = make_notebook("01_stop.ipynb", "SEED = 0  # seed", "print(1)", body, "print('verify')")
    args = ["run", str(nb), "--out", str(tmp_path / "o")] + (["--timeout", str(timeout)] if timeout else [])
    assert main(args) == 1
    row = json.loads((tmp_path / "o" / "report.json").read_text())["notebooks"][0]
    assert row["status"] == "failed" and row["error"]["cell_index"] == 2, row
    assert row["error"]["exception"] == exception and message in row["error"]["message"], row


def test_a_malformed_notebook_is_a_report_row_and_the_others_still_run(make_notebook, tmp_path, capsys):
    good = make_notebook("02_good.ipynb", "SEED = 0  # seed", "print(1)")
    bad = good.parent / "01_bad.ipynb"
    bad.write_text("{not json")
    assert main(["run", str(bad), str(good), "--out", str(tmp_path / "o")]) == 1
    rows = {r["notebook"]: r for r in json.loads((tmp_path / "o" / "report.json").read_text())["notebooks"]}
    assert rows["01_bad.ipynb"]["error"]["exception"] == "NotebookReadError" and rows["02_good.ipynb"]["status"] == "ok"
    assert main(["list", str(bad)]) == 1 and "is not a valid notebook" in capsys.readouterr().out
