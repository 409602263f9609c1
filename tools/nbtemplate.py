"""Developer helper: build a notebook from a list of (kind, source) cells with the project's standard
title badge, Colab setup cell and tagged parameters cell. Notebooks are committed without outputs.

Usage from a throwaway script:
    from tools.nbtemplate import build
    build("notebooks/07_x.ipynb", title_md, params_src, [("md", "..."), ("code", "...")])
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tts_nb_utils import GITHUB_REPO  # noqa: E402
from tts_nb_utils.io import atomic_write_text  # noqa: E402
from tts_nb_utils.runner.papermill import COMMITTED_KERNELSPEC  # noqa: E402
from tts_nb_utils.runner.paths import colab_badge  # noqa: E402

#: The Colab setup cell of every notebook (a test checks they all equal it). Idempotent: running it twice clones
#: once; pip keeps Colab's torch, ipykernel and ipywidgets (pyproject's ranges admit them).
SETUP = f'''# Setup: on Colab, fetch the project once and install it beside Colab's own torch; elsewhere nothing to do.
import sys

if "google.colab" in sys.modules:
    import os

    if not os.path.isdir("/content/tts-nb"):
        !git clone -q --depth 1 https://github.com/{GITHUB_REPO} /content/tts-nb
    # [dia]: transformers, peft and bitsandbytes, which notebook 05 trains with
    %pip install -q -e "/content/tts-nb[dia]"
    if "/content/tts-nb" not in sys.path:
        sys.path.insert(0, "/content/tts-nb")
    %cd /content/tts-nb/notebooks'''


def build(path: str, title_md: str, params_src: str, cells: list[tuple[str, str]]) -> None:
    """Write the notebook at ``path``: title (with its own Colab badge), setup, parameters, then ``cells``."""
    name = Path(path).name
    lines = title_md.strip().splitlines()
    title = "\n".join([lines[0], "", colab_badge(name), *lines[1:]])
    nb = new_notebook()
    nb.metadata["kernelspec"] = dict(COMMITTED_KERNELSPEC)
    nb.metadata["language_info"] = {"name": "python"}
    nb.cells.append(new_markdown_cell(title))
    nb.cells.append(new_code_cell(SETUP))
    params = new_code_cell(params_src.strip())
    params.metadata["tags"] = ["parameters"]
    nb.cells.append(params)
    for kind, src in cells:
        src = src.strip("\n")
        nb.cells.append(new_markdown_cell(src) if kind == "md" else new_code_cell(src))
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{i:02d}"
    atomic_write_text(path, nbformat.writes(nb) + "\n")
