"""The ingest flow: inputs → documents analysed in parallel → loaded one by one into DuckDB.

Reads like a table of contents: collect sources, skip bytes already loaded, analyse the rest as
Prefect tasks (a process pool: extraction is CPU-bound), then load each result in input order in
its own transaction (same text or a PDF/HTML twin becomes another source of the existing report),
recording every failure with its stage. The run's counts go to ``runs``.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.context import get_run_context
from prefect.task_runners import ProcessPoolTaskRunner, ThreadPoolTaskRunner

import warehouse.db as wh
from breachminer.catalog import AttackCatalog
from breachminer.progress import report_progress
from breachminer.settings import get_settings
from extractors import fingerprint
from extractors.documents import ExtractionError
from extractors.pipeline import DocumentAnalysis
from extractors.sources import SourceItem, collect_sources
from models.tagger import hybrid_analyzer


@dataclass(frozen=True)
class AnalysisFailure:
    """Why a document could not be analysed."""

    stage: str
    error_class: str
    message: str


@task(name="analyse-document", task_run_name="analyse {item.location}")
def analyse_document(item: SourceItem, catalog_path: str, threshold: float | None, max_pages: int, max_bytes: int,
                     model_dir: str | None = None, use_classifier: bool = True) -> DocumentAnalysis | AnalysisFailure:
    """Read, extract, split and tag one document. Failures are returned, not raised, with their stage."""
    if item.is_url:
        return AnalysisFailure("fetch", "UnsupportedSource",
                               "fetching URLs is not implemented yet; download the file and ingest the path")
    try:
        analyzer = hybrid_analyzer(catalog_path, threshold, max_pages, model_dir, use_classifier)
        return analyzer.analyse_path(Path(item.location), max_bytes)
    except ExtractionError as exc:
        return AnalysisFailure(exc.stage, exc.error_class, str(exc))
    except OSError as exc:
        return AnalysisFailure("read", type(exc).__name__, str(exc))
    except Exception as exc:  # a parser bug on one document must not stop the run
        return AnalysisFailure("extract", type(exc).__name__, f"{exc}")


def _content_hash(item: SourceItem) -> str | None:
    if item.is_url:
        return None
    digest = hashlib.sha256()
    with open(item.location, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _load(db_path: str, item: SourceItem, analysis: DocumentAnalysis,
          signatures: dict[str, list[int]], run_id: str) -> tuple[str, int]:
    """Load one analysed document; returns ("new" | "duplicate", sightings added)."""
    doc = analysis.document
    source = wh.SourceRow(
        source=item.location, content_sha256=analysis.content_sha256, kind=doc.kind, n_bytes=analysis.n_bytes,
        manifest_title=item.title, manifest_publisher=item.publisher, manifest_published=item.published,
    )
    with wh.connect(db_path) as con:
        same_text = wh.report_id_for_text(con, analysis.text_sha256)
        if same_text:
            wh.add_source(con, source, same_text, "same-text", 1.0, run_id)
            wh.resolve_failure(con, item.location)
            return "duplicate", 0
        twin = fingerprint.find_twin(analysis.minhash, signatures)
        if twin:
            wh.add_source(con, source, twin[0], "twin", round(twin[1], 4), run_id)
            wh.resolve_failure(con, item.location)
            return "duplicate", 0
        report = wh.ReportRow(
            report_id=analysis.text_sha256[:16],
            text_sha256=analysis.text_sha256,
            title=item.title or doc.title or Path(item.location).name,
            publisher=item.publisher or doc.publisher,
            published=item.published or doc.published,
            published_year=item.published_year,
            kind=doc.kind,
            n_chars=len(doc.text),
            n_pages=doc.n_pages,
            minhash=analysis.minhash,
            first_source=item.location,
            tagger_versions=analysis.tagger_versions,
            notes=doc.notes,
        )
        wh.load_report(con, report, source, analysis.sentences, analysis.mentions, analysis.sightings, run_id)
        wh.resolve_failure(con, item.location)
    signatures[report.report_id] = analysis.minhash
    return "new", len(analysis.sightings)


@flow(name="breachminer-ingest", task_runner=ProcessPoolTaskRunner())
def ingest_flow(inputs: list[str], db_path: str | None = None) -> dict[str, Any]:
    """Ingest folders, files and manifests into the warehouse; returns the run's counts."""
    logger = get_run_logger()
    settings = get_settings()
    db_path = str(db_path or settings.db_path)
    catalog = AttackCatalog.load(settings.catalog_path)
    run_id = uuid.uuid4().hex[:12]
    flow_run = getattr(get_run_context(), "flow_run", None)

    items = collect_sources(inputs)
    counts = {"sources": len(items), "new": 0, "unchanged": 0, "duplicate": 0, "failed": 0, "sightings": 0}
    with wh.connect(db_path, catalog=catalog) as con:
        known = wh.known_content_hashes(con)
        signatures = wh.report_signatures(con)
        wh.start_run(con, run_id, str(flow_run.id) if flow_run else None, list(inputs), len(items))

    pending: list[SourceItem] = []
    for item in items:
        try:
            content_hash = _content_hash(item)
        except OSError as exc:
            _fail(db_path, item.location, AnalysisFailure("read", type(exc).__name__, str(exc)), run_id, counts)
            continue
        if content_hash in known:
            counts["unchanged"] += 1
        else:
            pending.append(item)
    done = len(items) - len(pending)
    report_progress("analyse", done, len(items))

    parameters = (str(settings.catalog_path), settings.sighting_threshold, settings.max_pages, settings.max_bytes,
                  str(settings.model_dir) if settings.model_dir else None, settings.use_classifier)
    for item, outcome in _analysed(pending, parameters):
        if isinstance(outcome, AnalysisFailure):
            _fail(db_path, item.location, outcome, run_id, counts)
        else:
            try:
                status, added = _load(db_path, item, outcome, signatures, run_id)
                counts[status] += 1
                counts["sightings"] += added
            except Exception as exc:
                _fail(db_path, item.location, AnalysisFailure("load", type(exc).__name__, str(exc)),
                      run_id, counts)
        done += 1
        report_progress("analyse", done, len(items))

    with wh.connect(db_path) as con:
        wh.finish_run(con, run_id, counts)
    logger.info("ingest %s: %s", run_id, counts)
    return {"run_id": run_id, **counts}


