"""The HTML summary: one self-contained page of what the warehouse says, for people who read no SQL.

It holds the parent-level top-N techniques (reports, share, the 3-year trend, first and last report),
each tactic's coverage (how few techniques cover most of its sightings, next to how many ATT&CK
defines), the first picks of the prioritization under the stored profile with their reasons, and for
every top technique the sentences behind its count: one per report, the reports with the strongest
evidence first, the matched words marked. Everything is computed by the warehouse's views, so the page agrees with
``breachminer top``, ``prioritize`` and ``evidence``.

The page has no script and loads nothing: inline CSS, and links to attack.mitre.org only. Report text is
untrusted input and is escaped everywhere. It carries ATT&CK's notice (``breachminer.catalog.ATTACK_NOTICE``).
"""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime
from typing import Any

import duckdb

from breachminer import __version__
from breachminer.catalog import ATTACK_NOTICE
from warehouse.db import counted_report_total, first_row, top_techniques
from warehouse.priorities import priorities

# rules first (the reader can check an ID or a command line at a glance), then the classifier's best score
METHOD_ORDER = "CASE method WHEN 'id' THEN 0 WHEN 'lexicon' THEN 1 WHEN 'name' THEN 2 ELSE 3 END"
STYLE = """
body{font:15px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:70rem;padding:0 1rem;color:#1b1b1b}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{margin-top:2.2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;width:100%;margin:.6rem 0}th,td{padding:.3rem .5rem;text-align:left;
vertical-align:top;border-bottom:1px solid #eee}th{background:#f6f6f6}td.n{text-align:right;white-space:nowrap}
.bar{background:#d32f2f;height:.7rem;display:inline-block;vertical-align:middle;margin-right:.4rem}
.up{color:#b71c1c}.down{color:#1b5e20}.muted{color:#666;font-size:.9em}mark{background:#ffe082}
details{margin:.4rem 0}summary{cursor:pointer;font-weight:600}blockquote{margin:.3rem 0 .6rem 1rem;
padding-left:.7rem;border-left:3px solid #ddd}footer{margin-top:3rem;color:#666;font-size:.85em}
"""


def html_summary(con: duckdb.DuckDBPyConnection, n: int = 20, evidence_per_technique: int = 3,
                 scope: str | None = None) -> str:
    """The summary page of the warehouse ``con`` as HTML text (top ``n`` techniques, ``n`` priorities);
    ``scope`` says which reports it counts when not all (``warehouse.db.scope_reports``)."""
    if n < 1:
        raise ValueError(f"-n must be at least 1, not {n}")
    top = top_techniques(con, n)
    ids = [str(t) for t in top["technique_id"]]
    sections = [
        _overview(con),
        _top_table(con, top),
        _coverage(con),
        _priorities(con, n),
        _evidence(con, top, _evidence_rows(con, ids, evidence_per_technique)),
    ]
    attack_version = (first_row(con, "SELECT value FROM meta WHERE key = 'attack_version'") or ["?"])[0]
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        "<title>breachminer: ATT&amp;CK techniques in threat reports</title>"
        f"<style>{STYLE}</style></head><body>\n"
        "<h1>ATT&amp;CK techniques seen in threat reports</h1>\n"
        f"<p class=\"muted\">breachminer {_e(__version__)}, generated {generated}, "
        f"ATT&amp;CK Enterprise v{_e(attack_version)}.</p>\n"
        + (f"<p><strong>Only the reports with {_e(scope)}</strong>: every number below counts those.</p>\n"
           if scope else "")
        + "\n".join(sections)
        + f"\n<footer><p>{_e(ATTACK_NOTICE)}</p></footer>\n</body></html>\n"
    )


def _overview(con: duckdb.DuckDBPyConnection) -> str:
    total = counted_report_total(con)
    first, last, publishers = first_row(
        con, "SELECT min(published), max(published), count(DISTINCT lower(trim(publisher))) FROM counted_reports")
    sightings = first_row(con, "SELECT count(*) FROM report_techniques WHERE level = 'exact'")[0]
    failing = first_row(con, "SELECT count(*) FROM failures WHERE resolved_at IS NULL")[0]
    loaded = first_row(con, "SELECT strftime(max(ingested_at), '%Y-%m-%d %H:%M') FROM counted_reports")[0]
    span = f", published {first} to {last}" if first else ""
    failed = (f" {failing} source(s) failed and wait for a retry (<code>breachminer failures</code>)."
              if failing else "")
    return (f"<p><b>{total}</b> reports{_e(span)} from {publishers} publisher(s); <b>{sightings}</b> "
            f"report–technique sightings; newest report loaded {_e(loaded or 'never')}.{failed}</p>\n"
            "<p class=\"muted\">A report counts for a technique when it supports it: an explicit technique ID, "
            "a high-fidelity observable or name, or the classifier's score at its threshold. Sub-techniques "
            "count for their parent.</p>")


