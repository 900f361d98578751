"""The id, name and lexicon taggers, one behaviour per test; every lexicon entry's examples."""

from __future__ import annotations

import pytest

from breachminer.records import Sentence
from extractors.taggers import IdTagger, LexiconTagger, NameTagger, Tagger
from extractors.taggers.lexicon import LEXICON_FILE, LexiconEntry, fold, load_lexicon, required_literals


def sentences(*texts: str) -> list[Sentence]:
    return [Sentence(i, 0, len(t), t) for i, t in enumerate(texts)]


@pytest.fixture(scope="module")
def id_tagger(catalog) -> IdTagger:
    return IdTagger(catalog)


@pytest.fixture(scope="module")
def name_tagger(catalog) -> NameTagger:
    return NameTagger(catalog)


@pytest.fixture(scope="module")
def lexicon_tagger(catalog) -> LexiconTagger:
    return LexiconTagger(catalog)


def test_taggers_share_the_interface(id_tagger, name_tagger, lexicon_tagger) -> None:
    for tagger in (id_tagger, name_tagger, lexicon_tagger):
        assert isinstance(tagger, Tagger)


# --------------------------------------------------------------------------------------------- id

@pytest.mark.parametrize(("text", "expected"), [
    ("They used PowerShell (T1059.001).", "T1059.001"),
    ("Scheduled tasks (T1053 .005) kept it alive.", "T1053.005"),
    ("Scheduled tasks (T1053. 005) kept it alive.", "T1053.005"),
    ("Command interpreter T1059 was used.", "T1059"),
    ("Old reports cite T1086 for PowerShell.", "T1059.001"),
    ("DLL side-loading (T1574.002).", "T1574.001"),
    ("See atomics/T1053-005 and T1053_005.yaml.", "T1053.005 T1053.005"),
    ("tags: - attack.persistence - attack.t1053.005 - attack.T1059", "T1053.005 T1059"),
])
def test_id_forms_and_revoked_remapping(id_tagger, text, expected) -> None:
    mentions = id_tagger.tag(sentences(text))
    assert [m.technique_id for m in mentions] == expected.split()
    assert all(m.method == "id" for m in mentions)


def test_unknown_ids_are_kept_without_a_technique(id_tagger) -> None:
    mentions = id_tagger.tag(sentences("The table lists T1999 and T1059.999."))
    assert [m.cited for m in mentions] == ["T1999", "T1059.999"]
    assert all(m.technique_id is None for m in mentions)


def test_ids_inside_other_tokens_are_not_matched(id_tagger) -> None:
    assert id_tagger.tag(sentences("Part AT10590 and hash T10591234 and x1059.")) == []
    # lower case only in a Sigma tag; a part number's third group is not a sub-technique
    assert [m.technique_id for m in id_tagger.tag(sentences("Model t1059 and T1059-001-22."))] == ["T1059"]


# ------------------------------------------------------------------------------------------- name

def test_names_and_aliases(name_tagger) -> None:
    found = {m.technique_id: m for m in name_tagger.tag(sentences(
        "The actor created a Scheduled Task and abused Windows Management Instrumentation.",
        "Payloads were loaded through DLL side-loading."))}
    assert set(found) == {"T1053.005", "T1047", "T1574.001"}
    assert found["T1574.001"].detail.startswith(("alias", "revoked-name"))


def test_generic_names_are_ignored(name_tagger) -> None:
    assert name_tagger.tag(sentences("The malware contacted a server and downloaded software at night.")) == []
    # a C2 "control panel" is not Control Panel (T1218.002), which the lexicon finds by its .cpl files
    assert name_tagger.tag(sentences("The attackers run a web-based control panel to manage the bots.")) == []
    # advice about MFA is not T1556.006; bombing users with MFA requests still names T1621
    assert name_tagger.tag(sentences("Enforce multi-factor authentication for all remote access.")) == []
    assert [m.technique_id for m in name_tagger.tag(sentences(
        "The actor used Multi-Factor Authentication Request Generation to wear the user down."))] == ["T1621"]


def test_weak_names_score_low_and_strong_names_high(name_tagger) -> None:
    weak = name_tagger.tag(sentences("Phishing remains a concern for every organisation."))
    strong = name_tagger.tag(sentences("The HTA was launched with mshta."))
    assert weak[0].technique_id == "T1566" and weak[0].score < 0.5
    assert strong[0].technique_id == "T1218.005" and strong[0].score >= 0.85


def test_shared_names_resolve_through_preference(name_tagger) -> None:
    mentions = name_tagger.tag(sentences("Initial access was a spearphishing attachment."))
    assert [m.technique_id for m in mentions] == ["T1566.001"]


