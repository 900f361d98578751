import sys

import numpy as np

sys.argv = [sys.argv[0], sys.argv[1]]
exec(open(__import__("pathlib").Path(__file__).with_name("agg.py")).read().split("allrows = np.arange(NR)")[0])
rows = np.arange(NR)
U = universe[None, :]
T = truth & U
clf = parent_max(p1 >= 0.15) & U
rules = (has_id | (rule_nor >= 0.6)) & U
anyrule = (rule_max > 0) & U
print("truth", T.sum(), "clf tp/fp", (clf & T).sum(), (clf & ~T).sum(), "rules tp/fp", (rules & T).sum(), (rules & ~T).sum())
print("rules-only tp/fp (not clf)", (rules & ~clf & T).sum(), (rules & ~clf & ~T).sum())
print("any-rule evidence, not clf: tp/fp", (anyrule & ~clf & T).sum(), (anyrule & ~clf & ~T).sum())
print("clf fp with rule evidence / without", (clf & ~T & anyrule).sum(), (clf & ~T & ~anyrule).sum())
print("clf tp with rule evidence / without", (clf & T & anyrule).sum(), (clf & T & ~anyrule).sum())
for lv in (0.01, 0.03, 0.05, 0.1):
    print("truth reachable by clf at", lv, (parent_max(p1 >= lv) & T).sum())
print("oracle union recall", ((clf | rules) & T).sum() / T.sum())
