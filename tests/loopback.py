"""A real HTTP server on 127.0.0.1 for fetch tests: real files with validators, plus every fault we handle.

Routes (all under ``server.url``):
- ``/files/<name>``: a file with ETag and Last-Modified; ``If-None-Match``/``If-Modified-Since`` give 304;
- ``/missing.pdf``: 404;  ``/flaky/<name>``: 500 twice, then the file;
- ``/ratelimited/<name>``: 429 with ``Retry-After: 1`` once, then the file;
- ``/stall.pdf``: headers and a few bytes, then silence longer than any test's read timeout;
- ``/truncated.pdf``: ``Content-Length`` promises more than is sent, then the connection closes;
- ``/oversized.pdf``: a body streamed without ``Content-Length``, larger than the tests' size limit;
- ``/declared-huge.pdf``: ``Content-Length`` of 5 GB (never sent);
- ``/looks-like.pdf``: HTML served under a ``.pdf`` name (with a PDF content type, to lie fully), and
  without validators (so every request downloads it);
- ``/loop/a`` ↔ ``/loop/b``: a redirect loop;  ``/redirect/<name>``: one 302 to ``/files/<name>``;
- ``/bomb.pdf``: 256 MB of zeros gzip-compressed to about 250 KB, sent with ``Content-Encoding: gzip``;
- ``/feed.xml``: an RSS feed (with an ETag) of ``feed_items``;  ``/robots.txt``: disallows ``/private/``.

``server.log`` records every response as (method, path, status, body bytes sent), ``server.arrivals``
every request as (time, path, User-Agent).
"""

from __future__ import annotations

import email.utils
import hashlib
import threading
import time
import zlib
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Self

STALL_SECONDS = 12  # longer than any test's read timeout


