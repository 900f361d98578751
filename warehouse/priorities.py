"""Prioritization in the warehouse (DESIGN.md §6): the inputs the ``technique_priority`` view reads
(the lexicon's ratings, the user's profile) and the query behind ``breachminer prioritize``.

The view itself is SQL (``sql/02_views.sql``), so an analyst's SQL and the command give the same
numbers. The lexicon's ratings come in as rows (this package never reads the lexicon: extractors own
it); the profile comes in validated (``breachminer.priority_profile``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import duckdb
import pyarrow as pa

from breachminer.priority_profile import PriorityProfile
from warehouse.db import first_row, known_tactic


def sync_lexicon_ratings(con: duckdb.DuckDBPyConnection, ratings: Iterable[tuple[str, str, str]]) -> bool:
    """Replace ``lexicon_ratings`` with ``(technique_id, observable, fidelity)`` rows when they changed.

    True if replaced."""
    rows = sorted(set(ratings))
    digest = hashlib.sha256(json.dumps(rows).encode()).hexdigest()
    stored = first_row(con, "SELECT value FROM meta WHERE key = 'lexicon_ratings_digest'")
    if stored and stored[0] == digest:
        return False
    table = pa.table({"technique_id": [r[0] for r in rows], "observable": [r[1] for r in rows],
                      "fidelity": [r[2] for r in rows]})
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute("DELETE FROM lexicon_ratings")
        con.register("incoming", table)
        con.execute("INSERT INTO lexicon_ratings BY NAME SELECT * FROM incoming")
        con.unregister("incoming")
        con.execute("INSERT OR REPLACE INTO meta VALUES ('lexicon_ratings_digest', ?)", [digest])
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return True


def store_profile(con: duckdb.DuckDBPyConnection, profile: PriorityProfile) -> None:
    """Make ``profile`` the warehouse's profile (one transaction; the previous one is replaced whole)."""
    con.execute("BEGIN TRANSACTION")
    try:
        for table in ("priority_profile", "priority_signal", "priority_detections"):
            con.execute(f"DELETE FROM {table}")
        con.execute(
            "INSERT INTO priority_profile VALUES (?, ?, ?, ?, ?, ?)",
            [profile.source, datetime.now(UTC).replace(tzinfo=None),
             list(profile.telemetry) if profile.telemetry is not None else None,
             profile.weights["prevalence"], profile.weights["signal"], profile.weights["collection"]],
        )
        if profile.signal:
            table = pa.table({"technique_id": [r.technique_id for r in profile.signal],
                              "signal": [r.score for r in profile.signal],
                              "note": [r.note for r in profile.signal]})
            con.register("incoming", table)
            con.execute("INSERT INTO priority_signal BY NAME SELECT * FROM incoming")
            con.unregister("incoming")
        if profile.detections:
            con.executemany("INSERT INTO priority_detections VALUES (?)", [[t] for t in profile.detections])
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def stored_profile(con: duckdb.DuckDBPyConnection) -> dict[str, Any] | None:
    """The stored profile's source, time, telemetry and weights, and how many signal ratings (None: none)."""
    row = first_row(con, "SELECT source, stored_at, telemetry, w_prevalence, w_signal, w_collection "
                         "FROM priority_profile LIMIT 1")
    if row is None:
        return None
    n_signal = first_row(con, "SELECT count(*) FROM priority_signal")[0]
    n_detections = first_row(con, "SELECT count(*) FROM priority_detections")[0]
    return {"source": row[0], "stored_at": row[1], "telemetry": row[2],
            "weights": {"prevalence": row[3], "signal": row[4], "collection": row[5]}, "signal_ratings": n_signal,
            "detections": n_detections}


def priorities(con: duckdb.DuckDBPyConnection, n: int = 20, level: str = "parent", per_tactic: int | None = None,
               tactic: str | None = None) -> Any:
    """The first ``n`` picks of ``technique_priority`` as a pandas DataFrame.

    ``per_tactic`` keeps at most that many techniques per tactic (picks are made round by round over
    the kill chain already; this cuts the later rounds). ``tactic`` keeps one tactic's techniques,
    ranked by priority.
    """
    if level not in ("parent", "exact"):
        raise ValueError("level must be 'parent' or 'exact'")
    if per_tactic is not None and per_tactic < 1:
        raise ValueError(f"--per-tactic must be at least 1, not {per_tactic}")
    where, params = ["p.level = ?"], [level]
    if per_tactic is not None:
        where.append("p.pick_round <= ?")
        params.append(per_tactic)
    if tactic:
        where.append("list_contains(t.tactics, ?)")
        params.append(known_tactic(con, tactic))
    return con.execute(
        f"""SELECT p.pick, p.tactic, p.technique_id, p.technique_name, p.n_reports, p.prevalence, p.signal,
                   p.collection, p.priority, p.priority_rank, p.detected, p.signal_reason, p.missing, p.why
            FROM technique_priority p JOIN attack_techniques t USING (technique_id)
            WHERE {' AND '.join(where)}
            ORDER BY {'p.priority DESC, p.technique_id' if tactic else 'p.pick'} LIMIT ?""",
        [*params, n],
    ).df()


