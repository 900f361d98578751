"""Labelled sentences for the technique classifier, and the held-out reports it is evaluated on.

Owns reading the public training sources from a data folder laid out like ``shared/data`` and
turning them into one list of :class:`LabelledSentence` (text, current ATT&CK technique IDs, source,
group key for report-level splits), plus the 30 held-out TRAM reports named in
``models/heldout_reports.txt`` (:class:`HeldoutReport`), which never feed training: their files are
skipped and every training sentence whose text occurs in one of them is dropped (leak removal). The
vendor evaluation set (``models.vendor_set``) is withheld the same way, plus the ATT&CK procedure
examples that cite its reports and their copies in TRAM's bootstrap file.

Sources (``data_dir`` relative paths) and where to download the same public files:

- ``attack/enterprise-attack*.json[.gz]`` — ATT&CK Enterprise STIX bundle; its ``uses`` relationships
  to techniques with a description are *procedure examples*, and the description of every active
  technique gives one labelled sentence per sentence (*descriptions*: the only examples ATT&CK has of
  the ~300 techniques with fewer than five procedure examples, many of them cloud and identity ones).
  Download ``enterprise-attack/enterprise-attack.json`` from https://github.com/mitre/cti or
  ``enterprise-attack/enterprise-attack-<version>.json`` from https://github.com/mitre-attack/attack-stix-data
  (the newest file by version number is used).
- ``tram/bootstrap-training-data.json`` — TRAM's default training file, ``data/training/bootstrap-training-data.json``
  in https://github.com/center-for-threat-informed-defense/tram.
- ``tram/tram2-single_label.json`` — ``data/tram2-data/single_label.json`` in the same repository.
- ``tram/negative_data.json`` — ``data/training/archive/negative_data.json`` (text with no technique).
- ``tram/mjson/*.mjson`` — the annotated full reports, ``data/training/tram2_data/mjson_files/*.mjson``
  (MITRE Annotation Toolkit JSON). File names here are ASCII slugs of the originals (letters, digits and
  ``_``); the held-out list and the TRAM2 ``doc_title`` are matched against these slugs.
- ``models/tram_extra_labels.csv`` (in this repository, not the data folder) — breachminer's supplementary
  sentence-level annotation of the TRAM training reports with the techniques outside TRAM's list
  (``LabelledSentence.extra``; report, sentence number, sentence digest, technique; no text).

Technique IDs go through :meth:`breachminer.catalog.AttackCatalog.resolve`: revoked IDs become their
replacement (TRAM still uses T1574.002, revoked in ATT&CK v18 for T1574.001); IDs that do not
resolve to an active technique are dropped and counted.

ATT&CK® is a registered trademark of The MITRE Corporation; procedure examples are ATT&CK content
("© 2025 The MITRE Corporation. This work is reproduced and distributed with the permission of The MITRE
Corporation."). TRAM data is Apache-2.0; the annotated texts remain their publishers'.
"""

from __future__ import annotations

import bisect
import csv
import gzip
import hashlib
import json
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from breachminer.catalog import AttackCatalog
from breachminer.records import Sentence
from extractors.documents import normalise_text
from extractors.fingerprint import words
from extractors.sentences import split_sentences
from models.vendor_set import VendorReference, cites, read_vendor_references, read_vendor_texts, technique_ids

HELDOUT_LIST = Path(__file__).with_name("heldout_reports.txt")
EXTRA_LABELS = Path(__file__).with_name("tram_extra_labels.csv")
SOURCES = ("attack-procedure", "attack-description", "tram-bootstrap", "tram2", "tram-report", "tram-negative")
MIN_DESCRIPTION_WORDS = 4  # shorter fragments of a description ("See below.") carry no technique
MIN_LEAK_WORDS = 6  # sentences shorter than this (normalised words) are never treated as leaks
SHINGLE = 8  # words per shingle in the leak index
NEAR_COPY_JACCARD = 0.6  # bootstrap copies of withheld procedure examples (names cut out) score .7-.97
MIN_NEAR_COPY_WORDS = 5

