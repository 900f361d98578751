"""Ingest from the network, for real: a loopback HTTP server serving the real reports plus every fault.

The main test is the issue's done criterion: a manifest of loopback URLs for all of
``../shared/data/reports`` plus faulty ones (and a feed with one good and one broken link) ingests
the good ones, records the bad ones precisely, and a second run downloads no report body again
(304s only) while retrying exactly the failures.
"""

from __future__ import annotations

import csv
import threading
import time
from datetime import date
from pathlib import Path

import pytest
from conftest import REPORTS, SAMPLES, needs_shared
from loopback import LoopbackServer
from typer.testing import CliRunner

import warehouse.db as wh
from breachminer.cli import app
from flows.ingest import run_ingest
from warehouse.lock import WriterBusy, writer_lock

pytestmark = pytest.mark.usefixtures("prefect_harness")


@pytest.fixture()
def fetch_env(tmp_path, monkeypatch) -> Path:
    """Fast, loopback-friendly fetch settings and a private raw cache."""
    cache = tmp_path / "cache"
    for key, value in {"BREACHMINER_CACHE": str(cache), "BREACHMINER_READ_TIMEOUT": "3",
                       "BREACHMINER_CONNECT_TIMEOUT": "5", "BREACHMINER_FETCH_RETRIES": "2",
                       "BREACHMINER_FETCH_BACKOFF": "0.05", "BREACHMINER_HOST_DELAY": "0",
                       "BREACHMINER_MAX_RETRY_AFTER": "5", "BREACHMINER_MAX_BYTES": str(20 * 1024 * 1024),
                       "BREACHMINER_RETRY_DELAY": "0", "BREACHMINER_CLASSIFIER": "0",
                       "BREACHMINER_OFFLINE": "0",
                       "BREACHMINER_OCR": "0"}.items():  # the image-only report stays a failure (tests/test_ocr.py)
        monkeypatch.setenv(key, value)
    return cache


def write_manifest(path: Path, rows: list[dict[str, str]]) -> str:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["url", "title", "publisher", "published"])
        writer.writeheader()
        writer.writerows(rows)
    return str(path)


