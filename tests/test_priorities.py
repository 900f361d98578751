"""Prioritization (DESIGN.md §6): the profile file, the technique_priority view's parts, and the command."""

from __future__ import annotations

import csv
import json

import pandas as pd
import pytest
from test_exports import _valid_layer
from typer.testing import CliRunner
from warehouse_rows import load

import warehouse.db as wh
from breachminer.cli import app
from breachminer.priority_profile import ProfileError, load_profile, parse_profile
from warehouse.priorities import priorities, store_profile, stored_profile, sync_lexicon_ratings

runner = CliRunner()
RATINGS = [("T1218.005", "mshta", "high"), ("T1218.011", "rundll32", "medium"),
           ("T1059.001", "encoded-powershell", "high"), ("T1059.001", "bare-powershell", "low")]


@pytest.fixture()
def con(db_file, catalog):
    with wh.connect(db_file, catalog=catalog) as connection:
        yield connection


def view(con, level: str = "parent") -> dict[str, dict]:
    frame = con.execute("SELECT * FROM technique_priority WHERE level = ? ORDER BY pick", [level]).df()
    return {row["technique_id"]: row for row in frame.to_dict("records")}


def test_a_profile_is_read_and_checked_against_the_catalog(tmp_path, catalog) -> None:
    path = tmp_path / "profile.yaml"
    path.write_text("telemetry: [process creation, 'Command  Execution', Process Creation]\n"
                    "signal:\n  T1086: 0.9\n  T1218.011: {score: 0.2, note: rundll32 is everywhere here}\n"
                    "weights: {signal: 0.5}\n")
    with pytest.raises(ProfileError, match=r"T1086: was revoked; use T1059\.001"):
        load_profile(path, catalog)
    path.write_text(path.read_text().replace("T1086", "T1059.001"))
    profile = load_profile(path, catalog)
    assert profile.telemetry == ("Process Creation", "Command Execution")  # ATT&CK's spelling, once each
    assert [(r.technique_id, r.score, r.note) for r in profile.signal] == [
        ("T1059.001", 0.9, None), ("T1218.011", 0.2, "rundll32 is everywhere here")]
    assert profile.weights == {"prevalence": 1.0, "signal": 0.5, "collection": 1.0}
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    assert load_profile(empty, catalog).telemetry is None  # nothing declared


@pytest.mark.parametrize(("raw", "message"), [
    ({"telemetry": ["Process Creaton"]}, "did you mean 'Process Creation'"),
    ({"telemetry": "Process Creation"}, "must be a list"),
    ({"signal": {"T1059.001": 1.5}}, "from 0 to 1"),
    ({"signal": {"T9999": 0.5}}, "not an ATT&CK technique"),
    ({"detections": ["T1086"]}, r"detections T1086: was revoked; use T1059\.001"),
    ({"detections": "T1059"}, "must be a list"),
    ({"weights": {"signal": -1}}, "≥ 0"),
    ({"weights": {"fidelity": 1}}, "unknown weight"),
    ({"telemetery": []}, "unknown key 'telemetery'"),
    (["Process Creation"], "expected a mapping"),
])
def test_a_bad_profile_says_what_is_wrong(catalog, raw, message) -> None:
    with pytest.raises(ProfileError, match=message):
        parse_profile(raw, catalog, "p.yaml")


