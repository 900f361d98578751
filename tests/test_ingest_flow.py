"""The ingest flow on a real Prefect API: loading, failures, dedupe, idempotent re-runs."""

from __future__ import annotations

import shutil

import pytest
from conftest import EMPTY_PAGE_PDF, SAMPLES

import warehouse.db as wh
from flows.ingest import run_ingest

pytestmark = pytest.mark.usefixtures("prefect_harness")


def table_counts(db_file):
    with wh.connect(db_file, read_only=True) as con:
        return {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                for t in ("reports", "report_sources", "sentences", "mentions", "sightings")}


def test_sample_corpus_ingests_and_reruns_change_nothing(db_file) -> None:
    manifest = str(SAMPLES.parent / "samples.csv")
    first = run_ingest([manifest], str(db_file), workers=2)
    assert (first["sources"], first["new"], first["failed"]) == (4, 4, 0)
    assert first["sightings"] > 40
    before = table_counts(db_file)
    second = run_ingest([manifest], str(db_file), workers=1)
    assert (second["new"], second["unchanged"], second["failed"]) == (0, 4, 0)
    assert table_counts(db_file) == before
    with wh.connect(db_file, read_only=True) as con:
        publishers = {r[0] for r in con.execute("SELECT publisher FROM reports").fetchall()}
        runs = con.execute("SELECT status, n_new, n_unchanged, flow_run_id FROM runs ORDER BY started_at").fetchall()
        pdf_year = con.execute("SELECT published_year, n_pages FROM reports WHERE kind = 'pdf'").fetchone()
    assert "Halyard Threat Labs" in publishers  # from the manifest
    assert [r[:3] for r in runs] == [("completed", 4, 0), ("completed", 0, 4)]
    assert all(r[3] for r in runs)  # every run is a Prefect flow run
    assert pdf_year == (2024, 6)


def test_bad_documents_are_recorded_and_retried(tmp_path, db_file) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(SAMPLES / "2026-cloud-bec.txt", folder / "good.txt")
    (folder / "scan.pdf").write_bytes(EMPTY_PAGE_PDF)
    (folder / "broken.pdf").write_bytes(b"%PDF-1.7\n\x00\x01 not really a pdf")
    (folder / "tiny.txt").write_text("too short")
    result = run_ingest([str(folder)], str(db_file), workers=1)
    assert (result["new"], result["failed"]) == (1, 3)
    with wh.connect(db_file, read_only=True) as con:
        failures = {r[0].rsplit("/", 1)[-1]: r[1:] for r in con.execute(
            "SELECT source, stage, error_class, attempts FROM failures").fetchall()}
        reports = con.execute("SELECT count(*) FROM reports").fetchone()[0]
    assert failures == {
        "scan.pdf": ("extract", "NoTextLayer", 1),
        "broken.pdf": ("extract", "CorruptDocument", 1),
        "tiny.txt": ("extract", "ExtractionError", 1),
    }
    assert reports == 1  # the image-only PDF is not a report with zero techniques

    # next run, within the retry delay: unchanged failures wait, a fixed file (new bytes) is retried now
    shutil.copy(SAMPLES / "2023-linux-cryptojacking.txt", folder / "tiny.txt")
    again = run_ingest([str(folder)], str(db_file), workers=1)
    assert (again["new"], again["unchanged"], again["failed"], again["deferred"]) == (1, 1, 0, 2)
    with wh.connect(db_file, read_only=True) as con:
        state = {r[0].rsplit("/", 1)[-1]: r[1:] for r in con.execute(
            "SELECT source, attempts, resolved_at IS NOT NULL, next_retry_at > now()::TIMESTAMP FROM failures"
        ).fetchall()}
    assert state == {"scan.pdf": (1, False, True), "broken.pdf": (1, False, True), "tiny.txt": (1, True, True)}

    # --retry-failed retries them now; attempts grow
    third = run_ingest([str(folder)], str(db_file), workers=1, retry_failed=True)
    assert (third["failed"], third["deferred"]) == (2, 0)
    with wh.connect(db_file, read_only=True) as con:
        attempts = dict(con.execute("SELECT regexp_extract(source, '[^/]+$'), attempts FROM failures "
                                    "WHERE resolved_at IS NULL").fetchall())
    assert attempts == {"scan.pdf": 2, "broken.pdf": 2}


