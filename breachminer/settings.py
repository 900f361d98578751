"""Settings: paths, limits and the sighting rule, read from ``BREACHMINER_*`` environment variables.

Every setting has a default that works on a fresh clone; the environment overrides it, and the CLI
overrides the environment where it has a flag (``--db`` over ``BREACHMINER_DB``).

| variable | default | meaning |
|---|---|---|
| ``BREACHMINER_DB`` | ``./breachminer.duckdb`` | the DuckDB warehouse file |
| ``BREACHMINER_HOME`` | ``~/.breachminer`` | user data: an updated ATT&CK catalog |
| ``BREACHMINER_CATALOG`` | ``$BREACHMINER_HOME/attack-catalog.json`` if present, else the packaged one | catalog JSON |
| ``BREACHMINER_WORKERS`` | 1 | analysis processes; more pay off only for large backfills on many cores |
| ``BREACHMINER_MAX_BYTES`` | 100 MB | larger inputs are refused (recorded as a failure) |
| ``BREACHMINER_MAX_PAGES`` | 500 | PDF pages read per document; the rest is skipped and noted |
| ``BREACHMINER_ANALYSIS_TIMEOUT`` | 900 s | a document analysed longer is stopped (recorded, retried); 0: no limit |
| ``BREACHMINER_OCR`` | ``1`` | ``0``: PDFs without a text layer fail instead of being read by OCR (Tesseract) |
| ``BREACHMINER_TESSERACT`` | ``tesseract`` | the Tesseract command or its path (``apt-get install tesseract-ocr``) |
| ``BREACHMINER_OCR_LANGUAGE`` | ``eng`` | Tesseract language(s), e.g. ``eng+deu`` (each needs its language data) |
| ``BREACHMINER_OCR_MAX_PAGES`` | 50 | pages OCR'd per document (~1.3 s each); the rest is skipped and noted |
| ``BREACHMINER_SIGHTING_THRESHOLD`` | calibrated, else 0.6 | evidence to count (a change re-decides reports) |
| ``BREACHMINER_MODEL_DIR`` | ``models/artifacts`` (shipped) | the classifier artifact and its card |
| ``BREACHMINER_CLASSIFIER`` | ``1`` | ``0`` tags with id, name and lexicon only |
| ``BREACHMINER_CACHE`` | ``reports_corpus/cache`` (checkout) or ``$BREACHMINER_HOME/cache`` | fetched bytes |
| ``BREACHMINER_ALLOW_PRIVATE`` | ``0`` | ``1`` lets URLs resolve to private/loopback addresses |
| ``BREACHMINER_OFFLINE`` | ``0`` | ``1``: no network; URLs come from the cache or are skipped |
| ``BREACHMINER_RESPECT_ROBOTS`` | ``1`` | ``0`` ignores robots.txt |
| ``BREACHMINER_CONNECT_TIMEOUT`` / ``BREACHMINER_READ_TIMEOUT`` | 10 / 30 s | per connection / per read |
| ``BREACHMINER_FETCH_DEADLINE`` | 300 s | one whole request, headers and body |
| ``BREACHMINER_FETCH_RETRIES`` | 3 | retries within a run (429, 5xx, timeouts, dropped connections) |
| ``BREACHMINER_FETCH_BACKOFF`` | 1 s | first in-run retry delay, doubled each time |
| ``BREACHMINER_MAX_RETRY_AFTER`` | 120 s | a longer ``Retry-After`` defers the URL to a later run |
| ``BREACHMINER_MAX_REDIRECTS`` | 5 | redirect hops followed |
| ``BREACHMINER_HOST_DELAY`` | 1 s | between two requests to one host (robots ``Crawl-delay`` if longer) |
| ``BREACHMINER_FETCH_WORKERS`` | 4 | downloads in parallel (one at a time per host) |
| ``BREACHMINER_RETRY_DELAY`` | 3600 s | a failed source waits this long for a later run's retry, doubled per attempt |
| ``BREACHMINER_MAX_ATTEMPTS`` | 5 | failed runs before a source is given up (still listed; ``--retry-failed``) |
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from breachminer.catalog import PACKAGED_CATALOG

CHECKOUT_CORPUS = Path(__file__).resolve().parents[1] / "reports_corpus"

# Calibrated on 121 TRAM annotated reports (the 30 held-out ones excluded): see extractors/sightings.py.
DEFAULT_SIGHTING_THRESHOLD = 0.6


@dataclass(frozen=True)
class OcrOptions:
    """How pages without a text layer are read; ``enabled=False`` never runs Tesseract."""

    enabled: bool = True
    tesseract: str = "tesseract"  # the command, or its path
    language: str = "eng"
    dpi: int = 200
    max_pages: int = 50  # pages OCR'd per document; the rest are skipped and noted
    page_timeout: float = 120.0  # seconds for one page

    def command(self) -> str | None:
        """The Tesseract executable, or None when OCR is off or Tesseract is not installed."""
        return shutil.which(self.tesseract) if self.enabled else None


class SettingsError(ValueError):
    """A ``BREACHMINER_*`` variable holds a value the setting cannot take (the message names it)."""


def _env(name: str, default: str) -> str:
    value = os.environ.get(name, "").strip()
    return value or default


def _number(name: str, default: str, low: float = 0.0, high: float = float("inf"),
            low_open: bool = False) -> float:
    """A numeric setting in ``[low, high]`` (``(low, high]`` with ``low_open``); anything else is a
    ``SettingsError`` that names the variable, instead of a traceback from deep inside a run."""
    raw = _env(name, default)
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a number") from None
    if not (low < value if low_open else low <= value) or not value <= high:
        bounds = f"{'above' if low_open else 'at least'} {low:g}"
        if high < float("inf"):
            bounds += f" and at most {high:g}"
        raise SettingsError(f"{name}={raw!r} is out of range: it must be {bounds}")
    return value


def _integer(name: str, default: str, low: int = 0) -> int:
    """A whole-number setting of at least ``low`` (see ``_number``)."""
    value = _number(name, default, low)
    if value != int(value):
        raise SettingsError(f"{name}={_env(name, default)!r} is not a whole number")
    return int(value)


@dataclass(frozen=True)
class Settings:
    """Resolved settings for one process."""

    db_path: Path
    home: Path
    catalog_path: Path
    workers: int
    max_bytes: int
    max_pages: int
    analysis_timeout: float  # seconds per document (run in a forked child); 0 runs in-process without a limit
    sighting_threshold: float | None  # None: the model's calibrated value, or the rules-only default
    model_dir: Path | None
    use_classifier: bool
    cache_dir: Path
    allow_private: bool
    offline: bool
    respect_robots: bool
    connect_timeout: float
    read_timeout: float
    fetch_deadline: float
    fetch_retries: int
    fetch_backoff: float
    max_retry_after: float
    max_redirects: int
    host_delay: float
    fetch_workers: int
    retry_delay: float
    max_attempts: int
    ocr: OcrOptions

    @classmethod
    def from_env(cls) -> Settings:
        home = Path(_env("BREACHMINER_HOME", str(Path.home() / ".breachminer"))).expanduser()
        user_catalog = home / "attack-catalog.json"
        default_catalog = user_catalog if user_catalog.exists() else PACKAGED_CATALOG
        return cls(
            db_path=Path(_env("BREACHMINER_DB", "breachminer.duckdb")).expanduser(),
            home=home,
            catalog_path=Path(_env("BREACHMINER_CATALOG", str(default_catalog))).expanduser(),
            workers=_integer("BREACHMINER_WORKERS", "1", 1),  # a process pool costs more than it saves (README)
            max_bytes=_integer("BREACHMINER_MAX_BYTES", str(100 * 1024 * 1024), 1),
            max_pages=_integer("BREACHMINER_MAX_PAGES", "500", 1),
            analysis_timeout=_number("BREACHMINER_ANALYSIS_TIMEOUT", "900"),
            sighting_threshold=_number("BREACHMINER_SIGHTING_THRESHOLD", "", 0.0, 1.0, low_open=True)
            if os.environ.get("BREACHMINER_SIGHTING_THRESHOLD", "").strip() else None,
            model_dir=Path(os.environ["BREACHMINER_MODEL_DIR"]) if os.environ.get("BREACHMINER_MODEL_DIR") else None,
            use_classifier=_flag("BREACHMINER_CLASSIFIER", True),
            cache_dir=Path(_env("BREACHMINER_CACHE", str(CHECKOUT_CORPUS / "cache" if CHECKOUT_CORPUS.is_dir()
                                                         else home / "cache"))).expanduser(),
            allow_private=_flag("BREACHMINER_ALLOW_PRIVATE", False),
            offline=_flag("BREACHMINER_OFFLINE", False),
            respect_robots=_flag("BREACHMINER_RESPECT_ROBOTS", True),
            connect_timeout=_number("BREACHMINER_CONNECT_TIMEOUT", "10", low_open=True),
            read_timeout=_number("BREACHMINER_READ_TIMEOUT", "30", low_open=True),
            fetch_deadline=_number("BREACHMINER_FETCH_DEADLINE", "300", low_open=True),
            fetch_retries=_integer("BREACHMINER_FETCH_RETRIES", "3"),
            fetch_backoff=_number("BREACHMINER_FETCH_BACKOFF", "1"),
            max_retry_after=_number("BREACHMINER_MAX_RETRY_AFTER", "120"),
            max_redirects=_integer("BREACHMINER_MAX_REDIRECTS", "5"),
            host_delay=_number("BREACHMINER_HOST_DELAY", "1"),
            fetch_workers=_integer("BREACHMINER_FETCH_WORKERS", "4", 1),
            retry_delay=_number("BREACHMINER_RETRY_DELAY", "3600"),
            max_attempts=_integer("BREACHMINER_MAX_ATTEMPTS", "5", 1),
            ocr=OcrOptions(enabled=_flag("BREACHMINER_OCR", True), tesseract=_env("BREACHMINER_TESSERACT", "tesseract"),
                           language=_env("BREACHMINER_OCR_LANGUAGE", "eng"),
                           max_pages=_integer("BREACHMINER_OCR_MAX_PAGES", "50", 1)),
        )


def _flag(name: str, default: bool) -> bool:
    return _env(name, "1" if default else "0").lower() not in ("0", "false", "no", "off")


def get_settings() -> Settings:
    """Settings as the environment says now (not cached: tests and the CLI change the environment)."""
    return Settings.from_env()
