"""Commands that read the warehouse: ``top`` (+ CSV, Navigator layer), ``summary`` (HTML), ``sql``, ``evidence``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import duckdb
import typer

import warehouse.db as wh
from breachminer.cli.common import (
    DbOption,
    PublisherScopeOption,
    SinceScopeOption,
    TitleScopeOption,
    UntilScopeOption,
    console,
    db_path,
    err_console,
    fail,
    is_missing,
    print_frame,
    print_techniques,
    write_or_fail,
)


def top(
    n: Annotated[int, typer.Option("-n", "--limit", min=1, help="how many techniques")] = 20,
    tactic: Annotated[str | None, typer.Option(help="only this tactic (e.g. persistence)")] = None,
    level: Annotated[str, typer.Option(help="parent (sub-techniques rolled up) or exact")] = "parent",
    csv: Annotated[Path | None, typer.Option("--csv", help="also write the table to this CSV file")] = None,
    layer: Annotated[Path | None, typer.Option(
        "--layer", help="also write the table as an ATT&CK Navigator layer (JSON, layer format 4.5)")] = None,
    half_life: Annotated[float | None, typer.Option(
        "--half-life", help="rank by time-decayed prevalence instead: a report's weight halves every this many "
                            "years before the newest report", show_default=False)] = None,
    title: TitleScopeOption = None,
    publisher: PublisherScopeOption = None,
    since: SinceScopeOption = None,
    until: UntilScopeOption = None,
    db: DbOption = None,
) -> None:
    """The most frequent techniques: reports with a sighting, share of reports, rank.

    The layer colours the same techniques by their report counts; open it in the ATT&CK Navigator
    ("Open Existing Layer" → "Upload from local"). With --half-life, recent reports weigh more
    (decayed_share; trend = decayed_share - share, > 0 when a technique is reported more lately).

    Example: breachminer top -n 20 --tactic persistence --csv top.csv --layer top.json
    Recent first: breachminer top -n 20 --half-life 2
    Some reports only: breachminer top --tactic discovery --title ransomware --since 2020
    """
    from warehouse.exports import navigator_layer, replace_file, write_csv

    if level not in ("parent", "exact"):
        fail("--level must be 'parent' or 'exact'")
    if half_life is not None and layer:
        fail("--layer scores techniques by their report counts; write it without --half-life")
    scope = wh.ReportScope.of(title, publisher, since, until)
    try:
        with wh.connect(db_path(db), read_only=True) as con:
            wh.scope_reports(con, scope)
            frame = wh.top_techniques(con, n, level, tactic, half_life)
            last_rank = int(frame["rank"].iloc[-1]) if len(frame) == n and half_life is None else None
            tied = (wh.techniques_at_rank(con, last_rank, level, tactic) - int((frame["rank"] == last_rank).sum())
                    if last_rank is not None else 0)
            total = wh.counted_report_total(con)
            dated = wh.counted_report_total(con, dated_only=True)
            layer_json = navigator_layer(con, n, level, tactic, scope) if layer else None
    except (wh.WarehouseMissing, wh.WarehouseLocked, ValueError) as exc:
        fail(str(exc))
    scoped = f" ({scope.describe()})" if scope else ""
    heading = f"Top {len(frame)} techniques ({level} level{', ' + tactic if tactic else ''}) over {total} reports"
    if half_life is not None:
        heading = (f"Top {len(frame)} techniques by prevalence with a {half_life:g}-year half-life ({level} level"
                   f"{', ' + tactic if tactic else ''}) over the {dated} dated of {total} reports")
    print_frame(frame, heading + scoped)
    if tied > 0:
        console.print(f"{tied} more technique{'s tie' if tied > 1 else ' ties'} at rank {last_rank} "
                      f"(-n {n + tied} shows {'them' if tied > 1 else 'it'})")
    if csv:
        write_or_fail(csv, lambda target: write_csv(frame, target))
        console.print(f"wrote {csv}")
    if layer:
        write_or_fail(layer, lambda target: replace_file(target, json.dumps(layer_json, indent=2, ensure_ascii=False)
                                                         + "\n"))
        subs = len(layer_json["techniques"]) - len(frame)
        console.print(f"wrote {layer} (ATT&CK Navigator layer: {len(frame)} techniques"
                      + (f" and {subs} of their sub-techniques)" if subs else ")"))


def summary(
    path: Annotated[Path, typer.Argument(help="the HTML file to write", dir_okay=False)],
    n: Annotated[int, typer.Option("-n", "--limit", min=1, help="techniques in the top table and priorities")] = 20,
    evidence_per_technique: Annotated[int, typer.Option(
        "--evidence", help="sentences shown per top technique (one per report)")] = 3,
    title: TitleScopeOption = None,
    publisher: PublisherScopeOption = None,
    since: SinceScopeOption = None,
    until: UntilScopeOption = None,
    db: DbOption = None,
) -> None:
    """A one-page HTML summary to share: top techniques, coverage per tactic, priorities, and the evidence.

    The page is self-contained (no script, nothing loaded); every number comes from the warehouse's views, so it
    agrees with top, prioritize and evidence. ``ingest --export-dir`` writes it as summary.html after every run.

    Example: breachminer summary techniques.html -n 25
    """
    from warehouse.exports import replace_file
    from warehouse.html_summary import html_summary

    scope = wh.ReportScope.of(title, publisher, since, until)
    try:
        with wh.connect(db_path(db), read_only=True) as con:
            wh.scope_reports(con, scope)
            page = html_summary(con, n, evidence_per_technique, scope.describe() if scope else None)
    except (wh.WarehouseMissing, wh.WarehouseLocked, ValueError) as exc:
        fail(str(exc))
    write_or_fail(path, lambda target: replace_file(target, page))
    console.print(f"wrote {path}")


def sql(
    query: Annotated[str, typer.Argument(help="a SQL query over the warehouse tables and views")],
    csv: Annotated[Path | None, typer.Option("--csv", help="write the result to this CSV file")] = None,
    db: DbOption = None,
) -> None:
    """Run a read-only SQL query over the warehouse.

    The query sees the warehouse only: it cannot write it, and reading or writing other files
    (read_csv, COPY … TO), attaching databases or loading extensions is refused.

    Example: breachminer sql "select * from technique_frequency limit 5"
    """
    from warehouse.exports import write_csv

    if not query.strip():
        fail("empty query: give a SELECT, e.g. \"select * from technique_frequency limit 5\"")
    try:
        with wh.connect(db_path(db), read_only=True) as con:
            wh.confine(con)
            statements = con.extract_statements(query)
            if len(statements) > 1:
                fail(f"one statement at a time: the query holds {len(statements)} (run each with its own "
                     "`breachminer sql`, or join them into one SELECT)")
            result = con.execute(query)
            if result.description is None:
                fail("the statement returned no rows to show (a SELECT, DESCRIBE or SHOW does)")
            frame = result.df(date_as_object=True)  # a DATE prints as 2020-10-28, not a midnight timestamp
    except (wh.WarehouseMissing, wh.WarehouseLocked) as exc:
        fail(str(exc))
    except duckdb.Error as exc:
        fail(f"SQL error: {exc}")
    print_frame(frame)
    if csv:
        write_or_fail(csv, lambda target: write_csv(frame, target))


def report(
    target: Annotated[str, typer.Argument(
        help="a report ID (or its first 4+ characters), or a source (path, URL or file name) of a report")],
    evidence_sentences: Annotated[int | None, typer.Option(
        "--evidence", min=0, help="evidence sentences per technique, strongest first \\[default: 1, or 3 with --json]",
        show_default=False)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object, as `tag --json` prints")] = False,
    db: DbOption = None,
) -> None:
    """One loaded report's techniques with their evidence: what `tag` shows for a document, from the warehouse.

    Example: breachminer report ../shared/data/reports/2015_Skeleton_Key_Analysis.pdf
    """
    from rich.markup import escape

    shown = evidence_sentences if evidence_sentences is not None else (3 if as_json else 1)
    named = str(Path(target).resolve()) if Path(target).exists() else target
    try:
        with wh.connect(db_path(db), read_only=True) as con:
            [report_id] = wh.resolve_reports(con, [named])[:1]
            title, publisher, published, sources = wh.report_header(con, report_id)
            techniques = wh.report_sightings(con, report_id, shown)
    except (wh.WarehouseMissing, wh.WarehouseLocked, wh.UnknownReport) as exc:
        fail(str(exc))
    if as_json:
        print(json.dumps({"report_id": report_id, "title": title, "publisher": publisher,
                          "published": published.isoformat() if published else None,
                          "sources": [source for source, _status in sources], "techniques": techniques},
                         ensure_ascii=False))
        return
    dated = f", {published}" if published else ""
    print_techniques(f"{report_id} {title or 'untitled'} ({publisher or 'publisher unknown'}{dated})", techniques)
    console.print(f"[dim]sources: {'; '.join(f'{source} ({status})' for source, status in sources)}[/dim]",
                  highlight=False)
    if dict(sources).get(named) == "twin":
        read = [source for source, status in sources if status != "twin"]
        console.print(f"[yellow]{escape(target)} is another edition of this report (near-identical text): the "
                      f"text analysed, and the evidence above, are {escape(read[-1]) if read else 'the other'}'s; "
                      "`breachminer tag` on it shows its own[/yellow]", highlight=False)


def evidence(
    technique: Annotated[str, typer.Argument(help="technique ID, e.g. T1059.001 (a parent includes its subs)")],
    limit: Annotated[int, typer.Option("-n", "--limit", min=1, help="at most this many mentions")] = 50,
    all_mentions: Annotated[bool, typer.Option("--all", help="also mentions that did not count")] = False,
    per_report: Annotated[int | None, typer.Option(
        "--per-report", min=1, help="only each report's N strongest sentences (every report shows)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per mention and line")] = False,
    title: TitleScopeOption = None,
    publisher: PublisherScopeOption = None,
    since: SinceScopeOption = None,
    until: UntilScopeOption = None,
    db: DbOption = None,
) -> None:
    """The reports and sentences behind a technique's count.

    Each report once, then each sentence once with every method that found the technique in it, the
    sentence in full. A revoked ID shows its replacement's evidence (T1086 → T1059.001).
    Example: breachminer evidence T1059.001 --per-report 1   (each report's strongest sentence)
    """
    technique_id = _technique_to_show(technique)
    scope = wh.ReportScope.of(title, publisher, since, until)
    try:
        with wh.connect(db_path(db), read_only=True) as con:
            wh.scope_reports(con, scope)
            frame = wh.evidence(con, technique_id, limit, counted_only=not all_mentions, per_report=per_report)
            totals = wh.evidence_totals(con, technique_id, counted_only=not all_mentions, per_report=per_report)
    except (wh.WarehouseMissing, wh.WarehouseLocked, ValueError) as exc:
        fail(str(exc))
    if as_json:
        print(frame.to_json(orient="records", lines=True, date_format="iso"), end="")
        return
    scoped = f" in the reports with {scope.describe()}" if scope else ""
    if frame.empty:
        console.print(f"no evidence for {technique_id}{scoped}"
                      + ("" if all_mentions else " (--all: also what did not count)"))
        return
    print_evidence(frame, technique_id + scoped, totals, per_report)


def _technique_to_show(cited: str) -> str:
    """The technique whose evidence to show for ``cited``: itself, or a revoked ID's replacement (said on
    stderr); anything else that is no ATT&CK technique is a clear error."""
    from breachminer.catalog import TECHNIQUE_ID, AttackCatalog
    from breachminer.settings import get_settings

    catalog = AttackCatalog.load(get_settings().catalog_path)
    resolution = catalog.resolve(cited)
    if not TECHNIQUE_ID.match(resolution.cited_id):
        fail(f"{cited!r} is not a technique ID (T1234 or T1234.001; tactics such as TA0003 have no evidence of "
             "their own)")
    if resolution.technique_id is None:
        fail(f"{resolution.cited_id} is not a technique of ATT&CK {catalog.attack_version} "
             "(`breachminer sql \"select technique_id, name from attack_techniques\"` lists them)")
    if resolution.status == "revoked":
        err_console.print(f"{resolution.cited_id} was revoked in ATT&CK; showing its replacement, "
                          f"{resolution.technique_id}")
    return resolution.technique_id


def print_evidence(frame: Any, technique: str, totals: tuple[int, int] | None = None,
                   per_report: int | None = None) -> None:
    """Evidence as blocks that stay readable in an 80-column log: a header with the counts (all of them,
    and how many are shown when ``-n`` cut the list), a report line, then per sentence its index, what
    found it (method, score, the words matched; "not counted" when it did not count) and the whole
    sentence, wrapped."""
    import textwrap

    from rich.markup import escape

    width = max(40, min(console.width, 100))
    n_reports, n_mentions = totals or (frame["report_id"].nunique(), len(frame))
    shown = ""
    if len(frame) < n_mentions:
        shown = f"; the first {len(frame)} shown, from {frame['report_id'].nunique()} reports (all of them: " \
                f"-n {n_mentions}" + ("" if per_report else "; each report's strongest sentence: --per-report 1") + ")"
    strongest = "" if not per_report else (" (each report's strongest sentence)" if per_report == 1 else
                                           f" (each report's {per_report} strongest sentences)")
    console.print(f"[bold]Evidence for {technique}[/bold]: {n_reports} report{'s' if n_reports != 1 else ''}, "
                  f"{n_mentions} mention{'s' if n_mentions != 1 else ''}{strongest}{shown}")
    for (report_id, title, published), report_rows in frame.groupby(
            ["report_id", "title", "published"], sort=False, dropna=False):
        when = "" if is_missing(published) else f" ({str(published)[:10]})"
        console.print()
        console.print(f"[bold]{escape(str(title or report_id))}{when}[/bold] [dim]report {report_id}[/dim]",
                      highlight=False)
        for index, rows in report_rows.groupby("sentence_index", sort=False):
            found = " · ".join(
                f"{row.technique_id} {row.method} {row.score:.2f}" + (f' "{row.cited}"' if row.cited else "")
                + (f" ({row.detail})" if row.method == "classifier" and row.detail else "")  # its probability
                + ("" if row.counted else " (not counted)")
                for row in rows.itertuples(index=False))
            advice = " [yellow](advice: only an explicit ID counts)[/yellow]" if rows["advice"].iloc[0] else ""
            console.print(f"  [cyan]#{index}  {escape(found)}[/cyan]{advice}", highlight=False)
            sentence = textwrap.fill(str(rows["sentence"].iloc[0]), width=width, initial_indent="    ",
                                     subsequent_indent="    ", break_long_words=True, break_on_hyphens=False)
            console.print(escape(sentence), highlight=False)


def failures(
    include_resolved: Annotated[bool, typer.Option("--all", help="also failures a later run resolved")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per line")] = False,
    db: DbOption = None,
) -> None:
    """What failed, why, how often, and when a later run retries it (or that it was given up).

    Example: breachminer failures --all
    """
    try:
        with wh.connect(db_path(db), read_only=True) as con:
            frame = wh.failures_frame(con, include_resolved)
    except (wh.WarehouseMissing, wh.WarehouseLocked) as exc:
        fail(str(exc))
    if as_json:
        print(frame.to_json(orient="records", lines=True, date_format="iso"), end="")
        return
    if frame.empty:
        console.print("no failures" + ("" if include_resolved else " waiting for a retry"))
        return
    console.print(f"[bold]{len(frame)} failures[/bold]" + (" (incl. resolved)" if include_resolved else ""))
    for row in frame.itertuples(index=False):
        plural = "s" if row.attempts != 1 else ""
        console.print(f"[bold]{row.source}[/bold]", highlight=False)
        console.print(f"  {row.stage}/{row.error_class} · {row.attempts} attempt{plural} · {row.next_step}",
                      highlight=False)
        console.print(f"  [dim]{row.message}[/dim]", highlight=False)
