"""What an ingest tells its user: refusals lifted by a changed setting, revisions in the summary, skipped
files, the exit status of a run where everything failed, and manifest dates that could not be read."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import SAMPLES
from loopback import LoopbackServer
from typer.testing import CliRunner

import warehouse.db as wh
from breachminer.cli import app
from extractors.sources import collect_sources, describe_skipped, read_manifest, skipped_files
from flows.ingest import run_ingest

pytestmark = pytest.mark.usefixtures("prefect_harness")

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


@pytest.fixture()
def quick_env(tmp_path, monkeypatch) -> None:
    """The rule taggers only (no model to load), the default retry backoff, fast loopback fetches."""
    for key, value in {"BREACHMINER_CLASSIFIER": "0", "BREACHMINER_CACHE": str(tmp_path / "cache"),
                       "BREACHMINER_HOST_DELAY": "0", "BREACHMINER_FETCH_RETRIES": "0",
                       "BREACHMINER_RETRY_DELAY": "3600", "BREACHMINER_OFFLINE": "0"}.items():
        monkeypatch.setenv(key, value)


def failure_rows(db_file: Path) -> list[tuple]:
    with wh.connect(db_file, read_only=True) as con:
        return con.execute("SELECT error_class, attempts, resolved_at IS NOT NULL FROM failures").fetchall()


# ---------------------------------------------------------------- A. a refusal by a setting, then the setting


def test_a_private_address_refused_before_is_fetched_at_once_with_allow_private(db_file, quick_env) -> None:
    """The user's repro: refused (loopback), then re-run with --allow-private within the retry delay."""
    with LoopbackServer({"report.txt": SAMPLES / "2026-cloud-bec.txt"}) as server:
        link = f"{server.url}/files/report.txt"
        refused = invoke("ingest", link, "--db", str(db_file))
        assert "--allow-private" in refused.output and not server.arrivals
        still_refused = invoke("ingest", link, "--db", str(db_file))  # the setting unchanged: the backoff holds
        assert "1 failed before and not due yet" in still_refused.output and not server.arrivals
        allowed = invoke("ingest", link, "--db", str(db_file), "--allow-private")
        assert [path for _t, path, _ua in server.arrivals] == ["/robots.txt", "/files/report.txt"]
    assert allowed.exit_code == 0, allowed.output
    assert "1 sources → 1 new" in allowed.output and "not due yet" not in allowed.output
    assert failure_rows(db_file) == [("PrivateAddress", 1, True)]


def test_a_robots_refusal_is_retried_with_robots_ignored_even_when_given_up(db_file, quick_env,
                                                                             monkeypatch) -> None:
    monkeypatch.setenv("BREACHMINER_MAX_ATTEMPTS", "1")  # the first failure gives the source up
    with LoopbackServer({"report.txt": SAMPLES / "2026-cloud-bec.txt"}) as server:
        link = f"{server.url}/private/report.txt"  # robots.txt disallows /private/
        refused = run_ingest([link], str(db_file), workers=1, allow_private=True)
        again = run_ingest([link], str(db_file), workers=1, allow_private=True)
        ignoring = run_ingest([link], str(db_file), workers=1, allow_private=True, respect_robots=False)
        fetched = [path for _t, path, _ua in server.arrivals if path != "/robots.txt"]
    assert (refused["failed"], again["deferred"], ignoring["new"]) == (1, 1, 1)
    assert fetched == ["/private/report.txt"]  # only by the run that ignored robots.txt
    assert failure_rows(db_file) == [("RobotsDisallowed", 1, True)]


