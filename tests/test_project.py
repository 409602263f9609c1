"""Packaging facts: environment.yml agrees with pyproject.toml; torch is unpinned; torchaudio stays optional."""

from __future__ import annotations

import ast
import re

import tomllib
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from tests.conftest import ROOT

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
ENV = yaml.safe_load((ROOT / "environment.yml").read_text())


def _deps():
    return {Requirement(d).name: Requirement(d) for d in PYPROJECT["project"]["dependencies"]}


def test_environment_yml_python_satisfies_requires_python():
    pythons = [d for d in ENV["dependencies"] if isinstance(d, str) and d.startswith("python")]
    assert len(pythons) == 1
    version = pythons[0].split("=", 1)[1]
    assert Version(version) in SpecifierSet(PYPROJECT["project"]["requires-python"])
    assert "pip" in ENV["dependencies"]


def test_environment_yml_installs_the_project_with_lab_and_dev_through_pip():
    pip_sections = [d["pip"] for d in ENV["dependencies"] if isinstance(d, dict) and "pip" in d]
    assert len(pip_sections) == 1
    (line,) = pip_sections[0]
    m = re.fullmatch(r'-e\s+"?\.\[([\w,]+)\]"?', line)
    assert m, f"environment.yml should install the project in editable mode, found {line!r}"
    extras = set(m.group(1).split(","))
    assert extras == {"lab", "dev"}
    assert extras <= set(PYPROJECT["project"]["optional-dependencies"])
    conda_pkgs = {re.split(r"[=<>]", d)[0] for d in ENV["dependencies"] if isinstance(d, str)}
    assert conda_pkgs == {"python", "pip"}, "everything else comes from pyproject.toml through pip"


def test_required_dependencies_are_declared():
    names = set(_deps())
    for needed in ["torch", "numpy", "scipy", "librosa", "soundfile", "soxr", "noisereduce", "matplotlib", "tqdm",
                   "ipywidgets", "ipykernel", "papermill", "nbformat", "pyyaml", "lightning", "coqui-tts-trainer",
                   "filelock"]:
        assert needed in names, needed


def test_torch_has_a_lower_bound_only():
    torch = _deps()["torch"]
    assert torch.url is None and not torch.extras
    ops = {s.operator for s in torch.specifier}
    assert ops == {">="}, f"torch must only have a lower bound, found {torch.specifier}"
    assert "+" not in str(torch.specifier), "no local variant (+cu121, +cpu) pins"


def test_torchaudio_is_an_optional_extra_and_never_imported_at_module_level():
    assert "torchaudio" not in _deps()
    assert any("torchaudio" in r for r in PYPROJECT["project"]["optional-dependencies"]["torchaudio"])
    for path in (ROOT / "tts_nb_utils").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in tree.body:  # module level only: imports inside functions are opt-in
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
                assert not any(n.split(".")[0] == "torchaudio" for n in names), f"{path} imports torchaudio"


def test_console_script_points_at_the_cli():
    assert PYPROJECT["project"]["scripts"]["tts-nb"] == "tts_nb_utils.cli:main"