_TECHNIQUE_SET = re.compile(r"\((T\d{4}(?:\.\d{3})?)\)\s*$")
_CITATION = re.compile(r"\(Citation:[^)]*\)")
_MD_LINK = re.compile(r"\[([^\]]+)\]\((?:https?://[^)\s]*)\)")
_CODE_TAG = re.compile(r"</?code>|<br\s*/?>", re.IGNORECASE)
_WS = re.compile(r"\s+")
_METADATA_LINE = re.compile(r"^\s*(?:title|url):", re.IGNORECASE)
# Paragraph rule of extractors.documents.normalise_text(pdf_lines=False), applied on raw offsets.
_BULLETS = "•◦▪●■–·*-"
_NUMBERED_ITEM = re.compile(r"^\d{1,2}[.)]\s")


@dataclass(frozen=True)
class LabelledSentence:
    """One training sentence: its text, its techniques (``()`` for a negative), where it came from."""

    text: str
    labels: tuple[str, ...]  # current ATT&CK technique IDs after catalog.resolve(); () = negative example
    source: str  # one of SOURCES
    group: str  # report-level split key: mjson name, tram2 doc_title, "attack:<stix id>", "bootstrap:<n>", ...
    # techniques outside TRAM's list, from breachminer's own annotation of TRAM's training reports
    # (``models/tram_extra_labels.csv``); they train the model, never a threshold (see models.train)
    extra: tuple[str, ...] = ()

    @property
    def all_labels(self) -> tuple[str, ...]:
        """What the model learns from this sentence: the source's labels and the supplementary ones."""
        return self.labels + self.extra if self.extra else self.labels


@dataclass(frozen=True)
class HeldoutReport:
    """A held-out TRAM report: its normalised text and every technique annotated in it."""

    name: str  # mjson file name
    text: str  # extractors.documents.normalise_text(signal, pdf_lines=False)
    labels: frozenset[str]  # resolved technique IDs annotated anywhere in the report
    url: str = ""  # the report's ``url:`` metadata line, where it was published


@dataclass
class TrainingData:
    """All training sentences plus the bookkeeping a model card needs."""

    sentences: list[LabelledSentence]
    removed_leaks: int = 0  # training sentences dropped because they occur in a held-out report
    removed_by_source: dict[str, int] = field(default_factory=dict)
    withheld_vendor: dict[str, int] = field(default_factory=dict)  # per source, withheld for the vendor set
    file_hashes: dict[str, str] = field(default_factory=dict)  # relative path -> sha256 of each input file
    unknown_ids: dict[str, int] = field(default_factory=dict)  # unresolvable IDs (dropped) with counts
    # TRAM training report (.mjson name) -> the training sentences that are ATT&CK's paraphrases of it: procedure
    # examples citing the report and their bootstrap near-copies. Cross-validation withholds them with the report.
    report_paraphrases: dict[str, frozenset[LabelledSentence]] = field(default_factory=dict)
    # the supplementary annotation (tram_extra_labels.csv): pairs in the file, applied, mismatched, not used
    extra_labels: dict[str, int] = field(default_factory=dict)

    def counts(self) -> dict[str, dict[str, int]]:
        """Per source: sentences, positives, negatives and distinct techniques."""
        out: dict[str, dict[str, int]] = {}
        for source in SOURCES:
            rows = [s for s in self.sentences if s.source == source]
            if not rows:
                continue
            positives = sum(1 for s in rows if s.labels)
            out[source] = {
                "sentences": len(rows),
                "positives": positives,
                "negatives": len(rows) - positives,
                "techniques": len({t for s in rows for t in s.labels}),
            }
        return out


# --------------------------------------------------------------------------------------- helpers


def clean_procedure_text(text: str) -> str:
    """An ATT&CK procedure example as plain prose.

    Drops ``(Citation: ...)`` markers, turns ``[Name](https://...)`` links into ``Name``, removes
    ``<code>``/``<br>`` tags and backticks, and collapses whitespace.
    """
    text = _CITATION.sub(" ", text)
    text = _MD_LINK.sub(r"\1", text)
    text = _CODE_TAG.sub(" ", text).replace("`", "")
    text = _WS.sub(" ", text).strip()
    return re.sub(r"\s+([.,;:])(?=\s|$)", r"\1", text)  # "... shell .(Citation: x)" -> "... shell."


def leak_form(text: str) -> str:
    """The form leak checks compare: lowercase ``[a-z0-9]`` words joined by single spaces."""
    return " ".join(words(text))