def test_a_size_refusal_is_retried_at_once_when_the_limit_is_raised(tmp_path, db_file, quick_env,
                                                                     monkeypatch) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(SAMPLES / "2026-cloud-bec.txt", folder / "report.txt")  # 17 kB each
    with LoopbackServer({"served.html": SAMPLES / "2025-ransomware-manufacturing.html"}) as server:
        sources = [str(folder), f"{server.url}/files/served.html"]
        monkeypatch.setenv("BREACHMINER_MAX_BYTES", "1000")
        refused = run_ingest(sources, str(db_file), workers=1, allow_private=True)
        same_limit = run_ingest(sources, str(db_file), workers=1, allow_private=True)
        monkeypatch.setenv("BREACHMINER_MAX_BYTES", "100000")
        raised = run_ingest(sources, str(db_file), workers=1, allow_private=True)
    assert (refused["failed"], same_limit["deferred"], raised["new"], raised["deferred"]) == (2, 2, 2, 0)
    assert sorted(failure_rows(db_file)) == [("BodyTooLarge", 1, True), ("DocumentTooLarge", 1, True)]


# ---------------------------------------------------------------- B. revisions in the summary line


def test_the_summary_counts_a_revised_report(tmp_path, db_file, quick_env) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    post = folder / "post.txt"
    text = (SAMPLES / "2026-cloud-bec.txt").read_text()
    post.write_text(text)
    first = invoke("ingest", str(folder), "--db", str(db_file))
    assert "1 sources → 1 new, 0 unchanged" in first.output  # no "0 revised" when there is none
    post.write_text(text + "\n\nUpdate: the affiliate later encrypted the file servers with ransomware (T1486).\n")
    second = invoke("ingest", str(folder), "--db", str(db_file))
    assert second.exit_code == 0, second.output
    assert "1 sources → 0 new, 1 revised, 0 unchanged, 0 duplicate, 0 failed" in second.output


# ---------------------------------------------------------------- C. skipped files; D. exit status


def test_skipped_files_are_listed_by_kind_and_nothing_else(tmp_path) -> None:
    """Files of no type we read are skipped files; the folder's manifest, documentation and hidden files are
    left out on purpose, and a CSV that is no manifest is data we do not read."""
    (tmp_path / "sub").mkdir()
    (tmp_path / ".git").mkdir()
    for name in ("a.txt", "b.pdf", "brief.docx", "sub/diagram.png", "sub/c.html", "README.md", "LICENSE",
                 ".git/config", ".DS_Store", "measurements.csv"):
        (tmp_path / name).write_text("x")
    (tmp_path / "index.csv").write_text("filename,title\na.txt,A\n")
    skipped = skipped_files([str(tmp_path), str(tmp_path / "a.txt"), "https://example.org/r.pdf"])
    assert [p.relative_to(tmp_path).as_posix() for p in skipped] == ["brief.docx", "measurements.csv",
                                                                       "sub/diagram.png"]
    assert describe_skipped(skipped) == "3 files skipped (not PDF, HTML or text: .csv, .docx, .png)"
    assert describe_skipped([]) is None
    ingested = [Path(item.location).relative_to(tmp_path).as_posix() for item in collect_sources([str(tmp_path)])]
    assert ingested == ["a.txt", "b.pdf", "sub/c.html"]  # which files are ingested is unchanged


def test_a_folder_run_says_what_it_skipped_and_exits_0_when_some_loaded(tmp_path, db_file, quick_env) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(SAMPLES / "2026-cloud-bec.txt", folder / "good.txt")
    (folder / "broken.pdf").write_bytes(b"%PDF-1.7\n\x00\x01 not really a pdf")
    (folder / "brief.docx").write_bytes(b"PK\x03\x04")
    (folder / "diagram.png").write_bytes(b"\x89PNG\r\n")
    result = invoke("ingest", str(folder), "--db", str(db_file))
    assert result.exit_code == 0, result.output  # a failure beside a loaded report is recorded for retry
    assert "2 sources → 1 new, 0 unchanged, 0 duplicate, 1 failed" in result.output
    assert "2 files skipped (not PDF, HTML or text: .docx, .png)" in result.output
    assert run_ingest([str(folder)], str(db_file), workers=1)["skipped_note"] == (
        "2 files skipped (not PDF, HTML or text: .docx, .png)")


