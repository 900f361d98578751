"""URL → bytes, politely and defensively: the only module of the pipeline that talks to the network.

``Fetcher.fetch(url, etag, last_modified)`` returns the body (or a 304) or raises ``FetchError``
whose ``error_class`` names the cause precisely (``HTTP404``, ``ReadTimeout``, ``TruncatedBody``,
``BodyTooLarge``, ``CompressionBomb``, ``RedirectLoop``, ``PrivateAddress``, ``RobotsDisallowed`` …)
and whose ``retryable`` says whether trying again in this run can help.

What it guarantees:
- only ``http``/``https``; at most ``max_redirects`` hops, each hop checked again (a loop is refused);
- private, loopback, link-local and reserved addresses refused unless ``allow_private``: the host is
  resolved before each request *and* the connected socket's peer address is checked, so DNS
  rebinding between the two cannot slip through;
- connect and read timeouts, plus a deadline for the whole request (headers and body): when it passes,
  the socket is shut down under the blocked read, so a server dripping a byte every few seconds (a
  tarpit) cannot hold a worker past it;
- bodies streamed and aborted past ``max_bytes`` (decoded size, so a gzip bomb stops at the limit,
  and one with an absurd compression ratio is named ``CompressionBomb``); a body shorter than its
  ``Content-Length`` is ``TruncatedBody``;
- bounded retries with exponential backoff on 429/5xx/connection errors; ``Retry-After`` is honoured,
  and one longer than ``max_retry_after`` ends the attempt (the caller schedules the retry then);
- a descriptive User-Agent, robots.txt respected (RFC 9309: 4xx = allowed, 5xx/unreachable =
  disallowed for now), one request at a time per host with ``host_delay`` seconds between them
  (or the robots ``Crawl-delay`` when longer, capped at 30 s).

``RawCache`` keeps every body content-addressed by SHA-256, so a 304 resolves to the bytes seen before.
"""

from __future__ import annotations

import email.utils
import hashlib
import ipaddress
import os
import socket
import tempfile
import threading
import time
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit
from urllib.robotparser import RobotFileParser

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from breachminer import __version__

USER_AGENT = (f"breachminer/{__version__} (ATT&CK technique mining of public threat reports; "
              "+https://github.com/breachminer/breachminer)")
ROBOTS_AGENT = "breachminer"
REDIRECT_CODES = {301, 302, 303, 307, 308}
RETRYABLE_CODES = {408, 425, 429, 500, 502, 503, 504}
MAX_CRAWL_DELAY = 30.0
MAX_ROBOTS_BYTES = 512 * 1024
READ_CHUNK = 64 * 1024  # most bytes one read returns; it returns whatever has arrived, up to this


@dataclass(frozen=True)
class FetchPolicy:
    """Limits and manners of one fetcher (``breachminer.settings`` fills it from the environment)."""

    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    deadline: float = 300.0  # whole download, seconds
    max_bytes: int = 100 * 1024 * 1024
    max_redirects: int = 5
    retries: int = 3  # extra attempts after the first, within one run
    backoff: float = 1.0  # seconds before the first retry, doubled each time
    max_retry_after: float = 120.0  # a longer Retry-After is not waited for in this run
    host_delay: float = 1.0
    allow_private: bool = False
    respect_robots: bool = True
    user_agent: str = USER_AGENT
    max_compression_ratio: float = 50.0  # documents compress 1-10×; a bomb 100-1000×


@dataclass(frozen=True)
class FetchResult:
    """A successful fetch: a body (status 200) or "not modified" (status 304, no body)."""

    url: str
    final_url: str
    status: int
    content: bytes | None
    content_type: str | None
    etag: str | None
    last_modified: str | None
    attempts: int

    @property
    def content_sha256(self) -> str | None:
        return hashlib.sha256(self.content).hexdigest() if self.content is not None else None


