"""The committed ATT&CK catalog: counts, normalisation, rebuilding from the STIX bundle."""

from __future__ import annotations

import json

from conftest import STIX, needs_shared

from breachminer.catalog import PACKAGED_CATALOG, AttackCatalog, build_catalog


def test_packaged_catalog_has_attack_18_1_counts(catalog: AttackCatalog) -> None:
    active = catalog.active
    subs = [t for t in active.values() if t.parent]
    assert catalog.attack_version == "18.1"
    assert len(active) == 691
    assert len(subs) == 475 and len(active) - len(subs) == 216
    assert len(catalog.tactics) == 14
    assert [t.shortname for t in catalog.tactics][:3] == ["reconnaissance", "resource-development", "initial-access"]
    assert catalog.tactics[-1].shortname == "impact"


def test_packaged_catalog_carries_license_notice_and_no_descriptions() -> None:
    raw = json.loads(PACKAGED_CATALOG.read_text(encoding="utf-8"))
    assert "The MITRE Corporation" in raw["notice"]
    assert (PACKAGED_CATALOG.parent / "LICENSE-ATTACK.txt").exists()
    assert all("description" not in t for t in raw["techniques"])


def test_v18_detection_data_components(catalog: AttackCatalog) -> None:
    scheduled_task = catalog.techniques["T1053.005"]
    assert {"File Creation", "Process Creation", "Scheduled Job Creation"} <= set(scheduled_task.data_components)
    assert "WinEventLog:Security" in scheduled_task.log_sources
    assert sum(1 for t in catalog.active.values() if t.data_components) == 650


def test_tactics_in_kill_chain_order(catalog: AttackCatalog) -> None:
    assert catalog.techniques["T1053.005"].tactics == ("execution", "persistence", "privilege-escalation")


def test_resolve_active_revoked_unknown(catalog: AttackCatalog) -> None:
    assert catalog.resolve("T1059.001").status == "active"
    powershell = catalog.resolve("t1086")
    assert (powershell.technique_id, powershell.status) == ("T1059.001", "revoked")
    assert catalog.resolve("T1574.002").technique_id == "T1574.001"
    unknown = catalog.resolve("T1999")
    assert unknown.technique_id is None and unknown.status == "unknown"


def test_catalog_round_trips_through_json(tmp_path, catalog: AttackCatalog) -> None:
    path = catalog.save(tmp_path / "catalog.json.gz")
    again = AttackCatalog.load(path)
    assert again.techniques == catalog.techniques and again.revoked == catalog.revoked


@needs_shared
def test_rebuilding_from_the_stix_bundle_matches_the_committed_catalog(catalog: AttackCatalog) -> None:
    built = build_catalog(STIX)
    assert built.attack_version == "18.1"
    assert len(built.active) == 691
    assert sum(1 for t in built.active.values() if t.parent) == 475
    assert len(built.tactics) == 14
    assert built.techniques == catalog.techniques
    assert built.revoked == catalog.revoked


@needs_shared
def test_catalog_builds_from_a_url(tmp_path) -> None:
    """`attack update --stix URL`: served here by a real HTTP server on loopback."""
    import functools
    import http.server
    import threading

    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(STIX.parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        built = build_catalog(f"http://127.0.0.1:{server.server_port}/{STIX.name}")
    finally:
        server.shutdown()
    assert built.attack_version == "18.1" and len(built.active) == 691
    assert built.source["bundle"] == STIX.name


def test_a_file_that_is_not_a_stix_bundle_is_refused(tmp_path) -> None:
    import pytest

    bogus = tmp_path / "enterprise-attack-1.0.json"
    bogus.write_text('{"type": "not-a-bundle"}')
    with pytest.raises(ValueError, match="not a STIX bundle"):
        build_catalog(bogus)
