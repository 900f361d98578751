"""Training the technique classifier: data → out-of-fold report scores → calibrated thresholds → fit → artifact.

The held-out evaluation reports (``models/heldout_reports.txt``) never reach this module's data
(``load_training_data`` removes them and every sentence that occurs in them). Validation is by report,
never by sentence: the TRAM training reports are split into ``CV_FOLDS`` folds, and each fold's reports
are scored by a model trained without them and without their copies in the other TRAM files (TRAM2
``doc_title``, bootstrap duplicates, any sentence whose text occurs in them). Every TRAM training report
thus gets realistic scores (~120 validation reports instead of 30). The decision thresholds — a global
one and per-technique ones shrunk toward it, for the classifier alone and inside the hybrid rule — are
chosen on those scores at report level, parent techniques, maximising micro-F1, the quantity the
product reports. The shipped model is then fitted on all training sentences.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import platform
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from breachminer.catalog import AttackCatalog
from models.classifier import (
    MIN_WORDS,
    SparseLinearOvR,
    TechniqueClassifier,
    binarize,
    build_pipeline,
    silence_fragments,
)
from models.training_data import (
    EXTRA_LABELS,
    LabelledSentence,
    TrainingData,
    _slug,
    leak_form,
    load_training_data,
    remove_leaks,
)

# bump when the training procedure changes: part of the model version
PROCEDURE = "sgd-ovr-cv4-pertech-minwords-vendor-paraphrase-descriptions-supplementary-stablevocab-v12"
MIN_EXAMPLES = 5
CV_FOLDS = 4  # 5 folds scored the same on validation; 4 keep `breachminer train` within 15 min
GAIN = 0.6  # weight of a true pair against (1 - GAIN) for a false one, per-technique thresholds
THRESHOLD_GRID = np.round(np.concatenate([np.arange(0.03, 0.2, 0.01), np.arange(0.2, 0.95, 0.05)]), 3)
GLOBAL_GRID = (0.05, 0.07, 0.09, 0.11, 0.13, 0.15, 0.18, 0.2, 0.25, 0.3, 0.35, 0.4)
HYBRID_GRID = (0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5)
SHRINKAGE_GRID: tuple[float | None, ...] = (2, 5, 10, 20, 50, 100, None)  # None: one global threshold


@dataclass
class TrainingReport:
    """What a training run did, for the model card and the CLI."""

    n_train: int
    n_validation: int
    n_labels: int
    seconds: float
    threshold: float
    validation_f1: float


def _digest(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:8]


def _file_sha256(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None


def sentences_digest(sentences: Sequence[LabelledSentence]) -> str:
    """SHA-256 of the training sentences actually used (text, labels, source, group), in order."""
    digest = hashlib.sha256()
    for s in sentences:
        digest.update(json.dumps([s.text, list(s.labels), s.source, s.group, *([list(s.extra)] if s.extra else [])]
                                 ).encode())
        digest.update(b"\n")
    return digest.hexdigest()


def model_version(stamp: str, data: TrainingData, seed: int, keep: int, n_folds: int,
                  pipeline_args: dict[str, Any]) -> str:
    """``clf-<date>-<digest>``: the digest covers the procedure, the input files, the settings and the
    sentences actually trained on, so a change in what is withheld (e.g. the vendor reports' text as
    another PDF engine extracts it) gives another version, and ``retag`` replaces the old mentions."""
    trained_on = sentences_digest(data.sentences)
    return f"clf-{stamp}-{_digest(PROCEDURE, data.file_hashes, seed, keep, n_folds, pipeline_args, trained_on)}"


def report_folds(sentences: list[LabelledSentence], n_folds: int, seed: int) -> dict[str, int]:
    """Each TRAM training report's cross-validation fold (seeded shuffle, folds differ by at most one report)."""
    reports = sorted({s.group for s in sentences if s.source == "tram-report"})
    order = np.random.default_rng(seed).permutation(len(reports))
    return {reports[j]: k % n_folds for k, j in enumerate(order)}


