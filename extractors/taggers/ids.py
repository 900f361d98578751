"""The ``id`` method: explicit ATT&CK technique IDs, validated and normalised through the catalog.

Finds ``T1059``, ``T1059.001`` and the forms PDF extraction breaks them into (``T1059 .001``,
``T1059. 001``, ``T 1059.001``, ``T1059/001``), the file-name forms ``T1059-001`` and ``T1059_001``,
and Sigma rule tags (``attack.t1059.001``, lower case only there). Revoked IDs are remapped (T1086 → T1059.001);
unknown IDs become mentions with ``technique_id=None``: kept as evidence, never counted.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from breachminer.catalog import AttackCatalog
from breachminer.records import Mention, Sentence

ID_PATTERN = re.compile(
    r"(?:(?<![A-Za-z0-9])T ?|(?<=attack\.)t)(1\d{3})(?:\s?[./]\s?(\d{3})(?!\d)|[-_](\d{3})(?![\d-]))?(?![0-9])")
SCORES = {"active": 0.97, "deprecated": 0.9, "revoked": 0.95, "unknown": 0.0}
CODE_REVISION = "id-2"  # id-2: T1059-001, T1059_001 and Sigma tags


def id_version(catalog: AttackCatalog) -> str:
    """The tagger's version: its code revision and the ATT&CK release that resolves the IDs."""
    return f"{CODE_REVISION}/attack-{catalog.attack_version}"


class IdTagger:
    """Explicit technique IDs."""

    method = "id"

    def __init__(self, catalog: AttackCatalog) -> None:
        self.catalog = catalog
        self.version = id_version(catalog)

    def tag(self, sentences: Sequence[Sentence]) -> list[Mention]:
        mentions: list[Mention] = []
        for sentence in sentences:
            if "1" not in sentence.text:
                continue
            for match in ID_PATTERN.finditer(sentence.text):
                sub_technique = match.group(2) or match.group(3)
                cited = f"T{match.group(1)}" + (f".{sub_technique}" if sub_technique else "")
                resolution = self.catalog.resolve(cited)
                mentions.append(
                    Mention(
                        sentence_index=sentence.index,
                        technique_id=resolution.technique_id,
                        method=self.method,
                        score=SCORES[resolution.status],
                        cited=match.group(0),
                        start=match.start(),
                        end=match.end(),
                        detail=resolution.status if resolution.status != "revoked" else f"revoked {cited}",
                        tagger_version=self.version,
                    )
                )
        return mentions
