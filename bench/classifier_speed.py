"""Benchmark: classifier scoring speed on one core, and whole-report tagging time (by hand).

    OMP_NUM_THREADS=1 python bench/classifier_speed.py [REPORTS_DIR]   (BREACHMINER_MODEL_DIR: another model)

1. sentences/s scored by the shipped model in batches (goal: ≥ 10,000 on one core), on the sentences
   of the real reports in ../shared/data/reports;
2. per report: extraction, sentence splitting, and each tagger's time.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

REPEATS = 5
REPORTS = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[2] / "shared/data/reports"


def main() -> None:
    from breachminer.catalog import AttackCatalog
    from extractors import documents
    from extractors.sentences import split_sentences
    from models.tagger import default_taggers, load_model

    catalog = AttackCatalog.load()
    model = load_model(os.environ.get("BREACHMINER_MODEL_DIR") or None)  # default: the shipped model
    if model is None:
        sys.exit("no trained model in models/artifacts: run `breachminer train` first")
    taggers = default_taggers(catalog, model)
    timings: dict[str, float] = defaultdict(float)
    all_sentences = []
    for path in sorted(p for p in REPORTS.iterdir() if p.suffix in (".pdf", ".html")):
        started = time.perf_counter()
        try:
            text = documents.extract(path.read_bytes(), path.name).text
        except documents.ExtractionError:
            continue
        timings["extract"] += time.perf_counter() - started
        started = time.perf_counter()
        sentences = split_sentences(text)
        timings["sentences"] += time.perf_counter() - started
        all_sentences.extend(sentences)
        for tagger in taggers:
            started = time.perf_counter()
            tagger.tag(sentences)
            timings[tagger.method] += time.perf_counter() - started

    texts = [s.text for s in all_sentences]
    model.predict_proba(texts[:100])  # warm-up
    runs = []
    for _ in range(REPEATS):  # a shared VM's timings vary by ±30% from run to run: report best and median
        started = time.perf_counter()
        for offset in range(0, len(texts), 4096):
            model.predict_proba(texts[offset:offset + 4096])
        runs.append(time.perf_counter() - started)
    best, median = min(runs), statistics.median(runs)
    characters = sum(len(text) for text in texts)
    print(f"classifier: {len(texts):,} sentences, {REPEATS} runs: best {best:.2f} s = {len(texts) / best:,.0f} "
          f"sentences/s, median {median:.2f} s = {len(texts) / median:,.0f} sentences/s (one core)")
    # sentences/s depends on how long sentences are (PDF fragments are short): also per character
    print(f"  {characters / len(texts):.0f} characters per sentence on average; best {characters / best / 1e6:.2f} M "
          f"characters/s")
    features = model.pipeline.named_steps["features"]
    for name, transformer in features.transformer_list:
        started = time.perf_counter()
        transformer.transform(texts)
        print(f"  of which {name} features: {time.perf_counter() - started:.2f} s")
    print("whole-report tagging over", REPORTS, "(s):", {k: round(v, 1) for k, v in timings.items()})


if __name__ == "__main__":
    main()