def remove_leaks(
    sentences: Iterable[LabelledSentence], heldout_texts: Iterable[str]
) -> tuple[list[LabelledSentence], dict[str, int]]:
    """Drop sentences whose :func:`leak_form` (≥ ``MIN_LEAK_WORDS`` words) occurs in a held-out text.

    A sentence is a leak when its normalised words occur, as consecutive whole words, in the
    normalised text of any held-out report. Candidates are found through an index of the held-out
    texts' ``SHINGLE``-word shingles (all of a sentence's shingles must be present), then confirmed
    with a substring check. Returns the kept sentences and the number removed per source.
    """
    reports = [f" {leak_form(t)} " for t in heldout_texts]
    shingles: set[tuple[str, ...]] = set()
    vocabulary: set[str] = set()
    for report in reports:
        words = report.split()
        vocabulary.update(words)
        shingles.update(tuple(words[i:i + SHINGLE]) for i in range(len(words) - SHINGLE + 1))

    kept: list[LabelledSentence] = []
    removed: Counter[str] = Counter()
    for sentence in sentences:
        words = leak_form(sentence.text).split()
        if len(words) >= MIN_LEAK_WORDS and _is_leak(words, reports, shingles, vocabulary):
            removed[sentence.source] += 1
        else:
            kept.append(sentence)
    return kept, dict(removed)


def _is_leak(words: list[str], reports: list[str], shingles: set[tuple[str, ...]], vocabulary: set[str]) -> bool:
    if len(words) >= SHINGLE:
        if not all(tuple(words[i:i + SHINGLE]) in shingles for i in range(len(words) - SHINGLE + 1)):
            return False
    elif not all(w in vocabulary for w in words):
        return False
    needle = " " + " ".join(words) + " "
    return any(needle in report for report in reports)


def report_paragraphs(signal: str) -> list[tuple[int, int]]:
    """``[start, end)`` ranges of the paragraphs of a raw report text, offsets into ``signal``.

    Mirrors the paragraph rule of ``normalise_text(pdf_lines=False)``: a blank line, a bullet or
    numbered item, or a previous line that ends a sentence (or is short) starts a new paragraph.
    Leading ``title:`` / ``url:`` metadata lines (TRAM .mjson) are skipped.
    """
    paragraphs: list[tuple[int, int]] = []
    current: tuple[int, int] | None = None
    previous = ""
    in_header = True
    offset = 0
    for raw_line in signal.split("\n"):
        line_start, offset = offset, offset + len(raw_line) + 1
        line = raw_line.replace("\r", " ")
        stripped = line.strip()
        if in_header and (not stripped or _METADATA_LINE.match(stripped)):
            continue
        in_header = False
        if not stripped:
            if current:
                paragraphs.append(current)
            current, previous = None, ""
            continue
        start = line_start + (len(line) - len(line.lstrip()))
        end = line_start + len(line.rstrip())
        starts_item = stripped[0] in _BULLETS or bool(_NUMBERED_ITEM.match(stripped))
        if current and (starts_item or previous.endswith((".", ":", "!", "?", ")")) or len(previous) < 60):
            paragraphs.append(current)
            current = None
        current = (current[0], end) if current else (start, end)
        previous = stripped
    if current:
        paragraphs.append(current)
    return paragraphs


def split_report(signal: str) -> list[Sentence]:
    """Sentences of a raw (un-normalised) report text, with offsets into ``signal``.

    Paragraphs from :func:`report_paragraphs` are joined by blank lines (newlines inside a paragraph
    become spaces, so each paragraph keeps its length) and split with
    :func:`extractors.sentences.split_sentences`; offsets are then mapped back to ``signal``.
    A sentence's ``text`` is ``signal[start:end]`` with whitespace collapsed.
    """
    paragraphs = report_paragraphs(signal)
    pieces: list[str] = []
    joined_starts: list[int] = []
    position = 0
    for start, end in paragraphs:
        joined_starts.append(position)
        pieces.append(re.sub(r"[\r\n]", " ", signal[start:end]))
        position += end - start + 2
    sentences: list[Sentence] = []
    for sentence in split_sentences("\n\n".join(pieces)):
        i = bisect.bisect_right(joined_starts, sentence.start) - 1
        shift = paragraphs[i][0] - joined_starts[i]
        start, end = sentence.start + shift, sentence.end + shift
        text = _WS.sub(" ", signal[start:end]).strip()
        sentences.append(Sentence(len(sentences), start, end, text))
    return sentences


