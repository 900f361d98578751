"""Inputs → source items: folders, manifests (ours and APTnotes'), dates."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from conftest import REPO, SHARED_DATA, needs_shared

from extractors.sources import SourceError, collect_sources, parse_published, read_manifest


def test_default_manifest_lists_the_samples_and_public_reports() -> None:
    items = read_manifest(REPO / "reports_corpus" / "sources.csv")
    samples = [item for item in items if not item.is_url]
    urls = [item for item in items if item.is_url]
    assert [item.location for item in samples] == [item.location for item in
                                                    read_manifest(REPO / "reports_corpus" / "samples.csv")]
    assert len(samples) == 4 and all(item.location.startswith(str(REPO)) for item in samples)
    assert len(urls) >= 10 and all(item.location.startswith("https://") for item in urls)
    assert len({item.location.split("/")[2] for item in urls}) >= 4  # several publishers
    assert all(item.title and item.publisher and item.published for item in items)


def test_any_scheme_is_a_url_not_a_path(tmp_path) -> None:
    manifest = tmp_path / "m.csv"
    manifest.write_text("url\nftp://example.org/r.pdf\nfile:///etc/passwd\nlocal.pdf\n")
    items = read_manifest(manifest)
    assert [item.is_url for item in items] == [True, True, False]
    assert items[0].location == "ftp://example.org/r.pdf"  # refused later by the fetcher, with its reason


def test_manifest_paths_are_relative_to_the_manifest_and_extra_columns_ignored(tmp_path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.txt").write_text("x")
    manifest = tmp_path / "m.csv"
    manifest.write_text("url,title,publisher,published,notes\n"
                        "docs/a.txt,A,Pub,2019,ignored\n"
                        "https://example.org/r.pdf,R,,2021-05-04,\n")
    items = read_manifest(manifest)
    assert items[0].location == str(tmp_path / "docs" / "a.txt")
    assert (items[0].published, items[0].published_year) == (None, 2019)
    assert items[1].is_url and items[1].published == date(2021, 5, 4)


def test_folders_expand_to_documents_only(tmp_path) -> None:
    for name in ("b.pdf", "a.html", "notes.txt", "index.csv", "image.png", "README.md", "LICENSE.txt"):
        (tmp_path / name).write_text("x")
    items = collect_sources([str(tmp_path)])
    # the folder's own README and LICENSE describe it; they are no reports
    assert [item.location.rsplit("/", 1)[-1] for item in items] == ["a.html", "b.pdf", "notes.txt"]
    readme = collect_sources([str(tmp_path / "README.md")])  # named on its own, it is read
    assert [item.location.rsplit("/", 1)[-1] for item in readme] == ["README.md"]


def test_a_folder_brings_the_metadata_of_its_index(tmp_path) -> None:
    """A folder of reports with an index (filename,title,vendor,date) gets titles, publishers and dates from it;
    CSVs that are not manifests are data, and rows naming URLs or other folders' files add nothing."""
    for name in ("a.txt", "b.txt"):
        (tmp_path / name).write_text("x")
    (tmp_path / "index.csv").write_text(
        "filename,format,title,vendor,date,year\n"
        "a.txt,txt,Operation Example,Example Labs,3/14/22,2022\n"
        "https://example.org/c.pdf,pdf,Elsewhere,Other,,2020\n"
        "../outside.txt,txt,Outside,Other,,2020\n")
    (tmp_path / "measurements.csv").write_text("host,bytes\nx,1\n")
    items = {item.location.rsplit("/", 1)[-1]: item for item in collect_sources([str(tmp_path)])}
    assert sorted(items) == ["a.txt", "b.txt"]
    described = items["a.txt"]
    assert (described.title, described.publisher, described.published) == (
        "Operation Example", "Example Labs", date(2022, 3, 14))
    assert (items["b.txt"].title, items["b.txt"].publisher) == (None, None)


def test_missing_input_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(SourceError, match="no such file"):
        collect_sources([str(tmp_path / "nope")])


def test_manifest_without_url_column_is_refused(tmp_path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("name,title\nx,y\n")
    with pytest.raises(SourceError, match="url"):
        read_manifest(bad)


@pytest.mark.parametrize(("value", "expected"), [
    ("2020-10-28", (date(2020, 10, 28), 2020)), ("2015", (None, 2015)), ("8/3/11", (date(2011, 8, 3), 2011)),
    ("", (None, None)), ("soon", (None, None)),
])
def test_published_forms(value, expected) -> None:
    assert parse_published(value) == expected


@needs_shared
def test_aptnotes_index_reads_as_a_manifest() -> None:
    items = read_manifest(SHARED_DATA / "sources" / "APTnotes.csv")
    assert len(items) == 689
    assert all(item.is_url for item in items)
    assert sum(1 for item in items if item.publisher) > 600


@needs_shared
def test_a_folder_index_with_filename_vendor_date_reads_as_a_manifest() -> None:
    items = read_manifest(SHARED_DATA / "reports" / "index.csv")
    assert len(items) == 29
    assert all(Path(item.location).exists() for item in items)
    assert all(item.publisher for item in items)
    cisa = next(item for item in items if item.location.endswith("2020_CISA_AA20-302A.pdf"))
    assert (cisa.publisher, cisa.published) == ("CISA / FBI / HHS", date(2020, 10, 28))
    assert sum(1 for item in items if item.published_year) >= 26


def test_a_source_listed_twice_keeps_the_first_listing_and_notes_what_the_other_said(tmp_path) -> None:
    manifest = tmp_path / "m.csv"
    manifest.write_text("url,title,published\n"
                        "https://example.org/r.pdf,Report,2020\n"
                        "https://example.org/r.pdf,Report,2021-05-01\n"   # says otherwise: noted, not used
                        "https://example.org/s.pdf,Same,2019\n"
                        "https://example.org/s.pdf,Same,2019\n")          # says the same: nothing to note
    first, second = collect_sources([str(manifest)])
    assert (first.location, first.published_year, first.published) == ("https://example.org/r.pdf", 2020, None)
    assert first.notes == ("listed again with other metadata (published '2021-05-01'); the first listing's is used",)
    assert second.notes == ()
