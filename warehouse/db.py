"""DuckDB connections, the ATT&CK tables, bulk loading of reports, failures and runs.

SQL lives in ``warehouse/sql`` (schema, then views); this module only connects, applies it, loads
rows in bulk through Arrow (never row-by-row ``executemany``) and runs the few queries the CLI
needs. Connections are short: DuckDB lets one process hold the file read-write, so a writer opens,
loads one report in one transaction and closes.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from breachminer.catalog import AttackCatalog
from breachminer.records import Mention, Sentence, Sighting

SQL_DIR = Path(__file__).parent / "sql"
VIEWS_FILE = "02_views.sql"


class WarehouseLocked(RuntimeError):
    """Another process holds the DuckDB file."""


class WarehouseMissing(FileNotFoundError):
    """A read was asked of a warehouse file that does not exist yet."""


class WarehouseUnreadable(WarehouseMissing):
    """The file exists but is no DuckDB database (a wrong ``--db``): there is no warehouse there either."""


def confine(con: duckdb.DuckDBPyConnection) -> None:
    """Let a connection's SQL see the warehouse and nothing else: no reading or writing of other files
    (``read_csv``, ``COPY … TO``), no ``ATTACH``, no extension installs or loads; locked, so the SQL
    cannot turn it back on. For queries a user types (``breachminer sql``)."""
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")


def first_row(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] = ()) -> tuple | None:
    """The first row of a query, with the result fully consumed (DuckDB refuses new work on a
    connection whose previous result is unfinished)."""
    rows = con.execute(sql, list(params)).fetchall()
    return rows[0] if rows else None


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _sql_files() -> list[Path]:
    return sorted(SQL_DIR.glob("*.sql"))


@contextmanager
def connect(db_path: Path | str, *, read_only: bool = False, catalog: AttackCatalog | None = None,
            lock_wait: float = 15.0) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the warehouse; a read-write connection applies the schema and syncs the catalog.

    DuckDB lets one process hold the file; another process's connection is waited for up to
    ``lock_wait`` seconds (ingest holds it for one report at a time) before ``WarehouseLocked``.
    """
    db_path = Path(db_path)
    if read_only and not db_path.exists():
        raise WarehouseMissing(f"no warehouse at {db_path}: run `breachminer ingest` first (or pass --db)")
    if not read_only:
        db_path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + lock_wait
    while True:
        try:
            con = duckdb.connect(str(db_path), read_only=read_only)
            break
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower():
                if db_path.exists() and "not a valid duckdb database" in str(exc).lower():
                    raise WarehouseUnreadable(f"{db_path} is not a breachminer warehouse (not a DuckDB database "
                                              "file): check --db / BREACHMINER_DB") from exc
                raise
            if time.monotonic() < deadline:  # another process's short connection: it will close soon
                time.sleep(0.1)
                continue
            holder = re.search(r"PID (\d+)", str(exc))
            who = f" (process {holder.group(1)})" if holder else ""
            raise WarehouseLocked(
                f"{db_path} is in use by another process{who}; wait for it to finish and retry"
            ) from exc
    try:
        if not read_only:
            for path in _sql_files():
                con.execute(path.read_text(encoding="utf-8"))
            con.execute("INSERT OR REPLACE INTO meta VALUES ('views_digest', ?)", [_views_digest()])
            if catalog is not None:
                sync_catalog(con, catalog)
        else:
            _session_views(con)
        yield con
    finally:
        con.close()


def _views_digest() -> str:
    return hashlib.sha256((SQL_DIR / VIEWS_FILE).read_bytes()).hexdigest()


def _session_views(con: duckdb.DuckDBPyConnection) -> None:
    """Give a read-only connection this code's views when the file's views are another version's.

    A read-only connection cannot replace the views stored in the file, which are the ones the last
    writer's version of breachminer created. After an upgrade, ``top``, ``sql`` and ``evidence`` would
    otherwise see stale views (or none, for a view added since) until the next ingest. Session (TEMP)
    views shadow the stored ones for this connection only. A warehouse whose tables predate a view's
    columns keeps its stored views, which match its tables; the next read-write open migrates it.
    """
    try:
        row = first_row(con, "SELECT value FROM meta WHERE key = 'views_digest'")
    except duckdb.CatalogException:  # not a breachminer warehouse (yet): nothing to shadow
        return
    if row and row[0] == _views_digest():
        return
    views = (SQL_DIR / VIEWS_FILE).read_text(encoding="utf-8")
    try:
        con.execute(views.replace("CREATE OR REPLACE VIEW", "CREATE OR REPLACE TEMP VIEW")
                    .replace("CREATE OR REPLACE MACRO", "CREATE OR REPLACE TEMP MACRO"))
    except duckdb.Error:  # never shadow some views and not others
        temp_views = "SELECT view_name FROM duckdb_views() WHERE database_name = 'temp' AND NOT internal"
        for (name,) in con.execute(temp_views).fetchall():
            con.execute(f'DROP VIEW IF EXISTS temp.main."{name}"')
        temp_macros = ("SELECT DISTINCT function_name FROM duckdb_functions() WHERE database_name = 'temp' "
                       "AND function_type = 'table_macro'")
        for (name,) in con.execute(temp_macros).fetchall():
            con.execute(f'DROP MACRO TABLE IF EXISTS temp.main."{name}"')


# ------------------------------------------------------------------------------- ATT&CK tables


def _catalog_digest(catalog: AttackCatalog) -> str:
    return hashlib.sha256(json.dumps(catalog.to_dict()["techniques"], sort_keys=True).encode()).hexdigest()