def label_report_sentences(
    signal: str, spans: Sequence[tuple[int, int, str]]
) -> list[tuple[Sentence, frozenset[str]]]:
    """Each sentence of ``signal`` with the technique IDs of every span overlapping it by ≥ 1 char."""
    ordered = sorted(spans)
    starts = [s[0] for s in ordered]
    labelled = []
    for sentence in split_report(signal):
        # spans that start before the sentence ends; keep those that end after it starts
        upto = bisect.bisect_left(starts, sentence.end)
        ids = frozenset(tid for s, e, tid in ordered[:upto] if e > sentence.start and s < sentence.end)
        labelled.append((sentence, ids))
    return labelled


def mjson_spans(doc: dict[str, Any]) -> list[tuple[int, int, str]]:
    """``(start, end, technique ID as annotated)`` for every technique span of a MAT JSON document."""
    spans = []
    for aset in doc.get("asets", []):
        match = _TECHNIQUE_SET.search(str(aset.get("type", "")))
        if not match:
            continue
        for annot in aset.get("annots", []):
            spans.append((int(annot[0]), int(annot[1]), match.group(1)))
    return spans


# ---------------------------------------------------------------------------------------- reading


class _Reader:
    """Reads input files under ``data_dir`` and records their sha256."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        self.hashes: dict[str, str] = {}

    def json(self, path: Path) -> Any:
        data = path.read_bytes()
        self.hashes[path.relative_to(self.data_dir).as_posix()] = hashlib.sha256(data).hexdigest()
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        return json.loads(data)


class _Resolver:
    """``catalog.resolve`` with a cache and a count of IDs that resolve to no active technique."""

    def __init__(self, catalog: AttackCatalog) -> None:
        self.catalog = catalog
        self.unknown: Counter[str] = Counter()
        self._cache: dict[str, str | None] = {}

    def __call__(self, cited: str) -> str | None:
        if cited not in self._cache:
            resolved = self.catalog.resolve(cited).technique_id
            self._cache[cited] = resolved if resolved in self.catalog.active else None
        if self._cache[cited] is None:
            self.unknown[cited.strip().upper()] += 1
        return self._cache[cited]

    def labels(self, cited: Iterable[str]) -> tuple[str, ...]:
        return tuple(sorted({t for t in map(self, cited) if t}))


def read_heldout_names(path: Path | None = None) -> list[str]:
    """The held-out .mjson file names (default ``models/heldout_reports.txt``), comments and blanks skipped."""
    path = Path(path) if path else HELDOUT_LIST
    names = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            names.append(line)
    return names


def _load_heldout(reader: _Reader, catalog: AttackCatalog, names: list[str]) -> list[HeldoutReport]:
    resolver = _Resolver(catalog)
    reports = []
    for name in names:
        doc = reader.json(reader.data_dir / "tram" / "mjson" / name)
        labels = frozenset(t for t in (resolver(tid) for _, _, tid in mjson_spans(doc)) if t)
        reports.append(HeldoutReport(name, normalise_text(doc["signal"], pdf_lines=False), labels,
                                     report_url(doc["signal"])))
    return reports


def report_url(signal: str) -> str:
    """A TRAM report's ``url:`` metadata line (where it was published), or ``""``."""
    url = re.search(r"^\s*url:\s*(\S+)", signal, re.MULTILINE)
    return url.group(1) if url else ""


def load_heldout_reports(
    data_dir: Path, catalog: AttackCatalog, names: list[str] | None = None
) -> list[HeldoutReport]:
    """The held-out TRAM reports (default: :func:`read_heldout_names`), in the order named."""
    names = read_heldout_names() if names is None else names
    return _load_heldout(_Reader(data_dir), catalog, names)


def read_attack_objects(data_dir: Path) -> list[dict[str, Any]]:
    """The STIX objects of the ATT&CK bundle under ``data_dir`` (:func:`attack_bundle_path`)."""
    reader = _Reader(Path(data_dir))
    return reader.json(attack_bundle_path(reader.data_dir))["objects"]


def attack_bundle_path(data_dir: Path) -> Path:
    """The newest ``attack/enterprise-attack*.json[.gz]`` by the version numbers in its name."""
    candidates = [
        p for p in (Path(data_dir) / "attack").glob("enterprise-attack*.json*")
        if p.name.endswith((".json", ".json.gz"))
    ]
    if not candidates:
        raise FileNotFoundError(f"no attack/enterprise-attack*.json[.gz] under {data_dir}")
    return max(candidates, key=lambda p: (tuple(int(n) for n in re.findall(r"\d+", p.name)), p.name))


