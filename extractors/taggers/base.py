"""The tagger interface shared by every method (id, name, lexicon, classifier)."""

from __future__ import annotations

from collections.abc import Sequence
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