def sync_catalog(con: duckdb.DuckDBPyConnection, catalog: AttackCatalog) -> bool:
    """(Re)load the ATT&CK tables when the catalog differs from the loaded one. True if reloaded."""
    digest = _catalog_digest(catalog)
    row = first_row(con, "SELECT value FROM meta WHERE key = 'catalog_digest'")
    if row and row[0] == digest:
        return False
    techniques = sorted(catalog.techniques.values(), key=lambda t: t.id)
    technique_table = pa.table({
        "technique_id": [t.id for t in techniques],
        "name": [t.name for t in techniques],
        "parent_id": [t.parent_id for t in techniques],
        "is_subtechnique": [t.parent is not None for t in techniques],
        "tactics": [list(t.tactics) for t in techniques],
        "platforms": [list(t.platforms) for t in techniques],
        "data_components": [list(t.data_components) for t in techniques],
        "log_sources": [list(t.log_sources) for t in techniques],
        "deprecated": [t.deprecated for t in techniques],
        "attack_version": [catalog.attack_version] * len(techniques),
    })
    tactic_table = pa.table({
        "tactic_id": [t.id for t in catalog.tactics],
        "shortname": [t.shortname for t in catalog.tactics],
        "name": [t.name for t in catalog.tactics],
        "kill_chain_order": [t.order for t in catalog.tactics],
    })
    pairs = [(t.id, tactic) for t in techniques for tactic in t.tactics]
    pair_table = pa.table({"technique_id": [p[0] for p in pairs], "tactic": [p[1] for p in pairs]})
    revoked = sorted(catalog.revoked.items())
    revoked_table = pa.table({
        "revoked_id": [k for k, _ in revoked],
        "revoked_name": [v["name"] for _, v in revoked],
        "replaced_by": [v["replaced_by"] for _, v in revoked],
    })
    con.execute("BEGIN TRANSACTION")
    try:
        for table, arrow in (("attack_techniques", technique_table), ("attack_tactics", tactic_table),
                             ("attack_technique_tactics", pair_table), ("attack_revocations", revoked_table)):
            con.execute(f"DELETE FROM {table}")
            con.register("incoming", arrow)
            con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM incoming")
            con.unregister("incoming")
        con.execute("INSERT OR REPLACE INTO meta VALUES ('catalog_digest', ?), ('attack_version', ?)",
                    [digest, catalog.attack_version])
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    return True


# ------------------------------------------------------------------------------------- reports


@dataclass(frozen=True)
class SourceRow:
    """Where a document came from, as recorded in ``report_sources``."""

    source: str
    content_sha256: str
    kind: str
    n_bytes: int
    manifest_title: str | None = None
    manifest_publisher: str | None = None
    manifest_published: date | None = None
    etag: str | None = None
    last_modified: str | None = None


SourceItemMetadata = tuple[str | None, str | None, date | None]  # a manifest's title, publisher, published


@dataclass(frozen=True)
class ReportRow:
    """One report as it enters ``reports``."""

    report_id: str
    text_sha256: str
    title: str | None
    publisher: str | None
    published: date | None
    kind: str
    n_chars: int
    n_pages: int | None
    minhash: list[int]
    first_source: str
    tagger_versions: dict[str, str]
    notes: Sequence[str] = ()
    published_year: int | None = None


def known_content_hashes(con: duckdb.DuckDBPyConnection) -> set[str]:
    """SHA-256 of every document's bytes already loaded (any source)."""
    return {row[0] for row in con.execute("SELECT DISTINCT content_sha256 FROM report_sources").fetchall()}


