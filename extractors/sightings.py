"""Mentions → report-level sightings: which techniques a report supports (DESIGN.md §4).

Each method's evidence for a technique is its best score per sentence; the two best sentences of
each method are combined with a noisy-OR across all methods: ``score = 1 - Π(1 - s)``. A technique
is sighted when the score reaches the threshold (``BREACHMINER_SIGHTING_THRESHOLD``, default 0.6)
or when the report cites its ID explicitly. Each sighting records the rule and the threshold that
decided it (``sighting_rule``: ``noisy-or-top2-v4 T=0.7``), and so does its report (``SIGHTINGS_KEY`` in
its tagger versions, for reports with no sighting too), so that a changed threshold re-decides the
reports the old one decided.

Defender advice is not observation: given the report's sentences, name, lexicon and classifier
mentions in sentences that ``extractors.advice`` calls advice ("Audit user accounts with
administrative privileges", "Organizations should restrict RDP") do not count; an explicit ID does.
The mentions themselves are kept, so the evidence stays traceable.

With the mention scores (id 0.97; names strong 0.85 / default 0.7 / weak 0.45; lexicon fidelity
high 0.95 / medium 0.7 / low 0.4) this means: an explicit ID, an ordinary technique name or a
medium/high-fidelity observable counts alone; a weak name ("phishing", "proxy") or a low-fidelity
observable ("powershell.exe", "net user") needs a second sentence or a second method.

Calibrated on the 121 TRAM annotated reports that are not held out (``models/heldout_reports.txt``),
report level, parent techniques, micro-averaged over the techniques TRAM annotates: the previous rule
(threshold 0.8, lexicon .9/.6/.3) gave P .655 R .487 F1 .559; this one P .651 R .563 F1 .604
(5×5-fold cross-validated choice: F1 .602). Explicit IDs alone agree with TRAM's labels only .635 of
the time (ATT&CK tables the annotators skipped), which caps measurable precision.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence

from breachminer.records import Mention, Sentence, Sighting
from breachminer.settings import DEFAULT_SIGHTING_THRESHOLD
from extractors.advice import advice_sentences

RULE_VERSION = "noisy-or-top2-v4"  # v3 (b235178) and v4: advice sentences count only for explicit IDs
PER_METHOD_SENTENCES = 2
SIGHTINGS_KEY = "sightings"  # a report's tagger-versions entry naming the rule that decided its sightings


def sighting_rule(threshold: float) -> str:
    """The rule and threshold that decide sightings, as stored with them: ``noisy-or-top2-v4 T=0.7``."""
    return f"{RULE_VERSION} T={threshold:g}"


def decide_sightings(mentions: Iterable[Mention], threshold: float = DEFAULT_SIGHTING_THRESHOLD,
                     sentences: Sequence[Sentence] | None = None) -> list[Sighting]:
    """Sightings for one report, strongest first. Unknown IDs (no technique) never count.

    ``sentences`` (the report's) lets the rule set aside evidence from advice sentences; without
    them every mention counts.
    """
    advice = advice_sentences(sentences) if sentences is not None else frozenset()
    best: dict[str, dict[str, dict[int, float]]] = defaultdict(lambda: defaultdict(dict))
    counts: dict[str, int] = defaultdict(int)
    for mention in mentions:
        if mention.technique_id is None:
            continue
        if mention.sentence_index in advice and mention.method != "id":
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
                    rule=sighting_rule(threshold),
                )
            )
    return sorted(sightings, key=lambda s: (-s.score, s.technique_id))