def _analysed(pending: list[SourceItem], parameters: tuple) -> Iterator[tuple[SourceItem, object]]:
    """Analysis outcomes in input order: on the flow's task runner, or in-process for a single
    document (a retried failure should not pay for starting a process pool)."""
    futures = [analyse_document.submit(item, *parameters) for item in pending] if len(pending) > 1 else []
    for index, item in enumerate(pending):
        try:
            outcome = futures[index].result() if futures else analyse_document(item, *parameters)
        except Exception as exc:  # the task itself crashed (a worker process died)
            outcome = AnalysisFailure("analyse", type(exc).__name__, str(exc))
        yield item, outcome


def _fail(db_path: str, source: str, failure: AnalysisFailure, run_id: str, counts: dict[str, int]) -> None:
    counts["failed"] += 1
    with wh.connect(db_path) as con:
        wh.record_failure(con, source, failure.stage, failure.error_class, failure.message, run_id)


def run_ingest(inputs: list[str], db_path: str | None = None, workers: int | None = None) -> dict[str, Any]:
    """Run the ingest flow with ``workers`` processes (threads when 1)."""
    workers = workers or get_settings().workers
    runner = ProcessPoolTaskRunner(max_workers=workers) if workers > 1 else ThreadPoolTaskRunner(max_workers=1)
    return ingest_flow.with_options(task_runner=runner)(inputs=inputs, db_path=db_path)