def fold_training_indexes(sentences: list[LabelledSentence], fold_reports: set[str],
                          paraphrases: dict[str, frozenset[LabelledSentence]] | None = None,
                          ) -> tuple[list[int], dict[str, int]]:
    """Sentences a fold may train on: not its reports, nor their copies in the other TRAM files.

    The same leak rules as for the held-out reports (``load_training_data``): TRAM2 sentences whose
    ``doc_title`` is one of the fold's reports, bootstrap sentences identical to those, ATT&CK's
    paraphrases of them (``paraphrases``: procedure examples citing the report and their bootstrap
    near-copies, ``TrainingData.report_paraphrases``), and any sentence whose text occurs in one of the
    reports (the report text is its sentences joined). Without this the validation reports' own
    annotations train the model that scores them (~1,600 sentences a fold).
    """
    slugs = {_slug(name) for name in fold_reports}
    withheld = frozenset().union(*((paraphrases or {}).get(name, frozenset()) for name in fold_reports))
    removed: Counter[str] = Counter(s.source for s in sentences if s in withheld)
    candidates = [i for i, s in enumerate(sentences)
                  if not (s.source == "tram-report" and s.group in fold_reports) and s not in withheld]
    tram2 = {leak_form(sentences[i].text) for i in candidates
             if sentences[i].source == "tram2" and leak_form(sentences[i].group) in slugs}
    kept = []
    for i in candidates:
        s = sentences[i]
        if (s.source == "tram2" and leak_form(s.group) in slugs) or (
                s.source == "tram-bootstrap" and leak_form(s.text) in tram2):
            removed[s.source] += 1
        else:
            kept.append(i)
    texts: dict[str, list[str]] = {}
    for s in sentences:
        if s.source == "tram-report" and s.group in fold_reports:
            texts.setdefault(s.group, []).append(s.text)
    others = [sentences[i] for i in kept if sentences[i].source != "tram-report"]
    clean, leaks = remove_leaks(others, [" ".join(v) for v in texts.values()])
    removed.update(leaks)
    clean_ids = {id(s) for s in clean}
    kept = [i for i in kept if sentences[i].source == "tram-report" or id(sentences[i]) in clean_ids]
    return kept, dict(removed)


def _fit_ovr(x: Any, y: np.ndarray, labels: list[str], keep: int, n_jobs: int,
             build_args: dict[str, Any]) -> tuple[SparseLinearOvR, np.ndarray]:
    """A pruned one-vs-rest model on (x, y); also which labels had positives (the others are never fitted)."""
    present = y.sum(axis=0) > 0
    clf = build_pipeline(n_jobs=n_jobs, **build_args).named_steps["clf"]
    clf.fit(x, y if present.all() else y[:, present])
    return SparseLinearOvR.from_ovr(clf, [lab for lab, ok in zip(labels, present, strict=True) if ok], keep), present


def judged_labels(labels: list[str], report_labels: dict[str, set[str]], catalog: AttackCatalog) -> np.ndarray:
    """Which labels the validation reports can judge: those whose parent technique they annotate somewhere.

    TRAM's annotators worked from a list of about 50 techniques. A score for any other technique can be
    neither right nor wrong on their reports (calibration and evaluation leave it out of the universe),
    so its threshold must not be learned from their silence: it keeps the global threshold.
    """
    annotated = {catalog.parent_of_any(t) for labs in report_labels.values() for t in labs}
    return np.asarray([catalog.parent_of_any(label) in annotated for label in labels], dtype=bool)


def training_targets(sentences: Sequence[LabelledSentence], labels: list[str], judged: np.ndarray) -> np.ndarray:
    """The 0/1 targets the model is fitted on: each sentence's labels, plus its supplementary ones
    (``LabelledSentence.extra``) for the labels the validation reports cannot judge.

    The supplementary annotation of TRAM's training reports covers only techniques TRAM's annotators
    never judged, whose silence there is no "no". The judged labels keep TRAM's annotation alone, so the
    out-of-fold scores, the calibration and the thresholds are exactly what they are without it.
    """
    y = binarize([s.labels for s in sentences], labels).toarray()
    return np.maximum(y, binarize([s.extra for s in sentences], labels).toarray() * ~judged[None, :])


