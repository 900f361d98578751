"""Inputs → source items: folders, single files, manifest CSVs (ours and APTnotes'), URLs.

A manifest CSV has the header ``url,title,publisher,published`` (extra columns ignored); ``url``
is a URL (anything with a ``scheme://``; only http and https are fetched) or a path, relative to
the manifest's folder; ``published`` is an ISO date or a year (any other value is kept on the item,
``invalid_published``, for the report's notes, and the date left empty). The
APTnotes index (``Filename,Title,Source,Link,SHA-1,Date,Year``) and folder indexes with
``filename,title,vendor,date,year`` columns are read as manifests too. A folder given as input brings
the metadata of the manifests lying in it (``folder_index``) to its files; the other files of a folder
that are no document type we read are listed by ``skipped_files``.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, replace
from datetime import date, datetime
from pathlib import Path

# Manifest columns by role, first match wins: ours, then APTnotes' and simple folder indexes'.
COLUMN_NAMES = {
    "url": ("url", "link", "path", "file", "filename"),
    "title": ("title",),
    "publisher": ("publisher", "source", "vendor"),
    "published": ("published", "date"),
}
DOCUMENT_SUFFIXES = {".pdf", ".html", ".htm", ".xhtml", ".txt", ".md", ".text"}
# files that describe a folder rather than report on an intrusion (README.md, LICENSE.txt, …): a folder
# given as input leaves them out; named on their own, they are read like any document
FOLDER_DOCUMENTATION = {"readme", "license", "licence", "copying", "notice", "changelog", "contributing"}
_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")


def is_url(location: str) -> bool:
    """True for ``scheme://…`` locations (fetched, or refused when the scheme is not http/https)."""
    return bool(_URL.match(location))


@dataclass(frozen=True)
class SourceItem:
    """One document to ingest, with what its manifest says about it."""

    location: str  # absolute path or URL
    title: str | None = None
    publisher: str | None = None
    published: date | None = None
    published_year: int | None = None
    feed: str | None = None  # the feed that listed it, if any
    invalid_published: str | None = None  # the manifest's ``published`` value when it is no date or year
    ignored_listing: str | None = None  # another listing of the same source whose other metadata was not used

    @property
    def is_url(self) -> bool:
        return is_url(self.location)

    @property
    def notes(self) -> tuple[str, ...]:
        """What the report's notes say about this item's manifest metadata (a ``published`` value that
        was ignored because it is no date or year; a second listing of the source that said otherwise)."""
        notes = []
        if self.invalid_published is not None:
            notes.append(f"manifest 'published' value {self.invalid_published!r} is not a date or a year; ignored")
        if self.ignored_listing is not None:
            notes.append(f"listed again with other metadata ({self.ignored_listing}); the first listing's is used")
        return tuple(notes)

    def metadata(self) -> dict[str, str]:
        """The metadata this listing gives, as text (for comparing two listings of one source)."""
        values = {"title": self.title, "publisher": self.publisher,
                  "published": self.published.isoformat() if self.published else self.published_year}
        return {key: str(value) for key, value in values.items() if value is not None}


class SourceError(ValueError):
    """An input that cannot be turned into sources (missing path, unreadable manifest)."""


def parse_published(value: str | None) -> tuple[date | None, int | None]:
    """An ISO date, a year, or a US m/d/yy date → (date or None, year or None)."""
    value = (value or "").strip()
    if not value:
        return None, None
    if re.fullmatch(r"\d{4}", value):
        return None, int(value)
    for parse in (date.fromisoformat, lambda v: datetime.strptime(v, "%m/%d/%y").date(),
                  lambda v: datetime.strptime(v, "%m/%d/%Y").date()):
        try:
            parsed = parse(value[:10] if parse is date.fromisoformat else value)
            return parsed, parsed.year
        except ValueError:
            continue
    return None, None


