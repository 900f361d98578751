"""Report-level aggregation / combination experiments on out-of-fold scores (validation only)."""
import itertools
import pickle
import sys

import numpy as np

from breachminer.catalog import AttackCatalog
from extractors.sightings import decide_sightings
from models.tagger import classifier_mentions

cat = AttackCatalog.load()
R = pickle.load(open("/tmp/clf-exp/reports.pkl", "rb"))
O = pickle.load(open(sys.argv[1], "rb"))
labels, oof, fold_of = O["labels"], O["oof"], O["fold_of"]
names = sorted(oof)
par = [cat.parent_of_any(l) for l in labels]
parents = sorted(set(par) | {cat.parent_of_any(t) for n in names for t in R[n]["labels"]}
                 | {cat.parent_of_any(m.technique_id) for n in names for m in R[n]["rules"] if m.technique_id})
pidx = {p: i for i, p in enumerate(parents)}
lp = np.array([pidx[p] for p in par])
universe = np.zeros(len(parents), bool)
for n in names:
    for t in R[n]["labels"]:
        universe[pidx[cat.parent_of_any(t)]] = True
NR, NL, NP = len(names), len(labels), len(parents)
truth = np.zeros((NR, NP), bool)
p1 = np.zeros((NR, NL)); p2 = np.zeros((NR, NL)); p3 = np.zeros((NR, NL))
has_id = np.zeros((NR, NP), bool); rule_nor = np.zeros((NR, NP)); rule_max = np.zeros((NR, NP))
for r, n in enumerate(names):
    for t in R[n]["labels"]:
        truth[r, pidx[cat.parent_of_any(t)]] = True
    P = np.sort(oof[n], axis=0)[::-1]
    if len(P):
        p1[r] = P[0]
    if len(P) > 1:
        p2[r] = P[1]
    if len(P) > 2:
        p3[r] = P[2]
    for s in decide_sightings(R[n]["rules"], 0.0):
        j = pidx[cat.parent_of_any(s.technique_id)]
        rule_nor[r, j] = max(rule_nor[r, j], s.score)
        if "id" in s.methods:
            has_id[r, j] = True
    for m in R[n]["rules"]:
        if m.technique_id:
            j = pidx[cat.parent_of_any(m.technique_id)]
            rule_max[r, j] = max(rule_max[r, j], m.score)
folds = np.array([fold_of[n] for n in names])


def to_parent(hit_l):  # (nr, NL) bool -> (nr, NP)
    out = np.zeros((hit_l.shape[0], NP), bool)
    for j in range(NL):
        out[:, lp[j]] |= hit_l[:, j]
    return out


M = np.zeros((NL, NP), np.float32); M[np.arange(NL), lp] = 1
ORDER = np.argsort(lp, kind="stable"); LPS = lp[ORDER]
STARTS = np.flatnonzero(np.r_[True, LPS[1:] != LPS[:-1]]); UP = LPS[STARTS]


def parent_max(x):  # (nr, NL) -> (nr, NP) max over each parent's labels
    out = np.zeros((x.shape[0], NP), x.dtype)
    out[:, UP] = np.maximum.reduceat(x[:, ORDER], STARTS, axis=1)
    return out


def tp_fp_fn(pred, rows):
    pred = pred & universe; t = truth[rows] & universe
    return (pred & t).sum(), (pred & ~t).sum(), (~pred & t).sum()


def f1(c):
    tp, fp, fn = c
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def predict(rows, theta, a=9.0, b=9.0, rmin=9.0, Tr=9.0, c=0.0, rules=False):
    th = theta[None, :]
    hit = (p1[rows] >= th) | (p2[rows] >= a * th)
    if rules:
        hit |= (rule_max[rows][:, lp] >= rmin) & (p1[rows] >= b * th)
    pred = parent_max(hit)
    if rules:
        support = parent_max(p1[rows] / th) if c > 0 else None
        rh = rule_nor[rows] >= Tr
        if c > 0:
            rh &= support >= c
        pred |= has_id[rows] | rh
    return pred


def pertech(rows, g, m, w=0.6):
    """Per-label thresholds maximising (1-F/2)TP-(F/2)FP at parent level on rows, shrunk to g with m."""
    theta = np.full(NL, g)
    if m == np.inf:
        return theta
    grid = np.array(sorted(set(np.round(np.concatenate([np.arange(0.03, 0.2, 0.01), np.arange(0.2, 0.95, 0.05)]), 3))))
    P1 = p1[rows]; T = truth[rows][:, lp]
    for j in range(NL):
        pos = T[:, j]; npos = pos.sum()
        if npos == 0 and (P1[:, j] >= g).sum() == 0:
            continue
        hits = P1[:, j][:, None] >= grid[None, :]
        u = w * (hits & pos[:, None]).sum(0) - (1 - w) * (hits & ~pos[:, None]).sum(0)
        best = grid[np.flatnonzero(u == u.max())]
        bt = best[np.argmin(np.abs(best - g))]
        n = npos + (P1[:, j] >= g).sum() * 0  # positives as evidence size
        n = max(n, (P1[:, j] >= 0.5 * g).sum())
        theta[j] = np.exp((n * np.log(bt) + m * np.log(g)) / (n + m))
    return theta


