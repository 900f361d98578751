"""Scheduled ingest: the Prefect API whose scheduler creates the runs, and the ingest flow served on a schedule.

Owns what ``breachminer serve`` does and nothing more: check a schedule before anything starts, find the
Prefect API (the configured one, or a server on a loopback port, started here as a subprocess when none
answers), and serve ``ingest_flow`` as a deployment whose runs execute in subprocesses of the serving
process, one at a time. Teams with their own Prefect server and workers use ``prefect.yaml`` instead.
"""

from __future__ import annotations

import ipaddress
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from prefect.schedules import Schedule

DEPLOYMENT_NAME = "nightly"
STARTUP_TIMEOUT = 90.0


class ScheduleError(ValueError):
    """A schedule that Prefect would refuse."""


class ApiUnavailable(RuntimeError):
    """No Prefect API answers, and none could be started."""


def build_schedule(cron: str | None, interval: float | None) -> Schedule:
    """Exactly one of a five-field cron expression (UTC) or an interval in seconds, checked before serving."""
    from prefect.schedules import Cron, Interval

    if (cron is None) == (interval is None):
        raise ScheduleError("give exactly one schedule: a cron expression (--cron) or an interval in seconds "
                            "(--interval)")
    if cron is not None:
        try:
            return Cron(cron, timezone="UTC")
        except ValueError:
            raise ScheduleError(f"invalid cron expression {cron!r}: expected five fields (minute hour day-of-month "
                                "month day-of-week), e.g. '0 3 * * *' for 03:00 UTC daily") from None
    if not interval or interval <= 0:
        raise ScheduleError(f"invalid interval {interval!r}: give a positive number of seconds")
    return Interval(timedelta(seconds=interval))


def check_deployment_name(name: str) -> str:
    """A deployment name ``serve`` can register: not empty, and without the ``/`` that separates it from the flow's."""
    if not name.strip() or "/" in name or name != name.strip():
        raise ScheduleError(f"invalid deployment name {name!r}: give a word such as 'nightly' or 'hourly-feeds' "
                            "(no '/', no leading or trailing spaces)")
    return name


FLOW_NAME = "breachminer-ingest"


def check_deployment_free(api_url: str, name: str, db_path: str) -> None:
    """Refuse to take over ``breachminer-ingest/<name>`` while another ``serve`` serves it for another
    warehouse: serving registers the deployment again with this process's schedule and parameters, so the
    other process's schedule would silently stop. A deployment that is paused (its ``serve`` stopped) or
    that no runner has polled lately (``status`` NOT_READY: its process died) is free to take over."""
    response = httpx.post(f"{api_url}/deployments/filter", timeout=10.0, json={
        "flows": {"name": {"any_": [FLOW_NAME]}}, "deployments": {"name": {"any_": [name]}}})
    response.raise_for_status()
    for deployment in response.json():
        served = (deployment.get("parameters") or {}).get("db_path")
        if deployment.get("paused") or deployment.get("status") != "READY" or served == db_path:
            continue
        raise ScheduleError(f"{FLOW_NAME}/{name} is being served for another warehouse ({served}) by another "
                            "process: give this schedule its own --name, or stop that serve first (if it was "
                            "killed, Prefect frees the deployment about a minute after its last poll)")


def describe(schedule: Schedule) -> str:
    """The schedule in words, for the terminal."""
    if schedule.cron:
        return f"cron '{schedule.cron}' ({schedule.timezone})"
    return f"every {schedule.interval.total_seconds():g} s"


