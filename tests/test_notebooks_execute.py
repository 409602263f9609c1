"""Execute every notebook with papermill on the bundled data; a failure names the notebook and the cell."""

from __future__ import annotations

import pytest

from tts_nb_utils.runner.papermill import discover, run_notebook

NOTEBOOKS = discover()


@pytest.mark.notebook
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_executes(path, tmp_path):
    # Per-cell limit: default cells take seconds, so a hung kernel fails in minutes, not at CI's deadline.
    result = run_notebook(path, tmp_path, timeout=300)
    if not result.ok:
        e = result.error
        pytest.fail(
            f"{path.name} failed in cell {e['cell_index']} ({e['cell_first_line']!r}): "
            f"{e['exception']}: {e['message']}\nexecuted copy: {result.output}",
            pytrace=False,
        )
