"""Benchmark: ingest the real reports over HTTP from a loopback server, then again, by hand.

Serves ../shared/data/reports with Python's ``http.server`` on 127.0.0.1 (it sends Last-Modified and
answers If-Modified-Since with 304, like most static hosts), ingests a manifest of their URLs into a
fresh warehouse and raw cache, then re-runs it. Reports wall time, bodies and bytes the server sent,
and the 304s of each run: the second run should download nothing.

    python bench/fetch_incremental.py [REPORTS_DIR]
"""

from __future__ import annotations

import csv
import os
import sys
import tempfile
import threading
import time
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

REPORTS = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[2] / "shared/data/reports"


class CountingHandler(SimpleHTTPRequestHandler):
    sent: ClassVar[list[tuple[str, int, int]]] = []  # (path, status, body bytes)

    def log_message(self, *args: object) -> None:
        pass

    def send_response(self, code: int, message: str | None = None) -> None:
        super().send_response(code, message)
        self._status = code

    def copyfile(self, source, outputfile) -> None:
        data = source.read()
        outputfile.write(data)
        CountingHandler.sent.append((self.path, self._status, len(data)))

    def end_headers(self) -> None:
        super().end_headers()
        if getattr(self, "_status", 200) == 304:
            CountingHandler.sent.append((self.path, 304, 0))


def main() -> None:
    from prefect import flow

    from flows.ingest import run_ingest

    files = sorted(p for p in REPORTS.iterdir() if p.suffix in (".pdf", ".html"))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(CountingHandler, directory=str(REPORTS)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    flow(lambda: None, name="warm-up")()  # Prefect's ephemeral API start-up is not part of the numbers
    with tempfile.TemporaryDirectory() as scratch:
        os.environ.update({"BREACHMINER_CACHE": f"{scratch}/cache", "BREACHMINER_HOST_DELAY": "0",
                           "BREACHMINER_OFFLINE": "0"})
        manifest = Path(scratch) / "urls.csv"
        with manifest.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["url"])
            writer.writerows([f"{base}/{path.name}"] for path in files)
        db = f"{scratch}/bench.duckdb"
        for label in ("first run", "second run"):
            CountingHandler.sent.clear()
            started = time.perf_counter()
            result = run_ingest([str(manifest)], db, allow_private=True)
            seconds = time.perf_counter() - started
            bodies = [size for _p, status, size in CountingHandler.sent if status == 200]
            not_modified = sum(1 for _p, status, _s in CountingHandler.sent if status == 304)
            print(f"{label}: {seconds:.1f} s, {len(files)} URLs → new {result['new']}, unchanged "
                  f"{result['unchanged']}, duplicate {result['duplicate']}, failed {result['failed']}; server sent "
                  f"{len(bodies)} bodies ({sum(bodies) / 1e6:.1f} MB) and {not_modified} × 304")
    httpd.shutdown()


if __name__ == "__main__":
    main()
