"""Device selection, mixed-precision support and seeding, shared by every notebook (``DEVICE = "auto"``).

Support for bf16/fp16 autocast is measured by running a tiny matmul under ``torch.autocast`` on the device,
not assumed from the device type.
"""

from __future__ import annotations

import os
import platform
import random
import sys
from dataclasses import asdict, dataclass

import numpy as np
import torch


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