def _procedure_examples(objects: list[dict[str, Any]],
                        resolve: _Resolver) -> Iterator[tuple[dict[str, Any], LabelledSentence]]:
    """Each usable ATT&CK procedure example: its ``uses`` relationship and the labelled sentence it gives."""
    attack_ids = technique_ids(objects)
    for rel in objects:
        if rel.get("type") != "relationship" or rel.get("relationship_type") != "uses":
            continue
        if rel.get("revoked") or rel.get("x_mitre_deprecated") or not rel.get("description"):
            continue
        cited = attack_ids.get(rel.get("target_ref", ""))
        if not cited:
            continue
        labels = resolve.labels([cited])
        text = clean_procedure_text(rel["description"])
        if labels and text:
            yield rel, LabelledSentence(text, labels, "attack-procedure", f"attack:{rel['source_ref']}")


def _attack_descriptions(objects: list[dict[str, Any]], catalog: AttackCatalog) -> list[LabelledSentence]:
    """Each sentence of each active technique's description, labelled with that technique.

    Descriptions define a technique ("Adversaries may abuse …") rather than report it, but they name
    its tools, commands and artefacts in the words reports use; for the techniques with few procedure
    examples they are the only training text there is.
    """
    attack_ids = technique_ids(objects)
    current = {
        technique_id: obj for obj in objects
        if obj.get("type") == "attack-pattern" and not obj.get("revoked") and not obj.get("x_mitre_deprecated")
        and obj.get("description") and (technique_id := attack_ids.get(obj.get("id", ""))) in catalog.active
    }
    out = []
    for technique_id, obj in sorted(current.items()):
        for sentence in split_sentences(clean_procedure_text(obj["description"])):
            if len(sentence.text.split()) >= MIN_DESCRIPTION_WORDS:
                out.append(LabelledSentence(sentence.text, (technique_id,), "attack-description",
                                            f"description:{technique_id}"))
    return out


def _attack_procedures(objects: list[dict[str, Any]], resolve: _Resolver,
                       *withheld_references: set[str]) -> tuple[list[LabelledSentence], list[list[LabelledSentence]]]:
    """Procedure examples as sentences; those citing a reference of ``withheld_references[k]`` come back
    in the k-th withheld list (the first set a relationship cites wins)."""
    out: list[LabelledSentence] = []
    withheld: list[list[LabelledSentence]] = [[] for _ in withheld_references]
    for rel, sentence in _procedure_examples(objects, resolve):
        bucket = next((k for k, refs in enumerate(withheld_references) if cites(rel, refs)), None)
        (out if bucket is None else withheld[bucket]).append(sentence)
    return out, withheld


def url_key(url: str) -> str:
    """A URL reduced for matching: no scheme, ``www.``, Wayback prefix, query, fragment or trailing slash."""
    url = url.strip().lower()
    archived = re.search(r"web\.archive\.org/web/[^/]+/(.+)$", url)
    url = archived.group(1) if archived else url
    url = re.sub(r"^[a-z]+://(?:www\.)?", "", url)
    return re.split(r"[?#]", url)[0].rstrip("/")


def references_to(objects: list[dict[str, Any]], urls: Iterable[str]) -> set[str]:
    """The ATT&CK reference names (``source_name``) whose URL is one of ``urls`` (compared by :func:`url_key`)."""
    keys = {url_key(u) for u in urls if u}
    return {
        ref["source_name"]
        for obj in objects
        for ref in obj.get("external_references", []) or []
        if ref.get("url") and ref.get("source_name") and url_key(ref["url"]) in keys
    }


def near_copies(sentences: Iterable[LabelledSentence], originals: Iterable[LabelledSentence],
                min_jaccard: float = NEAR_COPY_JACCARD) -> set[int]:
    """Indexes of ``sentences`` that are near-copies of an original (word-set Jaccard ≥ ``min_jaccard``).

    TRAM's bootstrap file holds ATT&CK procedure examples with the group or software name cut out
    ("<name> has collected …" becomes "has collected …"), which an exact-text check misses.
    """
    original_sets = [set(words(o.text)) for o in originals]
    index: dict[str, list[int]] = {}
    for k, word_set in enumerate(original_sets):
        for word in word_set:
            index.setdefault(word, []).append(k)
    found: set[int] = set()
    for i, sentence in enumerate(sentences):
        word_set = set(words(sentence.text))
        if len(word_set) < MIN_NEAR_COPY_WORDS:
            continue
        shared: Counter[int] = Counter(k for word in word_set for k in index.get(word, ()))
        if any(n / len(word_set | original_sets[k]) >= min_jaccard for k, n in shared.items()):
            found.add(i)
    return found


