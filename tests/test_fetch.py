"""The fetcher against a real HTTP server on 127.0.0.1: every fault ends in a body or a precise error."""

from __future__ import annotations

import gzip
import re
import time
from http.server import BaseHTTPRequestHandler

import pytest
from conftest import SAMPLES
from loopback import LoopbackServer, QuietHandler, ThreadedServer

import extractors.fetch as fetch
from extractors.documents import sniff
from extractors.feeds import is_feed, parse_feed
from extractors.fetch import Fetcher, FetchError, FetchPolicy, RawCache, address_kind, parse_retry_after

PDF = SAMPLES / "2024-espionage-supply-chain.pdf"
HTML = SAMPLES / "2025-ransomware-manufacturing.html"
LIMIT = 4 * 1024 * 1024


@pytest.fixture(scope="module")
def server():
    with LoopbackServer({"report.pdf": PDF, "page.html": HTML}, html_for_pdf=HTML.read_bytes(),
                        oversized_bytes=3 * LIMIT) as running:
        yield running


def policy(**changes) -> FetchPolicy:
    values = dict(read_timeout=5.0, connect_timeout=5.0, max_bytes=LIMIT, backoff=0.05, host_delay=0.0,
                  allow_private=True, retries=2)
    values.update(changes)
    return FetchPolicy(**values)


def fetch_error(url: str, **changes) -> FetchError:
    with Fetcher(policy(**changes)) as fetcher, pytest.raises(FetchError) as caught:
        fetcher.fetch(url)
    return caught.value


def test_body_validators_and_a_conditional_304(server) -> None:
    with Fetcher(policy()) as fetcher:
        first = fetcher.fetch(f"{server.url}/files/report.pdf")
        assert first.status == 200 and first.content == PDF.read_bytes() and first.etag and first.last_modified
        again = fetcher.fetch(f"{server.url}/files/report.pdf", etag=first.etag, last_modified=first.last_modified)
        by_date = fetcher.fetch(f"{server.url}/files/report.pdf", last_modified=first.last_modified)
    assert (again.status, again.content, by_date.status) == (304, None, 304)
    assert server.arrivals[-1][2].startswith("breachminer/")  # a descriptive User-Agent


def test_404_is_final(server) -> None:
    error = fetch_error(f"{server.url}/missing.pdf")
    assert (error.error_class, error.http_status, error.retryable, error.attempts) == ("HTTP404", 404, False, 1)


def test_500_then_200_is_retried_with_backoff(server) -> None:
    with Fetcher(policy(retries=3)) as fetcher:
        result = fetcher.fetch(f"{server.url}/flaky/report.pdf")
    assert (result.status, result.attempts, result.content) == (200, 3, PDF.read_bytes())


def test_429_waits_for_retry_after(server) -> None:
    started = time.monotonic()
    with Fetcher(policy()) as fetcher:
        result = fetcher.fetch(f"{server.url}/ratelimited/page.html")
    assert (result.status, result.attempts) == (200, 2)
    assert time.monotonic() - started >= 1.0  # Retry-After: 1 was honoured, not the 0.05 s backoff


def test_a_long_retry_after_defers_to_a_later_run(server) -> None:
    error = fetch_error(f"{server.url}/ratelimited/report.pdf", max_retry_after=0.5)
    assert (error.error_class, error.retry_after, error.attempts) == ("HTTP429", 1.0, 1)


def test_a_stalled_body_times_out(server) -> None:
    error = fetch_error(f"{server.url}/stall.pdf", retries=1, read_timeout=1.0)
    assert (error.error_class, error.retryable, error.attempts) == ("ReadTimeout", True, 2)
    assert "stalled" in str(error)


def test_a_truncated_body_is_named(server) -> None:
    error = fetch_error(f"{server.url}/truncated.pdf", retries=0)
    assert error.error_class == "TruncatedBody" and error.retryable
    assert "truncated" in str(error)


def test_oversized_bodies_are_aborted(server) -> None:
    streamed = fetch_error(f"{server.url}/oversized.pdf")
    assert streamed.error_class == "BodyTooLarge" and not streamed.retryable
    assert server.sent_to("/oversized.pdf") < 3 * LIMIT  # the download stopped early
    declared = fetch_error(f"{server.url}/declared-huge.pdf")
    assert declared.error_class == "BodyTooLarge" and "declares 5,368,709,120 bytes" in str(declared)


def test_a_gzip_bomb_is_refused(server) -> None:
    error = fetch_error(f"{server.url}/bomb.pdf")
    assert error.error_class == "CompressionBomb" and "decompression bomb" in str(error)


