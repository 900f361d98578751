"""Commands for the trained classifier: ``train``, ``evaluate``, ``retag``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from breachminer.cli.common import DbOption, compact_table, console, db_path, err_console, fail, quiet_prefect
from breachminer.settings import get_settings

DataOption = Annotated[Path | None, typer.Option(
    "--data", help="folder laid out like ../shared/data (attack/, tram/) \\[default: ../shared/data if present]",
    show_default=False)]


def _find_data_dir(option: Path | None) -> Path | None:
    candidates = [option] if option else [Path.cwd().parent / "shared" / "data",
                                         Path(__file__).resolve().parents[3] / "shared" / "data"]
    for candidate in candidates:
        if candidate and (candidate / "tram").is_dir() and (candidate / "attack").is_dir():
            return candidate
    return None


def _data_dir(option: Path | None) -> Path:
    found = _find_data_dir(option)
    if found is None:
        fail("no training data: pass --data DIR (a folder with attack/ and tram/; see README 'Training data')")
    return found


def train(
    data: DataOption = None,
    out: Annotated[Path | None, typer.Option(help="model folder \\[default: models/artifacts]")] = None,
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
    model_dir: Annotated[Path | None, typer.Option(help="model folder \\[default: the shipped model]")] = None,
    baseline: Annotated[bool, typer.Option(help="train and score the TRAM-style baseline")] = True,
    vendor: Annotated[bool, typer.Option(help="also score the vendor set (labelled by MITRE's mapping)")] = True,
    annotated: Annotated[bool, typer.Option(
        help="also score the annotated shared reports (27 real reports, two blind annotators)")] = True,
    update_card: Annotated[bool, typer.Option(help="store the results in the model card")] = False,
    labels: Annotated[Path | None, typer.Option(
        help="score your own annotated reports instead: a CSV with 'document' and 'techniques' columns "
             "(README 'Evaluate on your own reports')", show_default=False)] = None,
    universe: Annotated[str, typer.Option(
        help="with --labels: judge predictions of every active technique ('all') or only of techniques "
             "that occur in the labels ('labelled')")] = "all",
) -> None:
    """Score every method, the hybrid and a TRAM-style baseline on the held-out reports, the vendor set and
    the annotated shared reports.

    Example: breachminer evaluate --json eval.json
    Your own reports: breachminer evaluate --labels my-labels.csv --no-baseline
    """
    from breachminer.catalog import AttackCatalog
    from models.classifier import CARD_FILE, MODEL_DIR, ModelCompatibilityError, TechniqueClassifier
    from models.evaluate import evaluate as run_evaluation

    catalog = AttackCatalog.load(get_settings().catalog_path)
    try:
        model = TechniqueClassifier.load(model_dir or MODEL_DIR)
    except (FileNotFoundError, ModelCompatibilityError) as exc:
        fail(str(exc))
    if labels is not None:
        if update_card:
            fail("--update-card stores the held-out evaluation; it cannot be combined with --labels")
        _evaluate_labelled(labels, universe, catalog, model, data, baseline, json_out)
        return
    results = run_evaluation(_data_dir(data), catalog, model, with_baseline=baseline, with_vendor=vendor,
                             with_annotated=annotated, progress=lambda message: err_console.print(message))
    console.print(_method_table(
        f"Held-out evaluation: {results['heldout_reports']} TRAM reports, per document, "
        f"{results['label_universe']} techniques in the label universe (model {results['model_version']})",
        results["methods"]))
    console.print(_margin_table(results["hybrid_margin_parent_micro"]))
    console.print(_top_techniques_table(results["top20_parent"], list(results["methods"])))
    completed = results.get("heldout_completed")
    if completed:
        console.print(_method_table(
            f"The same held-out reports, TRAM's annotation completed by a blind annotation of the techniques under "
            f"its ~50 parents ({completed['tram_pairs_parent']} → {completed['truth_pairs_parent']} report-technique "
            "pairs, parent level): how much of the precision lost above is TRAM's annotators' silence",
            completed["methods"]))
        console.print(_margin_table(completed["hybrid_margin_parent_micro"]))
        bound = completed["completed_truth_vs_tram"]["parent"]
        console.print(
            f"A tagger that found exactly this completed truth would score P {_score(bound['precision'])} "
            f"R {_score(bound['recall'])} F1 {_score(bound['f1'])} (parent micro) against TRAM's labels alone: the "
            "most that finding what these reports hold can score in the first table.")
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
    if results.get("annotated"):
        _print_annotated(results["annotated"])
    console.print(_published_measures_table({
        "held-out, TRAM": results["methods"],
        "held-out, completed": (completed or {}).get("methods"),
        "vendor, MITRE": (vendor_results or {}).get("methods") if (vendor_results or {}).get("reports") else None,
        "annotated shared": (results.get("annotated") or {}).get("methods")
        if (results.get("annotated") or {}).get("reports") else None,
    }))
    if json_out:
        json_out.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
        console.print(f"wrote {json_out}")
    if update_card:
        card_path = (model_dir or MODEL_DIR) / CARD_FILE
        card = json.loads(card_path.read_text(encoding="utf-8"))
        card["evaluation"] = {k: v for k, v in results.items() if k not in ("top20_parent", "vendor", "annotated")}
        for extra in ("vendor", "annotated"):
            if extra in results:
                card["evaluation"][extra] = {k: v for k, v in results[extra].items() if k != "per_report"}
        card_path.write_text(json.dumps(card, indent=1) + "\n", encoding="utf-8")
        console.print(f"stored the results in {card_path}")


def _print_annotated(annotated: dict[str, Any]) -> None:
    """The annotated shared reports: the table against the first annotator, a line for the second."""
    for name, why in annotated["skipped"].items():
        err_console.print(f"annotated shared reports: skipped {name}: {why}")
    if not annotated["reports"]:
        err_console.print("annotated shared reports: none of models/annotated_reports.csv could be read; not scored")
        return
    second = annotated["second_annotator"]
    console.print(_method_table(
        f"Annotated shared reports: {annotated['reports']} real reports, each annotated in full by two annotators "
        f"blind to each other and to breachminer; truth = the first ({annotated['truth_pairs']} report-technique "
        "pairs)", annotated["methods"]))
    console.print(_margin_table(annotated["hybrid_margin_parent_micro"]))
    agreement = second["agreement_f1"]
    console.print(
        f"Against the second annotator ({second['truth_pairs']} pairs; the two agree at parent micro-F1 "
        f"{_score(agreement['parent'])}, exact {_score(agreement['exact'])}), parent micro-F1: "
        + ", ".join(f"{m} {_score(v['parent']['micro']['f1'])}" for m, v in second["methods"].items()))
    console.print(_frequency_table(
        "Annotated shared reports: each method's frequency table (reports per parent technique) against the "
        "first annotator's", {**annotated["frequency_parent"], "2nd annotator": second["frequency_parent"]}))


def _evaluate_labelled(labels: Path, universe: str, catalog: Any, model: Any, data: Path | None, baseline: bool,
                       json_out: Path | None) -> None:
    """``evaluate --labels``: the same tables on the user's own annotated reports."""
    from models.evaluate import UNIVERSES, evaluate_labelled
    from models.labelled_set import LabelsFileError

    if universe not in UNIVERSES:
        fail(f"--universe must be one of {', '.join(UNIVERSES)}, not {universe!r}")
    data_dir = _find_data_dir(data) if baseline else None
    if baseline and data_dir is None:
        if data is not None:
            fail(f"no training data under {data} (a folder with attack/ and tram/), needed for the baseline")
        err_console.print("TRAM-style baseline not scored: no training data found (pass --data DIR, "
                          "or --no-baseline to silence this)")
    try:
        results = evaluate_labelled(labels, catalog, model, universe=universe, data_dir=data_dir,
                                    progress=lambda message: err_console.print(message))
    except LabelsFileError as exc:
        fail(str(exc))
    for ignored in results["ignored_labels"]:
        err_console.print(f"{labels}:{ignored['row']}: ignored {ignored['label']!r} "
                          f"({ignored['document'] or 'no document'}): {ignored['reason']}")
    for name, why in results["skipped"].items():
        err_console.print(f"skipped {name}: {why}")
    if not results["reports"]:
        fail(f"no document of {labels} could be scored")
    scope = ("every active technique" if universe == "all"
             else f"the {results['label_universe']} techniques that occur in the labels")
    console.print(_method_table(
        f"Your labelled reports: {results['reports']} documents, {results['truth_pairs']} report-technique "
        f"pairs, predictions judged over {scope} (model {results['model_version']})", results["methods"]))
    console.print(_margin_table(results["hybrid_margin_parent_micro"]))
    console.print(_frequency_table("Each method's frequency table (reports per parent technique) against your labels'",
                                   results["frequency_parent"]))
    console.print(_top_techniques_table(results["top20_parent"], list(results["methods"]),
                                        "The 20 most frequent techniques in your labels (parent level, F1)"))
    console.print(_published_measures_table({"your labels": results["methods"]}))
    if json_out:
        json_out.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
        console.print(f"wrote {json_out}")


