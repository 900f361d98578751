"""The ``lexicon`` method: observables (tools, LOLBins, commands, registry paths, APIs) → techniques.

Entries live in ``extractors/data/lexicon.yaml``: a regex searched case-insensitively in one
sentence, the technique it implies, a fidelity rating (how rarely a match is benign) and one
positive and one negative example sentence that the test suite checks.

Speed: most of the ~330 patterns name a tool or a command that a given report never mentions. Each
pattern's *required literals* (strings one of which every match contains, read from the parsed
regex) are looked up in the case-folded document once; only the patterns whose literals occur are
searched, and only in the sentences that contain one. The result is the same (a test compares); the
lexicon tags the 27 real reports in 1.5 s instead of 9.1 s (`bench/classifier_speed.py`).

A malware's exclusion list (``extractors.exclusion_lists``: "Ignored files … autorun.inf boot.ini …")
names what it leaves alone: no entry is searched there, and the list is one high-fidelity mention of
Selective Exclusion (T1679, ``selective-exclusion-list:high``) instead.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from re import _constants as sre_constants  # the regex parser's own tree: no second grammar to keep in step
from re import _parser as sre_parser

import yaml

from breachminer.catalog import AttackCatalog
from breachminer.records import Mention, Sentence
from extractors.exclusion_lists import KEY as EXCLUSION_KEY
from extractors.exclusion_lists import SELECTIVE_EXCLUSION, is_exclusion_list, listed_names
from extractors.taggers.base import file_digest

LEXICON_FILE = Path(__file__).resolve().parent.parent / "data" / "lexicon.yaml"
CODE_REVISION = "lexicon-3"  # lexicon-3: exclusion lists (extractors.exclusion_lists) → T1679 only


def lexicon_version(catalog: AttackCatalog, path: Path | None = None) -> str:
    """The tagger's version: code revision, a digest of the lexicon, and the ATT&CK release it resolves to."""
    return f"{CODE_REVISION}.{file_digest(path or LEXICON_FILE)}/attack-{catalog.attack_version}"
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
    literals: tuple[str, ...] | None = None  # one of them occurs (case-folded) in every match; None: unknown


def fold(text: str) -> str:
    """Case-fold as loosely as ``re.IGNORECASE`` matches (dotless ı and dotted İ match i there too)."""
    return text.casefold().replace("ı", "i").replace("i\u0307", "i")


def required_literals(pattern: re.Pattern[str]) -> tuple[str, ...] | None:
    """Strings one of which every match of ``pattern`` contains (case-folded), or None when the regex
    guarantees none (a match may be made of character classes alone)."""
    found = _required(sre_parser.parse(pattern.pattern, pattern.flags))
    return tuple(sorted(found)) if found else None


def _required(sequence: sre_parser.SubPattern | list) -> set[str] | None:
    """For a sequence of regex nodes, all of which a match goes through: the most selective of the
    literal runs and the requirements of its mandatory parts (groups, alternations, repeats ≥ 1)."""
    candidates: list[set[str]] = []
    run: list[str] = []

    def end_run() -> None:
        if run:
            candidates.append({fold("".join(run))})
            run.clear()

    for op, argument in sequence:
        if op is sre_constants.LITERAL:
            run.append(chr(argument))
            continue
        end_run()
        required: set[str] | None = None
        if op is sre_constants.SUBPATTERN:
            required = _required(argument[-1])
        elif op is sre_constants.ATOMIC_GROUP:
            required = _required(argument)
        elif op is sre_constants.BRANCH:  # every alternative must contribute one
            alternatives = [_required(branch) for branch in argument[1]]
            required = None if any(a is None for a in alternatives) else set().union(*alternatives)
        elif op in (sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT, sre_constants.POSSESSIVE_REPEAT):
            required = _required(argument[2]) if argument[0] >= 1 else None
        if required and all(required):
            candidates.append(required)
    end_run()
    if not candidates:
        return None
    return max(candidates, key=lambda c: (min(len(s) for s in c), -len(c)))


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
        pattern = re.compile(item["pattern"], re.IGNORECASE)
        entries.append(
            LexiconEntry(
                key=key,
                pattern=pattern,
                technique_id=resolution.technique_id,
                fidelity=item["fidelity"],
                note=item.get("note", ""),
                positive=item["positive"],
                negative=item["negative"],
                literals=required_literals(pattern),
            )
        )
    return entries


def lexicon_ratings(catalog: AttackCatalog, path: Path | None = None) -> list[tuple[str, str, str]]:
    """``(technique_id, observable key, fidelity)`` of every entry: what prioritization rates a technique by."""
    return [(entry.technique_id, entry.key, entry.fidelity) for entry in load_lexicon(catalog, path)]


class LexiconTagger:
    """Observables from the reviewed lexicon."""

    method = "lexicon"

    def __init__(self, catalog: AttackCatalog, path: Path | None = None) -> None:
        self.version = lexicon_version(catalog, path)
        self.entries = load_lexicon(catalog, path)
        self.exclusion_technique = SELECTIVE_EXCLUSION if SELECTIVE_EXCLUSION in catalog.techniques else None

    def tag(self, sentences: Sequence[Sentence]) -> list[Mention]:
        folded = [fold(sentence.text) for sentence in sentences]
        document = "\n".join(folded)
        candidates = [entry for entry in self.entries
                      if entry.literals is None or any(literal in document for literal in entry.literals)]
        mentions: list[Mention] = []
        for sentence, text in zip(sentences, folded, strict=True):
            if is_exclusion_list(sentence.text):
                if self.exclusion_technique:
                    first = listed_names(sentence.text)[0]
                    mentions.append(Mention(
                        sentence_index=sentence.index, technique_id=self.exclusion_technique, method=self.method,
                        score=FIDELITY_SCORES["high"], cited=first.group(0), start=first.start(), end=first.end(),
                        detail=f"{EXCLUSION_KEY}:high", tagger_version=self.version))
                continue
            for entry in candidates:
                if entry.literals is not None and not any(literal in text for literal in entry.literals):
                    continue
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
