"""The annotated shared reports (``models/annotated_reports*.csv``): well-formed, and scored as documented."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from breachminer.catalog import AttackCatalog
from models.evaluate import ANNOTATED_REPORTS, ANNOTATED_REPORTS_SECOND, _agreement
from models.labelled_set import load_labelled_set, read_labels
from tests.conftest import REPORTS, needs_shared

CATALOG = AttackCatalog.load()


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.parametrize("path", [ANNOTATED_REPORTS, ANNOTATED_REPORTS_SECOND], ids=["first", "second"])
def test_each_annotation_is_clean(path: Path) -> None:
    rows = _rows(path)
    assert list(rows[0]) == ["document", "technique", "certain"]  # no evidence text: the reports are not ours
    assert {r["certain"] for r in rows} == {"yes", "no"}
    pairs = [(r["document"], r["technique"]) for r in rows]
    assert len(pairs) == len(set(pairs))
    truth, ignored = read_labels(path, CATALOG)
    assert ignored == []  # every ID is an active ATT&CK technique of the packaged catalog
    assert len(truth) == 27 and all(len(labels) >= 3 for labels in truth.values())
    assert all("/" not in document for document in truth)  # names of files in <data>/reports


def test_both_annotators_cover_the_same_reports() -> None:
    first, _ = read_labels(ANNOTATED_REPORTS, CATALOG)
    second, _ = read_labels(ANNOTATED_REPORTS_SECOND, CATALOG)
    assert set(first) == set(second)


def test_agreement_is_symmetric_micro_f1() -> None:
    first = {"a": {"T1059.001", "T1105"}, "b": {"T1566.001"}}
    second = {"a": {"T1059.003", "T1105", "T1027"}, "b": set()}
    assert _agreement(first, second, lambda t: t) == round(2 * 1 / (3 + 3), 4)
    assert _agreement(first, second, CATALOG.parent_of_any) == round(2 * 2 / (3 + 3), 4)  # T1059 at parent level
    assert _agreement(second, first, CATALOG.parent_of_any) == _agreement(first, second, CATALOG.parent_of_any)


def test_documents_resolve_against_the_given_folder(tmp_path) -> None:
    labels = tmp_path / "labels" / "labels.csv"
    labels.parent.mkdir()
    labels.write_text("document,technique\nreport.txt,T1105\n", encoding="utf-8")
    reports = tmp_path / "reports"
    reports.mkdir()
    body = "The loader downloads a second stage over HTTP and runs it from the user's temporary folder. " * 20
    (reports / "report.txt").write_text(f"Loader report\n\n{body}\n", encoding="utf-8")
    by_csv_folder = load_labelled_set(labels, CATALOG)
    assert by_csv_folder.reports == [] and "missing" in by_csv_folder.skipped["report.txt"]
    by_reports_folder = load_labelled_set(labels, CATALOG, documents_dir=reports)
    assert by_reports_folder.skipped == {}
    assert [r.name for r in by_reports_folder.reports] == ["report.txt"]
    assert by_reports_folder.reports[0].labels == {"T1105"}


@needs_shared
def test_every_annotated_report_is_in_the_shared_reports_and_has_text() -> None:
    labelled = load_labelled_set(ANNOTATED_REPORTS, CATALOG, documents_dir=REPORTS)
    assert labelled.skipped == {}
    assert len(labelled.reports) == 27
    assert all(len(r.text) > 5000 for r in labelled.reports)


def test_without_the_shared_reports_every_document_is_skipped_with_its_reason(tmp_path) -> None:
    from models.evaluate import evaluate_annotated
    from models.tagger import default_taggers, load_model, resolve_sighting_threshold

    model = load_model()
    messages: list[str] = []
    results = evaluate_annotated(tmp_path / "no-reports", CATALOG, model, default_taggers(CATALOG, model),
                                 resolve_sighting_threshold(None, model), None, messages.append)
    assert results["reports"] == 0 and results["truth_pairs"] == 0 and results["per_report"] == []
    assert len(results["skipped"]) == 27
    assert all(why.startswith("missing: ") for why in results["skipped"].values())
    assert results["hybrid_margin_parent_micro"] is None
    assert "tagging 0 annotated shared reports (27 skipped)" in messages
