"""Commands that take documents in: ``ingest`` (into the warehouse) and ``tag`` (no database)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from breachminer.cli.common import (
    AllowPrivateOption,
    DbOption,
    ExportDirOption,
    ExportLimitOption,
    IgnoreRobotsOption,
    OfflineOption,
    RetryFailedOption,
    WaitOption,
    console,
    db_path,
    err_console,
    fail,
    print_frame,
    print_techniques,
    quiet_prefect,
)
from breachminer.settings import get_settings

DEFAULT_CORPUS = Path(__file__).resolve().parents[2] / "reports_corpus" / "sources.csv"


def ingest(
    inputs: Annotated[list[str] | None, typer.Argument(
        help="folders, files (.pdf .html .txt) or manifest CSVs \\[default: reports_corpus/sources.csv]",
        show_default=False)] = None,
    workers: Annotated[int | None, typer.Option(
        help="parallel worker processes \\[default: $BREACHMINER_WORKERS or 1]")] = None,
    top_n: Annotated[int, typer.Option("--top", min=0, help="techniques to show after the run (0: none)")] = 10,
    retry_failed: RetryFailedOption = False,
    allow_private: AllowPrivateOption = None,
    ignore_robots: IgnoreRobotsOption = False,
    offline: OfflineOption = None,
    wait: WaitOption = 0.0,
    export_dir: ExportDirOption = None,
    export_limit: ExportLimitOption = 50,
    db: DbOption = None,
) -> None:
    """Ingest reports into the warehouse (one Prefect flow run), then print the top techniques.

    Inputs: folders, files, manifest CSVs (ours or APTnotes'), report URLs and RSS/Atom feed URLs.
    URLs are fetched into the raw cache; a re-run asks with ETag/Last-Modified and skips what is
    unchanged. Failures are retried by later runs with backoff (see `breachminer failures`). The exit
    status is 1 when sources failed and none loaded (all failed); failures next to loaded reports exit 0.

    Example: breachminer ingest ../shared/data/reports --db /tmp/bm.duckdb
    """
    quiet_prefect()
    import warehouse.db as wh
    from breachminer.progress import progress_reporter
    from extractors.sources import SourceError, collect_sources
    from flows.ingest import run_ingest
    from warehouse.lock import WriterBusy, writer_busy

    if not inputs:
        if not DEFAULT_CORPUS.exists():
            fail("no inputs given and no reports_corpus/sources.csv beside the package")
        inputs = [str(DEFAULT_CORPUS)]
    try:
        collect_sources(inputs)  # fail fast on a missing path before starting a flow run
    except SourceError as exc:
        fail(str(exc))
    target = db_path(db)
    if not wait and (busy := writer_busy(target)):
        fail(busy)  # at once, before a flow run starts
    with Progress(TextColumn("[bold]analysing reports"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=err_console, transient=True) as bar:
        task_id = bar.add_task("ingest", total=None)

        def on_progress(_event: str, done: int, total: int) -> None:
            bar.update(task_id, completed=done, total=total)

        with progress_reporter(on_progress):
            try:
                result = run_ingest(list(inputs), str(target), workers, retry_failed=retry_failed,
                                    allow_private=allow_private, offline=offline,
                                    respect_robots=False if ignore_robots else None, wait=wait,
                                    export_dir=str(export_dir) if export_dir else None, export_limit=export_limit)
            except (wh.WarehouseLocked, WriterBusy) as exc:
                fail(str(exc))
    revised = f"{result['revised']} revised, " if result["revised"] else ""
    console.print(
        f"[bold]run {result['run_id']}[/bold]: {result['sources']} sources → "
        f"[green]{result['new']} new[/green], {revised}{result['unchanged']} unchanged, "
        f"{result['duplicate']} duplicate, [red]{result['failed']} failed[/red] "
        f"({result['sightings']:+d} sightings) → {target}",
    )
    extras = [f"{result[key]} {label}" for key, label in (
        ("feeds", "feeds read"), ("downloaded", "downloaded"), ("not_modified", "not modified (304)"),
        ("deferred", "failed before and not due yet (--retry-failed)"), ("offline", "URLs skipped offline"),
        ("reextracted", "loaded reports read again by the current text extraction"),
        ("forgotten", "skipped as forgotten (breachminer forget --list)"),
        ("retagged", "loaded reports re-scored (decided by another model, tagger, rule or threshold)"))
        if result.get(key)]
    if extras:
        console.print("  " + ", ".join(extras))
    if result["skipped_note"]:
        console.print(f"  {result['skipped_note']}")
    warnings = result["manifest_warnings"]
    for warning in warnings[:5]:
        err_console.print(f"  [yellow]{warning}[/yellow]")
    if len(warnings) > 5:
        err_console.print(f"  [yellow]… and {len(warnings) - 5} more (each report's notes say which)[/yellow]")
    if result.get("retag_error"):
        err_console.print(f"  [red]{result['retag_error']}[/red]; they keep their earlier sightings and the next "
                          "run tries again")
    if result.get("exported"):
        console.print(f"  exported {len(result['exported'])} files to {export_dir}")
    if result.get("export_error"):
        err_console.print(f"  [red]{result['export_error']}[/red]; the run's reports are loaded")
    with wh.connect(target, read_only=True) as con:
        failed = wh.run_failures(con, result["run_id"])
        frame = wh.top_techniques(con, top_n)
        total = wh.counted_report_total(con)
    if not failed.empty:
        failed["source"] = failed["source"].map(lambda s: Path(s).name if "://" not in s else s)
        title = f"{len(failed)} failed this run (later runs retry them; details: breachminer failures)"
        if len(failed) > 5:  # by cause, with one example each
            failed = failed.groupby(["stage", "error_class"], as_index=False).agg(
                n=("source", "size"), example=("source", "first"), message=("message", "first"))
        print_frame(failed, title)
    if top_n:
        print_frame(frame, f"Top {len(frame)} techniques over {total} reports (parent level)")
    if all_failed(result):
        err_console.print("[red]nothing loaded: every source tried failed[/red] (exit status 1)")
        raise typer.Exit(1)


def all_failed(result: dict[str, Any]) -> bool:
    """True for a run in which sources failed and none was loaded, revised, unchanged or another source of
    a loaded report: ``ingest`` then exits with status 1. The flow itself never fails for it (a scheduled
    run records the failures and retries them)."""
    return result["failed"] > 0 and not any(result[key] for key in ("new", "revised", "unchanged", "duplicate"))


def tag(
    paths: Annotated[list[Path], typer.Argument(
        help=".pdf, .html or .txt documents (one that cannot be read is reported and the others are tagged)")],
    as_json: Annotated[bool, typer.Option("--json", help="one JSON line per document")] = False,
    evidence: Annotated[int | None, typer.Option(
        min=0, help="evidence sentences per technique, strongest first \\[default: 1, or 3 with --json]",
        show_default=False)] = None,
) -> None:
    """Tag documents without a database: the techniques each one supports, with evidence.

    Evidence is the sentences whose mentions counted for the technique (defender advice only for an
    explicit ID), strongest first. Example: breachminer tag some-report.pdf notes.txt --json
    """
    from rich.markup import escape

    from extractors.advice import advice_sentences
    from extractors.documents import ExtractionError
    from flows.deadline import ChildDied, DeadlineExceeded, call_with_deadline
    from models.classifier import ModelCompatibilityError
    from models.tagger import hybrid_analyzer

    settings = get_settings()
    try:
        analyzer = hybrid_analyzer(str(settings.catalog_path), settings.sighting_threshold, settings.max_pages,
                                   str(settings.model_dir) if settings.model_dir else None, settings.use_classifier,
                                   settings.ocr)
    except ModelCompatibilityError as exc:
        fail(str(exc))
    catalog = analyzer.catalog
    exit_code = 0

    def analyse(path: Path) -> Any:
        """The document's analysis, or its failure as (stage, class, message): run in a forked child
        under BREACHMINER_ANALYSIS_TIMEOUT, as ingest does, so a document that hangs or crashes the
        parser fails alone."""
        try:
            return analyzer.analyse_path(path, settings.max_bytes)
        except (ExtractionError, OSError) as exc:
            return getattr(exc, "stage", "read"), type(exc).__name__, str(exc)
        except Exception as exc:  # a parser bug on one document
            return "extract", type(exc).__name__, str(exc)

    for path in paths:
        try:
            analysis = call_with_deadline(analyse, (path,), settings.analysis_timeout)
        except DeadlineExceeded as exc:
            analysis = ("analyse", "AnalysisTimeout", f"analysis {exc} (BREACHMINER_ANALYSIS_TIMEOUT)")
        except ChildDied as exc:
            analysis = ("analyse", "AnalysisCrashed", str(exc))
        if isinstance(analysis, tuple):
            exit_code = 1
            stage, error_class, message = analysis
            if as_json:
                print(json.dumps({"source": str(path), "error": {"stage": stage, "class": error_class,
                                                                   "message": message}}))
            else:
                err_console.print(f"[red]{escape(str(path))}[/red]: {stage}: {escape(message)}")
            continue
        sentences = {s.index: s.text for s in analysis.sentences}
        advice = advice_sentences(analysis.sentences)
        shown = evidence if evidence is not None else (3 if as_json else 1)
        techniques = []
        for sighting in analysis.sightings:
            best: dict[int, float] = {}
            matched: dict[int, tuple[float, str]] = {}  # per sentence, its strongest mention's words
            for m in analysis.mentions:
                if m.technique_id == sighting.technique_id and (m.method == "id" or m.sentence_index not in advice):
                    best[m.sentence_index] = max(best.get(m.sentence_index, 0.0), m.score)
                    if m.cited:
                        matched[m.sentence_index] = max(matched.get(m.sentence_index, (0.0, "")), (m.score, m.cited))
            evidence_ids = sorted(best, key=lambda i: (-best[i], i))[:shown]  # strongest evidence first
            techniques.append({
                "id": sighting.technique_id,
                "name": catalog.techniques[sighting.technique_id].name,
                "score": sighting.score,
                "methods": list(sighting.methods),
                "evidence": [sentences[i] for i in evidence_ids],
                "matched": [matched.get(i, (0.0, ""))[1] for i in evidence_ids],
            })
        if as_json:
            print(json.dumps({"source": str(path), "techniques": techniques}, ensure_ascii=False))
        else:
            print_techniques(str(path), techniques)
    raise typer.Exit(exit_code)
