"""`breachminer evaluate --labels`: a user's own annotated reports, read, scored and reported.

Runs without ../shared: the documents are the repo's own sample reports and small texts written here.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from conftest import SAMPLES
from typer.testing import CliRunner

from breachminer.catalog import AttackCatalog
from breachminer.cli import app
from models.classifier import MODEL_DIR
from models.evaluate import scores
from models.labelled_set import LabelsFileError, load_labelled_set, read_labels

runner = CliRunner()
needs_model = pytest.mark.skipif(not (MODEL_DIR / "model-card.json").exists(),
                                 reason="no shipped model in models/artifacts")
LONG_TEXT = ("The intruders ran vssadmin delete shadows /all /quiet on every file server before the encryptor "
             "started, and they cleared the Security event log with wevtutil cl Security afterwards. ") * 3


@pytest.fixture(scope="module")
def catalog() -> AttackCatalog:
    return AttackCatalog.load()


def _write(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows(rows)
    return path


def test_labels_merge_rows_resolve_revoked_ids_and_report_bad_ones(tmp_path, catalog) -> None:
    labels = _write(tmp_path / "labels.csv", [
        ["document", "techniques", "evidence"],
        ["a.txt", "T1490; t1070.001", "quote"],
        ["a.txt", "T1086,T1O59 T1064", ""],  # revoked → T1059.001; a typo; deprecated with no replacement
        ["b.txt", "", ""],  # a report where nothing was observed
        ["", "T1486", ""],  # no document
    ])
    truth, ignored = read_labels(labels, catalog)
    assert truth == {"a.txt": {"T1490", "T1070.001", "T1059.001"}, "b.txt": set()}
    assert [(i.row, i.label) for i in ignored] == [(3, "T1O59"), (3, "T1064"), (5, "T1486")]
    assert "not an ATT&CK" in ignored[0].reason and "deprecated" in ignored[1].reason
    assert ignored[2].reason == "row has no document"


def test_one_technique_per_row_is_accepted_too(tmp_path, catalog) -> None:
    labels = tmp_path / "labels.csv"
    labels.write_text("\ufeffDocument,Technique\na.txt,T1490\na.txt,T1486\n", encoding="utf-8")  # BOM, capitals
    assert read_labels(labels, catalog)[0] == {"a.txt": {"T1490", "T1486"}}


@pytest.mark.parametrize("content, message", [
    ("file,ids\na.txt,T1490\n", "needs a 'document' column"),
    (None, "labels file not found"),
])
def test_unusable_label_files_are_clear_errors(tmp_path, catalog, content, message) -> None:
    labels = tmp_path / "labels.csv"
    if content is not None:
        labels.write_text(content, encoding="utf-8")
    with pytest.raises(LabelsFileError, match=message):
        read_labels(labels, catalog)


def test_documents_resolve_from_the_csv_folder_and_failures_are_skipped_with_a_reason(tmp_path, catalog) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "long.txt").write_text(LONG_TEXT, encoding="utf-8")
    (tmp_path / "docs" / "short.txt").write_text("Too short.", encoding="utf-8")
    (tmp_path / "docs" / "broken.pdf").write_bytes(b"%PDF-1.7\n this is not a PDF body")
    labels = _write(tmp_path / "labels.csv", [
        ["document", "techniques"],
        ["docs/long.txt", "T1490 T1070.001"],
        ["docs/short.txt", "T1490"],
        ["docs/broken.pdf", "T1490"],
        [str(tmp_path / "missing.html"), "T1490"],
    ])
    labelled = load_labelled_set(labels, catalog)
    assert [r.name for r in labelled.reports] == ["docs/long.txt"]
    assert "vssadmin" in labelled.reports[0].text and labelled.reports[0].labels == {"T1490", "T1070.001"}
    assert set(labelled.skipped) == {"docs/short.txt", "docs/broken.pdf", str(tmp_path / "missing.html")}
    assert labelled.skipped[str(tmp_path / "missing.html")].startswith("missing:")
    assert "pdf" in labelled.skipped["docs/broken.pdf"].lower()


@pytest.mark.parametrize("name", ["labels.csv", "labels-second-annotator.csv"])
def test_the_committed_sample_annotations_are_complete_and_current(catalog, name) -> None:
    truth, ignored = read_labels(SAMPLES / name, catalog)
    assert ignored == [] and set(truth) == {p.name for p in SAMPLES.iterdir() if p.suffix in (".pdf", ".html", ".txt")}
    assert all(len(labels) >= 20 for labels in truth.values())


@needs_model
def test_evaluate_labels_on_the_annotated_samples(tmp_path) -> None:
    """The committed annotation of the four sample reports, scored as a user would run it."""
    out = tmp_path / "eval.json"
    result = runner.invoke(app, ["evaluate", "--labels", str(SAMPLES / "labels.csv"), "--no-baseline",
                                 "--json", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "Your labelled reports: 4 documents" in result.output and "hybrid minus each method" in result.output
    results = json.loads(out.read_text())
    truth_rows = list(csv.DictReader((SAMPLES / "labels.csv").open(encoding="utf-8")))
    assert results["reports"] == 4 and results["truth_pairs"] == len(truth_rows) and not results["skipped"]
    assert set(results["methods"]) == {"id", "name", "lexicon", "classifier", "hybrid"}
    assert results["ignored_labels"] == [] and results["universe"] == "all"
    catalog = AttackCatalog.load()
    truth = {row["report"]: set(row["truth"]) for row in results["per_report"]}
    for method, levels in results["methods"].items():  # the table is exactly the per-report predictions, scored
        predicted = {row["report"]: set(row[method]) for row in results["per_report"]}
        recomputed = scores(predicted, truth, set(catalog.active), catalog.parent_of_any)["micro"]
        assert recomputed == levels["parent"]["micro"], method
    assert "In the measures published report-level mappers quote" in result.output
    evidence = {(row["document"], row["technique"]) for row in truth_rows}
    assert all((row["report"], t) in evidence for row in results["per_report"] for t in row["truth"])


@needs_model
def test_the_labelled_universe_judges_only_techniques_that_occur_in_the_labels(tmp_path) -> None:
    (tmp_path / "long.txt").write_text(LONG_TEXT, encoding="utf-8")
    labels = _write(tmp_path / "labels.csv", [["document", "techniques"], ["long.txt", "T1490"]])
    out = tmp_path / "eval.json"
    result = runner.invoke(app, ["evaluate", "--labels", str(labels), "--universe", "labelled", "--no-baseline",
                                 "--json", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    results = json.loads(out.read_text())
    assert results["label_universe"] == 1
    hybrid = results["per_report"][0]["hybrid"]
    assert "T1490" in hybrid and "T1070.001" in hybrid  # predicted, but T1070 is not judged in this universe
    assert results["methods"]["hybrid"]["parent"]["micro"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0}


@needs_model
@pytest.mark.parametrize("extra, message", [
    (["--universe", "everything"], "--universe must be"),
    (["--update-card"], "cannot be combined with --labels"),
])
def test_evaluate_labels_refuses_bad_options(tmp_path, extra, message) -> None:
    labels = _write(tmp_path / "labels.csv", [["document", "techniques"], ["a.txt", "T1490"]])
    result = runner.invoke(app, ["evaluate", "--labels", str(labels), "--no-baseline", *extra])
    assert result.exit_code == 1 and message in result.output


@needs_model
def test_evaluate_labels_fails_clearly_when_nothing_can_be_scored(tmp_path) -> None:
    labels = _write(tmp_path / "labels.csv", [["document", "techniques"], ["absent.pdf", "T1490"]])
    result = runner.invoke(app, ["evaluate", "--labels", str(labels), "--no-baseline"])
    assert result.exit_code == 1 and "no document of" in result.output and "skipped absent.pdf" in result.output


@needs_model
def test_every_method_but_the_baseline_sets_advice_aside(catalog) -> None:
    """The classifier alone, like the hybrid and the rules, does not count what defenders are told to do."""
    from models.evaluate import _predict
    from models.tagger import default_taggers, load_model, resolve_sighting_threshold

    model = load_model()
    threshold = resolve_sighting_threshold(None, model)
    advice = "Implement phishing-resistant MFA and audit scheduled tasks created with schtasks.exe.\n\n"
    observation = "The actors created a scheduled task with schtasks.exe to relaunch the loader at logon.\n\n"
    taggers = default_taggers(catalog, model)
    told = _predict({"a": advice * 3}, model, taggers, threshold, None)
    seen = _predict({"a": observation * 3}, model, taggers, threshold, None)
    for method in ("name", "lexicon", "classifier", "hybrid"):
        assert not {t for t in told[method]["a"] if t.startswith("T1053")}, method
    assert "T1053.005" in seen["classifier"]["a"] and "T1053.005" in seen["hybrid"]["a"]
