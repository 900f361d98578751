"""Text → sentences with offsets."""

from __future__ import annotations

from extractors.sentences import MAX_SENTENCE_CHARS, split_sentences


def test_offsets_point_into_the_text() -> None:
    text = "First sentence here. Second one follows!\n\nA new paragraph starts. It ends."
    sentences = split_sentences(text)
    assert [s.text for s in sentences] == [
        "First sentence here.", "Second one follows!", "A new paragraph starts.", "It ends."]
    assert all(text[s.start:s.end] == s.text for s in sentences)
    assert [s.index for s in sentences] == [0, 1, 2, 3]


def test_overlong_sentences_are_cut() -> None:
    text = " ".join(["word"] * 1000)
    sentences = split_sentences(text)
    assert len(sentences) > 1
    assert all(len(s.text) <= MAX_SENTENCE_CHARS for s in sentences)
    assert all(text[s.start:s.end] == s.text for s in sentences)
