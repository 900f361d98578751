"""The DuckDB warehouse: schema, bulk loads, views' numbers, failures, locking."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from warehouse_rows import load

import warehouse.db as wh
from breachminer.records import Mention, Sentence, Sighting
from warehouse.lock import WriterBusy, writer_lock


@pytest.fixture()
def con(db_file, catalog):
    with wh.connect(db_file, catalog=catalog) as connection:
        yield connection


def test_catalog_tables_load_once(con, catalog) -> None:
    assert con.execute("SELECT count(*) FROM attack_techniques WHERE NOT deprecated").fetchone()[0] == 691
    assert con.execute("SELECT count(*) FROM attack_tactics").fetchone()[0] == 14
    assert wh.sync_catalog(con, catalog) is False  # unchanged: not reloaded


def test_frequency_parent_rollup_and_share(con) -> None:
    load(con, "r1", ["T1059.001", "T1059.003", "T1053.005"])
    load(con, "r2", ["T1059.001"])
    load(con, "r3", ["T1486"])
    rows = dict(con.execute(
        "SELECT technique_id, n_reports FROM technique_frequency WHERE level = 'parent'").fetchall())
    assert rows == {"T1059": 2, "T1053": 1, "T1486": 1}
    exact = dict(con.execute(
        "SELECT technique_id, share FROM technique_frequency WHERE level = 'exact'").fetchall())
    assert exact["T1059.001"] == round(2 / 3, 4)
    top = wh.top_techniques(con, 1)
    assert list(top["technique_id"]) == ["T1059"] and list(top["n_reports"]) == [2]


def test_tactic_tables(con) -> None:
    load(con, "r1", ["T1053.005", "T1547.001"])
    load(con, "r2", ["T1053.005"])
    persistence = con.execute(
        """SELECT technique_id, rank_in_tactic, share_in_tactic, cumulative_share
           FROM tactic_technique_frequency WHERE level = 'parent' AND tactic = 'persistence'
           ORDER BY rank_in_tactic""").fetchall()
    assert persistence == [("T1053", 1, round(2 / 3, 4), round(2 / 3, 4)), ("T1547", 2, round(1 / 3, 4), 1.0)]
    coverage = con.execute(
        """SELECT techniques_defined, techniques_seen, sightings, techniques_for_50pct, techniques_for_90pct
           FROM tactic_coverage WHERE level = 'parent' AND tactic = 'persistence'""").fetchone()
    defined = con.execute(
        """SELECT count(*) FROM attack_techniques t JOIN attack_technique_tactics USING (technique_id)
           WHERE tactic = 'persistence' AND NOT is_subtechnique AND NOT deprecated""").fetchone()[0]
    assert coverage == (defined, 2, 3, 1, 2)
    # T1053 also belongs to execution and privilege-escalation
    tactics = {r[0] for r in con.execute(
        "SELECT tactic FROM tactic_technique_frequency WHERE technique_id = 'T1053'").fetchall()}
    assert tactics == {"execution", "persistence", "privilege-escalation"}


def test_by_year_and_evidence(con) -> None:
    load(con, "r1", ["T1486"], published=date(2020, 5, 1))
    load(con, "r2", ["T1486"], published=date(2021, 5, 1))
    load(con, "r3", ["T1490"], published=date(2021, 6, 1))
    rows = con.execute("""SELECT year, share, share_change FROM technique_frequency_by_year
                          WHERE level = 'exact' AND technique_id = 'T1486' ORDER BY year""").fetchall()
    assert rows == [(2020, 1.0, None), (2021, 0.5, -0.5)]
    frame = wh.evidence(con, "T1486")
    assert set(frame["report_id"]) == {"r1", "r2"} and set(frame["sentence"]) == {"sentence 0"}


def test_time_decayed_prevalence_weighs_recent_reports_more(con) -> None:
    load(con, "old", ["T1486"], published=date(2014, 9, 1))
    load(con, "new", ["T1486", "T1059.001"], published=date(2020, 9, 1))
    load(con, "new2", ["T1059.003"], published=date(2020, 9, 1))
    load(con, "year-only", ["T1059.001"], published=None, published_year=2020)  # counts from 1 July
    load(con, "undated", ["T1486"], published=None)  # left out: it has no age
    weight = {"old": 0.5 ** (2192 / (365.25 * 3)), "new": 1.0, "new2": 1.0,
              "year-only": 0.5 ** (62 / (365.25 * 3))}
    total = sum(weight.values())
    rows = {r[0]: r[1:] for r in con.execute(
        """SELECT technique_id, n_reports, dated_reports, share, decayed_share, trend, rank, reference_date
           FROM technique_prevalence WHERE level = 'parent'""").fetchall()}
    ransomware = (weight["old"] + weight["new"]) / total  # 2 of 4 dated reports, one of them 6 years older
    assert rows["T1486"] == (2, 4, 0.5, round(ransomware, 4), round(ransomware - 0.5, 4), 2, date(2020, 9, 1))
    assert rows["T1059"][:3] == (3, 4, 0.75) and rows["T1059"][5] == 1
    assert rows["T1059"][3] == round((1 + 1 + weight["year-only"]) / total, 4) and rows["T1059"][4] > 0
    # the half-life is a parameter; a long one comes close to the plain share
    slow = dict(con.execute("SELECT technique_id, decayed_share FROM technique_prevalence_decayed("
                            "half_life_years := 1000) WHERE level = 'parent'").fetchall())
    assert abs(slow["T1486"] - 0.5) < 0.01
    # the half-life is a column of its own name (DuckDB would otherwise name it after the value: "3.0")
    assert con.execute("SELECT DISTINCT half_life_years FROM technique_prevalence").fetchall() == [(3.0,)]
    assert con.execute("SELECT DISTINCT half_life_years FROM technique_prevalence_decayed(half_life_years := 1)"
                       ).fetchall() == [(1,)]
    top = wh.top_techniques(con, 5, half_life=3)
    assert top["technique_id"].tolist() == ["T1059", "T1486"] and top["rank"].tolist() == [1, 2]
    assert top["decayed_share"].tolist() == [rows["T1059"][3], rows["T1486"][3]]
    execution = wh.top_techniques(con, 5, tactic="Execution", half_life=3)  # within one tactic
    assert execution["technique_id"].tolist() == ["T1059"]
    with pytest.raises(ValueError, match="positive number of years"):
        wh.top_techniques(con, 5, half_life=0)


def test_by_publisher(con) -> None:
    load(con, "r1", ["T1486"], publisher="Example Labs")
    load(con, "r2", ["T1486", "T1059.001"], publisher="example labs ")  # the same publisher, spelled otherwise
    load(con, "r3", ["T1059"], publisher="Other")
    load(con, "r4", ["T1486"], publisher=None)  # no publisher: not in this view
    rows = con.execute("""SELECT publisher, technique_id, n_reports, publisher_reports, share, rank_in_publisher
                          FROM technique_frequency_by_publisher WHERE level = 'parent'
                          ORDER BY publisher, rank_in_publisher""").fetchall()
    assert rows == [("Example Labs", "T1486", 2, 2, 1.0, 1), ("Example Labs", "T1059", 1, 2, 0.5, 2),
                    ("Other", "T1059", 1, 1, 1.0, 1)]


def test_failed_load_leaves_nothing_behind(con) -> None:
    load(con, "r1", ["T1486"])
    with pytest.raises(Exception):  # noqa: B017 - duplicate primary key, whatever DuckDB calls it
        load(con, "r1", ["T1490"])
    assert con.execute("SELECT count(*) FROM sightings").fetchone()[0] == 1
    assert con.execute("SELECT count(*) FROM report_sources").fetchone()[0] == 1


def test_failures_count_attempts_and_resolve(con) -> None:
    wh.record_failure(con, "/x.pdf", "extract", "NoTextLayer", "no text layer", "run1")
    wh.record_failure(con, "/x.pdf", "extract", "NoTextLayer", "no text layer", "run2")
    assert con.execute("SELECT attempts, run_id FROM failures").fetchone() == (2, "run2")
    wh.resolve_failure(con, "/x.pdf")
    assert con.execute("SELECT resolved_at IS NOT NULL FROM failures").fetchone()[0]
    wh.record_failure(con, "/x.pdf", "extract", "NoTextLayer", "no text layer", "run3")  # failing again: a new story
    assert con.execute("SELECT attempts, resolved_at FROM failures").fetchone() == (1, None)


def test_retries_back_off_honour_retry_after_and_give_up(con) -> None:
    policy = wh.RetryPolicy(delay=60, max_attempts=3)
    first = wh.record_failure(con, "http://a/x.pdf", "fetch", "HTTP503", "down", "r1", retry=policy)
    second = wh.record_failure(con, "http://a/x.pdf", "fetch", "HTTP503", "down", "r2", retry=policy)
    now = datetime.now(UTC).replace(tzinfo=None)
    assert 50 < (first.next_retry_at - now).total_seconds() <= 60  # 60 s after the first failure
    assert 110 < (second.next_retry_at - now).total_seconds() <= 120  # doubled
    assert not second.due()
    slow = wh.record_failure(con, "http://b/", "fetch", "HTTP429", "slow", "r1", retry=policy, retry_after=7200)
    assert (slow.next_retry_at - now).total_seconds() > 7000  # Retry-After beats the backoff
    third = wh.record_failure(con, "http://a/x.pdf", "fetch", "HTTP503", "down", "r3", retry=policy)
    assert third.gave_up and third.next_retry_at is None and not third.due()
    listed = wh.failures_frame(con)
    assert set(listed["source"]) == {"http://a/x.pdf", "http://b/"}
    assert listed.set_index("source").loc["http://a/x.pdf", "next_step"].startswith("gave up")


def test_read_only_on_missing_file_is_clear(tmp_path) -> None:
    with pytest.raises(wh.WarehouseMissing, match="breachminer ingest"), \
            wh.connect(tmp_path / "absent.duckdb", read_only=True):
        pass


def test_read_only_sees_this_versions_views_before_any_write(db_file, catalog) -> None:
    """A warehouse written by an older breachminer (a view missing, another defined otherwise) is read
    through this version's views, without a write; a current warehouse adds no session views."""
    import duckdb

    with wh.connect(db_file, catalog=catalog) as con:
        load(con, "r1", ["T1486"], publisher="Example Labs")
    raw = duckdb.connect(str(db_file))  # what an older version left behind
    raw.execute("DROP VIEW technique_frequency_by_publisher")
    raw.execute("DROP VIEW technique_prevalence")
    raw.execute("DROP MACRO TABLE technique_prevalence_decayed")
    raw.execute("CREATE OR REPLACE VIEW counted_reports AS SELECT * FROM reports WHERE false")
    raw.execute("UPDATE meta SET value = 'older' WHERE key = 'views_digest'")
    raw.close()
    with wh.connect(db_file, read_only=True) as con:
        assert con.execute("SELECT publisher, n_reports FROM technique_frequency_by_publisher "
                           "WHERE level = 'exact'").fetchall() == [("Example Labs", 1)]
        assert wh.top_techniques(con, 5)["technique_id"].tolist() == ["T1486"]
        assert con.execute("SELECT n_reports FROM technique_prevalence WHERE level = 'exact'").fetchall() == [(1,)]
        assert wh.top_techniques(con, 5, half_life=2)["technique_id"].tolist() == ["T1486"]
    with wh.connect(db_file):  # the next write migrates the stored views
        pass
    with wh.connect(db_file, read_only=True) as con:
        temp_views = con.execute("SELECT count(*) FROM duckdb_views() WHERE database_name = 'temp' "
                                 "AND NOT internal").fetchone()[0]
        assert temp_views == 0
        assert con.execute("SELECT count(*) FROM counted_reports").fetchone()[0] == 1


