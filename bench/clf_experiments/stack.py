import sys

import numpy as np

sys.argv = [sys.argv[0], sys.argv[1]]
exec(open(__import__("pathlib").Path(__file__).with_name("agg.py")).read().split("allrows = np.arange(NR)")[0])
from sklearn.linear_model import LogisticRegression

name_max = np.zeros((NR, NP)); lex_max = np.zeros((NR, NP))
cnt = {lv: np.zeros((NR, NL)) for lv in (0.05, 0.1, 0.2, 0.4)}
for r, n in enumerate(names):
    for m in R[n]["rules"]:
        if m.technique_id:
            j = pidx[cat.parent_of_any(m.technique_id)]
            if m.method == "name": name_max[r, j] = max(name_max[r, j], m.score)
            if m.method == "lexicon": lex_max[r, j] = max(lex_max[r, j], m.score)
    for lv in cnt:
        cnt[lv][r] = (oof[n] >= lv).sum(axis=0)
nsent = np.array([len(oof[n]) for n in names])
def logit(x):
    x = np.clip(x, 1e-4, 1 - 1e-4); return np.log(x / (1 - x))
P1, P2, P3 = parent_max(p1), parent_max(p2), parent_max(p3)
C = {lv: parent_max(c) for lv, c in cnt.items()}
def feats(rows, prior, use_rules=True):
    cols = [logit(P1[rows]), logit(P2[rows]), logit(P3[rows])] + [np.log1p(C[lv][rows]) for lv in C]
    cols += [np.broadcast_to(logit(prior)[None, :], (len(rows), NP)),
             np.broadcast_to(np.log(nsent[rows])[:, None], (len(rows), NP))]
    if use_rules:
        cols += [has_id[rows].astype(float), rule_nor[rows], name_max[rows], lex_max[rows],
                 (rule_max[rows] > 0) * logit(P1[rows])]
    return np.stack([c.astype(float) for c in cols], axis=-1)  # (nr, NP, F)
def cands(rows, use_rules):
    ok = (P1[rows] >= 0.02)
    if use_rules: ok |= rule_max[rows] > 0
    return ok & universe[None, :]
def fit_predict(fit, test, C_, use_rules):
    prior = (truth[fit].sum(0) + 0.5) / (len(fit) + 5)
    Ff, Ft = feats(fit, prior, use_rules), feats(test, prior, use_rules)
    cf, ct = cands(fit, use_rules), cands(test, use_rules)
    X, y = Ff[cf], truth[fit][cf]
    mu, sd = X.mean(0), X.std(0) + 1e-9
    lr = LogisticRegression(C=C_, max_iter=2000).fit((X - mu) / sd, y)
    pf = np.zeros(cf.shape); pf[cf] = lr.predict_proba((X - mu) / sd)[:, 1]
    best = max((f1(tp_fp_fn(pf >= t, fit)), t) for t in np.arange(0.2, 0.7, 0.025))
    pt = np.zeros(ct.shape); pt[ct] = lr.predict_proba((Ft[ct] - mu) / sd)[:, 1]
    return pt >= best[1], best, lr
for use_rules in (False, True):
    for C_ in (0.03, 0.3, 3.0):
        c = np.zeros(3)
        for k in sorted(set(folds)):
            fit = np.flatnonzero(folds != k); test = np.flatnonzero(folds == k)
            pred, best, lr = fit_predict(fit, test, C_, use_rules)
            c += tp_fp_fn(pred, test)
        print(f"stack rules={use_rules} C={C_}: CV F1 {f1(c):.4f} P {c[0]/(c[0]+c[1]):.3f} R {c[0]/(c[0]+c[2]):.3f} (last fold thr {best[1]:.3f})", flush=True)
