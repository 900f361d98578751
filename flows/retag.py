"""The retag flow: re-score stored sentences with the current classifier, one report per transaction.

Reports whose classifier mentions came from another model version (or none), whose sightings were
decided by another version of the sighting rule, or whose sentences were loaded before the advice rule,
get their classifier mentions replaced, their advice sentences stored and their sightings recomputed
from all mentions; the other methods' mentions stay as they are. Re-running with the same model and
rule changes nothing.

``retag_stale`` is also the last step of every ingest run that uses the classifier, so a scheduled
ingest brings a warehouse up to date by itself after the model or the rule changes (an upgrade): the
frequency tables never mix reports decided by two models or two rules.

A report whose re-scoring fails keeps its earlier mentions and sightings (its transaction never
commits), the others go on, and the report stays stale, so the next run tries it again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from prefect import flow, get_run_logger

import warehouse.db as wh
from breachminer.catalog import AttackCatalog
from breachminer.progress import report_progress
from breachminer.settings import get_settings
from extractors.advice import advice_sentences
from extractors.sightings import RULE_VERSION, decide_sightings
from models.classifier import MODEL_DIR, TechniqueClassifier
from models.tagger import ClassifierTagger
from warehouse.lock import writer_lock


@flow(name="breachminer-retag")
def retag_flow(db_path: str, model_dir: str | None = None, wait: float = 0.0) -> dict[str, Any]:
    """Replace classifier mentions made by other model versions; returns counts.

    Holds the warehouse's writer lock, like ingest: the two never interleave.
    """
    with writer_lock(db_path, wait, what="retag"):
        settings = get_settings()
        catalog = AttackCatalog.load(settings.catalog_path)
        model = TechniqueClassifier.load(model_dir or MODEL_DIR)
        with wh.connect(db_path, catalog=catalog) as con:
            total = wh.first_row(con, "SELECT count(*) FROM reports")[0]
            before = wh.sighting_count(con)
        outcome = retag_stale(db_path, model, settings.sighting_threshold)
        with wh.connect(db_path, read_only=True) as con:
            after = wh.sighting_count(con)
    get_run_logger().info("retagged %d of %d reports with %s", outcome.retagged, total, model.version)
    return {"retagged": outcome.retagged, "unchanged": total - outcome.retagged - len(outcome.failures),
            "failed": outcome.failures, "model_version": model.version,
            "sightings_before": before, "sightings_after": after}


@dataclass
class RetagOutcome:
    """What re-scoring did: reports re-scored, and each report that failed with its cause."""

    retagged: int = 0
    failures: list[str] = field(default_factory=list)  # "<report_id>: <error class>: <message>"

    @property
    def cause(self) -> str | None:
        """The failures in one line (None when there were none), for a run record."""
        if not self.failures:
            return None
        more = f" (and {len(self.failures) - 1} more)" if len(self.failures) > 1 else ""
        return f"{len(self.failures)} reports not re-scored, e.g. {self.failures[0]}{more}"


def stale_reports(db_path: str, model_version: str) -> list[str]:
    """Reports that ``model_version`` and the current sighting rule did not decide (see the module doc)."""
    with wh.connect(db_path, read_only=True) as con:
        return wh.reports_to_retag(con, ClassifierTagger.method, model_version, RULE_VERSION)


def retag_stale(db_path: str, model: TechniqueClassifier, sighting_threshold: float | None = None) -> RetagOutcome:
    """Re-score every stale report with ``model``, one transaction each.

    A report that fails is left as it was and stays stale (see the module doc). The caller holds the
    warehouse's writer lock.
    """
    tagger = ClassifierTagger(model, sighting_threshold)
    todo = stale_reports(db_path, tagger.version)
    outcome = RetagOutcome()
    for done, report_id in enumerate(todo, start=1):
        try:
            _retag_report(db_path, report_id, tagger)
            outcome.retagged += 1
        except Exception as exc:  # recorded with its cause; the next run retries the report
            get_run_logger().error("report %s was not re-scored: %s: %s", report_id, type(exc).__name__, exc)
            outcome.failures.append(f"{report_id}: {type(exc).__name__}: {exc}")
        report_progress("retag", done, len(todo))
    return outcome


def _retag_report(db_path: str, report_id: str, tagger: ClassifierTagger) -> None:
    with wh.connect(db_path, read_only=True) as con:
        sentences = wh.report_sentences(con, report_id)
        kept = wh.report_mentions(con, report_id, exclude_method=tagger.method)
    fresh = tagger.tag(sentences)
    sightings = decide_sightings(kept + fresh, tagger.sighting_threshold, sentences)
    with wh.connect(db_path) as con:
        wh.replace_method_mentions(con, report_id, tagger.method, tagger.version, fresh, sightings,
                                   sorted(advice_sentences(sentences)))


def run_retag(db_path: str, model_dir: str | None = None) -> dict[str, Any]:
    return retag_flow(db_path=db_path, model_dir=model_dir)
