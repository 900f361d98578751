"""The ``forget`` command: take reports out of the warehouse (and keep later ingests from loading them again)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from breachminer.cli.common import DbOption, console, db_path, fail, print_frame


def forget(
    targets: Annotated[list[str] | None, typer.Argument(
        help="report IDs (or their first 4+ characters), or sources (paths, URLs or file names) of reports",
        show_default=False)] = None,
    reason: Annotated[str | None, typer.Option(help="why, kept with the record (e.g. 'not a threat report')")] = None,
    list_forgotten: Annotated[bool, typer.Option("--list", help="list the forgotten reports")] = False,
    restore: Annotated[list[str] | None, typer.Option(
        help="a forgotten report ID that later ingests may load again (repeatable)", show_default=False)] = None,
    db: DbOption = None,
) -> None:
    """Take reports out of the warehouse: every count, sentence and mention of theirs goes at once.

    A report stays when its source leaves a manifest or a feed (the warehouse is a record of what was
    reported); this is how one goes. Its bytes and text are remembered, so later ingests skip them
    (counted as forgotten) until --restore; a changed version of the document is a new report.

    Example: breachminer forget 3f2a9c0d1e2b4a5c --reason "vendor marketing page, not a report"
    """
    import warehouse.db as wh
    from warehouse.lock import WriterBusy, writer_lock

    target = db_path(db)
    if list_forgotten:
        try:
            with wh.connect(target, read_only=True) as con:
                frame = wh.forgotten_frame(con)
        except (wh.WarehouseMissing, wh.WarehouseLocked) as exc:
            fail(str(exc))
        print_frame(frame, f"{len(frame)} forgotten reports")
        return
    if not targets and not restore:
        fail("give report IDs or sources to forget, --restore ID, or --list")
    # a local path as given, or as recorded (absolute)
    named = [str(Path(item).resolve()) if Path(item).exists() else item for item in targets or []]
    try:
        with writer_lock(target, 0.0, what="forget"), wh.connect(target) as con:
            for report_id in restore or []:
                if not wh.restore_forgotten(con, report_id):
                    fail(f"{report_id} is not a forgotten report (`breachminer forget --list`)")
                console.print(f"restored {report_id}: the next ingest of its sources loads it again")
            if named:
                gone = wh.forget_reports(con, wh.resolve_reports(con, named), reason)
                for report_id, title, sources in gone:
                    console.print(f"forgot {report_id} ({title or 'untitled'}; {len(sources)} source"
                                  f"{'s' if len(sources) != 1 else ''}): later ingests skip it", highlight=False)
                total = wh.counted_report_total(con)
                console.print(f"{total} reports remain; the tables count without {'them' if len(gone) > 1 else 'it'}")
    except (wh.WarehouseMissing, wh.WarehouseLocked, WriterBusy, wh.UnknownReport) as exc:
        fail(str(exc))