def test_failures_back_off_and_are_given_up(tmp_path, db_file, monkeypatch) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "scan.pdf").write_bytes(EMPTY_PAGE_PDF)
    monkeypatch.setenv("BREACHMINER_RETRY_DELAY", "0")  # every run is due
    monkeypatch.setenv("BREACHMINER_MAX_ATTEMPTS", "3")
    for _ in range(4):
        result = run_ingest([str(folder)], str(db_file), workers=1)
    assert (result["failed"], result["deferred"]) == (0, 1)  # the 4th run skips it: given up after 3
    with wh.connect(db_file, read_only=True) as con:
        row = con.execute("SELECT attempts, gave_up_at IS NOT NULL, next_retry_at FROM failures").fetchone()
    assert row == (3, True, None)


def test_same_text_under_another_name_is_one_report(tmp_path, db_file) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    text = (SAMPLES / "2026-cloud-bec.txt").read_text()
    (folder / "a.txt").write_text(text)
    (folder / "b.txt").write_text(text.replace("\n", "\r\n"))  # same text, different bytes
    result = run_ingest([str(folder)], str(db_file), workers=1)
    assert (result["new"], result["duplicate"]) == (1, 1)
    with wh.connect(db_file, read_only=True) as con:
        statuses = sorted(r[0] for r in con.execute("SELECT status FROM report_sources").fetchall())
    assert statuses == ["new", "same-text"]


def test_a_loaded_document_at_a_new_place_is_recorded_as_another_source_of_it(tmp_path, db_file) -> None:
    """Copied or moved to another folder (or served at another URL) in a later run: no second report, no
    second analysis, but the new place is a source of the report, as it is when both come in one run."""
    first, second = tmp_path / "first", tmp_path / "moved"
    first.mkdir()
    second.mkdir()
    shutil.copy(SAMPLES / "2026-cloud-bec.txt", first / "bec.txt")
    loaded = run_ingest([str(first)], str(db_file), workers=1)
    shutil.copy(SAMPLES / "2026-cloud-bec.txt", second / "copy-of-bec.txt")
    again = run_ingest([str(first), str(second)], str(db_file), workers=1)
    assert (again["new"], again["unchanged"], again["duplicate"], again["sightings"]) == (0, 1, 1, 0)
    with wh.connect(db_file, read_only=True) as con:
        rows = con.execute("SELECT source, status, report_id FROM report_sources ORDER BY fetched_at").fetchall()
        assert wh.first_row(con, "SELECT count(*) FROM reports")[0] == 1
        assert wh.sighting_count(con) == loaded["sightings"]
    assert [(source.rsplit("/", 1)[-1], status) for source, status, _ in rows] == [("bec.txt", "new"),
                                                                                  ("copy-of-bec.txt", "same-text")]
    assert rows[0][2] == rows[1][2]
    third = run_ingest([str(second)], str(db_file), workers=1)
    assert (third["unchanged"], third["duplicate"]) == (1, 0)  # recorded once