def _top_table(con: duckdb.DuckDBPyConnection, top: Any) -> str:
    trend = dict(con.execute("SELECT technique_id, trend FROM technique_prevalence WHERE level = 'parent'")
                 .fetchall())
    span = dict((row[0], (row[1], row[2])) for row in con.execute(
        "SELECT technique_id, first_published, last_published FROM technique_frequency WHERE level = 'parent'"
    ).fetchall())
    widest = float(top["share"].max()) if len(top) else 1.0
    rows = []
    for row in top.itertuples(index=False):
        technique_id, share = str(row.technique_id), float(row.share)
        change = trend.get(technique_id)
        first, last = span.get(technique_id, (None, None))
        tactics = ", ".join(list(row.tactics) if row.tactics is not None else [])
        rows.append(
            f"<tr><td class=\"n\">{int(row.rank)}</td><td>{_technique_link(technique_id)}</td>"
            f"<td>{_e(row.technique_name)}</td><td>{_e(tactics)}</td>"
            f"<td class=\"n\">{int(row.n_reports)}</td>"
            f"<td class=\"n\"><span class=\"bar\" style=\"width:{60 * share / widest:.0f}px\"></span>{share:.0%}</td>"
            f"<td class=\"n\">{_trend(change)}</td><td class=\"n\">{_e(first or '')}</td>"
            f"<td class=\"n\">{_e(last or '')}</td></tr>")
    return ("<h2>Most reported techniques</h2>\n<table><tr><th>#</th><th>ID</th><th>technique</th><th>tactics</th>"
            "<th>reports</th><th>share</th><th title=\"time-decayed share (3-year half-life) minus share\">trend"
            "</th><th>first</th><th>last</th></tr>\n" + "\n".join(rows) + "</table>")


def _coverage(con: duckdb.DuckDBPyConnection) -> str:
    leaders = {}
    for tactic, technique_id, name in con.execute(
            """SELECT tactic, technique_id, technique_name FROM tactic_technique_frequency
               WHERE level = 'parent' AND rank_in_tactic <= 3 ORDER BY tactic, rank_in_tactic""").fetchall():
        leaders.setdefault(tactic, []).append(f"{_technique_link(technique_id)} {_e(name)}")
    rows = []
    for tactic, name, defined, seen, sightings, p50, p80, p90 in con.execute(
            """SELECT tactic, tactic_name, techniques_defined, techniques_seen, sightings, techniques_for_50pct,
                      techniques_for_80pct, techniques_for_90pct
               FROM tactic_coverage WHERE level = 'parent' ORDER BY kill_chain_order""").fetchall():
        rows.append(f"<tr><td>{_e(name)}</td><td class=\"n\">{defined}</td><td class=\"n\">{seen}</td>"
                    f"<td class=\"n\">{sightings}</td><td class=\"n\">{_e(p50 or '')}</td>"
                    f"<td class=\"n\">{_e(p80 or '')}</td><td class=\"n\">{_e(p90 or '')}</td>"
                    f"<td>{'; '.join(leaders.get(tactic, []))}</td></tr>")
    return ("<h2>Coverage per tactic</h2>\n<p class=\"muted\">How many techniques cover half, 80 % and 90 % of a "
            "tactic's sightings, next to how many ATT&amp;CK defines for it.</p>\n"
            "<table><tr><th>tactic</th><th>defined</th><th>seen</th><th>sightings</th><th>50%</th><th>80%</th>"
            "<th>90%</th><th>most reported</th></tr>\n" + "\n".join(rows) + "</table>")


