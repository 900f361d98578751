"""Out-of-fold sentence scores for the TRAM training reports (5 folds by report, leak-free per fold)."""
import argparse
import pickle
import time
from collections import Counter

import numpy as np

from breachminer.catalog import AttackCatalog
from models.classifier import SparseLinearOvR, binarize, build_pipeline
from models.train import MIN_EXAMPLES
from models.training_data import _slug, leak_form, remove_leaks

ap = argparse.ArgumentParser()
ap.add_argument("--name", required=True)
ap.add_argument("--char", default="3,5")
ap.add_argument("--wf", type=int, default=60000)
ap.add_argument("--cf", type=int, default=60000)
ap.add_argument("--alpha", type=float, default=2e-6)
ap.add_argument("--epochs", type=int, default=8)
ap.add_argument("--keep", type=int, default=4000)
ap.add_argument("--folds", type=int, default=5)
ap.add_argument("--seed", type=int, default=20261127)
ap.add_argument("--leaky", action="store_true", help="do not remove fold-report leaks (old behaviour)")
a = ap.parse_args()

data = pickle.load(open("/tmp/clf-exp/data.pkl", "rb"))
cat = AttackCatalog.load()
S = data.sentences
counts = Counter(l for s in S for l in set(s.labels))
labels = sorted(t for t, n in counts.items() if n >= MIN_EXAMPLES and t in cat.active)
reports = sorted({s.group for s in S if s.source == "tram-report"})
rng = np.random.default_rng(a.seed)
perm = rng.permutation(len(reports))
fold_of = {reports[j]: k % a.folds for k, j in enumerate(perm)}
t0 = time.perf_counter()
char = tuple(int(x) for x in a.char.split(","))
pipe = build_pipeline(word_features=a.wf, char_features=a.cf, char_ngrams=char, alpha=a.alpha, epochs=a.epochs,
                      seed=a.seed, n_jobs=2)
feats = pipe.named_steps["features"]
X = feats.fit_transform([s.text for s in S]).tocsr()
X.sort_indices()
print("features", round(time.perf_counter() - t0, 1), X.shape, flush=True)
Y = binarize([s.labels for s in S], labels).toarray()
oof = {}
for k in range(a.folds):
    t1 = time.perf_counter()
    fold_reports = {r for r in reports if fold_of[r] == k}
    test_idx = [i for i, s in enumerate(S) if s.source == "tram-report" and s.group in fold_reports]
    cand = [i for i, s in enumerate(S) if not (s.source == "tram-report" and s.group in fold_reports)]
    if not a.leaky:
        slugs = {_slug(r) for r in fold_reports}
        t2 = {leak_form(S[i].text) for i in cand if S[i].source == "tram2" and leak_form(S[i].group) in slugs}
        cand = [i for i in cand if not ((S[i].source == "tram2" and leak_form(S[i].group) in slugs) or
                                         (S[i].source == "tram-bootstrap" and leak_form(S[i].text) in t2))]
        texts = {}
        for i in test_idx:
            texts.setdefault(S[i].group, []).append(S[i].text)
        idx_of = {id(S[i]): i for i in cand}
        kept, removed = remove_leaks([S[i] for i in cand if S[i].source != "tram-report"],
                                     [" ".join(v) for v in texts.values()])
        keep_ids = {id(s) for s in kept}
        cand = [i for i in cand if S[i].source == "tram-report" or id(S[i]) in keep_ids]
        print(f"fold {k}: removed {removed}", flush=True)
    ytr = Y[cand]
    present = ytr.sum(axis=0) > 0
    clf = build_pipeline(alpha=a.alpha, epochs=a.epochs, seed=a.seed, n_jobs=2).named_steps["clf"]
    clf.fit(X[cand], ytr[:, present])
    sp_clf = SparseLinearOvR.from_ovr(clf, [l for l, ok in zip(labels, present, strict=False) if ok], keep=a.keep)
    P = np.zeros((len(test_idx), len(labels)), dtype=np.float32)
    P[:, present] = sp_clf.predict_proba(X[test_idx])
    for r in fold_reports:
        rows = [j for j, i in enumerate(test_idx) if S[i].group == r]
        oof[r] = P[rows]
    print(f"fold {k}: {len(fold_reports)} reports, train {len(cand)}, {time.perf_counter() - t1:.1f}s", flush=True)
pickle.dump({"labels": labels, "oof": oof, "fold_of": fold_of, "args": vars(a)},
            open(f"/tmp/clf-exp/oof-{a.name}.pkl", "wb"))
print("total", round(time.perf_counter() - t0, 1))
