"""Shared fixtures: the repository root and a builder for small throwaway notebooks."""

from __future__ import annotations

import logging
import sys
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


def _reopen_closed_log_streams() -> None:
    """The Coqui trainer's logger (``trainer.logger``) binds a StreamHandler to ``sys.stderr`` when it is first
    imported; if that happens inside a test with ``capsys``, the stream is closed when the test ends and every later
    trainer run fails writing to it (the trainer turns that into ``sys.exit(1)``). Point such handlers back at the
    real stderr."""
    for handler in logging.getLogger("trainer").handlers:
        if type(handler) is logging.StreamHandler and getattr(handler.stream, "closed", False):
            handler.stream = sys.__stderr__  # not setStream: it flushes the closed stream first


@pytest.fixture(autouse=True)
def _trainer_log_stream():
    _reopen_closed_log_streams()
    yield
    _reopen_closed_log_streams()
