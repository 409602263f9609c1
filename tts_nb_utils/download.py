"""A download cache that never downloads twice: files are fetched once, verified, and renamed into place.

Used by notebook 06 (Applio 3.2.1-3.2.2 downloaded its online embedders on every load; the existence check
that replaced it cannot tell whether the file there is the right one). ``cached_download`` returns a cached file without any request when it is present
and verified; otherwise it downloads to a hidden temporary file beside the destination
(``tts_nb_utils.io``), checks the size against Content-Length and the sha256, and renames it into place.

How a cached file is known to be complete, with or without a given sha256: after a verified download a small
sidecar ``.<name>.cache.json`` is written beside the file (after the file itself, atomically) recording its
size, sha256, mtime and URL. A cached file counts as complete only when

* a ``sha256`` is given: the file's sha256 equals it. With ``verify="fast"`` (default) a sidecar that records
  that same sha256 with the file's current size and mtime stands in for re-hashing; ``verify="full"`` always
  re-hashes.
* no ``sha256`` is given: a sidecar exists and the file's size equals the recorded size (and the recorded
  sha256 matches when the mtime changed, or with ``verify="full"``).

A file without a sidecar (put there by an older loader, or half-written by a non-atomic one) is therefore
re-downloaded when no sha256 vouches for it; in offline mode it is returned with a warning instead, because
there is no way to check it.

Concurrent calls for the same file, from threads or processes, serialise on a ``filelock`` lock file
``.<name>.lock`` beside it: the first downloads, the others find the verified file.

Offline mode: ``TTS_NB_OFFLINE=1`` (or Hugging Face's ``HF_HUB_OFFLINE=1``) makes a missing or invalid file
an ``OfflineError`` instead of a request.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath

from filelock import FileLock, Timeout
from tqdm.auto import tqdm

from .io import atomic_path, atomic_write_json, parse_bool, show_progress, stale_parts

OFFLINE_ENV_VARS = ("TTS_NB_OFFLINE", "HF_HUB_OFFLINE")
CHUNK = 1 << 20  # bytes read per iteration
USER_AGENT = "tts-nb-cache/1"


class DownloadError(RuntimeError):
    """A download failed (HTTP error, timeout, truncated body); the message names the URL."""


class ChecksumError(DownloadError):
    """The downloaded bytes do not have the expected sha256; nothing is left at the destination."""


class OfflineError(DownloadError):
    """Offline mode is on and the file is not in the cache (or cannot be verified there)."""


def sha256_file(path: str | os.PathLike, chunk: int = CHUNK) -> str:
    """Hex sha256 of a file, read in ``chunk``-byte pieces."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def offline_mode() -> bool:
    """Whether ``TTS_NB_OFFLINE`` or ``HF_HUB_OFFLINE`` is set to a true value ("1", "true", "yes", "on").

    An unrecognised value is an error naming the variable (never silently online or offline).
    """
    for name in OFFLINE_ENV_VARS:
        value = os.environ.get(name, "").strip()
        if value:

            if parse_bool(value, name=name):
                return True
    return False


def sidecar_path(path: str | os.PathLike) -> Path:
    """Where the cache records what it verified about ``path``: ``.<name>.cache.json`` beside it."""
    path = Path(path)
    return path.with_name(f".{path.name}.cache.json")


def _lock_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.lock")


