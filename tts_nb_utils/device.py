"""Device selection, precision names and their support on the device, and seeding.

Every notebook resolves ``DEVICE = "auto"`` and seeds with it; notebook 00 shows :func:`amp_support` and
:func:`environment_report`.

Precision has one vocabulary (notebook 02's tiny VITS, notebook 05's Dia loop and memory planner):
Lightning's names (:data:`PRECISIONS`), the short aliases ``"fp32"``, ``"fp16"``, ``"bf16"``, and ``"auto"``,
which :func:`resolve_precision` turns into a name for the device. Support for bf16/fp16 autocast is measured
by running a tiny matmul under ``torch.autocast`` on the device, not assumed from the device type.
"""

from __future__ import annotations

import os
import platform
import random
import sys
from dataclasses import asdict, dataclass

import numpy as np
import torch

from .parallel import THREADS_ENV, auto_threads


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """Turn ``"auto"`` into the best available device (cuda, then mps, then cpu); check explicit requests.

    Raises ValueError for a string torch does not know, and RuntimeError when the requested backend
    is not available here (with what to use instead).
    """
    if isinstance(device, torch.device):
        dev = device
    else:
        name = str(device).strip().lower()
        if name == "auto":
            if torch.cuda.is_available():
                return torch.device("cuda")
            if _mps_available():
                return torch.device("mps")
            return torch.device("cpu")
        try:
            dev = torch.device(name)
        except RuntimeError as e:
            raise ValueError(
                f"DEVICE={device!r} is not a device torch knows ({e}). Use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'."
            ) from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError(
                f"DEVICE={device!r} but torch.cuda.is_available() is False (torch {torch.__version__}, "
                f"CUDA build: {torch.version.cuda}). Use DEVICE='auto' or 'cpu', or install a CUDA build of torch."
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise RuntimeError(
                f"DEVICE={device!r} but only {torch.cuda.device_count()} CUDA device(s) are visible."
            )
    elif dev.type == "mps" and not _mps_available():
        raise RuntimeError(f"DEVICE={device!r} but the MPS backend is not available. Use DEVICE='auto' or 'cpu'.")
    return dev


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def autocast_supported(device: str | torch.device, dtype: torch.dtype) -> bool:
    """Whether ``torch.autocast`` with ``dtype`` actually runs a matmul in that dtype on ``device``."""
    dev = resolve_device(device)
    try:
        with torch.autocast(device_type=dev.type, dtype=dtype):
            a = torch.ones(4, 4, device=dev)
            out = a @ a
        return out.dtype == dtype and bool(torch.isfinite(out.float()).all())
    except (RuntimeError, TypeError, AssertionError):
        return False


def amp_support(device: str | torch.device = "auto") -> dict[str, bool]:
    """``{"bf16": ..., "fp16": ...}``: which autocast dtypes work on the device."""
    return {
        "bf16": autocast_supported(device, torch.bfloat16),
        "fp16": autocast_supported(device, torch.float16),
    }


#: Lightning's precision names: float32 everything; float32 weights with float16 autocast (and a GradScaler);
#: float32 weights with bfloat16 autocast; bfloat16 weights, gradients and optimizer states.
PRECISIONS = ("32-true", "16-mixed", "bf16-mixed", "bf16-true")
#: The precisions of a loop that keeps float32 weights: no autocast, or autocast in 16 bits.
AUTOCAST_PRECISIONS = ("32-true", "16-mixed", "bf16-mixed")
#: Short names accepted wherever a precision is asked for (notebook parameters such as ``PRECISION = "fp16"``).
PRECISION_ALIASES = {"fp32": "32-true", "fp16": "16-mixed", "bf16": "bf16-mixed"}
_AMP_KEY = {"16-mixed": "fp16", "bf16-mixed": "bf16", "bf16-true": "bf16"}  # amp_support's key per precision


def canonical_precision(name: str, allowed: tuple[str, ...] = PRECISIONS) -> str:
    """The canonical name of ``name`` (one of ``allowed``, or an alias of one); ``"auto"`` needs a device,
    see :func:`resolve_precision`. Raises ValueError naming the value and the names allowed."""
    key = PRECISION_ALIASES.get(str(name).strip().lower(), str(name).strip().lower())
    if key not in allowed:
        aliases = ", ".join(repr(a) for a, c in PRECISION_ALIASES.items() if c in allowed)
        raise ValueError(f"precision={name!r}: use one of {', '.join(map(repr, allowed))} (Lightning's names) "
                         f"or an alias ({aliases})")
    return key


def resolve_precision(name: str, device: str | torch.device = "auto",
                      allowed: tuple[str, ...] = PRECISIONS) -> str:
    """The canonical precision for ``name`` on ``device``, checked with :func:`amp_support`.

    ``"auto"``: ``"bf16-mixed"`` on a CUDA device whose autocast runs bfloat16, else ``"16-mixed"`` on CUDA,
    else ``"32-true"``. Raises ValueError for an unknown name (naming the allowed ones) and for a 16-bit
    precision the device cannot run.
    """
    dev = resolve_device(device)
    if str(name).strip().lower() == "auto":
        if dev.type != "cuda":
            return "32-true"
        return "bf16-mixed" if amp_support(dev)["bf16"] else "16-mixed"
    precision = canonical_precision(name, allowed)
    if precision in _AMP_KEY and not amp_support(dev)[_AMP_KEY[precision]]:
        raise ValueError(f"precision={name!r} ({precision}): {_AMP_KEY[precision]} autocast does not run on "
                         f"{dev} (torch {torch.__version__}); use 'auto' or '32-true'")
    return precision


def autocast_dtype(precision: str) -> torch.dtype | None:
    """The dtype ``torch.autocast`` runs in for ``precision`` (any name or alias), or None for no autocast."""
    return {"16-mixed": torch.float16, "bf16-mixed": torch.bfloat16}.get(canonical_precision(precision))


def param_dtype(precision: str) -> torch.dtype:
    """The dtype parameters, gradients and optimizer states are stored in: bfloat16 for ``"bf16-true"``."""
    return torch.bfloat16 if canonical_precision(precision) == "bf16-true" else torch.float32


def uses_grad_scaler(precision: str) -> bool:
    """Whether ``precision`` needs a GradScaler: float16 autocast (small gradients underflow in float16)."""
    return canonical_precision(precision) == "16-mixed"


def seed_everything(seed: int) -> int:
    """Seed Python's ``random``, NumPy and torch (all devices); returns the seed."""
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    return seed


@dataclass
class EnvironmentReport:
    python: str
    platform: str
    torch: str
    cuda: str | None
    device: str
    gpu_name: str | None
    gpu_memory_gib: float | None
    bf16_autocast: bool
    fp16_autocast: bool
    cpu_threads: int

    def as_dict(self) -> dict:
        return asdict(self)


def environment_report(device: str | torch.device = "auto") -> EnvironmentReport:
    """Python, torch and CUDA versions, the resolved device, GPU name and memory, and autocast support."""
    dev = resolve_device(device)
    gpu_name = gpu_mem = None
    if dev.type == "cuda":
        props = torch.cuda.get_device_properties(dev)
        gpu_name, gpu_mem = props.name, round(props.total_memory / 2**30, 1)
    amp = amp_support(dev)
    return EnvironmentReport(
        python=sys.version.split()[0],
        platform=platform.platform(),
        torch=torch.__version__,
        cuda=torch.version.cuda,
        device=str(dev),
        gpu_name=gpu_name,
        gpu_memory_gib=gpu_mem,
        bf16_autocast=amp["bf16"],
        fp16_autocast=amp["fp16"],
        cpu_threads=torch.get_num_threads(),
    )


def configure_threads(threads: int | str = "auto") -> int:
    """Set torch's CPU threads for a notebook kernel and return the number set.

    ``"auto"``: ``TTS_NB_THREADS`` when set (``tts-nb run --jobs`` sets each kernel's share); else
    :func:`tts_nb_utils.parallel.auto_threads`: on a machine with at most 4 cores, 1 thread (the notebooks'
    models are small, and two threads that share two cores with other work wait on each other: beside two busy
    processes notebook 02's training step took 16.9 ms with one thread and 39.2 ms with two, quiet 8.5 and
    10.1 ms, ``benchmarks/bench_threads.py``); on a larger one, half the cores, at most 4. An int sets it (at
    least 1).
    Raises ValueError naming the value for anything else.
    """
    if threads == "auto":
        env = os.environ.get(THREADS_ENV, "").strip()
        threads = env or auto_threads()
    try:
        n = int(threads)
    except (TypeError, ValueError):
        raise ValueError(f"THREADS={threads!r}: use 'auto' or a whole number of CPU threads (1 or more)") from None
    if n < 1:
        raise ValueError(f"THREADS={threads!r}: use 'auto' or a whole number of CPU threads (1 or more)")
    torch.set_num_threads(n)
    return n
