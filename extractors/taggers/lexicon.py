"""The ``lexicon`` method: observables (tools, LOLBins, commands, registry paths, APIs) → techniques.

Entries live in ``extractors/data/lexicon.yaml``: a regex searched case-insensitively in one
sentence, the technique it implies, a fidelity rating (how rarely a match is benign) and one
positive and one negative example sentence that the test suite checks.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from breachminer.catalog import AttackCatalog
from breachminer.records import Mention, Sentence

LEXICON_FILE = Path(__file__).resolve().parent.parent / "data" / "lexicon.yaml"
FIDELITY_SCORES = {"high": 0.95, "medium": 0.7, "low": 0.4}  # calibrated, see extractors/sightings.py


@dataclass(frozen=True)
class LexiconEntry:
    """One reviewed observable."""

    key: str
    pattern: re.Pattern[str]
    technique_id: str
    fidelity: str
    note: str
    positive: str
    negative: str


def load_lexicon(catalog: AttackCatalog, path: Path | None = None) -> list[LexiconEntry]:
    """Read and validate the lexicon: unique keys, known fidelity, active technique IDs."""
    raw = yaml.safe_load((path or LEXICON_FILE).read_text(encoding="utf-8"))
    entries: list[LexiconEntry] = []
    seen: set[str] = set()
    for item in raw["entries"]:
        key = item["key"]
        if key in seen:
            raise ValueError(f"lexicon: duplicate key {key!r}")
        seen.add(key)
        if item["fidelity"] not in FIDELITY_SCORES:
            raise ValueError(f"lexicon {key}: fidelity must be one of {sorted(FIDELITY_SCORES)}")
        resolution = catalog.resolve(item["technique"])
        if resolution.technique_id is None:
            raise ValueError(f"lexicon {key}: {item['technique']} is not an ATT&CK technique")
        entries.append(
            LexiconEntry(
                key=key,
                pattern=re.compile(item["pattern"], re.IGNORECASE),
                technique_id=resolution.technique_id,
                fidelity=item["fidelity"],
                note=item.get("note", ""),
                positive=item["positive"],
                negative=item["negative"],
            )
        )
    return entries


class LexiconTagger:
    """Observables from the reviewed lexicon."""

    method = "lexicon"
    version = "lexicon-1"

    def __init__(self, catalog: AttackCatalog, path: Path | None = None) -> None:
        self.entries = load_lexicon(catalog, path)

    def tag(self, sentences: Sequence[Sentence]) -> list[Mention]:
        mentions: list[Mention] = []
        for sentence in sentences:
            for entry in self.entries:
                match = entry.pattern.search(sentence.text)
                if match:
                    mentions.append(
                        Mention(
                            sentence_index=sentence.index,
                            technique_id=entry.technique_id,
                            method=self.method,
                            score=FIDELITY_SCORES[entry.fidelity],
                            cited=match.group(0),
                            start=match.start(),
                            end=match.end(),
                            detail=f"{entry.key}:{entry.fidelity}",
                            tagger_version=self.version,
                        )
                    )
        return mentions