GS = [0.05, 0.07, 0.09, 0.11, 0.13, 0.15, 0.18, 0.2, 0.25, 0.3, 0.35, 0.4]


def choose(rows, mode):
    """Best params on rows for a mode; returns (f1, params)."""
    best = (-1, None)
    if mode == "clf-global":
        for g in GS:
            s = f1(tp_fp_fn(predict(rows, np.full(NL, g)), rows)); best = max(best, (s, (g,)), key=lambda x: x[0])
    elif mode == "clf-pertech":
        for g in GS:
            for m in (0, 2, 5, 10, 20, 50, np.inf):
                th = pertech(rows, g, m)
                s = f1(tp_fp_fn(predict(rows, th), rows)); best = max(best, (s, (g, m)), key=lambda x: x[0])
    elif mode == "clf-pertech-multi":
        for g in GS:
            for m in (2, 5, 10, 20, np.inf):
                th = pertech(rows, g, m)
                for a in (9.0, 1.0, 0.8, 0.6, 0.5):
                    s = f1(tp_fp_fn(predict(rows, th, a=a), rows)); best = max(best, (s, (g, m, a)), key=lambda x: x[0])
    elif mode == "hybrid-new":
        for g in GS:
            for m in (5, 10, 20, np.inf):
                th = pertech(rows, g, m)
                for a, b, rmin, Tr, c in itertools.product((9.0, 0.8, 0.6), (9.0, 0.7, 0.5, 0.35), (0.4, 0.7),
                                                         (0.6, 0.8, 9.0), (0.0, 0.3)):
                    if b == 9.0 and rmin == 0.7:
                        continue
                    s = f1(tp_fp_fn(predict(rows, th, a, b, rmin, Tr, c, rules=True), rows))
                    best = max(best, (s, (g, m, a, b, rmin, Tr, c)), key=lambda x: x[0])
    return best


def apply(rows, mode, params, fit_rows):
    if mode == "clf-global":
        return predict(rows, np.full(NL, params[0]))
    th = pertech(fit_rows, params[0], params[1])
    if mode == "clf-pertech":
        return predict(rows, th)
    if mode == "clf-pertech-multi":
        return predict(rows, th, a=params[2])
    return predict(rows, th, *params[2:], rules=True)


def current_hybrid(rows):
    """The shipped rule (classifier_mentions + noisy-OR), grid as in calibrate_hybrid."""
    best = (-1, None)
    for T in (0.5, 0.6, 0.7, 0.8):
        for h in (0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5, 0.6):
            c = np.zeros(3)
            for r in rows:
                n = names[r]
                ms = R[n]["rules"] + classifier_mentions(oof[n], np.full(NL, h), labels, T, "x")
                pred = np.zeros((1, NP), bool)
                for s in decide_sightings(ms, T):
                    pred[0, pidx[cat.parent_of_any(s.technique_id)]] = True
                c += tp_fp_fn(pred, [r])
            best = max(best, (f1(c), (h, T)), key=lambda x: x[0])
    return best


allrows = np.arange(NR)
if __name__ == '__main__':
    modes = sys.argv[2].split(",") if len(sys.argv) > 2 else ["clf-global", "clf-pertech", "clf-pertech-multi", "hybrid-new"]
    for mode in modes:
        if mode == "hybrid-current":
            s, params = current_hybrid(list(allrows))
            print(f"{mode:20s} in-sample F1 {s:.4f} params {params}", flush=True)
            continue
        s, params = choose(allrows, mode)
        # nested CV: params chosen on 4 folds, applied to the 5th, counts pooled
        c = np.zeros(3)
        for k in sorted(set(folds)):
            fit = np.flatnonzero(folds != k); test = np.flatnonzero(folds == k)
            _, pk = choose(fit, mode)
            c += tp_fp_fn(apply(test, mode, pk, fit), test)
        print(f"{mode:20s} in-sample F1 {s:.4f} nested-CV F1 {f1(c):.4f} P {c[0]/(c[0]+c[1]):.3f} R {c[0]/(c[0]+c[2]):.3f}"
              f" params {params}", flush=True)