def current_source_hashes(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """source → SHA-256 of the bytes it gave most recently (its latest ``report_sources`` row)."""
    return dict(con.execute("SELECT source, arg_max(content_sha256, fetched_at) FROM report_sources "
                            "GROUP BY source").fetchall())


def report_signatures(con: duckdb.DuckDBPyConnection) -> dict[str, list[int]]:
    """report_id → MinHash signature, for near-duplicate detection."""
    return {rid: list(sig) for rid, sig in con.execute("SELECT report_id, minhash FROM reports").fetchall()}


def report_id_for_text(con: duckdb.DuckDBPyConnection, text_sha256: str) -> str | None:
    row = first_row(con, "SELECT report_id FROM reports WHERE text_sha256 = ?", [text_sha256])
    return row[0] if row else None


def _source_table(source: SourceRow, report_id: str, status: str, similarity: float | None,
                  run_id: str) -> pa.Table:
    return pa.table({
        "source": [source.source], "content_sha256": [source.content_sha256], "report_id": [report_id],
        "kind": [source.kind], "n_bytes": pa.array([source.n_bytes], pa.int64()), "status": [status],
        "twin_similarity": pa.array([similarity], pa.float64()), "fetched_at": [_now()],
        "etag": pa.array([source.etag], pa.string()), "last_modified": pa.array([source.last_modified], pa.string()),
        "manifest_title": pa.array([source.manifest_title], pa.string()),
        "manifest_publisher": pa.array([source.manifest_publisher], pa.string()),
        "manifest_published": pa.array([source.manifest_published], pa.date32()),
        "run_id": [run_id],
    })


def _insert(con: duckdb.DuckDBPyConnection, table: str, arrow: pa.Table) -> None:
    if arrow.num_rows == 0:
        return
    con.register("incoming", arrow)
    try:
        con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM incoming")
    finally:
        con.unregister("incoming")


def _report_table(report: ReportRow, n_sentences: int, run_id: str, ingested_at: datetime | None = None) -> pa.Table:
    year = report.published_year or (report.published.year if report.published else None)
    return pa.table({
        "report_id": [report.report_id], "text_sha256": [report.text_sha256],
        "title": pa.array([report.title], pa.string()), "publisher": pa.array([report.publisher], pa.string()),
        "published": pa.array([report.published], pa.date32()), "published_year": pa.array([year], pa.int32()),
        "kind": [report.kind], "n_chars": pa.array([report.n_chars], pa.int32()),
        "n_pages": pa.array([report.n_pages], pa.int32()),
        "n_sentences": pa.array([n_sentences], pa.int32()), "status": ["ok"],
        "minhash": pa.array([report.minhash], pa.list_(pa.uint64())),
        "first_source": [report.first_source], "tagger_versions": [json.dumps(report.tagger_versions)],
        "notes": pa.array(["; ".join(report.notes) or None], pa.string()),
        "ingested_at": [ingested_at or _now()], "run_id": [run_id],
    })


def _sentence_table(report_id: str, sentences: Sequence[Sentence]) -> pa.Table:
    return pa.table({
        "report_id": [report_id] * len(sentences),
        "sentence_index": pa.array([s.index for s in sentences], pa.int32()),
        "start_char": pa.array([s.start for s in sentences], pa.int32()),
        "end_char": pa.array([s.end for s in sentences], pa.int32()),
        "text": [s.text for s in sentences],
        "advice": pa.array([s.advice for s in sentences], pa.bool_()),
    })


def load_report(con: duckdb.DuckDBPyConnection, report: ReportRow, source: SourceRow,
                sentences: Sequence[Sentence], mentions: Sequence[Mention],
                sightings: Sequence[Sighting], run_id: str) -> None:
    """Insert a new report with its source, sentences, mentions and sightings in one transaction."""
    _write_report(con, report, source, sentences, mentions, sightings, run_id, "new", None)


def report_read_from(con: duckdb.DuckDBPyConnection, source: str) -> str | None:
    """The report whose current text was last read from ``source`` (loaded or revised from it), if any."""
    row = first_row(con, f"""SELECT s.report_id FROM report_sources s JOIN reports r USING (report_id)
                            WHERE s.source = ? AND s.status IN {TEXT_STATUSES}
                            ORDER BY s.fetched_at DESC LIMIT 1""", [source])
    return row[0] if row else None


TEXT_STATUSES = "('new', 'revision', 're-extracted')"  # source rows whose bytes gave their report its text


def texts_to_reread(con: duckdb.DuckDBPyConnection, key: str, version: str) -> dict[str, str]:
    """``{source: report_id}`` for the reports whose text another extraction made (``tagger_versions``
    entry ``key`` other than ``version``), each with the source its text was last read from."""
    rows = con.execute(
        f"""SELECT source, report_id FROM (
                SELECT s.source, s.report_id, row_number() OVER (PARTITION BY s.report_id
                                                                 ORDER BY s.fetched_at DESC) AS latest
                FROM report_sources s JOIN reports r USING (report_id)
                WHERE s.status IN {TEXT_STATUSES}
                  AND json_extract_string(r.tagger_versions, '$.' || ?) IS DISTINCT FROM ?)
            WHERE latest = 1""",
        [key, version]).fetchall()
    return dict(rows)


def record_versions(con: duckdb.DuckDBPyConnection, report_id: str, versions: Mapping[str, str]) -> None:
    """Merge ``versions`` into a report's ``tagger_versions`` (what made its text and evidence)."""
    con.execute("""UPDATE reports
                   SET tagger_versions = json_merge_patch(coalesce(tagger_versions, '{}'), ?::JSON)::VARCHAR
                   WHERE report_id = ?""", [json.dumps(dict(versions)), report_id])


def revise_report(con: duckdb.DuckDBPyConnection, report: ReportRow, source: SourceRow,
                  sentences: Sequence[Sentence], mentions: Sequence[Mention], sightings: Sequence[Sighting],
                  similarity: float, run_id: str, status: str = "revision") -> int:
    """Replace report ``report.report_id`` by a new version of it read from the same source, in one transaction.

    The report keeps its ID, first ingest time and other sources; its text, sentences, mentions and
    sightings become the new version's, so the report is counted once, with what it says now. The
    source row records the revision (``status``: ``revision``, or ``re-extracted`` for the same bytes read
    by a newer extraction; similarity to the version it replaces). Returns how many sightings the old
    version had.
    """
    rid = report.report_id
    first = first_row(con, """SELECT ingested_at, (SELECT count(*) FROM sightings WHERE report_id = ?)
                               FROM reports WHERE report_id = ?""", [rid, rid])
    if first is None:
        raise KeyError(f"no report {rid} to revise")
    _write_report(con, report, source, sentences, mentions, sightings, run_id, status, similarity,
                  replacing_since=first[0])
    return int(first[1])


def _write_report(con: duckdb.DuckDBPyConnection, report: ReportRow, source: SourceRow,
                  sentences: Sequence[Sentence], mentions: Sequence[Mention], sightings: Sequence[Sighting],
                  run_id: str, status: str, similarity: float | None, replacing_since: datetime | None = None) -> None:
    """Write a report and its evidence in one transaction; ``replacing_since``: first replace the stored
    report of that ID (whose first ingest time it keeps)."""
    rid = report.report_id
    con.execute("BEGIN TRANSACTION")
    try:
        if replacing_since is not None:
            for table in ("sightings", "mentions", "sentences", "reports"):
                con.execute(f"DELETE FROM {table} WHERE report_id = ?", [rid])
        _insert(con, "reports", _report_table(report, len(sentences), run_id, ingested_at=replacing_since))
        _insert(con, "report_sources", _source_table(source, rid, status, similarity, run_id))
        _insert(con, "sentences", _sentence_table(rid, sentences))
        _insert(con, "mentions", mentions_table(rid, mentions))
        _insert(con, "sightings", sightings_table(rid, sightings))
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise


def mentions_table(report_id: str, mentions: Sequence[Mention]) -> pa.Table:
    return pa.table({
        "report_id": [report_id] * len(mentions),
        "sentence_index": pa.array([m.sentence_index for m in mentions], pa.int32()),
        "technique_id": pa.array([m.technique_id for m in mentions], pa.string()),
        "cited": [m.cited for m in mentions],
        "method": [m.method for m in mentions],
        "score": pa.array([m.score for m in mentions], pa.float64()),
        "match_start": pa.array([m.start for m in mentions], pa.int32()),
        "match_end": pa.array([m.end for m in mentions], pa.int32()),
        "detail": [m.detail for m in mentions],
        "tagger_version": [m.tagger_version for m in mentions],
        "model_version": pa.array([m.tagger_version if m.method == "classifier" else None for m in mentions],
                                  pa.string()),
    })


def sightings_table(report_id: str, sightings: Sequence[Sighting]) -> pa.Table:
    return pa.table({
        "report_id": [report_id] * len(sightings),
        "technique_id": [s.technique_id for s in sightings],
        "score": pa.array([s.score for s in sightings], pa.float64()),
        "methods": pa.array([list(s.methods) for s in sightings], pa.list_(pa.string())),
        "n_mentions": pa.array([s.n_mentions for s in sightings], pa.int32()),
        "n_sentences": pa.array([s.n_sentences for s in sightings], pa.int32()),
        "rule": [s.rule for s in sightings],
    })


def add_source(con: duckdb.DuckDBPyConnection, source: SourceRow, report_id: str, status: str,
               similarity: float | None, run_id: str) -> None:
    """Record another source of an existing report (same text, or a PDF/HTML twin)."""
    _insert(con, "report_sources", _source_table(source, report_id, status, similarity, run_id))


def add_known_copy(con: duckdb.DuckDBPyConnection, source: str, content_sha256: str, run_id: str,
                   manifest: SourceItemMetadata | None = None) -> str:
    """Record ``source`` as another source of the report whose bytes (``content_sha256``) are loaded
    already (status ``same-text``: same bytes, same text); returns that report's ID. Nothing is
    analysed again."""
    [(report_id, kind, n_bytes)] = con.execute(
        "SELECT report_id, kind, n_bytes FROM report_sources WHERE content_sha256 = ? ORDER BY fetched_at LIMIT 1",
        [content_sha256]).fetchall()
    title, publisher, published = manifest or (None, None, None)
    add_source(con, SourceRow(source=source, content_sha256=content_sha256, kind=kind, n_bytes=n_bytes,
                              manifest_title=title, manifest_publisher=publisher, manifest_published=published),
               report_id, "same-text", 1.0, run_id)
    return report_id


# ------------------------------------------------------------------------------------ forgetting


class UnknownReport(KeyError):
    """A report ID or source the warehouse does not hold."""

    def __str__(self) -> str:
        return str(self.args[0])


def resolve_reports(con: duckdb.DuckDBPyConnection, targets: Sequence[str]) -> list[str]:
    """The report IDs that ``targets`` name: a report ID, or a source (path or URL as recorded) of one; failing
    those, the start of one report ID (at least 4 characters: ``6c7b95``) or a file name one source ends with
    (``2015_Skeleton_Key_Analysis.pdf``). Raises ``UnknownReport`` naming every target that is none of these,
    or that names several reports that way (with them)."""
    found: list[str] = []
    unknown, ambiguous = [], []
    for target in targets:
        rows = con.execute("""SELECT report_id FROM reports WHERE report_id = ?
                              UNION SELECT report_id FROM report_sources WHERE source = ?""",
                           [target, target]).fetchall()
        if not rows and target.strip():
            rows = con.execute(
                """SELECT report_id, min(source) FROM report_sources
                   WHERE (length(?) >= 4 AND starts_with(report_id, lower(?)))
                      OR (NOT contains(?, '/') AND (ends_with(source, '/' || ?) OR ends_with(source, '\\' || ?)))
                   GROUP BY report_id ORDER BY report_id""", [target] * 5).fetchall()
            if len(rows) > 1:
                ambiguous.append(f"{target!r} could be any of " + ", ".join(f"{rid} ({src})" for rid, src in rows))
                continue
        if not rows:
            unknown.append(target)
        found.extend(row[0] for row in rows if row[0] not in found)
    if ambiguous:
        raise UnknownReport("; ".join(ambiguous) + ": give more of the ID, or the whole path or URL")
    if unknown:
        raise UnknownReport(f"no report or source {', '.join(map(repr, unknown))} in the warehouse "
                            "(`breachminer sql \"select report_id, source from report_sources\"` lists them)")
    return found


def forget_reports(con: duckdb.DuckDBPyConnection, report_ids: Sequence[str], reason: str | None = None) -> list[
        tuple[str, str | None, list[str]]]:
    """Take reports out of the warehouse, in one transaction: the report, its sources, sentences, mentions,
    sightings and its sources' failures. A ``forgotten`` row keeps its text and bytes' hashes, so later
    ingests skip them. Returns (report ID, title, sources) of each."""
    forgotten = []
    con.execute("BEGIN TRANSACTION")
    try:
        for report_id in report_ids:
            text_sha256, title = con.execute("SELECT text_sha256, title FROM reports WHERE report_id = ?",
                                              [report_id]).fetchone()
            sources = con.execute("SELECT list(source ORDER BY fetched_at), list(DISTINCT content_sha256) "
                                  "FROM report_sources WHERE report_id = ?", [report_id]).fetchone()
            con.execute("INSERT OR REPLACE INTO forgotten VALUES (?, ?, ?, ?, ?, ?, ?)",
                        [report_id, text_sha256, title, sources[0] or [], sources[1] or [], reason, _now()])
            con.execute("DELETE FROM failures WHERE list_contains(?, source)", [sources[0] or []])
            for table in ("sightings", "mentions", "sentences", "report_sources", "reports"):
                con.execute(f"DELETE FROM {table} WHERE report_id = ?", [report_id])
            forgotten.append((report_id, title, list(sources[0] or [])))
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    return forgotten


def forgotten_hashes(con: duckdb.DuckDBPyConnection) -> tuple[set[str], set[str]]:
    """The content hashes and text hashes of forgotten reports (what an ingest skips)."""
    rows = con.execute("SELECT content_sha256s, text_sha256 FROM forgotten").fetchall()
    return {digest for contents, _ in rows for digest in contents or []}, {text for _, text in rows if text}


def forgotten_frame(con: duckdb.DuckDBPyConnection) -> Any:
    """The forgotten reports for people, oldest first: ID, title, reason, when, how many sources."""
    return con.execute("""SELECT report_id, title, reason, strftime(forgotten_at, '%Y-%m-%d %H:%M') AS forgotten_at,
                                 len(sources) AS n_sources
                          FROM forgotten ORDER BY forgotten_at, report_id""").df()


def report_header(con: duckdb.DuckDBPyConnection, report_id: str) -> tuple[str | None, str | None, Any,
                                                                           list[tuple[str, str]]]:
    """A loaded report's title, publisher, publication date and sources with their status (``twin``: another
    edition of the same report, whose text was not the one analysed), first fetched first."""
    title, publisher, published, sources = con.execute(
        """SELECT title, publisher, published,
                  (SELECT list((source, status) ORDER BY fetched_at) FROM report_sources WHERE report_id = r.report_id)
           FROM reports r WHERE report_id = ?""", [report_id]).fetchone()
    return title, publisher, published, [(source, status) for source, status in sources or []]


def run_failures(con: duckdb.DuckDBPyConnection, run_id: str) -> Any:
    """The failures a run recorded that are still unresolved: source, stage, error class, message."""
    return con.execute("SELECT source, stage, error_class, message FROM failures WHERE run_id = ? "
                       "AND resolved_at IS NULL", [run_id]).df()


def restore_forgotten(con: duckdb.DuckDBPyConnection, report_id: str) -> bool:
    """Let later ingests load a forgotten report again; False when ``report_id`` is not forgotten."""
    found = con.execute("SELECT count(*) FROM forgotten WHERE report_id = ?", [report_id]).fetchone()[0]
    con.execute("DELETE FROM forgotten WHERE report_id = ?", [report_id])
    return bool(found)


# ------------------------------------------------------------------------------------ retagging


def reports_to_retag(con: duckdb.DuckDBPyConnection, versions: Mapping[str, str], rule: str,
                     skip_method: str | None = None) -> list[str]:
    """Reports that the current taggers and sighting rule did not decide: an entry of ``versions`` (the
    taggers' ``{method: version}`` and the sighting rule's entry) that the report stores with another
    value or not at all, a sighting decided by another ``rule``, or a sentence not yet assessed for advice
    (loaded before that rule). Reports with ``skip_method`` mentions (the classifier, in a run without
    it) are left for a run that has that method."""
    methods, wanted = list(versions), [versions[m] for m in versions]
    rows = con.execute(
        """SELECT report_id FROM reports r
           WHERE (CAST(? AS VARCHAR) IS NULL OR json_extract_string(r.tagger_versions, '$.' || ?) IS NULL)
             AND (EXISTS (SELECT 1 FROM (SELECT unnest(?::VARCHAR[]) AS method, unnest(?::VARCHAR[]) AS version) v
                          WHERE coalesce(json_extract_string(r.tagger_versions, '$.' || v.method), '') <> v.version)
                  OR r.report_id IN (SELECT report_id FROM sightings WHERE rule IS DISTINCT FROM ?)
                  OR r.report_id IN (SELECT report_id FROM sentences WHERE advice IS NULL))
           ORDER BY report_id""",
        [skip_method, skip_method, methods, wanted, rule],
    ).fetchall()
    return [row[0] for row in rows]


def report_tagger_versions(con: duckdb.DuckDBPyConnection, report_id: str) -> dict[str, str]:
    """``{method: version}`` of the taggers whose mentions a report holds."""
    [(stored,)] = con.execute("SELECT tagger_versions FROM reports WHERE report_id = ?", [report_id]).fetchall()
    return json.loads(stored) if stored else {}


def report_sentences(con: duckdb.DuckDBPyConnection, report_id: str) -> list[Sentence]:
    rows = con.execute(
        """SELECT sentence_index, start_char, end_char, text, coalesce(advice, false) FROM sentences
           WHERE report_id = ? ORDER BY sentence_index""",
        [report_id],
    ).fetchall()
    return [Sentence(*row) for row in rows]


def report_mentions(con: duckdb.DuckDBPyConnection, report_id: str,
                    exclude_methods: Sequence[str] = ()) -> list[Mention]:
    rows = con.execute(
        """SELECT sentence_index, technique_id, method, score, cited, match_start, match_end, detail, tagger_version
           FROM mentions WHERE report_id = ? AND NOT list_contains(?::VARCHAR[], method)""",
        [report_id, list(exclude_methods)],
    ).fetchall()
    return [Mention(*row) for row in rows]


def replace_mentions(con: duckdb.DuckDBPyConnection, report_id: str, methods: Sequence[str],
                     mentions: Sequence[Mention], sightings: Sequence[Sighting], versions: Mapping[str, str],
                     advice: Sequence[int] | None = None) -> None:
    """In one transaction, swap the report's mentions of ``methods`` (the taggers that made ``mentions``)
    and its sightings, and record ``versions`` (what made them) in its tagger versions; given ``advice``
    (the indexes of the advice sentences the sightings were decided with), also store which sentences
    are advice."""
    con.execute("BEGIN TRANSACTION")
    try:
        if advice is not None:
            con.execute("UPDATE sentences SET advice = list_contains(?::INTEGER[], sentence_index) WHERE report_id = ?",
                        [sorted(advice), report_id])
        con.execute("DELETE FROM mentions WHERE report_id = ? AND list_contains(?::VARCHAR[], method)",
                    [report_id, list(methods)])
        con.execute("DELETE FROM sightings WHERE report_id = ?", [report_id])
        _insert(con, "mentions", mentions_table(report_id, mentions))
        _insert(con, "sightings", sightings_table(report_id, sightings))
        record_versions(con, report_id, versions)
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise


def sighting_count(con: duckdb.DuckDBPyConnection) -> int:
    return first_row(con, "SELECT count(*) FROM sightings")[0]


# -------------------------------------------------------------------------------- fetch state


@dataclass(frozen=True)
class FetchState:
    """What a URL served last time."""

    url: str
    final_url: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    content_sha256: str | None = None
    content_type: str | None = None
    n_bytes: int | None = None
    is_feed: bool = False


def fetch_states(con: duckdb.DuckDBPyConnection) -> dict[str, FetchState]:
    rows = con.execute(
        """SELECT url, final_url, etag, last_modified, content_sha256, content_type, n_bytes, coalesce(is_feed, false)
           FROM fetch_state"""
    ).fetchall()
    return {row[0]: FetchState(*row) for row in rows}


def save_fetch_state(con: duckdb.DuckDBPyConnection, state: FetchState, not_modified: bool) -> None:
    """Record a 200 (new validators and body) or a 304 (only the contact)."""
    now = _now()
    if not_modified:
        con.execute("UPDATE fetch_state SET checked_at = ?, n_not_modified = coalesce(n_not_modified, 0) + 1 "
                    "WHERE url = ?", [now, state.url])
        return
    con.execute(
        """INSERT OR REPLACE INTO fetch_state (url, final_url, etag, last_modified, content_sha256, content_type,
               n_bytes, is_feed, fetched_at, checked_at, n_not_modified)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0)""",
        [state.url, state.final_url, state.etag, state.last_modified, state.content_sha256, state.content_type,
         state.n_bytes, state.is_feed, now, now],
    )


# ------------------------------------------------------------------------------ failures, runs


@dataclass(frozen=True)
class RetryPolicy:
    """When a failed source is tried again: ``delay`` seconds after the first failure, doubled per
    attempt (never sooner than a server's ``Retry-After``); after ``max_attempts`` it is given up."""

    delay: float = 3600.0
    max_attempts: int = 5


@dataclass(frozen=True)
class OpenFailure:
    """An unresolved failure, as the next run needs it."""

    source: str
    attempts: int
    next_retry_at: datetime | None
    gave_up: bool
    content_sha256: str | None

    def due(self, now: datetime | None = None) -> bool:
        return not self.gave_up and (self.next_retry_at is None or self.next_retry_at <= (now or _now()))


def record_failure(con: duckdb.DuckDBPyConnection, source: str, stage: str, error_class: str,
                   message: str, run_id: str, *, retry: RetryPolicy | None = None, http_status: int | None = None,
                   retry_after: float | None = None, content_sha256: str | None = None) -> OpenFailure:
    """Upsert a failure: attempts grow by one per run that fails on the source again (a resolved
    failure starts over at 1), and the next retry time follows ``retry``."""
    retry = retry or RetryPolicy()
    now = _now()
    previous = first_row(con, "SELECT attempts, first_failed_at, resolved_at FROM failures WHERE source = ?", [source])
    ongoing = previous is not None and previous[2] is None
    attempts = previous[0] + 1 if ongoing else 1
    first_failed = previous[1] if ongoing else now
    gave_up_at = now if attempts >= retry.max_attempts else None
    next_retry_at = None
    if gave_up_at is None:
        wait = retry.delay * 2 ** (attempts - 1)
        if retry_after is not None:
            wait = max(wait, retry_after)
        next_retry_at = now + timedelta(seconds=wait)
    con.execute(
        """
        INSERT OR REPLACE INTO failures (source, stage, error_class, message, attempts, first_failed_at,
            last_failed_at, resolved_at, run_id, http_status, content_sha256, next_retry_at, gave_up_at)
        VALUES (?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, ?, ?, ?)
        """,
        [source, stage, error_class, message[:2000], attempts, first_failed, now, run_id, http_status,
         content_sha256, next_retry_at, gave_up_at],
    )
    return OpenFailure(source, attempts, next_retry_at, gave_up_at is not None, content_sha256)


def open_failures(con: duckdb.DuckDBPyConnection) -> dict[str, OpenFailure]:
    """Unresolved failures by source."""
    rows = con.execute(
        """SELECT source, attempts, next_retry_at, gave_up_at IS NOT NULL, content_sha256
           FROM failures WHERE resolved_at IS NULL"""
    ).fetchall()
    return {row[0]: OpenFailure(*row) for row in rows}


def failures_frame(con: duckdb.DuckDBPyConnection, include_resolved: bool = False) -> Any:
    """Failures for people: newest first, with what happens next."""
    return con.execute(
        f"""SELECT source, stage, error_class, message, attempts, first_failed_at, last_failed_at,
                   CASE WHEN resolved_at IS NOT NULL THEN 'resolved ' || strftime(resolved_at, '%Y-%m-%d %H:%M')
                        WHEN gave_up_at IS NOT NULL THEN 'gave up (--retry-failed retries it)'
                        ELSE 'retry after ' || strftime(next_retry_at, '%Y-%m-%d %H:%M:%S') END AS next_step,
                   next_retry_at, gave_up_at, resolved_at, http_status
            FROM failures {"" if include_resolved else "WHERE resolved_at IS NULL"}
            ORDER BY resolved_at IS NOT NULL, last_failed_at DESC, source"""
    ).df()


def resolve_failure(con: duckdb.DuckDBPyConnection, source: str) -> None:
    con.execute("UPDATE failures SET resolved_at = ? WHERE source = ? AND resolved_at IS NULL", [_now(), source])


def start_run(con: duckdb.DuckDBPyConnection, run_id: str, flow_run_id: str | None, inputs: list[str],
              n_sources: int) -> None:
    """Record a run's start. Call it holding the writer lock: any run still marked running then died
    mid-way (killed, out of memory, cancelled) and is marked crashed, with the counts its records show:
    the sources it loaded, revised or read again and the failures it recorded last (its other counts stay
    NULL, unknown)."""
    con.execute(
        """UPDATE runs SET status = 'crashed',
               n_new = (SELECT count(*) FILTER (status = 'new') FROM report_sources s WHERE s.run_id = runs.run_id),
               n_revised = (SELECT count(*) FILTER (status = 'revision') FROM report_sources s
                            WHERE s.run_id = runs.run_id),
               n_duplicate = (SELECT count(*) FILTER (status IN ('same-text', 'twin')) FROM report_sources s
                              WHERE s.run_id = runs.run_id),
               n_reextracted = (SELECT count(*) FILTER (status = 're-extracted') FROM report_sources s
                                WHERE s.run_id = runs.run_id),
               n_failed = (SELECT count(*) FROM failures f WHERE f.run_id = runs.run_id)
           WHERE status = 'running'""")
    con.execute(
        "INSERT INTO runs (run_id, flow_run_id, started_at, status, n_sources, inputs) VALUES (?, ?, ?, ?, ?, ?)",
        [run_id, flow_run_id, _now(), "running", n_sources, json.dumps(inputs)],
    )


def finish_run(con: duckdb.DuckDBPyConnection, run_id: str, counts: dict[str, Any], status: str = "completed") -> None:
    con.execute(
        """UPDATE runs SET finished_at = ?, status = ?, n_new = ?, n_unchanged = ?, n_duplicate = ?,
           n_failed = ?, n_sightings = ?, n_deferred = ?, n_downloaded = ?, n_not_modified = ?, n_revised = ?,
           n_retagged = ?, retag_error = ?, exported = ?, export_error = ?, n_reextracted = ?, n_forgotten = ?
           WHERE run_id = ?""",
        [_now(), status, counts.get("new", 0), counts.get("unchanged", 0), counts.get("duplicate", 0),
         counts.get("failed", 0), counts.get("sightings", 0), counts.get("deferred", 0),
         counts.get("downloaded", 0), counts.get("not_modified", 0), counts.get("revised", 0),
         counts.get("retagged", 0), counts.get("retag_error"), counts.get("exported") or None,
         counts.get("export_error"), counts.get("reextracted", 0), counts.get("forgotten", 0), run_id],
    )


# ------------------------------------------------------------------------------------- queries


def tactic_shortname(tactic: str) -> str:
    """ATT&CK's shortname for a tactic given by shortname or name ("Defense Evasion" → "defense-evasion")."""
    return tactic.strip().lower().replace(" ", "-")


@dataclass(frozen=True)
class ReportScope:
    """Which reports the read commands count: those whose title contains one of ``titles``, whose publisher
    contains one of ``publishers`` (case-insensitive), published from year ``since`` to year ``until``."""

    titles: tuple[str, ...] = ()
    publishers: tuple[str, ...] = ()
    since: int | None = None
    until: int | None = None

    @classmethod
    def of(cls, titles: Sequence[str] | None = None, publishers: Sequence[str] | None = None,
           since: int | None = None, until: int | None = None) -> ReportScope:
        """The scope the read commands' ``--title``/``--publisher``/``--since``/``--until`` options give."""
        return cls(tuple(titles or ()), tuple(publishers or ()), since, until)

    def __bool__(self) -> bool:
        return bool(self.titles or self.publishers or self.since is not None or self.until is not None)

    def describe(self) -> str:
        """The scope in words: ``title ~ 'ransomware' or 'wiper', 2020 to 2023``."""
        parts = []
        for label, words in (("title", self.titles), ("publisher", self.publishers)):
            if words:
                parts.append(f"{label} ~ " + " or ".join(repr(word) for word in words))
        if self.since is not None or self.until is not None:
            parts.append(f"{self.since or '…'} to {self.until or '…'}" if self.since != self.until else
                         f"{self.since}")
        return ", ".join(parts)


def scope_reports(con: duckdb.DuckDBPyConnection, scope: ReportScope) -> int:
    """Restrict every view on this connection to the reports in ``scope`` and return how many there are.

    The views count ``counted_reports``; a temporary view of that name, on this connection only, shadows
    it, so frequencies, shares, tactics, prevalence, priorities and evidence are all over the same reports.
    Nothing is written. A scope that no report is in is a ``ValueError``."""
    def literal(text: str) -> str:  # a view cannot take parameters: quoted as SQL string literals
        return "'" + text.replace("'", "''") + "'"

    conditions = ["status = 'ok'"]
    for column, words in (("title", scope.titles), ("publisher", scope.publishers)):
        if words:
            conditions.append("(" + " OR ".join(f"contains(lower(coalesce({column}, '')), lower({literal(word)}))"
                                                for word in words) + ")")
    year = "coalesce(year(published), published_year)"
    if scope.since is not None:
        conditions.append(f"{year} >= {int(scope.since)}")
    if scope.until is not None:
        conditions.append(f"{year} <= {int(scope.until)}")
    con.execute(f"CREATE OR REPLACE TEMP VIEW counted_reports AS SELECT * FROM main.reports "
                f"WHERE {' AND '.join(conditions)}")
    count = first_row(con, "SELECT count(*) FROM counted_reports")[0]
    if scope and not count:
        raise ValueError(f"no loaded report is in the scope ({scope.describe()})")
    return count


def counted_report_total(con: duckdb.DuckDBPyConnection, dated_only: bool = False) -> int:
    """Reports that count (text extracted and loaded); with ``dated_only``, those with a date or a year."""
    where = " WHERE published IS NOT NULL OR published_year IS NOT NULL" if dated_only else ""
    return first_row(con, f"SELECT count(*) FROM counted_reports{where}")[0]


def known_tactic(con: duckdb.DuckDBPyConnection, tactic: str) -> str:
    """The shortname of a tactic given by shortname or name, or a ``ValueError`` listing the known ones."""
    shortname = tactic_shortname(tactic)
    known = {row[0] for row in con.execute("SELECT shortname FROM attack_tactics").fetchall()}
    if shortname not in known:
        raise ValueError(f"unknown tactic {tactic!r}; one of: {', '.join(sorted(known))}")
    return shortname


def top_techniques(con: duckdb.DuckDBPyConnection, n: int = 20, level: str = "parent",
                   tactic: str | None = None, half_life: float | None = None) -> Any:
    """Top-N techniques as a pandas DataFrame, overall or within one tactic (shortname or name).

    With ``half_life`` (years), ranked by time-decayed prevalence (``technique_prevalence_decayed``)
    instead of the plain report count.
    """
    shortname = known_tactic(con, tactic) if tactic else None
    if half_life is not None:
        if not half_life > 0:
            raise ValueError(f"the half-life must be a positive number of years, not {half_life}")
        return con.execute(
            """SELECT row_number() OVER (ORDER BY decayed_share DESC, technique_id) AS rank, technique_id,
                      technique_name, n_reports, share, decayed_share, trend
               FROM technique_prevalence_decayed(half_life_years := ?)
               WHERE level = ? AND (? IS NULL OR list_contains(tactics, ?))
               ORDER BY decayed_share DESC, technique_id LIMIT ?""",
            [float(half_life), level, shortname, shortname, n],
        ).df()
    if shortname:
        return con.execute(
            """SELECT rank_in_tactic AS rank, technique_id, technique_name, n_reports, report_share AS share,
                      share_in_tactic, cumulative_share
               FROM tactic_technique_frequency WHERE level = ? AND tactic = ?
               ORDER BY rank_in_tactic LIMIT ?""",
            [level, shortname, n],
        ).df()
    return con.execute(
        """SELECT rank, technique_id, technique_name, n_reports, share, tactics
           FROM technique_frequency WHERE level = ? ORDER BY rank, technique_id LIMIT ?""",
        [level, n],
    ).df()


def techniques_at_rank(con: duckdb.DuckDBPyConnection, rank: int, level: str = "parent",
                       tactic: str | None = None) -> int:
    """How many techniques share ``rank`` in ``top_techniques``' ranking (without a half-life): more than
    a top-N shows when N cuts through a tie."""
    shortname = known_tactic(con, tactic) if tactic else None
    if shortname:
        return first_row(con, "SELECT count(*) FROM tactic_technique_frequency WHERE level = ? AND tactic = ? "
                              "AND rank_in_tactic = ?", [level, shortname, rank])[0]
    return first_row(con, "SELECT count(*) FROM technique_frequency WHERE level = ? AND rank = ?", [level, rank])[0]


def evidence(con: duckdb.DuckDBPyConnection, technique_id: str, limit: int = 50,
             counted_only: bool = True, per_report: int | None = None) -> Any:
    """Reports and sentences behind a technique's count (a parent ID includes its sub-techniques), at most
    ``limit`` mentions; with ``per_report``, only each report's ``per_report`` strongest sentences
    (strongest first), so every report shows."""
    technique_id = technique_id.strip().upper()
    columns = {row[0] for row in con.execute("DESCRIBE technique_evidence").fetchall()}
    advice = "coalesce(advice, false)" if "advice" in columns else "false"  # a warehouse older than the rule
    order = "strength" if per_report else "sentence_index"
    return con.execute(
        f"""{_evidence_cte(counted_only)}
            SELECT report_id, title, published, technique_id, method, round(score, 2) AS score, cited, detail,
                   sentence_index, sentence, {advice} AS advice, counted
            FROM selected ORDER BY published NULLS LAST, report_id, {order}, sentence_index, method LIMIT ?""",
        [technique_id, technique_id, per_report or 0, per_report or 0, limit],
    ).df()


def report_sightings(con: duckdb.DuckDBPyConnection, report_id: str, per_technique: int = 1) -> list[dict[str, Any]]:
    """A report's sighted techniques (exact level, by ID), each with its score, methods and its
    ``per_technique`` strongest counted evidence sentences, strongest first: what ``tag`` shows for a
    document, from the warehouse."""
    rows = con.execute(
        """WITH best AS (
               SELECT technique_id, sentence_index, max(score) AS score, any_value(sentence) AS sentence,
                      coalesce(max_by(cited, (score, cited)) FILTER (WHERE cited <> ''), '') AS matched
               FROM technique_evidence WHERE report_id = ? AND counted GROUP BY technique_id, sentence_index),
           ranked AS (
               SELECT *, row_number() OVER (PARTITION BY technique_id ORDER BY score DESC, sentence_index) AS r
               FROM best)
           SELECT s.technique_id, any_value(t.name), any_value(s.score), any_value(s.methods),
                  coalesce(list(e.sentence ORDER BY e.r) FILTER (e.r <= ?), []),
                  coalesce(list(e.matched ORDER BY e.r) FILTER (e.r <= ?), [])
           FROM sightings s JOIN attack_techniques t USING (technique_id)
           LEFT JOIN ranked e ON e.technique_id = s.technique_id
           WHERE s.report_id = ? GROUP BY s.technique_id ORDER BY s.technique_id""",
        [report_id, per_technique, per_technique, report_id]).fetchall()
    return [{"id": technique, "name": name, "score": score, "methods": list(methods), "evidence": list(sentences),
             "matched": list(matched)} for technique, name, score, methods, sentences, matched in rows]


def evidence_totals(con: duckdb.DuckDBPyConnection, technique_id: str, counted_only: bool = True,
                    per_report: int | None = None) -> tuple[int, int]:
    """``(reports, mentions)`` behind a technique, as ``evidence`` selects them but without its limit."""
    technique_id = technique_id.strip().upper()
    return first_row(con, f"{_evidence_cte(counted_only)} "
                          "SELECT count(DISTINCT report_id), count(*) FROM selected",
                     [technique_id, technique_id, per_report or 0, per_report or 0])


def _evidence_cte(counted_only: bool) -> str:
    """``selected``: the technique's evidence rows (parameters: the ID twice, then ``per_report`` or 0 twice), each
    with its sentence's ``strength`` rank in its report (1: the sentence with the strongest mention)."""
    return f"""WITH rows AS (SELECT * FROM technique_evidence WHERE {_evidence_where(counted_only)}),
               ranked AS (
                   SELECT report_id, sentence_index,
                          row_number() OVER (PARTITION BY report_id ORDER BY max(score) DESC, sentence_index)
                              AS strength
                   FROM rows GROUP BY report_id, sentence_index),
               selected AS (
                   SELECT * FROM rows JOIN ranked USING (report_id, sentence_index)
                   WHERE ? = 0 OR strength <= ?)"""


def _evidence_where(counted_only: bool) -> str:
    return "(technique_id = ? OR parent_id = ?)" + (" AND counted" if counted_only else "")