def _bootstrap(reader: _Reader, resolve: _Resolver) -> list[LabelledSentence]:
    raw = reader.json(reader.data_dir / "tram" / "bootstrap-training-data.json")
    reports = raw if isinstance(raw, list) else [raw]
    out = []
    index = 0
    for report in reports:
        for item in report.get("sentences", []):
            group = f"bootstrap:{report['name']}" if len(reports) > 1 else f"bootstrap:{index // 50}"
            index += 1
            if item.get("disposition", "accept") != "accept":
                continue
            cited = [m["attack_id"] for m in item.get("mappings", []) if m.get("attack_id")]
            labels = resolve.labels(cited)
            text = clean_procedure_text(item.get("text", ""))
            if labels and text:
                out.append(LabelledSentence(text, labels, "tram-bootstrap", group))
    return out


def _tram2(reader: _Reader, resolve: _Resolver) -> list[LabelledSentence]:
    out = []
    for item in reader.json(reader.data_dir / "tram" / "tram2-single_label.json"):
        labels = resolve.labels([item["label"]])
        text = _WS.sub(" ", item.get("text", "")).strip()
        if labels and text:
            out.append(LabelledSentence(text, labels, "tram2", item.get("doc_title", "")))
    return out


_CITES_TECHNIQUE = re.compile(r"\bT\s?1\d{3}\b")


def sentence_digest(text: str) -> str:
    """A report sentence's fingerprint in ``tram_extra_labels.csv``: sha256 of its whitespace-collapsed text, 12 hex."""
    return hashlib.sha256(" ".join(text.split()).encode()).hexdigest()[:12]


def read_extra_labels(path: Path = EXTRA_LABELS) -> dict[tuple[str, int], tuple[str, tuple[str, ...]]]:
    """``(report, sentence index) -> (sentence digest, technique IDs as annotated)`` from the supplementary
    annotation of TRAM's training reports (none when the file is absent)."""
    if not path.exists():
        return {}
    pairs: dict[tuple[str, int], tuple[str, list[str]]] = {}
    with path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            key = (row["report"], int(row["sentence"]))
            pairs.setdefault(key, (row["sentence_sha256"], []))[1].append(row["technique"])
    return {key: (digest, tuple(ids)) for key, (digest, ids) in pairs.items()}


def _tram_reports(reader: _Reader, resolve: _Resolver, heldout: set[str], urls: dict[str, str] | None = None,
                  extra: dict[tuple[str, int], tuple[str, tuple[str, ...]]] | None = None,
                  extra_counts: Counter[str] | None = None) -> list[LabelledSentence]:
    """Labelled sentences of the TRAM training reports; each report's ``url:`` goes into ``urls``.

    ``extra`` (:func:`read_extra_labels`) adds techniques outside TRAM's list to the sentences it names;
    a pair whose sentence no longer has the recorded digest (another sentence splitter) is not applied.
    """
    extra = extra or {}
    counts = extra_counts if extra_counts is not None else Counter()
    out = []
    for path in sorted((reader.data_dir / "tram" / "mjson").glob("*.mjson")):
        if path.name in heldout:
            continue
        doc = reader.json(path)
        if urls is not None:
            urls[path.name] = report_url(doc["signal"])
        for index, (sentence, cited) in enumerate(label_report_sentences(doc["signal"], mjson_spans(doc))):
            labels = resolve.labels(sorted(cited))
            digest, ids = extra.get((path.name, index), ("", ()))
            if (cited and not labels) or (not cited and _CITES_TECHNIQUE.search(sentence.text)):
                # only unknown techniques: neither a usable positive nor a true negative; or an ATT&CK
                # table row the annotators skipped (~800 lines): not a true negative
                counts["not_used"] += len(ids)
                continue
            added: tuple[str, ...] = ()
            if ids and digest == sentence_digest(sentence.text):
                added = tuple(t for t in resolve.labels(ids) if t not in labels)
                counts["applied"] += len(ids)
            elif ids:
                counts["mismatched"] += len(ids)
            out.append(LabelledSentence(sentence.text, labels, "tram-report", path.name, added))
    return out