def test_reports_an_older_extraction_made_are_read_again_once(tmp_path, db_file, monkeypatch) -> None:
    """After an upgrade of the text extraction, the next ingest reads each loaded document again from its
    unchanged bytes: a new text replaces the old under the same report (nothing counted twice), the same
    text only records the version; the run after that reads nothing again."""
    from dataclasses import replace

    from extractors import documents

    monkeypatch.setenv("BREACHMINER_CLASSIFIER", "0")
    folder = tmp_path / "in"
    shutil.copytree(SAMPLES, folder, ignore=shutil.ignore_patterns("*.csv", "*.md"))
    loaded = run_ingest([str(folder)], str(db_file), workers=1)
    with wh.connect(db_file) as con:
        before = con.execute("SELECT report_id, text_sha256 FROM reports ORDER BY 1").fetchall()
        sources = wh.first_row(con, "SELECT count(*) FROM report_sources")[0]
        con.execute("""UPDATE reports SET tagger_versions = json_merge_patch(tagger_versions,
                       '{"text": "text-1"}')::VARCHAR""")  # as loaded by an older extraction
    same = run_ingest([str(folder)], str(db_file), workers=1)
    assert (same["reextracted"], same["unchanged"], same["new"], same["duplicate"], same["sightings"]) == (
        len(before), len(before), 0, 0, 0)
    with wh.connect(db_file, read_only=True) as con:  # the same text: only the version is recorded
        assert con.execute("SELECT report_id, text_sha256 FROM reports ORDER BY 1").fetchall() == before
        assert wh.first_row(con, "SELECT count(*) FROM report_sources")[0] == sources
        assert {v for (v,) in con.execute("SELECT tagger_versions->>'text' FROM reports").fetchall()} == {
            documents.EXTRACTION_VERSION}
    assert run_ingest([str(folder)], str(db_file), workers=1)["reextracted"] == 0
    with wh.connect(db_file, read_only=True) as con:
        assert [n for (n,) in con.execute("SELECT n_reextracted FROM runs ORDER BY started_at").fetchall()] == [
            0, len(before), 0]

    extract = documents.extract

    def stale() -> None:
        with wh.connect(db_file) as con:
            con.execute("""UPDATE reports SET tagger_versions = json_merge_patch(tagger_versions,
                           '{"text": "text-1"}')::VARCHAR""")

    def split_paragraph(data: bytes, name: str = "", **options):  # the same words, other sentences
        document = extract(data, name, **options)
        return replace(document, text=document.text.replace(" and ", " and\n\n", 1))

    stale()
    monkeypatch.setattr(documents, "extract", split_paragraph)
    resplit = run_ingest([str(folder)], str(db_file), workers=1)
    assert (resplit["reextracted"], resplit["new"], resplit["duplicate"]) == (len(before), 0, 0)
    with wh.connect(db_file, read_only=True) as con:  # text_sha256 hashes the words: the sentences tell
        assert con.execute("SELECT report_id, text_sha256 FROM reports ORDER BY 1").fetchall() == before
        assert wh.first_row(con, "SELECT count(*) FROM report_sources WHERE status = 're-extracted'")[0] == len(before)

    def newer_extraction(data: bytes, name: str = "", **options):  # one that finds one more sentence
        document = extract(data, name, **options)
        return replace(document, text=document.text + "\n\nThe operators then dumped LSASS memory with Mimikatz "
                                                      "(T1003.001) on every server.")

    stale()
    monkeypatch.setattr(documents, "extract", newer_extraction)
    changed = run_ingest([str(folder)], str(db_file), workers=1)
    assert (changed["reextracted"], changed["new"], changed["duplicate"]) == (len(before), 0, 0)
    with wh.connect(db_file, read_only=True) as con:
        after = con.execute("SELECT report_id, text_sha256 FROM reports ORDER BY 1").fetchall()
        assert [rid for rid, _ in after] == [rid for rid, _ in before]  # the same reports, new texts
        assert all(new != old for (_, new), (_, old) in zip(after, before, strict=True))
        assert wh.first_row(con, "SELECT count(*) FROM report_sources WHERE status = 're-extracted'")[0] == 2 * len(
            before)
        assert wh.first_row(con, "SELECT count(DISTINCT report_id) FROM sightings WHERE technique_id = 'T1003.001'"
                            )[0] == len(before)
        assert wh.sighting_count(con) == loaded["sightings"] + resplit["sightings"] + changed["sightings"]


def test_oversized_documents_are_refused_before_reading(tmp_path, db_file, monkeypatch) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(SAMPLES / "2024-espionage-supply-chain.pdf", folder / "big.pdf")
    monkeypatch.setenv("BREACHMINER_MAX_BYTES", "1000")
    result = run_ingest([str(folder)], str(db_file), workers=1)
    assert (result["new"], result["failed"]) == (0, 1)
    with wh.connect(db_file, read_only=True) as con:
        row = con.execute("SELECT stage, error_class, message FROM failures").fetchall()[0]
    assert row[:2] == ("read", "DocumentTooLarge") and "1,000-byte limit" in row[2]


def test_a_run_that_died_is_marked_crashed_by_the_next(tmp_path, db_file) -> None:
    with wh.connect(db_file) as con:
        wh.start_run(con, "dead", None, ["x"], 1)  # a run killed before finish_run
    result = run_ingest([str(SAMPLES / "2026-cloud-bec.txt")], str(db_file), workers=1)
    with wh.connect(db_file, read_only=True) as con:
        statuses = dict(con.execute("SELECT run_id, status FROM runs").fetchall())
    assert statuses == {"dead": "crashed", result["run_id"]: "completed"}

    # a run killed after it loaded a report and recorded a failure: its row says so, not NULL counts
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "good.txt").write_text((SAMPLES / "2023-linux-cryptojacking.txt").read_text())
    (folder / "broken.pdf").write_bytes(b"%PDF-1.7\n\x00 not really a pdf")
    killed = run_ingest([str(folder)], str(db_file), workers=1)["run_id"]
    with wh.connect(db_file) as con:  # as if killed before finish_run
        con.execute("UPDATE runs SET status = 'running', finished_at = NULL, n_new = NULL, n_failed = NULL "
                    "WHERE run_id = ?", [killed])
    run_ingest([str(folder)], str(db_file), workers=1)
    with wh.connect(db_file, read_only=True) as con:
        assert con.execute("SELECT status, n_new, n_revised, n_duplicate, n_failed FROM runs WHERE run_id = ?",
                           [killed]).fetchone() == ("crashed", 1, 0, 0, 1)


