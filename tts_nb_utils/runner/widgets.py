"""``interact`` for the notebooks' "Try it yourself" cells: real ipywidgets controls in Jupyter and Colab,
and in a headless run (``tts-nb run``, ``make run``/``make test``, or ``TTS_NB_HEADLESS=1 papermill ...``)
one plain call of the function with the controls' defaults, its output printed into the executed copy.

Why: nobody can move a slider in a headless run, and an ``interact`` cell wraps the call in an Output-widget
capture; we saw papermill wait forever for such a cell's reply (with ipykernel 6.31 and 7.4) while the kernel
sat idle. Every notebook imports ``interact`` from here.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from typing import Any

#: Environment variable that marks a headless run; the notebook runner sets it for the kernels it starts.
HEADLESS_ENV = "TTS_NB_HEADLESS"


def headless() -> bool:
    """True when ``TTS_NB_HEADLESS`` is set to 1/true/yes/on (case-insensitive)."""
    return os.environ.get(HEADLESS_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def _abbrev_value(abbrev: Any) -> Any:
    """The value ipywidgets would start a control at, for an abbreviation without a function default."""
    if hasattr(abbrev, "value"):  # a widget instance or ipywidgets.fixed
        return abbrev.value
    if isinstance(abbrev, dict):
        return next(iter(abbrev.values()))
    if isinstance(abbrev, tuple) and 2 <= len(abbrev) <= 3 and all(isinstance(v, int | float) for v in abbrev):
        lo, hi = abbrev[0], abbrev[1]  # a slider starts in the middle of its range
        mid = lo + (hi - lo) / 2
        return int(mid) if all(isinstance(v, int) for v in abbrev) else mid
    if isinstance(abbrev, list | tuple):
        first = abbrev[0]
        return first[1] if isinstance(first, tuple) and len(first) == 2 else first  # (label, value) pairs
    return abbrev  # bool, str, number: the control starts at that value


def default_kwargs(fn: Callable[..., Any], **controls: Any) -> dict[str, Any]:
    """The keyword arguments ``interact(fn, **controls)`` would first call ``fn`` with.

    A widget's ``.value`` wins; otherwise the function's own default (as ipywidgets does), else the
    abbreviation's starting value (first option of a list, middle of a numeric range).
    """
    params = inspect.signature(fn).parameters
    kwargs = {}
    for name, abbrev in controls.items():
        default = params[name].default if name in params else inspect.Parameter.empty
        if hasattr(abbrev, "value") or default is inspect.Parameter.empty:
            kwargs[name] = _abbrev_value(abbrev)
        else:
            kwargs[name] = default
    return kwargs


def interact(fn: Callable[..., Any], **controls: Any) -> Any:
    """ipywidgets' ``interact`` in a live notebook; one call with the default values in a headless run."""
    if headless():
        kwargs = default_kwargs(fn, **controls)
        shown = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
        if len(shown) > 90:  # output lines stay within a screen's width
            shown = shown[:89] + "…"
        print(f"[headless run: {fn.__name__}({shown})]")  # one short line; the controls need Jupyter or Colab
        return fn(**kwargs)
    from ipywidgets import interact as ipywidgets_interact

    return ipywidgets_interact(fn, **controls)
