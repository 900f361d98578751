"""The ATT&CK Enterprise catalog: building it from a STIX bundle and normalising technique IDs.

Owns the compact, committed catalog (``breachminer/data/attack-catalog.json``): technique IDs,
names, parents, tactics in kill-chain order, platforms, detection data components and log source
names, deprecated flags, the revoked → replacement map and the ATT&CK version. No descriptions.

Building uses MITRE's ``mitreattack-python``; ATT&CK v18 detection data is walked along
technique ← detects ← detection strategy → analytics → log source references → data component.

ATT&CK® is a registered trademark of The MITRE Corporation. The catalog is derived from ATT&CK:
"© 2025 The MITRE Corporation. This work is reproduced and distributed with the permission of
The MITRE Corporation." See ``breachminer/data/LICENSE-ATTACK.txt``.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

PACKAGED_CATALOG = Path(__file__).parent / "data" / "attack-catalog.json"
ATTACK_NOTICE = (
    "ATT&CK(R) Enterprise data (c) 2025 The MITRE Corporation. This work is reproduced and "
    "distributed with the permission of The MITRE Corporation. See LICENSE-ATTACK.txt."
)
TECHNIQUE_ID = re.compile(r"^T\d{4}(?:\.\d{3})?$")


@dataclass(frozen=True)
class Technique:
    """One ATT&CK technique or sub-technique as the catalog keeps it."""

    id: str
    name: str
    parent: str | None
    tactics: tuple[str, ...]
    platforms: tuple[str, ...] = ()
    data_components: tuple[str, ...] = ()
    log_sources: tuple[str, ...] = ()
    deprecated: bool = False

    @property
    def parent_id(self) -> str:
        """The parent technique's ID (the technique's own ID when it is not a sub-technique)."""
        return self.parent or self.id


@dataclass(frozen=True)
class Tactic:
    """An ATT&CK tactic and its position in the Enterprise kill chain (1-based)."""

    id: str
    shortname: str
    name: str
    order: int


@dataclass(frozen=True)
class Resolution:
    """What an ID cited in a report resolves to: the current technique, or nothing."""

    cited_id: str
    technique_id: str | None
    status: str  # "active" | "deprecated" | "revoked" | "unknown"


@dataclass
class AttackCatalog:
    """The compact ATT&CK catalog with lookups used by taggers and the warehouse."""

    attack_version: str
    techniques: dict[str, Technique]
    tactics: list[Tactic]
    revoked: dict[str, dict[str, str]]
    source: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path | str | None = None) -> AttackCatalog:
        """Load a catalog JSON (``.json`` or ``.json.gz``); the packaged one by default."""
        path = Path(path) if path else PACKAGED_CATALOG
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", encoding="utf-8") as handle:
            raw = json.load(handle)
        return cls.from_dict(raw)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> AttackCatalog:
        techniques = {
            t["id"]: Technique(
                id=t["id"],
                name=t["name"],
                parent=t.get("parent"),
                tactics=tuple(t.get("tactics", ())),
                platforms=tuple(t.get("platforms", ())),
                data_components=tuple(t.get("data_components", ())),
                log_sources=tuple(t.get("log_sources", ())),
                deprecated=bool(t.get("deprecated", False)),
            )
            for t in raw["techniques"]
        }
        tactics = [Tactic(**t) for t in raw["tactics"]]
        return cls(
            attack_version=str(raw["attack_version"]),
            techniques=techniques,
            tactics=sorted(tactics, key=lambda t: t.order),
            revoked=dict(raw.get("revoked", {})),
            source=dict(raw.get("source", {})),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "notice": ATTACK_NOTICE,
            "attack_version": self.attack_version,
            "source": self.source,
            "tactics": [t.__dict__ for t in self.tactics],
            "techniques": [
                {
                    "id": t.id,
                    "name": t.name,
                    "parent": t.parent,
                    "tactics": list(t.tactics),
                    "platforms": list(t.platforms),
                    "data_components": list(t.data_components),
                    "log_sources": list(t.log_sources),
                    "deprecated": t.deprecated,
                }
                for t in sorted(self.techniques.values(), key=lambda t: t.id)
            ],
            "revoked": dict(sorted(self.revoked.items())),
        }

    def save(self, path: Path | str) -> Path:
        """Write the catalog as JSON (gzip when the name ends in ``.gz``)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(self.to_dict(), indent=1, ensure_ascii=False) + "\n"
        if path.suffix == ".gz":
            with gzip.open(path, "wt", encoding="utf-8") as handle:
                handle.write(text)
        else:
            path.write_text(text, encoding="utf-8")
        return path

    @cached_property
    def active(self) -> dict[str, Technique]:
        """Techniques that are neither revoked nor deprecated."""
        return {k: t for k, t in self.techniques.items() if not t.deprecated}

    @cached_property
    def tactic_by_shortname(self) -> dict[str, Tactic]:
        return {t.shortname: t for t in self.tactics}

    def resolve(self, cited_id: str) -> Resolution:
        """Normalise an ID cited in a report: revoked IDs follow ``revoked-by`` to the current one."""
        cited = cited_id.strip().upper()
        if cited in self.techniques:
            status = "deprecated" if self.techniques[cited].deprecated else "active"
            return Resolution(cited, cited, status)
        seen: set[str] = set()
        current = cited
        while current in self.revoked and current not in seen:
            seen.add(current)
            current = self.revoked[current]["replaced_by"]
            if current in self.techniques:
                return Resolution(cited, current, "revoked")
        return Resolution(cited, None, "unknown")

    def parent_of(self, technique_id: str) -> str:
        return self.techniques[technique_id].parent_id

    @staticmethod
    def parent_of_any(technique_id: str) -> str:
        """The parent ID of any technique ID, known to the catalog or not (T1059.001 → T1059)."""
        return technique_id.split(".")[0]