def _negatives(reader: _Reader) -> list[LabelledSentence]:
    out = []
    for index, text in enumerate(reader.json(reader.data_dir / "tram" / "negative_data.json")):
        text = _WS.sub(" ", text).strip()
        if any(ch.isalnum() for ch in text):
            out.append(LabelledSentence(text, (), "tram-negative", f"negative:{index // 200}"))
    return out


def _dedupe(sentences: Iterable[LabelledSentence]) -> list[LabelledSentence]:
    """First occurrence of each (source, text, labels); repeats give it their supplementary labels too
    (a heading repeated in a report, marked at one occurrence)."""
    position: dict[tuple[str, str, tuple[str, ...]], int] = {}
    out: list[LabelledSentence] = []
    for s in sentences:
        key = (s.source, s.text, s.labels)
        if key not in position:
            position[key] = len(out)
            out.append(s)
        elif not set(s.extra) <= set(out[position[key]].extra):
            first = out[position[key]]
            out[position[key]] = replace(first, extra=tuple(sorted(set(first.extra) | set(s.extra))))
    return out


def _drop_bootstrap_copies(sentences: list[LabelledSentence], withheld_procedures: list[LabelledSentence],
                           counts: Counter[str]) -> list[LabelledSentence]:
    """``sentences`` without the bootstrap near-copies of withheld procedure examples, counted in ``counts``.

    Only the bootstrap file is searched: other procedure examples carry their own citations.
    """
    bootstrap = [s for s in sentences if s.source == "tram-bootstrap"]
    copies = {id(bootstrap[i]) for i in near_copies(bootstrap, withheld_procedures)}
    if copies:
        counts["tram-bootstrap"] += len(copies)
    return [s for s in sentences if id(s) not in copies]


def _paraphrase_index(sentences: list[LabelledSentence], objects: list[dict[str, Any]], catalog: AttackCatalog,
                      report_urls: dict[str, str]) -> dict[str, frozenset[LabelledSentence]]:
    """Per TRAM training report that ATT&CK cites (its ``url:`` is a reference's URL): the ones of
    ``sentences`` that paraphrase it, i.e. procedure examples citing it and bootstrap near-copies of those."""
    names_by_url: dict[str, set[str]] = {}
    for name, url in report_urls.items():
        if url:
            names_by_url.setdefault(url_key(url), set()).add(name)
    reports_of: dict[str, set[str]] = {}  # ATT&CK reference name -> the training reports it is
    for obj in objects:
        for ref in obj.get("external_references", []) or []:
            if ref.get("url") and ref.get("source_name") and url_key(ref["url"]) in names_by_url:
                reports_of.setdefault(ref["source_name"], set()).update(names_by_url[url_key(ref["url"])])
    citing: dict[str, list[LabelledSentence]] = {}
    for rel, sentence in _procedure_examples(objects, _Resolver(catalog)):
        for ref in rel.get("external_references", []) or []:
            for name in reports_of.get(ref.get("source_name", ""), ()):
                citing.setdefault(name, []).append(sentence)
    procedures = {(s.text, s.labels): s for s in sentences if s.source == "attack-procedure"}
    bootstrap = [s for s in sentences if s.source == "tram-bootstrap"]
    out = {}
    for name, examples in sorted(citing.items()):
        found = {procedures[(p.text, p.labels)] for p in examples if (p.text, p.labels) in procedures}
        found |= {bootstrap[k] for k in near_copies(bootstrap, examples)}
        if found:
            out[name] = frozenset(found)
    return out


def _slug(name: str) -> str:
    return leak_form(name.removesuffix(".mjson").replace("_", " "))


