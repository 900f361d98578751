"""Exports of the frequency and priority tables: ATT&CK Navigator layers (layer format 4.5).

A layer colours each technique of the Enterprise matrix by how many reports have a sighting of it, so
the frequency table can be read where detection engineers already plan coverage. It holds the same
rows as ``breachminer top`` with the same options: the top-N techniques at parent level (sub-techniques
rolled up; the sub-techniques seen are added with their own counts, shown when a parent is
expanded) or at exact level, overall or within one
tactic. Each entry carries its count, share, rank and the newest reports behind it, so a cell in the
Navigator can be traced back to ``breachminer evidence``.

``priority_layer`` does the same for ``breachminer prioritize``: each pick coloured by its priority in
the column of the tactic it was picked for, with every part of its score in the cell's metadata.
``csv_text`` is how every CSV of the tool holds a table: a list cell (the tactics of a technique, the
data components a priority lacks) as its items joined by "; ", never as an array's repr.
``write_exports`` writes the top-N and priority tables as CSV files and layers, and the HTML summary
(``warehouse.html_summary``), into one folder, each
file replaced whole (a dashboard reading it never sees half a file): what a scheduled run leaves for
the people who read its results.

Layer format: https://github.com/mitre-attack/attack-navigator/blob/master/layers/LAYERFORMATv4_5.md
The layer names ATT&CK techniques; it carries ATT&CK's notice (``breachminer.catalog.ATTACK_NOTICE``).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from breachminer.catalog import ATTACK_NOTICE
from warehouse.db import ReportScope, counted_report_total, first_row, tactic_shortname, top_techniques
from warehouse.html_summary import html_summary
from warehouse.priorities import priorities

LAYER_FORMAT = "4.5"
NAVIGATOR_VERSION = "5.1.0"
EXAMPLE_REPORTS = 3
SUMMARY_LIMIT = 25  # summary.html shows the first 25 of the exported rows: a page people read, not a table dump
# white for no sighting, to a saturated red for the most frequent technique (two colours: MITRE's
# mitreattack-python cannot read a gradient with more colours than its score range has steps)
GRADIENT_COLORS = ["#ffffff", "#d32f2f"]


def navigator_layer(con: duckdb.DuckDBPyConnection, n: int = 20, level: str = "parent",
                    tactic: str | None = None, scope: ReportScope | None = None) -> dict[str, Any]:
    """The top-``n`` techniques (as ``top_techniques`` selects them) as a Navigator layer (a JSON object);
    ``scope``: the reports the connection counts (``scope_reports``), named in the layer.

    Scores are report counts; the gradient runs from 0 to the largest count. Within a tactic, each entry
    is tied to that tactic's column (a technique listed under several tactics is coloured only there).
    """
    frame = top_techniques(con, n, level, tactic)
    total = counted_report_total(con)
    attack_version = (first_row(con, "SELECT value FROM meta WHERE key = 'attack_version'") or [None])[0]
    shortname = tactic_shortname(tactic) if tactic else None
    techniques = []
    for row in frame.itertuples(index=False):
        technique_id, n_reports, share = str(row.technique_id), int(row.n_reports), float(row.share)
        metadata = [{"name": "reports", "value": f"{n_reports} of {total}"},
                    {"name": "share of reports", "value": f"{share:.1%}"},
                    {"name": "rank" + (f" in {shortname}" if shortname else ""), "value": str(int(row.rank))}]
        subs = _sub_techniques(con, technique_id) if level == "parent" else []
        # no divider objects: MITRE's mitreattack-python (navlayers) drops them with a warning
        metadata += [{"name": sub_id, "value": f"{sub_name}: {_reports(sub_n)}"} for sub_id, sub_name, sub_n, _ in subs]
        metadata += [{"name": "report", "value": title} for title in _newest_reports(con, technique_id, level)]
        techniques.append(_entry(technique_id, n_reports, share, total, metadata, shortname))
        # at parent level, the sub-techniques seen get their own (exact) counts, shown when expanded
        techniques += [_entry(sub_id, sub_n, sub_share, total, [{"name": "reports", "value": f"{sub_n} of {total}"}],
                              shortname) for sub_id, _, sub_n, sub_share in subs]
    what = f"{level} level" + (f", tactic {shortname}" if shortname else "") + (
        f", reports with {scope.describe()}" if scope else "")
    return _layer(f"breachminer: top {len(frame)} techniques ({what})",
                  f"How many of {total} threat reports have a sighting of each technique ({what}; a report counts "
                  "once for each technique its text supports)", techniques, total, attack_version,
                  select_across_tactics=True)


def priority_layer(con: duckdb.DuckDBPyConnection, frame: Any, level: str = "parent") -> dict[str, Any]:
    """The picks of ``warehouse.priorities.priorities`` (its DataFrame) as a Navigator layer.

    Scores are priorities × 100 (the gradient runs from 0 to the highest); each entry sits in the column
    of the tactic it was picked for, and its metadata holds the pick, every part and its reason.
    """
    total = counted_report_total(con)
    attack_version = (first_row(con, "SELECT value FROM meta WHERE key = 'attack_version'") or [None])[0]
    techniques = []
    for row in frame.itertuples(index=False):
        parts = [("pick", str(int(row.pick))), ("priority", f"{row.priority:.3f}"),
                 ("prevalence", f"{row.prevalence:.2f} ({_reports(int(row.n_reports))} of {total})"),
                 ("signal", f"{row.signal:.2f} ({row.signal_reason})")]
        if not (row.collection is None or math.isnan(row.collection)):  # NaN: telemetry not declared
            missing = list(row.missing) if row.missing is not None else []
            parts.append(("collection", f"{row.collection:.2f}" + (f" (missing {', '.join(missing)})" if missing
                                                                   else "")))
        entry = {
            "techniqueID": str(row.technique_id),
            "score": round(100 * float(row.priority)),
            "comment": f"{row.why}; evidence: breachminer evidence {row.technique_id}",
            "enabled": True,
            "metadata": [{"name": name, "value": value} for name, value in parts],
            "showSubtechniques": False,
        }
        if isinstance(row.tactic, str):
            entry["tactic"] = row.tactic
        techniques.append(entry)
    return _layer(f"breachminer: detect first, {len(techniques)} techniques ({level} level)",
                  f"What to build detections for first: priority = prevalence in {total} threat reports × "
                  f"signal-to-noise × share of data components collected ({level} level)", techniques, total,
                  attack_version, select_across_tactics=False)


def _layer(name: str, what: str, techniques: list[dict[str, Any]], total: int, attack_version: str | None,
           select_across_tactics: bool) -> dict[str, Any]:
    """A layer around ``techniques`` entries: the gradient from 0 to the highest score, ATT&CK's notice."""
    highest = max((entry["score"] for entry in techniques), default=1)
    return {
        "name": name,
        "versions": {"attack": _major(attack_version), "navigator": NAVIGATOR_VERSION, "layer": LAYER_FORMAT},
        "domain": "enterprise-attack",
        "description": f"{what}, exported by breachminer on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC from ATT&CK "
                       f"Enterprise v{attack_version}. {ATTACK_NOTICE}",
        "sorting": 3,  # by score, descending
        "layout": {"layout": "side", "showID": True, "showName": True, "expandedSubtechniques": "none"},
        "hideDisabled": False,
        "techniques": techniques,
        "gradient": {"colors": GRADIENT_COLORS, "minValue": 0, "maxValue": max(highest, 1)},
        "legendItems": [],
        "metadata": [{"name": "reports", "value": str(total)}],
        "showTacticRowBackground": False,
        "selectTechniquesAcrossTactics": select_across_tactics,
        "selectSubtechniquesWithParent": False,
    }


