"""Applio's training launch, in miniature (notebook 07): the training script ``rvc/train/train.py`` and the
``core.py`` function that starts it, as in 3.2.4 (the same from 3.2.1 to 3.6.2; citations in notebook 07).

``python -m tts_nb_utils.demos.nb06_rvc.train_324 EXP_DIR EPOCHS DEVICE SEED [strict]``. As upstream:

1. the width of the model's input layer comes from ``EXP_DIR/config.json`` (``model.text_enc_hidden_dim``),
   the data from ``EXP_DIR/filelist.txt``, whatever width the feature files have (train.py:78-83, 358-365);
2. ``main`` trains in a child process (``mp.Process(target=run)``) and only ``join()``s it (train.py:141-164):
   a child that dies of an exception prints its traceback, and the script still exits 0;
3. :func:`launch` runs the script with ``subprocess.run``, ignores the return code and returns
   "Model <name> trained successfully." (core.py:377-379).

Scaled down: one child on one device, no DDP, the tiny model of :mod:`.pipeline`; the child is forked where
the platform allows (upstream spawns it, a second interpreter start) - ``join()`` hides its exit code either
way. ``strict`` (ours) makes the script exit with the child's exit code; ``launch(read_return_code=True)``
answers as core.py does from 3.6.3.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import subprocess
import sys
import time
from pathlib import Path

from tts_nb_utils.demos.nb06_rvc.pipeline import TrainResult, train
from tts_nb_utils.device import configure_threads


def run(exp_dir: str, epochs: int, device: str, seed: int = 0) -> TrainResult:
    """The child: read the config and the file list, train, print Applio-style epoch lines."""
    configure_threads("auto")  # one thread on a small machine, as the notebooks' kernels
    exp = Path(exp_dir)
    width = json.loads((exp / "config.json").read_text())["model"]["text_enc_hidden_dim"]
    lines = [ln for ln in (exp / "filelist.txt").read_text().splitlines() if ln.strip()]
    print("Starting training...", flush=True)

    def epoch_line(epoch, result):
        print(f"{exp.name} | epoch={epoch} | step={result.steps} | training_speed={result.epoch_seconds[-1]:.2f}s",
              flush=True)

    result = train(lines, epochs, device, feature_dim=width, on_epoch=epoch_line, seed=seed)
    print(f"Training has been successfully completed with {epochs} epoch, {result.steps} steps.", flush=True)
    return result


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    exp_dir, epochs, device, seed, strict = argv[0], int(argv[1]), argv[2], int(argv[3]), argv[4:] == ["strict"]
    context = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    child = context.Process(target=run, args=(exp_dir, epochs, device, seed))
    child.start()
    child.join()  # upstream stops here: the child's exit code is never read
    return child.exitcode if strict and child.exitcode else 0


def launch(exp_dir: str | Path, epochs: int, device: str = "cpu", strict: bool = False,
           read_return_code: bool = False, seed: int = 0) -> tuple[str, subprocess.CompletedProcess, float]:
    """Start the script as core.py does; returns (core.py's message, the finished process, seconds).
    ``read_return_code``: the check core.py makes from 3.6.3 ("Training failed for model ..." on a non-zero
    code). ``seed`` seeds the model and the batch order (upstream: ``config.train.seed``, train.py:320)."""
    exp_dir = Path(exp_dir)
    command = [sys.executable, "-m", "tts_nb_utils.demos.nb06_rvc.train_324", str(exp_dir), str(epochs), device,
               str(seed)] + (["strict"] if strict else [])
    start = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, timeout=600)
    seconds = time.perf_counter() - start
    if read_return_code and proc.returncode != 0:
        return f"Training failed for model {exp_dir.name}. Please check the console logs for more details.", proc, seconds
    return f"Model {exp_dir.name} trained successfully.", proc, seconds


if __name__ == "__main__":
    sys.exit(main())