# --------------------------------------------------------------------------- building from STIX


def _read_bundle(stix: str | Path) -> tuple[list[dict[str, Any]], str, str]:
    """Read a STIX bundle from a path (.json / .json.gz) or an http(s) URL: (objects, sha256, name)."""
    stix = str(stix)
    if stix.startswith(("http://", "https://")):
        request = urllib.request.Request(stix, headers={"User-Agent": "breachminer (ATT&CK catalog)"})
        with urllib.request.urlopen(request, timeout=120) as response:
            data = response.read()
        name = stix.rsplit("/", 1)[-1]
    else:
        data = Path(stix).read_bytes()
        name = Path(stix).name
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    digest = hashlib.sha256(data).hexdigest()
    bundle = json.load(io.BytesIO(data))
    if bundle.get("type") != "bundle" or "objects" not in bundle:
        raise ValueError(f"{name} is not a STIX bundle (no 'objects' list)")
    return bundle["objects"], digest, name


def _attack_id(obj: Any) -> str | None:
    for ref in obj.get("external_references", []) or []:
        if ref.get("source_name") == "mitre-attack" and ref.get("external_id"):
            return ref["external_id"]
    return None


def _guess_version(objects: list[dict[str, Any]], name: str) -> str:
    for obj in objects:
        if obj.get("type") == "x-mitre-collection" and obj.get("x_mitre_version"):
            return str(obj["x_mitre_version"])
    match = re.search(r"attack-(\d+(?:\.\d+)?)", name)
    if match:
        return match.group(1)
    raise ValueError(
        f"cannot tell the ATT&CK version of {name}: no x-mitre-collection object and no version "
        "in the file name; pass --attack-version"
    )


