"""train / evaluate / retag as a user runs them, on the real training data (skipped without ../shared),
and the hybrid tagger inside ingest with the shipped model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import SAMPLES, SHARED_DATA, needs_shared
from typer.testing import CliRunner

import warehouse.db as wh
from breachminer.catalog import AttackCatalog
from breachminer.cli import app
from extractors.sightings import sighting_rule
from flows.ingest import run_ingest
from models.classifier import MODEL_DIR, TechniqueClassifier
from models.train import sentences_digest, train
from models.training_data import load_training_data
from warehouse.lock import writer_lock

runner = CliRunner()
SHIPPED = MODEL_DIR / "model-card.json"
needs_model = pytest.mark.skipif(not SHIPPED.exists(), reason="no shipped model in models/artifacts")
CURRENT_RULE = sighting_rule(json.loads(SHIPPED.read_text())["hybrid_sighting_threshold"]) if SHIPPED.exists() else ""


@needs_model
def test_shipped_model_is_small_versioned_and_loads() -> None:
    card = json.loads(SHIPPED.read_text())
    model = TechniqueClassifier.load()
    assert (MODEL_DIR / card["artifact"]).stat().st_size <= 25 * 1024 * 1024
    assert card["attack_version"] == "18.1" and len(card["labels"]) >= 650  # descriptions: nearly every technique
    assert {"T1621", "T1564.008", "T1550.004", "T1098.005"} <= set(card["labels"])  # cloud and identity ones too
    judged = card["training_data"]["labels_judged_by_validation"]  # only these may have their own thresholds
    assert 0 < judged < len(card["labels"])
    assert len(card["thresholds"]) <= judged and len(card["hybrid_thresholds"]) <= judged
    assert {"scikit-learn", "numpy", "scipy"} <= set(card["libraries"])
    assert card["training_data"]["removed_leaks"] > 0 and card["training_data"]["files_sha256"]
    scores = model.predict_proba(["The attackers deleted volume shadow copies with vssadmin to prevent recovery."])
    assert model.labels[int(scores.argmax())] == "T1490"


@needs_model
@pytest.mark.usefixtures("prefect_harness")
def test_ingest_uses_the_classifier_and_retag_replaces_it(db_file, monkeypatch) -> None:
    manifest = str(SAMPLES.parent / "samples.csv")
    monkeypatch.setenv("BREACHMINER_CLASSIFIER", "0")
    run_ingest([manifest], str(db_file), workers=1)
    with wh.connect(db_file, read_only=True) as con:
        assert wh.first_row(con, "SELECT count(*) FROM mentions WHERE method = 'classifier'")[0] == 0
        before = wh.sighting_count(con)
    monkeypatch.delenv("BREACHMINER_CLASSIFIER")
    result = runner.invoke(app, ["retag", "--db", str(db_file)], catch_exceptions=False)
    assert result.exit_code == 0 and "retagged 4 reports" in result.output
    with wh.connect(db_file, read_only=True) as con:
        versions = con.execute("SELECT DISTINCT model_version FROM mentions WHERE method = 'classifier'").fetchall()
        after = wh.sighting_count(con)
        kept = wh.first_row(con, "SELECT count(*) FROM mentions WHERE method <> 'classifier'")[0]
    assert versions == [(TechniqueClassifier.load().version,)]
    assert after > before and kept > 0
    again = runner.invoke(app, ["retag", "--db", str(db_file)], catch_exceptions=False)
    assert "retagged 0 reports" in again.output
    # sightings decided by an older rule are recomputed by the current one
    with wh.connect(db_file) as con:
        [(stale,)] = con.execute("SELECT min(report_id) FROM sightings").fetchall()
        con.execute("UPDATE sightings SET rule = 'noisy-or-top2-v2' WHERE report_id = ?", [stale])
        con.execute("UPDATE sentences SET advice = NULL WHERE report_id = ?", [stale])  # as before the rule
    rule_change = runner.invoke(app, ["retag", "--db", str(db_file)], catch_exceptions=False)
    assert "retagged 1 reports" in rule_change.output
    with wh.connect(db_file, read_only=True) as con:
        assert con.execute("SELECT DISTINCT rule FROM sightings").fetchall() == [(CURRENT_RULE,)]
        assert wh.first_row(con, "SELECT count(*) FROM sentences WHERE advice IS NULL")[0] == 0
    # sentences never assessed for advice (loaded before the rule) are assessed, sightings or not
    with wh.connect(db_file) as con:
        con.execute("DELETE FROM sightings WHERE report_id = ?", [stale])
        con.execute("UPDATE sentences SET advice = NULL WHERE report_id = ?", [stale])
    unassessed = runner.invoke(app, ["retag", "--db", str(db_file)], catch_exceptions=False)
    assert "retagged 1 reports" in unassessed.output
    with wh.connect(db_file, read_only=True) as con:
        assert wh.first_row(con, "SELECT count(*) FROM sentences WHERE advice IS NULL")[0] == 0
        assert wh.sighting_count(con) == after


@needs_model
@pytest.mark.usefixtures("prefect_harness")
def test_a_scheduled_ingest_catches_up_after_the_model_or_rule_changes(db_file, monkeypatch, tmp_path) -> None:
    """Reports loaded before an upgrade are re-scored by the next ingest, with nothing new to load: the
    frequency tables never mix two models or two rules, even when nobody runs ``retag``."""
    manifest = str(SAMPLES.parent / "samples.csv")
    monkeypatch.setenv("BREACHMINER_CLASSIFIER", "0")  # as loaded by a version without the classifier
    run_ingest([manifest], str(db_file), workers=1)
    monkeypatch.delenv("BREACHMINER_CLASSIFIER")
    with wh.connect(db_file, read_only=True) as con:
        loaded = wh.sighting_count(con)

    # a botched upgrade: the model file does not match its card. The run records why and completes.
    broken = tmp_path / "broken-model"
    shutil.copytree(MODEL_DIR, broken)
    npz = next(broken.glob("*.npz"))
    npz.write_bytes(npz.read_bytes()[:-100])
    monkeypatch.setenv("BREACHMINER_MODEL_DIR", str(broken))
    result = runner.invoke(app, ["ingest", manifest, "--db", str(db_file)], catch_exceptions=False)
    assert result.exit_code == 0 and "4 reports not re-scored: the model did not load" in result.output
    with wh.connect(db_file, read_only=True) as con:
        [(status, retagged, cause)] = con.execute(
            "SELECT status, n_retagged, retag_error FROM runs ORDER BY started_at DESC LIMIT 1").fetchall()
        assert (status, retagged) == ("completed", 0) and "does not match its model card" in cause
        assert wh.sighting_count(con) == loaded  # nothing lost
    monkeypatch.delenv("BREACHMINER_MODEL_DIR")

    result = runner.invoke(app, ["ingest", manifest, "--db", str(db_file)], catch_exceptions=False)
    assert result.exit_code == 0 and "0 new" in result.output
    assert "4 loaded reports re-scored" in result.output
    with wh.connect(db_file, read_only=True) as con:
        versions = con.execute("SELECT DISTINCT model_version FROM mentions WHERE method = 'classifier'").fetchall()
        assert versions == [(TechniqueClassifier.load().version,)]
        assert con.execute("SELECT n_new, n_retagged FROM runs ORDER BY started_at DESC LIMIT 1").fetchall() == [
            (0, 4)]
        current = wh.sighting_count(con)
        assert f"({current - loaded:+d} sightings)" in result.output  # the net change, not "0 added"
        [(stale,)] = con.execute("SELECT min(report_id) FROM sightings").fetchall()
    assert run_ingest([manifest], str(db_file), workers=1)["retagged"] == 0  # up to date: nothing to do
    with wh.connect(db_file) as con:  # one report decided by an older sighting rule
        con.execute("UPDATE sightings SET rule = 'noisy-or-top2-v2' WHERE report_id = ?", [stale])
    assert run_ingest([manifest], str(db_file), workers=1)["retagged"] == 1
    with wh.connect(db_file, read_only=True) as con:
        assert con.execute("SELECT DISTINCT rule FROM sightings").fetchall() == [(CURRENT_RULE,)]
        assert wh.sighting_count(con) == current


@pytest.mark.usefixtures("prefect_harness")
def test_retag_is_refused_while_an_ingest_writes(db_file) -> None:
    with writer_lock(db_file, what="ingest"):
        result = CliRunner().invoke(app, ["retag", "--db", str(db_file)])
    assert result.exit_code == 1 and "another ingest" in result.output
    assert not db_file.exists()  # nothing was written


@needs_shared
def test_training_path_on_a_slice_of_the_real_data(tmp_path) -> None:
    catalog = AttackCatalog.load()
    data = load_training_data(SHARED_DATA, catalog)
    if SHIPPED.exists():  # `breachminer train` would train the shipped model on exactly these sentences
        shipped = json.loads(SHIPPED.read_text())["training_data"]
        assert shipped["sentences_sha256"] == sentences_digest(data.sentences), (
            "the training sentences changed since the shipped model was trained (e.g. what is withheld for the "
            "vendor set): retrain with `breachminer train` so the shipped model is reproducible")
    sources = {"attack-procedure": 3000, "tram-report": 6000, "tram-negative": 1500}
    taken: dict[str, int] = {}
    subset = []
    for sentence in data.sentences:
        if taken.get(sentence.source, 0) < sources.get(sentence.source, 0):
            taken[sentence.source] = taken.get(sentence.source, 0) + 1
            subset.append(sentence)
    data.sentences = subset
    model, report = train(SHARED_DATA, catalog, data=data, word_features=5000, char_features=5000, epochs=3)
    assert report.n_labels > 20 and 0 < report.threshold < 1
    path = model.save(tmp_path)
    loaded = TechniqueClassifier.load(tmp_path)
    assert loaded.labels == model.labels and path.exists()
    card = json.loads((tmp_path / "model-card.json").read_text())
    assert card["seed"] == 20261127 and card["calibration"]["validation_f1"] == round(report.validation_f1, 4)
    assert card["training_data"]["sentences_sha256"] == sentences_digest(subset)


@needs_shared
@needs_model
def test_evaluate_writes_the_table(tmp_path) -> None:
    out = tmp_path / "eval.json"
    result = runner.invoke(app, ["evaluate", "--data", str(SHARED_DATA), "--no-baseline", "--json", str(out)],
                           catch_exceptions=False)
    assert result.exit_code == 0, result.output
    results = json.loads(out.read_text())
    assert results["heldout_reports"] == 30
    assert set(results["methods"]) == {"id", "name", "lexicon", "classifier", "hybrid"}
    for levels in results["methods"].values():
        for level in ("parent", "exact"):
            for kind in ("micro", "per_document"):
                assert set(levels[level][kind]) == {"precision", "recall", "f1"}
            assert set(levels[level]["macro"]) == {"precision", "recall", "f1", "f05"}
    assert len(results["top20_parent"]) == 20
    margins = results["hybrid_margin_parent_micro"]["methods"]  # with a bootstrap interval over the 30 reports
    assert set(margins) == {"id", "name", "lexicon", "classifier"} and "hybrid minus each method" in result.output
    for method, margin in margins.items():
        low, high = margin["ci95"]
        assert low <= margin["margin"] <= high
        f1 = {m: results["methods"][m]["parent"]["micro"]["f1"] for m in ("hybrid", method)}
        assert abs(margin["margin"] - (f1["hybrid"] - f1[method])) < 1e-3
    hybrid, single = results["methods"]["hybrid"]["parent"]["micro"]["f1"], results["methods"]["id"]["parent"]
    assert hybrid > single["micro"]["f1"]
    for method, levels in results["methods"].items():  # the measures published mappers quote
        assert 0 < levels["parent"]["per_document"]["f1"] <= 1 and 0 < levels["parent"]["macro"]["f05"] <= 1, method
    assert "In the measures published report-level mappers quote" in result.output
    completed = results["heldout_completed"]  # the same predictions, TRAM's annotation completed
    assert "TRAM's annotation completed" in result.output
    bound = completed["completed_truth_vs_tram"]["parent"]  # finding all the reports hold, on TRAM's labels
    assert bound["recall"] == 1.0 and bound["precision"] == round(completed["tram_pairs_parent"]
                                                                  / completed["truth_pairs_parent"], 4)
    assert "A tagger that found exactly this completed truth" in result.output
    assert completed["truth_pairs_parent"] > completed["tram_pairs_parent"] * 1.2
    precision = {m: completed["methods"][m]["parent"]["micro"]["precision"] for m in ("hybrid", "classifier")}
    assert all(precision[m] > results["methods"][m]["parent"]["micro"]["precision"] for m in precision)
    vendor = results["vendor"]  # real vendor reports against MITRE's mapping of them
    assert "Vendor set" in result.output
    assert vendor["reports"] == 11 and vendor["skipped"] == {}
    assert set(vendor["methods"]) == set(results["methods"])
    assert all(row["truth"] for row in vendor["per_report"])
    recall = {m: levels["parent"]["micro"]["recall"] for m, levels in vendor["methods"].items()}
    assert recall["hybrid"] >= max(recall["id"], recall["name"], recall["lexicon"])
    annotated = results["annotated"]  # the 27 shared reports with text, two blind annotations
    assert "Annotated shared reports" in result.output and "Against the second annotator" in result.output
    assert annotated["reports"] == 27 and annotated["skipped"] == {} and annotated["ignored_labels"] == []
    assert annotated["truth_pairs"] == sum(len(row["truth"]) for row in annotated["per_report"])
    assert set(annotated["methods"]) == set(results["methods"])
    second = annotated["second_annotator"]
    assert set(second["methods"]) == set(results["methods"]) and 0.8 < second["agreement_f1"]["parent"] <= 1
    f1 = {m: levels["parent"]["micro"]["f1"] for m, levels in annotated["methods"].items()}
    assert f1["hybrid"] > max(f1["id"], f1["name"], f1["lexicon"])


def test_train_without_data_is_a_clear_error(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["train", "--data", str(tmp_path / "nothing")])
    assert result.exit_code == 1 and "no training data" in result.output
    assert Path(tmp_path).exists()


@pytest.mark.usefixtures("prefect_harness")
def test_a_report_that_fails_re_scoring_keeps_its_sightings_and_is_retried(db_file, monkeypatch) -> None:
    """One damaged report (a stored sentence without text) fails alone: the others are re-scored, it keeps
    what it had, the run records why, and the next run re-scores it once it is readable."""
    manifest = str(SAMPLES.parent / "samples.csv")
    monkeypatch.setenv("BREACHMINER_CLASSIFIER", "0")
    run_ingest([manifest], str(db_file), workers=1)
    monkeypatch.delenv("BREACHMINER_CLASSIFIER")
    with wh.connect(db_file) as con:
        [(damaged,)] = con.execute("SELECT min(report_id) FROM reports").fetchall()
        before = con.execute("SELECT technique_id FROM sightings WHERE report_id = ? ORDER BY 1", [damaged]).fetchall()
        [(text,)] = con.execute("SELECT text FROM sentences WHERE report_id = ? AND sentence_index = 0",
                                [damaged]).fetchall()
        con.execute("UPDATE sentences SET text = NULL WHERE report_id = ? AND sentence_index = 0", [damaged])
    result = run_ingest([manifest], str(db_file), workers=1)
    assert result["retagged"] == 3 and result["retag_error"].startswith(f"1 reports not re-scored, e.g. {damaged}: ")
    with wh.connect(db_file) as con:
        kept = con.execute("SELECT technique_id FROM sightings WHERE report_id = ? ORDER BY 1", [damaged]).fetchall()
        assert kept == before  # its transaction never committed
        assert con.execute("SELECT retag_error FROM runs ORDER BY started_at DESC LIMIT 1").fetchone()[0]
        con.execute("UPDATE sentences SET text = ? WHERE report_id = ? AND sentence_index = 0", [text, damaged])
    again = run_ingest([manifest], str(db_file), workers=1)
    assert again["retagged"] == 1 and again["retag_error"] is None


def test_the_versions_retag_compares_are_those_a_report_analysed_now_stores(catalog) -> None:
    """``tagger_versions`` names the versions without building the taggers; it must not drift from them."""
    from breachminer.records import DocumentText
    from extractors.documents import EXTRACTION_VERSION
    from extractors.pipeline import DocumentAnalyzer
    from models.tagger import default_taggers, tagger_versions

    analyzer = DocumentAnalyzer(catalog, default_taggers(catalog), sighting_threshold=0.65)
    stored = analyzer.analyse_text(DocumentText("text", "The actors ran T1059.001 scripts."), "0" * 64, 33)
    text = stored.tagger_versions.pop("text")  # the extraction: read again by ingest from the bytes, not retag
    assert text == EXTRACTION_VERSION and tagger_versions(catalog, None, 0.65) == stored.tagger_versions
    assert stored.tagger_versions["sightings"] == "noisy-or-top2-v4 T=0.65" == stored.sightings[0].rule
    assert set(tagger_versions(catalog, "clf-x")) == {"id", "name", "lexicon", "classifier", "sightings"}


@pytest.mark.usefixtures("prefect_harness")
def test_a_changed_sighting_threshold_re_decides_every_report_it_decided(db_file, monkeypatch) -> None:
    """Mentions are the evidence, sightings the decision: a new threshold re-decides the reports loaded
    under the old one, those without any sighting too, from the same mentions, exactly as loading them
    under the new threshold does; and going back restores the first decision."""
    manifest = str(SAMPLES.parent / "samples.csv")
    monkeypatch.setenv("BREACHMINER_CLASSIFIER", "0")  # the rules alone: no model needed
    run_ingest([manifest], str(db_file), workers=1)

    def state(path) -> tuple[list, list, list]:
        with wh.connect(path, read_only=True) as con:
            return (con.execute("SELECT report_id, technique_id, score, rule FROM sightings ORDER BY ALL").fetchall(),
                    con.execute("SELECT report_id, sentence_index, technique_id, method, score FROM mentions "
                                "ORDER BY ALL").fetchall(),
                    con.execute("SELECT report_id, tagger_versions->>'sightings' FROM reports ORDER BY 1").fetchall())

    loaded, mentions, _ = state(db_file)
    monkeypatch.setenv("BREACHMINER_SIGHTING_THRESHOLD", "0.995")  # explicit IDs only
    result = runner.invoke(app, ["retag", "--db", str(db_file)], catch_exceptions=False)
    assert "retagged 4 reports" in result.output
    strict, strict_mentions, decided = state(db_file)
    assert strict_mentions == mentions  # the evidence is unchanged
    assert 0 < len(strict) < len(loaded) and {rule for *_, rule in strict} == {"noisy-or-top2-v4 T=0.995"}
    assert {rule for _, rule in decided} == {"noisy-or-top2-v4 T=0.995"}
    fresh = db_file.with_name("fresh.duckdb")
    run_ingest([manifest], str(fresh), workers=1)
    assert state(fresh)[0] == strict  # the same as loading under the new threshold

    with wh.connect(db_file) as con:  # a report with mentions but, at 0.995, no sighting at all
        [(bare,)] = con.execute("SELECT min(report_id) FROM reports").fetchall()
        con.execute("DELETE FROM sightings WHERE report_id = ?", [bare])
    monkeypatch.delenv("BREACHMINER_SIGHTING_THRESHOLD")
    assert run_ingest([manifest], str(db_file), workers=1)["retagged"] == 4  # the nightly run catches up
    assert state(db_file)[0] == loaded


@pytest.mark.usefixtures("prefect_harness")
def test_retag_without_the_classifier_re_tags_rule_mentions_only(db_file, monkeypatch) -> None:
    monkeypatch.setenv("BREACHMINER_CLASSIFIER", "0")
    run_ingest([str(SAMPLES.parent / "samples.csv")], str(db_file), workers=1)
    with wh.connect(db_file) as con:
        before = wh.sighting_count(con)
        con.execute("""UPDATE reports SET tagger_versions = json_merge_patch(tagger_versions,
                       '{"lexicon": "lexicon-1"}')::VARCHAR""")
    result = runner.invoke(app, ["retag", "--db", str(db_file)], catch_exceptions=False)
    assert result.exit_code == 0 and "retagged 4 reports with the rules only" in result.output
    with wh.connect(db_file, read_only=True) as con:
        assert wh.sighting_count(con) == before
        assert con.execute("SELECT count(*) FROM mentions WHERE method = 'classifier'").fetchone()[0] == 0
    again = runner.invoke(app, ["retag", "--db", str(db_file)], catch_exceptions=False)
    assert "retagged 0 reports" in again.output