def test_a_run_where_every_source_failed_exits_1_after_recording_and_reporting(tmp_path, db_file,
                                                                                quick_env) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "broken.pdf").write_bytes(b"%PDF-1.7\n\x00\x01 not really a pdf")
    (folder / "tiny.txt").write_text("too short")
    result = invoke("ingest", str(folder), "--db", str(db_file))
    assert result.exit_code == 1
    assert "2 sources → 0 new, 0 unchanged, 0 duplicate, 2 failed" in result.output
    assert "2 failed this run" in result.output and "every source tried failed" in result.output
    assert sorted(failure_rows(db_file)) == [("CorruptDocument", 1, False), ("ExtractionError", 1, False)]
    with wh.connect(db_file, read_only=True) as con:
        assert con.execute("SELECT status, n_failed FROM runs").fetchall() == [("completed", 2)]
    # the flow itself (what `serve` runs on a schedule) returns its counts; only the command's status changes
    forced = run_ingest([str(folder)], str(db_file), workers=1, retry_failed=True)
    assert (forced["failed"], forced["new"]) == (2, 0)


# ---------------------------------------------------------------- E. a manifest date that is no date


def test_an_invalid_published_date_is_noted_not_dropped_silently(tmp_path, db_file, quick_env) -> None:
    text = (SAMPLES / "2026-cloud-bec.txt").read_text()
    (tmp_path / "bec.txt").write_text(text.replace("Published: 2026-02-09\n", ""))  # no date of its own
    manifest = tmp_path / "m.csv"
    manifest.write_text("url,title,publisher,published\nbec.txt,Cloud BEC,Example Labs,2024-13-45\n")
    [item] = read_manifest(manifest)
    assert (item.published, item.published_year, item.invalid_published) == (None, None, "2024-13-45")
    result = invoke("ingest", str(manifest), "--db", str(db_file))
    assert result.exit_code == 0, result.output
    assert "1 sources → 1 new" in result.output and "'2024-13-45' is not a date or a year" in result.output
    with wh.connect(db_file, read_only=True) as con:
        [(title, published, notes)] = con.execute("SELECT title, published, notes FROM reports").fetchall()
    assert (title, published) == ("Cloud BEC", None)
    assert notes == "manifest 'published' value '2024-13-45' is not a date or a year; ignored"


@pytest.mark.parametrize("value", ["2024-03-05", "2019", "3/14/22", ""])
def test_readable_or_empty_published_values_are_not_noted(tmp_path, value) -> None:
    manifest = tmp_path / "m.csv"
    manifest.write_text(f"url,published\nr.txt,{value}\n")
    [item] = read_manifest(manifest)
    assert item.invalid_published is None and item.notes == ()


def test_a_manifest_year_sets_aside_a_document_date_in_another_year(tmp_path, db_file, quick_env) -> None:
    """The manifest wins: a year-only value keeps the document's date only when it falls in that year, so that
    `published` and `published_year` never file one report under two years."""
    for name in ("2023-linux-cryptojacking.txt", "2026-cloud-bec.txt"):  # "Published: 2023-08-22" / 2026-02-09
        shutil.copy(SAMPLES / name, tmp_path / name)
    manifest = tmp_path / "m.csv"
    manifest.write_text("url,published\n2023-linux-cryptojacking.txt,2019\n2026-cloud-bec.txt,2026\n")
    run_ingest([str(manifest)], str(db_file), workers=1)
    with wh.connect(db_file, read_only=True) as con:
        rows = con.execute("SELECT published, published_year, notes FROM reports ORDER BY published_year").fetchall()
        years = con.execute("SELECT DISTINCT year FROM report_techniques ORDER BY 1").fetchall()
    assert [(str(p) if p else None, y, n) for p, y, n in rows] == [
        (None, 2019, "document date 2023-08-22 set aside: the manifest says 2019"),
        ("2026-02-09", 2026, None)]
    assert years == [(2019,), (2026,)]

    # a warehouse written before the rule holds both; the next read-write connection sets the date aside
    with wh.connect(db_file) as con:
        con.execute("UPDATE reports SET published = DATE '2023-08-22', notes = NULL WHERE published_year = 2019")
    with wh.connect(db_file) as con:
        assert con.execute("SELECT published, notes FROM reports WHERE published_year = 2019").fetchone() == (
            None, "document date 2023-08-22 set aside: the manifest says 2019")
