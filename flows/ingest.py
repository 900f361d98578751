"""The ingest flow: sources → fetched bytes → documents analysed in parallel → loaded one by one into DuckDB.

Reads like a table of contents: hold the warehouse's writer lock, collect sources (noting the files of a
folder that are skipped and manifest dates that are ignored), set aside those whose last failure is not
due for a retry (a refusal by a setting that now allows it is due at once), fetch URLs into the raw
cache (feeds expand into their report links), skip bytes already loaded, analyse the rest as Prefect
tasks (a process pool with ``--workers``; each document in a forked child with a deadline,
``flows.deadline``), then load each result in input order in its own transaction (same text or a
PDF/HTML twin becomes another source of the existing report), recording every failure with its stage and
when it will be retried; last, re-tag the loaded reports that other versions of the taggers or rules
decided (``flows.retag``: after an upgrade, the nightly run catches up by itself); with an export
folder, rewrite the top-N and priority exports there. The run's counts go to ``runs``.

A loaded report whose text an older extraction made (``extractors.documents.EXTRACTION_VERSION``) is
read again from its unchanged bytes (the local file, or the raw cache of a URL) when its source comes
up: a new text replaces the old under the same report ID (``re-extracted``), the same text only records
the version. So after an upgrade the warehouse does not mix two extractions either.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from prefect import flow, get_run_logger, task
from prefect.context import get_run_context
from prefect.task_runners import ProcessPoolTaskRunner, ThreadPoolTaskRunner

import warehouse.db as wh
from breachminer.catalog import AttackCatalog
from breachminer.progress import report_progress
from breachminer.settings import OcrOptions, Settings, get_settings
from extractors import fingerprint
from extractors.documents import EXTRACTION_VERSION, ExtractionError
from extractors.feeds import parse_feed
from extractors.fetch import Fetcher, FetchError, FetchPolicy, RawCache
from extractors.pipeline import TEXT_KEY, DocumentAnalysis, DocumentAnalyzer, read_local
from extractors.sources import SourceItem, collect_sources, describe_skipped, skipped_files
from extractors.taggers.lexicon import lexicon_ratings
from flows.deadline import ChildDied, DeadlineExceeded, call_with_deadline
from flows.fetch import Fetched, fetch_all, fetch_policy
from flows.retag import retag_stale, stale_reports
from models.classifier import MODEL_DIR, ModelCompatibilityError, TechniqueClassifier, read_card
from models.tagger import decision_threshold, hybrid_analyzer
from warehouse.exports import write_exports
from warehouse.lock import writer_lock
from warehouse.priorities import sync_lexicon_ratings


@dataclass(frozen=True)
class AnalysisFailure:
    """Why a document could not be fetched or analysed."""

    stage: str
    error_class: str
    message: str
    http_status: int | None = None
    retry_after: float | None = None
    content_sha256: str | None = None

    @classmethod
    def from_fetch(cls, error: FetchError) -> AnalysisFailure:
        tries = f" (after {error.attempts} attempts)" if error.attempts > 1 else ""
        return cls("fetch", error.error_class, f"{error}{tries}", error.http_status, error.retry_after)


@dataclass(frozen=True)
class Pending:
    """A document whose bytes are at hand and not yet loaded."""

    item: SourceItem
    path: str  # the local file, or the raw-cache file of a URL
    content_sha256: str
    fetched: Fetched | None = None


@task(name="analyse-document", task_run_name="analyse {item.location}")
def analyse_document(item: SourceItem, path: str, catalog_path: str, threshold: float | None, max_pages: int,
                     max_bytes: int, model_dir: str | None = None, use_classifier: bool = True,
                     ocr: OcrOptions | None = None, deadline: float = 0.0) -> DocumentAnalysis | AnalysisFailure:
    """Read, extract, split and tag one document. Failures are returned, not raised, with their stage.

    With a ``deadline`` (seconds) the work runs in a forked child (``flows.deadline``): a document that
    takes longer is stopped, and one that crashes the parser ends only the child; both become failures."""
    try:
        analyzer = hybrid_analyzer(catalog_path, threshold, max_pages, model_dir, use_classifier, ocr)
    except Exception as exc:  # the model or catalog did not load: every document fails alike, with the cause
        return AnalysisFailure("analyse", type(exc).__name__, f"{exc}")
    try:
        return call_with_deadline(_analyse, (analyzer, item, path, max_bytes), deadline)
    except DeadlineExceeded as exc:
        return AnalysisFailure("analyse", "AnalysisTimeout",
                               f"analysis {exc} (BREACHMINER_ANALYSIS_TIMEOUT); the next run retries it")
    except ChildDied as exc:
        return AnalysisFailure("analyse", "AnalysisCrashed", f"{exc}")


def _analyse(analyzer: DocumentAnalyzer, item: SourceItem, path: str,
             max_bytes: int) -> DocumentAnalysis | AnalysisFailure:
    try:
        return analyzer.analyse_bytes(read_local(Path(path), max_bytes), _document_name(item))
    except ExtractionError as exc:
        return AnalysisFailure(exc.stage, exc.error_class, str(exc))
    except OSError as exc:
        return AnalysisFailure("read", type(exc).__name__, str(exc))
    except Exception as exc:  # a parser bug on one document must not stop the run
        return AnalysisFailure("extract", type(exc).__name__, f"{exc}")


def _document_name(item: SourceItem) -> str:
    """A file name for the document: the path's, or the URL path's last segment."""
    if item.is_url:
        segment = unquote(urlsplit(item.location).path.rstrip("/").rsplit("/", 1)[-1])
        return segment or urlsplit(item.location).hostname or item.location
    return Path(item.location).name


def _content_hash(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _load(db_path: str, pending: Pending, analysis: DocumentAnalysis,
          signatures: dict[str, list[int]], run_id: str, rereading: str | None = None) -> tuple[str, int]:
    """Load one analysed document; returns ("new" | "revised" | "duplicate" | "unchanged", net sightings added).

    ``rereading``: the report whose text an older extraction made from these same bytes; it keeps its ID
    and gets the new text ("re-extracted"), or, when the text is the same, only the new extraction's
    version ("unchanged" either way: the source did not change).

    New bytes whose text is already a report's are another source of it ("same-text"). New bytes from a
    source whose previous version became a report, and whose text is a near-duplicate of that version
    (an updated blog post or a revised advisory), replace it ("revision": same report, counted once, with
    what it says now). Otherwise a near-duplicate of any report is its twin; anything else is a new report
    (a source that now serves a different document, such as a "latest report" URL, adds one).
    """
    item = pending.item
    doc = analysis.document
    state = pending.fetched.state if pending.fetched else None
    source = wh.SourceRow(
        source=item.location, content_sha256=analysis.content_sha256, kind=doc.kind, n_bytes=analysis.n_bytes,
        manifest_title=item.title, manifest_publisher=item.publisher, manifest_published=item.published,
        etag=state.etag if state else None, last_modified=state.last_modified if state else None,
    )
    published, publication_notes = _publication(item, doc.published)
    report = wh.ReportRow(
        report_id=analysis.text_sha256[:16],
        text_sha256=analysis.text_sha256,
        title=item.title or doc.title or _document_name(item),
        publisher=item.publisher or doc.publisher,
        published=published,
        published_year=item.published_year,
        kind=doc.kind,
        n_chars=len(doc.text),
        n_pages=doc.n_pages,
        minhash=analysis.minhash,
        first_source=item.location,
        tagger_versions=analysis.tagger_versions,
        notes=(*doc.notes, *item.notes, *publication_notes),
    )
    with wh.connect(db_path) as con:
        same_text = wh.report_id_for_text(con, analysis.text_sha256)
        if rereading is not None:
            stored = [sentence.text for sentence in wh.report_sentences(con, rereading)]
            if stored == [sentence.text for sentence in analysis.sentences]:  # the same text: nothing to replace
                wh.record_versions(con, rereading, {TEXT_KEY: analysis.tagger_versions[TEXT_KEY]})
                return "unchanged", 0
            similarity = fingerprint.jaccard(analysis.minhash, signatures.get(rereading, []))
            old_sightings = wh.revise_report(con, replace(report, report_id=rereading), source, analysis.sentences,
                                             analysis.mentions, analysis.sightings, round(similarity, 4), run_id,
                                             status="re-extracted")
            signatures[rereading] = analysis.minhash
            return "unchanged", len(analysis.sightings) - old_sightings
        if same_text:
            wh.add_source(con, source, same_text, "same-text", 1.0, run_id)
            wh.resolve_failure(con, item.location)
            return "duplicate", 0
        previous = wh.report_read_from(con, item.location)
        similarity = fingerprint.jaccard(analysis.minhash, signatures.get(previous, [])) if previous else 0.0
        if previous and similarity >= fingerprint.TWIN_JACCARD:
            report = replace(report, report_id=previous)
            old_sightings = wh.revise_report(con, report, source, analysis.sentences, analysis.mentions,
                                             analysis.sightings, round(similarity, 4), run_id)
            wh.resolve_failure(con, item.location)
            signatures[previous] = analysis.minhash
            return "revised", len(analysis.sightings) - old_sightings
        twin = fingerprint.find_twin(analysis.minhash, signatures)
        if twin:
            wh.add_source(con, source, twin[0], "twin", round(twin[1], 4), run_id)
            wh.resolve_failure(con, item.location)
            return "duplicate", 0
        wh.load_report(con, report, source, analysis.sentences, analysis.mentions, analysis.sightings, run_id)
        wh.resolve_failure(con, item.location)
    signatures[report.report_id] = analysis.minhash
    return "new", len(analysis.sightings)


@flow(name="breachminer-ingest", task_runner=ThreadPoolTaskRunner(max_workers=1))  # see ingest_flow_for
def ingest_flow(inputs: list[str], db_path: str | None = None, retry_failed: bool = False,
                allow_private: bool | None = None, offline: bool | None = None, respect_robots: bool | None = None,
                wait: float = 0.0, export_dir: str | None = None, export_limit: int = 50) -> dict[str, Any]:
    """Ingest folders, files, manifests, feeds and URLs into the warehouse; returns the run's counts.

    ``retry_failed`` retries every unresolved failure now (even given-up ones); the other flags
    override their ``BREACHMINER_*`` settings when not None. ``wait`` is how long to queue behind
    another run writing the same warehouse before giving up with ``WriterBusy``. With ``export_dir``,
    the run ends by writing the top ``export_limit`` techniques and priorities there as CSV files and
    Navigator layers (``warehouse.exports.write_exports``).
    """
    settings = get_settings()
    db_path = str(db_path or settings.db_path)
    with writer_lock(db_path, wait, what="ingest"):
        return _ingest(inputs, db_path, settings, retry_failed, offline if offline is not None else settings.offline,
                       fetch_policy(settings, allow_private=allow_private, respect_robots=respect_robots),
                       export_dir, export_limit)


def _ingest(inputs: list[str], db_path: str, settings: Settings, retry_failed: bool, offline: bool,
            policy: FetchPolicy, export_dir: str | None = None, export_limit: int = 50) -> dict[str, Any]:
    logger = get_run_logger()
    catalog = AttackCatalog.load(settings.catalog_path)
    retry = wh.RetryPolicy(settings.retry_delay, settings.max_attempts)
    run_id = uuid.uuid4().hex[:12]
    flow_run = getattr(get_run_context(), "flow_run", None)
    cache = RawCache(settings.cache_dir)

    items = collect_sources(inputs)
    counts: dict[str, Any] = {
        "sources": len(items), "new": 0, "revised": 0, "unchanged": 0, "duplicate": 0, "failed": 0, "sightings": 0,
        "deferred": 0, "downloaded": 0, "not_modified": 0, "offline": 0, "feeds": 0, "retagged": 0, "retag_error": None,
        "reextracted": 0, "forgotten": 0, "exported": [], "export_error": None,
        "skipped_note": describe_skipped(skipped_files(inputs)),
        "manifest_warnings": [f"{item.location}: {note}" for item in items for note in item.notes]}
    for warning in filter(None, [counts["skipped_note"], *counts["manifest_warnings"]]):
        logger.warning("%s", warning)
    with wh.connect(db_path, catalog=catalog) as con:
        sync_lexicon_ratings(con, lexicon_ratings(catalog))
        known = wh.known_content_hashes(con)
        current = wh.current_source_hashes(con)
        signatures = wh.report_signatures(con)
        failures = wh.open_failures(con)
        rereads = wh.texts_to_reread(con, TEXT_KEY, EXTRACTION_VERSION)  # source → report an older extraction made
        refusals_lifted = {row.source for row in wh.failures_frame(con).itertuples()
                           if _refusal_lifted(row.stage, row.error_class, row.message, policy, settings)}
        states = wh.fetch_states(con)
        forgotten_bytes, forgotten_texts = wh.forgotten_hashes(con)
        wh.start_run(con, run_id, str(flow_run.id) if flow_run else None, list(inputs), len(items))

    def fail(location: str, failure: AnalysisFailure) -> None:
        counts["failed"] += 1
        with wh.connect(db_path) as con:
            wh.record_failure(con, location, failure.stage, failure.error_class, failure.message, run_id, retry=retry,
                              http_status=failure.http_status, retry_after=failure.retry_after,
                              content_sha256=failure.content_sha256)

    def already_loaded(item: SourceItem, content_hash: str) -> bool:
        """True (and counted) when the bytes need no analysis: what this source gave last time
        ("unchanged"), or bytes loaded from another source, which this source is then recorded as
        another source of ("duplicate", as when both come in one run). Known bytes that a source gives
        *again* after other bytes (a post reverted to an earlier version) are analysed: they revise its
        report. Bytes of a forgotten report are skipped ("forgotten")."""
        if content_hash in forgotten_bytes:
            counts["forgotten"] += 1
            return True
        if content_hash not in known:
            return False
        if item.location in rereads and current.get(item.location) == content_hash and (
                not item.is_url or cache.path_for(content_hash).exists()):
            return False  # the text of its report is read again by the current extraction
        last = current.get(item.location)
        if last is None:
            with wh.connect(db_path) as con:
                wh.add_known_copy(con, item.location, content_hash, run_id,
                                  (item.title, item.publisher, item.published))
                wh.resolve_failure(con, item.location)
            current[item.location] = content_hash
            counts["duplicate"] += 1
            return True
        if last == content_hash:
            counts["unchanged"] += 1
            return True
        return False

    def due(item: SourceItem, content_hash: str | None = None) -> bool:
        failure = failures.get(item.location)
        if failure is None or retry_failed or failure.due() or item.location in refusals_lifted:
            return True
        if content_hash is not None and failure.content_sha256 not in (None, content_hash):
            return True  # the bytes changed since they failed
        counts["deferred"] += 1
        return False

    # 1. local files: hash them; URLs: fetch them (feeds expand into their entries, one level deep)
    pending: list[Pending] = []
    urls: list[SourceItem] = []
    for item in items:
        if item.is_url:
            if due(item):
                urls.append(item)
            continue
        try:
            content_hash = _content_hash(item.location)
        except OSError as exc:
            fail(item.location, AnalysisFailure("read", type(exc).__name__, str(exc)))
            continue
        if not already_loaded(item, content_hash) and due(item, content_hash):
            pending.append(Pending(item, item.location, content_hash))

    seen = {item.location for item in items}
    with Fetcher(policy) as fetcher:
        round_items, depth = urls, 0
        while round_items:
            report_progress("fetch", 0, len(round_items))
            next_round: list[SourceItem] = []
            for fetched in fetch_all(round_items, states, fetcher, cache, frozenset(known), offline,
                                     settings.fetch_workers):
                entries = _take_fetched(fetched, depth, cache, pending, already_loaded, counts, fail, db_path)
                for entry in entries:
                    if entry.location not in seen:
                        seen.add(entry.location)
                        counts["sources"] += 1
                        if due(entry):
                            next_round.append(entry)
            round_items, depth = next_round, depth + 1

    # 2. analyse what is new (in parallel), then load it in input order
    done = counts["sources"] - len(pending)
    report_progress("analyse", done, counts["sources"])
    parameters = (str(settings.catalog_path), settings.sighting_threshold, settings.max_pages, settings.max_bytes,
                  str(settings.model_dir) if settings.model_dir else None, settings.use_classifier, settings.ocr,
                  settings.analysis_timeout)
    for entry, outcome in _analysed(pending, parameters):
        if isinstance(outcome, AnalysisFailure):
            fail(entry.item.location, replace(outcome, content_sha256=entry.content_sha256))
        elif outcome.text_sha256 in forgotten_texts:  # other bytes (another copy) of a forgotten report's text
            counts["forgotten"] += 1
        else:
            rereading = rereads.get(entry.item.location) if current.get(entry.item.location) == entry.content_sha256 \
                else None
            try:
                status, added = _load(db_path, entry, outcome, signatures, run_id, rereading)
                counts[status] += 1
                counts["reextracted"] += rereading is not None
                counts["sightings"] += added
                known.add(entry.content_sha256)
                current[entry.item.location] = entry.content_sha256
            except Exception as exc:
                fail(entry.item.location, AnalysisFailure("load", type(exc).__name__, str(exc),
                                                          content_sha256=entry.content_sha256))
        done += 1
        report_progress("analyse", done, counts["sources"])

    # 3. reports decided by other versions of the taggers or rules (loaded before an upgrade) are re-tagged
    with wh.connect(db_path, read_only=True) as con:
        before = wh.sighting_count(con)
    counts["retagged"], counts["retag_error"] = _retag_stale(db_path, settings)
    with wh.connect(db_path, read_only=True) as con:
        counts["sightings"] += wh.sighting_count(con) - before  # net, like a revised report's

    # 4. the tables people read, refreshed (a failure here loses nothing: the run's data is loaded)
    if export_dir:
        counts["exported"], counts["export_error"] = _export(db_path, Path(export_dir), export_limit)

    with wh.connect(db_path) as con:
        wh.finish_run(con, run_id, counts)
    logger.info("ingest %s: %s", run_id, counts)
    return {"run_id": run_id, **counts}


def _publication(item: SourceItem, document_date: date | None) -> tuple[date | None, tuple[str, ...]]:
    """The report's publication date: the manifest's; else the document's own, unless the manifest gives
    only a year and the document's date falls in another (the manifest wins, and the date it overrules is
    noted), so that every view files the report under the same year."""
    if item.published is not None or document_date is None:
        return item.published, ()
    if item.published_year is not None and document_date.year != item.published_year:
        return None, (f"document date {document_date.isoformat()} set aside: the manifest says "
                      f"{item.published_year}",)
    return document_date, ()


def _refusal_lifted(stage: str, error_class: str, message: str, policy: FetchPolicy, settings: Settings) -> bool:
    """True for a failure that was a refusal by a setting the current run no longer applies, so that trying
    again cannot meet the same refusal and it is due now, whatever its backoff or attempts: a private or
    loopback address, now allowed; robots.txt, now ignored; a size over a ``BREACHMINER_MAX_BYTES`` limit
    that is now higher; an image-only PDF refused because OCR was off or Tesseract missing, now on and found."""
    if stage == "fetch" and ((error_class == "PrivateAddress" and policy.allow_private) or (
            error_class in ("RobotsDisallowed", "RobotsUnavailable") and not policy.respect_robots)):
        return True
    if error_class in ("BodyTooLarge", "DocumentTooLarge"):
        limit = _REFUSED_SIZE_LIMIT.search(message)
        return limit is not None and settings.max_bytes > int(limit.group(1).replace(",", ""))
    if error_class == "NoTextLayer":
        return settings.ocr.enabled and (OCR_OFF in message or (
            OCR_MISSING in message and settings.ocr.command() is not None))
    return False


# the words of the refusals (extractors.fetch, extractors.pipeline.read_local, extractors.documents._ocr_pages)
_REFUSED_SIZE_LIMIT = re.compile(r"over the ([\d,]+)-byte limit \(BREACHMINER_MAX_BYTES\)")
OCR_OFF = "OCR is off (BREACHMINER_OCR=0)"
OCR_MISSING = "OCR needs Tesseract"


def _export(db_path: str, directory: Path, limit: int) -> tuple[list[str], str | None]:
    """Write the exports; returns the files written, or none and why not (for the run record).

    Any error is caught: the run's reports are loaded by now, and a run that could not refresh its
    exports must still be recorded as finished (the next run writes them again)."""
    try:
        with wh.connect(db_path, read_only=True) as con:
            return [str(path) for path in write_exports(con, directory, limit)], None
    except Exception as exc:  # see the docstring
        cause = f"exports to {directory} not written: {type(exc).__name__}: {exc}"
        get_run_logger().error("%s", cause)
        return [], cause


def _retag_stale(db_path: str, settings: Settings) -> tuple[int, str | None]:
    """Re-tag the reports that other versions of the taggers or rules decided; the model loads only
    when a report needs it.

    Returns how many were re-tagged and, when some were not, why (for the run record); those keep
    their earlier sightings and stay stale, so the next run tries again.
    """
    catalog = AttackCatalog.load(settings.catalog_path)
    directory = settings.model_dir or MODEL_DIR
    card = read_card(directory) if settings.use_classifier else None
    model_version = str(card["model_version"]) if card is not None else None
    threshold = decision_threshold(settings.sighting_threshold, card.get("hybrid_sighting_threshold") if card else None)
    todo = stale_reports(db_path, catalog, model_version, threshold)
    if not todo:
        return 0, None
    model = None
    if model_version is not None:
        try:
            model = TechniqueClassifier.load(directory)
        except (ModelCompatibilityError, OSError, ValueError) as exc:
            cause = f"{len(todo)} reports not re-scored: the model did not load: {type(exc).__name__}: {exc}"
            get_run_logger().error("%s", cause)
            return 0, cause
    outcome = retag_stale(db_path, catalog, model, settings.sighting_threshold, settings.analysis_timeout)
    return outcome.retagged, outcome.cause


def _take_fetched(fetched: Fetched, depth: int, cache: RawCache, pending: list[Pending],
                  already_loaded: Callable[[SourceItem, str], bool], counts: dict[str, int],
                  fail: Callable[[str, AnalysisFailure], None], db_path: str) -> list[SourceItem]:
    """Route one fetch result: a failure, an unchanged report, a feed (its entries are returned), or a
    document to analyse. Fetch state is saved as soon as the bytes are safe in the cache."""
    item = fetched.item
    if fetched.outcome == "failed":
        fail(item.location, AnalysisFailure.from_fetch(fetched.error))
        return []
    if fetched.outcome == "offline":
        counts["offline"] += 1
        return []
    if fetched.outcome in ("downloaded", "not-modified"):
        counts["downloaded" if fetched.outcome == "downloaded" else "not_modified"] += 1
        with wh.connect(db_path) as con:
            wh.save_fetch_state(con, fetched.state, not_modified=fetched.outcome == "not-modified")
    if fetched.is_feed:
        if depth > 0:
            fail(item.location, AnalysisFailure("fetch", "NestedFeed", f"{item.location} is a feed listed by the feed "
                                                f"{item.feed}; feeds are followed one level deep"))
            return []
        try:
            entries = parse_feed(cache.path_for(fetched.content_sha256).read_bytes(), item.location)
        except (ExtractionError, OSError) as exc:
            fail(item.location, AnalysisFailure("extract", type(exc).__name__, str(exc),
                                                content_sha256=fetched.content_sha256))
            return []
        counts["feeds"] += 1
        counts["sources"] -= 1  # a feed is a list of sources, not a report
        with wh.connect(db_path) as con:
            wh.resolve_failure(con, item.location)
        return entries
    if already_loaded(item, fetched.content_sha256):
        with wh.connect(db_path) as con:
            wh.resolve_failure(con, item.location)
        return []
    pending.append(Pending(item, str(cache.path_for(fetched.content_sha256)), fetched.content_sha256, fetched))
    return []


def _analysed(pending: list[Pending], parameters: tuple) -> Iterator[tuple[Pending, object]]:
    """Analysis outcomes in input order: on the flow's task runner, or in-process for a single
    document (a retried failure should not pay for starting a process pool)."""
    futures = [analyse_document.submit(entry.item, entry.path, *parameters) for entry in pending] \
        if len(pending) > 1 else []
    for index, entry in enumerate(pending):
        try:
            outcome = futures[index].result() if futures else analyse_document(entry.item, entry.path, *parameters)
        except Exception as exc:  # the task itself crashed (a worker process died)
            outcome = AnalysisFailure("analyse", type(exc).__name__, str(exc))
        yield entry, outcome


def ingest_flow_for(workers: int | None = None) -> Any:
    """The ingest flow with ``workers`` analysis processes (default: ``BREACHMINER_WORKERS``; threads when 1)."""
    workers = workers or get_settings().workers
    runner = ProcessPoolTaskRunner(max_workers=workers) if workers > 1 else ThreadPoolTaskRunner(max_workers=1)
    return ingest_flow.with_options(task_runner=runner)


def run_ingest(inputs: list[str], db_path: str | None = None, workers: int | None = None, **options: Any) -> dict[
        str, Any]:
    """Run the ingest flow once; ``options`` are the flow's flags (``retry_failed``, ``allow_private`` …)."""
    return ingest_flow_for(workers)(inputs=inputs, db_path=db_path, **options)
