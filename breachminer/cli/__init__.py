"""The ``breachminer`` command line: thin commands over the library, split by what they serve.

- ``ingest``, ``tag`` (cli/ingest.py): documents in;
- ``top``, ``summary``, ``sql``, ``evidence``, ``report``, ``failures`` (cli/query.py): tables out;
- ``prioritize`` (cli/prioritize.py): the techniques to detect first;
- ``train``, ``evaluate``, ``retag`` (cli/model.py): the trained classifier;
- ``attack update`` (cli/attack.py): the ATT&CK catalog;
- ``serve`` (cli/serve.py): ingest on a schedule;
- ``forget`` (cli/forget.py): reports out.
"""

from __future__ import annotations

import typer

from breachminer.cli import attack, forget, ingest, model, prioritize, query, serve
from breachminer.cli.common import err_console
from breachminer.settings import SettingsError

app = typer.Typer(
    name="breachminer",
    help="Mine threat reports for the MITRE ATT&CK techniques attackers actually use.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("ingest")(ingest.ingest)
app.command("tag")(ingest.tag)
app.command("top")(query.top)
app.command("summary")(query.summary)
app.command("sql")(query.sql)
app.command("evidence")(query.evidence)
app.command("report")(query.report)
app.command("failures")(query.failures)
app.command("prioritize")(prioritize.prioritize)
app.command("train")(model.train)
app.command("evaluate")(model.evaluate)
app.command("retag")(model.retag)
app.command("serve")(serve.serve)
app.command("forget")(forget.forget)
app.add_typer(attack.app, name="attack")


def main() -> None:
    """Console-script entry point. A bad ``BREACHMINER_*`` value is one line naming it, exit status 2."""
    try:
        app()
    except SettingsError as exc:
        err_console.print(f"[red]error:[/red] {exc}")
        raise SystemExit(2) from None