def test_html_under_a_pdf_name_is_sniffed_as_html(server) -> None:
    with Fetcher(policy()) as fetcher:
        result = fetcher.fetch(f"{server.url}/looks-like.pdf")
    assert result.content_type == "application/pdf" and sniff(result.content, "looks-like.pdf") == "html"


def test_redirects_are_followed_then_bounded(server) -> None:
    with Fetcher(policy()) as fetcher:
        result = fetcher.fetch(f"{server.url}/redirect/report.pdf")
    assert result.final_url == f"{server.url}/files/report.pdf" and result.content == PDF.read_bytes()
    assert fetch_error(f"{server.url}/loop/a").error_class == "RedirectLoop"
    assert fetch_error(f"{server.url}/redirect/report.pdf", max_redirects=0).error_class == "TooManyRedirects"


def test_robots_txt_is_obeyed_unless_told_not_to(server) -> None:
    error = fetch_error(f"{server.url}/private/report.pdf")
    assert error.error_class == "RobotsDisallowed" and "robots.txt disallows" in str(error)
    with Fetcher(policy(respect_robots=False)) as fetcher:
        assert fetcher.fetch(f"{server.url}/private/report.pdf").status == 200


def test_private_addresses_are_refused_by_default(server) -> None:
    port = server.url.rsplit(":", 1)[1]
    for url in (f"{server.url}/files/report.pdf", f"http://2130706433:{port}/files/report.pdf",
                f"http://localhost:{port}/files/report.pdf"):
        error = fetch_error(url, allow_private=False)
        assert error.error_class == "PrivateAddress" and "BREACHMINER_ALLOW_PRIVATE=1" in str(error), url
    assert not [a for a in server.arrivals if "2130706433" in a[1]]


def test_the_connected_peer_is_checked_too(server, monkeypatch) -> None:
    """If DNS said "public" and then answered a private address (rebinding), the socket check refuses it."""
    monkeypatch.setattr(fetch, "check_host", lambda host, port, allow_private: None)
    before = len(server.arrivals)
    error = fetch_error(f"{server.url}/files/report.pdf", allow_private=False, respect_robots=False)
    assert error.error_class == "PrivateAddress" and "connected to 127.0.0.1" in str(error)
    assert len(server.arrivals) == before  # refused before a request was sent


def test_only_http_and_https(server) -> None:
    for url in ("ftp://example.org/report.pdf", "file:///etc/passwd"):
        error = fetch_error(url)
        assert error.error_class == "UnsupportedScheme" and not error.retryable
    for url in ("http://[::1:bad/x.pdf", "http:///x.pdf", "http://example.org:99999/x.pdf"):  # not URLs
        error = fetch_error(url)
        assert error.error_class == "InvalidURL" and not error.retryable and url in str(error)


def test_one_host_is_asked_politely(server) -> None:
    with Fetcher(policy(host_delay=0.4)) as fetcher:
        fetcher.fetch(f"{server.url}/files/page.html")
        fetcher.fetch(f"{server.url}/files/page.html")
    times = [t for t, path, _ in server.arrivals if path == "/files/page.html"][-2:]
    assert times[1] - times[0] >= 0.4


def test_address_kinds() -> None:
    assert address_kind("8.8.8.8") is None
    assert address_kind("10.1.2.3") == "private"
    assert address_kind("127.0.0.1") == "loopback"
    assert address_kind("::ffff:127.0.0.1") == "loopback"
    assert address_kind("169.254.169.254") == "link-local"  # cloud metadata
    assert address_kind("100.64.0.1") == "non-global"
    assert address_kind("::1") == "loopback"


def test_retry_after_forms() -> None:
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # a date in the past: now
    assert parse_retry_after("soon") is None


def test_raw_cache_is_content_addressed(tmp_path) -> None:
    cache = RawCache(tmp_path)
    sha = cache.put(b"%PDF-1.4 body")
    assert cache.put(b"%PDF-1.4 body") == sha and cache.get(sha) == b"%PDF-1.4 body"
    assert cache.path_for(sha).parent.name == sha[:2] and not list(tmp_path.rglob(".incoming-*"))


