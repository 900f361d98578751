"""The user's prioritization profile (DESIGN.md §6): what they collect, what they detect already, how
they rate a technique's signal, how much each part of the priority weighs.

A small YAML file, read and validated here against the ATT&CK catalog; the warehouse stores it
(``warehouse.priorities``) so that SQL users and ``breachminer prioritize`` see the same priorities::

    telemetry:                 # ATT&CK data components you collect
      - Process Creation
      - Command Execution
    detections:                # techniques you detect already: no longer picked (a parent: all of it)
      - T1003.001
    signal:                    # your signal-to-noise for a technique, 0-1 (overrides the lexicon's rating)
      T1218.011: 0.2
      T1059.001: {score: 0.8, note: script block logging with AMSI}
    weights:                   # exponent of each part in the product; 0 leaves a part out
      prevalence: 1
      signal: 1
      collection: 1

Every key is optional. Without ``telemetry`` the collection part is not scored (you have not said
what you collect); an empty list means you collect nothing ATT&CK names.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from breachminer.catalog import AttackCatalog

PARTS = ("prevalence", "signal", "collection")
KEYS = ("telemetry", "detections", "signal", "weights")


class ProfileError(ValueError):
    """A profile that cannot be used, with the reason and the file."""


@dataclass(frozen=True)
class SignalRating:
    """The user's own signal-to-noise for one technique."""

    technique_id: str
    score: float
    note: str | None = None


@dataclass(frozen=True)
class PriorityProfile:
    """A validated profile: data component names as ATT&CK spells them, active technique IDs."""

    source: str
    telemetry: tuple[str, ...] | None = None  # None: not declared
    detections: tuple[str, ...] = ()
    signal: tuple[SignalRating, ...] = ()
    weights: dict[str, float] = field(default_factory=lambda: dict.fromkeys(PARTS, 1.0))


def data_components(catalog: AttackCatalog) -> list[str]:
    """Every data component ATT&CK lists for an active technique, sorted."""
    return sorted({c for t in catalog.active.values() for c in t.data_components})


def load_profile(path: Path, catalog: AttackCatalog) -> PriorityProfile:
    """Read ``path`` and check every name and number in it; a ``ProfileError`` says what is wrong."""
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ProfileError(f"{path}: cannot read the profile ({exc.strerror or exc})") from exc
    except yaml.YAMLError as exc:
        raise ProfileError(f"{path}: not valid YAML ({exc})") from exc
    return parse_profile(raw if raw is not None else {}, catalog, str(path))


def parse_profile(raw: Any, catalog: AttackCatalog, source: str = "profile") -> PriorityProfile:
    """A profile from its parsed YAML (a mapping with the keys ``telemetry``, ``detections``, ``signal``,
    ``weights``)."""
    if not isinstance(raw, dict):
        raise ProfileError(f"{source}: expected a mapping with the keys {', '.join(KEYS)}")
    unknown = sorted(set(raw) - set(KEYS))
    if unknown:
        raise ProfileError(f"{source}: unknown key {unknown[0]!r}; the keys are {', '.join(KEYS)}")
    return PriorityProfile(
        source=source,
        telemetry=_telemetry(raw["telemetry"], catalog, source) if raw.get("telemetry") is not None else None,
        detections=_detections(raw.get("detections") or [], catalog, source),
        signal=_signal(raw.get("signal") or {}, catalog, source),
        weights=_weights(raw.get("weights") or {}, source),
    )


def _telemetry(items: Any, catalog: AttackCatalog, source: str) -> tuple[str, ...]:
    if not isinstance(items, list):
        raise ProfileError(f"{source}: telemetry must be a list of ATT&CK data components")
    known = {name.casefold(): name for name in data_components(catalog)}
    names: list[str] = []
    for item in items:
        name = known.get(" ".join(str(item).split()).casefold())
        if name is None:
            close = difflib.get_close_matches(str(item), list(known.values()), n=3, cutoff=0.5)
            hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
            raise ProfileError(f"{source}: {item!r} is not a data component ATT&CK lists{hint} "
                               "(`breachminer sql \"select distinct unnest(data_components) from attack_techniques\"` "
                               "lists them)")
        if name not in names:
            names.append(name)
    return tuple(names)


def _active(cited: Any, catalog: AttackCatalog, where: str) -> str:
    """The ID of an active technique, or a ``ProfileError`` saying why ``cited`` is not one."""
    resolution = catalog.resolve(str(cited))
    if resolution.status != "active":
        why = {"revoked": f"was revoked; use {resolution.technique_id}", "deprecated": "is deprecated"}
        raise ProfileError(f"{where} {cited}: {why.get(resolution.status, 'is not an ATT&CK technique')}")
    return resolution.technique_id


def _detections(items: Any, catalog: AttackCatalog, source: str) -> tuple[str, ...]:
    if not isinstance(items, list):
        raise ProfileError(f"{source}: detections must be a list of technique IDs")
    return tuple(sorted({_active(item, catalog, f"{source}: detections") for item in items}))


def _signal(items: Any, catalog: AttackCatalog, source: str) -> tuple[SignalRating, ...]:
    if not isinstance(items, dict):
        raise ProfileError(f"{source}: signal must map technique IDs to a score (0-1) or {{score:, note:}}")
    ratings: dict[str, SignalRating] = {}
    for cited, value in items.items():
        technique_id = _active(cited, catalog, f"{source}: signal")
        score, note = (value.get("score"), value.get("note")) if isinstance(value, dict) else (value, None)
        if isinstance(score, bool) or not isinstance(score, int | float) or not 0 <= score <= 1:
            raise ProfileError(f"{source}: signal {cited}: the score must be a number from 0 to 1, not {score!r}")
        ratings[technique_id] = SignalRating(technique_id, float(score), str(note) if note is not None else None)
    return tuple(ratings[t] for t in sorted(ratings))


def _weights(items: Any, source: str) -> dict[str, float]:
    if not isinstance(items, dict):
        raise ProfileError(f"{source}: weights must map {', '.join(PARTS)} to numbers")
    weights = dict.fromkeys(PARTS, 1.0)
    for part, value in items.items():
        if part not in PARTS:
            raise ProfileError(f"{source}: unknown weight {part!r}; the parts are {', '.join(PARTS)}")
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ProfileError(f"{source}: weight {part} must be a number ≥ 0, not {value!r}")
        weights[part] = float(value)
    return weights
