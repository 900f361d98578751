"""Settings: paths, limits and the sighting rule, read from ``BREACHMINER_*`` environment variables.

Every setting has a default that works on a fresh clone; the environment overrides it, and the CLI
overrides the environment where it has a flag (``--db`` over ``BREACHMINER_DB``).

| variable | default | meaning |
|---|---|---|
| ``BREACHMINER_DB`` | ``./breachminer.duckdb`` | the DuckDB warehouse file |
| ``BREACHMINER_HOME`` | ``~/.breachminer`` | user data: an updated ATT&CK catalog |
| ``BREACHMINER_CATALOG`` | ``$BREACHMINER_HOME/attack-catalog.json`` if present, else the packaged one | catalog JSON |
| ``BREACHMINER_WORKERS`` | number of CPUs | documents extracted and tagged in parallel |
| ``BREACHMINER_MAX_BYTES`` | 100 MB | larger inputs are refused (recorded as a failure) |
| ``BREACHMINER_MAX_PAGES`` | 500 | PDF pages read per document; the rest is skipped and noted |
| ``BREACHMINER_SIGHTING_THRESHOLD`` | model's calibrated value, else 0.6 | evidence a technique needs to count |
| ``BREACHMINER_MODEL_DIR`` | ``models/artifacts`` (shipped) | the classifier artifact and its card |
| ``BREACHMINER_CLASSIFIER`` | ``1`` | ``0`` tags with id, name and lexicon only |
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from breachminer.catalog import PACKAGED_CATALOG

# Calibrated on 121 TRAM annotated reports (the 30 held-out ones excluded): see extractors/sightings.py.
DEFAULT_SIGHTING_THRESHOLD = 0.6


def _env(name: str, default: str) -> str:
    value = os.environ.get(name, "").strip()
    return value or default


@dataclass(frozen=True)
class Settings:
    """Resolved settings for one process."""

    db_path: Path
    home: Path
    catalog_path: Path
    workers: int
    max_bytes: int
    max_pages: int
    sighting_threshold: float | None  # None: the model's calibrated value, or the rules-only default
    model_dir: Path | None
    use_classifier: bool

    @classmethod
    def from_env(cls) -> Settings:
        home = Path(_env("BREACHMINER_HOME", str(Path.home() / ".breachminer"))).expanduser()
        user_catalog = home / "attack-catalog.json"
        default_catalog = user_catalog if user_catalog.exists() else PACKAGED_CATALOG
        return cls(
            db_path=Path(_env("BREACHMINER_DB", "breachminer.duckdb")).expanduser(),
            home=home,
            catalog_path=Path(_env("BREACHMINER_CATALOG", str(default_catalog))).expanduser(),
            workers=max(1, int(_env("BREACHMINER_WORKERS", str(os.cpu_count() or 1)))),
            max_bytes=int(_env("BREACHMINER_MAX_BYTES", str(100 * 1024 * 1024))),
            max_pages=int(_env("BREACHMINER_MAX_PAGES", "500")),
            sighting_threshold=float(os.environ["BREACHMINER_SIGHTING_THRESHOLD"])
            if os.environ.get("BREACHMINER_SIGHTING_THRESHOLD", "").strip() else None,
            model_dir=Path(os.environ["BREACHMINER_MODEL_DIR"]) if os.environ.get("BREACHMINER_MODEL_DIR") else None,
            use_classifier=_env("BREACHMINER_CLASSIFIER", "1") not in ("0", "false", "no"),
        )


def get_settings() -> Settings:
    """Settings as the environment says now (not cached: tests and the CLI change the environment)."""
    return Settings.from_env()