def test_feeds_are_recognised_and_expanded() -> None:
    rss = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>Labs</title>
      <item><title>One</title><link>https://labs.example/one</link><pubDate>Tue, 03 Mar 2020 10:00:00 GMT</pubDate>
        <enclosure url="https://labs.example/one.pdf" type="application/pdf" length="1"/></item>
      <item><title>Two</title><link>/two</link></item>
      <item><title>Two again</title><link>/two</link></item></channel></rss>"""
    atom = b"""<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom"><title>A</title>
      <entry><title>Three</title><link href="https://labs.example/three"/><updated>2021-05-01T00:00:00Z</updated>
      </entry></feed>"""
    assert is_feed(rss) and is_feed(atom) and not is_feed(HTML.read_bytes()) and not is_feed(PDF.read_bytes())
    items = parse_feed(rss, "https://labs.example/feed.xml")
    assert [(i.location, i.title, i.publisher) for i in items] == [
        ("https://labs.example/one.pdf", "One", "Labs"),  # the PDF enclosure is the report
        ("https://labs.example/two", "Two", "Labs"),
    ]
    assert items[0].published.isoformat() == "2020-03-03" and items[0].feed == "https://labs.example/feed.xml"
    assert parse_feed(atom, "https://labs.example/atom")[0].published_year == 2021


def test_robots_crawl_delay_spaces_requests() -> None:
    with LoopbackServer({"page.html": HTML}, robots="User-agent: *\nCrawl-delay: 1\n") as slow_host, \
            Fetcher(policy(host_delay=0.0)) as fetcher:
        fetcher.fetch(f"{slow_host.url}/files/page.html")
        fetcher.fetch(f"{slow_host.url}/files/page.html")
        times = [t for t, path, _ in slow_host.arrivals if path == "/files/page.html"]
    assert times[1] - times[0] >= 1.0


def test_a_download_past_its_deadline_is_stopped(server) -> None:
    error = fetch_error(f"{server.url}/oversized.pdf", deadline=0.0, retries=0, respect_robots=False)
    assert error.error_class == "DeadlineExceeded" and error.retryable


# ------------------------------------------------------------------ bodies that arrive slowly

DRIP_SECONDS = 30.0  # how long a dripping server keeps sending: far past the deadline of the tests below
PACED = b"%PDF-1.4\n" + bytes(range(256)) * (8 * 1024)  # 2 MB that arrives in bursts, well within the deadline
GZIP_NAMED = bytes([0x1F, 0x8B, 8, 0x08, 0, 0, 0, 0, 0, 0xFF])  # a gzip header whose file name (FNAME) follows


class DripServer(ThreadedServer):
    """A loopback server for pacing: ``/drip`` and ``/drip-gzip-name`` declare 100,000 bytes and send 5 every
    0.2 s for ``DRIP_SECONDS`` (the second as a gzip header with an endless file name, which decodes to
    nothing), ``/drip-slow`` 5 every 6 s; ``/drip-headers`` drips its header block and never ends it;
    ``/paced``, ``/paced-gzip`` and ``/paced-chunked`` send ``PACED`` in four bursts 0.1 s apart.

    ``sent[path]`` counts the body bytes written, ``ended[path]`` is when its handler stopped writing.
    """

    def __init__(self) -> None:
        self.sent: dict[str, int] = {}
        self.ended: dict[str, float] = {}
        self._listen(self._handler())  # the client hangs up on purpose: the server stays quiet about it

    def ended_by(self, path: str, timeout: float) -> float:
        """When the handler for ``path`` stopped writing (waiting up to ``timeout`` s for it to notice)."""
        waited_until = time.monotonic() + timeout
        while path not in self.ended and time.monotonic() < waited_until:
            time.sleep(0.05)
        assert path in self.ended, f"the server was still sending {path} {timeout:g} s later"
        return self.ended[path]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(QuietHandler):
            def _write(self, data: bytes) -> None:
                self.wfile.write(data)
                self.wfile.flush()
                server.sent[self.path] = server.sent.get(self.path, 0) + len(data)

            def do_GET(self) -> None:
                server.sent[self.path] = 0
                if self.path == "/drip-headers":  # a tarpit: the header block never ends
                    try:
                        self._write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
                        stop = time.monotonic() + DRIP_SECONDS
                        while time.monotonic() < stop:
                            self._write(b"aaaaa")
                            time.sleep(0.2)
                    except OSError:
                        pass  # the client hung up
                    self.close_connection = True
                    server.ended[self.path] = time.monotonic()
                    return
                self.send_response(200)
                try:
                    if self.path.startswith("/drip"):
                        self._drip(gzip_header=self.path == "/drip-gzip-name")
                    else:
                        self._paced()
                except OSError:
                    self.close_connection = True  # the client hung up
                server.ended[self.path] = time.monotonic()

            def _drip(self, gzip_header: bool) -> None:
                self.send_header("Content-Length", "100000")
                if gzip_header:
                    self.send_header("Content-Encoding", "gzip")
                self.end_headers()
                if gzip_header:
                    self._write(GZIP_NAMED)
                pause = 6.0 if self.path == "/drip-slow" else 0.2
                stop = time.monotonic() + DRIP_SECONDS
                while time.monotonic() < stop:
                    self._write(b"aaaaa")
                    time.sleep(pause)
                self.close_connection = True

            def _paced(self) -> None:
                body = gzip.compress(PACED) if self.path == "/paced-gzip" else PACED
                chunked = self.path == "/paced-chunked"
                if chunked:
                    self.send_header("Transfer-Encoding", "chunked")
                else:
                    self.send_header("Content-Length", str(len(body)))
                if self.path == "/paced-gzip":
                    self.send_header("Content-Encoding", "gzip")
                self.end_headers()
                step = len(body) // 4 + 1
                for start in range(0, len(body), step):
                    piece = body[start:start + step]
                    self._write(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
                    time.sleep(0.1)
                if chunked:
                    self._write(b"0\r\n\r\n")

        return Handler


@pytest.fixture(scope="module")
def drip_server():
    with DripServer() as running:
        yield running


@pytest.mark.parametrize("path", ["/drip", "/drip-gzip-name"])
def test_a_dripping_body_is_abandoned_at_the_deadline(drip_server, path) -> None:
    """Bytes keep arriving, so no read times out: the deadline alone must end the download, and promptly."""
    with Fetcher(policy(deadline=1.5, retries=0, respect_robots=False)) as fetcher:
        started = time.monotonic()
        with pytest.raises(FetchError) as caught:
            fetcher.fetch(f"{drip_server.url}{path}")
        returned = time.monotonic()
        again = fetcher.fetch(f"{drip_server.url}/paced")  # the pool holds no shut-down connection
    error = caught.value
    assert returned - started < 10.0, f"abandoned after {returned - started:.1f} s, deadline 1.5 s"
    assert (error.error_class, error.retryable) == ("DeadlineExceeded", True)
    assert "deadline of 1.5 s exceeded" in str(error)
    arrived = int(re.search(r"abandoned after ([\d,]+) of 100,000 bytes", str(error)).group(1).replace(",", ""))
    assert 0 < arrived <= drip_server.sent[path]
    assert drip_server.ended_by(path, timeout=5.0) - returned < 5.0  # the connection was closed, not left dripping
    assert again.content == PACED


def test_a_dripping_body_on_a_connection_that_is_not_ours_is_abandoned_too(drip_server) -> None:
    """Through a proxy, requests' own connections carry the body: the deadline watches its socket all the same."""
    from requests.adapters import HTTPAdapter

    with Fetcher(policy(deadline=1.5, read_timeout=10.0, retries=0, respect_robots=False)) as fetcher:
        fetcher.session.mount("http://", HTTPAdapter(max_retries=0))  # as a proxied request's
        started = time.monotonic()
        with pytest.raises(FetchError) as caught:
            fetcher.fetch(f"{drip_server.url}/drip-slow")  # 5 bytes every 6 s: each read blocks past the deadline
    waited = time.monotonic() - started
    assert waited < 4.5, f"abandoned after {waited:.1f} s: the blocked read was not cut at the 1.5 s deadline"
    assert caught.value.error_class == "DeadlineExceeded"


def test_dripping_headers_are_abandoned_at_the_deadline(drip_server) -> None:
    """A tarpit that never finishes its header block, a few bytes at a time: no read times out either."""
    with Fetcher(policy(deadline=1.5, retries=0, respect_robots=False)) as fetcher:
        started = time.monotonic()
        with pytest.raises(FetchError) as caught:
            fetcher.fetch(f"{drip_server.url}/drip-headers")
        returned = time.monotonic()
        again = fetcher.fetch(f"{drip_server.url}/paced")
    assert returned - started < 10.0, f"abandoned after {returned - started:.1f} s, deadline 1.5 s"
    assert caught.value.error_class == "DeadlineExceeded" and "before the response headers" in str(caught.value)
    assert drip_server.ended_by("/drip-headers", timeout=5.0) - returned < 5.0
    assert again.content == PACED


@pytest.mark.parametrize("path", ["/paced", "/paced-gzip", "/paced-chunked"])
def test_a_body_arriving_in_bursts_within_the_deadline_is_whole(drip_server, path) -> None:
    with Fetcher(policy(deadline=10.0, retries=0, respect_robots=False)) as fetcher:
        result = fetcher.fetch(f"{drip_server.url}{path}")
    assert (result.status, result.content) == (200, PACED)
