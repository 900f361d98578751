"""One document end to end, without a database: bytes → text → sentences → mentions → sightings.

``DocumentAnalyzer`` holds the taggers (built once per process) and is what both ``breachminer
tag`` and the ingest flow's tasks call, so the two always agree on what a report supports.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from breachminer.catalog import AttackCatalog
from breachminer.records import DocumentText, Mention, Sentence, Sighting
from breachminer.settings import DEFAULT_SIGHTING_THRESHOLD, OcrOptions
from extractors import documents, fingerprint
from extractors.documents import ExtractionError
from extractors.sentences import split_sentences
from extractors.sightings import SIGHTINGS_KEY, decide_sightings, sighting_rule
from extractors.taggers import IdTagger, LexiconTagger, NameTagger, Tagger

TEXT_KEY = "text"  # a report's tagger-versions entry naming the extraction its text came from


@dataclass(frozen=True)
class DocumentAnalysis:
    """Everything a document yields before it reaches the warehouse."""

    content_sha256: str
    n_bytes: int
    document: DocumentText
    text_sha256: str
    minhash: list[int]
    sentences: list[Sentence]
    mentions: list[Mention]
    sightings: list[Sighting]
    # {method: version} of the taggers, SIGHTINGS_KEY: the sighting rule, TEXT_KEY: the text extraction
    tagger_versions: dict[str, str]


class DocumentAnalyzer:
    """Extracts and tags documents with a fixed set of taggers."""

    def __init__(self, catalog: AttackCatalog, taggers: list[Tagger] | None = None,
                 sighting_threshold: float = DEFAULT_SIGHTING_THRESHOLD, max_pages: int = 500,
                 ocr: OcrOptions | None = None) -> None:
        self.catalog = catalog
        self.taggers: list[Tagger] = taggers or [IdTagger(catalog), NameTagger(catalog), LexiconTagger(catalog)]
        self.sighting_threshold = sighting_threshold
        self.max_pages = max_pages
        self.ocr = ocr

    def analyse_bytes(self, data: bytes, name: str = "") -> DocumentAnalysis:
        """Analyse one document's bytes; raises ``ExtractionError`` (with its stage) on failure."""
        document = documents.extract(data, name, max_pages=self.max_pages, ocr=self.ocr)
        return self.analyse_text(document, hashlib.sha256(data).hexdigest(), len(data))

    def analyse_text(self, document: DocumentText, content_sha256: str, n_bytes: int) -> DocumentAnalysis:
        try:
            sentences = split_sentences(document.text)
        except Exception as exc:  # spaCy failures are bugs, but one must not stop a run
            raise ExtractionError(f"sentence splitting failed: {exc}", stage="sentences") from exc
        mentions: list[Mention] = []
        for tagger in self.taggers:
            try:
                mentions.extend(tagger.tag(sentences))
            except Exception as exc:
                raise ExtractionError(f"{tagger.method} tagger failed: {exc}", stage="tag") from exc
        mentions.sort(key=lambda m: (m.sentence_index, m.start, m.method))
        return DocumentAnalysis(
            content_sha256=content_sha256,
            n_bytes=n_bytes,
            document=document,
            text_sha256=fingerprint.text_sha256(document.text),
            minhash=fingerprint.minhash(document.text),
            sentences=sentences,
            mentions=mentions,
            sightings=decide_sightings(mentions, self.sighting_threshold, sentences),
            tagger_versions={**{t.method: t.version for t in self.taggers},
                             SIGHTINGS_KEY: sighting_rule(self.sighting_threshold),
                             TEXT_KEY: documents.EXTRACTION_VERSION},
        )

    def warm_up(self) -> None:
        """Import the parsers and warm the taggers (``warm_up_taggers``), so that processes forked from
        this one to analyse a document start ready."""
        documents.preload_parsers()
        warm_up_taggers(self.taggers)

    def analyse_path(self, path: Path, max_bytes: int | None = None) -> DocumentAnalysis:
        return self.analyse_bytes(read_local(path, max_bytes), path.name)


def warm_up_taggers(taggers: list[Tagger]) -> None:
    """Build what taggers build on first use (the classifier's feature tables) by tagging one sentence."""
    sentences = split_sentences("The loader ran rundll32.exe and PowerShell (T1059.001) from a scheduled task.")
    for tagger in taggers:
        tagger.tag(sentences)


def read_local(path: Path, max_bytes: int | None = None) -> bytes:
    """A local file's bytes, refusing files over ``max_bytes`` before reading them."""
    size = path.stat().st_size
    if max_bytes is not None and size > max_bytes:
        raise documents.DocumentTooLarge(f"{size:,} bytes is over the {max_bytes:,}-byte limit (BREACHMINER_MAX_BYTES)")
    return path.read_bytes()