def test_a_new_version_of_a_loaded_report_replaces_it(tmp_path, db_file) -> None:
    """An updated post at the same source is the same report, counted once, with what it says now; a source
    that starts serving a different document adds a report and keeps the old one."""
    folder = tmp_path / "in"
    folder.mkdir()
    post = folder / "post.txt"
    text = (SAMPLES / "2026-cloud-bec.txt").read_text()
    post.write_text(text)
    assert run_ingest([str(folder)], str(db_file), workers=1)["new"] == 1
    with wh.connect(db_file, read_only=True) as con:
        (report_id,) = con.execute("SELECT report_id FROM reports").fetchone()
        before = {r[0] for r in con.execute("SELECT technique_id FROM sightings").fetchall()}
    assert {"T1486", "T1490"}.isdisjoint(before)

    update = ("\n\nUpdate, 20 November 2026: in a second intrusion the same affiliate deployed ransomware that "
              "encrypted the file servers (T1486) and deleted volume shadow copies with vssadmin (T1490).\n")
    post.write_text(text + update)
    revised = run_ingest([str(folder)], str(db_file), workers=1)
    assert (revised["new"], revised["revised"], revised["duplicate"]) == (0, 1, 0)
    assert revised["sightings"] >= 2  # net: the update's techniques
    with wh.connect(db_file, read_only=True) as con:
        reports = con.execute("SELECT report_id, n_sentences FROM reports").fetchall()
        after = {r[0] for r in con.execute("SELECT technique_id FROM sightings").fetchall()}
        sentence_reports = {r[0] for r in con.execute("SELECT DISTINCT report_id FROM sentences").fetchall()}
        n_sentences = con.execute("SELECT count(*) FROM sentences").fetchone()[0]
        statuses = [r[0] for r in con.execute("SELECT status FROM report_sources ORDER BY fetched_at").fetchall()]
        evidence = con.execute("""SELECT s.text FROM mentions m JOIN sentences s USING (report_id, sentence_index)
                                  WHERE m.technique_id = 'T1490'""").fetchall()
        run_revised = con.execute("SELECT n_revised FROM runs ORDER BY started_at DESC LIMIT 1").fetchone()[0]
    assert [r[0] for r in reports] == [report_id]  # the same report, once
    assert after >= before | {"T1486", "T1490"}
    assert sentence_reports == {report_id} and n_sentences == reports[0][1]  # the old sentences are gone
    assert evidence and all("vssadmin" in row[0] for row in evidence)
    assert statuses == ["new", "revision"] and run_revised == 1
    unchanged = table_counts(db_file)
    again = run_ingest([str(folder)], str(db_file), workers=1)
    assert (again["new"], again["revised"], again["unchanged"]) == (0, 0, 1)
    assert table_counts(db_file) == unchanged

    post.write_text(text)  # the update withdrawn: the source gives its first bytes again
    reverted = run_ingest([str(folder)], str(db_file), workers=1)
    assert (reverted["new"], reverted["revised"], reverted["unchanged"]) == (0, 1, 0)
    with wh.connect(db_file, read_only=True) as con:
        assert [r[0] for r in con.execute("SELECT report_id FROM reports").fetchall()] == [report_id]
        assert {r[0] for r in con.execute("SELECT technique_id FROM sightings").fetchall()} == before
    assert run_ingest([str(folder)], str(db_file), workers=1)["unchanged"] == 1

    post.write_text((SAMPLES / "2023-linux-cryptojacking.txt").read_text())  # now a different document
    other = run_ingest([str(folder)], str(db_file), workers=1)
    assert (other["new"], other["revised"]) == (1, 0)
    with wh.connect(db_file, read_only=True) as con:
        assert con.execute("SELECT count(*) FROM reports").fetchone()[0] == 2