EXPORT_FILES = ("top-techniques.csv", "top-techniques.layer.json", "priorities.csv", "priorities.layer.json",
                "summary.html")


def write_exports(con: duckdb.DuckDBPyConnection, directory: Path, n: int = 50) -> list[Path]:
    """The parent-level top ``n`` (as ``breachminer top -n N --csv/--layer`` writes them), the first ``n``
    priorities under the stored profile (as ``breachminer prioritize -n N --csv/--layer``) and the HTML
    summary of the first 25 (``breachminer summary``) into ``directory``; returns the files written. Each
    file is written beside itself, and only when all are written are they renamed over the old ones: a
    write that fails (a full disk) leaves the old set whole and no partial file behind."""
    directory.mkdir(parents=True, exist_ok=True)
    top = top_techniques(con, n)
    picks = priorities(con, n)
    contents = {
        "top-techniques.csv": csv_text(top),
        "top-techniques.layer.json": _json(navigator_layer(con, n)),
        "priorities.csv": csv_text(picks),
        "priorities.layer.json": _json(priority_layer(con, picks)),
        "summary.html": html_summary(con, min(n, SUMMARY_LIMIT)),
    }
    partials = {name: _partial(directory / name) for name in EXPORT_FILES}
    try:
        for name in EXPORT_FILES:
            partials[name].write_text(contents[name], encoding="utf-8")
    except BaseException:
        for partial in partials.values():
            with contextlib.suppress(OSError):
                partial.unlink(missing_ok=True)
        raise
    for name in EXPORT_FILES:
        os.replace(partials[name], directory / name)
    return [directory / name for name in EXPORT_FILES]


