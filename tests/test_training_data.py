"""Training data for the technique classifier: sources, labels, held-out exclusion and leak removal."""

from __future__ import annotations

import json
import re
from collections import Counter

import pytest
from conftest import SHARED_DATA, needs_shared

from models.training_data import (
    EXTRA_LABELS,
    SOURCES,
    LabelledSentence,
    _Reader,
    _Resolver,
    _tram_reports,
    attack_bundle_path,
    clean_procedure_text,
    label_report_sentences,
    load_heldout_reports,
    load_training_data,
    mjson_spans,
    read_extra_labels,
    read_heldout_names,
    references_to,
    remove_leaks,
    sentence_digest,
    split_report,
    url_key,
)

MJSON = SHARED_DATA / "tram" / "mjson"
ALIGNMENT_REPORT = "AA21200B_Chinese_StateSponsored_Cyber_Operations_Observed_TTPs.mjson"  # not held out


# ------------------------------------------------------------------------------ no data needed


def test_heldout_list_names_30_distinct_mjson_files() -> None:
    names = read_heldout_names()
    assert len(names) == 30
    assert len(set(names)) == 30
    assert all(n.endswith(".mjson") and not n.startswith("#") for n in names)
    assert ALIGNMENT_REPORT not in names


def test_read_heldout_names_skips_comments_and_blanks(tmp_path) -> None:
    path = tmp_path / "list.txt"
    path.write_text("# comment\n\n a.mjson \n# b.mjson\nc.mjson\n", encoding="utf-8")
    assert read_heldout_names(path) == ["a.mjson", "c.mjson"]


def test_clean_procedure_text() -> None:
    raw = (
        "[APT29](https://attack.mitre.org/groups/G0016) has used <code>rundll32.exe</code> to load "
        "[Cobalt Strike](https://attack.mitre.org/software/S0154) `beacon`.(Citation: Mandiant APT29 Nov 2018)"
        "(Citation: FireEye   2020)\n  It also  used WMI. (Citation: X)"
    )
    assert clean_procedure_text(raw) == (
        "APT29 has used rundll32.exe to load Cobalt Strike beacon. It also used WMI."
    )
    assert clean_procedure_text("(Citation: only)") == ""
    assert clean_procedure_text("searches for extensions: .doc .docx and .rar .(Citation: A)") == (
        "searches for extensions: .doc .docx and .rar.")


def _s(text: str, source: str = "tram2", labels: tuple[str, ...] = ("T1059",)) -> LabelledSentence:
    return LabelledSentence(text, labels, source, "g")


def test_remove_leaks() -> None:
    heldout = [
        "The actor ran PowerShell, then used   rundll32.exe to load the DLL.\n\nIt deleted volume shadow copies "
        "with vssadmin before encrypting files on every reachable share.",
        "A second report: the xransomware encrypted the files quickly and quietly.",
    ]
    long_leak = _s("It DELETED volume shadow copies with vssadmin, before encrypting files on every reachable share")
    short_leak = _s("then used rundll32.exe to load", source="tram-bootstrap")  # 6 words, < 8: substring path
    six_words = _s("rundll32.exe to load the DLL", source="tram-negative", labels=())  # "rundll32 exe ..": 6
    five_words = _s("used rundll32 exe to load", source="tram-report")  # 5 words: never a leak
    not_consecutive = _s("The actor ran PowerShell then deleted volume shadow copies with vssadmin")
    partial_word = _s("ransomware encrypted the files quickly and quietly")  # held-out has "xransomware"
    unrelated = _s("The loader contacts its command and control server over HTTPS every ten minutes.")
    sentences = [long_leak, short_leak, six_words, five_words, not_consecutive, partial_word, unrelated]

    kept, removed = remove_leaks(sentences, heldout)

    assert kept == [five_words, not_consecutive, partial_word, unrelated]
    assert removed == {"tram2": 1, "tram-bootstrap": 1, "tram-negative": 1}
    assert remove_leaks(sentences, []) == (sentences, {})


