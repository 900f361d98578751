"""The command line as a user runs it: ingest, top (+CSV, Navigator layer), sql, evidence, tag --json, attack update.

The end-to-end test over ../shared/data/reports checks report count, PDF/HTML dedupe, the
image-only failure, an idempotent re-run, and that `top` and its CSV agree with SQL.
"""

from __future__ import annotations

import csv
import json
import os

import pytest
from conftest import EMPTY_PAGE_PDF, REPORTS, SAMPLES, STIX, needs_shared
from typer.testing import CliRunner

import warehouse.db as wh
from breachminer.cli import app

pytestmark = pytest.mark.usefixtures("prefect_harness")
runner = CliRunner()


def invoke(*args: str):
    result = runner.invoke(app, list(args), catch_exceptions=False)
    return result


def test_tag_stops_a_document_at_the_analysis_deadline_and_tags_the_rest(monkeypatch) -> None:
    monkeypatch.setenv("BREACHMINER_CLASSIFIER", "0")
    monkeypatch.setenv("BREACHMINER_ANALYSIS_TIMEOUT", "0.01")  # less than any analysis takes
    doc = str(SAMPLES / "2026-cloud-bec.txt")
    [line] = [json.loads(line) for line in invoke("tag", doc, "--json").stdout.splitlines()]
    assert line["error"]["class"] == "AnalysisTimeout" and "BREACHMINER_ANALYSIS_TIMEOUT" in line["error"]["message"]
    monkeypatch.setenv("BREACHMINER_ANALYSIS_TIMEOUT", "60")
    result = invoke("tag", doc, "--json")
    assert result.exit_code == 0 and json.loads(result.stdout)["techniques"]


def test_help_shows_the_defaults_written_into_it() -> None:
    """A hand-written "[default: …]" is Rich markup unless escaped: --help showed nothing in its place."""
    wide = {"COLUMNS": "200"}
    ingest = " ".join(runner.invoke(app, ["ingest", "--help"], env=wide).output.split())
    for default in ("[default: reports_corpus/sources.csv]", "[default: $BREACHMINER_WORKERS or 1]",
                    "[default: $BREACHMINER_DB or ./breachminer.duckdb]", "[default: $BREACHMINER_OFFLINE or online]"):
        assert default in ingest
    tag = " ".join(runner.invoke(app, ["tag", "--help"], env=wide).output.split())
    assert "[default: 1, or 3 with --json]" in tag


def test_tag_json_one_line_per_document(tmp_path) -> None:
    scan = tmp_path / "scan.pdf"
    scan.write_bytes(EMPTY_PAGE_PDF)
    docs = [SAMPLES / "2024-espionage-supply-chain.pdf", SAMPLES / "2025-ransomware-manufacturing.html",
            SAMPLES / "2026-cloud-bec.txt", scan, tmp_path / "missing.pdf"]
    result = invoke("tag", *map(str, docs), "--json")
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["source"] for line in lines] == list(map(str, docs))
    assert result.exit_code == 1  # two documents failed; the others are tagged
    assert lines[3]["error"]["class"] == "NoTextLayer"
    assert lines[4]["error"] == {"stage": "read", "class": "FileNotFoundError",
                                 "message": f"[Errno 2] No such file or directory: '{docs[4]}'"}
    pdf = {t["id"]: t for t in lines[0]["techniques"]}
    assert {"T1195.002", "T1574.001", "T1053.005"} <= set(pdf)  # incl. revoked T1574.002 and "T1053 .005"
    item = pdf["T1195.002"]
    assert item["name"] == "Compromise Software Supply Chain"
    assert 0 < item["score"] <= 1 and "id" in item["methods"]
    assert "T1195.002" in item["evidence"][0]  # the strongest evidence (the explicit ID) comes first
    html_ids = {t["id"] for t in lines[1]["techniques"]}
    assert {"T1059.001", "T1490", "T1486"} <= html_ids
    assert "T1003.006" not in html_ids  # DCSync only appears in the page's sidebar


