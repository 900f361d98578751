"""Text → sentences with spaCy (``spacy.blank("en")`` + sentencizer), keeping character offsets.

Paragraphs are piped one by one (no ``max_length`` limit on long reports); a sentence longer than
``MAX_SENTENCE_CHARS`` (tables flattened by PDF extraction) is cut at the nearest space. Each sentence
says whether it is defender advice (``extractors.advice``), so the warehouse can show it.
"""

from __future__ import annotations

import re
from functools import lru_cache

import spacy
from spacy.language import Language

from breachminer.records import Sentence
from extractors.advice import is_advice

MAX_SENTENCE_CHARS = 1000


@lru_cache(maxsize=1)
def nlp() -> Language:
    """The shared blank English pipeline with a sentencizer."""
    pipeline = spacy.blank("en")
    pipeline.add_pipe("sentencizer")
    pipeline.max_length = 5_000_000
    return pipeline


def split_sentences(text: str) -> list[Sentence]:
    """Sentences of a normalised text (paragraphs separated by blank lines), offsets into ``text``."""
    paragraphs = [(m.start(), m.group()) for m in re.finditer(r"[^\n]+(?:\n(?!\n)[^\n]+)*", text)]
    sentences: list[Sentence] = []
    for (offset, _), doc in zip(paragraphs, nlp().pipe(p for _, p in paragraphs), strict=True):
        for span in doc.sents:
            start, end = offset + span.start_char, offset + span.end_char
            for piece_start, piece_end in _cut(text, start, end):
                piece = text[piece_start:piece_end]
                if any(ch.isalnum() for ch in piece):  # bullets and rules alone are not sentences
                    sentences.append(Sentence(len(sentences), piece_start, piece_end, piece, is_advice(piece)))
    return sentences


def _cut(text: str, start: int, end: int) -> list[tuple[int, int]]:
    pieces = []
    while end - start > MAX_SENTENCE_CHARS:
        cut = text.rfind(" ", start, start + MAX_SENTENCE_CHARS)
        cut = cut if cut > start else start + MAX_SENTENCE_CHARS
        pieces.append((start, cut))
        start = cut + 1
    pieces.append((start, end))
    return pieces
