"""The tagger interface shared by every method (id, name, lexicon, classifier)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

from breachminer.records import Mention, Sentence


@runtime_checkable
class Tagger(Protocol):
    """Anything that returns mention rows for a report's sentences."""

    method: str
    version: str

    def tag(self, sentences: Sequence[Sentence]) -> list[Mention]:
        """Mentions found in ``sentences`` (sentence indexes refer to the input's ``index``)."""
        ...


def file_digest(path: Path) -> str:
    """The first 8 hex digits of a rules file's sha256: part of a tagger's version, so an edited rule
    file makes a new version and ``retag`` re-tags what the old one decided."""
    return hashlib.sha256(path.read_bytes()).hexdigest()[:8]