def test_each_part_of_the_priority_and_its_reason(con, catalog) -> None:
    # the reports' lexicon evidence: r1 shows encoded PowerShell and mshta, r2 rundll32; r3 names no observable
    load(con, "r1", ["T1059.001", "T1218.005"],
         observables={"T1059.001": "encoded-powershell:high", "T1218.005": "mshta:high"})
    load(con, "r2", ["T1059.001", "T1218.011"], observables={"T1218.011": "rundll32:medium"})
    load(con, "r3", ["T1059.003"])
    load(con, "r4", ["T1566.001"])
    sync_lexicon_ratings(con, RATINGS)
    assert sync_lexicon_ratings(con, reversed(RATINGS)) is False  # unchanged: not rewritten
    exact = view(con, "exact")
    # a technique is judged by what its reports show: encoded PowerShell (high) in r1, nothing rated in r2
    assert (exact["T1059.001"]["signal"], exact["T1059.001"]["signal_reason"]) == (
        0.75, "lexicon: encoded-powershell (high) in 1 of 2 reports")
    assert (exact["T1218.011"]["signal"], exact["T1059.003"]["signal_reason"]) == (0.6, "unrated")
    # a rated observable no report shows is named, not scored: what the lexicon knows is not what attackers did
    sync_lexicon_ratings(con, [*RATINGS, ("T1059.003", "cmd-mention", "low"), ("T1059.003", "cmd-c", "medium")])
    assert (view(con, "exact")["T1059.003"]["signal"], view(con, "exact")["T1059.003"]["signal_reason"]) == (
        0.5, "unrated (no report shows what the lexicon rates: cmd-c medium, cmd-mention low)")
    sync_lexicon_ratings(con, RATINGS)
    parent = view(con)
    # a parent's signal: its family's, weighted by the reports that sight each member
    assert parent["T1059"]["signal"] == round((0.75 * 2 + 0.5 * 1) / 3, 4)
    assert parent["T1218"]["signal"] == 0.8 and parent["T1566"]["signal"] == 0.5
    assert [parent[t]["prevalence"] for t in ("T1059", "T1218", "T1566")] == [1.0, round(2 / 3, 4), round(1 / 3, 4)]
    assert pd.isna(parent["T1059"]["collection"])  # no telemetry declared: not scored
    assert "not scored (no telemetry declared)" in parent["T1059"]["why"]
    assert parent["T1218"]["priority"] == round(2 / 3 * 0.8, 4)
    assert list(parent) == ["T1059", "T1218", "T1566"]  # one per tactic, by priority

    collected = ["Process Creation", "Command Execution"]  # 2 of T1059's 3 components, 1 of T1218's 3
    store_profile(con, parse_profile({"telemetry": collected, "signal": {"T1218": {"score": 0.1, "note": "noisy"}},
                                      "weights": {"prevalence": 2}}, catalog, "mine.yaml"))
    parent = view(con)
    t1059 = catalog.techniques["T1059"].data_components
    assert parent["T1059"]["collection"] == round(2 / len(t1059), 4)
    assert list(parent["T1059"]["missing"]) == [c for c in t1059 if c not in collected]
    assert (parent["T1218"]["signal"], parent["T1218"]["signal_reason"]) == (0.1, "your profile: noisy")
    exact = view(con, "exact")  # a parent's rating holds for its sub-techniques the user did not rate
    assert (exact["T1218.005"]["signal"], exact["T1218.005"]["signal_reason"]) == (
        0.1, "your profile: noisy (for T1218)")
    assert parent["T1218"]["priority"] == round((2 / 3) ** 2 * 0.1 * (1 / 3), 4)
    assert "missing Module Load, Network Connection Creation" in parent["T1218"]["why"]
    assert parent["T1218"]["why"].endswith("weights 2.00 / 1.00 / 1.00")
    assert stored_profile(con)["telemetry"] == collected
    # detections: a listed sub-technique is detected; its parent only once every sighted member is
    store_profile(con, parse_profile({"detections": ["T1059.001", "T1218"]}, catalog, "d.yaml"))
    exact, parent = view(con, "exact"), view(con)
    assert exact["T1059.001"]["detected"] and not exact["T1059.003"]["detected"] and not parent["T1059"]["detected"]
    assert exact["T1218.005"]["detected"] and parent["T1218"]["detected"]  # the parent listed: all of it
    store_profile(con, parse_profile({"detections": ["T1059.001", "T1059.003"]}, catalog, "d.yaml"))
    assert view(con)["T1059"]["detected"] and stored_profile(con)["detections"] == 2
    store_profile(con, parse_profile({}, catalog, "empty.yaml"))  # a new profile replaces the old one whole
    assert view(con)["T1218"]["signal"] == 0.8 and stored_profile(con)["signal_ratings"] == 0