def load_training_data(data_dir: Path, catalog: AttackCatalog, heldout: list[str] | None = None,
                       vendor: list[VendorReference] | None = None,
                       extra_labels: dict[tuple[str, int], tuple[str, tuple[str, ...]]] | None = None) -> TrainingData:
    """All labelled training sentences from ``data_dir``, both evaluation sets withheld and leaks removed.

    ``heldout`` names .mjson files (default :func:`read_heldout_names`; ``[]`` holds nothing out).
    Held-out .mjson files are not used for training. Dropped as leaks, and counted in ``removed_leaks``
    / ``removed_by_source``: TRAM2 sentences whose ``doc_title`` is a held-out report, bootstrap
    sentences identical to one of those (in :func:`leak_form`), ATT&CK procedure examples citing a
    held-out report (its ``url:`` is a reference's URL) and their bootstrap near-copies
    (:func:`near_copies`), and sentences of any source whose text occurs in a held-out report
    (:func:`remove_leaks`). Identical (text, labels) pairs are kept once per source.

    ``vendor`` lists the vendor evaluation set (default ``models/vendor_reports.csv``; ``[]`` withholds
    nothing). Withheld, and counted in ``withheld_vendor``: procedure examples citing one of its ATT&CK
    references, bootstrap near-copies of those (:func:`near_copies`), and sentences of any source whose
    text occurs in one of its reports (read from ``<data_dir>/reports`` when present).

    ``report_paraphrases`` maps each TRAM training report that ATT&CK cites to the sentences that
    paraphrase it (kept for training; cross-validation withholds them while it scores that report).

    ``extra_labels`` (default :func:`read_extra_labels`; ``{}`` adds none) adds techniques outside TRAM's
    list to TRAM training-report sentences (``LabelledSentence.extra``), counted in ``extra_labels``.
    """
    reader = _Reader(Path(data_dir))
    resolve = _Resolver(catalog)
    heldout_names = read_heldout_names() if heldout is None else list(heldout)
    heldout_reports = _load_heldout(reader, catalog, heldout_names)
    vendor = read_vendor_references() if vendor is None else list(vendor)

    objects = reader.json(attack_bundle_path(reader.data_dir))["objects"]
    # ATT&CK cites some held-out reports too: its procedure examples paraphrase them (4 of the 30, ~56 examples)
    heldout_references = references_to(objects, [r.url for r in heldout_reports])
    procedures, (heldout_procedures, withheld_procedures) = _attack_procedures(
        objects, resolve, heldout_references, {v.attack_reference for v in vendor})
    training_urls: dict[str, str] = {}
    extra_counts: Counter[str] = Counter()
    extra = read_extra_labels() if extra_labels is None else extra_labels
    sentences = _dedupe([
        *procedures,
        *_attack_descriptions(objects, catalog),
        *_bootstrap(reader, resolve),
        *_tram2(reader, resolve),
        *_tram_reports(reader, resolve, set(heldout_names), training_urls, extra, extra_counts),
        *_negatives(reader),
    ])

    # TRAM2 sentences annotated in a held-out report, and bootstrap copies of them (the bootstrap file
    # includes the TRAM2 annotations without their document): many are too short for the substring check.
    heldout_slugs = {_slug(name) for name in heldout_names}
    heldout_tram2 = {
        leak_form(s.text) for s in sentences if s.source == "tram2" and leak_form(s.group) in heldout_slugs
    }
    removed: Counter[str] = Counter({"attack-procedure": len(heldout_procedures)} if heldout_procedures else {})
    kept = []
    for s in sentences:
        if (s.source == "tram2" and leak_form(s.group) in heldout_slugs) or (
            s.source == "tram-bootstrap" and leak_form(s.text) in heldout_tram2
        ):
            removed[s.source] += 1
        else:
            kept.append(s)
    kept = _drop_bootstrap_copies(kept, heldout_procedures, removed)
    sentences, leaks = remove_leaks(kept, [r.text for r in heldout_reports])
    removed.update(leaks)

    withheld: Counter[str] = Counter({"attack-procedure": len(withheld_procedures)} if withheld_procedures else {})
    sentences = _drop_bootstrap_copies(sentences, withheld_procedures, withheld)
    vendor_texts, _skipped = read_vendor_texts(reader.data_dir / "reports", vendor)
    sentences, vendor_leaks = remove_leaks(sentences, vendor_texts.values())
    withheld.update(vendor_leaks)

    return TrainingData(
        sentences=sentences,
        removed_leaks=sum(removed.values()),
        removed_by_source=dict(sorted(removed.items())),
        file_hashes=dict(sorted(reader.hashes.items())),
        unknown_ids=dict(resolve.unknown.most_common()),
        withheld_vendor=dict(sorted(withheld.items())),
        report_paraphrases=_paraphrase_index(sentences, objects, catalog, training_urls),
        extra_labels={"pairs": sum(len(ids) for _digest, ids in extra.values()), **dict(sorted(extra_counts.items()))},
    )
