"""The training procedure's validation: folds by report, leak-free fold training sets, per-technique
thresholds shrunk toward the global one, and how the hybrid uses them."""

from __future__ import annotations

import numpy as np
import pytest

from breachminer.catalog import AttackCatalog
from models.train import (
    fold_training_indexes,
    judged_labels,
    model_version,
    out_of_fold_scores,
    report_folds,
    technique_thresholds,
    training_targets,
)
from models.training_data import LabelledSentence, TrainingData

REPORT_TEXT = ["The actor used schtasks to create a daily task that runs the loader from the temp folder.",
               "Nothing else happened in this report at all today."]


def _sentences() -> list[LabelledSentence]:
    out = [LabelledSentence(text, ("T1053.005",) if i == 0 else (), "tram-report", f"Report_{r}.mjson")
           for r in range(6) for i, text in enumerate(REPORT_TEXT if r == 0 else [f"report {r} sentence {i}"
                                                                                    for i in range(2)])]
    out += [
        LabelledSentence("used schtasks to create a daily task", ("T1053.005",), "tram2", "Report 0"),  # doc_title
        LabelledSentence("used schtasks to create a daily task", ("T1053.005",), "tram-bootstrap", "bootstrap:1"),
        LabelledSentence("The actor used schtasks to create a daily task that runs the loader", ("T1053.005",),
                         "attack-procedure", "attack:x"),  # occurs in report 0
        LabelledSentence("An unrelated procedure example with enough words in it.", ("T1486",), "attack-procedure",
                         "attack:y"),
    ]
    return out


def test_report_folds_are_seeded_and_balanced() -> None:
    sentences = _sentences()
    folds = report_folds(sentences, 3, seed=7)
    assert folds == report_folds(sentences, 3, seed=7)
    assert sorted(folds) == [f"Report_{r}.mjson" for r in range(6)]
    assert sorted(np.bincount(list(folds.values())).tolist()) == [2, 2, 2]


def test_a_fold_never_trains_on_its_reports_or_their_copies() -> None:
    sentences = _sentences()
    kept, removed = fold_training_indexes(sentences, {"Report_0.mjson"})
    kept_texts = {(sentences[i].source, sentences[i].text) for i in kept}
    assert not any(sentences[i].group == "Report_0.mjson" for i in kept)
    assert ("attack-procedure", "An unrelated procedure example with enough words in it.") in kept_texts
    assert all(sentences[i].source not in ("tram2", "tram-bootstrap") for i in kept)
    assert not any(source == "attack-procedure" and "loader" in text for source, text in kept_texts)
    assert removed == {"tram2": 1, "tram-bootstrap": 1, "attack-procedure": 1}
    assert sum(sentences[i].source == "tram-report" for i in kept) == 10  # the other five reports


def test_a_fold_never_trains_on_attack_paraphrases_of_its_reports() -> None:
    sentences = _sentences()
    paraphrase = len(sentences) - 1  # "An unrelated procedure example …", as if ATT&CK cited Report_0
    paraphrases = {"Report_0.mjson": frozenset({sentences[paraphrase]})}
    kept, removed = fold_training_indexes(sentences, {"Report_0.mjson"}, paraphrases)
    assert paraphrase not in kept
    assert removed["attack-procedure"] == 2  # the paraphrase and the verbatim copy
    kept_other, _ = fold_training_indexes(sentences, {"Report_1.mjson"}, paraphrases)
    assert paraphrase in kept_other  # other folds train on it
    subset = sentences[:2] + sentences[-1:]  # a subset of the training data keeps the withholding
    kept_subset, _ = fold_training_indexes(subset, {"Report_0.mjson"}, paraphrases)
    assert kept_subset == []


@pytest.fixture(scope="module")
def catalog() -> AttackCatalog:
    return AttackCatalog.load()


def test_technique_thresholds_shrink_toward_the_global_one(catalog) -> None:
    labels = ["T1486", "T1490"]
    # T1486: present in reports a-d, scoring 0.5-0.8; absent from e-h, which score 0.2-0.3 → own threshold ~0.35
    report_max = {n: np.array([p, 0.0]) for n, p in zip("abcdefgh", [0.5, 0.6, 0.7, 0.8, 0.2, 0.25, 0.3, 0.3],
                                                         strict=True)}
    truth = {n: ({"T1486"} if n in "abcd" else set()) for n in report_max}
    assert (technique_thresholds(report_max, truth, labels, catalog, 0.15, None) == 0.15).all()
    own = technique_thresholds(report_max, truth, labels, catalog, 0.15, 0)[0]
    assert 0.3 < own <= 0.5
    weak, strong = (technique_thresholds(report_max, truth, labels, catalog, 0.15, m)[0] for m in (2, 50))
    assert own > weak > strong > 0.15
    # no evidence for T1490 anywhere: it keeps the global threshold
    assert technique_thresholds(report_max, truth, labels, catalog, 0.15, 2)[1] == 0.15