def _score(value: float) -> str:
    """A score as the tables print it: three decimals, no leading zero (".781")."""
    return f"{value:.3f}".removeprefix("0")


def _method_table(title: str, methods: dict[str, Any]) -> Any:
    """One row per method, one "P / R / F1" cell per level and average: fits an 80-column log."""
    def cell(values: dict[str, float]) -> str:
        return "/".join(_score(values[k]) for k in ("precision", "recall", "f1"))

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


PUBLISHED_MEASURES = ("published: per-document F1 .63–.74 (fine-tuned transformers, realistic\n"
                      "splits); rcATT macro-F0.5 .25 on techniques. Other reports and other\n"
                      "truths: a reference point, not a head-to-head.")


def _published_measures_table(sets: dict[str, dict[str, Any] | None]) -> Any:
    """The measures published mappers quote (per-document F1, macro-F0.5) for the hybrid, the classifier
    alone and the TRAM-style baseline, one row per evaluation set and method."""
    table = compact_table("In the measures published report-level mappers quote (parent / exact level)",
                          caption=PUBLISHED_MEASURES)
    for column in ("set", "method"):
        table.add_column(column, no_wrap=True)
    for column in ("per-document F1", "macro F0.5"):
        table.add_column(column, justify="right", no_wrap=True)
    for name, methods in sets.items():
        for method in ("hybrid", "classifier", "tram-baseline"):
            if not methods or method not in methods:
                continue
            levels = [methods[method][level] for level in ("parent", "exact")]
            table.add_row(name, method, "/".join(_score(values["per_document"]["f1"]) for values in levels),
                          "/".join(_score(values["macro"]["f05"]) for values in levels))
    return table


