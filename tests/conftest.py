"""Shared fixtures: the repository root and a builder for small throwaway notebooks."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def make_notebook(tmp_path):
    """``make_notebook(name, params_src, *cell_sources)`` writes a notebook with a tagged parameters cell."""

    def make(name: str, params_src: str, *sources: str) -> Path:
        nb = new_notebook()
        params = new_code_cell(params_src)
        params.metadata["tags"] = ["parameters"]
        nb.cells = [params, *(new_code_cell(s) for s in sources)]
        path = tmp_path / "nbs" / name
        path.parent.mkdir(exist_ok=True)
        nbformat.write(nb, str(path))
        return path

    return make
