"""Shared fixtures: paths to the sample corpus and ../shared, an isolated Prefect, a fresh warehouse."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "reports_corpus" / "samples"
SHARED_DATA = Path(os.environ.get("BREACHMINER_SHARED", REPO.parent / "shared")) / "data"
REPORTS = SHARED_DATA / "reports"
STIX = SHARED_DATA / "attack" / "enterprise-attack-18.1.json.gz"


# A valid one-page PDF whose page draws nothing: what an image-only scan looks like to a text extractor.
EMPTY_PAGE_PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
    b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 612 792]>>endobj\n"
    b"trailer<</Root 1 0 R>>\n%%EOF\n"
)

needs_shared = pytest.mark.skipif(
    not REPORTS.is_dir(),
    reason=f"needs the shared reference data at {SHARED_DATA} (../shared beside the checkout); absent here",
)


@pytest.fixture(scope="session", autouse=True)
def _isolated_prefect(tmp_path_factory: pytest.TempPathFactory):
    """Every test talks to a throwaway Prefect server and writes nothing to ~/.prefect or ~/.breachminer."""
    home = tmp_path_factory.mktemp("prefect-home")
    os.environ.update({
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOGGING_TO_API_ENABLED": "false",
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "60",
        "PREFECT_LOGGING_LEVEL": "WARNING",
        "BREACHMINER_HOME": str(tmp_path_factory.mktemp("breachminer-home")),
        "BREACHMINER_CACHE": str(tmp_path_factory.mktemp("raw-cache")),
        # tests talk only to servers they start on 127.0.0.1: the default corpus's public URLs stay unfetched
        "BREACHMINER_OFFLINE": "1",
    })
    os.environ.pop("BREACHMINER_DB", None)
    os.environ.pop("PREFECT_API_URL", None)
    yield


@pytest.fixture(scope="session")
def prefect_harness(_isolated_prefect):
    """A real, temporary Prefect API for flow runs (started once per session)."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=60), temporary_settings(
        {PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}
    ):
        yield


@pytest.fixture()
def db_file(tmp_path: Path) -> Path:
    return tmp_path / "bm.duckdb"


@pytest.fixture(scope="session")
def catalog():
    from breachminer.catalog import AttackCatalog

    return AttackCatalog.load()


def finishes(code: str, seconds: float = 120) -> str:
    """Run ``code`` in a fresh interpreter and return its output; fail if it has not finished in ``seconds``.

    A guard against hangs (a regular expression that backtracks exponentially or quadratically on a
    pathological input), not a speed test: the guarded code takes milliseconds when it works and hours
    when it does not, so the bound is generous."""
    import subprocess
    import sys

    try:
        done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                              timeout=seconds, check=True)
    except subprocess.TimeoutExpired:
        pytest.fail(f"did not finish in {seconds} s (a hang on a pathological input):\n{code}")
    return done.stdout
