"""Benchmark (by hand): an rcATT-style report-level baseline, scored as ``breachminer evaluate`` scores.

    PYTHONPATH=. /tmp/venv/bin/python bench/rcatt_style.py [--data ../shared/data] [--variants tram,tram+proc]

rcATT (Legoy et al. 2020, github.com/vlegoy/rcATT) classifies a *whole report*: TF-IDF over its words,
one-vs-rest LinearSVC, trained on report-level technique sets. This rebuilds that approach on the data
breachminer itself may train on, and answers "how does breachminer compare with rcATT's approach?":

- documents: the 121 TRAM training reports (``tram/mjson`` minus ``models/heldout_reports.txt``), read by
  ``load_heldout_reports`` (same text normalisation as the held-out ones); sentences that occur in a
  held-out or vendor report are dropped (``remove_leaks``, as ``load_training_data`` does). Labels: TRAM's,
  revoked IDs resolved, plus the supplementary ones (``tram_extra_labels.csv``) for parents TRAM never judged
  (``models.train.training_targets``' rule). Variant ``tram+proc`` adds ATT&CK procedure examples as one
  pseudo-document per cited reference (what ``load_training_data`` keeps: held-out and vendor paraphrases
  withheld); cross-validation folds also withhold their reports' paraphrases (``fold_training_indexes``).
- model: TfidfVectorizer (word 1-2-grams, sublinear tf, 50k features) + OneVsRest LinearSVC (seeded), for
  techniques with >= ``--min-docs`` training documents.
- threshold: one global decision-function threshold, maximising parent micro-F1 of out-of-fold scores of the
  121 training reports (breachminer's 4 report folds, ``report_folds``); never the evaluation sets.
- scoring: ``models.evaluate.scores`` on the 30 held-out reports (TRAM label universe), the vendor set and
  the annotated shared reports (every active technique); breachminer's rows come from the model card.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
THRESHOLDS = np.round(np.arange(-1.0, 0.601, 0.05), 2)
Docs = dict[str, tuple[str, set[str]]]  # name -> (text, labels)


def tram_documents(data_dir: Path, catalog: Any, data: Any, withheld_texts: list[str]) -> tuple[Docs, dict]:
    """The TRAM training reports as documents (training labels) and their TRAM truth (for thresholds)."""
    from extractors.sentences import split_sentences
    from models.training_data import LabelledSentence, load_heldout_reports, read_heldout_names, remove_leaks

    held = set(read_heldout_names())
    names = sorted(p.name for p in (data_dir / "tram" / "mjson").glob("*.mjson") if p.name not in held)
    reports = load_heldout_reports(data_dir, catalog, names)
    extra: dict[str, set[str]] = {}
    for s in data.sentences:
        if s.source == "tram-report" and s.extra:
            extra.setdefault(s.group, set()).update(s.extra)
    judged = {catalog.parent_of_any(t) for r in reports for t in r.labels}
    docs, truth = {}, {}
    for r in reports:
        rows = [LabelledSentence(s.text, (), "tram-report", r.name) for s in split_sentences(r.text)]
        kept, _removed = remove_leaks(rows, withheld_texts)
        added = {t for t in extra.get(r.name, ()) if catalog.parent_of_any(t) not in judged}
        docs[r.name] = (" ".join(s.text for s in kept), set(r.labels) | added)
        truth[r.name] = set(r.labels)
    return docs, truth


def procedure_documents(data_dir: Path, catalog: Any, sentences: list[Any]) -> Docs:
    """ATT&CK procedure examples among ``sentences``, one pseudo-document per reference they cite."""
    from models.training_data import _procedure_examples, _Resolver, read_attack_objects

    refs: dict[tuple[str, tuple[str, ...]], set[str]] = {}
    for rel, s in _procedure_examples(read_attack_objects(data_dir), _Resolver(catalog)):
        names = {r["source_name"] for r in rel.get("external_references", []) if r.get("source_name")}
        refs.setdefault((s.text, s.labels), set()).update(names)
    docs: dict[str, tuple[list[str], set[str]]] = {}
    for s in sentences:
        if s.source == "attack-procedure":
            for ref in refs.get((s.text, s.labels), ()):
                texts, labels = docs.setdefault(ref, ([], set()))
                texts.append(s.text)
                labels.update(s.labels)
    return {f"ref:{ref}": (" ".join(texts), labels) for ref, (texts, labels) in docs.items()}


def fit(docs: Docs, min_docs: int, seed: int, max_features: int) -> tuple[Any, list[str]]:
    """TF-IDF word 1-2-grams + one-vs-rest LinearSVC on report-level label sets."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import MultiLabelBinarizer
    from sklearn.svm import LinearSVC

    names = sorted(docs)
    binarizer = MultiLabelBinarizer()
    y = binarizer.fit_transform([sorted(docs[n][1]) for n in names])
    keep = y.sum(axis=0) >= min_docs
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, max_features=max_features, min_df=2)
    model = Pipeline([("tfidf", vectorizer),
                      ("clf", OneVsRestClassifier(LinearSVC(C=1.0, random_state=seed), n_jobs=1))])
    model.fit([docs[n][0] for n in names], y[:, keep])
    return model, [lab for lab, k in zip(binarizer.classes_, keep, strict=True) if k]


