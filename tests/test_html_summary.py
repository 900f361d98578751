"""The HTML summary: the same numbers as the views, the evidence behind them, report text escaped, self-contained."""

from __future__ import annotations

from datetime import date
from html.parser import HTMLParser

import pytest
from typer.testing import CliRunner

import warehouse.db as wh
from breachminer.catalog import ATTACK_NOTICE
from breachminer.cli import app
from breachminer.records import Mention, Sentence, Sighting
from warehouse.html_summary import html_summary

HOSTILE_TITLE = "<script>alert('title')</script> Loader report"
HOSTILE_SENTENCE = "The loader ran rundll32 <img src=x onerror=alert(1)> to start its DLL."


def load(con, rid: str, evidence: list[tuple[str, str, str, str, bool]], published: date, title: str) -> None:
    """One report; ``evidence`` rows are (sentence, technique, method, cited words, advice sentence)."""
    sentences, mentions, sighted = [], [], {}
    for index, (text, technique, method, cited, advice) in enumerate(evidence):
        sentences.append(Sentence(index, index * 100, index * 100 + len(text), text, advice))
        start = text.find(cited) if cited else 0
        mentions.append(Mention(index, technique, method, 0.9 if method != "classifier" else 0.7, cited, start,
                                start + len(cited), "", f"{method}-1"))
        if not advice:
            sighted[technique] = Sighting(technique, 0.9, (method,), 1, 1, "test")
    source = "https://vendor.example/blog/loader?a=1&b=2" if rid == "r1" else f"/src/{rid}"
    report = wh.ReportRow(rid, rid * 4, title, "Vendor", published, "text", 1000, None, [1, 2, 3], source,
                          {"id": "id-1"})
    wh.load_report(con, report, wh.SourceRow(source, f"bytes-{rid}", "text", 1000), sentences, mentions,
                   list(sighted.values()), "run1")


@pytest.fixture()
def warehouse(db_file, catalog):
    with wh.connect(db_file, catalog=catalog) as con:
        load(con, "r1", [(HOSTILE_SENTENCE, "T1218.011", "lexicon", "rundll32", False),
                         ("Persistence came from a Run key.", "T1547.001", "classifier", "", False)],
             date(2023, 4, 1), HOSTILE_TITLE)
        load(con, "r2", [("It used System Binary Proxy Execution: Rundll32 (T1218.011).", "T1218.011", "id",
                          "T1218.011", False),
                         ("The backdoor proxied its execution through a signed binary.", "T1218.011", "classifier",
                          "", False),
                         ("Block rundll32 from reaching the internet where possible.", "T1218.011", "lexicon",
                          "rundll32", True)],
             date(2024, 2, 1), "Second report")
        load(con, "r3", [("A scheduled task ran the payload daily.", "T1053.005", "classifier", "", False)],
             date(2022, 1, 1), "Third report")
    return db_file


class Page(HTMLParser):
    """Tags, table rows (cell texts) and text of an HTML page."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.rows: list[list[str]] = []
        self.text: list[str] = []
        self._cell: list[str] | None = None
        self.feed(page)

    def handle_starttag(self, tag, attrs) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data) -> None:
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)


def test_the_summary_shows_the_views_numbers_and_the_evidence_behind_them(warehouse) -> None:
    with wh.connect(warehouse, read_only=True) as con:
        page = html_summary(con, n=5)
        top = wh.top_techniques(con, 5)
        coverage = con.execute("SELECT tactic_name, techniques_defined FROM tactic_coverage WHERE level = 'parent' "
                               "ORDER BY kill_chain_order").fetchall()
    parsed = Page(page)
    top_rows = [row for row in parsed.rows if len(row) == 9 and row[0].isdigit()]
    assert [(row[1], int(row[4])) for row in top_rows] == list(zip(top["technique_id"], top["n_reports"],
                                                                   strict=True))
    assert top_rows[0][1:6] == ["T1218", "System Binary Proxy Execution", "defense-evasion", "2", "67%"]
    coverage_rows = [(row[0], int(row[1])) for row in parsed.rows if len(row) == 8 and row[1].isdigit()]
    assert coverage_rows == coverage and len(coverage) == 14

    # evidence: one sentence per report, the explicit ID before the classifier, the matched words marked,
    # and the advice sentence (not counted) left out
    evidence = page[page.index("<h2>Evidence</h2>"):]
    t1218 = evidence[evidence.index("<summary>T1218 "):evidence.index("</details>", evidence.index("<summary>T1218 "))]
    assert t1218.count("<blockquote>") == 2
    assert t1218.index("<mark>T1218.011</mark>") < t1218.index("<mark>rundll32</mark>")
    assert "signed binary" not in t1218 and "where possible" not in t1218
    assert "breachminer evidence T1218" in t1218
    assert "<b>Second report <span class=\"muted\">(/src/r2)</span></b>" in t1218  # where to read the report


def test_report_text_is_escaped_and_the_page_loads_nothing(warehouse) -> None:
    with wh.connect(warehouse, read_only=True) as con:
        page = html_summary(con)
    parsed = Page(page)
    assert "script" not in {tag for tag, _ in parsed.tags} and "img" not in {tag for tag, _ in parsed.tags}
    assert "&lt;script&gt;alert(&#x27;title&#x27;)&lt;/script&gt; Loader report" in page
    assert "<mark>rundll32</mark> &lt;img src=x onerror=alert(1)&gt; to start its DLL." in page
    assert not [attrs for _, attrs in parsed.tags if "src" in attrs or attrs.get("rel") == "stylesheet"]
    assert {attrs["href"].split("/techniques/")[0] for tag, attrs in parsed.tags if tag == "a"} == {
        "https://attack.mitre.org", "https://vendor.example/blog/loader?a=1&b=2"}  # and the report fetched from a URL
    assert ATTACK_NOTICE in "".join(parsed.text)


def test_an_empty_warehouse_gives_a_page_that_says_so(db_file, catalog) -> None:
    with wh.connect(db_file, catalog=catalog) as con:
        page = html_summary(con)
    assert "<b>0</b> reports from 0 publisher(s)" in page and "newest report loaded never" in page


def test_the_summary_command_writes_the_page(warehouse, tmp_path) -> None:
    out = tmp_path / "summary.html"
    result = CliRunner().invoke(app, ["summary", str(out), "-n", "2", "--db", str(warehouse)])
    assert result.exit_code == 0, result.output
    assert f"wrote {out}" in result.output
    assert len([row for row in Page(out.read_text()).rows if len(row) == 9 and row[0].isdigit()]) == 2
    missing = CliRunner().invoke(app, ["summary", str(out), "--db", str(tmp_path / "nothing.duckdb")])
    assert missing.exit_code != 0 and "nothing.duckdb" in missing.output