def _read_sidecar(path: Path) -> dict | None:
    try:
        meta = json.loads(sidecar_path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


def cache_status(path: str | os.PathLike, sha256: str | None = None, verify: str = "fast") -> str:
    """Why a cached file can or cannot be used: ``"ok"``, ``"missing"``, ``"unverified"`` (no sidecar and no
    sha256 given), ``"size-mismatch"`` (truncated or grown since it was verified) or ``"checksum-mismatch"``.

    A ``sha256`` given here is always checked against the file's bytes. Without one, ``verify="fast"`` trusts
    the sidecar when the file's size and modification time are the ones it recorded; ``"full"`` hashes.
    """
    if verify not in ("fast", "full"):
        raise ValueError(f"verify={verify!r}: use 'fast' or 'full'")
    path = Path(path)
    if not path.is_file():
        return "missing"
    st = path.stat()
    meta = _read_sidecar(path)
    expected = sha256.lower() if sha256 else None
    if meta is not None and meta.get("size") != st.st_size:
        return "size-mismatch"
    if expected is None:
        if meta is None or not meta.get("sha256"):
            return "unverified"
        expected = str(meta["sha256"])
    fast_ok = (  # only without a caller's sha256: a given checksum is always checked against the bytes
        verify == "fast"
        and sha256 is None
        and meta is not None
        and meta.get("sha256") == expected
        and meta.get("mtime_ns") == st.st_mtime_ns
    )
    if fast_ok:
        return "ok"
    return "ok" if sha256_file(path) == expected else "checksum-mismatch"


def cached_download(
    url: str,
    dest_dir: str | os.PathLike,
    sha256: str | None = None,
    filename: str | None = None,
    *,
    timeout: float = 30.0,
    total_timeout: float | None = 3600.0,
    verify: str = "fast",
    progress: bool = True,
    lock_timeout: float = 3600.0,
) -> Path:
    """Return ``dest_dir/filename`` (default: the URL's last path part), downloading it only when needed.

    ``sha256``: expected hex digest (recommended; without it, and without a Content-Length from the server, a
    connection closed early cannot be told from a complete file: the sidecar then records ``verified: false``
    and a warning says so); ``timeout``: seconds for connecting and without data; ``total_timeout``: seconds
    for the whole transfer (None: no bound); ``lock_timeout``: seconds to wait for another process
    downloading the same file. Temporary files a killed download left behind are removed.
    Raises ChecksumError (nothing left at the destination), DownloadError (HTTP error, timeout, truncated
    body; names the URL) or OfflineError.
    """
    name = filename or _filename_from_url(url)
    dest = Path(dest_dir) / name
    status = cache_status(dest, sha256, verify)
    if status == "ok":
        return dest
    if offline_mode():
        if status == "unverified":
            warnings.warn(
                f"{dest}: offline mode, using a cached file that cannot be verified (no sha256 given and "
                "no record of a verified download)",
                stacklevel=2,
            )
            return dest
        raise OfflineError(
            f"{dest} is {status} and offline mode is on ({_offline_var()}), so {url} cannot be fetched. "
            "Unset the variable, or put a verified copy there."
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        with FileLock(str(_lock_path(dest)), timeout=lock_timeout):
            # Another thread or process may have finished the download while we waited for the lock.
            status = cache_status(dest, sha256, verify)
            if status == "ok":
                return dest
            for part in stale_parts(dest):  # a killed download's leftovers: no writer can hold the lock now
                part.unlink(missing_ok=True)
            _download_verified(url, dest, sha256, (timeout, total_timeout), progress, stale=status != "missing")
    except Timeout:
        raise DownloadError(
            f"{dest}: waited {lock_timeout:.0f} s for another download of {url} to finish (lock "
            f"{_lock_path(dest)}); if no other process is running, delete the lock file"
        ) from None
    return dest


def cached_download_folder(
    base_url: str,
    dest_dir: str | os.PathLike,
    files: Mapping[str, str | None] | Sequence[str],
    **kwargs,
) -> Path:
    """Fetch a model folder (Hugging Face style: ``config.json`` plus weights) into ``dest_dir``.

    ``files`` maps relative paths (``"config.json"``, ``"weights/model.bin"``) to an optional sha256, or is a
    plain list of paths. Each file goes through ``cached_download`` (same keyword arguments), so a folder
    interrupted half-way resumes with the files still missing. Returns ``dest_dir``.
    """
    items = files.items() if isinstance(files, Mapping) else ((f, None) for f in files)
    dest_dir = Path(dest_dir)
    for rel, digest in items:
        rel_path = PurePosixPath(rel)
        if rel_path.is_absolute() or ".." in rel_path.parts or not rel_path.parts:
            raise ValueError(f"file {rel!r} for {base_url}: use a relative path inside the folder (no '..')")
        url = base_url.rstrip("/") + "/" + rel_path.as_posix()
        cached_download(url, dest_dir / rel_path.parent, digest, rel_path.name, **kwargs)
    return dest_dir


# -- internals ---------------------------------------------------------------------------------------------
def _filename_from_url(url: str) -> str:
    name = PurePosixPath(urllib.request.urlparse(url).path).name
    if not name:
        raise ValueError(f"cannot take a file name from {url!r}; pass filename=")
    return name


def _offline_var() -> str:
    return next((f"{v}={os.environ[v]}" for v in OFFLINE_ENV_VARS if os.environ.get(v, "").strip()), "")


def _download_verified(
    url: str, dest: Path, sha256: str | None, timeouts: tuple[float, float | None], progress: bool, stale: bool
) -> None:
    timeout, total_timeout = timeouts
    deadline = time.monotonic() + total_timeout if total_timeout else None
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    h = hashlib.sha256()
    received = 0
    with atomic_path(dest) as tmp:
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response, open(tmp, "wb") as out:
                length = response.headers.get("Content-Length")
                total = int(length) if length and length.isdigit() else None
                with tqdm(
                    total=total, unit="B", unit_scale=True, desc=dest.name, disable=not show_progress(progress), leave=False
                ) as bar:
                    while block := response.read1(CHUNK):  # whatever arrived: the deadline is checked often
                        out.write(block)
                        h.update(block)
                        received += len(block)
                        bar.update(len(block))
                        if deadline is not None and time.monotonic() > deadline:
                            raise DownloadError(
                                f"{url}: the transfer took longer than total_timeout={total_timeout:g} s "
                                f"({received} bytes so far); try again, or raise total_timeout= for a slow link"
                            )
                out.flush()
                os.fsync(out.fileno())
        except urllib.error.HTTPError as e:
            raise DownloadError(
                f"{url}: HTTP {e.code} {e.reason}; check the URL or try again later"
            ) from None
        except urllib.error.URLError as e:
            why = "timed out" if isinstance(e.reason, TimeoutError) else str(e.reason)
            raise DownloadError(
                f"{url}: {why} (timeout {timeout:g} s); check the address and network"
            ) from None
        except TimeoutError:
            raise DownloadError(
                f"{url}: timed out after {received} bytes (no data for {timeout:g} s); try again or raise timeout="
            ) from None
        except (OSError, http.client.HTTPException) as e:  # connection reset mid-body and the like
            raise DownloadError(f"{url}: connection failed after {received} bytes ({e}); try again") from None
        if total is not None and received != total:
            raise DownloadError(
                f"{url}: truncated download, got {received} of {total} bytes (Content-Length); try again"
            )
        digest = h.hexdigest()
        if sha256 and digest != sha256.lower():
            if stale:  # the cached copy failed the same check: known bad, remove it too
                dest.unlink(missing_ok=True)
                sidecar_path(dest).unlink(missing_ok=True)
            raise ChecksumError(
                f"{url}: sha256 {digest} does not match the expected {sha256.lower()} ({received} bytes); "
                f"nothing was written to {dest}. Check the URL and the expected checksum."
            )
        # A stale sidecar must not vouch for the new file while it is being renamed into place.
        sidecar_path(dest).unlink(missing_ok=True)
    verified = bool(sha256) or total is not None
    if not verified:
        warnings.warn(
            f"{url} sent no Content-Length and no sha256 was given: {received} bytes were saved to {dest}, but "
            "whether the download is complete cannot be checked. Pass sha256= to be sure.",
            stacklevel=3,
        )
    st = dest.stat()
    atomic_write_json(
        sidecar_path(dest),
        {"url": url, "size": st.st_size, "sha256": digest, "mtime_ns": st.st_mtime_ns, "verified": verified},
    )
