"""Scheduled ingest, integration: a real `prefect server start` on loopback, `breachminer serve` on an interval,
and a run created by the schedule that loads the warehouse; `prefect deploy` of prefect.yaml against the same
server; and the checks `serve` makes before starting anything.

Schedules never fire on Prefect's ephemeral test server, so this module starts its own server (about 8 s)
and does not use the ``prefect_harness`` fixture.
"""

from __future__ import annotations

import csv
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC
from pathlib import Path

import httpx
import pytest
from conftest import REPO, SAMPLES
from prefect.settings import PREFECT_API_URL, temporary_settings

import warehouse.db as wh
from flows.schedule import DEPLOYMENT_NAME, ensure_api, stop_server
from warehouse.exports import EXPORT_FILES

# `breachminer serve` without touching the CLI's registry; Ctrl-C works even if this test runs with SIGINT
# ignored (a background job of a non-interactive shell), as a terminal user's would
SERVE = ("import signal, typer; signal.signal(signal.SIGINT, signal.default_int_handler); "
         "from breachminer.cli.serve import serve; app = typer.Typer(); app.command()(serve); app()")
RUN_TIMEOUT = 180.0

pytestmark = pytest.mark.integration


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def prefect_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Prefect server (scheduler included) on a free loopback port, with its own Prefect home."""
    assert "PREFECT_API_URL" not in os.environ  # popped by conftest's _isolated_prefect
    # no API configured (prefect_harness, if another module started it, configures one in-process): start one
    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        url, server = ensure_api(port=free_port(), home=tmp_path_factory.mktemp("prefect-server"))
    assert server is not None
    try:
        yield url
    finally:
        stop_server(server)
    assert server.returncode is not None


@pytest.fixture()
def launch(tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen]]:
    """Start commands in their own process group (output in tmp_path/<name>.log); all are stopped afterwards."""
    started: list[subprocess.Popen] = []

    def start(name: str, args: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen:
        with open(tmp_path / f"{name}.log", "wb") as log:
            process = subprocess.Popen(args, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=log,
                                       stderr=subprocess.STDOUT, start_new_session=True)
        started.append(process)
        return process

    yield start
    for process in started:
        interrupt(process)


def interrupt(process: subprocess.Popen) -> None:
    """Ctrl-C as a terminal sends it (to the process group), then SIGKILL if it has not exited in 30 s."""
    for sig, wait in ((signal.SIGINT, 30.0), (signal.SIGKILL, 5.0)):
        if process.poll() is not None:
            break
        try:
            os.killpg(process.pid, sig)
            process.wait(wait)
        except ProcessLookupError:
            break
        except subprocess.TimeoutExpired:
            continue


def api(url: str, path: str, body: dict | None = None) -> list | dict:
    response = httpx.post(f"{url}{path}", json=body or {}, timeout=10.0)
    response.raise_for_status()
    return response.json()


def deployment(url: str, name: str) -> dict | None:
    found = api(url, "/deployments/filter", {"deployments": {"name": {"any_": [name]}}})
    return found[0] if found else None


def tail(path: Path, lines: int = 40) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else "(no log)"


def test_serve_runs_ingest_on_its_schedule(prefect_api: str, launch: Callable[..., subprocess.Popen],
                                           tmp_path: Path) -> None:
    manifest = tmp_path / "samples.csv"
    with open(manifest, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["url", "title", "publisher", "published"])
        for sample in sorted(SAMPLES.glob("20*")):
            writer.writerow([str(sample), sample.stem, "Sample Publisher", f"{sample.name[:4]}-01-01"])
    db = tmp_path / "x.duckdb"
    env = {**os.environ, "PREFECT_API_URL": prefect_api, "PREFECT_HOME": str(tmp_path / "prefect-home"),
           "BREACHMINER_HOME": str(tmp_path / "bm-home"), "BREACHMINER_OFFLINE": "1", "BREACHMINER_WORKERS": "1",
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_RUNNER_POLL_FREQUENCY": "2",
           "PREFECT_LOGGING_LEVEL": "INFO"}
    exports = tmp_path / "exports"
    name = "samples-every-5s"  # not the default: a second schedule gets a deployment of its own
    serve = launch("serve", [sys.executable, "-c", SERVE, str(manifest), "--interval", "5", "--name", name,
                             "--db", str(db), "--export-dir", str(exports), "--export-limit", "5"], env, tmp_path)
    log = tmp_path / "serve.log"

    deadline = time.monotonic() + RUN_TIMEOUT
    finished: list[dict] = []
    while not finished:
        assert serve.poll() is None, f"serve exited with {serve.returncode}:\n{tail(log)}"
        assert time.monotonic() < deadline, f"no scheduled run finished in {RUN_TIMEOUT:g} s:\n{tail(log)}"
        time.sleep(2)
        served = deployment(prefect_api, name)
        if served:
            finished = api(prefect_api, "/flow_runs/filter", {"flow_runs": {
                "deployment_id": {"any_": [served["id"]]},
                "state": {"type": {"any_": ["COMPLETED", "FAILED", "CRASHED", "CANCELLED"]}}}})
    run = finished[0]
    assert run["state_type"] == "COMPLETED", f"{run['state_name']}: {run['state']['message']}\n{tail(log)}"
    assert run["auto_scheduled"]  # created by the schedule, not triggered by hand
    assert served["schedules"][0]["schedule"]["interval"] == 5.0
    assert served["parameters"] == {"inputs": [str(manifest)], "db_path": str(db), "retry_failed": False,
                                    "wait": 3600.0, "export_dir": str(exports), "export_limit": 5}  # queues an hour
    # a second serve under the same name for another warehouse would silently take the schedule over
    other = subprocess.run([sys.executable, "-c", SERVE, str(manifest), "--cron", "0 3 * * *", "--name", name,
                            "--db", str(tmp_path / "other.duckdb")], env=env, capture_output=True, text=True,
                           timeout=120)
    assert other.returncode == 1, other.stdout + other.stderr
    assert "is being served for another warehouse" in " ".join(other.stderr.split())
    assert deployment(prefect_api, name)["schedules"][0]["schedule"]["interval"] == 5.0  # untouched
    interrupt(serve)
    assert serve.returncode is not None
    assert deployment(prefect_api, name)["paused"]  # stopping serve pauses the schedule
    assert deployment(prefect_api, DEPLOYMENT_NAME) is None

    with wh.connect(db, read_only=True) as con:
        reports = con.execute("SELECT count(*) FROM reports").fetchone()[0]
        runs = dict(con.execute("SELECT flow_run_id, status FROM runs").fetchall())
    assert reports == 4
    assert runs[run["id"]] == "completed"
    # the run left the tables people read: the top 5 as CSV and layer, the same for the priorities
    assert sorted(path.name for path in exports.iterdir()) == sorted(EXPORT_FILES)
    with open(exports / "top-techniques.csv", newline="") as handle:
        assert len(list(csv.DictReader(handle))) == 5
    output = log.read_text()
    assert prefect_api in output and f"breachminer-ingest/{name}" in output and "every 5 s" in output


def test_prefect_yaml_deploys_the_nightly_deployment(prefect_api: str, launch: Callable[..., subprocess.Popen],
                                                    tmp_path: Path) -> None:
    api(prefect_api, "/work_pools/", {"name": "breachminer", "type": "process"})
    env = {**os.environ, "PREFECT_API_URL": prefect_api, "PREFECT_HOME": str(tmp_path / "prefect-home")}
    deploy = launch("deploy", [sys.executable, "-m", "prefect", "--no-prompt", "deploy", "--all"], env, REPO)
    assert deploy.wait(120) == 0, tail(tmp_path / "deploy.log")
    nightly = deployment(prefect_api, "breachminer-nightly")
    assert nightly is not None
    assert nightly["entrypoint"] == "flows/ingest.py:ingest_flow"
    assert nightly["work_pool_name"] == "breachminer"
    assert nightly["parameters"] == {"inputs": ["reports_corpus/sources.csv"], "db_path": None, "export_dir": None,
                                     "wait": 3600}
    assert [(s["schedule"]["cron"], s["schedule"]["timezone"], s["active"]) for s in nightly["schedules"]] == [
        ("0 3 * * *", "UTC", True)]
    assert nightly["pull_steps"] == [
        {"prefect.deployments.steps.set_working_directory": {"directory": str(REPO)}}]


@pytest.mark.parametrize(("args", "message"), [
    (["--cron", "0 3 * *"], "invalid cron expression '0 3 * *': expected five fields"),
    ([], "give exactly one schedule"),
    (["--interval", "60", "--name", "a/b"], "invalid deployment name 'a/b'"),
])
def test_serve_refuses_a_bad_schedule_before_starting_anything(tmp_path: Path, args: list[str],
                                                               message: str) -> None:
    port = free_port()
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect-home")}
    result = subprocess.run([sys.executable, "-c", SERVE, str(SAMPLES), "--port", str(port), *args], env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert message in " ".join(result.stderr.split())
    assert not list((tmp_path / "prefect-home").glob("server-*.log"))  # no server was started
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0


def test_serve_says_when_the_configured_api_does_not_answer(tmp_path: Path) -> None:
    silent = f"http://127.0.0.1:{free_port()}/api"
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect-home"), "PREFECT_API_URL": silent}
    result = subprocess.run([sys.executable, "-c", SERVE, str(SAMPLES), "--cron", "0 3 * * *"], env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert f"the configured Prefect API {silent} does not answer" in " ".join(result.stderr.split())


@pytest.mark.skipif(sys.platform != "linux", reason="the server ends with its parent on Linux (PR_SET_PDEATHSIG)")
def test_the_server_serve_started_ends_when_serve_is_killed(tmp_path: Path) -> None:
    """SIGKILL runs no cleanup: the server would be left running forever, and the next serve would adopt it
    as someone else's (and never stop it)."""
    port = free_port()
    starter = ("import sys, time; from flows.schedule import ensure_api; "
               f"url, server = ensure_api(port={port}, home=sys.argv[1]); print(server.pid, flush=True); "
               "time.sleep(600)")
    env = {**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    env.pop("PREFECT_API_URL", None)
    parent = subprocess.Popen([sys.executable, "-c", starter, str(tmp_path)], env=env, cwd=REPO,
                              stdout=subprocess.PIPE, text=True)
    try:
        server_pid = int(parent.stdout.readline())
        assert httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=5).status_code == 200
        parent.kill()
        parent.wait(10)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and Path(f"/proc/{server_pid}").exists():
            time.sleep(0.5)
        assert not Path(f"/proc/{server_pid}").exists() or "zombie" in Path(f"/proc/{server_pid}/status").read_text()
        with socket.socket() as sock:
            assert sock.connect_ex(("127.0.0.1", port)) != 0
    finally:
        parent.kill()