def test_split_report_skips_metadata_and_keeps_raw_offsets() -> None:
    signal = (
        "title: A Report\nurl: https://example.com/x\n\n"
        "Heading without a full stop\n"
        "The malware runs cmd.exe. It then copies itself to the Startup folder and\r\n"
        "keeps running after reboot.\n\n"
        "\u2022 Bullet item one\n"
        "\u2022 Bullet item two."
    )
    sentences = split_report(signal)
    assert [s.text for s in sentences] == [
        "Heading without a full stop",
        "The malware runs cmd.exe.",
        "It then copies itself to the Startup folder and keeps running after reboot.",
        "\u2022 Bullet item one",
        "\u2022 Bullet item two.",
    ]
    for s in sentences:
        assert re.sub(r"\s+", " ", signal[s.start:s.end]).strip() == s.text

    start = signal.index("copies")
    spans = [(start, start + len("copies itself to the Startup"), "T1547.001"),
             (signal.index("cmd.exe"), signal.index("cmd.exe") + 7, "T1059.003"),
             (signal.index("reboot"), signal.index("reboot.") + 8, "T1547")]  # ends on the "\n" after "."
    labels = [sorted(ids) for _, ids in label_report_sentences(signal, spans)]
    assert labels == [[], ["T1059.003"], ["T1547", "T1547.001"], [], []]


def test_attack_bundle_path_picks_newest_version(tmp_path) -> None:
    folder = tmp_path / "attack"
    folder.mkdir()
    for name in ("enterprise-attack-9.0.json", "enterprise-attack-18.1.json.gz", "enterprise-attack-18.0.json",
                 "enterprise-attack-99.json.bak"):
        (folder / name).write_bytes(b"{}")
    assert attack_bundle_path(tmp_path).name == "enterprise-attack-18.1.json.gz"


def test_url_key_and_references_to() -> None:
    assert url_key("https://www.example.com/blog/post/?utm=x#top") == "example.com/blog/post"
    assert url_key("https://web.archive.org/web/20210101000000/http://example.com/blog/post/") == (
        "example.com/blog/post")
    objects = [
        {"type": "relationship", "external_references": [
            {"source_name": "Example Post", "url": "http://example.com/blog/post"},
            {"source_name": "Other", "url": "https://example.com/other"},
            {"source_name": "No URL"}]},
    ]
    assert references_to(objects, ["https://www.example.com/blog/post/", ""]) == {"Example Post"}


# ------------------------------------------------------------------------------ real data


def test_the_heldout_completion_file_is_clean(catalog) -> None:
    """``heldout_completed.csv``: report-level IDs only, for the held-out reports, under TRAM's parents."""
    import csv

    from models.evaluate import HELDOUT_COMPLETION, read_heldout_completion

    with HELDOUT_COMPLETION.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        assert reader.fieldnames == ["document", "technique", "certain"]
        rows = list(reader)
    assert {r["document"] for r in rows} == set(read_heldout_names())  # all 30, nothing else
    assert all(r["technique"] in catalog.active and r["certain"] in ("yes", "no") for r in rows)
    assert len({(r["document"], r["technique"]) for r in rows}) == len(rows) > 600
    completion = read_heldout_completion(catalog)
    assert sum(map(len, completion.values())) == len(rows)


def test_the_supplementary_annotation_file_is_clean(catalog) -> None:
    """``tram_extra_labels.csv`` holds no report text: names, sentence numbers, digests, active IDs."""
    import csv

    with EXTRA_LABELS.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        assert reader.fieldnames == ["report", "sentence", "sentence_sha256", "technique", "certain"]
        rows = list(reader)
    assert len(rows) > 3000
    heldout = set(read_heldout_names())
    assert all(r["report"].endswith(".mjson") and r["report"] not in heldout for r in rows)
    assert all(re.fullmatch(r"[0-9a-f]{12}", r["sentence_sha256"]) and r["sentence"].isdigit() for r in rows)
    assert all(r["technique"] in catalog.active and r["certain"] in ("yes", "no") for r in rows)
    keys = [(r["report"], r["sentence"], r["technique"]) for r in rows]
    assert len(keys) == len(set(keys))
    assert len({r["report"] for r in rows}) >= 110  # of the 121 TRAM training reports (5 have no such technique)


