"""Record types that cross layers: what extractors produce and the warehouse loads.

Plain frozen dataclasses, no behaviour beyond small conveniences, so that extractors, models
and the warehouse can share them without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date


@dataclass(frozen=True)
class Sentence:
    """One sentence of a report's normalised text, with its character offsets in that text."""

    index: int
    start: int
    end: int
    text: str
    advice: bool = False  # defender advice, not observation (extractors.advice)


@dataclass(frozen=True)
class Mention:
    """One piece of evidence that a sentence points at a technique.

    ``technique_id`` is the current ATT&CK ID after normalisation (revoked IDs remapped) or
    ``None`` for an unknown ID, which is kept as evidence but never counted. ``cited`` is the
    text as the report wrote it; ``detail`` says which rule matched (lexicon key, name class).
    """

    sentence_index: int
    technique_id: str | None
    method: str  # "id" | "name" | "lexicon" | "classifier"
    score: float
    cited: str
    start: int  # offset of the match within the sentence
    end: int
    detail: str = ""
    tagger_version: str = ""


@dataclass(frozen=True)
class Sighting:
    """A (report, technique) pair the report supports, under the sighting rule of DESIGN.md §4."""

    technique_id: str
    score: float
    methods: tuple[str, ...]
    n_mentions: int
    n_sentences: int
    rule: str


@dataclass(frozen=True)
class DocumentText:
    """Text and metadata extracted from one document's bytes."""

    kind: str  # "pdf" | "html" | "text"
    text: str
    title: str | None = None
    published: date | None = None
    publisher: str | None = None
    n_pages: int | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)
