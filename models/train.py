"""Training the technique classifier: data → report-grouped split → fit → calibrated threshold → artifact.

The held-out evaluation reports (``models/heldout_reports.txt``) never reach this module's data
(``load_training_data`` removes them and every sentence that occurs in them). The rest is split by
group (report, document, ATT&CK software/group), never by sentence: about 15 % of groups validate.
The decision threshold is chosen on the validation *reports* (TRAM full reports in the validation
groups) at report level, parent techniques, maximising micro-F1 — the quantity the product reports.
"""

from __future__ import annotations

import hashlib
import json
import platform
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from breachminer.catalog import AttackCatalog
from models.classifier import SparseLinearOvR, TechniqueClassifier, binarize, build_pipeline
from models.training_data import LabelledSentence, TrainingData, load_training_data

VALIDATION_SHARE = 0.15
REPORT_VALIDATION_SHARE = 0.25
PROCEDURE = "sgd-ovr-v3"  # bump when the training procedure changes: it is part of the model version
MIN_EXAMPLES = 5


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


def split_by_group(sentences: list[LabelledSentence], share: float, seed: int,
                   report_share: float = REPORT_VALIDATION_SHARE) -> tuple[list[int], list[int]]:
    """Indexes of training and validation sentences; whole groups go to one side.

    Full TRAM reports validate at ``report_share`` (they calibrate the thresholds, so enough of them
    must be there), every other kind of group at ``share``.
    """
    rng = np.random.default_rng(seed)
    validation_groups: set[str] = set()
    for is_report in (True, False):
        groups = sorted({s.group for s in sentences if (s.source == "tram-report") == is_report})
        if groups:
            size = max(1, int(len(groups) * (report_share if is_report else share)))
            validation_groups.update(rng.choice(groups, size=size, replace=False).tolist())
    train = [i for i, s in enumerate(sentences) if s.group not in validation_groups]
    validation = [i for i, s in enumerate(sentences) if s.group in validation_groups]
    return train, validation


def report_level_f1(report_scores: dict[str, np.ndarray], report_labels: dict[str, set[str]],
                    labels: list[str], threshold: float, catalog: AttackCatalog) -> float:
    """Micro-F1 at parent level of "any sentence scores ≥ threshold" against report labels."""
    tp = fp = fn = 0
    universe = {catalog.parent_of(t) for labs in report_labels.values() for t in labs}
    for name, scores in report_scores.items():
        predicted = {catalog.parent_of(labels[j]) for j in np.flatnonzero(scores.max(axis=0) >= threshold)}
        predicted &= universe
        truth = {catalog.parent_of(t) for t in report_labels[name]}
        tp += len(predicted & truth)
        fp += len(predicted - truth)
        fn += len(truth - predicted)
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def calibrate_hybrid(report_scores: dict[str, np.ndarray], report_labels: dict[str, set[str]],
                     report_sentences: dict[str, list[LabelledSentence]], labels: list[str],
                     catalog: AttackCatalog) -> dict[str, Any]:
    """Choose (classifier threshold, sighting threshold) for the hybrid on the validation reports."""
    from breachminer.records import Sentence
    from extractors.sightings import decide_sightings
    from models.tagger import classifier_mentions, default_taggers

    rule_taggers = default_taggers(catalog)
    rule_mentions = {}
    for name, rows in report_sentences.items():
        sentences = [Sentence(k, 0, len(row.text), row.text) for k, row in enumerate(rows)]
        rule_mentions[name] = [m for tagger in rule_taggers for m in tagger.tag(sentences)]
    universe = {catalog.parent_of_any(t) for labs in report_labels.values() for t in labs}
    results = []
    for sighting_threshold in (0.5, 0.6, 0.7, 0.8):
        for threshold in (0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5, 0.6):
            tp = fp = fn = 0
            vector = np.full(len(labels), threshold)
            for name, scores in report_scores.items():
                mentions = rule_mentions[name] + classifier_mentions(scores, vector, labels, sighting_threshold,
                                                                     "calibration")
                predicted = {catalog.parent_of_any(s.technique_id)
                             for s in decide_sightings(mentions, sighting_threshold)} & universe
                truth = {catalog.parent_of_any(t) for t in report_labels[name]}
                tp, fp, fn = tp + len(predicted & truth), fp + len(predicted - truth), fn + len(truth - predicted)
            f1 = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
            results.append((round(f1, 4), threshold, sighting_threshold))
    best = max(results)
    return {"classifier_threshold": best[1], "sighting_threshold": best[2], "validation_f1": best[0],
            "grid": [list(r) for r in results]}


