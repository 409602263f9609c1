"""``tts-nb sweep``: a notebook over seeds and parameter sets, pass/fail per run, sweep.json."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tts_nb_utils.errors import UsageError
from tts_nb_utils.runner.sweep import parse_seeds


def tts_nb(*args):
    return subprocess.run([sys.executable, "-m", "tts_nb_utils.cli", *map(str, args)], capture_output=True, text=True)


@pytest.mark.parametrize(
    ("text", "seeds"),
    [("0-9", list(range(10))), ("0,3,7", [0, 3, 7]), ("0-2, 9", [0, 1, 2, 9]), ("5", [5]), ("3,1-3", [1, 2, 3])],
)
def test_parse_seeds(text, seeds):
    assert parse_seeds(text) == seeds


@pytest.mark.parametrize("text", ["", "a", "1-", "-1", "3-1", "1.5", "0-5000"])
def test_bad_seeds_are_usage_errors(text):
    with pytest.raises(UsageError, match="--seeds"):
        parse_seeds(text)


def test_sweep_counts_passes_names_failed_seeds_and_writes_the_report(make_notebook, tmp_path):
    # Fails for every seed that is 2 mod 3, and reads a second parameter given to every run.
    nb = make_notebook(
        "05_seedy.ipynb", "SEED = 0  # seed\nSCALE = 1.0  # a float",
        "print('scaled', SEED * SCALE)\nassert SEED % 3 != 2, f'seed {SEED} breaks the demo'",
    )
    out = tmp_path / "out"
    proc = tts_nb("sweep", nb, "--seeds", "0-2", "-p", "SCALE", "2", "--out", out)
    assert proc.returncode == 1, proc.stderr  # one run failed
    assert "05_seedy.ipynb   2/3" in proc.stdout and "seed 2 breaks the demo" in proc.stdout
    report = json.loads((out / "sweep.json").read_text())
    (row,) = report["notebooks"]
    assert (row["passed"], row["total"], report["ok"]) == (2, 3, False)
    assert [r["seed"] for r in row["runs"]] == [0, 1, 2]
    assert [r["status"] for r in row["runs"]] == ["ok", "ok", "failed"]
    assert all(r["parameters"]["SCALE"] == 2.0 for r in row["runs"])
    assert row["runs"][2]["error"]["exception"] == "AssertionError"
    executed = (out / "05_seedy" / "seed1" / "05_seedy.ipynb").read_text()
    assert "scaled 2.0" in executed  # each run keeps its own executed copy


def test_parameter_sets_multiply_the_runs(make_notebook, tmp_path):
    nb = make_notebook("06_sets.ipynb", "SEED = 0  # seed\nSTEPS = 1  # steps", "assert STEPS * (SEED + 1) < 6")
    out = tmp_path / "out"
    proc = tts_nb("sweep", nb, "--seeds", "0,1", "--set", "STEPS=1", "--set", "STEPS=3", "--out", out)
    report = json.loads((out / "sweep.json").read_text())
    runs = report["notebooks"][0]["runs"]
    assert [(r["parameters"]["STEPS"], r["seed"], r["status"]) for r in runs] == [
        (1, 0, "ok"), (1, 1, "ok"), (3, 0, "ok"), (3, 1, "failed")]
    assert proc.returncode == 1
    assert (out / "06_sets" / "set1-seed1" / "06_sets.ipynb").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-p", "SEED", "3"], "--seeds"),
        (["--set", "STEPS"], "NAME=VALUE"),
        (["--set", "NOPE=1"], "unknown parameter"),
        (["--set", "STEPS=[1"], "STEPS"),
        (["--seeds", "x"], "--seeds"),
    ],
)
def test_bad_sweep_options_exit_2_before_any_kernel_starts(make_notebook, tmp_path, args, message):
    nb = make_notebook("07_opts.ipynb", "SEED = 0  # seed\nSTEPS = 1  # steps", "pass")
    proc = tts_nb("sweep", nb, *args, "--out", tmp_path / "out")
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    assert not (tmp_path / "out").exists()


def test_a_notebook_without_seed_is_refused(make_notebook, tmp_path):
    nb = make_notebook("08_noseed.ipynb", "STEPS = 1  # steps", "pass")
    proc = tts_nb("sweep", nb, "--out", tmp_path / "out")
    assert proc.returncode == 2 and "no SEED parameter" in proc.stderr


def test_parallel_runs_report_in_plan_order_and_share_the_cores(make_notebook, tmp_path, monkeypatch):
    """--jobs 2: seed 0 ends last, yet sweep.json lists the seeds in order; every kernel gets its share of the
    threads (TTS_NB_THREADS) unless the user set it; --jobs 1 runs in this process and sets nothing."""
    monkeypatch.delenv("TTS_NB_THREADS", raising=False)
    nb = make_notebook(
        "07_slow_first.ipynb", "SEED = 0  # seed",
        "import os, time\ntime.sleep(6.0 if SEED == 0 else 0.0)\nprint('threads', os.environ.get('TTS_NB_THREADS'))",
    )
    out = tmp_path / "out"
    proc = tts_nb("sweep", nb, "--seeds", "0-2", "--jobs", "2", "--out", out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    finished = [line.split("SEED=")[1].split(":")[0] for line in proc.stdout.splitlines() if "SEED=" in line]
    assert finished[-1] == "0" and sorted(finished) == ["0", "1", "2"]  # seed 0 really ended last
    runs = json.loads((out / "sweep.json").read_text())["notebooks"][0]["runs"]
    assert [r["seed"] for r in runs] == [0, 1, 2]
    from tts_nb_utils.parallel import auto_threads

    share = auto_threads(processes=2)
    for seed in range(3):
        assert f"threads {share}" in (out / "07_slow_first" / f"seed{seed}" / "07_slow_first.ipynb").read_text()
    slow = make_notebook("08_slow_too.ipynb", "SEED = 0  # seed", "import time\ntime.sleep(3.0)")
    proc = tts_nb("run", slow, nb, "--jobs", "2", "--out", tmp_path / "run")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "s wall (side by side)" in proc.stdout  # sleeps of 3 and 6 s at once: the wall time is well under their sum
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert [r["notebook"] for r in report["notebooks"]] == ["08_slow_too.ipynb", "07_slow_first.ipynb"]
    quick = make_notebook("09_quick.ipynb", "SEED = 0  # seed", "print('threads', __import__('os').environ.get('TTS_NB_THREADS'))")
    proc = tts_nb("run", quick, "--jobs", "1", "--out", tmp_path / "one")
    assert proc.returncode == 0 and "side by side" not in proc.stdout, proc.stdout + proc.stderr
    assert "threads None" in (tmp_path / "one" / "09_quick.ipynb").read_text()