def test_a_second_process_gets_a_clear_lock_error(db_file, catalog) -> None:
    with wh.connect(db_file, catalog=catalog):
        pass
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import duckdb, sys, time
        con = duckdb.connect({str(db_file)!r})
        print("held", flush=True)
        sys.stdin.read()
    """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(wh.WarehouseLocked, match="in use by another process"), \
                wh.connect(db_file, lock_wait=0.5):
            pass
    finally:
        holder.communicate("")


def test_a_short_connection_elsewhere_is_waited_for(db_file, catalog) -> None:
    with wh.connect(db_file, catalog=catalog):
        pass
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import duckdb, time
        con = duckdb.connect({str(db_file)!r})
        print("held", flush=True)
        time.sleep(1.5)
        con.close()
    """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with wh.connect(db_file, read_only=True, lock_wait=30) as con:
            assert con.execute("SELECT count(*) FROM reports").fetchone() == (0,)
    finally:
        holder.wait()


def test_one_writer_at_a_time(tmp_path) -> None:
    db = tmp_path / "w.duckdb"
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys
        from warehouse.lock import writer_lock
        with writer_lock({str(db)!r}, what="ingest"):
            print("held", flush=True)
            sys.stdin.read()
    """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=str(Path(__file__).parents[1]))
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(WriterBusy, match=rf"another ingest \(process {holder.pid}, since .*\) is writing"), \
                writer_lock(db, wait=0.3):
            pass
    finally:
        holder.communicate("")
    with writer_lock(db, wait=0):  # released when its holder ended
        pass


def test_advice_sentences_are_stored_and_their_mentions_do_not_count(con) -> None:
    sentences = [Sentence(0, 0, 40, "The actor moved laterally over RDP."),
                 Sentence(1, 41, 90, "Disable Remote Desktop Protocol where possible.", advice=True)]
    mentions = [Mention(0, "T1021.001", "name", 0.85, "RDP", 0, 3, "name", "name-1"),
                Mention(1, "T1021.001", "name", 0.85, "Remote Desktop Protocol", 8, 31, "name", "name-1"),
                Mention(1, "T1046", "classifier", 0.9, "", 0, 46, "p=.5", "clf-1")]
    sightings = [Sighting("T1021.001", 0.85, ("name",), 1, 1, "test")]
    report = wh.ReportRow("r1", "r1" * 4, "Advisory", "Pub", date(2024, 1, 1), "text", 100, None, [1, 2, 3],
                          "/src/r1", {"name": "name-1"})
    wh.load_report(con, report, wh.SourceRow("/src/r1", "bytes-r1", "text", 100), sentences, mentions,
                   sightings, "run1")
    assert con.execute("SELECT sentence_index, advice FROM sentences ORDER BY 1").fetchall() == [(0, False), (1, True)]
    counted = con.execute("""SELECT technique_id, sentence_index, advice, counted FROM technique_evidence
                             ORDER BY technique_id, sentence_index""").fetchall()
    assert counted == [("T1021.001", 0, False, True), ("T1021.001", 1, True, False), ("T1046", 1, True, False)]
    shown = wh.evidence(con, "T1021")
    assert shown["sentence_index"].tolist() == [0]
    every = wh.evidence(con, "T1021", counted_only=False)
    assert every["advice"].tolist() == [False, True]


def test_a_warehouse_older_than_the_advice_column_gains_it(db_file, catalog) -> None:
    import duckdb

    with wh.connect(db_file, catalog=catalog) as con:
        load(con, "r1", ["T1486"])
    raw = duckdb.connect(str(db_file))  # as the previous version left it: no advice column, its views
    raw.execute("DROP VIEW technique_evidence")
    raw.execute("ALTER TABLE sentences DROP COLUMN advice")
    raw.execute("""CREATE VIEW technique_evidence AS
                   SELECT m.report_id, r.title, r.publisher, r.published, t.parent_id, m.technique_id,
                          t.name AS technique_name, m.method, m.score, m.cited, m.detail, m.sentence_index,
                          s.text AS sentence, m.tagger_version, m.model_version, true AS counted
                   FROM mentions m JOIN reports r USING (report_id) JOIN attack_techniques t USING (technique_id)
                   JOIN sentences s ON s.report_id = m.report_id AND s.sentence_index = m.sentence_index""")
    raw.execute("UPDATE meta SET value = 'older' WHERE key = 'views_digest'")
    raw.close()
    with wh.connect(db_file, read_only=True) as con:  # read as it is: evidence still works
        assert wh.evidence(con, "T1486")["advice"].tolist() == [False]
    with wh.connect(db_file) as con:  # the next write adds the column (NULL: not assessed) and the views
        assert con.execute("SELECT advice FROM sentences").fetchall() == [(None,)]
        assert wh.evidence(con, "T1486")["counted"].tolist() == [True]


def test_the_readme_documents_every_view_column_and_no_other(con) -> None:
    """The README's warehouse section is the contract for SQL users: each view's paragraph names exactly
    the view's columns (besides other tables and views it mentions)."""
    import re

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme[readme.index("## The warehouse (DuckDB)"):]
    from breachminer.cli import app

    commands = {command.name or command.callback.__name__ for command in app.registered_commands}
    relations = {name for (name,) in con.execute(
        "SELECT table_name FROM information_schema.tables UNION SELECT 'technique_prevalence_decayed'").fetchall()}
    relations |= commands  # `ingest` and `prioritize` refresh a table
    views = [name for (name,) in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_type = 'VIEW' ORDER BY 1").fetchall()]
    paragraphs = {m.group(1): m.group(2) for m in re.finditer(r"^\*\*`(\w+)`\*\*(.*?)(?:\n\n|\Z)", section,
                                                               re.MULTILINE | re.DOTALL)}
    assert sorted(paragraphs) == views
    for view, text in paragraphs.items():
        named: list[str] = []
        for token in re.findall(r"`(_[a-z0-9_]+|[a-z][a-z0-9_]*)`", text):  # `…_50pct` / `_80pct`: a suffix
            named.append(named[-1].rsplit("_", 1)[0] + token if token.startswith("_") else token)
        columns = [name for (name,) in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = ?", [view]).fetchall()]
        if not set(named) - relations:  # "the `reports` rows that count": that table's columns
            [table] = set(named) & relations - {view}
            named = [name for (name,) in con.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = ?", [table]).fetchall()]
        assert set(columns) - set(named) == set(), f"{view}: columns the README does not name"
        assert set(named) - relations - set(columns) == set(), f"{view}: named in the README, no such column"


def test_a_report_scope_restricts_every_view_on_its_connection_only(db_file, catalog) -> None:
    with wh.connect(db_file, catalog=catalog) as con:
        load(con, "r1", ["T1486", "T1059.001"], title="Hive Ransomware Analysis", publisher="INCIBE-CERT",
             published=date(2021, 11, 1))
        load(con, "r2", ["T1486", "T1082"], title="O'Brien's ransomware notes", publisher="Vendor",
             published=date(2023, 5, 1))
        load(con, "r3", ["T1059.001", "T1082"], title="APT espionage", publisher="Vendor", published=date(2019, 1, 1))
    with wh.connect(db_file, read_only=True) as con:
        scope = wh.ReportScope(titles=("RANSOMWARE",))
        assert wh.scope_reports(con, scope) == 2 and wh.counted_report_total(con) == 2
        frequency = dict(con.execute("SELECT technique_id, n_reports FROM technique_frequency "
                                     "WHERE level = 'parent'").fetchall())
        assert frequency == {"T1486": 2, "T1059": 1, "T1082": 1}  # r3 is out of every count
        assert con.execute("SELECT share FROM technique_frequency WHERE technique_id = 'T1486'").fetchone()[0] == 1.0
        assert {r for (r,) in con.execute("SELECT DISTINCT report_id FROM technique_evidence").fetchall()} == {
            "r1", "r2"}
        assert con.execute("SELECT max(n_reports) FROM technique_priority").fetchone()[0] == 2
        assert wh.evidence_totals(con, "T1082") == (1, 1)
        # an apostrophe is a character, not SQL; years are publication years; a publisher is matched alike
        assert wh.scope_reports(con, wh.ReportScope(titles=("o'brien",))) == 1
        assert wh.scope_reports(con, wh.ReportScope(since=2020, until=2022)) == 1
        assert wh.scope_reports(con, wh.ReportScope(publishers=("vendor",), since=2020)) == 1
        assert wh.ReportScope(titles=("a", "b"), since=2020).describe() == "title ~ 'a' or 'b', 2020 to …"
        with pytest.raises(ValueError, match=r"no loaded report is in the scope \(title ~ 'wiper'\)"):
            wh.scope_reports(con, wh.ReportScope(titles=("wiper",)))
    with wh.connect(db_file, read_only=True) as other:  # another connection counts everything
        assert wh.counted_report_total(other) == 3
