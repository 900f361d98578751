"""The vendor evaluation set: its list, MITRE's labels for it, and its withholding from training."""

from __future__ import annotations

import hashlib
import json

import pytest
from conftest import SHARED_DATA, needs_shared

from models.training_data import (
    LabelledSentence,
    clean_procedure_text,
    load_training_data,
    near_copies,
    read_attack_objects,
)
from models.vendor_set import (
    VendorReference,
    cites,
    load_vendor_reports,
    mitre_labels,
    read_vendor_references,
    read_vendor_texts,
)

HTML = b"<html><head><title>Vendor X</title></head><body><article><p>" + b"The dropper copies itself. " * 20 + (
    b"</p></article></body></html>")


def _pattern(stix_id: str, technique_id: str) -> dict:
    return {"type": "attack-pattern", "id": stix_id,
            "external_references": [{"source_name": "mitre-attack", "external_id": technique_id}]}


def _uses(target: str, *references: str, revoked: bool = False) -> dict:
    return {"type": "relationship", "relationship_type": "uses", "source_ref": "malware--1", "target_ref": target,
            "description": "It runs commands.", "revoked": revoked,
            "external_references": [{"source_name": name} for name in references]}


OBJECTS = [
    _pattern("attack-pattern--ps", "T1059.001"),
    _pattern("attack-pattern--dll", "T1574.002"),  # revoked in v18 for T1574.001
    _pattern("attack-pattern--cmd", "T1059.003"),
    _uses("attack-pattern--ps", "Vendor X 2020", "Other 2019"),
    _uses("attack-pattern--dll", "Vendor X 2020"),
    _uses("attack-pattern--cmd", "Vendor X 2020", revoked=True),  # a revoked relationship is not MITRE's mapping
    _uses("attack-pattern--cmd", "Other 2019"),
]


def test_committed_list_is_well_formed() -> None:
    references = read_vendor_references()
    assert len(references) >= 10
    assert len({r.file for r in references}) == len(references)
    assert all(len(r.sha256) == 64 and r.attack_reference for r in references)


def test_mitre_labels_resolve_and_skip_revoked_relationships(catalog) -> None:
    assert cites(OBJECTS[3], ["Other 2019"]) and not cites(OBJECTS[3], ["Nobody"])
    labels = mitre_labels(OBJECTS, catalog, ["Vendor X 2020", "Other 2019", "Nobody"])
    assert labels == {"Vendor X 2020": {"T1059.001", "T1574.001"}, "Other 2019": {"T1059.001", "T1059.003"},
                      "Nobody": frozenset()}


def test_unusable_reports_are_skipped_with_their_reason(tmp_path, catalog) -> None:
    (tmp_path / "good.html").write_bytes(HTML)
    (tmp_path / "changed.html").write_bytes(HTML + b" ")
    (tmp_path / "empty.html").write_bytes(b"<html><body></body></html>")
    sha = hashlib.sha256(HTML).hexdigest()
    references = [
        VendorReference("good.html", sha, "Vendor X 2020", "X", "2020"),
        VendorReference("changed.html", sha, "Vendor X 2020", "X", "2020"),
        VendorReference("gone.pdf", sha, "Vendor X 2020", "X", "2020"),
        VendorReference("empty.html", hashlib.sha256(b"<html><body></body></html>").hexdigest(), "Vendor X 2020",
                        "X", "2020"),
    ]
    texts, skipped = read_vendor_texts(tmp_path, references)
    assert list(texts) == ["good.html"] and "dropper copies itself" in texts["good.html"]
    assert "sha256 differs" in skipped["changed.html"]
    assert skipped["gone.pdf"].startswith("missing:")
    assert skipped["empty.html"].startswith("extract/")
    uncited = [VendorReference("good.html", sha, "Nobody", "X", "2020")]
    reports, skipped = load_vendor_reports(OBJECTS, catalog, tmp_path, uncited)
    assert reports == [] and "no active procedure example cites 'Nobody'" in skipped["good.html"]


def test_near_copies_find_procedure_examples_with_the_name_cut_out() -> None:
    original = LabelledSentence("Foxglove has gathered spreadsheets, PDF files, and notes from victims.", ("T1005",),
                                "attack-procedure", "attack:x")
    candidates = [
        LabelledSentence("has gathered spreadsheets PDF files and notes from victims.", ("T1005",), "tram-bootstrap",
                         "b"),
        LabelledSentence("The loader copies itself into the Startup folder.", ("T1547.001",), "tram-bootstrap", "b"),
        LabelledSentence("has collected documents.", ("T1005",), "tram-bootstrap", "b"),  # too short to judge
    ]
    assert near_copies(candidates, [original]) == {0}
    assert near_copies(candidates, []) == set()


# ------------------------------------------------------------------------------ real data


@needs_shared
def test_every_listed_report_is_in_shared_and_cited_by_attack(catalog) -> None:
    reports, skipped = load_vendor_reports(read_attack_objects(SHARED_DATA), catalog, SHARED_DATA / "reports")
    assert skipped == {}
    assert len(reports) == len(read_vendor_references())
    assert all(r.labels and len(r.text) > 5_000 for r in reports)
    assert 100 <= sum(len(r.labels) for r in reports) <= 200


@pytest.fixture(scope="module")
def training(catalog):
    return load_training_data(SHARED_DATA, catalog)


@needs_shared
def test_vendor_set_is_withheld_from_training(training, catalog) -> None:
    references = {r.attack_reference for r in read_vendor_references()}
    objects = read_attack_objects(SHARED_DATA)
    citing = [o for o in objects if o.get("type") == "relationship" and o.get("relationship_type") == "uses"
              and o.get("target_ref", "").startswith("attack-pattern") and o.get("description")
              and not o.get("revoked") and not o.get("x_mitre_deprecated") and cites(o, references)]
    assert len(citing) > 100
    withheld = training.withheld_vendor
    assert withheld["attack-procedure"] >= len(citing)  # plus any whose text occurs in a vendor report
    assert withheld["tram-bootstrap"] > 50  # name-stripped copies of those procedure examples
    training_texts = {s.text for s in training.sentences if s.source == "attack-procedure"}
    elsewhere = {clean_procedure_text(o["description"]) for o in objects
                 if o.get("type") == "relationship" and o.get("description") and not cites(o, references)}
    kept = {clean_procedure_text(o["description"]) for o in citing} & training_texts
    assert kept <= elsewhere  # a paraphrase stays only when MITRE wrote the same words for another report


def test_vendor_set_without_its_reports_scores_nothing_and_says_why(tmp_path, catalog) -> None:
    from models.evaluate import evaluate_vendor

    (tmp_path / "attack").mkdir()
    (tmp_path / "attack" / "enterprise-attack-18.1.json").write_text(json.dumps({"objects": OBJECTS}))
    said: list[str] = []
    result = evaluate_vendor(tmp_path, catalog, None, [], 0.5, None, said.append)
    assert result["reports"] == 0 and result["per_report"] == []
    assert set(result["skipped"]) == {r.file for r in read_vendor_references()}
    assert all(why.startswith("missing:") for why in result["skipped"].values())
    assert "skipped" in said[0]