def test_longest_match_wins(name_tagger) -> None:
    mentions = name_tagger.tag(sentences("It abused Registry Run Keys / Startup Folder entries."))
    assert [m.technique_id for m in mentions] == ["T1547.001"]


# ---------------------------------------------------------------------------------------- lexicon

ENTRIES = load_lexicon(__import__("breachminer.catalog", fromlist=["AttackCatalog"]).AttackCatalog.load())


def test_lexicon_is_reviewed_and_large_enough() -> None:
    assert len(ENTRIES) >= 80
    assert {e.fidelity for e in ENTRIES} == {"high", "medium", "low"}
    assert "The MITRE Corporation" in LEXICON_FILE.read_text(encoding="utf-8")


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.key)
def test_lexicon_entry_positive_and_negative(entry, lexicon_tagger) -> None:
    positive = [m for m in lexicon_tagger.tag(sentences(entry.positive)) if m.detail.startswith(entry.key + ":")]
    negative = [m for m in lexicon_tagger.tag(sentences(entry.negative)) if m.detail.startswith(entry.key + ":")]
    assert positive and positive[0].technique_id == entry.technique_id
    assert not negative


@pytest.mark.parametrize(("pattern", "literals"), [
    (r"\bAnyDesk(?:\.exe)?\b", ("anydesk",)),
    (r"\bvssadmin\s+delete\s+shadows\b", ("vssadmin",)),  # the longest run of a sequence
    (r"\b(?:certutil|bitsadmin)\b.{0,40}-urlcache", ("-urlcache",)),
    (r"\bmimikatz\b|\bsekurlsa::", ("mimikatz", "sekurlsa::")),  # every alternative contributes
    (r"(?:foo)?bar", ("bar",)),  # an optional group requires nothing
    (r"(?:ab)+c", ("ab",)),
    (r"\bHKLM\\SOFTWARE", ("hklm\\software",)),
    (r"[a-z]{3}\d+", None),  # character classes alone: nothing is required
    (r"run\b|[0-9]+", None),  # one alternative without a literal: nothing is required
])
def test_required_literals(pattern, literals) -> None:
    import re

    assert required_literals(re.compile(pattern, re.IGNORECASE)) == literals


def test_the_lexicon_prefilter_changes_no_result(lexicon_tagger) -> None:
    """Tagging with the required-literal prefilter finds exactly what searching every pattern in every
    sentence finds: on every entry's examples, in upper case and with the characters that fold oddly."""
    from pathlib import Path

    texts = [text for e in ENTRIES for text in (e.positive, e.negative)]
    texts += [t.upper() for t in texts] + [t.replace("i", "ı").replace("s", "ſ") for t in texts]
    for sample in sorted((Path(__file__).parents[1] / "reports_corpus" / "samples").glob("*.txt")):
        texts += sample.read_text(encoding="utf-8").splitlines()
    document = sentences(*texts)
    every_pattern = LexiconTagger.__new__(LexiconTagger)
    every_pattern.entries = [LexiconEntry(**{**e.__dict__, "literals": None}) for e in lexicon_tagger.entries]
    every_pattern.version = lexicon_tagger.version
    assert all(e.literals for e in lexicon_tagger.entries)  # every entry is prefiltered
    found = lexicon_tagger.tag(document)
    assert found == every_pattern.tag(document) and len(found) > len(ENTRIES)
    assert fold("Mımıkatz İNVOKE") == "mimikatz invoke"


def test_lexicon_rejects_unknown_techniques(tmp_path, catalog) -> None:
    bad = tmp_path / "lexicon.yaml"
    bad.write_text(
        "entries:\n- {key: x, pattern: 'x', technique: T1999, fidelity: high, note: n, positive: x, negative: y}\n")
    with pytest.raises(ValueError, match="T1999"):
        load_lexicon(catalog, bad)


def test_a_rule_file_edit_is_a_new_tagger_version(tmp_path, catalog) -> None:
    """``retag`` finds what an older lexicon or name list decided by these versions."""
    from extractors.taggers.names import NAMES_FILE

    edited_lexicon, edited_names = tmp_path / "lexicon.yaml", tmp_path / "names.yaml"
    edited_lexicon.write_text(LEXICON_FILE.read_text(encoding="utf-8") + "\n# reviewed again\n", encoding="utf-8")
    edited_names.write_text(NAMES_FILE.read_text(encoding="utf-8") + "\n# reviewed again\n", encoding="utf-8")
    current = LexiconTagger(catalog), NameTagger(catalog)
    edited = LexiconTagger(catalog, edited_lexicon), NameTagger(catalog, edited_names)
    for before, after in zip(current, edited, strict=True):
        assert before.version != after.version and before.version.endswith(f"/attack-{catalog.attack_version}")
    assert IdTagger(catalog).version == f"id-2/attack-{catalog.attack_version}"
