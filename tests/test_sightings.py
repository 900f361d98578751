"""The report-level sighting rule (DESIGN.md §4)."""

from __future__ import annotations

from breachminer.records import Mention
from extractors.sightings import decide_sightings


def mention(tid, method, score, sentence=0):
    return Mention(sentence, tid, method, score, "x", 0, 1)


def counted(mentions, threshold=0.8):
    return {s.technique_id for s in decide_sightings(mentions, threshold)}


def test_explicit_id_counts_alone():
    assert counted([mention("T1059.001", "id", 0.97)]) == {"T1059.001"}


def test_unknown_ids_never_count():
    assert counted([mention(None, "id", 0.0)]) == set()


def test_strong_evidence_counts_alone_and_weak_does_not():
    assert counted([mention("T1490", "lexicon", 0.9)]) == {"T1490"}
    assert counted([mention("T1566", "name", 0.45)]) == set()
    assert counted([mention("T1053.005", "name", 0.7)]) == set()


def test_an_ordinary_name_needs_a_second_sentence_or_method():
    assert counted([mention("T1053.005", "name", 0.7, 0), mention("T1053.005", "name", 0.7, 1)]) == {"T1053.005"}
    assert counted([mention("T1053.005", "name", 0.7), mention("T1053.005", "lexicon", 0.6)]) == {"T1053.005"}


def test_repeating_one_weak_signal_does_not_add_up():
    weak = [mention("T1566", "name", 0.45, i) for i in range(10)]
    assert counted(weak) == set()


def test_same_sentence_counts_once_per_method():
    same_sentence = [mention("T1053.005", "name", 0.7, 3), mention("T1053.005", "name", 0.7, 3)]
    assert counted(same_sentence) == set()


def test_scores_and_methods_are_reported():
    [sighting] = decide_sightings([mention("T1047", "name", 0.7, 0), mention("T1047", "lexicon", 0.6, 1)])
    assert sighting.methods == ("lexicon", "name")
    assert abs(sighting.score - (1 - 0.3 * 0.4)) < 1e-9
    assert sighting.n_sentences == 2
