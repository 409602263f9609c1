"""Worker processes for the batch commands (``tts-nb slice``, ``prepare``, ``validate``; notebook 01's folders).

:func:`default_jobs` is the ``--jobs`` default: the cores this process may use, at most :data:`MAX_JOBS` (the
same cap as the notebooks' torch threads, ``device.configure_threads``), or ``TTS_NB_JOBS`` when set.
:func:`ordered_map` runs a module-level function over tasks in a process pool, results in task order, with a
progress bar; its workers keep freed memory (:func:`keep_freed_memory`). :func:`auto_threads` is the notebook
kernels' torch-thread policy. A low layer: imports nothing else from the package but ``io``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from .io import show_progress

T = TypeVar("T")
MAX_JOBS = 4
JOBS_ENV = "TTS_NB_JOBS"
#: torch CPU threads of a notebook kernel (read by ``device.configure_threads``; set per kernel by parallel runs).
THREADS_ENV = "TTS_NB_THREADS"


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


def default_jobs() -> int:
    """``TTS_NB_JOBS`` when it is a whole number of 1 or more, else ``min(usable cores, MAX_JOBS)``."""
    env = os.environ.get(JOBS_ENV, "").strip()
    if env.isdigit() and int(env) >= 1:
        return int(env)
    return min(usable_cores(), MAX_JOBS)


def auto_threads(cores: int | None = None, processes: int = 1) -> int:
    """Torch threads for each of ``processes`` notebook kernels sharing ``cores`` (default: this machine's
    ``os.cpu_count()``): 1 on a machine with at most 4 cores, else half the cores, at most :data:`MAX_JOBS`;
    never more than the kernel's share of the cores. Why 1 on small machines: ``device.configure_threads``."""
    cores = max(1, cores or os.cpu_count() or 1)
    alone = 1 if cores <= 4 else min(MAX_JOBS, cores // 2)
    return max(1, min(alone, cores // max(1, processes)))


def keep_freed_memory(limit_mb: int = 32) -> None:
    """glibc's malloc only: arrays under ``limit_mb`` come from the heap, and freed memory stays in the process
    instead of going back to the OS, so the next file's arrays reuse the last one's pages. Without it a worker
    faulted every page of every array in again (each worker started in that mode after the fork: 0.45 s of
    system time of 2.4 s for 60 one-minute takes on 2 workers, issue 29). For processes that end with their
    batch (the pool's workers, ``tts-nb validate``); a no-op where ``mallopt`` is missing (macOS, Windows)."""
    try:
        import ctypes

        mallopt = ctypes.CDLL(None).mallopt
    except Exception:  # noqa: BLE001 - no C library to ask (Windows), or not glibc
        return
    limit = int(limit_mb) << 20
    mallopt(-3, limit)  # M_MMAP_THRESHOLD: fixed, so no longer adjusted (and reset) by each free
    mallopt(-1, 2 * limit)  # M_TRIM_THRESHOLD: free memory at the heap's top kept up to this


def ordered_map(fn: Callable[[Any], T], tasks: Sequence[Any], jobs: int = 1, desc: str = "",
                progress: bool = True, chunksize: int = 1) -> list[T]:
    """``[fn(t) for t in tasks]`` in up to ``jobs`` processes (``fn`` must be a module-level function).

    One process (no pool) when ``jobs`` is 1 or there is one task. Results keep the order of ``tasks``; an
    exception in ``fn`` is raised here, as in the loop.
    """
    def bar(it):
        if not show_progress(progress):  # no tqdm import at all: tqdm.auto costs a quiet run ~0.1 s of start-up
            return it
        from tqdm.auto import tqdm

        return tqdm(it, total=len(tasks), desc=desc, unit="file")

    workers = min(int(jobs), len(tasks))
    if workers <= 1:
        return [fn(t) for t in bar(tasks)]
    # Imported here: it loads multiprocessing, which a run with one job never needs.
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=workers, initializer=keep_freed_memory) as pool:
        return list(bar(pool.map(fn, tasks, chunksize=max(1, chunksize))))