def test_ingest_top_sql_evidence_on_the_sample_corpus(tmp_path, db_file) -> None:
    result = invoke("ingest", "--db", str(db_file), "--workers", "1")  # the default corpus, offline in tests
    assert result.exit_code == 0, result.output
    assert "4 new" in result.output and "Top 10 techniques over 4 reports" in result.output
    assert "13 URLs skipped offline" in result.output
    with wh.connect(db_file, read_only=True) as con:  # the lexicon's ratings, for technique_priority
        assert con.execute("SELECT count(*) FROM lexicon_ratings").fetchone()[0] > 300
        assert con.execute("SELECT count(*) FROM technique_priority WHERE signal_reason LIKE 'family%'"
                           ).fetchone()[0] > 0
    csv_path, layer_path = tmp_path / "top.csv", tmp_path / "top.json"
    result = invoke("top", "-n", "5", "--tactic", "persistence", "--csv", str(csv_path), "--layer", str(layer_path),
                    "--db", str(db_file))
    assert result.exit_code == 0 and "ATT&CK Navigator layer: 5 techniques" in result.output
    rows = list(csv.DictReader(csv_path.open()))
    layer = json.loads(layer_path.read_text())  # the same rows, scored by their report counts
    scores = {t["techniqueID"]: t["score"] for t in layer["techniques"]}
    assert {r["technique_id"]: int(r["n_reports"]) for r in rows}.items() <= scores.items()
    with wh.connect(db_file, read_only=True) as con:
        expected = con.execute("""SELECT technique_id, n_reports FROM tactic_technique_frequency
                                  WHERE level = 'parent' AND tactic = 'persistence'
                                  ORDER BY rank_in_tactic LIMIT 5""").fetchall()
    assert [(r["technique_id"], int(r["n_reports"])) for r in rows] == expected
    recent = tmp_path / "recent.csv"  # ranked by time-decayed prevalence, the same numbers as the SQL macro
    result = invoke("top", "-n", "3", "--half-life", "2", "--csv", str(recent), "--db", str(db_file))
    assert result.exit_code == 0 and "2-year half-life" in result.output
    with wh.connect(db_file, read_only=True) as con:
        expected = con.execute("""SELECT technique_id, decayed_share FROM technique_prevalence_decayed(2)
                                  WHERE level = 'parent' ORDER BY decayed_share DESC, technique_id
                                  LIMIT 3""").fetchall()
    assert [(r["technique_id"], float(r["decayed_share"])) for r in csv.DictReader(recent.open())] == expected
    result = invoke("top", "--half-life", "2", "--layer", str(layer_path), "--db", str(db_file))
    assert result.exit_code == 1 and "without --half-life" in result.output
    result = invoke("sql", "select level, count(*) as n from technique_frequency group by level order by level",
                    "--db", str(db_file))
    assert result.exit_code == 0 and "exact" in result.output and "parent" in result.output
    result = invoke("sql", "select null::int as missing, [1, 2] as listed, 0.25 as ratio", "--db", str(db_file))
    rows = [line.split() for line in result.output.splitlines()[2:]]
    assert result.exit_code == 0 and rows == [["1", "0.25"], ["2"]]  # NULL blank; a list one item per line
    result = invoke("sql", "select * from no_such_table", "--db", str(db_file))
    assert result.exit_code == 1 and "SQL error" in result.output
    result = invoke("evidence", "T1059", "--db", str(db_file))
    assert result.exit_code == 0 and "Evidence for T1059" in result.output
    as_json = invoke("evidence", "T1059", "--json", "--db", str(db_file)).output
    lines = [json.loads(line) for line in as_json.splitlines()]
    expected = {"report_id", "title", "technique_id", "method", "score", "sentence_index", "sentence"}
    assert lines and expected <= set(lines[0])
    # every sentence is printed whole (wrapped within 100 columns), under its index and what found it
    printed = " ".join(line.strip() for line in result.output.splitlines())
    for row in lines:
        assert f"#{row['sentence_index']} " in result.output
        assert " ".join(row["sentence"].split()) in printed
    assert max(len(line) for line in result.output.splitlines() if line.startswith("    ")) <= 100