def test_a_run_refreshes_its_exports_and_a_failed_export_loses_nothing(tmp_path, db_file) -> None:
    import csv

    from warehouse.exports import EXPORT_FILES

    exports = tmp_path / "exports"
    first = run_ingest([str(SAMPLES / "2026-cloud-bec.txt")], str(db_file), workers=1, export_dir=str(exports),
                       export_limit=3)
    assert first["export_error"] is None and sorted(first["exported"]) == sorted(
        str(exports / name) for name in EXPORT_FILES)
    with open(exports / "top-techniques.csv", newline="") as handle:
        top = [row["technique_id"] for row in csv.DictReader(handle)]
    with wh.connect(db_file, read_only=True) as con:
        assert top == wh.top_techniques(con, 3)["technique_id"].tolist()  # what `top -n 3 --csv` writes
    assert not list(exports.glob(".*"))  # no partial file left behind
    # a second run with another report replaces the files whole
    second = run_ingest([str(SAMPLES / "2023-linux-cryptojacking.txt")], str(db_file), workers=1,
                        export_dir=str(exports), export_limit=3)
    with open(exports / "priorities.csv", newline="") as handle:
        assert "of 2 reports" in next(csv.DictReader(handle))["why"]
    assert "<b>2</b> reports" in (exports / "summary.html").read_text()
    assert second["export_error"] is None
    # a file that cannot be written midway (as on a full disk) leaves the old set whole, and no partial file
    before = {name: (exports / name).read_bytes() for name in EXPORT_FILES}
    (exports / f".{EXPORT_FILES[-1]}.partial").mkdir()  # the last file's partial cannot be written
    stuck = run_ingest([str(SAMPLES / "2025-ransomware-manufacturing.html")], str(db_file), workers=1,
                       export_dir=str(exports), export_limit=3)
    assert stuck["new"] == 1 and stuck["exported"] == [] and "IsADirectoryError" in stuck["export_error"]
    assert {name: (exports / name).read_bytes() for name in EXPORT_FILES} == before
    assert [path.name for path in exports.glob(".*")] == [f".{EXPORT_FILES[-1]}.partial"]  # only the obstacle
    (exports / f".{EXPORT_FILES[-1]}.partial").rmdir()
    # an export that cannot be written (the folder is a file) is recorded; the run's report is loaded
    blocked = tmp_path / "blocked"
    blocked.write_text("not a folder")
    third = run_ingest([str(SAMPLES / "2024-espionage-supply-chain.pdf")], str(db_file), workers=1,
                       export_dir=str(blocked))
    assert third["new"] == 1 and third["exported"] == [] and "not written" in third["export_error"]
    with wh.connect(db_file, read_only=True) as con:
        status, error = con.execute("SELECT status, export_error FROM runs WHERE run_id = ?",
                                    [third["run_id"]]).fetchone()
    assert status == "completed" and error == third["export_error"]


def stored_tagging(db_file):
    with wh.connect(db_file, read_only=True) as con:
        mentions = con.execute("""SELECT report_id, sentence_index, technique_id, method, score, cited, match_start
                                  FROM mentions ORDER BY ALL""").fetchall()
        sightings = con.execute("SELECT report_id, technique_id, score, rule FROM sightings ORDER BY ALL").fetchall()
    return mentions, sightings