def out_of_fold_scores(sentences: list[LabelledSentence], x: Any, y: np.ndarray, labels: list[str], n_folds: int,
                       seed: int, keep: int, n_jobs: int, build_args: dict[str, Any], progress: Any = None,
                       paraphrases: dict[str, frozenset[LabelledSentence]] | None = None,
                       judged: np.ndarray | None = None) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    """Sentence scores of every TRAM training report from a model that never saw it (k-fold by report)
    nor ATT&CK's paraphrases of it (``paraphrases``, see :func:`fold_training_indexes`).

    Only the ``judged`` labels (:func:`judged_labels`; default all) are fitted; the others score 0, so
    per-technique calibration leaves them at the global threshold. One-vs-rest models are independent,
    so the judged labels' scores do not depend on which others are fitted.
    """
    if judged is not None:
        y = y * judged[None, :].astype(y.dtype)
    folds = report_folds(sentences, n_folds, seed)
    scores: dict[str, np.ndarray] = {}
    removed: Counter[str] = Counter()
    for k in range(n_folds):
        fold_reports = {name for name, fold in folds.items() if fold == k}
        train_idx, leaks = fold_training_indexes(sentences, fold_reports, paraphrases)
        removed.update(leaks)
        model, present = _fit_ovr(x[train_idx], y[train_idx], labels, keep, n_jobs, build_args)
        rows = [i for i, s in enumerate(sentences) if s.source == "tram-report" and s.group in fold_reports]
        probabilities = np.zeros((len(rows), len(labels)), dtype=np.float32)
        probabilities[:, present] = model.predict_proba(x[rows])
        silence_fragments(probabilities, [sentences[i].text for i in rows], MIN_WORDS)  # as the shipped model does
        for name in fold_reports:
            scores[name] = probabilities[[j for j, i in enumerate(rows) if sentences[i].group == name]]
        if progress:
            progress(f"fold {k + 1}/{n_folds}: {len(fold_reports)} reports scored")
    return scores, dict(sorted(removed.items()))


def _micro_f1(predicted: dict[str, set[str]], truth: dict[str, set[str]], universe: set[str]) -> float:
    tp = fp = fn = 0
    for name, true in truth.items():
        p = predicted.get(name, set()) & universe
        tp, fp, fn = tp + len(p & true), fp + len(p - true), fn + len(true - p)
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def technique_thresholds(report_max: dict[str, np.ndarray], report_truth: dict[str, set[str]], labels: list[str],
                         catalog: AttackCatalog, global_threshold: float, shrinkage: float | None) -> np.ndarray:
    """Per-technique thresholds, each shrunk toward ``global_threshold``.

    A technique's own threshold maximises ``GAIN·TP − (1 − GAIN)·FP`` over the validation reports
    (report level, parent technique; including a report-technique pair raises micro-F1 F when it is
    right with probability above F/2, so GAIN = 1 − F/2 ≈ 0.6). It is then shrunk toward the global
    threshold in log space: ``exp((n·log t + m·log g) / (n + m))``, n = the reports that carry evidence
    for the technique (annotated, or scoring ≥ g/2), m = ``shrinkage`` (None: global threshold only).
    """
    vector = np.full(len(labels), global_threshold)
    if shrinkage is None or not report_max:
        return vector
    names = sorted(report_max)
    scores = np.stack([report_max[n] for n in names])  # (reports, labels)
    parents = [catalog.parent_of_any(label) for label in labels]
    positive = np.asarray([[parent in report_truth[n] for parent in parents] for n in names])
    hits = scores[:, :, None] >= THRESHOLD_GRID[None, None, :]
    utility = GAIN * (hits & positive[:, :, None]).sum(axis=0) - (1 - GAIN) * (hits & ~positive[:, :, None]).sum(0)
    evidence = np.maximum(positive.sum(axis=0), (scores >= 0.5 * global_threshold).sum(axis=0))
    for j in np.flatnonzero(evidence):
        best = THRESHOLD_GRID[utility[j] == utility[j].max()]
        own = best[np.argmin(np.abs(np.log(best) - np.log(global_threshold)))]  # ties: nearest the global one
        n = float(evidence[j])
        vector[j] = float(np.exp((n * np.log(own) + shrinkage * np.log(global_threshold)) / (n + shrinkage)))
    return vector