class FetchError(Exception):
    """A URL that could not be fetched; ``error_class`` is the precise cause."""

    stage = "fetch"

    def __init__(self, message: str, *, error_class: str, retryable: bool, http_status: int | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(message)
        self.error_class = error_class
        self.retryable = retryable
        self.http_status = http_status
        self.retry_after = retry_after
        self.attempts = 1


class PrivateAddressError(FetchError):
    def __init__(self, message: str) -> None:
        super().__init__(message, error_class="PrivateAddress", retryable=False)


# ------------------------------------------------------------------------------ address checks

PRIVATE_HINT = "set BREACHMINER_ALLOW_PRIVATE=1 (or pass --allow-private) to fetch from internal addresses"


def address_kind(address: str) -> str | None:
    """Why an IP address is not a public internet address ("loopback", "private" …), or None if it is."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    for kind in ("loopback", "link_local", "unspecified", "multicast", "reserved", "private"):
        if getattr(ip, f"is_{kind}"):
            return kind.replace("_", "-")
    if not ip.is_global:  # e.g. 100.64.0.0/10 carrier-grade NAT
        return "non-global"
    return None


def check_host(host: str, port: int, allow_private: bool) -> None:
    """Resolve ``host`` and refuse it when any of its addresses is not public."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:  # only a temporary resolver failure is worth retrying within the run
        raise FetchError(f"cannot resolve {host}: {exc.strerror or exc}", error_class="DNSError",
                         retryable=exc.errno == socket.EAI_AGAIN) from exc
    if allow_private:
        return
    for info in infos:
        address = info[4][0]
        kind = address_kind(address)
        if kind:
            raise PrivateAddressError(f"refused {host} ({address} is a {kind} address); {PRIVATE_HINT}")


def _check_peer(sock: socket.socket, host: str) -> None:
    address = sock.getpeername()[0]
    kind = address_kind(address)
    if kind:
        sock.close()
        raise PrivateAddressError(f"refused {host}: connected to {address}, a {kind} address; {PRIVATE_HINT}")


class _WatchedConnection:
    """A connection whose socket, new or reused, is handed to this thread's request deadline
    (``_DeadlineWatch``) when the response is awaited."""

    sock: socket.socket | None

    def getresponse(self, *args: Any, **kwargs: Any) -> Any:
        watch = getattr(_CURRENT_WATCH, "watch", None)
        if watch is not None and self.sock is not None:
            watch.attach(self.sock)
        return super().getresponse(*args, **kwargs)


class _PublicOnlyConnection(_WatchedConnection):
    """A watched connection whose peer address is checked once its socket connects."""

    host: str

    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        _check_peer(sock, self.host)
        return sock


class _WatchedHTTPConnection(_WatchedConnection, HTTPConnection):
    pass


class _WatchedHTTPSConnection(_WatchedConnection, HTTPSConnection):
    pass


class _PublicOnlyHTTPConnection(_PublicOnlyConnection, HTTPConnection):
    pass


class _PublicOnlyHTTPSConnection(_PublicOnlyConnection, HTTPSConnection):
    pass


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


class _PublicOnlyHTTPPool(HTTPConnectionPool):
    ConnectionCls = _PublicOnlyHTTPConnection


class _PublicOnlyHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _PublicOnlyHTTPSConnection


class _GuardedAdapter(HTTPAdapter):
    """Direct connections are watched by the request deadline and, unless ``allow_private``, must land on
    public addresses (proxied ones go through requests' proxy manager)."""

    def __init__(self, allow_private: bool) -> None:
        self._pools = ({"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool} if allow_private
                       else {"http": _PublicOnlyHTTPPool, "https": _PublicOnlyHTTPSPool})
        super().__init__(max_retries=0)

    def init_poolmanager(self, *args, **kwargs) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = self._pools


# ------------------------------------------------------------------------------------ manners


class HostLimiter:
    """One request at a time per host, ``delay`` seconds apart (thread-safe)."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self._locks: dict[str, threading.Lock] = {}
        self._last: dict[str, float] = {}
        self._delays: dict[str, float] = {}
        self._guard = threading.Lock()

    def set_delay(self, host: str, delay: float) -> None:
        with self._guard:
            self._delays[host] = max(self.delay, min(delay, MAX_CRAWL_DELAY))

    @contextmanager
    def slot(self, host: str):
        with self._guard:
            lock = self._locks.setdefault(host, threading.Lock())
        with lock:
            wait = self._last.get(host, -1e9) + self._delays.get(host, self.delay) - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            try:
                yield
            finally:
                self._last[host] = time.monotonic()


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


# -------------------------------------------------------------------------------------- fetcher


@dataclass
class _Response:
    status: int
    headers: dict[str, str]
    body: bytes | None
    url: str


@dataclass
class Fetcher:
    """Fetches URLs under a ``FetchPolicy``; share one per run (it holds the per-host limits and robots)."""

    policy: FetchPolicy = field(default_factory=FetchPolicy)

    def __post_init__(self) -> None:
        self.session = requests.Session()
        self.session.headers.update({"User-Agent": self.policy.user_agent,
                                     "Accept": "application/pdf,text/html,application/xhtml+xml,"
                                               "application/rss+xml,application/atom+xml,text/plain;q=0.9,*/*;q=0.5",
                                     "Accept-Encoding": "gzip, deflate"})
        adapter = _GuardedAdapter(self.policy.allow_private)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.limiter = HostLimiter(self.policy.host_delay)
        self._robots: dict[str, RobotFileParser | FetchError | None] = {}
        self._robots_lock = threading.Lock()

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- public

    def fetch(self, url: str, etag: str | None = None, last_modified: str | None = None) -> FetchResult:
        """GET ``url`` (conditionally when a validator is given), retrying what may succeed later."""
        headers = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        attempt = 0
        while True:
            attempt += 1
            try:
                response = self._get(url, headers, check_robots=self.policy.respect_robots)
                break
            except FetchError as exc:
                exc.attempts = attempt
                if not exc.retryable or attempt > self.policy.retries:
                    raise
                wait = exc.retry_after if exc.retry_after is not None else self.policy.backoff * 2 ** (attempt - 1)
                if wait > self.policy.max_retry_after:
                    raise
                time.sleep(wait)
        return FetchResult(
            url=url, final_url=response.url, status=response.status, content=response.body,
            content_type=response.headers.get("content-type"), etag=response.headers.get("etag"),
            last_modified=response.headers.get("last-modified"), attempts=attempt,
        )

    # -- one attempt: redirects followed by hand so that every hop is checked

    def _get(self, url: str, headers: dict[str, str], check_robots: bool, max_bytes: int | None = None) -> _Response:
        seen = {url}
        current = url
        for _hop in range(self.policy.max_redirects + 1):
            host, port = self._check_url(current)
            if check_robots:
                self._check_robots(current)
            response = self._request(current, headers, host, port, max_bytes)
            if response.status in REDIRECT_CODES:
                location = response.headers.get("location")
                if not location:
                    raise FetchError(f"HTTP {response.status} without a Location header from {current}",
                                     error_class=f"HTTP{response.status}", retryable=False,
                                     http_status=response.status)
                target = urljoin(current, location.strip())
                if target in seen:
                    raise FetchError(f"redirect loop: {current} → {target} (already visited)",
                                     error_class="RedirectLoop", retryable=False, http_status=response.status)
                seen.add(target)
                current = target
                continue
            return response
        raise FetchError(f"more than {self.policy.max_redirects} redirects from {url}", error_class="TooManyRedirects",
                         retryable=False)

    def _check_url(self, url: str) -> tuple[str, int]:
        try:
            parts = urlsplit(url)
        except ValueError as exc:  # "Invalid IPv6 URL"
            raise FetchError(f"not a valid URL ({exc}): {url}", error_class="InvalidURL", retryable=False) from None
        if parts.scheme not in ("http", "https"):
            raise FetchError(f"only http and https URLs are fetched, not {parts.scheme or 'no scheme'}: {url}",
                             error_class="UnsupportedScheme", retryable=False)
        if not parts.hostname:
            raise FetchError(f"no host in {url}", error_class="InvalidURL", retryable=False)
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError as exc:
            raise FetchError(f"bad port in {url}", error_class="InvalidURL", retryable=False) from exc
        check_host(parts.hostname, port, self.policy.allow_private)
        return parts.hostname, port

    def _request(self, url: str, headers: dict[str, str], host: str, port: int,
                 max_bytes: int | None = None) -> _Response:
        policy = self.policy
        with self.limiter.slot(f"{host}:{port}"):
            watch = _DeadlineWatch(policy.deadline)  # from the request on: headers dripped slowly count too
            _CURRENT_WATCH.watch = watch
            try:
                try:
                    response = self.session.get(url, headers=headers, stream=True, allow_redirects=False,
                                                timeout=(policy.connect_timeout, policy.read_timeout))
                except requests.exceptions.RequestException as exc:
                    if watch.finish():
                        raise self._headers_past_deadline(url) from exc
                    raise
                finally:
                    _CURRENT_WATCH.watch = None
                if watch.expired:  # the shutdown ended the header block early: what was read is not the response
                    response.close()
                    raise self._headers_past_deadline(url)
            except requests.exceptions.ConnectTimeout as exc:
                raise FetchError(f"connect timeout after {policy.connect_timeout:g} s: {url}",
                                 error_class="ConnectTimeout", retryable=True) from exc
            except requests.exceptions.ReadTimeout as exc:
                raise FetchError(f"no response within {policy.read_timeout:g} s: {url}", error_class="ReadTimeout",
                                 retryable=True) from exc
            except requests.exceptions.SSLError as exc:
                raise FetchError(f"TLS error for {url}: {exc}", error_class="TLSError", retryable=False) from exc
            except requests.exceptions.ConnectionError as exc:
                private = _find_cause(exc, PrivateAddressError)
                if private is not None:
                    raise PrivateAddressError(str(private)) from exc
                raise FetchError(f"connection failed for {url}: {_root_message(exc)}", error_class="ConnectionError",
                                 retryable=True) from exc
            except requests.exceptions.RequestException as exc:
                raise FetchError(f"request failed for {url}: {exc}", error_class=type(exc).__name__,
                                 retryable=False) from exc
            with response:
                try:  # the watch ends before the connection goes back to the pool, never after
                    status = response.status_code
                    lowered = {k.lower(): v for k, v in response.headers.items()}
                    if status in REDIRECT_CODES or status == 304:
                        return _Response(status, lowered, None, url)
                    if status >= 400:
                        retry_after = parse_retry_after(lowered.get("retry-after"))
                        raise FetchError(f"HTTP {status} {response.reason or ''} from {url}".rstrip(),
                                         error_class=f"HTTP{status}",
                                         retryable=status in RETRYABLE_CODES or status >= 500,
                                         http_status=status, retry_after=retry_after)
                    body = self._read_body(response, url, max_bytes or policy.max_bytes, watch)
                    return _Response(status, lowered, body, url)
                finally:
                    watch.finish()

    def _read_body(self, response: requests.Response, url: str, max_bytes: int, watch: _DeadlineWatch) -> bytes:
        declared = response.headers.get("content-length", "")
        encoded = response.headers.get("content-encoding", "identity").lower() not in ("", "identity")
        if declared.isdigit() and int(declared) > max_bytes and not encoded:
            raise FetchError(f"{url} declares {int(declared):,} bytes, over the {max_bytes:,}-byte limit "
                             "(BREACHMINER_MAX_BYTES)", error_class="BodyTooLarge", retryable=False)
        expected = f"{int(declared):,}" if declared.isdigit() else "unknown"
        raw = response.raw
        if not watch.attached:  # a proxied connection is not ours: watch the body's socket from here on
            sock = getattr(raw.connection, "sock", None)
            if sock is not None:
                watch.attach(sock)
        chunks: list[bytes] = []
        size = 0  # decoded bytes; raw.tell() counts the bytes that came over the wire (Content-Length's unit)
        try:
            # read1: whatever has arrived (up to READ_CHUNK), not a wait for a full chunk, so the count stays exact
            while chunk := raw.read1(READ_CHUNK, decode_content=True):
                size += len(chunk)
                chunks.append(chunk)
                if size > max_bytes:
                    wire = max(1, raw.tell())
                    if encoded and size / wire > self.policy.max_compression_ratio:
                        raise FetchError(f"{url}: compressed body expands {size / wire:,.0f}× (over "
                                         f"{max_bytes:,} bytes from {wire:,}); refused as a decompression bomb",
                                         error_class="CompressionBomb", retryable=False)
                    raise FetchError(f"{url}: body over the {max_bytes:,}-byte limit (BREACHMINER_MAX_BYTES)",
                                     error_class="BodyTooLarge", retryable=False)
                if watch.expired:
                    break
        except FetchError:
            watch.finish()
            raise
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            if watch.finish():  # the read failed because the deadline shut the socket down
                raise self._past_deadline(url, raw, expected) from exc
            if isinstance(exc, urllib3.exceptions.ReadTimeoutError):
                raise FetchError(f"{url}: body stalled for over {self.policy.read_timeout:g} s after "
                                 f"{raw.tell():,} bytes", error_class="ReadTimeout", retryable=True) from exc
            if isinstance(exc, urllib3.exceptions.DecodeError):
                raise FetchError(f"{url}: body cannot be decoded ({exc})", error_class="ContentDecodingError",
                                 retryable=False) from exc
            if isinstance(exc, urllib3.exceptions.ProtocolError | urllib3.exceptions.IncompleteRead):
                raise FetchError(f"{url}: connection closed after {raw.tell():,} of {expected} bytes "
                                 "(truncated body)", error_class="TruncatedBody", retryable=True) from exc
            raise FetchError(f"{url}: {exc}", error_class="ConnectionError", retryable=True) from exc
        if watch.finish():  # the deadline cut the body short (or passed just as it ended): not a whole body
            raise self._past_deadline(url, raw, expected)
        return b"".join(chunks)

    def _headers_past_deadline(self, url: str) -> FetchError:
        return FetchError(f"{url}: fetch deadline of {self.policy.deadline:g} s exceeded (BREACHMINER_FETCH_DEADLINE) "
                          "before the response headers were complete", error_class="DeadlineExceeded", retryable=True)

    def _past_deadline(self, url: str, raw: urllib3.HTTPResponse, expected: str) -> FetchError:
        """The ``DeadlineExceeded`` error for a body abandoned at the deadline; its connection is closed."""
        raw.close()  # also closes the connection, so it never goes back to the pool
        return FetchError(f"{url}: fetch deadline of {self.policy.deadline:g} s exceeded (BREACHMINER_FETCH_DEADLINE); "
                          f"abandoned after {raw.tell():,} of {expected} bytes",
                          error_class="DeadlineExceeded", retryable=True)

    # -- robots.txt

    def _check_robots(self, url: str) -> None:
        parts = urlsplit(url)
        root = f"{parts.scheme}://{parts.netloc}"
        with self._robots_lock:
            if root not in self._robots:
                self._robots[root] = self._load_robots(root, parts.hostname or "", parts.port)
            rules = self._robots[root]
        if isinstance(rules, FetchError):
            raise FetchError(f"robots.txt of {root} unavailable ({rules}); not fetching {url} for now",
                             error_class="RobotsUnavailable", retryable=False)
        if rules is not None and not rules.can_fetch(ROBOTS_AGENT, url):
            raise FetchError(f"{root}/robots.txt disallows {url} for {ROBOTS_AGENT} "
                             "(BREACHMINER_RESPECT_ROBOTS=0 or --ignore-robots to override)",
                             error_class="RobotsDisallowed", retryable=False)

    def _load_robots(self, root: str, host: str, port: int | None) -> RobotFileParser | FetchError | None:
        try:
            response = self._get(f"{root}/robots.txt", {}, check_robots=False, max_bytes=MAX_ROBOTS_BYTES) \
                if host else None
        except FetchError as exc:
            if exc.http_status is not None and 400 <= exc.http_status < 500:
                return None  # no robots.txt: everything allowed
            return exc
        if response is None or response.body is None:
            return None
        rules = RobotFileParser()
        rules.parse(response.body[:MAX_ROBOTS_BYTES].decode("utf-8", "replace").splitlines())
        delay = rules.crawl_delay(ROBOTS_AGENT)
        if delay:
            self.limiter.set_delay(f"{host}:{port or (443 if root.startswith('https') else 80)}", float(delay))
        return rules


_CURRENT_WATCH = threading.local()  # the deadline of the request this thread is making (``.watch``)


class _DeadlineWatch:
    """Owns one request's deadline: when ``seconds`` pass before ``finish()``, it shuts down the socket the
    response is read from (``attach``ed when its headers are awaited), or does so at ``attach`` if late.

    A timeout per read cannot stop a read that keeps receiving bytes, slowly, be they headers or body;
    shutting the socket down ends any read blocked on it at once (it sees the end of the stream), however
    the server paces its bytes. The lock makes ``finish()`` and the shutdown exclusive, so a finished
    response's connection, back in the pool, is never shut down late.
    """

    def __init__(self, seconds: float) -> None:
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()
        self._finished = False
        self.expired = False
        self._timer = threading.Timer(max(0.0, seconds), self._expire)
        self._timer.daemon = True
        self._timer.start()

    @property
    def attached(self) -> bool:
        return self._sock is not None

    def attach(self, sock: socket.socket) -> None:
        """Watch ``sock`` (shut down at once when the deadline has passed already)."""
        with self._lock:
            self._sock = getattr(sock, "socket", sock)  # TLS inside a TLS proxy: the transport's own socket
            if self.expired and not self._finished:
                self._shutdown()

    def _expire(self) -> None:
        with self._lock:
            if self._finished:
                return
            self.expired = True
            self._shutdown()

    def _shutdown(self) -> None:
        if isinstance(self._sock, socket.socket):
            with suppress(OSError):  # already closed
                # the plain socket's shutdown: an SSLSocket's would drop its TLS state under the reader
                socket.socket.shutdown(self._sock, socket.SHUT_RDWR)

    def finish(self) -> bool:
        """Stop watching; True when the deadline passed first."""
        self._timer.cancel()
        with self._lock:
            self._finished = True
            return self.expired


def _find_cause(exc: BaseException, kind: type[BaseException]) -> BaseException | None:
    seen = 0
    current: BaseException | None = exc
    while current is not None and seen < 10:
        if isinstance(current, kind):
            return current
        for arg in getattr(current, "args", ()):
            if isinstance(arg, BaseException):
                found = _find_cause(arg, kind)
                if found is not None:
                    return found
        reason = getattr(current, "reason", None)
        if isinstance(reason, BaseException) and reason is not current:
            found = _find_cause(reason, kind)
            if found is not None:
                return found
        current = current.__cause__ or current.__context__
        seen += 1
    return None


def _root_message(exc: BaseException) -> str:
    text = str(exc)
    for marker in ("Failed to establish a new connection: ", "Connection refused", "Name or service not known"):
        if marker in text:
            return text[text.index(marker):].rstrip("'\")")
    return text[:300]


# ------------------------------------------------------------------------------------ raw cache


class RawCache:
    """Document bytes by SHA-256: ``<root>/ab/abcdef….bin``, written atomically."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    def path_for(self, sha256: str) -> Path:
        return self.root / sha256[:2] / f"{sha256}.bin"

    def has(self, sha256: str | None) -> bool:
        return bool(sha256) and self.path_for(sha256).is_file()

    def put(self, data: bytes) -> str:
        sha256 = hashlib.sha256(data).hexdigest()
        target = self.path_for(sha256)
        if not target.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
            with os.fdopen(handle, "wb") as out:
                out.write(data)
            os.replace(temporary, target)
        return sha256

    def get(self, sha256: str) -> bytes | None:
        path = self.path_for(sha256)
        return path.read_bytes() if path.is_file() else None
