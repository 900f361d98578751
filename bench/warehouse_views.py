"""Benchmark: how long the warehouse's marts take to query at scale, by hand (not part of the tests).

The views are computed when queried, so ``top``, ``prioritize`` and analysts' SQL pay for them on
every call. This fills a throwaway warehouse with N synthetic reports (dated over 14 years) and about
50 sightings each, spread over every active technique, each with one evidence sentence and mention,
then times each mart and the HTML summary.

    python bench/warehouse_views.py [N_REPORTS]      # default 20000
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    import warehouse.db as wh
    from breachminer.catalog import AttackCatalog
    from extractors.taggers.lexicon import lexicon_ratings
    from warehouse.html_summary import html_summary
    from warehouse.priorities import priorities, sync_lexicon_ratings

    n_reports = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    catalog = AttackCatalog.load()
    techniques = sorted(catalog.active)
    with tempfile.TemporaryDirectory() as folder, wh.connect(Path(folder) / "bench.duckdb", catalog=catalog) as con:
        sync_lexicon_ratings(con, lexicon_ratings(catalog))
        started = time.perf_counter()
        con.execute("""INSERT INTO reports (report_id, title, published, published_year, status, kind)
                       SELECT 'r' || i, 'report ' || i, DATE '2012-01-01' + (i % 5000)::INTEGER,
                              year(DATE '2012-01-01' + (i % 5000)::INTEGER), 'ok', 'text'
                       FROM range(?) t(i)""", [n_reports])
        con.execute("CREATE TEMP TABLE ids AS SELECT unnest(?) AS technique_id, generate_subscripts(?, 1) AS k",
                    [techniques, techniques])
        # each technique in 4-10% of reports: a long tail like real counts, ~50 sightings per report
        con.execute("""INSERT INTO sightings (report_id, technique_id, score, methods, n_mentions, n_sentences, rule)
                       SELECT 'r' || i, technique_id, 0.9, ['classifier'], 1, 1, 'bench'
                       FROM range(?) r(i) JOIN ids ON hash(i, k) % 100 < 4 + k % 7""", [n_reports])
        # one evidence sentence and classifier mention per sighting (what `summary` and `evidence` read)
        con.execute("""CREATE TEMP TABLE numbered AS SELECT report_id, technique_id,
                              (row_number() OVER (PARTITION BY report_id ORDER BY technique_id) - 1)::INTEGER AS idx
                       FROM sightings""")
        con.execute("""INSERT INTO sentences (report_id, sentence_index, start_char, end_char, text, advice)
                       SELECT report_id, idx, idx * 80, idx * 80 + 79, 'The actor used ' || technique_id || '.', false
                       FROM numbered""")
        con.execute("""INSERT INTO mentions (report_id, sentence_index, technique_id, cited, method, score)
                       SELECT report_id, idx, technique_id, '', 'classifier', 0.9 FROM numbered""")
        sightings = con.execute("SELECT count(*) FROM sightings").fetchone()[0]
        print(f"{n_reports} reports, {sightings} sightings (and as many sentences and mentions) loaded in "
              f"{time.perf_counter() - started:.1f} s")
        for label, query in [
            ("technique_frequency", "SELECT * FROM technique_frequency"),
            ("tactic_technique_frequency", "SELECT * FROM tactic_technique_frequency"),
            ("tactic_coverage", "SELECT * FROM tactic_coverage"),
            ("technique_frequency_by_year", "SELECT * FROM technique_frequency_by_year"),
            ("technique_prevalence", "SELECT * FROM technique_prevalence"),
            ("technique_priority", "SELECT * FROM technique_priority"),
        ]:
            started = time.perf_counter()
            rows = len(con.execute(query).fetchall())
            print(f"  {label:28s} {rows:6d} rows  {time.perf_counter() - started:6.2f} s")
        for label, call in [("top -n 20", lambda: wh.top_techniques(con, 20)),
                            ("top -n 20 --half-life 2", lambda: wh.top_techniques(con, 20, half_life=2)),
                            ("prioritize -n 20", lambda: priorities(con, 20)),
                            ("summary -n 25 (HTML)", lambda: html_summary(con, 25))]:
            started = time.perf_counter()
            call()
            print(f"  {label:28s}         {time.perf_counter() - started:6.2f} s")


if __name__ == "__main__":
    main()