def _cross_fitted(report_max: dict[str, np.ndarray], truth: dict[str, set[str]], folds: dict[str, int],
                  labels: list[str], catalog: AttackCatalog, threshold: float,
                  shrinkage: float | None) -> dict[str, np.ndarray]:
    """Each report's per-technique thresholds, computed on the reports of the other folds only.

    Choosing the shrinkage on the reports its thresholds were fitted on always favours the least
    shrinkage (on 121 reports that meant per-technique thresholds worth +5 F1 points in-sample and +1 in
    nested cross-validation); scoring each report with thresholds fitted without it does not.
    """
    vectors = {}
    for k in sorted(set(folds.get(n, 0) for n in report_max)):
        others = {n: m for n, m in report_max.items() if folds.get(n, 0) != k}
        vector = technique_thresholds(others, truth, labels, catalog, threshold, shrinkage)
        vectors.update({n: vector for n in report_max if folds.get(n, 0) == k})
    return vectors


def _prefer(shrinkage: float | None) -> float:
    return np.inf if shrinkage is None else float(shrinkage)  # on ties: more shrinkage


def calibrate_classifier(report_scores: dict[str, np.ndarray], report_labels: dict[str, set[str]], labels: list[str],
                         catalog: AttackCatalog, folds: dict[str, int] | None = None) -> dict[str, Any]:
    """Classifier alone (a technique when one sentence reaches its threshold): global threshold and shrinkage.

    Each (threshold, shrinkage) is scored with per-technique thresholds cross-fitted over ``folds``.
    """
    folds = folds or {}
    truth = {n: {catalog.parent_of_any(t) for t in labs} for n, labs in report_labels.items()}
    universe = set().union(*truth.values()) if truth else set()
    report_max = {n: (s.max(axis=0) if len(s) else np.zeros(len(labels))) for n, s in report_scores.items()}
    parents = [catalog.parent_of_any(label) for label in labels]
    results = []
    for shrinkage in SHRINKAGE_GRID:
        for threshold in GLOBAL_GRID:
            vectors = _cross_fitted(report_max, truth, folds, labels, catalog, threshold, shrinkage)
            predicted = {n: {parents[j] for j in np.flatnonzero(m >= vectors[n])} for n, m in report_max.items()}
            results.append((round(_micro_f1(predicted, truth, universe), 4), threshold, shrinkage))
    best = max(results, key=lambda r: (r[0], _prefer(r[2]), r[1]))
    vector = technique_thresholds(report_max, truth, labels, catalog, best[1], best[2])
    return {"threshold": best[1], "shrinkage": best[2], "validation_f1": best[0], "vector": vector,
            "grid": [list(r) for r in results]}


def calibrate_hybrid(report_scores: dict[str, np.ndarray], report_labels: dict[str, set[str]],
                     report_sentences: dict[str, list[LabelledSentence]], labels: list[str],
                     catalog: AttackCatalog, folds: dict[str, int] | None = None) -> dict[str, Any]:
    """Choose the hybrid's classifier thresholds (global + shrinkage) and sighting threshold on validation reports.

    Runs the product's own rule: rule taggers + ``classifier_mentions`` → ``decide_sightings``, with
    per-technique thresholds cross-fitted over ``folds`` as in :func:`calibrate_classifier`.
    """
    from breachminer.records import Sentence
    from extractors.sightings import decide_sightings
    from models.tagger import classifier_mentions, default_taggers

    folds = folds or {}
    rule_taggers = default_taggers(catalog)
    rule_mentions, sentences_of = {}, {}
    for name, rows in report_sentences.items():
        sentences_of[name] = sentences = [Sentence(k, 0, len(row.text), row.text) for k, row in enumerate(rows)]
        rule_mentions[name] = [m for tagger in rule_taggers for m in tagger.tag(sentences)]
    truth = {n: {catalog.parent_of_any(t) for t in labs} for n, labs in report_labels.items()}
    universe = set().union(*truth.values()) if truth else set()
    report_max = {n: (s.max(axis=0) if len(s) else np.zeros(len(labels))) for n, s in report_scores.items()}
    results = []
    for shrinkage in SHRINKAGE_GRID:
        for threshold in HYBRID_GRID:
            vectors = _cross_fitted(report_max, truth, folds, labels, catalog, threshold, shrinkage)
            for sighting_threshold in (0.5, 0.6, 0.7, 0.8):
                predicted = {}
                for name, scores in report_scores.items():
                    mentions = rule_mentions[name] + classifier_mentions(scores, vectors[name], labels,
                                                                         sighting_threshold, "calibration")
                    predicted[name] = {catalog.parent_of_any(s.technique_id)
                                       for s in decide_sightings(mentions, sighting_threshold, sentences_of[name])}
                results.append((round(_micro_f1(predicted, truth, universe), 4), threshold, sighting_threshold,
                                shrinkage))
    best = max(results, key=lambda r: (r[0], _prefer(r[3]), r[1], r[2]))
    vector = technique_thresholds(report_max, truth, labels, catalog, best[1], best[3])
    return {"classifier_threshold": best[1], "sighting_threshold": best[2], "shrinkage": best[3],
            "validation_f1": best[0], "vector": vector, "grid": [list(r) for r in results]}