def test_supplementary_labels_apply_only_to_the_sentence_they_were_given_for(tmp_path, catalog) -> None:
    """A pair whose sentence no longer has the recorded digest (another splitter) is counted, not applied."""
    signal = ("The actor rented a VPS from a hosting provider for its servers.\n\n"
              "The implant sends its data base64-encoded.")
    (tmp_path / "tram" / "mjson").mkdir(parents=True)
    (tmp_path / "tram" / "mjson" / "r.mjson").write_text(json.dumps({"signal": signal, "asets": []}))
    sentences = [s for s, _ in label_report_sentences(signal, [])]
    assert len(sentences) == 2
    extra = {("r.mjson", 0): (sentence_digest(sentences[0].text), ("T1583.003",)),
             ("r.mjson", 1): ("000000000000", ("T1132.001",))}
    counts: Counter[str] = Counter()
    out = _tram_reports(_Reader(tmp_path), _Resolver(catalog), set(), None, extra, counts)
    assert [(s.labels, s.extra) for s in out] == [((), ("T1583.003",)), ((), ())]
    assert counts == {"applied": 1, "mismatched": 1}
    assert read_extra_labels(tmp_path / "absent.csv") == {}


def test_a_repeated_sentence_keeps_the_supplementary_labels_of_every_occurrence() -> None:
    """Training keeps one copy of a repeated sentence; an annotator may have marked only one occurrence."""
    from models.training_data import _dedupe

    heading = LabelledSentence("Cobalt Strike", (), "tram-report", "r.mjson")
    marked = LabelledSentence("Cobalt Strike", (), "tram-report", "r.mjson", ("T1588.002",))
    other = LabelledSentence("Cobalt Strike", (), "tram-negative", "negative:0")
    assert _dedupe([heading, other, marked, heading]) == [marked, other]


@pytest.fixture(scope="module")
def training(catalog):
    return load_training_data(SHARED_DATA, catalog)


@needs_shared
def test_heldout_reports_exist_and_load(catalog) -> None:
    names = read_heldout_names()
    assert all((MJSON / n).is_file() for n in names)
    reports = load_heldout_reports(SHARED_DATA, catalog)
    assert [r.name for r in reports] == names
    assert all(len(r.labels) >= 3 for r in reports)  # eligibility rule: >= 3 annotated spans
    assert all(t in catalog.active for r in reports for t in r.labels)
    assert not any("T1574.002" in r.labels for r in reports)
    assert all("\n\n\n" not in r.text and "\r" not in r.text for r in reports)


@needs_shared
def test_counts_per_source(training) -> None:
    counts = training.counts()
    assert set(counts) == set(SOURCES)
    expected = {  # (min, max) sentences; positives / negatives by construction of each source
        "attack-procedure": (15_500, 16_100),
        "tram-bootstrap": (8_500, 10_600),
        "tram2": (3_000, 4_300),
        "tram-report": (18_000, 30_000),
        "tram-negative": (10_500, 11_600),
        "attack-description": (5_000, 5_700),
    }
    for source, (low, high) in expected.items():
        assert low <= counts[source]["sentences"] <= high, (source, counts[source])
    assert counts["attack-procedure"]["techniques"] >= 590
    assert counts["attack-procedure"]["negatives"] == counts["tram-bootstrap"]["negatives"] == 0
    assert counts["tram-negative"]["positives"] == 0
    assert counts["attack-description"]["techniques"] >= 680 and counts["attack-description"]["negatives"] == 0
    assert 2_000 <= counts["tram-report"]["positives"] <= 4_500
    assert counts["tram-report"]["negatives"] > counts["tram-report"]["positives"]
    assert 40 <= counts["tram2"]["techniques"] <= 50
    assert 60 <= counts["tram-report"]["techniques"] <= 77


