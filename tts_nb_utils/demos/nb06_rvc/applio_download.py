"""How Applio 3.2.1-3.2.2 fetched its online embedders, in miniature (notebook 06): our own re-implementation of
the file handling of the ``wget`` package (PyPI ``wget`` 3.2, ``wget.download``), and the two loaders built
on it. Checked against wget 3.2 itself on a local server (same names, same temporary files, same error).

``wget_download(url, out)``:

* downloads into ``<out><8 random characters>.tmp`` with ``urllib.request.urlretrieve``, which raises
  ``ContentTooShortError`` when the body is shorter than its Content-Length; the temporary file stays behind
  and ``out`` is never touched;
* when ``out`` exists, saves ``<name> (N).<ext>`` instead, never overwriting it. wget picks ``N`` by listing
  the *current* folder, so with an absolute ``out`` (Applio's ``os.path.join(now_dir, ...)``) it is always
  ``(1)``, replaced by each later download; run from inside the folder it counts up: ``(2)``, ``(3)``...

``load_embedding_321`` downloads on every call (Applio 3.2.1 and 3.2.2 ``rvc/lib/utils.py:61-65``);
``load_embedding_pr570`` first checks that the file exists (PR 570, merged as a3feeb21, released in 3.2.3).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import urllib.request
from pathlib import Path

import torch

from .embedder import embedder_files
from .localhub import LocalHub
from .text import wrap

#: Where chinese-hubert-large lives on Hugging Face (Applio 3.2.1 ``rvc/lib/utils.py``); served locally here.
LARGE_PATH = "TencentGameMate/chinese-hubert-large/resolve/main/chinese-hubert-large-fairseq-ckpt.pt"


def embedder_hub(seed: int = 0) -> tuple[LocalHub, dict[str, dict[str, bytes]]]:
    """A local hub on 127.0.0.1 serving the tiny ``large`` embedder's weights at :data:`LARGE_PATH`, and both
    tiny embedders as folders under ``tiny/large/`` and ``tiny/base/``; returns it and ``{variant: files}``."""
    payloads = {v: embedder_files(seed, v) for v in ("large", "base")}
    files = {f"/{LARGE_PATH}": payloads["large"]["pytorch_model.bin"]}
    for variant, payload in payloads.items():
        files |= {f"/tiny/{variant}/{name}": data for name, data in payload.items()}
    return LocalHub(files), payloads


def _numbered(path: str) -> str:
    """wget's free name for an existing ``path``: ``name (N).ext``, N one above the highest found in the
    current working folder (not ``path``'s folder: wget's own quirk)."""
    name, ext = path.rsplit(".", 1)
    taken = [0]
    for entry in os.listdir("."):
        stem = entry.rsplit(".", 1)[0]
        if entry.startswith(name) and stem[len(name):].startswith(" (") and stem.endswith(")"):
            number = stem[len(name) + 2 : -1]
            if number.isdigit():
                taken.append(int(number))
    return f"{name} ({max(taken) + 1}).{ext}"


def wget_download(url: str, out: str | os.PathLike) -> str:
    """Download ``url`` the way ``wget.download(url, out=out)`` does; returns the name it saved to."""
    out = os.fspath(out)
    folder, base = os.path.split(out)
    fd, tmp = tempfile.mkstemp(suffix=".tmp", prefix=base, dir=folder or ".")
    os.close(fd)
    os.unlink(tmp)
    urllib.request.urlretrieve(url, tmp)  # ContentTooShortError on a short body; tmp is left behind
    target = _numbered(out) if os.path.exists(out) else out
    shutil.move(tmp, target)
    return target


def load_embedding_321(url: str, model_path: str | os.PathLike) -> dict:
    """Applio 3.2.1: download on every call, then load ``model_path`` (never the new copy). Prints upstream's
    line (``utils.py:64``), wrapped."""
    print(wrap(f"Downloading {url} to {model_path}..."))
    wget_download(url, model_path)
    return torch.load(model_path, map_location="cpu", weights_only=True)


def load_embedding_pr570(url: str, model_path: str | os.PathLike) -> dict:
    """PR 570: download only when ``model_path`` does not exist."""
    if not Path(model_path).exists():
        print(wrap(f"Downloading {url} to {model_path}..."))
        wget_download(url, model_path)
    return torch.load(model_path, map_location="cpu", weights_only=True)