def server_pids(port: int) -> list[int]:
    """PIDs of `prefect server start … --port PORT` processes (from /proc: no pgrep needed)."""
    pids = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if b"server" in args and b"start" in args and str(port).encode() in args:
            pids.append(int(cmdline.parent.name))
    return pids


def completed_runs_since(db: Path, since: float) -> int:
    """Runs recorded completed in ``db`` that started after ``since`` (epoch seconds); 0 while it is busy."""
    if not db.exists():
        return 0
    try:
        with wh.connect(db, read_only=True, lock_wait=2) as con:
            started = [row[0] for row in con.execute(
                "SELECT started_at FROM runs WHERE status = 'completed'").fetchall()]  # naive UTC
    except (wh.WarehouseLocked, OSError):
        return 0
    return sum(1 for moment in started if moment.replace(tzinfo=UTC).timestamp() > since)


@pytest.mark.skipif(sys.platform != "linux", reason="finds the server's process in /proc")
def test_serve_starts_its_server_again_when_it_dies(launch: Callable[..., subprocess.Popen], tmp_path: Path) -> None:
    port = free_port()
    db = tmp_path / "x.duckdb"
    env = {key: value for key, value in os.environ.items() if key != "PREFECT_API_URL"}
    env.update({"PREFECT_HOME": str(tmp_path / "prefect-home"), "BREACHMINER_HOME": str(tmp_path / "bm-home"),
                "BREACHMINER_OFFLINE": "1", "BREACHMINER_CLASSIFIER": "0", "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                "PREFECT_RUNNER_POLL_FREQUENCY": "2", "PREFECT_LOGGING_LEVEL": "INFO"})
    serve = launch("serve", [sys.executable, "-c", SERVE, str(SAMPLES / "2026-cloud-bec.txt"), "--interval", "5",
                             "--port", str(port), "--db", str(db)], env, tmp_path)
    log = tmp_path / "serve.log"
    deadline = time.monotonic() + RUN_TIMEOUT
    while completed_runs_since(db, 0) == 0:
        assert serve.poll() is None, f"serve exited with {serve.returncode}:\n{tail(log)}"
        assert time.monotonic() < deadline, f"no scheduled run finished in {RUN_TIMEOUT:g} s:\n{tail(log)}"
        time.sleep(2)
    [first_server] = server_pids(port)
    os.kill(first_server, signal.SIGKILL)
    killed_at = time.time()
    deadline = time.monotonic() + RUN_TIMEOUT
    while completed_runs_since(db, killed_at + 1) == 0:  # a run scheduled by the new server
        assert serve.poll() is None, f"serve exited with {serve.returncode}:\n{tail(log)}"
        assert time.monotonic() < deadline, f"no scheduled run after the server died:\n{tail(log)}"
        time.sleep(2)
    assert "the Prefect server exited (code -9); starting it again" in log.read_text()
    [second_server] = server_pids(port)
    assert second_server != first_server
    interrupt(serve)
    assert not server_pids(port)  # stopping serve stops the server it started again


def test_serve_says_when_an_outside_api_stops_and_starts_answering() -> None:
    """A Prefect server serve did not start cannot be restarted: the watch tells the terminal instead."""
    from loopback import QuietHandler, ThreadedServer

    from flows.schedule import ServerWatch

    state = {"status": 200}

    class Health(QuietHandler):
        def do_GET(self) -> None:
            self.send_response(state["status"])
            self.send_header("Content-Length", "0")
            self.end_headers()

    class HealthServer(ThreadedServer):
        def __init__(self) -> None:
            self._listen(Health)

    said: list[str] = []
    with HealthServer() as server:
        api = f"{server.url}/api"
        watch = ServerWatch(api, None, 0, said.append, interval=0.1)
        watch.start()
        try:
            for status, words in ((503, "does not answer"), (200, "answers again")):
                state["status"] = status
                deadline = time.monotonic() + 10
                while not any(words in line for line in said) and time.monotonic() < deadline:
                    time.sleep(0.05)
        finally:
            watch.stop()
            watch.join(5)
    assert said == [f"the Prefect API {api} does not answer: no scheduled run starts until it does",
                    f"the Prefect API {api} answers again; scheduling continues"]  # each change said once


def test_stopping_serve_does_not_wait_on_an_api_that_does_not_answer() -> None:
    """Prefect's own pause on shutdown retried a failing API for over a minute (a SIGTERM took 71 s to end
    serve): the pause is tried once, and its failure says what it means for the schedule."""
    from loopback import QuietHandler, ThreadedServer

    from flows.schedule import pause_deployment

    requests: list[str] = []

    class Unavailable(QuietHandler):
        def do_GET(self) -> None:
            requests.append(self.path)
            self.send_response(503)  # a status Prefect's client retries
            self.send_header("Content-Length", "0")
            self.end_headers()

    class UnavailableServer(ThreadedServer):
        def __init__(self) -> None:
            self._listen(Unavailable)

    with UnavailableServer() as server:
        problem = pause_deployment(f"{server.url}/api", "nightly", timeout=5.0)
    assert requests == ["/api/deployments/name/breachminer-ingest/nightly"]  # once, not retried
    assert problem is not None and "could not pause the schedule of breachminer-ingest/nightly" in problem
    assert "stays active on the server with no process serving it" in problem
