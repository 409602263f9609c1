"""interact: one call with the controls' starting values in a headless run; the runner marks kernels headless."""

from __future__ import annotations

import json
import os

import ipywidgets
import pytest

from tts_nb_utils.runner.papermill import run_notebook
from tts_nb_utils.runner.widgets import HEADLESS_ENV, default_kwargs, headless, interact


def test_default_kwargs_follow_ipywidgets_starting_values():
    def f(a, b, c, d, e=7, g="y", h=0.5):
        return None

    kwargs = default_kwargs(
        f, a=["x", "y"], b=(0, 10), c=(1.0, 2.0, 0.1), d=True, e=(0, 100), g=["x", "y"],
        h=ipywidgets.FloatSlider(value=0.25, min=0, max=1),
    )
    # list -> first option; int range -> middle; float range -> middle; bool -> itself;
    # the function's default wins over an abbreviation; a widget's own value wins over the default.
    assert kwargs == {"a": "x", "b": 5, "c": 1.5, "d": True, "e": 7, "g": "y", "h": 0.25}


def test_headless_interact_calls_once_with_defaults(monkeypatch, capsys):
    monkeypatch.setenv(HEADLESS_ENV, "1")
    calls = []

    def f(device="cpu", steps=3):
        calls.append((device, steps))
        return "done"

    assert headless()
    assert interact(f, device=["auto", "cpu"], steps=(1, 9)) == "done"
    assert calls == [("cpu", 3)]
    assert "headless run: f(device='cpu', steps=3)" in capsys.readouterr().out


@pytest.mark.parametrize("value", ["", "0", "no"])
def test_not_headless_unless_set(monkeypatch, value):
    monkeypatch.setenv(HEADLESS_ENV, value)
    assert not headless()


def test_runner_marks_its_kernels_headless(make_notebook, tmp_path, monkeypatch):
    monkeypatch.delenv(HEADLESS_ENV, raising=False)
    nb = make_notebook(
        "01_env.ipynb", "SEED = 0  # seed",
        "import os\nprint(repr(os.environ.get('TTS_NB_HEADLESS')))",
    )
    result = run_notebook(nb, tmp_path / "out")
    assert result.ok, result.error
    executed = json.loads((tmp_path / "out" / "01_env.ipynb").read_text())
    printed = "".join("".join(o.get("text", "")) for c in executed["cells"] for o in c.get("outputs", []))
    assert "'1'" in printed
    assert HEADLESS_ENV not in os.environ, "the runner must restore the caller's environment"
