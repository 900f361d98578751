import pickle
import time

from breachminer.catalog import AttackCatalog
from breachminer.records import Sentence
from models.tagger import default_taggers

data = pickle.load(open("/tmp/clf-exp/data.pkl", "rb"))
cat = AttackCatalog.load()
t = time.perf_counter()
by = {}
for s in data.sentences:
    if s.source == "tram-report":
        by.setdefault(s.group, []).append(s)
taggers = default_taggers(cat)
out = {}
for name, rows in by.items():
    sents = [Sentence(k, 0, len(r.text), r.text) for k, r in enumerate(rows)]
    out[name] = {"labels": {t for r in rows for t in r.labels},
                 "rules": [m for tg in taggers for m in tg.tag(sents)], "n": len(rows)}
pickle.dump(out, open("/tmp/clf-exp/reports.pkl", "wb"))
print(len(out), time.perf_counter() - t)