def train(data_dir: Path, catalog: AttackCatalog, seed: int = 20261127, keep: int = 4000,
          n_jobs: int = 2, data: TrainingData | None = None, **pipeline_args: Any) -> tuple[TechniqueClassifier,
                                                                                            TrainingReport]:
    """Fit, calibrate and package a classifier (not yet saved)."""
    import scipy
    import sklearn

    started = time.perf_counter()
    data = data or load_training_data(data_dir, catalog)
    sentences = data.sentences
    counts = Counter(label for s in sentences for label in set(s.labels))
    labels = sorted(t for t, n in counts.items() if n >= MIN_EXAMPLES and t in catalog.active)
    train_idx, val_idx = split_by_group(sentences, VALIDATION_SHARE, seed)

    build_args = {"seed": seed, **pipeline_args}
    pipeline = build_pipeline(n_jobs=n_jobs, **build_args)
    features = pipeline.named_steps["features"]
    x_train = features.fit_transform([sentences[i].text for i in train_idx])
    x_train.sort_indices()
    y_train = binarize([sentences[i].labels for i in train_idx], labels)
    present = np.asarray(y_train.sum(axis=0)).ravel() > 0
    clf = pipeline.named_steps["clf"]
    clf.fit(x_train, y_train.toarray()[:, present] if not present.all() else y_train.toarray())
    fitted_labels = [label for label, ok in zip(labels, present, strict=True) if ok]
    pipeline.steps[-1] = ("clf", SparseLinearOvR.from_ovr(clf, fitted_labels, keep=keep))

    model = TechniqueClassifier(pipeline=pipeline, labels=fitted_labels, thresholds={}, default_threshold=0.5)

    # threshold: report level on the validation TRAM reports
    by_report: dict[str, list[int]] = {}
    for i in val_idx:
        if sentences[i].source == "tram-report":
            by_report.setdefault(sentences[i].group, []).append(i)
    report_scores = {name: model.predict_proba([sentences[i].text for i in idx]) for name, idx in by_report.items()}
    report_labels = {name: {t for i in idx for t in sentences[i].labels} for name, idx in by_report.items()}
    grid = [round(x, 3) for x in np.concatenate([np.arange(0.02, 0.2, 0.01), np.arange(0.2, 0.95, 0.05)])]
    scored = [(report_level_f1(report_scores, report_labels, fitted_labels, t, catalog), t) for t in grid]
    best_f1, best_threshold = max(scored, key=lambda pair: (pair[0], pair[1]))
    model.default_threshold = float(best_threshold)

    hybrid = calibrate_hybrid(report_scores, report_labels, {n: [sentences[i] for i in idx] for n, idx in
                                                              by_report.items()}, fitted_labels, catalog)
    model.hybrid_threshold = hybrid["classifier_threshold"]
    model.hybrid_sighting_threshold = hybrid["sighting_threshold"]

    seconds = time.perf_counter() - started
    stamp = datetime.now(UTC).strftime("%Y%m%d")
    model.card = {
        "model_version": f"clf-{stamp}-{_digest(PROCEDURE, data.file_hashes, seed, keep, pipeline_args)}",
        "procedure": PROCEDURE,
        "created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "attack_version": catalog.attack_version,
        "seed": seed,
        "build_args": build_args,
        "training_data": {
            "files_sha256": data.file_hashes,
            "sentences": len(sentences),
            "by_source": dict(Counter(s.source for s in sentences)),
            "removed_leaks": data.removed_leaks,
            "removed_by_source": data.removed_by_source,
            "unknown_ids": data.unknown_ids,
            "train_sentences": len(train_idx),
            "validation_sentences": len(val_idx),
            "validation_reports": len(by_report),
            "min_examples_per_label": MIN_EXAMPLES,
        },
        "pipeline": {
            "features": "word 1-2-gram TF-IDF + char_wb n-gram TF-IDF (bounded vocabularies)",
            "classifier": "one-vs-rest logistic regression (SGDClassifier, log loss), weights pruned to "
                          f"the {keep} strongest per technique",
            "keep_per_technique": keep,
        },
        "calibration": {
            "method": "global threshold maximising report-level parent micro-F1 on validation reports",
            "validation_f1": round(best_f1, 4),
            "grid": [[t, round(f, 4)] for f, t in scored],
        },
        "hybrid_calibration": {
            "method": "classifier threshold and sighting threshold of the hybrid rule (all four methods) chosen "
                      "together, maximising report-level parent micro-F1 on the validation reports",
            **hybrid,
        },
        "libraries": {
            "scikit-learn": sklearn.__version__, "numpy": np.__version__, "scipy": scipy.__version__,
            "python": platform.python_version(),
        },
        "train_seconds": round(seconds, 1),
        "license": "Trained on MITRE ATT&CK procedure examples (© 2025 The MITRE Corporation, reproduced with "
                   "permission) and TRAM data (Apache-2.0, Center for Threat-Informed Defense).",
    }
    report = TrainingReport(len(train_idx), len(val_idx), len(fitted_labels), seconds, best_threshold, best_f1)
    return model, report