def test_cross_fitted_thresholds_never_see_their_own_report(catalog) -> None:
    from models.train import _cross_fitted

    labels = ["T1486"]
    report_max = {n: np.array([p]) for n, p in zip("abcdef", [0.5, 0.6, 0.7, 0.2, 0.25, 0.3], strict=True)}
    truth = {n: ({"T1486"} if n in "abc" else set()) for n in report_max}
    folds = {n: i % 2 for i, n in enumerate("abcdef")}
    vectors = _cross_fitted(report_max, truth, folds, labels, catalog, 0.15, 0)
    changed = dict(report_max, a=np.array([0.05]))  # report a's own score changes: its thresholds do not
    assert _cross_fitted(changed, truth, folds, labels, catalog, 0.15, 0)["a"] == vectors["a"]
    assert (vectors["a"] == vectors["c"]).all() and (vectors["a"] == vectors["e"]).all()


def test_the_model_version_changes_with_the_sentences_trained_on() -> None:
    """Same input files and settings, one sentence fewer (say, withheld because another PDF engine now finds it
    in a vendor report): another version, so ``retag`` replaces the older model's mentions."""
    sentences = _sentences()
    files = {"tram/bootstrap-training-data.json": "ab" * 32}

    def version(rows: list[LabelledSentence]) -> str:
        return model_version("20261128", TrainingData(rows, file_hashes=files), 7, 4000, 4, {})

    assert version(sentences) == version(list(sentences))
    assert version(sentences[:-1]) != version(sentences)
    relabelled = [*sentences[:-1], LabelledSentence(sentences[-1].text, ("T1490",), sentences[-1].source,
                                                    sentences[-1].group)]
    assert version(relabelled) != version(sentences)


def test_only_techniques_the_validation_reports_annotate_are_calibrated(catalog) -> None:
    """TRAM's annotators used about 50 techniques: silence about any other is no evidence against it."""
    from scipy.sparse import csr_matrix

    sentences = _sentences()
    labels = ["T1053", "T1053.005", "T1486", "T1621"]
    report_labels = {"Report_0.mjson": {"T1053.005"}, "Report_1.mjson": set()}
    judged = judged_labels(labels, report_labels, catalog)
    assert judged.tolist() == [True, True, False, False]  # T1053 and its sub-techniques only

    rng = np.random.default_rng(3)
    x = csr_matrix(rng.random((len(sentences), 12)) * (rng.random((len(sentences), 12)) > 0.5))
    y = rng.integers(0, 2, size=(len(sentences), len(labels)))
    fit = {"alpha": 1e-4, "epochs": 5, "seed": 1}
    every, _ = out_of_fold_scores(sentences, x, y, labels, 3, 7, 100, 1, fit)
    only, _ = out_of_fold_scores(sentences, x, y, labels, 3, 7, 100, 1, fit, judged=judged)
    for name, scores in only.items():
        assert np.array_equal(scores[:, judged], every[name][:, judged])  # one-vs-rest: unchanged
        assert not scores[:, ~judged].any()  # never fitted: calibration leaves them at the global threshold
    report_max = {n: s.max(axis=0) for n, s in only.items()}
    truth = {n: {"T1053"} if n == "Report_0.mjson" else set() for n in only}
    vector = technique_thresholds(report_max, truth, labels, catalog, 0.15, 2)
    assert (vector[~judged] == 0.15).all()


def test_supplementary_labels_train_only_what_validation_cannot_judge(catalog) -> None:
    """The supplementary annotation adds positives for techniques outside TRAM's list; a label TRAM's
    reports judge keeps TRAM's annotation alone, so calibration and thresholds cannot move."""
    sentences = [
        LabelledSentence("The actor bought servers and ran schtasks.", ("T1053.005",), "tram-report", "Report_0.mjson",
                         ("T1053", "T1583.003")),
        LabelledSentence("Nothing here.", (), "tram-report", "Report_0.mjson", ("T1486",)),
        LabelledSentence("A procedure example.", ("T1486",), "attack-procedure", "attack:x"),
    ]
    labels = ["T1053", "T1053.005", "T1486", "T1583.003"]
    judged = judged_labels(labels, {"Report_0.mjson": {"T1053.005"}}, catalog)
    assert judged.tolist() == [True, True, False, False]
    y = training_targets(sentences, labels, judged)
    assert y.tolist() == [[0, 1, 0, 1], [0, 0, 1, 0], [0, 0, 1, 0]]  # T1053 (judged) not taken from the extras
    assert sentences[0].all_labels == ("T1053.005", "T1053", "T1583.003")
