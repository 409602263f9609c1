"""Console text for notebooks 06 and 07: long lines (errors naming paths and URLs, monitor messages) wrapped,
never cut, so a learner reads the whole message."""

from __future__ import annotations

from ...io import wrap_text

WIDTH = 110


def wrap(text: str, width: int = WIDTH) -> str:
    """Every line of ``text`` wrapped at ``width`` characters; continuation lines indented by four spaces.
    Words (paths, URLs) are never split."""
    return wrap_text(text, width)
