"""The ``serve`` command: ingest on a schedule (a Prefect deployment served from this process)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from breachminer.cli.common import (
    AllowPrivateOption,
    DbOption,
    ExportDirOption,
    ExportLimitOption,
    IgnoreRobotsOption,
    OfflineOption,
    RetryFailedOption,
    console,
    db_path,
    err_console,
    fail,
)
from breachminer.cli.ingest import DEFAULT_CORPUS


def serve(
    inputs: Annotated[list[str] | None, typer.Argument(
        help="folders, files, manifest CSVs, feeds or URLs \\[default: reports_corpus/sources.csv]",
        show_default=False)] = None,
    cron: Annotated[str | None, typer.Option(help="five-field cron expression, in UTC (e.g. '0 3 * * *')")] = None,
    interval: Annotated[float | None, typer.Option(help="or: seconds between runs")] = None,
    retry_failed: RetryFailedOption = False,
    allow_private: AllowPrivateOption = None,
    ignore_robots: IgnoreRobotsOption = False,
    offline: OfflineOption = None,
    wait: Annotated[float, typer.Option(
        help="seconds a scheduled run queues behind another run writing the same warehouse (a cron ingest) "
             "before it fails")] = 3600.0,
    export_dir: ExportDirOption = None,
    export_limit: ExportLimitOption = 50,
    name: Annotated[str, typer.Option(help="deployment name (breachminer-ingest/NAME), one per schedule and "
                                           "warehouse: a name a live serve uses for another warehouse is refused")
                    ] = "nightly",
    port: Annotated[int, typer.Option(help="loopback port of the Prefect server started when $PREFECT_API_URL "
                                           "is unset")] = 4200,
    db: DbOption = None,
) -> None:
    """Ingest on a schedule: serve the ingest flow as a Prefect deployment until stopped (Ctrl-C).

    Uses $PREFECT_API_URL (or the Prefect profile's), else starts a Prefect server on 127.0.0.1:PORT (stopped
    on exit).

    Example: breachminer serve reports_corpus/sources.csv --cron "0 3 * * *" --db /tmp/bm.duckdb
    With fresh tables every morning: ... --export-dir /srv/breachminer/exports
    """
    from rich.markup import escape

    from extractors.sources import SourceError, collect_sources
    from flows.schedule import (
        ApiUnavailable,
        ScheduleError,
        ServerWatch,
        build_schedule,
        check_deployment_free,
        check_deployment_name,
        describe,
        ensure_api,
        pause_deployment,
        serve_ingest,
        stop_server,
    )

    try:
        schedule = build_schedule(cron, interval)
        check_deployment_name(name)
    except ScheduleError as exc:
        fail(str(exc))
    if not inputs:
        if not DEFAULT_CORPUS.exists():
            fail("no inputs given and no reports_corpus/sources.csv beside the package")
        inputs = [str(DEFAULT_CORPUS)]
    try:
        collect_sources(inputs)  # fail fast on a missing path before starting anything
    except SourceError as exc:
        fail(str(exc))
    # runs execute in other processes, possibly from another directory: pass absolute paths
    inputs = [str(Path(item).resolve()) if Path(item).exists() else item for item in inputs]
    target = db_path(db).expanduser().resolve()
    try:
        api_url, server = ensure_api(port=port)
    except ApiUnavailable as exc:
        fail(str(exc))
    try:
        try:
            check_deployment_free(api_url, name, str(target))
        except ScheduleError as exc:
            fail(str(exc))
        ui = f" (UI: {api_url.removesuffix('/api')})" if api_url.endswith("/api") else ""
        console.print(f"Prefect API: {api_url}{ui}{' — started here' if server else ''}")
        console.print(f"deployment [bold]breachminer-ingest/{name}[/bold], {describe(schedule)}: "
                      f"{len(inputs)} input(s) → {target}"
                      + (f"; exports → {export_dir.expanduser().resolve()}" if export_dir else ""))
        console.print("Keep this running: scheduled runs execute here. Ctrl-C stops serving and pauses the "
                      f"schedule{', and stops the Prefect server' if server else ''}.")
        watch = ServerWatch(api_url, server, port, say=lambda message: err_console.print(
            f"[yellow]{escape(message)}[/yellow]", highlight=False))
        watch.start()
        try:
            serve_ingest(inputs, str(target), cron, interval, name=name, api_url=api_url,
                         retry_failed=retry_failed, allow_private=allow_private, offline=offline,
                         respect_robots=False if ignore_robots else None, wait=wait,
                         export_dir=str(export_dir.expanduser().resolve()) if export_dir else None,
                         export_limit=export_limit if export_dir else None)
        finally:
            watch.stop()
            watch.join(30)
            server = watch.process  # the watch may have started it again
            problem = pause_deployment(api_url, name)
            if problem:
                err_console.print(f"[yellow]{escape(problem)}[/yellow]", highlight=False)
    finally:
        if server:
            stop_server(server)