def train(data_dir: Path, catalog: AttackCatalog, seed: int = 20261127, keep: int = 4000,
          n_jobs: int = 2, data: TrainingData | None = None, n_folds: int = CV_FOLDS, progress: Any = None,
          **pipeline_args: Any) -> tuple[TechniqueClassifier, TrainingReport]:
    """Fit, calibrate and package a classifier (not yet saved).

    Calibration data are out-of-fold scores: the TRAM training reports are split into ``n_folds``
    folds; each fold's reports are scored by a model trained without them (and without their copies
    in the other TRAM files). Thresholds are chosen on those scores; the shipped model is then fitted on
    all training sentences. The TF-IDF vocabularies are fitted once on all training text (no labels).
    """
    import scipy
    import sklearn

    started = time.perf_counter()
    say = progress or (lambda _message: None)
    data = data or load_training_data(data_dir, catalog)
    sentences = data.sentences
    counts = Counter(label for s in sentences for label in set(s.all_labels))
    labels = sorted(t for t, n in counts.items() if n >= MIN_EXAMPLES and t in catalog.active)

    defaults = {name: p.default for name, p in inspect.signature(build_pipeline).parameters.items()
                if name != "n_jobs"}
    build_args = {**defaults, "seed": seed, **pipeline_args}  # all of them: loading must not depend on defaults
    pipeline = build_pipeline(n_jobs=n_jobs, **build_args)
    features = pipeline.named_steps["features"]
    x = features.fit_transform([s.text for s in sentences]).tocsr()
    x.sort_indices()
    fit_args = {k: v for k, v in build_args.items() if k in ("alpha", "epochs", "seed")}

    by_report: dict[str, list[LabelledSentence]] = {}
    for s in sentences:
        if s.source == "tram-report":
            by_report.setdefault(s.group, []).append(s)
    report_labels = {name: {t for s in rows for t in s.labels} for name, rows in by_report.items()}
    judged = judged_labels(labels, report_labels, catalog)
    y = training_targets(sentences, labels, judged)
    report_scores, fold_leaks = out_of_fold_scores(sentences, x, y, labels, n_folds, seed, keep, n_jobs, fit_args,
                                                   say, data.report_paraphrases, judged)
    say("calibrating thresholds on the out-of-fold report scores")
    folds = report_folds(sentences, n_folds, seed)
    alone = calibrate_classifier(report_scores, report_labels, labels, catalog, folds)
    hybrid = calibrate_hybrid(report_scores, report_labels, by_report, labels, catalog, folds)

    say("fitting the final model on all training sentences")
    clf, present = _fit_ovr(x, y, labels, keep, n_jobs, fit_args)
    pipeline.steps[-1] = ("clf", clf)
    fitted_labels = [label for label, ok in zip(labels, present, strict=True) if ok]
    position = {label: j for j, label in enumerate(labels)}

    def per_technique(vector: np.ndarray, default: float) -> dict[str, float]:
        return {label: round(float(vector[position[label]]), 4) for label in fitted_labels
                if abs(vector[position[label]] - default) > 1e-9}

    model = TechniqueClassifier(pipeline=pipeline, labels=fitted_labels,
                                thresholds=per_technique(alone["vector"], alone["threshold"]),
                                default_threshold=float(alone["threshold"]),
                                hybrid_threshold=float(hybrid["classifier_threshold"]),
                                hybrid_sighting_threshold=float(hybrid["sighting_threshold"]),
                                hybrid_thresholds=per_technique(hybrid["vector"], hybrid["classifier_threshold"]),
                                min_words=MIN_WORDS)

    seconds = time.perf_counter() - started
    stamp = datetime.now(UTC).strftime("%Y%m%d")
    n_validation = sum(len(rows) for rows in by_report.values())
    model.card = {
        "model_version": model_version(stamp, data, seed, keep, n_folds, pipeline_args),
        "procedure": PROCEDURE,
        "created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "attack_version": catalog.attack_version,
        "seed": seed,
        "build_args": build_args,
        "training_data": {
            "files_sha256": data.file_hashes,
            "sentences": len(sentences),
            "sentences_sha256": sentences_digest(sentences),
            "by_source": dict(Counter(s.source for s in sentences)),
            "removed_leaks": data.removed_leaks,
            "removed_by_source": data.removed_by_source,
            "withheld_for_vendor_set": data.withheld_vendor,
            "unknown_ids": data.unknown_ids,
            "train_sentences": len(sentences),
            "validation_sentences": n_validation,
            "validation_reports": len(report_scores),
            "cross_validation_folds": n_folds,
            "fold_removed_leaks": fold_leaks,
            "paraphrased_training_reports": len(data.report_paraphrases),
            "min_examples_per_label": MIN_EXAMPLES,
            "labels_judged_by_validation": int(judged.sum()),
            "supplementary_labels": {**data.extra_labels, "file": EXTRA_LABELS.name,
                                     "file_sha256": _file_sha256(EXTRA_LABELS)},
        },
        "pipeline": {
            "features": "word 1-2-gram TF-IDF + char_wb n-gram TF-IDF (bounded vocabularies)",
            "classifier": "one-vs-rest logistic regression (SGDClassifier, log loss), weights pruned to "
                          f"the {keep} strongest per technique",
            "keep_per_technique": keep,
        },
        "calibration": {
            "method": f"{n_folds}-fold cross-validation by report over the TRAM training reports (out-of-fold "
                      "scores, fold reports' copies removed from the fold's training data); classifier alone = "
                      "one sentence at its technique's threshold; global threshold and per-technique thresholds "
                      "(shrunk toward it; the shrinkage chosen with thresholds cross-fitted over the folds) maximising "
                      "report-level parent micro-F1 on the out-of-fold reports; techniques whose parent those reports "
                      "never annotate cannot be judged there and keep the global threshold",
            "validation_f1": alone["validation_f1"],
            "shrinkage": alone["shrinkage"],
            "grid": alone["grid"],
        },
        "hybrid_calibration": {
            "method": "classifier thresholds (global + per-technique, shrunk) and sighting threshold of the hybrid "
                      "rule (all four methods, noisy-OR) chosen together, maximising report-level parent micro-F1 "
                      "on the out-of-fold reports (per-technique thresholds cross-fitted over the folds)",
            **{k: v for k, v in hybrid.items() if k != "vector"},
        },
        "libraries": {
            "scikit-learn": sklearn.__version__, "numpy": np.__version__, "scipy": scipy.__version__,
            "python": platform.python_version(),
        },
        "train_seconds": round(seconds, 1),
        "license": "Trained on MITRE ATT&CK procedure examples and technique descriptions (© 2025 The MITRE "
                   "Corporation, reproduced with permission) and TRAM data (Apache-2.0, Center for "
                   "Threat-Informed Defense).",
    }
    report = TrainingReport(len(sentences), n_validation, len(fitted_labels), seconds, float(alone["threshold"]),
                            float(alone["validation_f1"]))
    return model, report
