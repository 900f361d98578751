"""The fetch step of ingest: URL sources → bytes in the raw cache, as Prefect tasks on threads.

Downloads are I/O-bound and share one ``Fetcher`` (its per-host politeness and robots rules hold
across threads), so they run on a thread pool inside the ingest flow, before extraction. A URL is
asked conditionally (ETag / Last-Modified) only when its last body is still at hand (in the raw
cache, or already loaded as a report); a 304 then resolves to those bytes without a download.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.task_runners import ThreadPoolTaskRunner

from breachminer.settings import Settings
from extractors.feeds import is_feed
from extractors.fetch import Fetcher, FetchError, FetchPolicy, RawCache
from extractors.sources import SourceItem
from warehouse.db import FetchState


@dataclass(frozen=True)
class Fetched:
    """What fetching one URL source gave: bytes in the cache (new or not modified), or a failure."""

    item: SourceItem
    outcome: str  # downloaded | not-modified | cached (offline) | offline (no bytes) | failed
    content_sha256: str | None = None
    state: FetchState | None = None  # validators to keep (downloaded) or the ones that matched (304)
    error: FetchError | None = None

    @property
    def is_feed(self) -> bool:
        return bool(self.state and self.state.is_feed)


def fetch_policy(settings: Settings, **overrides: object) -> FetchPolicy:
    """The fetch limits and manners the settings describe; flags (non-None overrides) win."""
    values = dict(
        connect_timeout=settings.connect_timeout, read_timeout=settings.read_timeout, deadline=settings.fetch_deadline,
        max_bytes=settings.max_bytes, max_redirects=settings.max_redirects, retries=settings.fetch_retries,
        backoff=settings.fetch_backoff, max_retry_after=settings.max_retry_after, host_delay=settings.host_delay,
        allow_private=settings.allow_private, respect_robots=settings.respect_robots,
    )
    values.update({key: value for key, value in overrides.items() if value is not None})
    return FetchPolicy(**values)


@task(name="fetch-source", task_run_name="fetch {item.location}", cache_policy=NO_CACHE)
def fetch_source(item: SourceItem, state: FetchState | None, fetcher: Fetcher, cache: RawCache,
                 loaded_hashes: frozenset[str], offline: bool) -> Fetched:
    """Fetch one URL into the raw cache (conditionally when its last body is still at hand)."""
    at_hand = state is not None and (cache.has(state.content_sha256) or state.content_sha256 in loaded_hashes)
    if offline:
        if state is not None and cache.has(state.content_sha256):
            return Fetched(item, "cached", state.content_sha256, state)
        return Fetched(item, "offline")
    try:
        result = fetcher.fetch(item.location, state.etag if at_hand else None,
                               state.last_modified if at_hand else None)
    except FetchError as exc:
        return Fetched(item, "failed", error=exc)
    if result.status == 304:
        if not at_hand:
            return Fetched(item, "failed", error=FetchError(
                f"{item.location} answered 304 Not Modified to an unconditional request", error_class="HTTP304",
                retryable=False, http_status=304))
        return Fetched(item, "not-modified", state.content_sha256, state)
    sha256 = cache.put(result.content or b"")
    new_state = FetchState(url=item.location, final_url=result.final_url, etag=result.etag,
                           last_modified=result.last_modified, content_sha256=sha256,
                           content_type=result.content_type, n_bytes=len(result.content or b""),
                           is_feed=is_feed(result.content or b""))
    return Fetched(item, "downloaded", sha256, new_state)


def fetch_all(items: Sequence[SourceItem], states: dict[str, FetchState], fetcher: Fetcher, cache: RawCache,
              loaded_hashes: frozenset[str], offline: bool, workers: int) -> list[Fetched]:
    """Fetch URL sources in parallel threads; results in input order."""
    if not items:
        return []
    with ThreadPoolTaskRunner(max_workers=workers) as runner:
        futures = [runner.submit(fetch_source, {"item": item, "state": states.get(item.location), "fetcher": fetcher,
                                                "cache": cache, "loaded_hashes": loaded_hashes, "offline": offline})
                   for item in items]
        results = []
        for item, future in zip(items, futures, strict=True):
            try:
                results.append(future.result())
            except Exception as exc:  # a bug in one fetch must not stop the others
                results.append(Fetched(item, "failed", error=FetchError(f"{item.location}: {exc}",
                                                                        error_class=type(exc).__name__,
                                                                        retryable=True)))
        return results
