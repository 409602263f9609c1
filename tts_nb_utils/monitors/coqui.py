"""The Coqui trainer adapter: the only module besides ``schedules`` lookups that imports ``trainer``.

"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any


@contextlib.contextmanager
def quiet_coqui_console(level: int = 30) -> Iterator[None]:
    """Silence the Coqui trainer's console output below ``level`` (default WARNING) during the block.

    Only the ``trainer`` logger's console handlers are raised; its log file (``trainer_0_log.txt``, which
    :func:`read_coqui_lr_log` reads) keeps every line. Levels are restored afterwards, and the log-file
    handlers each ``Trainer`` adds during the block are closed, so several runs in one process do not write
    into each other's log files.
    """
    import logging

    with contextlib.suppress(ImportError):
        import trainer  # noqa: F401 - sets up the "trainer" logger and its console handler
    log = logging.getLogger("trainer")
    before = list(log.handlers)
    saved = [(h, h.level) for h in before if not isinstance(h, logging.FileHandler)]
    for h, _ in saved:
        h.setLevel(level)
    try:
        yield
    finally:
        for h, old in saved:
            h.setLevel(old)
        for h in [h for h in log.handlers if h not in before and isinstance(h, logging.FileHandler)]:
            log.removeHandler(h)
            h.close()


def coqui_epoch_step_callbacks() -> dict[str, Callable[[Any], None]]:
    """Callbacks for ``trainer.Trainer(..., callbacks=...)`` that make per-epoch scheduler stepping happen.

    In coqui-tts-trainer 0.4.0, with a single optimizer and ``scheduler_after_epoch=True``, the scheduler is
    never stepped: ``optimize()`` records the stepped optimizer as index ``None`` while ``train_epoch()``
    looks for index ``0``. This ``on_train_epoch_end`` callback (it runs just before that check) records index
    0 as well when ``None`` was recorded. On a trainer without the bug it changes nothing.
    """

    def on_train_epoch_end(trainer: Any) -> None:
        stepped = getattr(trainer, "_stepped_optimizers", None)
        if isinstance(stepped, set) and None in stepped:
            stepped.add(0)

    return {"on_train_epoch_end": on_train_epoch_end}