def ensure_api(host: str = "127.0.0.1", port: int = 4200, home: Path | str | None = None,
               timeout: float = STARTUP_TIMEOUT) -> tuple[str, subprocess.Popen | None]:
    """The Prefect API URL to schedule on, and the server process if one was started here (the caller stops it).

    The configured API (``$PREFECT_API_URL`` or the Prefect profile) wins and must answer ``/health``;
    otherwise a server already answering on ``host:port`` is used, else ``prefect server start`` is
    started there with its database under ``home`` (default: the Prefect home) and its output in
    ``<home>/server-<port>.log``.
    """
    from prefect.settings import get_current_settings

    settings = get_current_settings()
    configured = (settings.api.url or "").rstrip("/")
    if configured:
        if not _healthy(configured):
            raise ApiUnavailable(f"the configured Prefect API {configured} does not answer GET {configured}/health: "
                                 "start that server, or unset PREFECT_API_URL to have one started on 127.0.0.1")
        return configured, None
    if not ipaddress.ip_address(host).is_loopback:
        raise ApiUnavailable(f"{host} is not a loopback address: the Prefect server started here listens on "
                             "loopback only (set PREFECT_API_URL to use another server)")
    url = f"http://{host}:{port}/api"
    if _healthy(url):
        return url, None
    home = Path(home or settings.home).expanduser()
    home.mkdir(parents=True, exist_ok=True)
    log_path = home / f"server-{port}.log"
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    with open(log_path, "ab") as log:
        # its own session: a Ctrl-C meant for the serving process must not stop the server under it
        # and it ends with this process, even one killed by SIGKILL (which runs no cleanup)
        process = subprocess.Popen(
            [sys.executable, "-m", "prefect", "server", "start", "--host", host, "--port", str(port)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
            preexec_fn=_end_with_parent if sys.platform == "linux" else None)
    try:
        deadline = time.monotonic() + timeout
        while not _healthy(url):
            if process.poll() is not None:
                raise ApiUnavailable(f"the Prefect server exited with code {process.returncode}; end of "
                                     f"{log_path}:\n{_tail(log_path)}")
            if time.monotonic() > deadline:
                raise ApiUnavailable(f"the Prefect server did not answer {url}/health within {timeout:g} s; end of "
                                     f"{log_path}:\n{_tail(log_path)}")
            time.sleep(0.5)
    except BaseException:  # including Ctrl-C: never leave a server behind
        stop_server(process)
        raise
    return url, process


class ServerWatch(threading.Thread):
    """Watches the Prefect API while ``serve`` runs, so that a dead server does not leave it silently idle.

    A server started here (``process``) that exits is started again on the same port and home, and
    ``say`` tells the terminal; the runner reconnects by itself. A server that is not ours cannot be
    restarted: ``say`` reports when it stops answering and when it answers again. ``process`` is always
    the current server (the caller stops it at the end).
    """

    def __init__(self, api_url: str, process: subprocess.Popen | None, port: int, say: Callable[[str], None],
                 home: Path | str | None = None, interval: float = 5.0) -> None:
        super().__init__(name="breachminer-server-watch", daemon=True)
        self.api_url, self.process, self.port, self.say, self.home = api_url, process, port, say, home
        self.interval = interval
        self._stop_event = threading.Event()

    def stop(self) -> None:
        self._stop_event.set()

    def run(self) -> None:
        answering = True
        while not self._stop_event.wait(self.interval):
            if self.process is not None:
                if self.process.poll() is None:
                    continue
                self.say(f"the Prefect server exited (code {self.process.returncode}); starting it again on "
                         f"port {self.port}")
                try:
                    _url, self.process = ensure_api(port=self.port, home=self.home)
                except ApiUnavailable as exc:
                    self.say(f"could not start the Prefect server again: {exc}; trying again")
                    continue
                if self.process is None:
                    self.say(f"another Prefect server answers on port {self.port} now; scheduling continues there")
                else:
                    self.say("the Prefect server is back; scheduling continues")
                continue
            if _healthy(self.api_url) != answering:
                answering = not answering
                self.say(f"the Prefect API {self.api_url} answers again; scheduling continues" if answering else
                         f"the Prefect API {self.api_url} does not answer: no scheduled run starts until it does")


def stop_server(process: subprocess.Popen, timeout: float = 20.0) -> None:
    """Stop a server started by ``ensure_api`` (and whatever it started): SIGTERM, then SIGKILL."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        try:
            process.wait(wait)
            break
        except subprocess.TimeoutExpired:
            continue
    process.poll()


def serve_ingest(inputs: list[str], db_path: str, cron: str | None = None, interval: float | None = None,
                 name: str = DEPLOYMENT_NAME, api_url: str | None = None, **flow_options: Any) -> None:
    """Register ``breachminer-ingest/<name>`` with the schedule and run its scheduled runs until stopped.

    ``flow_options`` are ``ingest_flow``'s flags (None: the run's ``BREACHMINER_*`` settings decide).
    Runs execute one at a time (a later tick waits for the earlier run) with ``BREACHMINER_WORKERS``
    processes. Stopping (Ctrl-C, SIGTERM) pauses the schedule (``pause_deployment``, which the caller runs
    after this returns: Prefect's own pause on shutdown retries an API that does not answer for over a minute).
    """
    from prefect.settings import PREFECT_API_URL, temporary_settings
    from prefect.types.entrypoint import EntrypointType

    from flows.ingest import ingest_flow_for

    schedule = build_schedule(cron, interval)
    parameters = {"inputs": list(inputs), "db_path": db_path,
                  **{key: value for key, value in flow_options.items() if value is not None}}
    with temporary_settings({PREFECT_API_URL: api_url} if api_url else {}):
        ingest_flow_for().serve(
            name=name, schedules=[schedule], parameters=parameters, limit=1,
            entrypoint_type=EntrypointType.MODULE_PATH, pause_on_shutdown=False)


def pause_deployment(api_url: str, name: str, timeout: float = 5.0) -> str | None:
    """Pause ``breachminer-ingest/<name>`` when its ``serve`` stops, so the server does not go on creating runs
    that no process executes. One try, ``timeout`` seconds per request, through Prefect's client (its
    authentication). Returns None when paused (or gone), else why it could not be."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound
    from prefect.settings import (
        PREFECT_API_REQUEST_TIMEOUT,
        PREFECT_API_URL,
        PREFECT_CLIENT_MAX_RETRIES,
        temporary_settings,
    )

    with temporary_settings({PREFECT_API_URL: api_url, PREFECT_CLIENT_MAX_RETRIES: 0,
                             PREFECT_API_REQUEST_TIMEOUT: timeout}):
        try:
            with get_client(sync_client=True) as client:
                deployment = client.read_deployment_by_name(f"{FLOW_NAME}/{name}")
                client.pause_deployment(deployment.id)
        except ObjectNotFound:
            return None
        except Exception as exc:
            return (f"could not pause the schedule of {FLOW_NAME}/{name} ({type(exc).__name__}: {exc}); "
                    "it stays active on the server with no process serving it: pause it there, or start serve "
                    "again")
    return None


def _end_with_parent() -> None:
    """In the server's process before it starts: Linux sends it SIGTERM when the process that started it dies."""
    import ctypes
    import ctypes.util

    pr_set_pdeathsig = 1
    ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _healthy(api_url: str) -> bool:
    try:
        return httpx.get(f"{api_url}/health", timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as exc:
        return f"(unreadable: {exc})"
