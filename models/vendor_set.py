"""The second evaluation set: real vendor reports labelled by MITRE's own ATT&CK mapping.

The held-out TRAM reports are annotated by TRAM's annotators, sentence by sentence. This set is
annotated by other people, the way an independent vendor set would be: each row of
``models/vendor_reports.csv`` names a report of ``shared/data/reports`` (file name and sha256) and the
ATT&CK reference (``external_references[].source_name``) under which MITRE cites that same report.
The report's truth is every technique of an ATT&CK ``uses`` relationship (a procedure example) that
cites it, resolved through the catalog. MITRE records what a report shows about one group or piece
of software, not every technique in it, so the truth is incomplete: recall is meaningful, precision
is a lower bound, and the numbers compare methods rather than measure them absolutely.

The procedure examples that cite these reports are MITRE's paraphrases of them, so the training data
loader removes them (and their name-stripped copies in TRAM's bootstrap file, and any training sentence
that occurs in a report's text) before training: see ``models.training_data.load_training_data``.
This module only reads the list, the reports and the bundle; it never trains or scores.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from breachminer.catalog import AttackCatalog
from extractors.documents import ExtractionError, extract

VENDOR_LIST = Path(__file__).with_name("vendor_reports.csv")


@dataclass(frozen=True)
class VendorReference:
    """One row of the list: a report file and the ATT&CK reference that cites it."""

    file: str  # file name under <data>/reports
    sha256: str  # of the file's bytes, so a different file of the same name is never scored
    attack_reference: str  # external_references[].source_name in the ATT&CK bundle
    publisher: str
    year: str


@dataclass(frozen=True)
class VendorReport:
    """A vendor report ready to score: its extracted text and MITRE's techniques for it."""

    name: str  # file name
    reference: str  # ATT&CK reference
    text: str  # extractors.documents.extract(...).text
    labels: frozenset[str]  # resolved active technique IDs of the procedure examples citing it


def read_vendor_references(path: Path | None = None) -> list[VendorReference]:
    """The rows of ``models/vendor_reports.csv`` (or ``path``)."""
    with Path(path or VENDOR_LIST).open(encoding="utf-8", newline="") as handle:
        return [VendorReference(row["file"], row["sha256"], row["attack_reference"], row["publisher"], row["year"])
                for row in csv.DictReader(handle)]


def cites(relationship: dict[str, Any], references: Iterable[str]) -> bool:
    """Whether an ATT&CK relationship cites any of ``references`` (by ``source_name``)."""
    wanted = set(references)
    return any(ref.get("source_name") in wanted for ref in relationship.get("external_references", []) or [])


def technique_ids(objects: list[dict[str, Any]]) -> dict[str, str]:
    """STIX id → ATT&CK ID (``T1059.001``) of every attack-pattern in the bundle's objects."""
    return {
        obj["id"]: ref["external_id"]
        for obj in objects if obj.get("type") == "attack-pattern"
        for ref in obj.get("external_references", []) or []
        if ref.get("source_name") == "mitre-attack" and ref.get("external_id")
    }


def mitre_labels(objects: list[dict[str, Any]], catalog: AttackCatalog,
                 references: Iterable[str]) -> dict[str, frozenset[str]]:
    """Per reference: the techniques of the active ``uses`` relationships citing it, resolved."""
    attack_ids = technique_ids(objects)
    wanted = set(references)
    labels: dict[str, set[str]] = {name: set() for name in wanted}
    for rel in objects:
        if rel.get("type") != "relationship" or rel.get("relationship_type") != "uses":
            continue
        if rel.get("revoked") or rel.get("x_mitre_deprecated") or rel.get("target_ref") not in attack_ids:
            continue
        resolved = catalog.resolve(attack_ids[rel["target_ref"]]).technique_id
        if not resolved or resolved not in catalog.active:
            continue
        for ref in rel.get("external_references", []) or []:
            if ref.get("source_name") in wanted:
                labels[ref["source_name"]].add(resolved)
    return {name: frozenset(found) for name, found in labels.items()}


def read_vendor_texts(reports_dir: Path, references: list[VendorReference]) -> tuple[dict[str, str], dict[str, str]]:
    """Extracted text per report file, and why each report that could not be used was skipped.

    A report is skipped when its file is missing, its bytes do not match the listed sha256, or it
    has no extractable text.
    """
    texts: dict[str, str] = {}
    skipped: dict[str, str] = {}
    for ref in references:
        path = Path(reports_dir) / ref.file
        if not path.is_file():
            skipped[ref.file] = f"missing: {path}"
            continue
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() != ref.sha256:
            skipped[ref.file] = f"sha256 differs from models/vendor_reports.csv: {path}"
            continue
        try:
            texts[ref.file] = extract(data, ref.file).text
        except ExtractionError as exc:
            skipped[ref.file] = f"{exc.stage}/{exc.error_class}: {exc}"
    return texts, skipped


def load_vendor_reports(objects: list[dict[str, Any]], catalog: AttackCatalog, reports_dir: Path,
                        references: list[VendorReference] | None = None) -> tuple[list[VendorReport], dict[str, str]]:
    """The vendor reports that can be scored, and the skipped ones with their reason."""
    references = read_vendor_references() if references is None else references
    labels = mitre_labels(objects, catalog, [r.attack_reference for r in references])
    texts, skipped = read_vendor_texts(reports_dir, references)
    reports = []
    for ref in references:
        if ref.file in skipped:
            continue
        if not labels[ref.attack_reference]:
            skipped[ref.file] = f"no active procedure example cites {ref.attack_reference!r}"
            continue
        reports.append(VendorReport(ref.file, ref.attack_reference, texts[ref.file], labels[ref.attack_reference]))
    return reports, skipped
