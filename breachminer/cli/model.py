"""Commands for the trained classifier: ``train``, ``evaluate``, ``retag``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from breachminer.cli.common import DbOption, compact_table, console, db_path, err_console, fail, quiet_prefect
from breachminer.settings import get_settings

DataOption = Annotated[Path | None, typer.Option(
    "--data", help="folder laid out like ../shared/data (attack/, tram/) [default: ../shared/data if present]",
    show_default=False)]


def _data_dir(option: Path | None) -> Path:
    candidates = [option] if option else [Path.cwd().parent / "shared" / "data",
                                         Path(__file__).resolve().parents[3] / "shared" / "data"]
    for candidate in candidates:
        if candidate and (candidate / "tram").is_dir() and (candidate / "attack").is_dir():
            return candidate
    fail("no training data: pass --data DIR (a folder with attack/ and tram/; see README 'Training data')")
    raise AssertionError  # unreachable


def train(
    data: DataOption = None,
    out: Annotated[Path | None, typer.Option(help="model folder [default: models/artifacts]")] = None,
    seed: Annotated[int, typer.Option(help="random seed")] = 20261127,
) -> None:
    """Train the technique classifier (seeded, thresholds cross-validated by report) and write the artifact.

    Example: breachminer train --data ../shared/data
    """
    from breachminer.catalog import AttackCatalog
    from models.classifier import MODEL_DIR
    from models.train import train as train_model

    settings = get_settings()
    catalog = AttackCatalog.load(settings.catalog_path)
    directory = _data_dir(data)
    err_console.print(f"training on {directory} …")
    model, report = train_model(directory, catalog, seed=seed, progress=err_console.print)
    path = model.save(out or MODEL_DIR)
    console.print(
        f"model {model.version}: {report.n_labels} techniques, {report.n_train} training / {report.n_validation} "
        f"validation sentences, threshold {report.threshold} (validation report-level F1 {report.validation_f1:.3f}), "
        f"{report.seconds:.0f} s → {path} ({path.stat().st_size / 1e6:.1f} MB)"
    )


def evaluate(
    data: DataOption = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="also write the results to this JSON file")] = None,
    model_dir: Annotated[Path | None, typer.Option(help="model folder [default: the shipped model]")] = None,
    baseline: Annotated[bool, typer.Option(help="train and score the TRAM-style baseline")] = True,
    vendor: Annotated[bool, typer.Option(help="also score the vendor set (labelled by MITRE's mapping)")] = True,
    update_card: Annotated[bool, typer.Option(help="store the results in the model card")] = False,
) -> None:
    """Score every method, the hybrid and a TRAM-style baseline on the held-out reports and the vendor set.

    Example: breachminer evaluate --json eval.json
    """
    from breachminer.catalog import AttackCatalog
    from models.classifier import CARD_FILE, MODEL_DIR, ModelCompatibilityError, TechniqueClassifier
    from models.evaluate import evaluate as run_evaluation

    catalog = AttackCatalog.load(get_settings().catalog_path)
    try:
        model = TechniqueClassifier.load(model_dir or MODEL_DIR)
    except (FileNotFoundError, ModelCompatibilityError) as exc:
        fail(str(exc))
    results = run_evaluation(_data_dir(data), catalog, model, with_baseline=baseline, with_vendor=vendor,
                             progress=lambda message: err_console.print(message))
    console.print(_method_table(
        f"Held-out evaluation: {results['heldout_reports']} TRAM reports, per document, "
        f"{results['label_universe']} techniques in the label universe (model {results['model_version']})",
        results["methods"]))
    console.print(_margin_table(results["hybrid_margin_parent_micro"]))
    console.print(_top_techniques_table(results["top20_parent"], list(results["methods"])))
    vendor_results = results.get("vendor")
    if vendor_results:
        for name, why in vendor_results["skipped"].items():
            err_console.print(f"vendor set: skipped {name}: {why}")
        if vendor_results["reports"]:
            console.print(_method_table(
                f"Vendor set: {vendor_results['reports']} real vendor reports, truth = MITRE's ATT&CK mapping of "
                f"each ({vendor_results['truth_pairs']} report-technique pairs; incomplete, so precision is a lower "
                "bound)", vendor_results["methods"]))
            console.print(_margin_table(vendor_results["hybrid_margin_parent_micro"]))
        else:
            err_console.print("vendor set: no report of models/vendor_reports.csv could be read; not scored")
    if json_out:
        json_out.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
        console.print(f"wrote {json_out}")
    if update_card:
        card_path = (model_dir or MODEL_DIR) / CARD_FILE
        card = json.loads(card_path.read_text(encoding="utf-8"))
        card["evaluation"] = {k: v for k, v in results.items() if k not in ("top20_parent", "vendor")}
        if "vendor" in results:
            card["evaluation"]["vendor"] = {k: v for k, v in results["vendor"].items() if k != "per_report"}
        card_path.write_text(json.dumps(card, indent=1) + "\n", encoding="utf-8")
        console.print(f"stored the results in {card_path}")


def _method_table(title: str, methods: dict[str, Any]) -> Any:
    """One row per method, one "P / R / F1" cell per level and average: fits an 80-column log."""
    def cell(values: dict[str, float]) -> str:
        return "/".join(f"{values[k]:.3f}".removeprefix("0") for k in ("precision", "recall", "f1"))

    table = compact_table(title, caption="each cell: precision / recall / F1")
    table.add_column("method", no_wrap=True)
    for level in ("parent", "exact"):
        for kind in ("micro", "macro"):
            table.add_column(f"{level} {kind}", justify="right", no_wrap=True)
    for method, levels in methods.items():
        table.add_row(method, *(cell(levels[level][kind]) for level in ("parent", "exact")
                                for kind in ("micro", "macro")))
    return table


def _margin_table(margins: dict[str, Any]) -> Any:
    """The reference method's parent micro-F1 margin over each other method, with its bootstrap interval."""
    table = compact_table(f"{margins['reference']} minus each method, parent micro F1 (points)",
                          caption=f"95% paired bootstrap interval over reports ({margins['samples']} resamples)")
    table.add_column("method", no_wrap=True)
    table.add_column("margin", justify="right", no_wrap=True)
    table.add_column("95% interval", justify="right", no_wrap=True)
    for method, values in margins["methods"].items():
        low, high = values["ci95"]
        table.add_row(method, f"{100 * values['margin']:+.1f}", f"{100 * low:+.1f} to {100 * high:+.1f}")
    return table