def predict(model: Any, labels: list[str], texts: dict[str, str], threshold: float) -> dict[str, set[str]]:
    """Each text's techniques: those whose decision value reaches ``threshold``."""
    names = list(texts)
    values = model.decision_function([texts[n] for n in names]) if names else np.zeros((0, len(labels)))
    return {n: {labels[j] for j in np.flatnonzero(row >= threshold)} for n, row in zip(names, values, strict=True)}


def choose_threshold(oof: dict[str, np.ndarray], labels: dict[str, list[str]], truth: dict[str, set[str]],
                     parent: Callable[[str], str]) -> tuple[float, float]:
    """The global threshold with the best parent micro-F1 over the out-of-fold reports (ties: the higher)."""
    from models.evaluate import scores

    universe = set().union(*truth.values())
    best = (-1.0, 0.0)
    for threshold in THRESHOLDS:
        predicted = {n: {labels[n][j] for j in np.flatnonzero(v >= threshold)} for n, v in oof.items()}
        f1 = scores(predicted, truth, universe, parent)["micro"]["f1"]
        best = max(best, (f1, float(threshold)))
    return best[1], best[0]


def run_variant(variant: str, args: argparse.Namespace, catalog: Any, data: Any, tram: Docs,
                truth: dict[str, set[str]], eval_sets: dict[str, tuple[dict, dict, set]]) -> dict[str, Any]:
    """Cross-validate the threshold, fit on everything, score every evaluation set."""
    from models.train import fold_training_indexes, report_folds

    folds = report_folds(data.sentences, args.folds, args.seed)
    started = time.perf_counter()
    oof: dict[str, np.ndarray] = {}
    oof_labels: dict[str, list[str]] = {}
    for k in range(args.folds):
        fold = {n for n, f in folds.items() if f == k}
        docs = {n: d for n, d in tram.items() if n not in fold}
        if variant == "tram+proc":
            kept, _ = fold_training_indexes(data.sentences, fold, data.report_paraphrases)
            docs |= procedure_documents(args.data, catalog, [data.sentences[i] for i in kept])
        model, labels = fit(docs, args.min_docs, args.seed, args.max_features)
        values = model.decision_function([tram[n][0] for n in sorted(fold)])
        oof.update({n: v for n, v in zip(sorted(fold), values, strict=True)})
        oof_labels.update({n: labels for n in fold})
    threshold, cv_f1 = choose_threshold(oof, oof_labels, truth, catalog.parent_of_any)
    cv_seconds = time.perf_counter() - started
    started = time.perf_counter()
    docs = dict(tram) | (procedure_documents(args.data, catalog, data.sentences) if variant == "tram+proc" else {})
    model, labels = fit(docs, args.min_docs, args.seed, args.max_features)
    out = {"threshold": threshold, "cv_f1": cv_f1, "cv_s": cv_seconds, "fit_s": time.perf_counter() - started,
           "docs": len(docs), "labels": len(labels), "sets": {}}
    for name, (texts, set_truth, universe) in eval_sets.items():
        started = time.perf_counter()
        predicted = predict(model, labels, texts, threshold)
        out["sets"][name] = _levels(predicted, set_truth, universe, catalog)
        out.setdefault("ms_per_report", {})[name] = 1000 * (time.perf_counter() - started) / max(len(texts), 1)
    return out


def _levels(predicted: dict, truth: dict, universe: set[str], catalog: Any) -> dict[str, Any]:
    from models.evaluate import scores

    return {"parent": scores(predicted, truth, universe, catalog.parent_of_any),
            "exact": scores(predicted, truth, universe, lambda t: t)}