def _frequency_table(title: str, frequency: dict[str, dict[str, Any]]) -> Any:
    """How close each method's frequency table is to the annotators' (``models.evaluate.frequency_agreement``)."""
    table = compact_table(title, caption="ρ: Spearman over the techniques either side counts\n"
                                         "top-k: how many of the annotators' top k are in the method's top k\n"
                                         "n/m: reports counted by the method / by the annotators")
    table.add_column("method", no_wrap=True)
    table.add_column("ρ", justify="right", no_wrap=True)
    for k in ("10", "20"):
        table.add_column(f"top-{k}", justify="right", no_wrap=True)
    table.add_column("most under-counted")
    table.add_column("most over-counted")
    for method, values in frequency.items():
        if values["spearman"] is None:
            continue
        overlap = (str(values["top_overlap"].get(k, "")) for k in ("10", "20"))
        worst = ("\n".join(f"{t} {n}/{m}" for t, n, m in values[side][:2]) for side in ("under", "over"))
        table.add_row(method, _score(values["spearman"]), *overlap, *worst)
    return table


def _top_techniques_table(rows: list[dict[str, Any]], methods: list[str],
                          title: str = "The 20 most frequent techniques in the held-out reports (parent level, F1)",
                          ) -> Any:
    """Per-technique F1 of each method for the most frequent techniques: fits an 80-column log."""
    table = compact_table(title)
    table.add_column("technique", no_wrap=True)
    table.add_column("support", justify="right", no_wrap=True)
    for method in methods:
        table.add_column(method, justify="right", no_wrap=True)
    for row in rows:
        table.add_row(row["technique"], str(row["support"]), *(f"{row[m]['f1']:.2f}" for m in methods))
    return table


def retag(
    db: DbOption = None,
    model_dir: Annotated[Path | None, typer.Option(help="model folder \\[default: the shipped model]")] = None,
) -> None:
    """Re-tag the reports that another model, tagger or rule version decided, with the current ones.

    A report whose classifier model, id/name/lexicon tagger (their rule files, the ATT&CK release),
    sighting rule or threshold (BREACHMINER_SIGHTING_THRESHOLD) or advice rule has changed since it was
    loaded gets the changed taggers' mentions
    replaced and its sightings recomputed, in one transaction; reports already current are left alone.

    Example: breachminer retag --db /tmp/bm.duckdb
    """
    quiet_prefect()
    import warehouse.db as wh
    from flows.retag import run_retag
    from models.classifier import ModelCompatibilityError
    from warehouse.lock import WriterBusy, writer_busy

    if busy := writer_busy(db_path(db)):
        fail(busy)  # at once, before a flow run starts
    try:
        result = run_retag(str(db_path(db)), str(model_dir) if model_dir else None)
    except (wh.WarehouseMissing, wh.WarehouseLocked, WriterBusy, FileNotFoundError, ModelCompatibilityError) as exc:
        fail(str(exc))
    console.print(f"retagged {result['retagged']} reports with {result['model_version']} "
                  f"({result['unchanged']} already current); sightings {result['sightings_before']} → "
                  f"{result['sightings_after']}")
    if result["failed"]:
        for failure in result["failed"]:
            err_console.print(f"[red]not re-scored[/red] {failure}")
        fail(f"{len(result['failed'])} reports were not re-scored and keep their earlier sightings; "
             "run retag again to retry them")
