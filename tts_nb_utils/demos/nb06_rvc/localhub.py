"""A stand-in model hub on 127.0.0.1: serves files from memory over real HTTP and counts the requests.

Used by notebook 06 (to show a loader that downloads on every call) and by the download-cache tests. Each file
can misbehave on purpose: ``"truncate"`` (announces the full Content-Length, sends half, closes), ``"error"``
(HTTP 500), ``"slow"`` (sleeps before answering, for timeouts), plus an optional per-file delay that keeps a
healthy download in flight long enough for concurrent callers to collide.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np

#: ok; truncate (half the body, Content-Length of all of it); nolength (no Content-Length, half the body, then
#: close: a short body nothing can detect); trickle (the body 64 bytes at a time, ``trickle_pause`` s apart);
#: error (HTTP 500); slow (waits ``slow_seconds`` before answering).
MODES = ("ok", "truncate", "nolength", "trickle", "error", "slow")


def deterministic_bytes(n: int, seed: int = 0) -> bytes:
    """``n`` pseudo-random bytes, the same for the same ``seed`` (test payloads, fake weights)."""
    return np.random.default_rng(seed).integers(0, 256, size=int(n), dtype=np.uint8).tobytes()


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


@dataclass
class HubFile:
    data: bytes
    mode: str = "ok"
    delay: float = 0.0  # seconds to wait before answering, whatever the mode


class LocalHub:
    """A threaded HTTP server on 127.0.0.1 (ephemeral port) serving ``files`` (``{"/path": bytes}``).

    Use as a context manager (or call ``close()``). ``requests[path]`` counts GET requests per path,
    including ones that failed on purpose. ``slow_seconds`` is how long a ``"slow"`` file sleeps.
    """

    def __init__(self, files: dict[str, bytes] | None = None, slow_seconds: float = 2.0, trickle_pause: float = 0.05):
        self.files: dict[str, HubFile] = {}
        self.requests: Counter[str] = Counter()
        self.slow_seconds, self.trickle_pause = float(slow_seconds), float(trickle_pause)
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._make_handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="localhub", daemon=True
        )
        self._thread.start()
        for path, data in (files or {}).items():
            self.add(path, data)

    # -- content -------------------------------------------------------------------------------------------
    def add(self, path: str, data: bytes, mode: str = "ok", delay: float = 0.0) -> str:
        """Serve ``data`` at ``path``; returns its URL."""
        if mode not in MODES:
            raise ValueError(f"mode {mode!r} for {path!r} is not one of {MODES}")
        path = "/" + path.lstrip("/")
        with self._lock:
            self.files[path] = HubFile(bytes(data), mode, float(delay))
        return self.url(path)

    def set_mode(self, path: str, mode: str, delay: float | None = None) -> None:
        """Change how ``path`` is answered (``"ok"``, ``"truncate"``, ``"error"``, ``"slow"``)."""
        path = "/" + path.lstrip("/")
        if mode not in MODES:
            raise ValueError(f"mode {mode!r} for {path!r} is not one of {MODES}")
        with self._lock:
            self.files[path].mode = mode
            if delay is not None:
                self.files[path].delay = float(delay)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}"

    def count(self, path: str | None = None) -> int:
        """Requests for ``path`` so far, or for all paths."""
        with self._lock:
            return sum(self.requests.values()) if path is None else self.requests["/" + path.lstrip("/")]

    def reset_counts(self) -> None:
        with self._lock:
            self.requests.clear()

    # -- lifecycle -----------------------------------------------------------------------------------------
    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> LocalHub:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- HTTP ----------------------------------------------------------------------------------------------
    def _make_handler(self) -> type[BaseHTTPRequestHandler]:
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # keep notebooks and test output quiet
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                path = self.path.split("?", 1)[0]
                with hub._lock:
                    hub.requests[path] += 1
                    entry = hub.files.get(path)
                if entry is None:
                    self._reply(404, b"not found\n")
                    return
                if entry.delay:
                    time.sleep(entry.delay)
                if entry.mode == "error":
                    self._reply(500, b"internal server error\n")
                    return
                if entry.mode == "slow":
                    time.sleep(hub.slow_seconds)
                body = entry.data
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                if entry.mode == "nolength":
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.wfile.write(body[: len(body) // 2])
                    self.close_connection = True
                    return
                self.send_header("Content-Length", str(len(body)))
                if entry.mode == "trickle":
                    self.end_headers()
                    try:
                        for i in range(0, len(body), 64):
                            self.wfile.write(body[i : i + 64])
                            self.wfile.flush()
                            time.sleep(hub.trickle_pause)
                    except (BrokenPipeError, ConnectionResetError):
                        pass
                    return
                if entry.mode == "truncate":
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.end_headers()
                try:
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout test)
                    pass

            def _reply(self, code: int, body: bytes) -> None:
                self.send_response(code)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler
