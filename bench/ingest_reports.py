"""Benchmark: ingest the real reports in ../shared/data/reports, by hand (not part of the tests).

Measures, for 1 and 2 worker processes: wall time of one ingest flow run (Prefect's ephemeral API
already started, so its 5–8 s start-up is reported separately), pages per second, and the time of an
idempotent re-run. Also times the pure analysis (extract + sentences + taggers) per document in
this process, to show where the time goes.

    python bench/ingest_reports.py [REPORTS_DIR]
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

REPORTS = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[2] / "shared/data/reports"


def main() -> None:
    from prefect import flow

    import warehouse.db as wh
    from breachminer.catalog import AttackCatalog
    from extractors.documents import ExtractionError
    from extractors.pipeline import DocumentAnalyzer
    from flows.ingest import run_ingest

    files = sorted(p for p in REPORTS.iterdir() if p.suffix in (".pdf", ".html"))
    started = time.perf_counter()
    flow(lambda: None, name="warm-up")()
    print(f"prefect ephemeral API start-up + empty flow: {time.perf_counter() - started:.1f} s")

    analyzer = DocumentAnalyzer(AttackCatalog.load())
    stage_times: dict[str, float] = {}
    for path in files:
        t0 = time.perf_counter()
        with contextlib.suppress(ExtractionError):  # the image-only PDF
            analyzer.analyse_path(path)
        stage_times[path.name] = time.perf_counter() - t0
    slowest = sorted(stage_times.items(), key=lambda kv: -kv[1])[:3]
    print(f"analysis in one process: {sum(stage_times.values()):.1f} s for {len(files)} files; slowest: "
          + ", ".join(f"{name} {sec:.1f} s" for name, sec in slowest))

    for workers in (1, 2):
        with tempfile.TemporaryDirectory() as tmp:
            db = str(Path(tmp) / "bench.duckdb")
            t0 = time.perf_counter()
            result = run_ingest([str(REPORTS)], db, workers)
            first = time.perf_counter() - t0
            t0 = time.perf_counter()
            again = run_ingest([str(REPORTS)], db, workers)
            second = time.perf_counter() - t0
            with wh.connect(db, read_only=True) as con:
                pages = wh.first_row(con, "SELECT sum(n_pages) FROM reports")[0]
            print(f"workers={workers}: ingest {first:.1f} s ({result['new']} new, {result['duplicate']} duplicate, "
                  f"{result['failed']} failed; {pages / first:.1f} PDF pages/s), re-run {second:.1f} s "
                  f"({again['unchanged']} unchanged)")


if __name__ == "__main__":
    main()
