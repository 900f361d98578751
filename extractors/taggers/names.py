"""The ``name`` method: technique names and aliases matched with spaCy's PhraseMatcher.

Phrases are every active technique name, the names of revoked techniques (as aliases of their
replacements) and the aliases in ``extractors/data/names.yaml``, matched on lowercase tokens.
The same file lists names too generic to match (``ignore``), names that need a second signal
(``weak``), distinctive names that count alone (``strong``) and which technique a name shared by
several techniques means (``prefer``). A name ATT&CK gives to several techniques with no
preference is not matched, and nothing is matched in a malware's exclusion list
(``extractors.exclusion_lists``: a folder named `MSBuild` that ransomware leaves alone is no MSBuild).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml
from spacy.matcher import PhraseMatcher

from breachminer.catalog import AttackCatalog
from breachminer.records import Mention, Sentence
from extractors.exclusion_lists import is_exclusion_list
from extractors.sentences import nlp
from extractors.taggers.base import file_digest

NAMES_FILE = Path(__file__).resolve().parent.parent / "data" / "names.yaml"
CODE_REVISION = "name-3"  # name-3: nothing matched in exclusion lists (extractors.exclusion_lists)


def name_version(catalog: AttackCatalog, rules_path: Path | None = None) -> str:
    """The tagger's version: code revision, a digest of the name rules, and the ATT&CK release (its names)."""
    return f"{CODE_REVISION}.{file_digest(rules_path or NAMES_FILE)}/attack-{catalog.attack_version}"


@dataclass(frozen=True)
class NamePhrase:
    """A phrase the name tagger matches, the technique it means and its strength class."""

    phrase: str
    technique_id: str
    strength: str  # "strong" | "default" | "weak"
    origin: str  # "name" | "revoked-name" | "alias"


def build_phrases(catalog: AttackCatalog, rules: dict) -> list[NamePhrase]:
    """The phrase table: catalog names and aliases, with the rules file applied."""
    ignore = {p.lower() for p in rules.get("ignore", [])}
    weak = {p.lower() for p in rules.get("weak", [])}
    strong = {p.lower() for p in rules.get("strong", [])}
    prefer = {k.lower(): v for k, v in (rules.get("prefer") or {}).items()}

    candidates: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for technique in catalog.active.values():
        candidates[technique.name.lower()].add((technique.id, "name"))
    for info in catalog.revoked.values():
        resolved = catalog.resolve(info["replaced_by"]).technique_id
        if resolved:
            candidates[info["name"].lower()].add((resolved, "revoked-name"))
    for technique_id, aliases in (rules.get("aliases") or {}).items():
        resolved = catalog.resolve(str(technique_id)).technique_id
        if not resolved:
            raise ValueError(f"names.yaml: alias target {technique_id} is not an ATT&CK technique")
        for alias in aliases:
            candidates[str(alias).lower()].add((resolved, "alias"))

    phrases = []
    for phrase, targets in sorted(candidates.items()):
        if phrase in ignore:
            continue
        official = {t for t, origin in targets if origin == "name"}
        if phrase in prefer:
            chosen = {prefer[phrase]}
        elif len(official) == 1:
            chosen = official
        else:
            chosen = {t for t, _ in targets}
        if len(chosen) != 1:
            continue  # a name shared by several techniques, no preference: ambiguous
        technique_id = chosen.pop()
        origins = [o for t, o in targets if t == technique_id] or ["alias"]
        origin = min(origins, key=["name", "revoked-name", "alias"].index)
        strength = "strong" if phrase in strong else "weak" if phrase in weak else "default"
        phrases.append(NamePhrase(phrase, technique_id, strength, origin))
    return phrases


class NameTagger:
    """Technique names and aliases, on lowercase tokens."""

    method = "name"

    def __init__(self, catalog: AttackCatalog, rules_path: Path | None = None) -> None:
        self.version = name_version(catalog, rules_path)
        rules = yaml.safe_load((rules_path or NAMES_FILE).read_text(encoding="utf-8"))
        self.scores = {"strong": 0.85, "default": 0.7, "weak": 0.45, **(rules.get("scores") or {})}
        self.phrases = {p.phrase: p for p in build_phrases(catalog, rules)}
        self.matcher = PhraseMatcher(nlp().vocab, attr="LOWER")
        tokenizer = nlp().tokenizer
        for phrase in self.phrases.values():
            self.matcher.add(phrase.phrase, [tokenizer(phrase.phrase)])

    def tag(self, sentences: Sequence[Sentence]) -> list[Mention]:
        mentions: list[Mention] = []
        tokenizer = nlp().tokenizer
        for sentence, doc in zip(sentences, tokenizer.pipe(s.text for s in sentences), strict=True):
            if is_exclusion_list(sentence.text):
                continue
            spans = self.matcher(doc, as_spans=True)
            # keep the longest match where matches overlap ("scheduled task" inside "scheduled task/job")
            spans = sorted(spans, key=lambda s: (-(s.end - s.start), s.start))
            taken: set[int] = set()
            for span in spans:
                if taken.intersection(range(span.start, span.end)):
                    continue
                taken.update(range(span.start, span.end))
                phrase = self.phrases[nlp().vocab.strings[span.label]]
                mentions.append(
                    Mention(
                        sentence_index=sentence.index,
                        technique_id=phrase.technique_id,
                        method=self.method,
                        score=self.scores[phrase.strength],
                        cited=span.text,
                        start=span.start_char,
                        end=span.end_char,
                        detail=f"{phrase.origin}:{phrase.strength}",
                        tagger_version=self.version,
                    )
                )
        return sorted(mentions, key=lambda m: (m.sentence_index, m.start))
