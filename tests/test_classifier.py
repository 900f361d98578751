"""The classifier's parts on a small synthetic problem: pruned model = trained model, safe saving and
loading, the version check, and how classifier mentions enter the sighting rule."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import sklearn

from breachminer.records import Sentence
from extractors.sightings import decide_sightings
from models.classifier import (
    CARD_FILE,
    MIN_WORDS,
    ModelCompatibilityError,
    SparseLinearOvR,
    TechniqueClassifier,
    binarize,
    build_pipeline,
    word_count,
)
from models.tagger import ClassifierTagger

TEXTS = {
    "T1490": ["vssadmin deleted the shadow copies", "shadow copies were removed with wmic", "backups wiped, shadow"],
    "T1053.005": ["a scheduled task runs the loader", "schtasks created a daily task", "the task scheduler job"],
    "T1486": ["files were encrypted with AES", "the ransomware encrypts every file", "encrypted documents"],
}
NEGATIVES = ["the company published its annual report", "the weather was fine", "contact the press office"]


@pytest.fixture(scope="module")
def small_model() -> TechniqueClassifier:
    texts, labels = [], []
    for technique, examples in TEXTS.items():
        for text in examples * 4:
            texts.append(text)
            labels.append((technique,))
    texts += NEGATIVES * 4
    labels += [()] * (len(NEGATIVES) * 4)
    classes = sorted(TEXTS)
    pipeline = build_pipeline(word_features=500, char_features=500, n_jobs=1)
    x = pipeline.named_steps["features"].fit_transform(texts)
    x.sort_indices()
    pipeline.named_steps["clf"].fit(x, binarize(labels, classes).toarray())
    full = pipeline.named_steps["clf"].predict_proba(x)
    pipeline.steps[-1] = ("clf", SparseLinearOvR.from_ovr(pipeline.named_steps["clf"], classes, keep=10_000))
    model = TechniqueClassifier(pipeline, classes, thresholds={"T1486": 0.4}, default_threshold=0.5,
                                card={"model_version": "test-1", "libraries": {"scikit-learn": sklearn.__version__}})
    assert np.allclose(model.predict_proba(texts), full, atol=1e-5)  # the sparse model is the trained model
    return model


def test_scores_are_probabilities_per_label(small_model) -> None:
    scores = small_model.predict_proba(["vssadmin deleted the shadow copies", "the weather was fine"])
    assert scores.shape == (2, 3) and ((scores >= 0) & (scores <= 1)).all()
    assert small_model.labels[int(scores[0].argmax())] == "T1490"
    assert scores[1].max() < scores[0].max()
    assert small_model.predict_proba([]).shape == (0, 3)


def test_save_and_load_round_trip_without_pickle(small_model, tmp_path) -> None:
    small_model.save(tmp_path)
    loaded = TechniqueClassifier.load(tmp_path)
    texts = ["schtasks created a daily task", "files were encrypted"]
    assert np.allclose(loaded.predict_proba(texts), small_model.predict_proba(texts))
    assert loaded.thresholds == {"T1486": 0.4} and loaded.version == "test-1"


def test_incompatible_scikit_learn_version_is_refused(small_model, tmp_path) -> None:
    small_model.save(tmp_path)
    card = json.loads((tmp_path / CARD_FILE).read_text())
    card["libraries"]["scikit-learn"] = "0.24.2"
    (tmp_path / CARD_FILE).write_text(json.dumps(card))
    with pytest.raises(ModelCompatibilityError, match=r"scikit-learn 0\.24\.2"):
        TechniqueClassifier.load(tmp_path)


def test_tampered_artifact_is_refused(small_model, tmp_path) -> None:
    path = small_model.save(tmp_path)
    path.write_bytes(path.read_bytes() + b"x")
    with pytest.raises(ModelCompatibilityError, match="does not match"):
        TechniqueClassifier.load(tmp_path)


def test_missing_model_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="breachminer train"):
        TechniqueClassifier.load(tmp_path)


def test_classifier_mentions_enter_the_sighting_rule(small_model) -> None:
    tagger = ClassifierTagger(small_model)
    sentences = [Sentence(0, 0, 10, "vssadmin deleted the shadow copies"), Sentence(1, 11, 30, "the weather was fine")]
    mentions = tagger.tag(sentences)
    assert mentions and all(m.method == "classifier" and m.tagger_version == "test-1" for m in mentions)
    assert {m.sentence_index for m in mentions} == {0}
    top = max(mentions, key=lambda m: m.score)
    assert top.technique_id == "T1490" and "p=" in top.detail
    p = float(top.detail.split("p=")[1].split()[0])
    expected = min(0.999, 1 - 0.4 ** (p / 0.5))  # at the threshold the score equals the sighting threshold
    assert abs(top.score - round(expected, 4)) < 1e-3
    assert "T1490" in {s.technique_id for s in decide_sightings(mentions, 0.6)}


def test_sighting_threshold_precedence(small_model, monkeypatch) -> None:
    from breachminer.settings import DEFAULT_SIGHTING_THRESHOLD, get_settings
    from models.tagger import resolve_sighting_threshold

    assert resolve_sighting_threshold(None, None) == DEFAULT_SIGHTING_THRESHOLD  # rules only
    small_model.hybrid_sighting_threshold = 0.7
    try:
        assert resolve_sighting_threshold(None, small_model) == 0.7  # calibrated with the model
        monkeypatch.setenv("BREACHMINER_SIGHTING_THRESHOLD", "0.9")
        assert resolve_sighting_threshold(get_settings().sighting_threshold, small_model) == 0.9  # user wins
    finally:
        small_model.hybrid_sighting_threshold = None


def test_tag_refuses_an_incompatible_model_clearly(small_model, tmp_path, monkeypatch) -> None:
    from typer.testing import CliRunner

    from breachminer.cli import app

    small_model.save(tmp_path)
    card = json.loads((tmp_path / CARD_FILE).read_text())
    card["libraries"]["scikit-learn"] = "0.24.2"
    (tmp_path / CARD_FILE).write_text(json.dumps(card))
    monkeypatch.setenv("BREACHMINER_MODEL_DIR", str(tmp_path))
    doc = tmp_path / "note.txt"
    doc.write_text("The attackers deleted the volume shadow copies with vssadmin. " * 10)
    result = CliRunner().invoke(app, ["tag", str(doc)])
    assert result.exit_code == 1 and "scikit-learn 0.24.2" in result.output


def test_hybrid_thresholds_are_per_technique_with_a_global_default(small_model, tmp_path) -> None:
    assert list(small_model.hybrid_threshold_vector()) == list(small_model.threshold_vector())  # none calibrated
    small_model.hybrid_threshold, small_model.hybrid_thresholds = 0.3, {"T1490": 0.6}
    try:
        assert small_model.hybrid_threshold_vector().tolist() == [0.3, 0.3, 0.6]  # T1053.005, T1486, T1490
        assert ClassifierTagger(small_model)._thresholds.tolist() == [0.3, 0.3, 0.6]
        small_model.save(tmp_path)
        loaded = TechniqueClassifier.load(tmp_path)
        assert loaded.hybrid_thresholds == {"T1490": 0.6} and loaded.hybrid_threshold == 0.3
    finally:
        small_model.hybrid_threshold, small_model.hybrid_thresholds = None, {}


def test_fragments_score_zero_when_the_model_says_so(small_model, tmp_path) -> None:
    fragment, sentence = "encrypted documents", "the ransomware encrypts every file"
    assert word_count(fragment) == 2 and word_count("T1486 at 10:42, 3x") == 1
    assert small_model.min_words == 0 and small_model.predict_proba([fragment]).max() > 0.1  # models from before
    strict = dataclasses.replace(small_model, min_words=MIN_WORDS)
    scores = strict.predict_proba([fragment, sentence])
    assert scores[0].max() == 0.0 and np.allclose(scores[1], small_model.predict_proba([sentence])[0])
    strict.save(tmp_path)
    assert TechniqueClassifier.load(tmp_path).min_words == MIN_WORDS  # recorded in the card
