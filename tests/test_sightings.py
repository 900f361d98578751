"""The report-level sighting rule (DESIGN.md §4)."""

from __future__ import annotations

from breachminer.records import Mention
from extractors.sightings import decide_sightings


def mention(tid, method, score, sentence=0):
    return Mention(sentence, tid, method, score, "x", 0, 1)


def counted(mentions, threshold=0.6):
    return {s.technique_id for s in decide_sightings(mentions, threshold)}


def test_explicit_id_counts_alone():
    assert counted([mention("T1059.001", "id", 0.97)]) == {"T1059.001"}


def test_unknown_ids_never_count():
    assert counted([mention(None, "id", 0.0)]) == set()


def test_ordinary_evidence_counts_alone_and_weak_does_not():
    assert counted([mention("T1490", "lexicon", 0.95)]) == {"T1490"}
    assert counted([mention("T1053.005", "name", 0.7)]) == {"T1053.005"}
    assert counted([mention("T1566", "name", 0.45)]) == set()
    assert counted([mention("T1059.001", "lexicon", 0.4)]) == set()


def test_weak_evidence_needs_a_second_sentence_or_method():
    assert counted([mention("T1566", "name", 0.45, 0), mention("T1566", "name", 0.45, 1)]) == {"T1566"}
    assert counted([mention("T1059.001", "lexicon", 0.4), mention("T1059.001", "name", 0.45)]) == {"T1059.001"}


def test_threshold_is_a_setting():
    assert counted([mention("T1053.005", "name", 0.7)], threshold=0.8) == set()


def test_repeating_one_signal_in_one_sentence_does_not_add_up():
    weak = [mention("T1566", "name", 0.45, 0) for _ in range(10)]
    assert counted(weak) == set()


def test_only_the_two_best_sentences_of_a_method_count():
    low = [mention("T1059.001", "lexicon", 0.3, i) for i in range(10)]
    assert counted(low) == set()  # 1 - 0.7**2 = 0.51


def test_scores_and_methods_are_reported():
    [sighting] = decide_sightings([mention("T1047", "name", 0.7, 0), mention("T1047", "lexicon", 0.6, 1)])
    assert sighting.methods == ("lexicon", "name")
    assert abs(sighting.score - (1 - 0.3 * 0.4)) < 1e-9
    assert sighting.n_sentences == 2
