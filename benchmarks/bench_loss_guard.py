"""What the zero-loss tools cost: the loss-term guard (MonitorCallback(LossTermGuard)) and per-term logging per training step, and check-config per file.

Runs the toy DiffSinger-shaped variance task (notebook 03) with the real Lightning Trainer on the CPU, one
thread, for STEPS steps in each setting, and loads + checks the bundled 4-file config chain many times.
Prints milliseconds per step / per check and the ratios to the plain run. Takes well under a minute.

    .venv/bin/python benchmarks/bench_loss_guard.py
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tts_nb_utils.demos.nb03_variance_task import (
    ToyVarianceTask,
    make_loader,
    make_trainer,
    make_variance_data,
)  # noqa: E402
from tts_nb_utils.monitors.lightning import MonitorCallback, loss_loggers  # noqa: E402
from tts_nb_utils.monitors.loss_terms import LossTermGuard  # noqa: E402
from tts_nb_utils.runner.paths import data_dir  # noqa: E402
from tts_nb_utils.upstream.diffsinger import load_config  # noqa: E402
from tts_nb_utils.upstream.diffsinger_run import check_run  # noqa: E402

STEPS = 300
REPEATS = 3
CHECKS = 300


def run(config, data, guard: bool, loggers: str, tmp: Path, seed: int) -> float:
    """Seconds per training step of one run."""
    torch.manual_seed(seed)
    task = ToyVarianceTask(config)
    lg = False if loggers == "none" else loss_loggers(tmp / f"{loggers}{seed}", tensorboard=(loggers == "csv+tb"))
    trainer = make_trainer(STEPS, str(tmp), "cpu", callbacks=[MonitorCallback(LossTermGuard(config))] if guard else [], loggers=lg)
    loader = make_loader(data, 16, seed=seed)
    start = time.perf_counter()
    trainer.fit(task, loader)
    return (time.perf_counter() - start) / STEPS


def main() -> None:
    torch.set_num_threads(1)
    root = data_dir() / "diffsinger"
    config = load_config(root / "fixed_variance.yaml", root=root)
    data = make_variance_data(seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        settings = [(False, "none"), (True, "none"), (True, "csv"), (True, "csv+tb")]
        times: dict[tuple[bool, str], list[float]] = {s: [] for s in settings}
        for r in range(REPEATS):  # interleaved, so drifting load from other jobs hits every setting alike
            for g, lg in settings:
                times[(g, lg)].append(run(config, data, g, lg, Path(tmp), r))
        results = {s: min(t) for s, t in times.items()}
    base = results[(False, "none")]
    print(f"toy variance task, {STEPS} steps, best of {REPEATS}, 1 CPU thread (includes Trainer start-up)")
    for (guard, lg), sec in results.items():
        label = f"guard={'on' if guard else 'off'}, loggers={lg}"
        print(f"  {label:<30} {sec * 1e3:7.2f} ms/step  x{sec / base:5.2f}")

    per_check = []
    for _ in range(CHECKS):
        start = time.perf_counter()
        check_run(root / "broken_misspelt.yaml", root=root)
        per_check.append(time.perf_counter() - start)
    print(f"check-config (load 4-file chain + check): median {statistics.median(per_check) * 1e3:.2f} ms "
          f"over {CHECKS} runs")


if __name__ == "__main__":
    main()
