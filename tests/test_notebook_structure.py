"""Every committed notebook follows the anatomy: one tagged parameters cell, no outputs, its own Colab badge."""

from __future__ import annotations

import ast
import re

import nbformat
import pytest

from tts_nb_utils import GITHUB_REPO
from tts_nb_utils.runner.papermill import discover, notebook_parameters
from tts_nb_utils.runner.paths import colab_url

NOTEBOOKS = discover()
BADGE = re.compile(r"https://colab\.research\.google\.com/github/([^/]+/[^/]+)/blob/main/notebooks/([\w.-]+\.ipynb)")


def test_there_are_notebooks_and_they_are_numbered():
    assert NOTEBOOKS, "notebooks/ is empty"
    for path in NOTEBOOKS:
        assert re.fullmatch(r"\d\d_[a-z0-9_]+\.ipynb", path.name), f"{path.name}: name it NN_topic.ipynb"
    assert NOTEBOOKS[0].name == "00_start_here.ipynb"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
class TestAnatomy:
    def test_one_parameters_cell_with_seed_and_device(self, path):
        nb = nbformat.read(str(path), as_version=4)
        tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        assert len(tagged) == 1, f"{path.name}: {len(tagged)} cells tagged 'parameters', want exactly 1"
        params = notebook_parameters(path)
        assert "SEED" in params and "DEVICE" in params, f"{path.name}: parameters lack SEED or DEVICE"
        assert params["DEVICE"]["default"] == '"auto"', f"{path.name}: DEVICE must default to \"auto\""
        (cell,) = tagged
        assigned = [t.id for node in ast.parse(cell.source).body for t in getattr(node, "targets", [])]
        # papermill silently skips a line it cannot parse (e.g. an "=" inside the help comment).
        assert list(params) == assigned, f"{path.name}: papermill sees {list(params)}, the cell assigns {assigned}"
        missing_help = [k for k, v in params.items() if not v["help"]]
        assert not missing_help, f"{path.name}: parameters without a trailing help comment: {missing_help}"

    def test_no_outputs_committed(self, path):
        nb = nbformat.read(str(path), as_version=4)
        dirty = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and (c.outputs or c.execution_count)]
        assert not dirty, f"{path.name}: cells {dirty} carry outputs; run `make clean-notebooks`"

    def test_colab_badge_points_at_itself(self, path):
        nb = nbformat.read(str(path), as_version=4)
        assert nb.cells[0].cell_type == "markdown", f"{path.name}: the first cell must be the title"
        links = BADGE.findall(nb.cells[0].source)
        assert links, f"{path.name}: the title cell has no Colab badge"
        for repo, name in links:
            assert (repo, name) == (GITHUB_REPO, path.name), f"{path.name}: badge points at {repo}/{name}"
        assert colab_url(path.name) in nb.cells[0].source

    def test_setup_cell_installs_only_on_colab_and_keeps_torch(self, path):
        nb = nbformat.read(str(path), as_version=4)
        setup = nb.cells[1].source
        assert '"google.colab" in sys.modules' in setup, f"{path.name}: cell 1 must be the Colab setup cell"
        installs = [line for line in setup.splitlines() if "pip install" in line]
        assert installs, f"{path.name}: the setup cell installs nothing on Colab"
        for line in installs:  # Colab's preinstalled CUDA torch must be kept
            assert not re.search(r"\btorch\b|--upgrade|\s-U\b|--force-reinstall", line), (
                f"{path.name}: {line.strip()!r} could replace Colab's torch"
            )
        assert GITHUB_REPO in setup

    def test_has_an_assert_cell(self, path):
        nb = nbformat.read(str(path), as_version=4)
        code = [c.source for c in nb.cells if c.cell_type == "code"]
        assert any(re.search(r"^\s*assert\b", s, re.M) for s in code), f"{path.name}: no assert cell"

    def test_parameters_cell_holds_only_literal_assignments(self, path):
        # Derived values belong in the next cell: papermill does not recompute them after injecting values.
        nb = nbformat.read(str(path), as_version=4)
        (cell,) = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        for node in ast.parse(cell.source).body:
            assert isinstance(node, ast.Assign), f"{path.name}: the parameters cell may hold only assignments"
            try:
                ast.literal_eval(node.value)
            except ValueError:
                pytest.fail(f"{path.name}: {ast.unparse(node)!r} is not a literal; derive it in the next cell")
