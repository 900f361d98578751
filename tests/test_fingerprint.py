"""Report identity: exact text hash and PDF/HTML twins."""

from __future__ import annotations

from conftest import REPORTS, SAMPLES, needs_shared

from extractors import documents, fingerprint


def test_text_hash_ignores_case_whitespace_and_punctuation() -> None:
    assert fingerprint.text_sha256("The  Loader, ran!") == fingerprint.text_sha256("the loader ran")


def test_twins_found_and_unrelated_reports_kept_apart() -> None:
    texts = [documents.extract(p.read_bytes(), p.name).text for p in sorted(SAMPLES.glob("*.txt"))]
    a, b = texts[0], texts[1]
    edited = a.replace("\n\n", "\n\nPage furniture. ", 5) + "\n\nAppendix with a few extra lines."
    known = {"a": fingerprint.minhash(a), "b": fingerprint.minhash(b)}
    assert fingerprint.find_twin(fingerprint.minhash(edited), known)[0] == "a"
    assert fingerprint.jaccard(known["a"], known["b"]) < 0.1
    assert fingerprint.find_twin(fingerprint.minhash("completely different words " * 50), known) is None


@needs_shared
def test_cisa_pdf_and_html_are_twins() -> None:
    pdf = documents.extract((REPORTS / "2020_CISA_AA20-302A.pdf").read_bytes()).text
    html = documents.extract((REPORTS / "2020_CISA_AA20-302A.html").read_bytes()).text
    assert fingerprint.text_sha256(pdf) != fingerprint.text_sha256(html)
    assert fingerprint.jaccard(fingerprint.minhash(pdf), fingerprint.minhash(html)) >= fingerprint.TWIN_JACCARD
