"""Honest evaluation on the held-out TRAM reports: every method alone, the hybrid, a TRAM-style baseline.

Unit: the document. A method "predicts" the techniques it sights in a held-out report (the sighting
rule of ``extractors.sightings`` applied to that method's mentions alone; for the hybrid, to all of
them). Truth: the techniques annotated anywhere in the report. Scores are computed over the label
universe (techniques TRAM annotates in any of its reports), because a prediction of a technique TRAM
never annotates cannot be judged. Micro = pooled (report, technique) pairs; macro = mean over
techniques (that occur in the truth or the predictions) of per-technique P/R/F1 (and F0.5, rcATT's
measure); per document = mean over reports of each report's own P/R/F1 (the "per-document F1" that
published report-level mappers quote). Parent level rolls sub-techniques up; exact level does not.

The TRAM-style baseline is CountVectorizer + one-vs-rest LogisticRegression trained on the same
training data, predicting a technique for a report when any sentence scores ≥ 0.5 (TRAM's rule). Every
other method, the classifier alone included, sets aside defender advice as the product does
(``extractors.advice``); the baseline, like TRAM, does not.

How much to trust a difference: the hybrid's margin over every other method (parent micro-F1) comes
with a 95% paired bootstrap interval over reports (:func:`margins`).

The same methods are then scored on the vendor set (``models.vendor_set``): real vendor reports from
``<data>/reports`` whose truth is MITRE's own ATT&CK mapping of them, over every active technique; and
on the annotated shared reports (:func:`evaluate_annotated`): the 27 reports of ``<data>/reports`` with
text, each annotated in full, at report level, by two annotators working blind to each other and to
breachminer's output (``models/annotated_reports.csv``, ``models/annotated_reports_second.csv``).
Neither set is used to choose anything.

:func:`evaluate_labelled` scores the same methods on a user's own annotated reports (``--labels``,
``models.labelled_set``); it needs no training data unless the baseline is wanted.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from breachminer.catalog import AttackCatalog
from breachminer.records import Sentence
from breachminer.settings import DEFAULT_SIGHTING_THRESHOLD
from extractors.advice import advice_sentences
from extractors.sentences import split_sentences
from extractors.sightings import decide_sightings
from models.classifier import TechniqueClassifier, binarize
from models.labelled_set import LabelledSet, load_labelled_set, read_labels
from models.tagger import default_taggers, resolve_sighting_threshold
from models.training_data import (
    HeldoutReport,
    TrainingData,
    load_heldout_reports,
    load_training_data,
    mjson_spans,
    read_attack_objects,
)
from models.vendor_set import load_vendor_reports

METHODS = ("id", "name", "lexicon", "classifier", "hybrid", "tram-baseline")
UNIVERSES = ("all", "labelled")  # evaluate_labelled: which predictions are judged
BOOTSTRAP_SAMPLES = 2000
BOOTSTRAP_SEED = 20261128
ANNOTATED_REPORTS = Path(__file__).with_name("annotated_reports.csv")  # annotator 1: the truth
ANNOTATED_REPORTS_SECOND = Path(__file__).with_name("annotated_reports_second.csv")  # annotator 2, blind to 1
# the held-out reports' techniques TRAM's annotators left out (their ~50 parents only), annotated blind
HELDOUT_COMPLETION = Path(__file__).with_name("heldout_completed.csv")


def label_universe(data_dir: Path, catalog: AttackCatalog) -> set[str]:
    """Every technique annotated in any TRAM full report (resolved through the catalog)."""
    universe: set[str] = set()
    for path in sorted((data_dir / "tram" / "mjson").glob("*.mjson")):
        for _start, _end, cited in mjson_spans(json.loads(path.read_text(encoding="utf-8"))):
            resolved = catalog.resolve(cited).technique_id
            if resolved:
                universe.add(resolved)
    return universe


def scores(predicted: dict[str, set[str]], truth: dict[str, set[str]], universe: set[str],
           level: Callable[[str], str]) -> dict[str, Any]:
    """Micro and macro P/R/F1 over reports, the per-document mean, and per-technique counts, at one level.

    Per document: each report's P/R/F1 of its own technique set, averaged over the reports whose truth
    holds a technique of the universe (a report with nothing to find has no recall); a report with no
    prediction has precision 0. Macro also gives F0.5 (precision weighted), the measure rcATT reports.
    """
    universe_l = {level(t) for t in universe}
    per: dict[str, Counter] = {}
    documents: list[dict[str, float]] = []
    for name, true_set in truth.items():
        t = {level(x) for x in true_set} & universe_l
        p = {level(x) for x in predicted.get(name, set())} & universe_l
        if t:
            documents.append(_prf(len(t & p), len(p - t), len(t - p), rounded=False))
        for technique in t | p:
            counter = per.setdefault(technique, Counter())
            counter["tp"] += technique in t and technique in p
            counter["fp"] += technique in p and technique not in t
            counter["fn"] += technique in t and technique not in p
    tp = sum(c["tp"] for c in per.values())
    fp = sum(c["fp"] for c in per.values())
    fn = sum(c["fn"] for c in per.values())
    per_technique = {t: _prf(c["tp"], c["fp"], c["fn"]) | {"support": c["tp"] + c["fn"]} for t, c in per.items()}
    f05 = {t: _fbeta(c["tp"], c["fp"], c["fn"], 0.5) for t, c in per.items()}
    macro = {k: round(float(np.mean([v[k] for v in per_technique.values()])), 4) if per_technique else 0.0
             for k in ("precision", "recall", "f1")}  # rounded as micro is: the sum order follows set order
    macro["f05"] = round(float(np.mean(sorted(f05.values()))), 4) if f05 else 0.0
    per_document = {k: round(float(np.mean([d[k] for d in documents])), 4) if documents else 0.0
                    for k in ("precision", "recall", "f1")}
    return {"micro": _prf(tp, fp, fn), "macro": macro, "per_document": per_document, "per_technique": per_technique}


def margins(predicted: dict[str, dict[str, set[str]]], truth: dict[str, set[str]], universe: set[str],
            level: Callable[[str], str], reference: str = "hybrid", samples: int = BOOTSTRAP_SAMPLES,
            seed: int = BOOTSTRAP_SEED) -> dict[str, Any]:
    """Micro-F1 of ``reference`` minus each other method's, with a 95% paired bootstrap interval.

    Reports are resampled with replacement (the same resample for every method, so the interval is that
    of the difference, not of two independent scores); each resample's F1 is computed from its pooled
    counts, as the point estimate is. With 30 reports a few long ones carry much of the count, and the
    interval says how far a margin could move on another 30 reports like them.
    """
    names = sorted(truth)
    universe_l = {level(t) for t in universe}

    def counts(method: str) -> np.ndarray:  # (reports, 3): tp, fp, fn
        rows = []
        for name in names:
            t = {level(x) for x in truth[name]} & universe_l
            p = {level(x) for x in predicted[method].get(name, set())} & universe_l
            rows.append((len(t & p), len(p - t), len(t - p)))
        return np.asarray(rows, dtype=float).reshape(len(names), 3)

    def f1(pooled: np.ndarray) -> np.ndarray:
        tp, fp, fn = pooled[..., 0], pooled[..., 1], pooled[..., 2]
        denominator = 2 * tp + fp + fn
        return np.divide(2 * tp, denominator, out=np.zeros_like(tp), where=denominator > 0)

    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(names), size=(samples, len(names)))
    weights = np.stack([np.bincount(row, minlength=len(names)) for row in draws]).astype(float)
    base = counts(reference)
    out: dict[str, Any] = {"reference": reference, "samples": samples, "seed": seed, "methods": {}}
    for method in predicted:
        if method == reference:
            continue
        other = counts(method)
        point = float(f1(base.sum(axis=0)) - f1(other.sum(axis=0)))
        resampled = f1(weights @ base) - f1(weights @ other)
        low, high = np.percentile(resampled, [2.5, 97.5])
        out["methods"][method] = {"margin": round(point, 4), "ci95": [round(float(low), 4), round(float(high), 4)]}
    return out


def _prf(tp: int, fp: int, fn: int, rounded: bool = True) -> dict[str, float]:
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    if not rounded:
        return {"precision": precision, "recall": recall, "f1": f1}
    return {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4)}


def _fbeta(tp: int, fp: int, fn: int, beta: float) -> float:
    """F-beta from counts (0 when there is nothing to score): beta < 1 weighs precision more."""
    weight = beta * beta
    denominator = (1 + weight) * tp + weight * fn + fp
    return (1 + weight) * tp / denominator if denominator else 0.0


def train_tram_baseline(data: TrainingData, labels: list[str], n_jobs: int = 2) -> Any:
    """CountVectorizer + one-vs-rest LogisticRegression on the same sentences (TRAM's classic model)."""
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.pipeline import Pipeline

    texts = [s.text for s in data.sentences]
    y = binarize([s.all_labels for s in data.sentences], labels).toarray()
    keep = y.sum(axis=0) > 0
    vectorizer = CountVectorizer(max_features=100000)
    x = vectorizer.fit_transform(texts)
    x.sort_indices()
    clf = OneVsRestClassifier(LogisticRegression(max_iter=300, solver="liblinear"), n_jobs=n_jobs)
    clf.fit(x, y[:, keep])
    return Pipeline([("vectorizer", vectorizer), ("clf", clf)]), [lab for lab, k in zip(labels, keep, strict=True)
                                                                     if k]


def _predict(texts: dict[str, str], model: TechniqueClassifier, taggers: list,
             hybrid_threshold: float, baseline: tuple[Any, list[str]] | None) -> dict[str, dict[str, set[str]]]:
    """Per method, per report: the techniques that method sights in the report's text."""
    predicted: dict[str, dict[str, set[str]]] = {m: {} for m in METHODS if baseline or m != "tram-baseline"}
    for name, text in texts.items():
        sentences = split_sentences(text)
        mentions = [m for tagger in taggers for m in tagger.tag(sentences)]
        for method in ("id", "name", "lexicon"):
            predicted[method][name] = _sighted((m for m in mentions if m.method == method), sentences)
        # the classifier alone: a technique when any sentence that is not advice reaches its own threshold
        sentence_scores = model.predict_proba([s.text for s in sentences])
        observed = sorted({s.index for s in sentences} - advice_sentences(sentences))
        hits = np.flatnonzero((sentence_scores[observed] >= model.threshold_vector()).any(axis=0)) if observed else []
        predicted["classifier"][name] = {model.labels[j] for j in hits}
        predicted["hybrid"][name] = _sighted(mentions, sentences, hybrid_threshold)
        if baseline:
            pipeline, baseline_labels = baseline
            rows = [s.text for s in sentences]
            probabilities = pipeline.predict_proba(rows) if rows else np.zeros((0, len(baseline_labels)))
            hits = np.flatnonzero((probabilities >= 0.5).any(axis=0)) if rows else []
            predicted["tram-baseline"][name] = {baseline_labels[j] for j in hits}
    return predicted


def _table(predicted: dict[str, dict[str, set[str]]], truth: dict[str, set[str]], universe: set[str],
           catalog: AttackCatalog) -> dict[str, dict[str, dict[str, Any]]]:
    return {method: {"parent": scores(by_report, truth, universe, catalog.parent_of_any),
                     "exact": scores(by_report, truth, universe, lambda t: t)}
            for method, by_report in predicted.items()}


def _summary(table: dict[str, dict[str, dict[str, Any]]]) -> dict[str, Any]:
    return {m: {lvl: {k: v for k, v in res.items() if k != "per_technique"} for lvl, res in levels.items()}
            for m, levels in table.items()}


def evaluate(data_dir: Path, catalog: AttackCatalog, model: TechniqueClassifier,
             data: TrainingData | None = None, with_baseline: bool = True, with_vendor: bool = True,
             with_annotated: bool = True, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """The full evaluation table on the held-out TRAM reports, and the same methods on the vendor set and
    on the annotated shared reports."""
    started = time.perf_counter()
    say = progress or (lambda _message: None)
    reports: list[HeldoutReport] = load_heldout_reports(data_dir, catalog)
    universe = label_universe(data_dir, catalog)
    truth = {r.name: set(r.labels) for r in reports}
    taggers = default_taggers(catalog, model)
    hybrid_threshold = resolve_sighting_threshold(None, model)
    baseline = None
    if with_baseline:
        say("training the TRAM-style baseline on the same data")
        data = data or load_training_data(data_dir, catalog)
        baseline = train_tram_baseline(data, model.labels)
    say(f"tagging {len(reports)} held-out reports")
    predicted = _predict({r.name: r.text for r in reports}, model, taggers, hybrid_threshold, baseline)
    table = _table(predicted, truth, universe, catalog)
    results: dict[str, Any] = {
        "heldout_reports": len(reports),
        "label_universe": len(universe),
        "model_version": model.version,
        "threshold": model.default_threshold,
        "hybrid": {"classifier_threshold": model.hybrid_threshold, "sighting_threshold": hybrid_threshold},
        "methods": _summary(table),
        "hybrid_margin_parent_micro": margins(predicted, truth, universe, catalog.parent_of_any),
        "top20_parent": _top20(table, truth, universe, catalog),
    }
    completion = read_heldout_completion(catalog)
    if completion:
        results["heldout_completed"] = _completed_scores(predicted, truth, completion, universe, catalog)
    if with_vendor:
        results["vendor"] = evaluate_vendor(data_dir, catalog, model, taggers, hybrid_threshold, baseline, say)
    if with_annotated:
        results["annotated"] = evaluate_annotated(Path(data_dir) / "reports", catalog, model, taggers,
                                                  hybrid_threshold, baseline, say)
    results["seconds"] = round(time.perf_counter() - started, 1)
    return results


def read_heldout_completion(catalog: AttackCatalog, path: Path = HELDOUT_COMPLETION) -> dict[str, set[str]]:
    """``report -> techniques`` from ``heldout_completed.csv`` (none when absent).

    TRAM's annotators marked some sentences of each report for about 50 techniques; a blind, complete
    annotation of the 30 held-out reports for the same techniques finds about 40% more report-level
    pairs (parent level). Added to TRAM's own labels, it is the truth of the "completed" held-out table.
    The file has the layout of the other annotation files (``document``, ``technique``, ``certain``).
    """
    return read_labels(path, catalog)[0] if path.exists() else {}


def _completed_scores(predicted: dict[str, dict[str, set[str]]], truth: dict[str, set[str]],
                      completion: dict[str, set[str]], universe: set[str], catalog: AttackCatalog) -> dict[str, Any]:
    """The held-out table again, its truth TRAM's labels completed by ``completion`` (same predictions)."""
    completed = {name: truth[name] | completion.get(name, set()) for name in truth}
    parent = catalog.parent_of_any
    # a tagger that found exactly the completed truth, scored as the TRAM-labelled table scores (TRAM's
    # labels, TRAM's universe): what finding everything the reports hold is worth on that table
    bound = {level: scores(completed, truth, universe, fn)["micro"]
             for level, fn in (("parent", parent), ("exact", lambda t: t))}
    universe = universe | {t for techniques in completion.values() for t in techniques}
    return {
        "truth_pairs_parent": sum(len({parent(t) for t in labels}) for labels in completed.values()),
        "tram_pairs_parent": sum(len({parent(t) for t in labels}) for labels in truth.values()),
        "completed_truth_vs_tram": bound,
        "methods": _summary(_table(predicted, completed, universe, catalog)),
        "hybrid_margin_parent_micro": margins(predicted, completed, universe, parent),
    }


def _top20(table: dict[str, dict[str, dict[str, Any]]], truth: dict[str, set[str]], universe: set[str],
           catalog: AttackCatalog) -> list[dict[str, Any]]:
    """Per-technique parent-level scores of every method for the 20 techniques most often in the truth."""
    # support = reports whose truth holds the technique or one of its sub-techniques (a report counts once)
    frequent = Counter(t for labels in truth.values() for t in {catalog.parent_of_any(x) for x in labels & universe})
    top20 = [t for t, _ in sorted(frequent.items(), key=lambda kv: (-kv[1], kv[0]))[:20]]
    return [
        {"technique": t, "support": frequent[t],
         **{m: table[m]["parent"]["per_technique"].get(t, {"precision": 0.0, "recall": 0.0, "f1": 0.0})
            for m in table}}
        for t in top20
    ]


def evaluate_labelled(labels_file: Path, catalog: AttackCatalog, model: TechniqueClassifier,
                      universe: str = "all", data_dir: Path | None = None,
                      progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Every method, the hybrid (and the TRAM-style baseline when ``data_dir`` holds training data) on a
    user's own annotated reports (``models.labelled_set``).

    ``universe``: ``"all"`` judges predictions of every active technique (annotators who mark whatever
    they see); ``"labelled"`` only those of techniques that occur somewhere in the file (annotators who
    work from a fixed list, as TRAM's did), so a prediction they could never have marked is not counted.
    """
    started = time.perf_counter()
    say = progress or (lambda _message: None)
    if universe not in UNIVERSES:
        raise ValueError(f"universe must be one of {', '.join(UNIVERSES)}, not {universe!r}")
    labelled = load_labelled_set(labels_file, catalog)
    truth = {r.name: set(r.labels) for r in labelled.reports}
    scored_universe = set(catalog.active) if universe == "all" else set().union(*truth.values())
    baseline = None
    if data_dir is not None and labelled.reports:
        say("training the TRAM-style baseline on the training data")
        baseline = train_tram_baseline(load_training_data(data_dir, catalog), model.labels)
    say(f"tagging {len(labelled.reports)} labelled reports" +
        (f" ({len(labelled.skipped)} skipped)" if labelled.skipped else ""))
    predicted = _predict({r.name: r.text for r in labelled.reports}, model, default_taggers(catalog, model),
                         resolve_sighting_threshold(None, model), baseline)
    table = _table(predicted, truth, scored_universe, catalog)
    return {
        "labels_file": str(labels_file),
        "universe": universe,
        "label_universe": len(scored_universe),
        "model_version": model.version,
        **_labelled_scores(labelled, predicted, truth, scored_universe, catalog, table),
        "top20_parent": _top20(table, truth, scored_universe, catalog),
        "per_report": [
            {"report": r.name, "truth": sorted(r.labels), **{m: sorted(predicted[m][r.name]) for m in predicted}}
            for r in labelled.reports
        ],
        "seconds": round(time.perf_counter() - started, 1),
    }


def evaluate_vendor(data_dir: Path, catalog: AttackCatalog, model: TechniqueClassifier, taggers: list,
                    hybrid_threshold: float, baseline: tuple[Any, list[str]] | None,
                    say: Callable[[str], None]) -> dict[str, Any]:
    """Every method on the vendor reports of ``models/vendor_reports.csv``, against MITRE's mapping.

    The universe is every active technique: MITRE may cite any of them. Its truth is incomplete (see
    ``models.vendor_set``), so precision here is a lower bound; compare methods, and read recall.
    """
    objects = read_attack_objects(data_dir)
    reports, skipped = load_vendor_reports(objects, catalog, Path(data_dir) / "reports")
    say(f"tagging {len(reports)} vendor reports" + (f" ({len(skipped)} skipped)" if skipped else ""))
    truth = {r.name: set(r.labels) for r in reports}
    predicted = _predict({r.name: r.text for r in reports}, model, taggers, hybrid_threshold, baseline)
    table = _table(predicted, truth, set(catalog.active), catalog)
    return {
        "reports": len(reports),
        "truth_pairs": sum(len(t) for t in truth.values()),
        "skipped": skipped,
        "methods": _summary(table),
        "hybrid_margin_parent_micro": margins(predicted, truth, set(catalog.active), catalog.parent_of_any),
        "per_report": [
            {"report": r.name, "attack_reference": r.reference, "truth": sorted(r.labels),
             **{m: sorted(predicted[m][r.name]) for m in predicted}}
            for r in reports
        ],
    }


def evaluate_annotated(reports_dir: Path, catalog: AttackCatalog, model: TechniqueClassifier, taggers: list,
                       hybrid_threshold: float, baseline: tuple[Any, list[str]] | None,
                       say: Callable[[str], None], labels_file: Path = ANNOTATED_REPORTS,
                       second_file: Path = ANNOTATED_REPORTS_SECOND) -> dict[str, Any]:
    """Every method on the annotated shared reports, over every active technique.

    Truth is the first annotation; the second (blind to the first) scores the same predictions again and
    measures how far two annotators agree (micro-F1 of one against the other), the ceiling a tagger is
    judged against. Both annotations mark what each report says the adversary or its malware did,
    including what the report names only by technique ID; ``certain = no`` rows are judgement calls
    and count like the others.
    """
    labelled = load_labelled_set(labels_file, catalog, documents_dir=reports_dir)
    say(f"tagging {len(labelled.reports)} annotated shared reports" +
        (f" ({len(labelled.skipped)} skipped)" if labelled.skipped else ""))
    truth = {r.name: set(r.labels) for r in labelled.reports}
    predicted = _predict({r.name: r.text for r in labelled.reports}, model, taggers, hybrid_threshold, baseline)
    active = set(catalog.active)
    results = _labelled_scores(labelled, predicted, truth, active, catalog)
    second_labels, _ignored = read_labels(second_file, catalog)
    second = {name: second_labels.get(name, set()) for name in truth}
    results["second_annotator"] = {
        "truth_pairs": sum(len(t) for t in second.values()),
        "frequency_parent": frequency_agreement(second, truth, catalog.parent_of_any),
        "agreement_f1": {"parent": _agreement(truth, second, catalog.parent_of_any),
                         "exact": _agreement(truth, second, lambda t: t)},
        "methods": _summary(_table(predicted, second, active, catalog)),
    }
    results["per_report"] = [
        {"report": name, "truth": sorted(truth[name]), "second_annotator": sorted(second[name]),
         **{m: sorted(predicted[m][name]) for m in predicted}}
        for name in truth
    ]
    return results


def _labelled_scores(labelled: LabelledSet, predicted: dict[str, dict[str, set[str]]], truth: dict[str, set[str]],
                     universe: set[str], catalog: AttackCatalog,
                     table: dict[str, dict[str, dict[str, Any]]] | None = None) -> dict[str, Any]:
    """What every annotated set reports: its size, what was left out, each method's scores, the margins."""
    table = table or _table(predicted, truth, universe, catalog)
    return {
        "reports": len(labelled.reports),
        "truth_pairs": sum(len(t) for t in truth.values()),
        "skipped": labelled.skipped,
        "ignored_labels": [vars(i) for i in labelled.ignored],
        "methods": _summary(table),
        "hybrid_margin_parent_micro": margins(predicted, truth, universe, catalog.parent_of_any) if truth else None,
        "frequency_parent": {method: frequency_agreement(_within(predicted[method], universe), truth,
                                                         catalog.parent_of_any) for method in predicted},
    }


def _within(predicted: dict[str, set[str]], universe: set[str]) -> dict[str, set[str]]:
    """Predictions of the parent techniques a set judges (as its parent-level F1 counts them)."""
    parents = {AttackCatalog.parent_of_any(t) for t in universe}
    return {name: {t for t in techniques if AttackCatalog.parent_of_any(t) in parents}
            for name, techniques in predicted.items()}


def frequency_agreement(predicted: dict[str, set[str]], truth: dict[str, set[str]], level: Callable[[str], str],
                        ks: tuple[int, ...] = (10, 20), n_largest: int = 5) -> dict[str, Any]:
    """How close a method's frequency table (reports per technique, at ``level``) is to the annotators'.

    The question the product answers is "which techniques are most frequent", so besides per-report
    F1 this compares the two tables themselves: Spearman's rank correlation of the report counts over
    every technique either side counts at least once, how many of the annotators' top-k techniques
    are in the method's top-k (ties broken by ID), and the techniques counted most too often and too
    rarely.
    """
    from scipy.stats import spearmanr

    counted = Counter(level(t) for name in truth for t in {level(t) for t in predicted.get(name, ())})
    true = Counter(level(t) for name in truth for t in {level(t) for t in truth[name]})
    techniques = sorted(set(counted) | set(true))
    if len(techniques) < 2:
        return {"techniques": len(techniques), "spearman": None, "top_overlap": {}, "over": [], "under": []}
    rho = spearmanr([counted[t] for t in techniques], [true[t] for t in techniques]).statistic

    def top(counts: Counter[str], k: int) -> set[str]:
        return set(sorted(counts, key=lambda t: (-counts[t], t))[:k])

    difference = sorted(techniques, key=lambda t: (counted[t] - true[t], t))
    return {
        "techniques": len(techniques),
        "spearman": round(float(rho), 4),
        "top_overlap": {str(k): len(top(counted, k) & top(true, k)) for k in ks},
        "over": [[t, counted[t], true[t]] for t in reversed(difference[-n_largest:]) if counted[t] > true[t]],
        "under": [[t, counted[t], true[t]] for t in difference[:n_largest] if counted[t] < true[t]],
    }


def _agreement(first: dict[str, set[str]], second: dict[str, set[str]], level: Callable[[str], str]) -> float:
    """Micro-F1 of one annotation against the other (symmetric): 2·|both| / (|first| + |second|)."""
    both = sum(len({level(t) for t in first[r]} & {level(t) for t in second[r]}) for r in first)
    total = sum(len({level(t) for t in first[r]}) + len({level(t) for t in second[r]}) for r in first)
    return round(2 * both / total, 4) if total else 0.0


def _sighted(mentions: Iterable, sentences: list[Sentence], threshold: float | None = None) -> set[str]:
    return {s.technique_id for s in decide_sightings(mentions, threshold or DEFAULT_SIGHTING_THRESHOLD, sentences)}