@needs_shared
def test_labels_are_active_techniques(training, catalog) -> None:
    labels = {t for s in training.sentences for t in s.labels}
    assert labels <= set(catalog.active)
    assert "T1574.002" not in labels
    assert "T1574.001" in labels
    assert all(s.labels == tuple(sorted(set(s.labels))) for s in training.sentences)
    assert all(s.text and s.text == s.text.strip() for s in training.sentences)
    assert not training.unknown_ids  # every TRAM and ATT&CK ID resolves in v18.1


@needs_shared
def test_heldout_reports_never_feed_training(training) -> None:
    names = set(read_heldout_names())
    slugs = {re.sub(r"[^a-z0-9]", "", n.removesuffix(".mjson").lower()) for n in names}
    assert not any(s.group in names for s in training.sentences)
    assert not any(
        re.sub(r"[^a-z0-9]", "", s.group.lower()) in slugs for s in training.sentences if s.source == "tram2"
    )
    assert len({s.group for s in training.sentences if s.source == "tram-report"}) == 151 - 30
    assert training.removed_leaks == sum(training.removed_by_source.values()) > 1_000
    assert training.removed_by_source["tram2"] > 800


@needs_shared
def test_attack_paraphrases_of_heldout_reports_never_feed_training(training, catalog) -> None:
    """ATT&CK cites 4 of the held-out reports; its procedure examples citing them are withheld."""
    from models.training_data import clean_procedure_text, read_attack_objects
    from models.vendor_set import cites

    objects = read_attack_objects(SHARED_DATA)
    references = references_to(objects, [r.url for r in load_heldout_reports(SHARED_DATA, catalog)])
    assert len(references) >= 4
    citing = {clean_procedure_text(o["description"]) for o in objects
              if o.get("type") == "relationship" and o.get("relationship_type") == "uses" and o.get("description")
              and not o.get("revoked") and cites(o, references)}
    elsewhere = {clean_procedure_text(o["description"]) for o in objects
                 if o.get("type") == "relationship" and o.get("description") and not cites(o, references)}
    procedures = {s.text for s in training.sentences if s.source == "attack-procedure"}
    assert len(citing) >= 50
    assert citing & procedures <= elsewhere
    assert training.removed_by_source["attack-procedure"] >= 50


@needs_shared
def test_attack_paraphrases_of_training_reports_are_indexed_for_cross_validation(training) -> None:
    """ATT&CK cites some TRAM training reports (LockBit 2.0 among them); their paraphrases are indexed per report
    so that cross-validation withholds them while it scores that report."""
    from models.training_data import clean_procedure_text, read_attack_objects
    from models.vendor_set import cites

    paraphrases = training.report_paraphrases
    assert len(paraphrases) >= 10
    lockbit = "LockBit_20_How_This_RaaS_Operates_and_How_to_Protect_Against_It.mjson"
    objects = read_attack_objects(SHARED_DATA)
    tram_reports = {s.group for s in training.sentences if s.source == "tram-report"}
    assert set(paraphrases) <= tram_reports
    rows = paraphrases[lockbit]
    assert rows <= set(training.sentences)
    assert len(rows) >= 10 and {s.source for s in rows} <= {"attack-procedure", "tram-bootstrap"}
    url = "unit42.paloaltonetworks.com/lockbit-2-ransomware"
    references = {ref["source_name"] for o in objects for ref in o.get("external_references", []) or []
                  if url in (ref.get("url") or "") and ref.get("source_name")}
    citing = {clean_procedure_text(o["description"]) for o in objects
              if o.get("type") == "relationship" and o.get("description") and cites(o, references)}
    assert {row.text for row in rows if row.source == "attack-procedure"} <= citing


@needs_shared
def test_no_duplicates_within_a_source(training) -> None:
    keys = [(s.source, s.text, s.labels) for s in training.sentences]
    assert len(keys) == len(set(keys))


@needs_shared
def test_file_hashes_cover_every_input(training) -> None:
    hashes = training.file_hashes
    assert "attack/enterprise-attack-18.1.json.gz" in hashes
    assert {"tram/bootstrap-training-data.json", "tram/tram2-single_label.json", "tram/negative_data.json"} <= set(
        hashes)
    assert sum(1 for k in hashes if k.startswith("tram/mjson/")) == 151  # held-out files are read for leak removal
    assert all(re.fullmatch(r"[0-9a-f]{64}", h) for h in hashes.values())