def test_picks_go_round_the_kill_chain(con, catalog) -> None:
    for rid in ("r1", "r2", "r3"):
        load(con, rid, ["T1027", "T1036", "T1140"] + (["T1059", "T1566"] if rid == "r1" else [])
             + (["T1053"] if rid in ("r1", "r2") else []))
    parent = view(con)
    # defence evasion holds the three most prevalent techniques, but every other tactic's best comes
    # before its second; T1053 (execution, persistence, privilege escalation) ranks first in all three
    # and is placed in the earliest, so T1059 comes in execution's second round
    assert list(parent) == ["T1027", "T1053", "T1566", "T1036", "T1059", "T1140"]
    assert [parent[t]["pick_round"] for t in parent] == [1, 1, 1, 2, 2, 3]
    assert parent["T1053"]["tactic"] == "execution" and parent["T1036"]["priority_rank"] == 1
    picked = priorities(con, 10, per_tactic=1)
    assert picked["technique_id"].tolist() == ["T1027", "T1053", "T1566"]
    evasion = priorities(con, 10, tactic="Defense Evasion")
    assert evasion["technique_id"].tolist() == ["T1027", "T1036", "T1140"]
    with pytest.raises(ValueError, match="unknown tactic"):
        priorities(con, 10, tactic="nonsense")
    # with only command lines collected, phishing cannot be seen at all (priority 0): no candidate, last
    store_profile(con, parse_profile({"telemetry": ["Command Execution"]}, catalog, "cmd.yaml"))
    parent = view(con)
    assert list(parent) == ["T1140", "T1053", "T1027", "T1059", "T1036", "T1566"]
    assert parent["T1566"]["priority"] == 0 and pd.isna(parent["T1566"]["pick_round"])  # takes no round
    # what you detect already is no candidate either: the next best of its tactic takes its round
    store_profile(con, parse_profile({"telemetry": ["Command Execution"], "detections": ["T1140", "T1059"]},
                                     catalog, "cmd.yaml"))
    parent = view(con)
    assert list(parent) == ["T1027", "T1053", "T1036", "T1566", "T1140", "T1059"]
    assert [parent[t]["pick_round"] for t in ("T1027", "T1053", "T1036")] == [1, 1, 2]
    assert parent["T1140"]["detected"] and parent["T1140"]["why"].endswith("detected already (your profile)")


def test_the_prioritize_command_stores_the_profile_and_explains_each_row(tmp_path, db_file, catalog) -> None:
    result = runner.invoke(app, ["prioritize", "--db", str(db_file)])
    assert result.exit_code == 1 and "breachminer ingest" in result.output
    with wh.connect(db_file, catalog=catalog) as con:
        load(con, "r1", ["T1218.005", "T1059.001"], observables={"T1218.005": "mshta-exec:high"})
        load(con, "r2", ["T1218.005"], observables={"T1218.005": "mshta-exec:high"})
    bad = tmp_path / "bad.yaml"
    bad.write_text("telemetry: [Proces Creation]\n")
    result = runner.invoke(app, ["prioritize", "--profile", str(bad), "--db", str(db_file)])
    assert result.exit_code == 1 and "did you mean 'Process Creation'" in result.output
    profile = tmp_path / "mine.yaml"
    profile.write_text("telemetry: [Process Creation]\n")
    out = tmp_path / "priorities.csv"
    result = runner.invoke(app, ["prioritize", "--profile", str(profile), "--csv", str(out), "--db", str(db_file)])
    assert result.exit_code == 0, result.output
    assert f"Profile {profile}" in result.output and "1 data components collected" in result.output
    rows = {row["technique_id"]: row for row in csv.DictReader(out.open())}
    assert set(rows) == {"T1218", "T1059"}
    # the real lexicon rates mshta-exec high, both reports show it; Process Creation: 1 of T1218's 3 components
    assert rows["T1218"]["signal_reason"].startswith("family as sighted: T1218.005 1.00")
    assert float(rows["T1218"]["collection"]) == round(1 / 3, 4) and "Module Load" in rows["T1218"]["missing"]
    layer_path = tmp_path / "detect-first.json"
    result = runner.invoke(app, ["prioritize", "--layer", str(layer_path), "--db", str(db_file)])
    assert result.exit_code == 0 and f"Profile {profile}" in result.output  # the stored profile stays
    layer = json.loads(layer_path.read_text())  # valid layer format 4.5, readable by MITRE's library
    entries = _valid_layer(layer, catalog)
    assert {t: e["score"] for t, e in entries.items()} == {
        t: round(100 * float(row["priority"])) for t, row in rows.items()}
    assert entries["T1218"]["tactic"] == rows["T1218"]["tactic"] == "defense-evasion"
    parts = {item["name"]: item["value"] for item in entries["T1218"]["metadata"]}
    assert parts["signal"].startswith("1.00 (family as sighted") and "Module Load" in parts["collection"]
