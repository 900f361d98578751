import sys

import numpy as np

sys.argv = [sys.argv[0], sys.argv[1]]
exec(open(__import__("pathlib").Path(__file__).with_name("agg.py")).read().split("allrows = np.arange(NR)")[0])
lidx = {l: j for j, l in enumerate(labels)}
rnor_l = np.zeros((NR, NL)); id_l = np.zeros((NR, NL), bool)
other = []  # per report: list of (parent idx, score, has_id) for ids not in labels
for r, n in enumerate(names):
    o = []
    for s in decide_sightings(R[n]["rules"], 0.0):
        j = lidx.get(s.technique_id)
        if j is None:
            o.append((pidx[cat.parent_of_any(s.technique_id)], s.score, "id" in s.methods))
        else:
            rnor_l[r, j] = s.score; id_l[r, j] = "id" in s.methods
    other.append(o)
def predict_nor(rows, th, T):
    miss = np.ones((len(rows), NL))
    for P in (p1[rows], p2[rows]):
        ratio = P / th[None, :]
        s = np.where(ratio >= 0.5, np.minimum(0.999, 1 - (1 - T) ** ratio), 0.0)
        s = np.round(s, 4)
        miss *= 1 - s
    score = 1 - miss * (1 - rnor_l[rows])
    hit = (score >= T - 1e-9) | id_l[rows]
    pred = parent_max(hit)
    for i, r in enumerate(rows):
        for j, sc, isid in other[r]:
            if isid or sc >= T:
                pred[i, j] = True
    return pred
def choose_nor(rows, ms=(2, 5, 10, 20, 50, np.inf)):
    best = (-1, None)
    for T in (0.5, 0.6, 0.7, 0.8):
        for h in (0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5):
            for m in ms:
                th = pertech(rows, h, m)
                s = f1(tp_fp_fn(predict_nor(rows, th, T), rows))
                best = max(best, (s, (h, T, m)), key=lambda x: x[0])
    return best
for ms in ((np.inf,), (2, 5, 10, 20, 50, np.inf)):
    s, params = choose_nor(np.arange(NR), ms)
    c = np.zeros(3)
    for k in sorted(set(folds)):
        fit = np.flatnonzero(folds != k); test = np.flatnonzero(folds == k)
        _, (h, T, m) = choose_nor(fit, ms)
        c += tp_fp_fn(predict_nor(test, pertech(fit, h, m), T), test)
    print(f"hybrid-nor ms={ms}: in-sample {s:.4f} {params} nested-CV {f1(c):.4f} P {c[0]/(c[0]+c[1]):.3f} R {c[0]/(c[0]+c[2]):.3f}", flush=True)