@cache
def gzip_bomb() -> bytes:
    """256 MB of zeros as a gzip stream of about 250 KB."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)  # wbits 31: gzip container
    zeros = b"\0" * (16 * 1024 * 1024)
    return b"".join([compressor.compress(zeros) for _ in range(16)] + [compressor.flush()])


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        pass  # clients hanging up on purpose (timeouts, size limits) are part of the tests


class QuietHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 (keep-alive), no request log on stderr."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass


class ThreadedServer:
    """An HTTP server on an ephemeral 127.0.0.1 port, served from a daemon thread while in a ``with`` block."""

    def _listen(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.httpd = _QuietServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class LoopbackServer(ThreadedServer):
    """Serves ``files`` (name → path) and the fault routes on an ephemeral loopback port."""

    def __init__(self, files: dict[str, Path], html_for_pdf: bytes | None = None,
                 robots: str = "User-agent: *\nDisallow: /private/\n", oversized_bytes: int = 64 * 1024 * 1024):
        self.files = files
        self.html_for_pdf = html_for_pdf or b"<html><head><title>Not a PDF</title></head><body>HTML</body></html>"
        self.robots = robots
        self.oversized_bytes = oversized_bytes
        self.log: list[tuple[str, str, int, int]] = []
        self.arrivals: list[tuple[float, str, str]] = []  # (monotonic time, path, User-Agent) per request
        self.counters: dict[str, int] = {}
        self.feed_items: list[tuple[str, str]] = []  # (title, path) of /feed.xml entries
        self._lock = threading.Lock()
        gzip_bomb()  # built before serving, so that no request waits for it
        self._listen(self._handler())

    def count(self, key: str) -> int:
        with self._lock:
            self.counters[key] = self.counters.get(key, 0) + 1
            return self.counters[key]

    def sent_to(self, path: str, timeout: float = 10.0) -> int:
        """Body bytes the server sent for ``path`` (waiting for the handler to finish writing)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            sizes = [size for _m, logged, _s, size in self.log if logged == path]
            if sizes:
                return sizes[-1]
            time.sleep(0.05)
        raise AssertionError(f"no response to {path} was logged")

    def bodies_sent(self) -> list[tuple[str, int]]:
        """(path, bytes) of every response that carried a body."""
        return [(path, size) for _m, path, _s, size in self.log if size > 0]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(QuietHandler):
            def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                headers = headers or {}
                headers.setdefault("Content-Length", str(len(body)))
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                if body and self.command != "HEAD":
                    self.wfile.write(body)
                server.log.append((self.command, self.path, status, len(body)))

            def _file(self, name: str) -> None:
                path = server.files.get(name)
                if path is None:
                    self._send(404, b"not found")
                    return
                data = path.read_bytes()
                etag = '"' + hashlib.sha256(data).hexdigest()[:32] + '"'
                modified = email.utils.formatdate(path.stat().st_mtime, usegmt=True)
                if self.headers.get("If-None-Match") == etag or (
                    self.headers.get("If-Modified-Since") == modified and not self.headers.get("If-None-Match")
                ):
                    self._send(304, b"", {"ETag": etag, "Last-Modified": modified, "Content-Length": "0"})
                    return
                kind = "application/pdf" if name.endswith(".pdf") else "text/html" if name.endswith(".html") else \
                    "text/plain"
                self._send(200, data, {"ETag": etag, "Last-Modified": modified, "Content-Type": kind})

            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                server.arrivals.append((time.monotonic(), path, self.headers.get("User-Agent", "")))
                if path == "/robots.txt":
                    self._send(200, server.robots.encode(), {"Content-Type": "text/plain"})
                elif path.startswith("/files/"):
                    self._file(path.removeprefix("/files/"))
                elif path.startswith("/private/"):
                    self._file(path.removeprefix("/private/"))
                elif path == "/missing.pdf":
                    self._send(404, b"<html><body>Not Found</body></html>", {"Content-Type": "text/html"})
                elif path.startswith("/flaky/"):
                    if server.count(path) <= 2:
                        self._send(500, b"internal error")
                    else:
                        self._file(path.removeprefix("/flaky/"))
                elif path.startswith("/ratelimited/"):
                    if server.count(path) == 1:
                        self._send(429, b"slow down", {"Retry-After": "1"})
                    else:
                        self._file(path.removeprefix("/ratelimited/"))
                elif path.startswith("/redirect/"):
                    self._send(302, b"", {"Location": "/files/" + path.removeprefix("/redirect/")})
                elif path == "/loop/a":
                    self._send(302, b"", {"Location": "/loop/b"})
                elif path == "/loop/b":
                    self._send(302, b"", {"Location": "/loop/a"})
                elif path == "/looks-like.pdf":
                    self._send(200, server.html_for_pdf, {"Content-Type": "application/pdf"})
                elif path == "/stall.pdf":
                    self.send_response(200)
                    self.send_header("Content-Length", "100000")
                    self.end_headers()
                    self.wfile.write(b"%PDF-1.4\n")
                    self.wfile.flush()
                    server.log.append(("GET", self.path, 200, 9))
                    time.sleep(STALL_SECONDS)
                    self.close_connection = True
                elif path == "/truncated.pdf":
                    data = server.files[next(iter(server.files))].read_bytes()
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(data)))
                    self.send_header("Content-Type", "application/pdf")
                    self.end_headers()
                    self.wfile.write(data[: len(data) // 3])
                    self.wfile.flush()
                    server.log.append(("GET", self.path, 200, len(data) // 3))
                    self.close_connection = True
                elif path == "/oversized.pdf":
                    self.send_response(200)
                    self.send_header("Content-Type", "application/pdf")
                    self.send_header("Connection", "close")
                    self.end_headers()
                    sent = 0
                    chunk = b"%PDF-1.4\n" + b"0" * (64 * 1024)
                    try:
                        while sent < server.oversized_bytes:
                            self.wfile.write(chunk)
                            sent += len(chunk)
                    except OSError:
                        pass
                    server.log.append(("GET", self.path, 200, sent))
                    self.close_connection = True
                elif path == "/declared-huge.pdf":
                    self.send_response(200)
                    self.send_header("Content-Length", str(5 * 1024 ** 3))
                    self.send_header("Content-Type", "application/pdf")
                    self.end_headers()
                    server.log.append(("GET", self.path, 200, 0))
                    self.close_connection = True
                elif path == "/bomb.pdf":
                    self._send(200, gzip_bomb(), {"Content-Type": "application/pdf", "Content-Encoding": "gzip"})
                elif path == "/feed.xml":
                    items = "".join(
                        f"<item><title>{title}</title><link>{server.url}{link}</link>"
                        f"<pubDate>Mon, 02 Mar 2020 10:00:00 GMT</pubDate></item>"
                        for title, link in server.feed_items
                    )
                    body = (f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
                            f"<title>Loopback Threat Research</title><link>{server.url}/</link>"
                            f"<description>test feed</description>{items}</channel></rss>").encode()
                    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
                    if self.headers.get("If-None-Match") == etag:
                        self._send(304, b"", {"ETag": etag})
                    else:
                        self._send(200, body, {"Content-Type": "application/rss+xml", "ETag": etag})
                else:
                    self._send(404, b"not found")

        return Handler
