"""A user's own labelled reports, for ``breachminer evaluate --labels FILE.csv``.

The held-out TRAM reports and the vendor set measure the product on data its developers chose. A
detection team that has annotated some of its own reports can measure it on those instead, with the
same table (every method alone, the hybrid, optionally the TRAM-style baseline). This module reads
the annotation file and the documents; it never tags or scores.

The file is CSV (UTF-8, header row), with at least two columns:

- ``document``: a ``.pdf``, ``.html`` or ``.txt`` file, relative to the CSV's folder or absolute;
- ``techniques``: ATT&CK technique IDs separated by spaces, commas or semicolons (``T1059.001; T1566``),
  or ``technique``: one ID per row, as a spreadsheet export gives.

A document may span several rows; its truth is the union of its rows' IDs. Other columns (for
example ``evidence``) are ignored. A document with no ID at all is a report in which no technique
was observed: anything predicted there is a false positive. Revoked IDs follow ``revoked-by`` to
the current technique (T1086 → T1059.001). An ID the catalog does not know, or a deprecated one, is
left out of the truth and reported, row by row, as an ignored label, so a typo never silently
changes recall. A document that is missing or has no extractable text is skipped with its reason.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

from breachminer.catalog import AttackCatalog
from extractors.documents import ExtractionError, extract

_ID_SEPARATORS = re.compile(r"[\s,;|]+")


class LabelsFileError(ValueError):
    """The annotation file cannot be used at all (missing, not CSV, no usable column)."""


@dataclass(frozen=True)
class LabelledReport:
    """A user's document ready to score: its extracted text and the techniques annotated in it."""

    name: str  # the ``document`` cell as written in the CSV
    path: Path
    text: str
    labels: frozenset[str]  # current technique IDs


@dataclass(frozen=True)
class IgnoredLabel:
    """An ID of the annotation file that is not part of the truth, and why."""

    row: int  # 1-based line number in the CSV (the header is line 1)
    document: str
    label: str
    reason: str


@dataclass(frozen=True)
class LabelledSet:
    """Everything read from one annotation file."""

    reports: list[LabelledReport]
    skipped: dict[str, str]  # document → why it was not scored
    ignored: list[IgnoredLabel]


def read_labels(path: Path, catalog: AttackCatalog) -> tuple[dict[str, set[str]], list[IgnoredLabel]]:
    """Per document cell (in file order): its resolved technique IDs, and the IDs left out with why."""
    path = Path(path)
    if not path.is_file():
        raise LabelsFileError(f"labels file not found: {path}")
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle)
            rows = list(reader)
            fields = [(f or "").strip().lower() for f in reader.fieldnames or []]
    except (UnicodeDecodeError, csv.Error) as exc:
        raise LabelsFileError(f"{path}: not a UTF-8 CSV file ({exc})") from exc
    id_column = "techniques" if "techniques" in fields else "technique" if "technique" in fields else None
    if "document" not in fields or id_column is None:
        raise LabelsFileError(f"{path}: needs a 'document' column and a 'techniques' (or 'technique') column; "
                              f"found {', '.join(fields) or 'no header'}")
    truth: dict[str, set[str]] = {}
    ignored: list[IgnoredLabel] = []
    for line, row in enumerate(rows, start=2):
        cells = {(k or "").strip().lower(): (v or "") for k, v in row.items() if k is not None}
        document = cells.get("document", "").strip()
        if not document:
            ignored.extend(IgnoredLabel(line, "", label, "row has no document")
                           for label in _ID_SEPARATORS.split(cells.get(id_column, "").strip()) if label)
            continue
        labels = truth.setdefault(document, set())
        for cited in _ID_SEPARATORS.split(cells.get(id_column, "").strip()):
            if not cited:
                continue
            resolution = catalog.resolve(cited)
            if resolution.technique_id is None:
                ignored.append(IgnoredLabel(line, document, cited,
                                            f"not an ATT&CK {catalog.attack_version} technique ID"))
            elif resolution.technique_id not in catalog.active:
                ignored.append(IgnoredLabel(line, document, cited,
                                            f"deprecated in ATT&CK {catalog.attack_version}, with no replacement"))
            else:
                labels.add(resolution.technique_id)
    return truth, ignored


def load_labelled_set(path: Path, catalog: AttackCatalog, documents_dir: Path | None = None) -> LabelledSet:
    """Read the annotation file and extract each document's text (skipping, with a reason, what fails).

    Relative ``document`` paths are resolved against ``documents_dir`` when given (the annotated shared
    reports name files of ``<data>/reports``), else against the CSV's folder.
    """
    truth, ignored = read_labels(path, catalog)
    folder = Path(documents_dir) if documents_dir is not None else Path(path).resolve().parent
    reports: list[LabelledReport] = []
    skipped: dict[str, str] = {}
    for document, labels in truth.items():
        file = Path(document).expanduser()
        file = file if file.is_absolute() else folder / file
        if not file.is_file():
            skipped[document] = f"missing: {file}"
            continue
        try:
            text = extract(file.read_bytes(), file.name).text
        except ExtractionError as exc:
            skipped[document] = f"{exc.stage}/{exc.error_class}: {exc}"
            continue
        except OSError as exc:
            skipped[document] = f"unreadable: {exc}"
            continue
        if not text.strip():
            skipped[document] = "no extractable text"
            continue
        reports.append(LabelledReport(document, file, text, frozenset(labels)))
    return LabelledSet(reports, skipped, ignored)
