"""RSS/Atom feeds → source items: every entry's report link, with the entry's title and date.

A fetched body is a feed when its root element is ``rss``, ``feed`` (Atom) or ``rdf:RDF``; such a
body is not a report but a list of them. Each entry becomes a ``SourceItem``: a PDF enclosure or a
PDF link when the entry has one (the report itself), otherwise the entry's link (the write-up page).
The feed's title is the publisher unless the entry names an author organisation.
"""

from __future__ import annotations

import re
from datetime import date
from urllib.parse import urljoin

from extractors.documents import CorruptDocument
from extractors.sources import SourceItem

_FEED_ROOT = re.compile(rb"<(?:rss|feed|rdf:RDF)[\s>]", re.IGNORECASE)


def is_feed(data: bytes) -> bool:
    """True when the bytes are an RSS or Atom document (judged from the first kilobytes)."""
    head = data[:4096].lstrip(b"\xef\xbb\xbf \t\r\n")
    if not head.startswith(b"<"):
        return False
    without_prolog = re.sub(rb"<\?xml[^>]*\?>|<!--.*?-->|<!DOCTYPE[^>]*>|<\?xml-stylesheet[^>]*\?>", b"", head,
                            flags=re.DOTALL).lstrip()
    return bool(_FEED_ROOT.match(without_prolog))


def parse_feed(data: bytes, feed_url: str) -> list[SourceItem]:
    """The report links of a feed, in feed order, without duplicates."""
    import feedparser

    parsed = feedparser.parse(data)
    if parsed.bozo and not parsed.entries:
        raise CorruptDocument(f"{feed_url}: not a readable RSS/Atom feed ({parsed.get('bozo_exception')})")
    publisher = (parsed.feed.get("title") or "").strip() or None
    items: list[SourceItem] = []
    seen: set[str] = set()
    for entry in parsed.entries:
        link = _report_link(entry, feed_url)
        if not link or link in seen:
            continue
        seen.add(link)
        published = _entry_date(entry)
        items.append(SourceItem(
            location=link,
            title=(entry.get("title") or "").strip() or None,
            publisher=publisher,
            published=published,
            published_year=published.year if published else None,
            feed=feed_url,
        ))
    return items


def _report_link(entry: dict, feed_url: str) -> str | None:
    candidates = [link for link in entry.get("links", []) if link.get("href")]
    for link in candidates:
        if link.get("type", "").lower() == "application/pdf" or link.get("href", "").lower().endswith(".pdf"):
            return urljoin(feed_url, link["href"].strip())
    href = entry.get("link") or next((link["href"] for link in candidates if link.get("rel") == "alternate"), None)
    return urljoin(feed_url, href.strip()) if href else None


def _entry_date(entry: dict) -> date | None:
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        value = entry.get(key)
        if value:
            try:
                return date(value.tm_year, value.tm_mon, value.tm_mday)
            except ValueError:
                continue
    return None
