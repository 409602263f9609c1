"""Read what the Coqui trainer logged: the learning rate it really used, per ``GLOBAL_STEP`` (notebook 04).

The trainer writes ``trainer_0_log.txt`` in the run folder; every ``print_step`` steps it prints
``GLOBAL_STEP: N`` and ``| > current_lr: V``. No Coqui import needed to read a log.
"""

from __future__ import annotations

import re
from pathlib import Path

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_GLOBAL = re.compile(r"GLOBAL_STEP:\s*(\d+)")
_LR = re.compile(r"\|\s*>\s*(current_lr(?:_\d+)?):\s*([-+0-9.eE]+)")


_LR = re.compile(r"\|\s*>\s*(current_lr(?:_\d+)?):\s*([-+0-9.eE]+)")
_GLOBAL = re.compile(r"GLOBAL_STEP:\s*(\d+)")
def read_coqui_lr_log(path: str | Path, key: str = "current_lr") -> list[tuple[int, float]]:
    """``[(global_step, lr), ...]`` from a Coqui trainer log (``trainer_0_log.txt`` in the run folder).

    The trainer prints ``GLOBAL_STEP: N`` and ``| > current_lr: V`` every ``print_step`` steps, the LR as it
    was before that step's optimizer update. Use ``key="current_lr_1"`` for a second optimizer. Raises
    FileNotFoundError naming the file; returns [] when the log has no such lines.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Coqui trainer log {path} not found: it is trainer_0_log.txt in the run folder")
    out: list[tuple[int, float]] = []
    step: int | None = None
    for line in _ANSI.sub("", path.read_text(encoding="utf-8", errors="replace")).splitlines():
        if (m := _GLOBAL.search(line)) is not None:
            step = int(m.group(1))
        elif step is not None and (m := _LR.search(line)) is not None and m.group(1) == key:
            out.append((step, float(m.group(2))))
            step = None
    return out
