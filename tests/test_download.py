"""cached_download against a real HTTP server on 127.0.0.1 (tts_nb_utils.demos.nb06_rvc.localhub) that counts requests."""

from __future__ import annotations

import multiprocessing
import threading

import pytest

from tts_nb_utils.demos.nb06_rvc.localhub import LocalHub, deterministic_bytes, sha256_bytes
from tts_nb_utils.download import (
    ChecksumError,
    DownloadError,
    OfflineError,
    cache_status,
    cached_download,
    cached_download_folder,
    sha256_file,
    sidecar_path,
)

PAYLOAD = deterministic_bytes(300_000, seed=1)
SHA = sha256_bytes(PAYLOAD)


@pytest.fixture
def hub(monkeypatch):
    monkeypatch.delenv("TTS_NB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    with LocalHub({"/models/embedder.bin": PAYLOAD}, slow_seconds=1.5) as h:
        yield h


def _leftovers(folder):
    """Files other than the lock file: temporary .part files must never remain."""
    return sorted(p.name for p in folder.iterdir() if not p.name.endswith(".lock"))


@pytest.mark.parametrize("sha", [SHA, None])
def test_two_calls_make_one_request(hub, tmp_path, sha):
    url = hub.url("models/embedder.bin")
    a = cached_download(url, tmp_path, sha256=sha, progress=False)
    b = cached_download(url, tmp_path, sha256=sha, progress=False)
    assert a == b == tmp_path / "embedder.bin"
    assert a.read_bytes() == PAYLOAD
    assert hub.count("models/embedder.bin") == 1
    assert _leftovers(tmp_path) == [".embedder.bin.cache.json", "embedder.bin"]


def test_filename_argument_and_nested_dest(hub, tmp_path):
    path = cached_download(
        hub.url("models/embedder.bin"), tmp_path / "a" / "b", SHA, filename="x.pt", progress=False
    )
    assert path == tmp_path / "a" / "b" / "x.pt" and sha256_file(path) == SHA


@pytest.mark.parametrize("sha", [SHA, None])
def test_truncated_cache_is_redownloaded(hub, tmp_path, sha):
    url = hub.url("models/embedder.bin")
    path = cached_download(url, tmp_path, sha256=sha, progress=False)
    path.write_bytes(PAYLOAD[:1000])  # what an interrupted non-atomic download leaves
    assert cache_status(path, sha) == "size-mismatch"
    cached_download(url, tmp_path, sha256=sha, progress=False)
    assert path.read_bytes() == PAYLOAD
    assert hub.count() == 2


def test_same_size_corruption_is_detected_with_sha(hub, tmp_path):
    url = hub.url("models/embedder.bin")
    path = cached_download(url, tmp_path, sha256=SHA, progress=False)
    corrupt = bytearray(PAYLOAD)
    corrupt[1234] ^= 0xFF
    path.write_bytes(bytes(corrupt))
    assert cache_status(path, SHA) == "checksum-mismatch"
    cached_download(url, tmp_path, sha256=SHA, progress=False)
    assert path.read_bytes() == PAYLOAD and hub.count() == 2


def test_file_without_sidecar_is_not_trusted(hub, tmp_path):
    (tmp_path / "embedder.bin").write_bytes(
        PAYLOAD[:5000]
    )  # e.g. left by a loader that only checks existence
    assert cache_status(tmp_path / "embedder.bin") == "unverified"
    path = cached_download(hub.url("models/embedder.bin"), tmp_path, progress=False)
    assert path.read_bytes() == PAYLOAD and hub.count() == 1


def test_verified_file_without_sidecar_is_used_when_sha_given(hub, tmp_path):
    (tmp_path / "embedder.bin").write_bytes(PAYLOAD)  # copied in by hand: the sha256 vouches for it
    cached_download(hub.url("models/embedder.bin"), tmp_path, sha256=SHA, progress=False)
    assert hub.count() == 0


def test_bad_checksum_leaves_nothing(hub, tmp_path):
    with pytest.raises(ChecksumError) as e:
        cached_download(hub.url("models/embedder.bin"), tmp_path, sha256="0" * 64, progress=False)
    assert hub.url("models/embedder.bin") in str(e.value) and SHA in str(e.value)
    assert _leftovers(tmp_path) == []


def test_bad_checksum_also_removes_a_stale_bad_copy(hub, tmp_path):
    (tmp_path / "embedder.bin").write_bytes(b"junk")
    with pytest.raises(ChecksumError):
        cached_download(hub.url("models/embedder.bin"), tmp_path, sha256="0" * 64, progress=False)
    assert _leftovers(tmp_path) == []


def test_truncated_response_is_an_error_naming_url(hub, tmp_path):
    hub.set_mode("models/embedder.bin", "truncate")
    url = hub.url("models/embedder.bin")
    with pytest.raises(DownloadError, match="truncated") as e:
        cached_download(url, tmp_path, progress=False)
    assert url in str(e.value) and f"of {len(PAYLOAD)} bytes" in str(e.value)
    assert _leftovers(tmp_path) == []
    hub.set_mode("models/embedder.bin", "ok")
    assert cached_download(url, tmp_path, progress=False).read_bytes() == PAYLOAD


def test_server_error_names_url(hub, tmp_path):
    hub.set_mode("models/embedder.bin", "error")
    url = hub.url("models/embedder.bin")
    with pytest.raises(DownloadError, match="HTTP 500") as e:
        cached_download(url, tmp_path, progress=False)
    assert url in str(e.value) and _leftovers(tmp_path) == []


def test_missing_file_is_http_404(hub, tmp_path):
    with pytest.raises(DownloadError, match="HTTP 404"):
        cached_download(hub.url("nope.bin"), tmp_path, progress=False)


def test_timeout_names_url(hub, tmp_path):
    hub.set_mode("models/embedder.bin", "slow")
    url = hub.url("models/embedder.bin")
    with pytest.raises(DownloadError, match="timed out") as e:
        cached_download(url, tmp_path, timeout=0.3, progress=False)
    assert url in str(e.value) and _leftovers(tmp_path) == []


def test_unreachable_host_names_url(tmp_path, monkeypatch):
    monkeypatch.delenv("TTS_NB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    with LocalHub() as h:
        url = h.url("x.bin")
    with pytest.raises(DownloadError) as e:  # the server is closed: connection refused
        cached_download(url, tmp_path, timeout=2, progress=False)
    assert url in str(e.value)


@pytest.mark.parametrize("var", ["TTS_NB_OFFLINE", "HF_HUB_OFFLINE"])
def test_offline_mode(hub, tmp_path, monkeypatch, var):
    url = hub.url("models/embedder.bin")
    monkeypatch.setenv(var, "1")
    with pytest.raises(OfflineError, match=var) as e:
        cached_download(url, tmp_path, sha256=SHA, progress=False)
    assert url in str(e.value) and hub.count() == 0
    monkeypatch.delenv(var)
    cached_download(url, tmp_path, sha256=SHA, progress=False)
    monkeypatch.setenv(var, "yes")
    assert cached_download(url, tmp_path, sha256=SHA, progress=False).read_bytes() == PAYLOAD
    assert hub.count() == 1


def test_offline_variable_with_unknown_value_is_an_error(hub, tmp_path, monkeypatch):
    monkeypatch.setenv("TTS_NB_OFFLINE", "perhaps")
    with pytest.raises(ValueError, match="TTS_NB_OFFLINE='perhaps'"):
        cached_download(hub.url("models/embedder.bin"), tmp_path, progress=False)


def test_threads_download_once(hub, tmp_path):
    hub.set_mode("models/embedder.bin", "ok", delay=0.3)
    url = hub.url("models/embedder.bin")
    results, errors = [], []

    def fetch():
        try:
            results.append(cached_download(url, tmp_path, SHA, progress=False))
        except Exception as e:  # noqa: BLE001 - collected and asserted below
            errors.append(e)

    threads = [threading.Thread(target=fetch) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    assert not errors and len(results) == 4
    assert hub.count() == 1


def _fetch_in_process(url, dest, sha, barrier, queue):
    barrier.wait(timeout=20)
    try:
        queue.put(str(cached_download(url, dest, sha, progress=False)))
    except Exception as e:  # noqa: BLE001 - reported to the parent
        queue.put(f"error: {e}")


def test_two_processes_download_once(hub, tmp_path):
    hub.set_mode("models/embedder.bin", "ok", delay=0.5)  # keep the first download in flight
    url = hub.url("models/embedder.bin")
    ctx = multiprocessing.get_context("spawn")
    barrier, queue = ctx.Barrier(2), ctx.Queue()
    procs = [
        ctx.Process(target=_fetch_in_process, args=(url, str(tmp_path), SHA, barrier, queue))
        for _ in range(2)
    ]
    for p in procs:
        p.start()
    outcomes = [queue.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    assert outcomes == [str(tmp_path / "embedder.bin")] * 2, outcomes
    assert hub.count() == 1


def test_folder_variant(hub, tmp_path):
    config = b'{"hidden_size": 8}\n'
    hub.add("repo/tiny/config.json", config)
    hub.add("repo/tiny/weights/model.bin", PAYLOAD)
    files = {"config.json": None, "weights/model.bin": SHA}
    base = hub.url("repo/tiny")
    folder = cached_download_folder(base, tmp_path / "tiny", files, progress=False)
    assert (folder / "config.json").read_bytes() == config
    assert (folder / "weights" / "model.bin").read_bytes() == PAYLOAD
    cached_download_folder(base, tmp_path / "tiny", files, progress=False)
    assert hub.count() == 2  # one per file, none the second time
    (folder / "weights" / "model.bin").unlink()
    cached_download_folder(base, tmp_path / "tiny", list(files), progress=False)
    assert hub.count() == 3  # only the missing file
    with pytest.raises(ValueError, match=r"\.\."):
        cached_download_folder(base, tmp_path / "tiny", ["../escape.bin"], progress=False)


def test_sidecar_records_the_verified_download(hub, tmp_path):
    import json

    path = cached_download(hub.url("models/embedder.bin"), tmp_path, progress=False)
    meta = json.loads(sidecar_path(path).read_text())
    assert meta["size"] == len(PAYLOAD) and meta["sha256"] == SHA and meta["url"].endswith("embedder.bin")
    assert meta["verified"] is True  # the server's Content-Length matched


def test_total_timeout_bounds_a_trickling_transfer(hub, tmp_path):
    import time

    hub.add("/models/trickle.bin", PAYLOAD[:20_000], mode="trickle")  # 64 bytes per 50 ms: about 16 s in all
    start = time.monotonic()
    with pytest.raises(DownloadError, match="took longer than total_timeout=1 s"):
        cached_download(hub.url("models/trickle.bin"), tmp_path, timeout=1.0, total_timeout=1.0, progress=False)
    assert time.monotonic() - start < 5 and _leftovers(tmp_path) == []


def test_a_body_without_length_or_checksum_is_saved_but_never_called_verified(hub, tmp_path):
    import json

    hub.add("/models/nolength.bin", PAYLOAD, mode="nolength")
    with pytest.warns(UserWarning, match="no Content-Length and no sha256"):
        path = cached_download(hub.url("models/nolength.bin"), tmp_path, progress=False)
    assert json.loads(sidecar_path(path).read_text())["verified"] is False
    with pytest.raises(ChecksumError):  # with the checksum, the short body is refused and nothing is kept
        cached_download(hub.url("models/nolength.bin"), tmp_path / "with_sha", SHA, progress=False)
    assert _leftovers(tmp_path / "with_sha") == []


def test_a_given_sha256_is_checked_even_when_size_and_mtime_were_restored(hub, tmp_path):
    import os

    path = cached_download(hub.url("models/embedder.bin"), tmp_path, SHA, progress=False)
    st = path.stat()
    data = bytearray(path.read_bytes())
    data[1000] ^= 0xFF  # same size, one byte flipped, modification time put back
    path.write_bytes(bytes(data))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert cache_status(path, SHA, verify="fast") == "checksum-mismatch"
    hub.reset_counts()
    assert cached_download(hub.url("models/embedder.bin"), tmp_path, SHA, progress=False).read_bytes() == PAYLOAD
    assert hub.count() == 1


def test_a_killed_downloads_part_files_are_removed_by_the_next_download(hub, tmp_path):
    orphan = tmp_path / ".embedder.abc123.part.bin"
    orphan.write_bytes(b"half")
    cached_download(hub.url("models/embedder.bin"), tmp_path, SHA, progress=False)
    assert _leftovers(tmp_path) == sorted(["embedder.bin", ".embedder.bin.cache.json"])