def _priorities(con: duckdb.DuckDBPyConnection, n: int) -> str:
    picks = priorities(con, n)
    rows = [f"<tr><td class=\"n\">{int(row.pick)}</td><td>{_e(row.tactic)}</td>"
            f"<td>{_technique_link(str(row.technique_id))} {_e(row.technique_name)}</td>"
            f"<td class=\"n\">{float(row.priority):.2f}</td><td class=\"muted\">{_e(row.why)}</td></tr>"
            for row in picks.itertuples(index=False)]
    return ("<h2>What to detect first</h2>\n<p class=\"muted\">priority = prevalence × signal × collection under "
            "the stored profile (<code>breachminer prioritize --profile</code>); picks go round the kill chain, "
            "each tactic's best first.</p>\n<table><tr><th>pick</th><th>tactic</th><th>technique</th>"
            "<th>priority</th><th>why</th></tr>\n" + "\n".join(rows) + "</table>")


def _evidence_rows(con: duckdb.DuckDBPyConnection, technique_ids: list[str], per_technique: int) -> dict[str, list]:
    """Per parent technique, the best counted mention of each report, from the ``per_technique`` reports with the
    strongest evidence (an explicit ID, then an observable, a name, the classifier's highest score; newer first)."""
    rows = con.execute(
        f"""WITH best AS (
                SELECT coalesce(parent_id, technique_id) AS parent, report_id, title, publisher, published,
                       technique_id, method, cited, sentence, {METHOD_ORDER} AS strength, score,
                       row_number() OVER (PARTITION BY coalesce(parent_id, technique_id), report_id
                                          ORDER BY {METHOD_ORDER}, score DESC, sentence_index) AS in_report
                FROM technique_evidence
                WHERE counted AND coalesce(parent_id, technique_id) IN (SELECT unnest(?::VARCHAR[])))
            SELECT b.parent, b.title, b.publisher, b.published, b.technique_id, b.method, b.cited, b.sentence,
                   r.first_source
            FROM (SELECT *, row_number() OVER (PARTITION BY parent ORDER BY strength, score DESC,
                                                published DESC NULLS LAST, report_id) AS shown
                  FROM best WHERE in_report = 1) b JOIN reports r USING (report_id)
            WHERE b.shown <= ? ORDER BY b.parent, b.shown""",
        [technique_ids, per_technique],
    ).fetchall()
    grouped: dict[str, list] = {}
    for parent, *rest in rows:
        grouped.setdefault(parent, []).append(rest)
    return grouped


def _evidence(con: duckdb.DuckDBPyConnection, top: Any, evidence: dict[str, list]) -> str:
    blocks = []
    for row in top.itertuples(index=False):
        technique_id = str(row.technique_id)
        quotes = []
        for title, publisher, published, exact_id, method, cited, sentence, location in evidence.get(technique_id, []):
            source = ", ".join(_e(part) for part in (publisher, published) if part)
            name = _e(title or "untitled report")
            if location and location.startswith(("https://", "http://")):
                name = f"<a href=\"{_e(location)}\">{name}</a>"
            elif location:
                name += f" <span class=\"muted\">({_e(location)})</span>"
            quotes.append(f"<p><b>{name}</b> <span class=\"muted\">{source} — "
                          f"{_e(exact_id)} by {_e(method)}</span></p><blockquote>{_marked(sentence, cited)}"
                          "</blockquote>")
        blocks.append(f"<details><summary>{_e(technique_id)} {_e(row.technique_name)} — {int(row.n_reports)} "
                      f"reports</summary>\n" + "\n".join(quotes) +
                      f"<p class=\"muted\">All of them: <code>breachminer evidence {_e(technique_id)}</code></p>"
                      "</details>")
    return ("<h2>Evidence</h2>\n<p class=\"muted\">Sentences behind each count, one per report, the clearest "
            "evidence first: an explicit ID, an observable, a name, then the classifier's most confident "
            "sentence. The words a rule matched are marked.</p>\n" + "\n".join(blocks))


def _marked(sentence: str, cited: str | None) -> str:
    """The sentence, escaped, with the first occurrence of the cited words marked."""
    if not cited:
        return _e(sentence)
    found = re.search(re.escape(cited), sentence, re.IGNORECASE)
    if not found:
        return _e(sentence)
    start, end = found.span()
    return f"{_e(sentence[:start])}<mark>{_e(sentence[start:end])}</mark>{_e(sentence[end:])}"


def _technique_link(technique_id: str) -> str:
    path = technique_id.replace(".", "/")
    return f"<a href=\"https://attack.mitre.org/techniques/{_e(path)}/\">{_e(technique_id)}</a>"


def _trend(change: float | None) -> str:
    if change is None:
        return ""
    points = 100 * float(change)
    css = "up" if points >= 0.5 else "down" if points <= -0.5 else "muted"
    return f"<span class=\"{css}\">{points:+.1f} pt</span>"


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)