def test_an_edited_lexicon_or_name_list_re_tags_what_the_old_one_decided(db_file, monkeypatch) -> None:
    """Rule taggers carry versions like the model: a report tagged by an older lexicon or name list is
    re-tagged from its stored sentences by the next run, and the result is what loading it now gives."""
    monkeypatch.setenv("BREACHMINER_CLASSIFIER", "0")
    manifest = str(SAMPLES.parent / "samples.csv")
    assert run_ingest([manifest], str(db_file), workers=1)["retagged"] == 0
    loaded = stored_tagging(db_file)
    with wh.connect(db_file) as con:
        [old, kept] = [r[0] for r in con.execute("SELECT report_id FROM reports ORDER BY 1 LIMIT 2").fetchall()]
        # as an older version left them: a name mention the current list no longer makes, a lexicon
        # mention it now makes missing, and those taggers' old versions
        con.execute("""INSERT INTO mentions SELECT * REPLACE ('T1486' AS technique_id, 'name-1' AS tagger_version)
                       FROM mentions WHERE report_id = ? AND method = 'name' LIMIT 1""", [old])
        con.execute("DELETE FROM mentions WHERE report_id = ? AND method = 'lexicon'", [old])
        con.execute("""UPDATE reports SET tagger_versions = json_merge_patch(tagger_versions,
                       '{"name": "name-1", "lexicon": "lexicon-1"}')::VARCHAR WHERE report_id IN (?, ?)""", [old, kept])
        # a report decided with the classifier waits for a run that has it
        con.execute("""UPDATE reports SET tagger_versions = json_merge_patch(tagger_versions,
                       '{"classifier": "clf-old"}')::VARCHAR WHERE report_id = ?""", [kept])
    result = run_ingest([manifest], str(db_file), workers=1)
    assert (result["new"], result["retagged"], result["retag_error"]) == (0, 1, None)
    mentions, sightings = stored_tagging(db_file)
    assert [m for m in mentions if m[0] == old] == [m for m in loaded[0] if m[0] == old]
    assert [s for s in sightings if s[0] == old] == [s for s in loaded[1] if s[0] == old]
    with wh.connect(db_file, read_only=True) as con:
        versions = dict(con.execute("SELECT report_id, tagger_versions FROM reports").fetchall())
    assert '"name-1"' not in versions[old] and '"name-1"' in versions[kept]
    assert run_ingest([manifest], str(db_file), workers=1)["retagged"] == 0  # current now: nothing to do


def test_re_tagging_stored_sentences_gives_what_loading_gave(db_file, monkeypatch) -> None:
    """Also under the deadline: a report whose re-tagging is late keeps what it had and stays stale."""
    monkeypatch.setenv("BREACHMINER_CLASSIFIER", "0")
    manifest = str(SAMPLES.parent / "samples.csv")
    run_ingest([manifest], str(db_file), workers=1)
    loaded = stored_tagging(db_file)
    with wh.connect(db_file) as con:
        con.execute("UPDATE reports SET tagger_versions = '{}'")  # every tagger of every report is stale
    monkeypatch.setenv("BREACHMINER_ANALYSIS_TIMEOUT", "0.001")  # shorter than starting the child
    late = run_ingest([manifest], str(db_file), workers=1)
    assert late["retagged"] == 0 and late["retag_error"].startswith("4 reports not re-scored")
    assert "RetagTimeout: tagging did not finish in 0.001 s" in late["retag_error"]
    assert stored_tagging(db_file) == loaded
    monkeypatch.delenv("BREACHMINER_ANALYSIS_TIMEOUT")
    assert run_ingest([manifest], str(db_file), workers=1)["retagged"] == 4
    assert stored_tagging(db_file) == loaded


def test_a_document_over_the_analysis_deadline_is_stopped_recorded_and_retried(tmp_path, db_file,
                                                                              monkeypatch) -> None:
    """One slow document (here a real 2.5 MB text, about 10 s to analyse, against a 2 s deadline) is
    stopped and recorded, the rest load; a later run with room for it loads it."""
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(SAMPLES / "2025-ransomware-manufacturing.html", folder / "good.html")
    paragraph = (SAMPLES / "2026-cloud-bec.txt").read_text(encoding="utf-8")
    (folder / "long.txt").write_text("\n\n".join([paragraph] * (2_500_000 // len(paragraph))), encoding="utf-8")
    monkeypatch.setenv("BREACHMINER_CLASSIFIER", "0")
    monkeypatch.setenv("BREACHMINER_ANALYSIS_TIMEOUT", "2")
    first = run_ingest([str(folder)], str(db_file), workers=1)
    assert (first["new"], first["failed"]) == (1, 1)
    with wh.connect(db_file, read_only=True) as con:
        [(source, stage, error_class, message)] = con.execute(
            "SELECT source, stage, error_class, message FROM failures").fetchall()
    assert source.endswith("long.txt") and (stage, error_class) == ("analyse", "AnalysisTimeout")
    assert "did not finish in 2 s" in message
    monkeypatch.setenv("BREACHMINER_ANALYSIS_TIMEOUT", "600")
    second = run_ingest([str(folder)], str(db_file), workers=1, retry_failed=True)
    assert (second["new"], second["unchanged"], second["failed"]) == (1, 1, 0)
    with wh.connect(db_file, read_only=True) as con:
        assert wh.open_failures(con) == {}