LIST_SEPARATOR = "; "


def csv_text(frame: Any) -> str:
    """A DataFrame as CSV text, each list cell (a Python list or the numpy array of a LIST column) as its
    items joined by ``LIST_SEPARATOR``: a spreadsheet reads it, and no array repr ("['a' 'b']", wrapped
    at 75 characters) reaches the file."""
    import numpy as np

    def cell(value: Any) -> Any:
        if isinstance(value, (list, tuple, np.ndarray)):
            return LIST_SEPARATOR.join(str(item) for item in (value.tolist() if hasattr(value, "tolist") else value))
        return value

    listed = [column for column in frame.columns
              if frame[column].dtype == object and frame[column].map(
                  lambda v: isinstance(v, (list, tuple, np.ndarray))).any()]
    return frame.assign(**{column: frame[column].map(cell) for column in listed}).to_csv(index=False)


def write_csv(frame: Any, target: Path) -> None:
    """``csv_text`` of ``frame``, replacing ``target`` whole (``replace_file``)."""
    replace_file(target, csv_text(frame))


def replace_file(target: Path, text: str) -> None:
    """Write ``text`` beside ``target`` and rename it over ``target``: a reader sees the old file or the new one."""
    partial = _partial(target)
    try:
        partial.write_text(text, encoding="utf-8")
    except BaseException:
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)
        raise
    os.replace(partial, target)


def _partial(target: Path) -> Path:
    return target.with_name(f".{target.name}.partial")


def _json(layer: dict[str, Any]) -> str:
    return json.dumps(layer, indent=2, ensure_ascii=False) + "\n"


def _entry(technique_id: str, n_reports: int, share: float, total: int, metadata: list[dict[str, Any]],
           tactic: str | None) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "techniqueID": technique_id,
        "score": n_reports,
        "comment": f"Sighted in {n_reports} of {total} reports ({share:.1%}); "
                   f"evidence: breachminer evidence {technique_id}",
        "enabled": True,
        "metadata": metadata,
        "showSubtechniques": False,
    }
    if tactic:
        entry["tactic"] = tactic
    return entry


def _reports(n: int) -> str:
    return f"{n} report" if n == 1 else f"{n} reports"


def _sub_techniques(con: duckdb.DuckDBPyConnection, parent_id: str) -> list[tuple[str, str, int, float]]:
    return con.execute(
        """SELECT technique_id, technique_name, n_reports, share FROM technique_frequency
           WHERE level = 'exact' AND technique_id LIKE ? ORDER BY n_reports DESC, technique_id""",
        [parent_id + ".%"],
    ).fetchall()


def _newest_reports(con: duckdb.DuckDBPyConnection, technique_id: str, level: str) -> list[str]:
    rows = con.execute(
        """SELECT coalesce(title, report_id) FROM report_techniques WHERE level = ? AND technique_id = ?
           ORDER BY published DESC NULLS LAST, report_id LIMIT ?""",
        [level, technique_id, EXAMPLE_REPORTS],
    ).fetchall()
    return [row[0] for row in rows]


def _major(attack_version: str | None) -> str:
    """Navigator names ATT&CK by its major version ("18" for 18.1)."""
    return str(attack_version).split(".")[0] if attack_version else ""