def _detection_index(objects: list[dict[str, Any]]) -> dict[str, tuple[set[str], set[str]]]:
    """Technique STIX id → (data component names, log source names), the ATT&CK v18 way.

    technique ← ``detects`` ← x-mitre-detection-strategy → x_mitre_analytic_refs → x-mitre-analytic
    → x_mitre_log_source_references[] (log source name + data component ref). mitreattack-python's
    ``get_datacomponents_detecting_technique`` returns nothing for v18, hence this walk.
    """
    by_id = {o["id"]: o for o in objects if "id" in o}
    index: dict[str, tuple[set[str], set[str]]] = {}
    for rel in objects:
        if rel.get("type") != "relationship" or rel.get("relationship_type") != "detects":
            continue
        strategy = by_id.get(rel["source_ref"], {})
        if strategy.get("type") != "x-mitre-detection-strategy" or strategy.get("revoked"):
            continue
        components, log_sources = index.setdefault(rel["target_ref"], (set(), set()))
        for analytic_ref in strategy.get("x_mitre_analytic_refs", []) or []:
            analytic = by_id.get(analytic_ref, {})
            for ref in analytic.get("x_mitre_log_source_references", []) or []:
                if ref.get("name"):
                    log_sources.add(ref["name"])
                component = by_id.get(ref.get("x_mitre_data_component_ref", ""), {})
                if component.get("name"):
                    components.add(component["name"])
    return index


def build_catalog(stix: str | Path, attack_version: str | None = None) -> AttackCatalog:
    """Build the compact catalog from an ATT&CK Enterprise STIX bundle with mitreattack-python."""
    from mitreattack.stix20 import MitreAttackData
    from stix2 import MemoryStore

    objects, digest, name = _read_bundle(stix)
    version = attack_version or _guess_version(objects, name)
    data = MitreAttackData(src=MemoryStore(stix_data=objects, allow_custom=True))

    matrices = data.get_matrices(remove_revoked_deprecated=True)
    if not matrices:
        raise ValueError(f"{name} holds no ATT&CK matrix ({len(objects)} STIX objects): is it an ATT&CK "
                         "Enterprise bundle (enterprise-attack.json)?")
    matrix = matrices[0]
    tactic_objs = {t["id"]: t for t in data.get_tactics(remove_revoked_deprecated=True)}
    tactics = [
        Tactic(
            id=_attack_id(tactic_objs[ref]),
            shortname=tactic_objs[ref]["x_mitre_shortname"],
            name=tactic_objs[ref]["name"],
            order=i + 1,
        )
        for i, ref in enumerate(matrix["tactic_refs"])
        if ref in tactic_objs
    ]
    tactic_order = {t.shortname: t.order for t in tactics}

    detection = _detection_index(objects)
    techniques: dict[str, Technique] = {}
    for obj in data.get_techniques(remove_revoked_deprecated=False):
        if obj.get("revoked"):
            continue
        tid = _attack_id(obj)
        if not tid or not TECHNIQUE_ID.match(tid):
            continue
        components, log_sources = detection.get(obj["id"], (set(), set()))
        phases = [
            p["phase_name"]
            for p in obj.get("kill_chain_phases", []) or []
            if p["kill_chain_name"] == "mitre-attack"
        ]
        techniques[tid] = Technique(
            id=tid,
            name=obj["name"],
            parent=tid.split(".")[0] if "." in tid else None,
            tactics=tuple(sorted(set(phases), key=lambda s: tactic_order.get(s, 99))),
            platforms=tuple(sorted(obj.get("x_mitre_platforms", []) or [])),
            data_components=tuple(sorted(components)),
            log_sources=tuple(sorted(log_sources)),
            deprecated=bool(obj.get("x_mitre_deprecated", False)),
        )

    by_stix_id = {o["id"]: o for o in objects if o.get("type") == "attack-pattern"}
    revoked: dict[str, dict[str, str]] = {}
    for rel in objects:
        if rel.get("type") != "relationship" or rel.get("relationship_type") != "revoked-by":
            continue
        old, new = by_stix_id.get(rel["source_ref"]), by_stix_id.get(rel["target_ref"])
        if not old or not new:
            continue
        old_id, new_id = _attack_id(old), _attack_id(new)
        if old_id and new_id and old_id != new_id and old_id not in techniques:
            revoked[old_id] = {"name": old["name"], "replaced_by": new_id}

    return AttackCatalog(
        attack_version=version,
        techniques=techniques,
        tactics=tactics,
        revoked=revoked,
        source={
            "bundle": name,
            "sha256": digest,
            "built_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
    )
