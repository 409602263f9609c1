"""Console text for notebooks 06 and 07: long lines (errors naming paths and URLs, monitor messages) wrapped,
never cut, so a learner reads the whole message."""

from __future__ import annotations

import textwrap

WIDTH = 110


def wrap(text: str, width: int = WIDTH) -> str:
    """Every line of ``text`` wrapped at ``width`` characters; continuation lines indented by four spaces.
    Words (paths, URLs) are never split."""
    return "\n".join(
        textwrap.fill(line, width, subsequent_indent="    ", break_long_words=False, break_on_hyphens=False)
        if len(line) > width else line
        for line in text.splitlines()
    )