def read_manifest(path: Path) -> list[SourceItem]:
    """Source items from a manifest CSV (our format or APTnotes')."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        fields = {f.strip().lower(): f for f in reader.fieldnames or []}
        columns = {role: next((fields[n] for n in names if n in fields), None) for role, names in COLUMN_NAMES.items()}
        if columns["url"] is None:
            raise SourceError(f"{path}: a manifest needs a 'url' column (header url,title,publisher,published)")
        items = []
        for row in reader:
            location = (row.get(columns["url"]) or "").strip()
            if not location:
                continue
            if not is_url(location):
                location = str((path.parent / location).resolve())
            stated = (row.get(columns["published"] or "") or "").strip()
            published, year = parse_published(stated)
            invalid_published = stated if stated and (published, year) == (None, None) else None
            if year is None and "year" in fields:
                _, year = parse_published(row.get(fields["year"]))
            items.append(SourceItem(
                location=location,
                title=(row.get(columns["title"] or "") or "").strip() or None,
                publisher=(row.get(columns["publisher"] or "") or "").strip() or None,
                published=published,
                published_year=year,
                invalid_published=invalid_published,
            ))
        return items


def folder_index(folder: Path) -> dict[str, SourceItem]:
    """What the manifests lying in ``folder`` (each ``*.csv`` directly in it that reads as one, such as an
    ``index.csv`` with ``filename,title,vendor,date``) say about its files: path → item with that metadata.

    A CSV that is not a manifest is data, not an error, and is skipped; rows naming URLs are ignored (a
    folder input means its files). The first manifest (by name) to describe a file wins.
    """
    described: dict[str, SourceItem] = {}
    for rows in _folder_manifests(folder).values():
        for item in rows:
            if not item.is_url:
                described.setdefault(item.location, item)
    return described


def _folder_manifests(folder: Path) -> dict[Path, list[SourceItem]]:
    """The CSVs directly in ``folder`` that read as manifests (by name), with their items; a CSV that
    does not is data and left out."""
    manifests: dict[Path, list[SourceItem]] = {}
    for manifest in sorted(folder.glob("*.csv")):
        try:
            manifests[manifest] = read_manifest(manifest)
        except (SourceError, csv.Error, UnicodeDecodeError, ValueError):
            continue
    return manifests


def _folder_files(folder: Path) -> list[Path]:
    """The files under ``folder`` that may be reports, sorted: hidden ones and the folder's own
    documentation (README, LICENSE …) left out."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.stem.lower() not in FOLDER_DOCUMENTATION
                  and not any(part.startswith(".") for part in p.relative_to(folder).parts))


def skipped_files(inputs: list[str]) -> list[Path]:
    """The files of the input folders that are not ingested because they are no document type we read
    (not PDF, HTML or text: ``.docx``, ``.png`` …). The manifests that describe a folder's files, its
    documentation and hidden files are left out on purpose and not listed."""
    skipped: set[Path] = set()
    for raw in inputs:
        folder = Path(raw).expanduser()
        if is_url(raw) or not folder.is_dir():
            continue
        manifests = set(_folder_manifests(folder))
        skipped.update(p.resolve() for p in _folder_files(folder)
                       if p.suffix.lower() not in DOCUMENT_SUFFIXES and p not in manifests)
    return sorted(skipped)


def describe_skipped(files: list[Path]) -> str | None:
    """One line for people about ``skipped_files``: how many and which kinds, or None when there are none."""
    if not files:
        return None
    kinds = sorted({p.suffix.lower() or "no extension" for p in files})
    return f"{len(files)} file{'s' if len(files) > 1 else ''} skipped (not PDF, HTML or text: {', '.join(kinds)})"


def collect_sources(inputs: list[str]) -> list[SourceItem]:
    """Expand inputs into source items, in a stable order, without duplicates."""
    items: list[SourceItem] = []
    for raw in inputs:
        if is_url(raw):
            items.append(SourceItem(location=raw))
            continue
        path = Path(raw).expanduser()
        if not path.exists():
            raise SourceError(f"{raw}: no such file or folder")
        if path.is_dir():
            files = [p for p in _folder_files(path) if p.suffix.lower() in DOCUMENT_SUFFIXES]
            described = folder_index(path)
            items.extend(described.get(str(p.resolve())) or SourceItem(location=str(p.resolve())) for p in files)
        elif path.suffix.lower() == ".csv":
            items.extend(read_manifest(path))
        else:
            items.append(SourceItem(location=str(path.resolve())))
    unique: dict[str, SourceItem] = {}
    for item in items:
        first = unique.get(item.location)
        if first is None:
            unique[item.location] = item
            continue
        other = {key: value for key, value in item.metadata().items() if first.metadata().get(key) != value}
        if other and first.ignored_listing is None:  # metadata the first listing does not give is not lost unsaid
            unique[item.location] = replace(first, ignored_listing=", ".join(f"{k} {v!r}" for k, v in other.items()))
    return list(unique.values())
