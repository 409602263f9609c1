"""Colab, simulated: every notebook's setup cell run twice under a fake ``google.colab`` with a preinstalled
torch, and the dependency ranges checked against the versions Colab ships."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import nbformat
import pytest
import tomllib
from IPython.core.inputtransformer2 import TransformerManager
from packaging.requirements import Requirement

from tools.nbtemplate import SETUP

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
#: What a Colab runtime has preinstalled (versions as of late 2025), which installing the project must keep.
COLAB = {"torch": "2.8.0+cu126", "ipywidgets": "7.7.1", "ipykernel": "6.17.1", "numpy": "2.0.2"}


class FakeColabShell:
    """Records what the setup cell asks IPython to do; ``git clone`` creates the folder, as on Colab."""

    def __init__(self, content: Path) -> None:
        self.content, self.system_calls, self.magics = content, [], []

    def system(self, cmd: str) -> None:
        self.system_calls.append(cmd)
        if cmd.startswith("git clone"):
            (self.content / "tts-nb" / "notebooks").mkdir(parents=True)

    def run_line_magic(self, name: str, line: str, _stack_depth: int = 1) -> None:
        self.magics.append((name, line))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_setup_cell_is_the_template_and_runs_twice_on_colab(path, tmp_path, monkeypatch):
    cell = nbformat.read(str(path), as_version=4).cells[1].source
    assert cell == SETUP, f"{path.name}: the setup cell must be tools/nbtemplate.SETUP (one place holds the repo URL)"
    content = tmp_path / "content"
    content.mkdir()
    code = TransformerManager().transform_cell(cell.replace("/content", str(content)))
    shell = FakeColabShell(content)
    monkeypatch.setitem(sys.modules, "google", types.ModuleType("google"))
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    monkeypatch.setattr(sys, "path", list(sys.path))
    for _ in range(2):  # a student runs the cell again
        exec(compile(code, path.name, "exec"), {"get_ipython": lambda: shell})
    clones = [c for c in shell.system_calls if c.startswith("git clone")]
    installs = [line for name, line in shell.magics if name == "pip"]
    assert len(clones) == 1, shell.system_calls
    assert len(installs) == 2 and all("torch" not in i and "-U" not in i and "--upgrade" not in i for i in installs)
    assert sys.path.count(str(content / "tts-nb")) == 1
    assert [m for m in shell.magics if m[0] == "cd"] == [("cd", f"{content}/tts-nb/notebooks")] * 2


def test_dependency_ranges_keep_colabs_own_packages():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    reqs = {Requirement(d).name: Requirement(d) for d in deps}
    for name, version in COLAB.items():
        assert reqs[name].specifier.contains(version, prereleases=True), f"{name} {version} would be replaced"
