"""The retag flow: re-tag stored sentences with the current taggers, one report per transaction.

A report is stale when a tagger that decided it has changed since: the classifier (another model
version, or none), the id, name or lexicon tagger (their versions carry a digest of their rule files
and the ATT&CK release, so an edited lexicon or a new catalog is a new version), the sighting rule or
its threshold (``BREACHMINER_SIGHTING_THRESHOLD``), or the advice rule (sentences loaded before it).
A stale report gets the mentions of its changed taggers replaced, its advice sentences stored and its
sightings recomputed from all mentions; the mentions of unchanged taggers stay as they are.
Re-running with the same taggers changes nothing.

``retag_stale`` is also the last step of every ingest run, so a scheduled ingest brings a warehouse
up to date by itself after an upgrade: the frequency tables never mix reports decided by two models,
two lexicons or two rules. A run without the classifier leaves the reports that hold classifier
mentions to a run with it (their sightings were decided with the model's calibrated threshold).

A report whose re-tagging fails keeps its earlier mentions and sightings (its transaction never
commits), the others go on, and the report stays stale, so the next run tries it again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from prefect import flow, get_run_logger

import warehouse.db as wh
from breachminer.catalog import AttackCatalog
from breachminer.progress import report_progress
from breachminer.records import Mention, Sentence, Sighting
from breachminer.settings import get_settings
from extractors.advice import advice_sentences
from extractors.pipeline import warm_up_taggers
from extractors.sightings import SIGHTINGS_KEY, decide_sightings, sighting_rule
from extractors.taggers import Tagger
from flows.deadline import DeadlineExceeded, call_with_deadline
from models.classifier import MODEL_DIR, TechniqueClassifier
from models.tagger import ClassifierTagger, default_taggers, resolve_sighting_threshold, tagger_versions
from warehouse.lock import writer_lock


@flow(name="breachminer-retag")
def retag_flow(db_path: str, model_dir: str | None = None, wait: float = 0.0) -> dict[str, Any]:
    """Re-tag the reports that other versions of the taggers or rules decided; returns counts.

    Holds the warehouse's writer lock, like ingest: the two never interleave.
    """
    with writer_lock(db_path, wait, what="retag"):
        settings = get_settings()
        catalog = AttackCatalog.load(settings.catalog_path)
        model = TechniqueClassifier.load(model_dir or MODEL_DIR) if settings.use_classifier else None
        with wh.connect(db_path, catalog=catalog) as con:
            total = wh.first_row(con, "SELECT count(*) FROM reports")[0]
            before = wh.sighting_count(con)
        outcome = retag_stale(db_path, catalog, model, settings.sighting_threshold, settings.analysis_timeout)
        with wh.connect(db_path, read_only=True) as con:
            after = wh.sighting_count(con)
    used = model.version if model is not None else "the rules only (BREACHMINER_CLASSIFIER=0)"
    get_run_logger().info("retagged %d of %d reports with %s", outcome.retagged, total, used)
    return {"retagged": outcome.retagged, "unchanged": total - outcome.retagged - len(outcome.failures),
            "failed": outcome.failures, "model_version": used,
            "sightings_before": before, "sightings_after": after}


@dataclass
class RetagOutcome:
    """What re-tagging did: reports re-tagged, and each report that failed with its cause."""

    retagged: int = 0
    failures: list[str] = field(default_factory=list)  # "<report_id>: <error class>: <message>"

    @property
    def cause(self) -> str | None:
        """The failures in one line (None when there were none), for a run record."""
        if not self.failures:
            return None
        more = f" (and {len(self.failures) - 1} more)" if len(self.failures) > 1 else ""
        return f"{len(self.failures)} reports not re-scored, e.g. {self.failures[0]}{more}"


def stale_reports(db_path: str, catalog: AttackCatalog, model_version: str | None,
                  sighting_threshold: float) -> list[str]:
    """Reports the current taggers (the classifier only given ``model_version``) and rules, at
    ``sighting_threshold``, did not decide."""
    versions = tagger_versions(catalog, model_version, sighting_threshold)
    skip = ClassifierTagger.method if model_version is None else None
    with wh.connect(db_path, read_only=True) as con:
        return wh.reports_to_retag(con, versions, sighting_rule(sighting_threshold), skip_method=skip)


def retag_stale(db_path: str, catalog: AttackCatalog, model: TechniqueClassifier | None,
                sighting_threshold: float | None = None, deadline: float = 0.0) -> RetagOutcome:
    """Re-tag every stale report with the current taggers (``model`` None: the rules only), one
    transaction each; with a ``deadline`` (seconds) each report's tagging runs in a forked child that is
    stopped when late (``flows.deadline``), like a document's analysis in ingest.

    A report that fails is left as it was and stays stale (see the module doc). The caller holds the
    warehouse's writer lock.
    """
    threshold = resolve_sighting_threshold(sighting_threshold, model)
    todo = stale_reports(db_path, catalog, model.version if model is not None else None, threshold)
    outcome = RetagOutcome()
    if not todo:
        return outcome
    taggers = default_taggers(catalog, model)
    warm_up_taggers(taggers)  # what they build on first use is built here, once, not in every child
    for done, report_id in enumerate(todo, start=1):
        try:
            _retag_report(db_path, report_id, taggers, threshold, deadline)
            outcome.retagged += 1
        except DeadlineExceeded as exc:
            get_run_logger().error("report %s was not re-tagged: tagging %s", report_id, exc)
            outcome.failures.append(f"{report_id}: RetagTimeout: tagging {exc}")
        except Exception as exc:  # recorded with its cause; the next run retries the report
            get_run_logger().error("report %s was not re-tagged: %s: %s", report_id, type(exc).__name__, exc)
            outcome.failures.append(f"{report_id}: {type(exc).__name__}: {exc}")
        report_progress("retag", done, len(todo))
    return outcome


def _retag_report(db_path: str, report_id: str, taggers: list[Tagger], sighting_threshold: float,
                  deadline: float) -> None:
    with wh.connect(db_path, read_only=True) as con:
        sentences = wh.report_sentences(con, report_id)
        stored = wh.report_tagger_versions(con, report_id)
        changed = [tagger for tagger in taggers if stored.get(tagger.method) != tagger.version]
        kept = wh.report_mentions(con, report_id, exclude_methods=[tagger.method for tagger in changed])
    fresh, sightings, advice = call_with_deadline(_tag, (changed, kept, sentences, sighting_threshold), deadline)
    versions = {tagger.method: tagger.version for tagger in changed}
    versions[SIGHTINGS_KEY] = sighting_rule(sighting_threshold)
    with wh.connect(db_path) as con:
        wh.replace_mentions(con, report_id, [tagger.method for tagger in changed], fresh, sightings, versions, advice)


def _tag(changed: list[Tagger], kept: list[Mention], sentences: list[Sentence],
         sighting_threshold: float) -> tuple[list[Mention], list[Sighting], list[int]]:
    """The changed taggers' mentions, the report's sightings and its advice sentences (pure; may run in a child)."""
    fresh = [mention for tagger in changed for mention in tagger.tag(sentences)]
    return fresh, decide_sightings(kept + fresh, sighting_threshold, sentences), sorted(advice_sentences(sentences))


def run_retag(db_path: str, model_dir: str | None = None) -> dict[str, Any]:
    return retag_flow(db_path=db_path, model_dir=model_dir)
