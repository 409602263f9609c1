"""Load checkpoints without running pickled code: GPT-SoVITS G_/D_ files and exported weights (notebook 02,
``tts-nb scan-checkpoints``, the doctor).

torch's ``weights_only`` unpickler admits tensors, dicts, ordered dicts, lists, strings and numbers, and refuses
every other global; GPT-SoVITS's exported weights (``process_ckpt.savee``, ``process_ckpt.py:41-60`` at
``48b1a01``) also hold the training config, a ``utils.HParams`` object (``utils.py:324-353``). We admit that one
name, and build our own :class:`ConfigStandIn` from it: a plain attribute bag, so no upstream code is imported or
run. Anything else (``os.system``, a model class) is still refused.

Exported weights come in two byte layouts: v1/v2 files are plain ``torch.save`` zip archives (``"PK"`` first);
v3/v4 LoRA and v2Pro/v2ProPlus files have their first two bytes replaced by a version code (``my_save2``,
``process_ckpt.py:22-38``; the codes are listed at ``:63-80``), which upstream turns back into ``"PK"`` before
loading (``load_sovits_new``, ``:129-138``). :func:`load_checkpoint_safely` does the same in memory.

Zip-format files are memory-mapped (``mmap=True``): a scan touches every tensor once, and the pages come from the
OS cache instead of a copy.
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

#: first two bytes of an exported SoVITS weight -> model version (``process_ckpt.py:22-27, 63-80``)
SOVITS_HEADERS = {b"00": "v1", b"01": "v2", b"02": "v3", b"03": "v3 LoRA", b"04": "v4 LoRA", b"05": "v2Pro",
                  b"06": "v2ProPlus"}
#: the module paths under which upstream's config class gets pickled (``s2_train.py`` imports ``utils`` from
#: ``GPT_SoVITS/``; code run from the repository root sees it as ``GPT_SoVITS.utils``)
CONFIG_CLASSES = ("utils.HParams", "GPT_SoVITS.utils.HParams")


class ConfigStandIn:
    """What an upstream config object (``utils.HParams``) becomes here: its attributes, nothing else.
    ``cfg.train.learning_rate`` and ``cfg["train"]`` both work, as upstream's."""

    def __getitem__(self, key: str) -> Any:
        return self.__dict__[key]

    def __contains__(self, key: str) -> bool:
        return key in self.__dict__

    def get(self, key: str, default: Any = None) -> Any:
        return self.__dict__.get(key, default)

    def to_dict(self) -> dict[str, Any]:
        return {k: v.to_dict() if isinstance(v, ConfigStandIn) else v for k, v in self.__dict__.items()}

    def __repr__(self) -> str:
        return f"ConfigStandIn({self.__dict__!r})"


def _stand_ins() -> list[type]:
    """One subclass per upstream name: torch's allowlist matches a class by ``module.qualname``."""
    out = []
    for full in CONFIG_CLASSES:
        module, name = full.rsplit(".", 1)
        out.append(type(name, (ConfigStandIn,), {"__module__": module, "__qualname__": name}))
    return out


_STAND_INS = _stand_ins()


@contextlib.contextmanager
def _admit_config() -> Iterator[None]:
    with torch.serialization.safe_globals(_STAND_INS):
        yield


def sovits_header(path: str | os.PathLike) -> str | None:
    """The model version an exported weight's first two bytes name (``"v2Pro"``, ``"v4 LoRA"``), or None for a
    plain torch file."""
    with open(path, "rb") as f:
        return SOVITS_HEADERS.get(f.read(2))


def load_checkpoint_safely(path: str | os.PathLike, trust: bool = False) -> tuple[Any, str | None]:
    """``(data, header)``: the file's contents loaded on the CPU with the restricted unpickler, and the version
    its header names (None for a plain torch file). ``trust=True`` is torch's full unpickler (it runs whatever
    the file says: only for files you made). Raises what torch raises for a file it cannot read."""
    path = Path(path)
    header = sovits_header(path)
    if trust:
        source: Any = _with_pk(path) if header else path
        return torch.load(source, map_location="cpu", weights_only=False), header
    with _admit_config():
        if header:
            return torch.load(_with_pk(path), map_location="cpu", weights_only=True), header
        try:
            return torch.load(path, map_location="cpu", weights_only=True, mmap=True), None
        except RuntimeError as e:  # a legacy (non-zip) torch file cannot be memory-mapped
            if "mmap" not in str(e):
                raise
            return torch.load(path, map_location="cpu", weights_only=True), None


def _with_pk(path: Path) -> io.BytesIO:
    data = path.read_bytes()
    return io.BytesIO(b"PK" + data[2:])