def _top_techniques_table(rows: list[dict[str, Any]], methods: list[str]) -> Any:
    """Per-technique F1 of each method for the most frequent techniques: fits an 80-column log."""
    table = compact_table("The 20 most frequent techniques in the held-out reports (parent level, F1)")
    table.add_column("technique", no_wrap=True)
    table.add_column("support", justify="right", no_wrap=True)
    for method in methods:
        table.add_column(method, justify="right", no_wrap=True)
    for row in rows:
        table.add_row(row["technique"], str(row["support"]), *(f"{row[m]['f1']:.2f}" for m in methods))
    return table


def retag(
    db: DbOption = None,
    model_dir: Annotated[Path | None, typer.Option(help="model folder [default: the shipped model]")] = None,
) -> None:
    """Re-score every report with the current classifier, replacing older classifier mentions.

    Example: breachminer retag --db /tmp/bm.duckdb
    """
    quiet_prefect()
    import warehouse.db as wh
    from flows.retag import run_retag
    from models.classifier import ModelCompatibilityError
    from warehouse.lock import WriterBusy

    try:
        result = run_retag(str(db_path(db)), str(model_dir) if model_dir else None)
    except (wh.WarehouseMissing, wh.WarehouseLocked, WriterBusy, FileNotFoundError, ModelCompatibilityError) as exc:
        fail(str(exc))
    console.print(f"retagged {result['retagged']} reports with {result['model_version']} "
                  f"({result['unchanged']} already current); sightings {result['sightings_before']} → "
                  f"{result['sightings_after']}")