def test_db_from_environment_and_clear_error_without_warehouse(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("BREACHMINER_DB", str(tmp_path / "env.duckdb"))
    result = invoke("top")
    assert result.exit_code == 1 and "breachminer ingest" in result.output
    result = invoke("top", "--tactic", "nonsense", "--db", str(tmp_path / "env.duckdb"))
    assert result.exit_code == 1


@needs_shared
def test_attack_update_from_the_stix_bundle(tmp_path) -> None:
    out = tmp_path / "catalog.json"
    result = invoke("attack", "update", "--stix", str(STIX), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "691 active techniques (216 techniques + 475 sub-techniques), 14 tactics" in result.output
    assert out.exists()


@needs_shared
def test_end_to_end_over_the_shared_reports(tmp_path, monkeypatch) -> None:
    db_file = tmp_path / "shared.duckdb"
    monkeypatch.setenv("BREACHMINER_OCR", "0")  # the image-only PDF fails until OCR is allowed (at the end)
    files = sorted(p for p in REPORTS.iterdir() if p.suffix in (".pdf", ".html"))
    result = invoke("ingest", str(REPORTS), "--db", str(db_file))
    assert result.exit_code == 0, result.output
    with wh.connect(db_file, read_only=True) as con:
        n_reports = con.execute("SELECT count(*) FROM reports").fetchone()[0]
        sources = con.execute("SELECT count(*) FROM report_sources").fetchone()[0]
        cisa = con.execute("""SELECT count(DISTINCT report_id), list(status ORDER BY status) FROM report_sources
                              WHERE source LIKE '%CISA_AA20-302A%'""").fetchone()
        failures = con.execute("SELECT source, error_class FROM failures").fetchall()
        top = con.execute("""SELECT technique_id, n_reports FROM technique_frequency WHERE level = 'parent'
                             ORDER BY n_reports DESC, technique_id LIMIT 20""").fetchall()
    assert len(files) == 29
    assert (n_reports, sources) == (27, 28)  # the CISA PDF and HTML are one report; one image-only PDF
    assert cisa == (1, ["new", "twin"])
    assert [(s.rsplit("/", 1)[-1], c) for s, c in failures] == [
        ("2021_GroupIB_Big_Airline_Heist_APT41.pdf", "NoTextLayer")]

    again = invoke("ingest", str(REPORTS), "--db", str(db_file), "--top", "0")  # within the retry delay: the
    assert "0 new, 28 unchanged" in again.output and "0 failed" in again.output  # failure waits
    assert "techniques over" not in again.output  # --top 0: no table, not an empty one
    assert "1 failed before and not due yet" in again.output
    listed = invoke("failures", "--db", str(db_file))
    assert "2021_GroupIB_Big_Airline_Heist_APT41.pdf" in listed.output and "retry after" in listed.output
    lines = invoke("failures", "--json", "--db", str(db_file)).output.splitlines()
    assert [json.loads(line)["error_class"] for line in lines] == ["NoTextLayer"]
    forced = invoke("ingest", str(REPORTS), "--db", str(db_file), "--retry-failed")
    assert "0 new, 28 unchanged" in forced.output and "1 failed" in forced.output
    with wh.connect(db_file, read_only=True) as con:
        assert con.execute("SELECT count(*) FROM reports").fetchone()[0] == 27
        assert con.execute("SELECT attempts FROM failures").fetchone()[0] == 2
        assert "OCR is off (BREACHMINER_OCR=0)" in con.execute("SELECT message FROM failures").fetchone()[0]

    csv_path = tmp_path / "top.csv"
    result = invoke("top", "-n", "20", "--csv", str(csv_path), "--db", str(db_file))
    rows = [(r["technique_id"], int(r["n_reports"])) for r in csv.DictReader(csv_path.open())]
    assert sorted(rows, key=lambda r: (-r[1], r[0])) == top
    for technique_id, n in top[:5]:
        assert technique_id in result.output and str(n) in result.output


def test_tables_fit_an_80_column_log(monkeypatch) -> None:
    """Piped output (CI, tee) is 80 columns: no cell may be cut to an ellipsis or mid-word."""
    import io

    import pandas as pd
    from rich.console import Console

    from breachminer.cli import common
    from breachminer.cli.model import _frequency_table, _method_table, _top_techniques_table

    out = io.StringIO()
    monkeypatch.setattr(common, "console", Console(file=out, width=80, soft_wrap=True))  # as the CLI's
    common.print_frame(pd.DataFrame({
        "rank": [1, 1, 4], "technique_id": ["T1027", "T1078", "T1016"],
        "technique_name": ["Obfuscated Files or Information", "Valid Accounts",
                           "System Network Configuration Discovery"],
        "n_reports": [4, 4, 3], "share": [1.0, 1.0, 0.75],
        "tactics": [["defense-evasion"], ["initial-access", "persistence", "privilege-escalation", "defense-evasion"],
                    ["discovery"]],
    }), title="Top")
    cell = {"precision": 0.702, "recall": 0.856, "f1": 0.771}
    levels = {level: {kind: cell for kind in ("micro", "macro")} for level in ("parent", "exact")}
    common.console.print(_method_table("Held-out", {"tram-baseline": levels, "hybrid": levels}))
    methods = ["id", "name", "lexicon", "classifier", "hybrid", "tram-baseline"]
    common.console.print(_top_techniques_table(
        [{"technique": "T1027", "support": 46, **{m: {"f1": 0.86} for m in methods}}], methods))
    agreement = {"spearman": 0.7061, "top_overlap": {"10": 7, "20": 16},
                 "under": [["T1036", 7, 22], ["T1041", 12, 18]], "over": [["T1106", 13, 7], ["T1140", 22, 16]]}
    common.console.print(_frequency_table("Frequency", {**{m: agreement for m in methods}, "2nd annotator": agreement}))
    text = out.getvalue()
    assert "privilege-escalation" in text and "…" not in text
    lines = text.splitlines()
    assert not any(line.strip().startswith(",") for line in lines)  # no comma cut off its item
    assert max(map(len, lines)) <= 80
    tactics = [line[60:].strip() for line in lines if line[60:].strip()]  # the tactics column: one per line
    assert {"initial-access", "persistence", "privilege-escalation"} <= set(tactics)
    assert text.count(".702/.856/.771") == 8 and "tram-baseline" in text
    assert all(method in text for method in methods) and text.count("0.86") == len(methods)
    assert text.count("T1036 7/22") == len(methods) + 1 and text.count("T1140 22/16") == len(methods) + 1

    # `top --tactic` at 80 columns: long headers break after an underscore, not mid-word
    out.truncate(0)
    out.seek(0)
    common.print_frame(pd.DataFrame({
        "rank": [1], "technique_id": ["T1059"], "technique_name": ["Command and Scripting Interpreter"],
        "n_reports": [19], "share": [0.679], "share_in_tactic": [0.345], "cumulative_share": [0.345]}))
    header = [line.split() for line in out.getvalue().splitlines()[:2]]
    assert header == [["technique_", "share_in_", "cumulative_"],
                      ["rank", "technique_id", "name", "n_reports", "share", "tactic", "share"]]

    # `prioritize` at 80 columns: eight columns, so a tactic breaks after a hyphen ("defense-" / "evasion"),
    # never mid-word ("defense-evasi" / "on"), and a name keeps its words whole
    out.truncate(0)
    out.seek(0)
    common.print_frame(pd.DataFrame({
        "pick": [1, 2], "technique": ["T1140", "T1543"],
        "name": ["Deobfuscate/Decode Files or Information", "Create or Modify System Process"],
        "tactic": ["defense-evasion", "privilege-escalation"], "reports": [22, 11], "signal": [0.5, 0.5],
        "collect": [0.5, 0.333], "priority": [0.204, 0.068]}))
    cells = [line.split() for line in out.getvalue().splitlines()]
    words = {word for line in cells for word in line}
    assert {"defense-", "evasion", "privilege-", "escalation", "Information", "Process"} <= words
    assert max(map(len, out.getvalue().splitlines())) <= 80


@pytest.mark.parametrize(("name", "value", "says"), [
    ("BREACHMINER_SIGHTING_THRESHOLD", "abc", "'abc' is not a number"),
    ("BREACHMINER_SIGHTING_THRESHOLD", "7", "must be above 0 and at most 1"),
    ("BREACHMINER_SIGHTING_THRESHOLD", "0", "must be above 0 and at most 1"),
    ("BREACHMINER_ANALYSIS_TIMEOUT", "-5", "must be at least 0"),
    ("BREACHMINER_WORKERS", "1.5", "not a whole number"),
    ("BREACHMINER_READ_TIMEOUT", "0", "must be above 0"),
])
def test_a_bad_setting_is_one_clear_line_not_a_traceback(tmp_path, monkeypatch, capsys, name, value, says) -> None:
    from breachminer.cli import main

    doc = tmp_path / "note.txt"
    doc.write_text("The actors ran PowerShell scripts (T1059.001) to stage the loader on every host they reached. " * 3)
    monkeypatch.setenv(name, value)
    monkeypatch.setattr("sys.argv", ["breachminer", "ingest", str(doc), "--db", str(tmp_path / "w.duckdb")])
    with pytest.raises(SystemExit) as exit_:
        main()
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and f"{name}='{value}'" in err and says in err and "Traceback" not in err
    assert not (tmp_path / "w.duckdb").exists()  # refused before anything was written


def test_valid_settings_still_read(monkeypatch) -> None:
    from breachminer.settings import get_settings

    monkeypatch.setenv("BREACHMINER_SIGHTING_THRESHOLD", "1")
    monkeypatch.setenv("BREACHMINER_ANALYSIS_TIMEOUT", "0")
    monkeypatch.setenv("BREACHMINER_WORKERS", "2")
    settings = get_settings()
    assert (settings.sighting_threshold, settings.analysis_timeout, settings.workers) == (1.0, 0.0, 2)


@pytest.fixture(scope="module")
def sample_warehouse(tmp_path_factory, prefect_harness):
    """The four sample reports loaded with the rule taggers (fast), for the query commands' checks."""
    import os

    from flows.ingest import run_ingest

    path = tmp_path_factory.mktemp("samples") / "samples.duckdb"
    os.environ["BREACHMINER_CLASSIFIER"] = "0"
    try:
        run_ingest([str(SAMPLES.parent / "samples.csv")], str(path), workers=1)
    finally:
        del os.environ["BREACHMINER_CLASSIFIER"]
    return path


def test_sql_sees_the_warehouse_and_nothing_else(sample_warehouse, tmp_path) -> None:
    leak = tmp_path / "leak.csv"
    for query in (f"copy (select * from reports) to '{leak}'", "select * from read_csv('/etc/passwd')",
                  "install httpfs", f"attach '{tmp_path / 'other.duckdb'}' as other",
                  "set enable_external_access = true"):
        result = invoke("sql", query, "--db", str(sample_warehouse))
        assert result.exit_code == 1 and "SQL error" in result.output, query
    assert not leak.exists() and not (tmp_path / "other.duckdb").exists()
    result = invoke("sql", "select count(*) as n from reports", "--db", str(sample_warehouse))
    assert result.exit_code == 0 and "4" in result.output
    assert invoke("sql", "  ", "--db", str(sample_warehouse)).exit_code == 1
    result = invoke("sql", "select a from (values (1), (NULL)) t(a)", "--db", str(sample_warehouse))
    assert result.exit_code == 0 and result.output.split() == ["a", "─", "1"]  # an INTEGER column with a NULL
    dated = invoke("sql", "select published from reports where published is not null limit 1", "--db",
                   str(sample_warehouse))
    assert dated.exit_code == 0 and "00:00:00" not in dated.output  # a DATE prints as a date
    assert len(dated.output.split()[-1]) == 10 and dated.output.split()[-1][4] == "-"
    result = invoke("sql", "select 1 as a; select 2 as b", "--db", str(sample_warehouse))
    assert result.exit_code == 1 and "one statement at a time" in result.output  # not only the last one's result


def test_csv_files_hold_lists_as_items_not_array_text(sample_warehouse, tmp_path) -> None:
    import numpy as np
    import pandas as pd

    from warehouse.exports import csv_text

    frame = pd.DataFrame({"id": ["T1055"], "tactics": [np.array(["privilege-escalation", "defense-evasion"])],
                          "none": [None]})
    assert csv_text(frame).splitlines() == ["id,tactics,none", "T1055,privilege-escalation; defense-evasion,"]
    listed = tmp_path / "components.csv"
    result = invoke("sql", "select technique_id, data_components from attack_techniques where technique_id = "
                           "'T1055'", "--csv", str(listed), "--db", str(sample_warehouse))
    assert result.exit_code == 0
    [row] = list(csv.DictReader(listed.open()))
    assert "; " in row["data_components"] and "[" not in row["data_components"] and "\n" not in row["data_components"]
    top = tmp_path / "top.csv"
    result = invoke("top", "-n", "40", "--level", "exact", "--csv", str(top), "--db", str(sample_warehouse))
    assert result.exit_code == 0
    assert not any("[" in row["tactics"] for row in csv.DictReader(top.open()))


def test_report_shows_from_the_warehouse_what_tag_shows_for_the_document(sample_warehouse, monkeypatch) -> None:
    doc = str(SAMPLES / "2024-espionage-supply-chain.pdf")
    monkeypatch.setenv("BREACHMINER_CLASSIFIER", "0")  # as the warehouse was loaded
    tagged = json.loads(invoke("tag", doc, "--json", "--evidence", "2").stdout)
    shown = invoke("report", doc, "--json", "--evidence", "2", "--db", str(sample_warehouse))
    assert shown.exit_code == 0, shown.output
    loaded = json.loads(shown.stdout)
    assert loaded["techniques"] == sorted(tagged["techniques"], key=lambda t: t["id"]) and loaded["techniques"]
    assert loaded["sources"] == [doc] and loaded["published"]
    by_id = invoke("report", loaded["report_id"], "--db", str(sample_warehouse))  # the text view, by report ID
    assert by_id.exit_code == 0 and f"{len(loaded['techniques'])} techniques" in by_id.output
    assert "T1195.002" in by_id.output and "“" in by_id.output
    missing = invoke("report", "0000000000000000", "--db", str(sample_warehouse))
    assert missing.exit_code == 1 and "no report or source" in missing.output
    # each evidence sentence comes with the words that matched in it ("" for the classifier), as tag's
    for technique in loaded["techniques"]:
        assert len(technique["matched"]) == len(technique["evidence"])
        assert all(words in sentence for words, sentence in zip(technique["matched"], technique["evidence"],
                                                                strict=True))
    assert any(words for technique in loaded["techniques"] for words in technique["matched"])
    # the start of its ID, or its file name, names it too
    for short in (loaded["report_id"][:6], doc.rsplit("/", 1)[-1]):
        named = invoke("report", short, "--json", "--evidence", "2", "--db", str(sample_warehouse))
        assert named.exit_code == 0 and json.loads(named.stdout) == loaded, short


def test_report_on_another_edition_says_whose_text_it_shows(sample_warehouse, tmp_path, monkeypatch) -> None:
    """A twin (the PDF of an HTML advisory) joins the report read first: `report` on it says the evidence is
    the other edition's."""
    import shutil

    from flows.ingest import run_ingest

    db = tmp_path / "w.duckdb"
    shutil.copy(sample_warehouse, db)
    original = SAMPLES / "2026-cloud-bec.txt"
    edition = tmp_path / "cloud-bec-reissued.txt"
    edition.write_text(original.read_text() + "\nReissued with a corrected contact address.\n")
    monkeypatch.setenv("BREACHMINER_CLASSIFIER", "0")
    run_ingest([str(edition)], str(db), workers=1)
    shown = invoke("report", str(edition), "--db", str(db))
    assert shown.exit_code == 0, shown.output
    assert f"{edition} (twin)" in shown.output
    assert "is another edition of this report" in " ".join(shown.output.split())
    assert f"are {original.resolve()}'s" in " ".join(shown.output.split()).replace("\n", "")
    direct = invoke("report", str(original), "--db", str(db))
    assert "another edition" not in direct.output


def test_a_report_named_by_a_prefix_shared_by_two_is_ambiguous(db_file, catalog) -> None:
    from warehouse_rows import load

    with wh.connect(db_file, catalog=catalog) as con:
        load(con, "abcd01", ["T1059"])
        load(con, "abcd02", ["T1027"])
        assert wh.resolve_reports(con, ["abcd02"]) == ["abcd02"]
        with pytest.raises(wh.UnknownReport, match=r"'abcd' could be any of abcd01 \(/src/abcd01\), abcd02"):
            wh.resolve_reports(con, ["abcd"])
        with pytest.raises(wh.UnknownReport, match="no report or source 'abc'"):  # under 4 characters
            wh.resolve_reports(con, ["abc"])


def test_an_excerpt_of_a_long_sentence_shows_the_words_that_matched() -> None:
    from breachminer.cli.common import excerpt

    listing = " ".join(f"ext{i}" for i in range(120)) + " Msbuild " + " ".join(f"dir{i}" for i in range(80))
    assert len(listing) > 1000
    shown = excerpt(listing, "Msbuild")
    assert "Msbuild" in shown and shown.startswith("… ext") and shown.endswith(" …") and len(shown) <= 310
    assert excerpt(listing).startswith("ext0 ext1") and "Msbuild" not in excerpt(listing)
    assert excerpt("a short sentence", "short") == "a short sentence"


def test_evidence_counts_everything_behind_a_technique_and_says_when_it_shows_part(sample_warehouse) -> None:
    db = ("--db", str(sample_warehouse))
    with wh.connect(sample_warehouse, read_only=True) as con:
        [(technique, reports, mentions)] = con.execute(
            """SELECT coalesce(parent_id, technique_id) AS p, count(DISTINCT report_id), count(*)
               FROM technique_evidence WHERE counted GROUP BY p ORDER BY count(*) DESC, p LIMIT 1""").fetchall()
        best_per_report = dict(con.execute(
            """SELECT report_id, arg_min(sentence_index, (-score, sentence_index)) FROM technique_evidence
               WHERE counted AND coalesce(parent_id, technique_id) = ? GROUP BY report_id""", [technique]).fetchall())
    assert mentions > 2
    result = invoke("evidence", technique, "-n", "2", *db)
    assert result.exit_code == 0
    assert f"{reports} report{'s' if reports > 1 else ''}, {mentions} mentions; the first 2 shown" in result.output
    assert "each report's strongest sentence: --per-report 1" in result.output
    # --per-report: every report, each with its strongest sentence (the one holding its best mention)
    lines = [json.loads(line) for line in invoke("evidence", technique, "--per-report", "1", "--json", *db).output
             .splitlines()]
    assert {line["report_id"] for line in lines} == set(best_per_report)
    for report_id, best in best_per_report.items():
        assert {line["sentence_index"] for line in lines if line["report_id"] == report_id} == {best}
    shown = invoke("evidence", technique, "--per-report", "1", *db).output
    assert f"{reports} report{'s' if reports > 1 else ''}, {len(lines)} mentions (each report's strongest" in shown
    revoked = invoke("evidence", "T1086", *db)  # PowerShell's old ID
    assert revoked.exit_code == 0 and "T1086 was revoked" in revoked.output and "T1059.001" in revoked.output
    for wrong, says in (("T9999", "not a technique of ATT&CK"), ("TA0003", "not a technique ID"),
                        ("powershell", "not a technique ID")):
        result = invoke("evidence", wrong, *db)
        assert result.exit_code == 1 and says in result.output, wrong
    assert invoke("evidence", technique, "-n", "0", *db).exit_code == 2  # rejected by the option itself
    everything = invoke("evidence", technique, "--all", "-n", "1000", "--json", *db).output
    if any(not json.loads(line)["counted"] for line in everything.splitlines()):
        assert "(not counted)" in invoke("evidence", technique, "--all", "-n", "1000", *db).output


def test_outputs_that_cannot_be_written_and_a_wrong_db_are_one_line_errors(sample_warehouse, tmp_path) -> None:
    missing = tmp_path / "no-such-folder"
    for args in (("top", "--csv", str(missing / "top.csv")), ("top", "--layer", str(missing / "top.json")),
                 ("summary", str(missing / "s.html")), ("prioritize", "--csv", str(missing / "p.csv")),
                 ("sql", "select 1", "--csv", str(missing / "q.csv"))):
        result = invoke(*args, "--db", str(sample_warehouse))
        assert result.exit_code == 1 and f"cannot write {missing}" in result.output, args
    not_a_db = tmp_path / "notes.txt"
    not_a_db.write_text("hello")
    result = invoke("top", "--db", str(not_a_db))
    assert result.exit_code == 1 and "is not a breachminer warehouse" in result.output
    assert invoke("top", "-n", "-3", "--db", str(sample_warehouse)).exit_code == 2


def test_prioritize_says_what_prevalence_is_relative_to(sample_warehouse) -> None:
    with wh.connect(sample_warehouse, read_only=True) as con:
        [(why, n_reports, prevalence)] = con.execute(
            "SELECT why, n_reports, prevalence FROM technique_priority WHERE level = 'parent' AND pick = 2").fetchall()
        most = con.execute("SELECT max(n_reports) FROM technique_frequency WHERE level = 'parent'").fetchone()[0]
    assert f"({n_reports} of 4 reports; the most frequent, {most})" in why
    assert abs(prevalence - n_reports / most) < 1e-3


def test_top_says_when_n_cuts_through_a_tie(sample_warehouse) -> None:
    with wh.connect(sample_warehouse, read_only=True) as con:
        ranks = [r for (r,) in con.execute("SELECT rank FROM technique_frequency WHERE level = 'parent' "
                                           "ORDER BY rank, technique_id").fetchall()]
    cut = next(k for k in range(1, len(ranks)) if ranks[k] == ranks[k - 1])  # n = cut ends inside a tie
    tied = ranks.count(ranks[cut - 1]) - ranks[:cut].count(ranks[cut - 1])
    result = invoke("top", "-n", str(cut), "--db", str(sample_warehouse))
    assert f"tie{'s' if tied == 1 else ''} at rank {ranks[cut - 1]} (-n {cut + tied} shows" in result.output
    whole = invoke("top", "-n", str(cut + tied), "--db", str(sample_warehouse))
    assert "at rank" not in whole.output or f"at rank {ranks[cut - 1]} " not in whole.output


def test_a_table_too_wide_for_the_terminal_prints_one_record_at_a_time(monkeypatch) -> None:
    """``select *`` of a wide view in 80 columns: one line per column instead of 2-character columns."""
    import io

    import pandas as pd
    from rich.console import Console

    from breachminer.cli import common

    out = io.StringIO()
    monkeypatch.setattr(common, "console", Console(file=out, width=80, soft_wrap=True))
    wide = pd.DataFrame({f"column_{k}": [k, None] for k in range(12)} | {"listed": [["a", "b"], []]})
    common.print_frame(wide, title="Wide")
    lines = out.getvalue().splitlines()
    assert lines[:2] == ["Wide", "── record 1 ──"] and "── record 2 ──" in lines
    assert "column_11  11" in lines and "listed     a; b" in lines
    out.truncate(0)
    out.seek(0)
    common.print_frame(pd.DataFrame({"technique_id": ["T1027"], "n_reports": [4]}))  # narrow: a table
    assert "record" not in out.getvalue() and "technique_id" in out.getvalue()


def test_tag_prints_the_evidence_it_promises(monkeypatch) -> None:
    monkeypatch.setenv("BREACHMINER_CLASSIFIER", "0")
    doc = str(SAMPLES / "2026-cloud-bec.txt")
    result = invoke("tag", doc)
    assert result.exit_code == 0
    lines = result.output.splitlines()
    spraying = next(k for k, line in enumerate(lines) if line.strip().startswith("T1110.003"))
    assert lines[spraying + 1].strip().startswith("“") and "Password Spraying (T1110.003)" in " ".join(
        lines[spraying + 1:spraying + 4])  # the strongest sentence, quoted, under its technique
    bare = invoke("tag", doc, "--evidence", "0")
    assert bare.exit_code == 0 and "“" not in bare.output
    assert invoke("tag", doc, "--evidence", "-1").exit_code == 2


def test_an_ingest_refused_by_another_writer_says_so_before_starting_a_flow_run(tmp_path) -> None:
    from warehouse.lock import writer_busy, writer_lock

    db_file = tmp_path / "w.duckdb"
    assert writer_busy(db_file) is None
    with writer_lock(db_file, what="ingest"):
        assert "another ingest" in writer_busy(db_file)
        result = invoke("ingest", str(SAMPLES / "2026-cloud-bec.txt"), "--db", str(db_file))
    assert result.exit_code == 1 and "another ingest" in result.output and "Traceback" not in result.output
    assert not db_file.exists() and writer_busy(db_file) is None  # nothing written; the lock is free again


def test_attack_update_from_a_bundle_without_a_matrix_is_a_clear_error(tmp_path) -> None:
    bundle = tmp_path / "not-attack.json"
    bundle.write_text(json.dumps({"type": "bundle", "id": "bundle--0b6b7ac5-1f1d-4a5c-9c4a-4d2b0c1f0e11",
                                  "objects": [{"type": "identity", "spec_version": "2.1",
                                               "id": "identity--c78cb6e5-0c4b-4611-8297-d1b8b55e40b5",
                                               "created": "2020-01-01T00:00:00.000Z",
                                               "modified": "2020-01-01T00:00:00.000Z",
                                               "name": "Someone", "identity_class": "organization"}]}))
    out = tmp_path / "catalog.json"
    result = invoke("attack", "update", "--stix", str(bundle), "--attack-version", "99.0", "--out", str(out))
    assert result.exit_code == 1 and "holds no ATT&CK matrix" in result.output and not out.exists()


@pytest.mark.parametrize(("verbose", "quiet"), [(None, True), ("0", True), ("false", True), ("1", False)])
def test_prefect_logs_show_only_when_verbose(monkeypatch, verbose, quiet) -> None:
    from breachminer.cli.common import quiet_prefect

    monkeypatch.delenv("PREFECT_LOGGING_LEVEL", raising=False)
    if verbose is None:
        monkeypatch.delenv("BREACHMINER_VERBOSE", raising=False)
    else:
        monkeypatch.setenv("BREACHMINER_VERBOSE", verbose)
    quiet_prefect()
    assert (os.environ.get("PREFECT_LOGGING_LEVEL") == "WARNING") is quiet  # BREACHMINER_VERBOSE=0 is quiet too


def test_read_commands_count_only_the_reports_in_scope(sample_warehouse, tmp_path) -> None:
    db = ("--db", str(sample_warehouse))
    with wh.connect(sample_warehouse, read_only=True) as con:
        [ransomware] = [rid for (rid,) in con.execute(
            "SELECT report_id FROM reports WHERE title ILIKE '%ransomware%'").fetchall()]
        expected = con.execute("SELECT count(*) FROM sightings WHERE report_id = ?", [ransomware]).fetchone()[0]
    top = invoke("top", "-n", "200", "--level", "exact", "--title", "Ransomware", "--csv", str(tmp_path / "t.csv"),
                 "--layer", str(tmp_path / "t.json"), *db)
    assert top.exit_code == 0, top.output
    assert "over 1 reports (title ~ 'Ransomware')" in top.output
    rows = list(csv.DictReader((tmp_path / "t.csv").open()))
    assert len(rows) == expected and all(row["n_reports"] == "1" and row["share"] == "1.0" for row in rows)
    assert "reports with title ~ 'Ransomware'" in json.loads((tmp_path / "t.json").read_text())["name"]
    technique = rows[0]["technique_id"]
    shown = invoke("evidence", technique, "--since", "2025", "--until", "2025", "--json", *db)
    assert {json.loads(line)["report_id"] for line in shown.output.splitlines()} == {ransomware}
    assert invoke("prioritize", "--publisher", "halyard", *db).output.count("over 1 reports") == 1
    invoke("summary", str(tmp_path / "s.html"), "--title", "ransomware", *db)
    assert "Only the reports with title ~ &#x27;ransomware&#x27;" in (tmp_path / "s.html").read_text()
    nothing = invoke("top", "--title", "no such title", *db)
    assert nothing.exit_code == 1 and "no loaded report is in the scope" in nothing.output


def test_evidence_shows_the_classifier_probability_beside_its_score(monkeypatch) -> None:
    """A classifier score is its probability on the sighting scale: the probability and the technique's
    threshold are printed with it, so a 0.98 from p=0.144 is not read as confidence."""
    import io

    import pandas as pd
    from rich.console import Console

    from breachminer.cli import query

    out = io.StringIO()
    monkeypatch.setattr(query, "console", Console(file=out, width=100, soft_wrap=True))
    query.print_evidence(pd.DataFrame([{
        "report_id": "r1", "title": "Cring", "published": None, "technique_id": "T1027.013", "method": "classifier",
        "score": 0.98, "cited": "", "detail": "p=0.144 threshold=0.044", "sentence_index": 99,
        "sentence": "Sorry, your computer has been encrypted.", "advice": False, "counted": True}]), "T1027.013")
    assert "T1027.013 classifier 0.98 (p=0.144 threshold=0.044)" in out.getvalue()
