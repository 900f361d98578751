"""Technique taggers: each turns sentences into mention rows with one method (DESIGN.md §3).

A tagger has a ``method`` name, a ``version`` and ``tag(sentences) -> list[Mention]``; the trained
classifier plugs in as one more tagger (method ``classifier``) without changing callers.
"""

from extractors.taggers.base import Tagger
from extractors.taggers.ids import IdTagger
from extractors.taggers.lexicon import LexiconTagger
from extractors.taggers.names import NameTagger

__all__ = ["IdTagger", "LexiconTagger", "NameTagger", "Tagger"]
