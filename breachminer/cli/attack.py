"""``breachminer attack update``: rebuild the ATT&CK catalog from a STIX bundle."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from breachminer.catalog import build_catalog
from breachminer.cli.common import console, fail
from breachminer.settings import get_settings

app = typer.Typer(help="The ATT&CK catalog.", no_args_is_help=True)


@app.command("update")
def update(
    stix: Annotated[str, typer.Option(help="ATT&CK Enterprise STIX bundle: .json, .json.gz or an https URL")],
    out: Annotated[Path | None, typer.Option(help="where to write \\[default: $BREACHMINER_HOME/attack-catalog.json]")]
    = None,
    attack_version: Annotated[str | None, typer.Option(help="ATT&CK version, if the bundle does not say")] = None,
) -> None:
    """Build the compact catalog from a STIX bundle; later runs use it instead of the packaged one.

    Example: breachminer attack update --stix ../shared/data/attack/enterprise-attack-18.1.json.gz
    """
    target = out or get_settings().home / "attack-catalog.json"
    try:
        catalog = build_catalog(stix, attack_version)
    except (OSError, ValueError) as exc:
        fail(f"cannot build the catalog from {stix}: {exc}")
    catalog.save(target)
    active = catalog.active
    n_sub = sum(1 for t in active.values() if t.parent)
    console.print(
        f"ATT&CK {catalog.attack_version}: {len(active)} active techniques "
        f"({len(active) - n_sub} techniques + {n_sub} sub-techniques), {len(catalog.tactics)} tactics, "
        f"{len(catalog.revoked)} revoked IDs remapped → {target}"
    )
