"""``breachminer prioritize``: which techniques to build detections for first (DESIGN.md §6)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

import warehouse.db as wh
from breachminer.cli.common import (
    DbOption,
    PublisherScopeOption,
    SinceScopeOption,
    TitleScopeOption,
    UntilScopeOption,
    WaitOption,
    console,
    db_path,
    fail,
    print_frame,
    write_or_fail,
)
from breachminer.settings import get_settings


def prioritize(
    n: Annotated[int, typer.Option("-n", "--limit", min=1, help="how many techniques")] = 20,
    level: Annotated[str, typer.Option(help="parent (sub-techniques rolled up) or exact")] = "parent",
    per_tactic: Annotated[int | None, typer.Option(
        "--per-tactic", min=1, help="at most this many techniques per tactic", show_default=False)] = None,
    tactic: Annotated[str | None, typer.Option(help="only this tactic's techniques, by priority")] = None,
    profile: Annotated[Path | None, typer.Option(
        "--profile", help="store this profile first (YAML: telemetry, detections, signal, weights; README "
                          "'Prioritization'); it stays the warehouse's profile until another is stored",
        show_default=False)] = None,
    csv: Annotated[Path | None, typer.Option("--csv", help="also write the table, with every part's reason")] = None,
    layer: Annotated[Path | None, typer.Option(
        "--layer", help="also write the picks as an ATT&CK Navigator layer (JSON, layer format 4.5)")] = None,
    title: TitleScopeOption = None,
    publisher: PublisherScopeOption = None,
    since: SinceScopeOption = None,
    until: UntilScopeOption = None,
    db: DbOption = None,
    wait: WaitOption = 15.0,
) -> None:
    """The techniques to detect first: prevalence in reports × signal-to-noise × what you collect.

    Picks go round the kill chain: every tactic's best technique first, then every tactic's second.
    Each part's reason is in the `why` column of --csv and of the technique_priority view.

    Example: breachminer prioritize -n 15 --profile my-telemetry.yaml --csv priorities.csv --layer detect-first.json
    """
    from breachminer.catalog import AttackCatalog
    from breachminer.priority_profile import ProfileError, load_profile
    from extractors.taggers.lexicon import lexicon_ratings
    from warehouse.exports import priority_layer, replace_file, write_csv
    from warehouse.priorities import (
        priorities,
        store_profile,
        stored_profile,
        sync_lexicon_ratings,
    )

    if level not in ("parent", "exact"):
        fail("--level must be 'parent' or 'exact'")
    path = db_path(db)
    if not path.exists():
        fail(f"no warehouse at {path}: run `breachminer ingest` first (or pass --db)")
    catalog = AttackCatalog.load(get_settings().catalog_path)
    try:
        loaded = load_profile(profile, catalog) if profile else None
    except ProfileError as exc:
        fail(str(exc))
    scope = wh.ReportScope.of(title, publisher, since, until)
    try:
        with wh.connect(path, catalog=catalog, lock_wait=wait) as con:
            sync_lexicon_ratings(con, lexicon_ratings(catalog))
            if loaded is not None:
                store_profile(con, loaded)
            current = stored_profile(con)
            wh.scope_reports(con, scope)
            frame = priorities(con, n, level, per_tactic, tactic)
            total = wh.counted_report_total(con)
            layer_json = priority_layer(con, frame, level) if layer else None
    except (wh.WarehouseLocked, ValueError) as exc:
        fail(str(exc))
    if current is None:
        console.print("No profile stored: every part weighs 1 and collection is not scored. Declare what you "
                      "collect with --profile FILE (README 'Prioritization').")
    else:
        telemetry = current["telemetry"]
        console.print(f"Profile {current['source']} (stored {current['stored_at']:%Y-%m-%d %H:%M} UTC): "
                      + (f"{len(telemetry)} data components collected" if telemetry is not None
                         else "telemetry not declared")
                      + f", {current['detections']} detected already, {current['signal_ratings']} signal ratings, "
                      + "weights "
                      + " / ".join(f"{part} {weight:g}" for part, weight in current["weights"].items()))
    shown = frame[["pick", "technique_id", "technique_name", "tactic", "n_reports", "signal", "collection",
                   "priority"]].rename(columns={"technique_id": "technique", "technique_name": "name",
                                                "n_reports": "reports", "collection": "collect"})
    print_frame(shown, f"Detect first: {len(frame)} techniques ({level} level"
                       f"{', ' + tactic if tactic else ''}) over {total} reports"
                       + (f" ({scope.describe()})" if scope else "") + "; "
                       "priority = prevalence (reports ÷ the most frequent's) × signal × collection")
    if csv:
        write_or_fail(csv, lambda target: write_csv(frame, target))
        console.print(f"wrote {csv}")
    if layer:
        write_or_fail(layer, lambda target: replace_file(target, json.dumps(layer_json, indent=2, ensure_ascii=False)
                                                         + "\n"))
        console.print(f"wrote {layer} (ATT&CK Navigator layer: {len(frame)} techniques)")