@needs_shared
def test_loopback_manifest_of_real_reports_and_faults(tmp_path, db_file, fetch_env) -> None:
    index = {row["filename"]: row for row in csv.DictReader((REPORTS / "index.csv").open())}
    files = {name: REPORTS / name for name in index}
    flaky, limited = "2013_Kimsuky.pdf", "2015_CozyDuke.pdf"  # served only through a fault route
    feed_good = SAMPLES / "2023-linux-cryptojacking.txt"
    with LoopbackServer({**files, "feed-good.txt": feed_good},
                        html_for_pdf=(SAMPLES / "2025-ransomware-manufacturing.html").read_bytes(),
                        oversized_bytes=30 * 1024 * 1024) as server:
        url = server.url
        server.feed_items = [("Gristmill botnet", "/files/feed-good.txt"), ("Broken link", "/gone-from-feed.pdf")]
        good = {name: f"{url}/files/{name}" for name in files if name not in (flaky, limited)}
        good[flaky], good[limited] = f"{url}/flaky/{flaky}", f"{url}/ratelimited/{limited}"
        faults = {
            f"{url}/missing.pdf": ("fetch", "HTTP404"),
            f"{url}/stall.pdf": ("fetch", "ReadTimeout"),
            f"{url}/truncated.pdf": ("fetch", "TruncatedBody"),
            f"{url}/oversized.pdf": ("fetch", "BodyTooLarge"),
            f"{url}/loop/a": ("fetch", "RedirectLoop"),
            f"{url}/bomb.pdf": ("fetch", "CompressionBomb"),
            f"{url}/private/{flaky}": ("fetch", "RobotsDisallowed"),
            "ftp://127.0.0.1/report.pdf": ("fetch", "UnsupportedScheme"),
            f"{url}/gone-from-feed.pdf": ("fetch", "HTTP404"),  # the feed's broken link
            good["2021_GroupIB_Big_Airline_Heist_APT41.pdf"]: ("extract", "NoTextLayer"),  # fetched, image-only
        }
        rows = [{"url": link, "title": index[name]["title"], "publisher": index[name]["vendor"],
                 "published": index[name]["date"]} for name, link in good.items()]
        rows += [{"url": link, "title": "", "publisher": "", "published": ""} for link in faults
                 if "gone-from-feed" not in link and link not in good.values()]
        rows.append({"url": f"{url}/looks-like.pdf", "title": "", "publisher": "", "published": ""})
        manifest = write_manifest(tmp_path / "urls.csv", rows)
        inputs = [manifest, f"{url}/feed.xml"]

        first = run_ingest(inputs, str(db_file), workers=2, allow_private=True)
        first_log = len(server.log)
        with wh.connect(db_file, read_only=True) as con:
            failures = {row[0]: row[1:] for row in con.execute(
                "SELECT source, stage, error_class, attempts, message FROM failures WHERE resolved_at IS NULL"
            ).fetchall()}
        second = run_ingest(inputs, str(db_file), workers=2, allow_private=True)
        second_responses = server.log[first_log:]

    # run 1: 29 files → 27 reports (1 PDF/HTML twin, 1 image-only), + the HTML served as .pdf, + the feed's entry
    assert (first["new"], first["duplicate"], first["feeds"]) == (29, 1, 1)
    assert first["failed"] == len(faults)
    with wh.connect(db_file, read_only=True) as con:
        reports = con.execute("SELECT count(*), count(DISTINCT report_id) FROM reports").fetchone()
        sightings = con.execute("SELECT count(*) FROM sightings").fetchone()[0]
        feed_report = con.execute(
            """SELECT r.title, r.publisher, r.published FROM reports r JOIN report_sources s USING (report_id)
               WHERE s.source = ?""", [f"{url}/files/feed-good.txt"]).fetchone()
        looks_like = con.execute("SELECT kind FROM report_sources WHERE source = ?", [f"{url}/looks-like.pdf"]
                                 ).fetchone()
        manifest_title = con.execute("SELECT title, publisher FROM reports WHERE first_source = ?",
                                     [good["2014_Anunak_APT_against_financial_institutions.pdf"]]).fetchone()
        validators = con.execute("SELECT count(*) FROM fetch_state WHERE etag IS NOT NULL").fetchone()[0]
    assert {source: (stage, error_class) for source, (stage, error_class, *_rest) in failures.items()} == faults
    assert {source: row[2] for source, row in failures.items()} == dict.fromkeys(faults, 1)
    assert "after 3 attempts" in failures[f"{url}/stall.pdf"][3]  # retried within the run, then recorded
    assert reports == (29, 29)
    assert feed_report == ("Gristmill botnet", "Loopback Threat Research", date(2020, 3, 2))
    assert looks_like == ("html",)  # sniffed from the bytes, not the name
    assert manifest_title == (index["2014_Anunak_APT_against_financial_institutions.pdf"]["title"],
                              index["2014_Anunak_APT_against_financial_institutions.pdf"]["vendor"])
    assert validators >= 30

    # run 2: nothing new, nothing counted twice, no report body downloaded again, only failures retried
    # (the HTML served as .pdf comes without validators: downloaded again, recognised by its hash, not re-analysed)
    assert (second["new"], second["downloaded"], second["unchanged"]) == (0, 1, len(good) + 1)
    assert second["not_modified"] == len(good) + 2  # every report URL, the feed and its entry answered 304
    assert second["failed"] == len(faults)
    report_paths = {link.split(url, 1)[1] for link in good.values()} | {"/files/feed-good.txt", "/feed.xml"}
    assert not [(path, status) for _m, path, status, size in second_responses if path in report_paths and size > 0]
    with wh.connect(db_file, read_only=True) as con:
        assert con.execute("SELECT count(*) FROM reports").fetchone()[0] == 29
        assert con.execute("SELECT count(*) FROM sightings").fetchone()[0] == sightings
        attempts = dict(con.execute("SELECT source, attempts FROM failures WHERE resolved_at IS NULL").fetchall())
    assert attempts == dict.fromkeys(faults, 2)


def test_private_addresses_need_permission(tmp_path, db_file, fetch_env) -> None:
    with LoopbackServer({"report.txt": SAMPLES / "2026-cloud-bec.txt"}) as server:
        link = f"{server.url}/files/report.txt"
        refused = run_ingest([link], str(db_file), workers=1)
        assert not server.arrivals  # nothing was sent to the internal address
        allowed = run_ingest([link], str(db_file), workers=1, allow_private=True)
    assert (refused["failed"], allowed["new"]) == (1, 1)
    with wh.connect(db_file, read_only=True) as con:
        row = con.execute("SELECT error_class, message, resolved_at IS NOT NULL FROM failures").fetchone()
        source = con.execute("SELECT source, etag IS NOT NULL, kind FROM report_sources").fetchone()
    assert row[0] == "PrivateAddress" and "loopback" in row[1] and row[2]  # resolved by the allowed run
    assert source == (link, True, "text")
    open_only = CliRunner().invoke(app, ["failures", "--db", str(db_file)])
    everything = CliRunner().invoke(app, ["failures", "--all", "--db", str(db_file)])
    assert "no failures waiting for a retry" in open_only.output
    assert "fetch/PrivateAddress · 1 attempt · resolved" in everything.output


