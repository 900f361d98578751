"""The ATT&CK Navigator layer export: the layer format 4.5 fields, and counts equal to the frequency views."""

from __future__ import annotations

import json
from datetime import date

import pytest
from warehouse_rows import load

import warehouse.db as wh
from breachminer.catalog import ATTACK_NOTICE
from warehouse.exports import navigator_layer


@pytest.fixture()
def con(db_file, catalog):
    with wh.connect(db_file, catalog=catalog) as connection:
        load(connection, "r1", ["T1059.001", "T1059.003", "T1053.005"], published=date(2021, 5, 1), title="Old")
        load(connection, "r2", ["T1059.001"], published=date(2024, 3, 1), title="New")
        load(connection, "r3", ["T1486"], published=date(2023, 1, 1), title="Ransom")
        yield connection


def _valid_layer(layer: dict, catalog) -> dict[str, dict]:
    """Check the fields layer format 4.5 requires; returns the entries by technique ID."""
    json.dumps(layer)  # serialisable as it is
    assert layer["name"] and layer["domain"] == "enterprise-attack"
    assert layer["versions"]["layer"] == "4.5" and layer["versions"]["attack"] == catalog.attack_version.split(".")[0]
    assert tuple(map(int, layer["versions"]["navigator"].split("."))) >= (4, 9, 0)
    gradient = layer["gradient"]
    assert len(gradient["colors"]) >= 2 and gradient["maxValue"] > gradient["minValue"]
    assert ATTACK_NOTICE in layer["description"]  # the layer names ATT&CK techniques: its notice goes with it
    entries = {}
    for entry in layer["techniques"]:
        assert entry["techniqueID"] in catalog.active, entry["techniqueID"]  # Navigator knows it
        assert isinstance(entry["score"], int) and gradient["minValue"] <= entry["score"] <= gradient["maxValue"]
        assert all(set(item) == {"name", "value"} and all(isinstance(v, str) for v in item.values())
                   for item in entry["metadata"])
        entries[entry["techniqueID"]] = entry
    _loads_in_mitres_library(layer)
    return entries


def _loads_in_mitres_library(layer: dict) -> None:
    """MITRE's own layer library (mitreattack-python, a dependency) reads the layer back without a
    complaint and keeps every technique, score and metadata item."""
    import contextlib
    import io

    from mitreattack.navlayers import Layer

    complaints = io.StringIO()
    with contextlib.redirect_stdout(complaints), contextlib.redirect_stderr(complaints):
        loaded = Layer()
        loaded.from_dict(json.loads(json.dumps(layer)))
        back = loaded.to_dict()
    assert complaints.getvalue() == ""
    assert back["versions"]["layer"] == "4.5" and back["domain"] == "enterprise-attack"
    assert [(t["techniqueID"], t.get("score"), len(t.get("metadata", []))) for t in back.get("techniques", [])] == [
        (t["techniqueID"], t["score"], len(t["metadata"])) for t in layer["techniques"]]


def test_parent_layer_scores_are_report_counts_with_their_sub_techniques(con, catalog) -> None:
    entries = _valid_layer(navigator_layer(con), catalog)
    assert {k: e["score"] for k, e in entries.items()} == {
        "T1059": 2, "T1059.001": 2, "T1059.003": 1, "T1053": 1, "T1053.005": 1, "T1486": 1}
    assert not any("tactic" in e for e in entries.values())  # a frequency holds in every tactic column
    parent = {m["name"]: m["value"] for m in entries["T1059"]["metadata"] if "name" in m and m["name"] != "report"}
    assert parent == {"reports": "2 of 3", "share of reports": "66.7%", "rank": "1",
                      "T1059.001": "PowerShell: 2 reports", "T1059.003": "Windows Command Shell: 1 report"}
    assert [m["value"] for m in entries["T1059"]["metadata"] if m.get("name") == "report"] == ["New", "Old"]
    assert "breachminer evidence T1059" in entries["T1059"]["comment"]
    assert navigator_layer(con)["gradient"]["maxValue"] == 2


def test_exact_layer_and_a_tactic_layer(con, catalog) -> None:
    exact = _valid_layer(navigator_layer(con, n=2, level="exact"), catalog)
    assert {k: e["score"] for k, e in exact.items()} == {"T1059.001": 2, "T1053.005": 1}  # top 2, ties by ID
    execution = _valid_layer(navigator_layer(con, tactic="Execution"), catalog)
    assert set(execution) == {"T1059", "T1059.001", "T1059.003", "T1053", "T1053.005"}
    assert {e["tactic"] for e in execution.values()} == {"execution"}  # coloured in that column only
    with pytest.raises(ValueError, match="unknown tactic"):
        navigator_layer(con, tactic="nonsense")


def test_an_empty_warehouse_gives_an_empty_layer_that_still_loads(db_file, catalog) -> None:
    with wh.connect(db_file, catalog=catalog) as connection:
        layer = navigator_layer(connection)
    assert _valid_layer(layer, catalog) == {} and layer["gradient"]["maxValue"] == 1