def evaluation_sets(data_dir: Path, catalog: Any) -> dict[str, tuple[dict, dict, set]]:
    """name -> (texts, truth, universe) for the held-out reports, the vendor set, the annotated reports."""
    from models.evaluate import ANNOTATED_REPORTS, label_universe
    from models.labelled_set import load_labelled_set
    from models.training_data import load_heldout_reports, read_attack_objects
    from models.vendor_set import load_vendor_reports

    active = set(catalog.active)
    held = load_heldout_reports(data_dir, catalog)
    out = {"held-out": ({r.name: r.text for r in held}, {r.name: set(r.labels) for r in held},
                        label_universe(data_dir, catalog))}
    vendor, _skipped = load_vendor_reports(read_attack_objects(data_dir), catalog, data_dir / "reports")
    if vendor:
        out["vendor"] = ({r.name: r.text for r in vendor}, {r.name: set(r.labels) for r in vendor}, active)
    annotated = load_labelled_set(ANNOTATED_REPORTS, catalog, documents_dir=data_dir / "reports")
    if annotated.reports:
        out["annotated"] = ({r.name: r.text for r in annotated.reports},
                            {r.name: set(r.labels) for r in annotated.reports}, active)
    return out


def _row(label: str, levels: dict[str, Any]) -> str:
    p, e = levels["parent"], levels["exact"]
    cells = [p["micro"]["precision"], p["micro"]["recall"], p["micro"]["f1"], p["macro"]["f1"],
             e["micro"]["f1"], e["macro"]["f1"], e["macro"]["f05"]]
    return f"{label:<34}" + "".join(f"{c:>8.3f}" for c in cells)


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, train and score every variant, print the table; 0 also when data is absent."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--variants", default="tram,tram+proc", help="comma-separated: tram, tram+proc")
    parser.add_argument("--folds", type=int, default=4)
    parser.add_argument("--min-docs", type=int, default=3)
    parser.add_argument("--max-features", type=int, default=50000)
    parser.add_argument("--seed", type=int, default=20261127)
    args = parser.parse_args(argv)
    if not ((args.data / "tram" / "mjson").is_dir() and (args.data / "attack").is_dir()):
        print(f"skipped: no training data at {args.data} (needs tram/mjson and attack/; pass --data DIR)")
        return 0
    from breachminer.catalog import AttackCatalog
    from breachminer.settings import get_settings
    from models.training_data import load_training_data

    started = time.perf_counter()
    catalog = AttackCatalog.load(get_settings().catalog_path)
    data = load_training_data(args.data, catalog)
    eval_sets = evaluation_sets(args.data, catalog)
    withheld = [t for name in ("held-out", "vendor") if name in eval_sets for t in eval_sets[name][0].values()]
    tram, truth = tram_documents(args.data, catalog, data, withheld)
    print(f"data: {len(tram)} TRAM training reports, eval sets "
          + ", ".join(f"{k} {len(v[0])}" for k, v in eval_sets.items())
          + f" ({time.perf_counter() - started:.0f} s to load)")
    results = {v: run_variant(v, args, catalog, data, tram, truth, eval_sets) for v in args.variants.split(",")}
    card = json.loads((REPO / "models" / "artifacts" / "model-card.json").read_text(encoding="utf-8"))["evaluation"]
    stored = {"held-out": card["methods"], "vendor": card.get("vendor", {}).get("methods", {}),
              "annotated": card.get("annotated", {}).get("methods", {})}
    print(f"\n{'set / method':<34}{'pP':>8}{'pR':>8}{'pF1':>8}{'pMaF1':>8}{'eF1':>8}{'eMaF1':>8}{'eMaF.5':>8}")
    for name in eval_sets:
        for variant, res in results.items():
            print(_row(f"{name}: rcATT-style {variant}", res["sets"][name]))
        for method in ("hybrid", "classifier", "tram-baseline"):
            if method in stored[name]:
                print(_row(f"{name}: bm {method} (card)", stored[name][method]))
    print("\np = parent, e = exact; micro unless Ma (macro); F.5 = macro F0.5 (rcATT's measure)")
    for variant, res in results.items():
        speed = ", ".join(f"{k} {v:.1f}" for k, v in res["ms_per_report"].items())
        print(f"{variant}: {res['docs']} training docs, {res['labels']} techniques, threshold {res['threshold']:+.2f} "
              f"(CV parent micro-F1 {res['cv_f1']:.3f}); CV {res['cv_s']:.0f} s, final fit {res['fit_s']:.0f} s; "
              f"scoring ms/report: {speed}")
    print(f"total {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
