"""Mentions → report-level sightings: which techniques a report supports (DESIGN.md §4).

Each method's evidence for a technique is its best score per sentence; the two best sentences of
each method are combined with a noisy-OR across all methods:
``score = 1 - Π(1 - s)``. A technique is sighted when the score reaches the threshold (0.8 by
default, ``BREACHMINER_SIGHTING_THRESHOLD``) or when the report cites its ID explicitly.

With the default scores (id 0.97, strong name 0.85, default name 0.7, weak name 0.45, lexicon
high 0.9 / medium 0.6 / low 0.3) this means: an explicit ID, a high-fidelity observable or a
distinctive name counts alone; an ordinary name needs a second sentence or a second method; a
weak name or a low-fidelity observable only counts together with other evidence.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from breachminer.records import Mention, Sighting

RULE_VERSION = "noisy-or-top2-v1"
PER_METHOD_SENTENCES = 2


def decide_sightings(mentions: Iterable[Mention], threshold: float = 0.8) -> list[Sighting]:
    """Sightings for one report, strongest first. Unknown IDs (no technique) never count."""
    best: dict[str, dict[str, dict[int, float]]] = defaultdict(lambda: defaultdict(dict))
    counts: dict[str, int] = defaultdict(int)
    for mention in mentions:
        if mention.technique_id is None:
            continue
        per_sentence = best[mention.technique_id][mention.method]
        per_sentence[mention.sentence_index] = max(per_sentence.get(mention.sentence_index, 0.0), mention.score)
        counts[mention.technique_id] += 1

    sightings = []
    for technique_id, by_method in best.items():
        miss = 1.0
        for scores in by_method.values():
            for score in sorted(scores.values(), reverse=True)[:PER_METHOD_SENTENCES]:
                miss *= 1.0 - score
        score = 1.0 - miss
        explicit = "id" in by_method
        if score >= threshold or explicit:
            sentences = set().union(*(scores.keys() for scores in by_method.values()))
            sightings.append(
                Sighting(
                    technique_id=technique_id,
                    score=round(score, 4),
                    methods=tuple(sorted(by_method)),
                    n_mentions=counts[technique_id],
                    n_sentences=len(sentences),
                    rule=RULE_VERSION,
                )
            )
    return sorted(sightings, key=lambda s: (-s.score, s.technique_id))