def test_offline_runs_use_the_cache_and_skip_the_rest(tmp_path, db_file, fetch_env) -> None:
    with LoopbackServer({"a.txt": SAMPLES / "2026-cloud-bec.txt", "b.txt": SAMPLES / "2023-linux-cryptojacking.txt"}
                        ) as server:
        run_ingest([f"{server.url}/files/a.txt"], str(db_file), workers=1, allow_private=True)
        seen = len(server.arrivals)
        result = run_ingest([f"{server.url}/files/a.txt", f"{server.url}/files/b.txt"], str(db_file), workers=1,
                            allow_private=True, offline=True)
        assert len(server.arrivals) == seen  # no request at all
    # a.txt: its cached bytes are the loaded report; b.txt: never fetched, skipped (not a failure)
    assert (result["unchanged"], result["offline"], result["failed"]) == (1, 1, 0)


def test_an_updated_post_at_the_same_url_revises_its_report(tmp_path, db_file, fetch_env) -> None:
    """The nightly case: a vendor adds a section to a published post. The next run downloads it (new ETag) and
    the report is replaced by the new version, not kept beside it nor ignored as a twin. When the vendor
    withdraws the section, the report says again what the post says."""
    post = tmp_path / "post.txt"
    text = (SAMPLES / "2026-cloud-bec.txt").read_text()
    post.write_text(text)
    with LoopbackServer({"post.txt": post}) as server:
        url = f"{server.url}/files/post.txt"
        first = run_ingest([url], str(db_file), workers=1, allow_private=True)
        post.write_text(text + "\n\nUpdate: the affiliate later encrypted the file servers with ransomware (T1486).\n")
        second = run_ingest([url], str(db_file), workers=1, allow_private=True)
        third = run_ingest([url], str(db_file), workers=1, allow_private=True)
        with wh.connect(db_file, read_only=True) as con:
            assert con.execute("SELECT count(*) FROM reports").fetchone()[0] == 1
            assert con.execute("SELECT count(*) FROM sightings WHERE technique_id = 'T1486'").fetchone()[0] == 1
            assert [r[0] for r in con.execute("SELECT status FROM report_sources ORDER BY fetched_at").fetchall()] == [
                "new", "revision"]
        post.write_text(text)  # the update withdrawn: the URL serves its first bytes again
        fourth = run_ingest([url], str(db_file), workers=1, allow_private=True)
    assert (first["new"], second["new"], second["revised"], second["downloaded"]) == (1, 0, 1, 1)
    assert (third["revised"], third["not_modified"]) == (0, 1)
    assert (fourth["downloaded"], fourth["revised"], fourth["unchanged"]) == (1, 1, 0)
    with wh.connect(db_file, read_only=True) as con:
        assert con.execute("SELECT count(*) FROM reports").fetchone()[0] == 1
        assert con.execute("SELECT count(*) FROM sightings WHERE technique_id = 'T1486'").fetchone()[0] == 0


def test_a_second_ingest_waits_or_exits_clearly(tmp_path, db_file, fetch_env) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "bec.txt").write_bytes((SAMPLES / "2026-cloud-bec.txt").read_bytes())
    with writer_lock(db_file, what="ingest"):
        with pytest.raises(WriterBusy, match="changed nothing"):
            run_ingest([str(folder)], str(db_file), workers=1)
        result = CliRunner().invoke(app, ["ingest", str(folder), "--db", str(db_file)])
    assert result.exit_code == 1 and "another ingest" in result.output and "--wait" in result.output
    assert not db_file.exists()  # the refused runs did not even create the warehouse

    released = threading.Event()

    def hold() -> None:
        with writer_lock(db_file, what="ingest"):
            released.wait(1.0)

    holder = threading.Thread(target=hold)
    holder.start()
    time.sleep(0.2)
    queued = run_ingest([str(folder)], str(db_file), workers=1, wait=30)
    holder.join()
    assert queued["new"] == 1 and wh_count(db_file) == 1


def wh_count(db_file: Path) -> int:
    with wh.connect(db_file, read_only=True) as con:
        return con.execute("SELECT count(*) FROM reports").fetchone()[0]


def test_aptnotes_index_with_links_brings_its_metadata(tmp_path, db_file, fetch_env) -> None:
    with LoopbackServer({"wicked.txt": SAMPLES / "2026-cloud-bec.txt"}) as server:
        index = tmp_path / "APTnotes.csv"
        index.write_text("Filename,Title,Source,Link,SHA-1,Date,Year\n"
                         f'WickedRose,"""Wicked Rose"" And The Ncph Hacking Group",iDefense,'
                         f"{server.url}/files/wicked.txt,e802d6f06085f22242a66b06c785315e1c63c070,12/01/2006,2006\n")
        result = run_ingest([str(index)], str(db_file), workers=1, allow_private=True)
    assert result["new"] == 1
    with wh.connect(db_file, read_only=True) as con:
        row = con.execute("SELECT title, publisher, published, first_source FROM reports").fetchone()
    assert row == ('"Wicked Rose" And The Ncph Hacking Group', "iDefense", date(2006, 12, 1),
                   f"{server.url}/files/wicked.txt")