@needs_shared
def test_mjson_spans_line_up_with_sentences(training) -> None:
    doc = json.loads((MJSON / ALIGNMENT_REPORT).read_text(encoding="utf-8"))
    signal, spans = doc["signal"], mjson_spans(doc)
    assert len(spans) > 30
    sentences = split_report(signal)
    for s in sentences:
        assert re.sub(r"\s+", " ", signal[s.start:s.end]).strip() == s.text
    by_text = {s.text: s.labels for s in training.sentences if s.group == ALIGNMENT_REPORT}
    for start, end, tid in spans:
        span_words = re.findall(r"\w+", signal[start:end])
        overlapping = [s for s in sentences if s.start < end and s.end > start]
        assert overlapping, (tid, signal[start:end])
        # the overlapping sentences' text holds the annotated text, and they carry the span's technique
        joined = " ".join(s.text for s in overlapping)
        assert all(w in joined for w in span_words), (tid, signal[start:end], joined)
        assert any(tid in by_text.get(s.text, ()) for s in overlapping), (tid, signal[start:end])
    deletion = "cyber actors have been observed deleting files using rm or del commands."
    assert any(deletion in text and labels == ("T1070.004",) for text, labels in by_text.items())


@needs_shared
def test_unannotated_attack_table_rows_are_not_negatives(training) -> None:
    cites = re.compile(r"\bT\s?1\d{3}\b")
    negatives = [s for s in training.sentences if s.source == "tram-report" and not s.labels]
    assert negatives and not any(cites.search(s.text) for s in negatives)


def test_descriptions_give_every_current_technique_its_own_sentences(catalog) -> None:
    from models.training_data import _attack_descriptions

    def pattern(technique_id: str, description: str, **flags: bool) -> dict:
        return {"type": "attack-pattern", "id": f"attack-pattern--{technique_id}", "description": description, **flags,
                "external_references": [{"source_name": "mitre-attack", "external_id": technique_id}]}

    objects = [
        pattern("T1621", "Adversaries may attempt to bypass multi-factor authentication (MFA) by generating MFA "
                         "requests sent to users.(Citation: Mandiant APT42) Adversaries may use "
                         "[Brute Force](https://attack.mitre.org/techniques/T1110) to flood a user with push "
                         "notifications. See below."),
        pattern("T1574.002", "Revoked in favour of another technique, so it trains nothing here.", revoked=True),
        pattern("T1064", "Deprecated scripting technique that must not become a label.", x_mitre_deprecated=True),
        {"type": "malware", "description": "Not a technique at all, whatever it says."},
    ]
    rows = _attack_descriptions(objects, catalog)
    assert [r.text for r in rows] == [
        "Adversaries may attempt to bypass multi-factor authentication (MFA) by generating MFA requests sent to users.",
        "Adversaries may use Brute Force to flood a user with push notifications.",
    ]  # citations and links stripped, "See below." too short to keep
    assert {(r.labels, r.source, r.group) for r in rows} == {(("T1621",), "attack-description", "description:T1621")}


@needs_shared
def test_supplementary_labels_reach_their_sentences_outside_trams_list(training, catalog) -> None:
    from models.evaluate import label_universe

    stats = training.extra_labels
    assert stats["pairs"] > 3000 and not stats.get("mismatched")  # every digest still matches its sentence
    assert stats["applied"] + stats.get("not_used", 0) == stats["pairs"]
    tram_parents = {catalog.parent_of_any(t) for t in label_universe(SHARED_DATA, catalog)}
    extra = [s for s in training.sentences if s.extra]
    assert len(extra) > 1500 and {s.source for s in extra} == {"tram-report"}
    assert not {catalog.parent_of_any(t) for s in extra for t in s.extra} & tram_parents
    assert all(not set(s.extra) & set(s.labels) for s in extra)
