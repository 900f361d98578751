"""Bytes → text: format sniffing, PDF / HTML / text extraction, metadata, failures."""

from __future__ import annotations

import pytest
from conftest import EMPTY_PAGE_PDF, REPORTS, SAMPLES, finishes, needs_shared

from extractors import documents
from extractors.documents import CorruptDocument, NoTextLayer, UnsupportedFormat

SAMPLE_PDF = SAMPLES / "2024-espionage-supply-chain.pdf"
SAMPLE_HTML = SAMPLES / "2025-ransomware-manufacturing.html"
SAMPLE_TXT = SAMPLES / "2026-cloud-bec.txt"

def test_sniff_uses_bytes_not_names() -> None:
    assert documents.sniff(SAMPLE_PDF.read_bytes(), "report.html") == "pdf"
    assert documents.sniff(SAMPLE_HTML.read_bytes(), "report.pdf") == "html"
    assert documents.sniff(b"Plain words about an intrusion.", "x.pdf") == "text"
    with pytest.raises(UnsupportedFormat):
        documents.sniff(b"\x89PNG\r\n\x1a\n\x00\x00\x00", "image.png")


def test_pdf_text_metadata_and_page_furniture() -> None:
    doc = documents.extract(SAMPLE_PDF.read_bytes(), SAMPLE_PDF.name)
    assert doc.kind == "pdf" and doc.n_pages == 6
    assert doc.title and "GLASSWICK" in doc.title
    assert doc.published and doc.published.isoformat() == "2024-06-11"
    assert "T1053 .005" in doc.text or "T1053.005" in doc.text
    # the running header repeats on every page and is dropped; the body stays
    assert doc.text.count("KP-2024-031 | TLP:CLEAR") <= 1
    assert "Page 3 of 6" not in doc.text


def test_html_main_text_without_boilerplate() -> None:
    doc = documents.extract(SAMPLE_HTML.read_bytes(), SAMPLE_HTML.name)
    assert doc.kind == "html"
    assert doc.publisher == "Halyard Threat Labs"
    assert doc.published and doc.published.isoformat() == "2025-03-18"
    assert "Tessellate" in (doc.title or "")
    assert "vssadmin" in doc.text
    lowered = doc.text.lower()
    assert "we use cookies" not in lowered and "accept all" not in lowered  # cookie banner
    assert "unsubscribe at any time" not in lowered  # newsletter box
    assert "cookie settings" not in lowered  # footer links
    assert "dcsync" not in lowered  # only in the sidebar's related posts


def test_html_table_rows_code_lines_and_headings_stay_apart() -> None:
    doc = documents.extract(SAMPLE_HTML.read_bytes(), SAMPLE_HTML.name)
    paragraphs = doc.text.split("\n\n")
    # a timeline table: each row its own paragraph, not one run-on "sentence" of every step
    rows = [p for p in paragraphs if p.startswith("| Day ")]
    assert len(rows) >= 6 and all(row.endswith("|") and row.count("| Day ") == 1 for row in rows)
    # a code block: a long command line is not glued to the command after it
    assert any(p.startswith("schtasks /create /tn \"FontCacheRefreshLogon\"") for p in paragraphs)
    assert not any("/mo 30 /f schtasks" in p for p in paragraphs)
    # the title (a long line without a full stop) is not glued to the first heading
    assert paragraphs[0] == "Tessellate Ransomware: Inside a 96-Hour Intrusion at a Precision-Parts Manufacturer"
    assert paragraphs[1] == "Executive summary"


def test_plain_text_title_and_published_line() -> None:
    doc = documents.extract(SAMPLE_TXT.read_bytes(), SAMPLE_TXT.name)
    assert doc.kind == "text"
    assert doc.title and doc.title.startswith("From Push Bombing")
    assert doc.published and doc.published.isoformat() == "2026-02-09"


def test_pdf_paragraphs_are_rebuilt_from_line_spacing() -> None:
    """A wrapped paragraph is one paragraph (its lines joined), a heading is its own, and the next
    paragraph (a larger gap) starts a new one."""
    paragraphs = documents.extract(SAMPLE_PDF.read_bytes(), SAMPLE_PDF.name).text.split("\n\n")
    assert "1. Executive Summary" in paragraphs
    first = next(p for p in paragraphs if p.startswith("Between November 2023"))
    assert "intrusion set that KPCDC tracks as TIDEGLASS conducted a long-running espionage" in first
    assert first.endswith("automatic updates enabled.")  # and the next paragraph is not glued to it
    assert any(p.startswith("The malicious update was signed") for p in paragraphs)


def test_image_only_pdf_is_no_text_layer() -> None:
    with pytest.raises(NoTextLayer, match="no text layer") as caught:
        documents.extract(EMPTY_PAGE_PDF, "scan.pdf")
    assert caught.value.stage == "extract"


def test_corrupt_and_truncated_pdfs_raise_a_clear_error() -> None:
    with pytest.raises(CorruptDocument):
        documents.extract(b"%PDF-1.4\n garbage without objects", "broken.pdf")
    truncated = SAMPLE_PDF.read_bytes()[:2000]
    with pytest.raises((CorruptDocument, NoTextLayer)):
        documents.extract(truncated, "truncated.pdf")


def test_encrypted_pdfs_are_read_when_they_can_be_and_refused_clearly_when_not() -> None:
    """A PDF that needs a password to open is a clear failure; one with only an owner password (copy or
    print restrictions, common in vendor reports) is read."""
    import io

    from pypdf import PdfWriter

    def encrypted(user_password: str, owner_password: str | None = None) -> bytes:
        writer = PdfWriter(clone_from=SAMPLE_PDF)
        writer.encrypt(user_password, owner_password)
        buffer = io.BytesIO()
        writer.write(buffer)
        return buffer.getvalue()

    with pytest.raises(CorruptDocument, match="encrypted PDF"):
        documents.extract(encrypted("secret"), "locked.pdf")
    restricted = documents.extract(encrypted("", "owner-only"), "restricted.pdf")
    assert restricted.n_pages == 6 and "TIDEGLASS" in restricted.text


def test_pdf_page_limit_is_noted() -> None:
    doc = documents.extract(SAMPLE_PDF.read_bytes(), SAMPLE_PDF.name, max_pages=2)
    assert doc.n_pages == 6
    assert doc.notes == ("only the first 2 of 6 pages were read",)


def test_normalise_joins_wrapped_lines_and_hyphenation() -> None:
    text = documents.normalise_text("The loader uses pro-\ncess hollowing to\nhide itself.\n\n• second item\n• third")
    assert text.split("\n\n") == ["The loader uses process hollowing to hide itself.", "• second item", "• third"]
    # bullets drawn from a Symbol or Wingdings font come out as private-use characters: still list items
    text = documents.normalise_text("These attempts include:\n\uf0b7 Multi-stage malware\n\uf06e Phone calls.")
    assert text.split("\n\n") == ["These attempts include:", "• Multi-stage malware", "• Phone calls."]


def test_a_pdf_paragraph_break_inside_a_sentence_is_joined() -> None:
    """A page, column or figure between "…sends the collected data to" and "the attackers' server." splits
    a sentence; PDF text joins it when prose without a full stop meets a lower-case continuation."""
    text = documents.normalise_text("After two days the implant sends the collected data to\n\nthe attackers' "
                                    "server over HTTPS.\n\nThe second stage follows.")
    assert text.split("\n\n") == ["After two days the implant sends the collected data to the attackers' server "
                                    "over HTTPS.", "The second stage follows."]
    kept_apart = [
        "Commands: rexec Download and execute a binary file\n\ngetpl Load a plugin",  # command table rows
        "Yara rules for the dropper\n\nimport \"pe\"",  # not a sentence's end
        "The configuration holds x = 12 and other values\n\nthen the key.",  # code, not prose
        "Top countries\n\nin Spain, followed by the US.",  # a heading: too short to be a sentence's start
        "The actors sent the collected data to the server.\n\nthen it stopped.",  # the sentence had ended
    ]
    for raw in kept_apart:
        assert "\n\n" in documents.normalise_text(raw), raw
    text_file = "After two days the implant sends the collected data to\n\nthe attackers' server."
    assert "\n\n" in documents.normalise_text(text_file, pdf_lines=False)  # a text file's blank line is meant


@pytest.mark.parametrize(("line", "expected"), [
    ("infra\ufffestructure.", "infrastructure."),
    ("In\ufffeternet", "Internet"),
    ("\u201csekurlsa::logonpass\ufffewords\u201d", "\u201csekurlsa::logonpasswords\u201d"),
    ("HKCU\\Windows\\Current\ufffeVersion\\Run", "HKCU\\Windows\\CurrentVersion\\Run"),
    ("https://www.us\ufffecert.cisa.gov", "https://www.us-cert.cisa.gov"),
    ("mid\ufffeSeptember", "mid-September"),
    ("e\ufffemail", "e-mail"),
    ("UAC\ufffebypassing", "UAC-bypassing"),
    ("(CVE\ufffe2009-4324)", "(CVE-2009-4324)"),
])
def test_pdfium_line_end_hyphens(line, expected) -> None:
    """PDFium joins a word hyphenated at a line end and marks the hyphen U+FFFE; the mark was written as "-",
    so words read "mal-ware", "at-tacks" and paths "Current-Version" (244 times in 23 of the shared PDFs)."""
    assert documents._line_end_hyphens(line) == expected


@needs_shared
def test_real_pdf_sentences_are_whole_across_breaks_and_line_end_hyphens() -> None:
    anunak = documents.extract((REPORTS / "2014_Anunak_APT_against_financial_institutions.pdf").read_bytes()).text
    assert "in-fected" not in anunak and "government agencies were infected" in anunak
    assert "The source code of the bank trojan program Carberp was used" in anunak


def test_long_runs_of_letters_or_dots_are_read_in_linear_time() -> None:
    """A base64 blob of 1 MB (a payload pasted into a report) and a line of 100,000 dots: the hyphenation
    and table-of-contents rules once backtracked through such runs (the blob alone took hours)."""
    output = finishes(
        "from extractors import documents\n"
        "blob = 'QUFBQUFB' * 125_000\n"
        "text = documents.extract_plain_text(('A payload: ' + blob + '\\n\\nThe loader uses pro-\\ncess hollowing.')"
        ".encode()).text\n"
        "print(len(text), text.endswith('process hollowing.'))\n"
        "toc = documents._TOC_ENTRY\n"
        "print(bool(toc.search('.' * 100_000 + '!')), bool(toc.search('x' + '.' * 99 + ' 7')))\n")
    assert output.split() == ["1000047", "True", "False", "True"]


@needs_shared
def test_real_image_only_pdf_from_shared() -> None:
    with pytest.raises(NoTextLayer):
        documents.extract((REPORTS / "2021_GroupIB_Big_Airline_Heist_APT41.pdf").read_bytes())


def test_table_of_contents_entries_are_not_text() -> None:
    pages = [
        "Contents\nOverview ............................ 3\nWatering hole attacks . . . . . . . . . . . 7\n"
        "Appendix ..................................... iv",
        "The attackers compromised websites that energy staff visit... and served an exploit kit.\n"
        "Wait for it.....\nThe loader then ran.",
    ]
    text = documents._drop_page_furniture(pages)
    assert "Watering hole" not in text and "Overview" not in text and "Appendix" not in text
    assert "served an exploit kit" in text and "The loader then ran." in text
    assert "Wait for it....." in text  # five dots and no page number: prose


@needs_shared
def test_real_pdf_words_and_paths_stay_whole() -> None:
    """CISA's technique table and Kaspersky's Korean path: words are not split ("id entify"), paths keep
    their backslashes, glyphs without Unicode are not written as "(cid:N)"."""
    cisa = documents.extract((REPORTS / "2020_CISA_AA20-302A.pdf").read_bytes()).text
    assert "Ryuk has called GetIpNetTable in attempt to identify all mounted drives" in cisa
    assert "C:\\Users\\Public" in cisa and "System Network Configuration Discovery [T1016]" in cisa
    kimsuky = documents.extract((REPORTS / "2013_Kimsuky.pdf").read_bytes()).text
    assert "(cid:" not in kimsuky and "Bulgarian e-mail command-and-control" in kimsuky


@needs_shared
def test_real_report_contents_pages_are_dropped() -> None:
    doc = documents.extract((REPORTS / "2015_volatile_cedar_technical_report.pdf").read_bytes())
    assert "EXECUTIVE SUMMARY" in doc.text.upper()
    assert "......" not in doc.text


@needs_shared
def test_real_cisa_html_keeps_the_technique_table() -> None:
    doc = documents.extract((REPORTS / "2020_CISA_AA20-302A.html").read_bytes())
    assert doc.published and doc.published.year == 2020
    assert "T1566" in doc.text or "T1059" in doc.text


@pytest.mark.parametrize(("title", "plausible"), [
    ("Microsoft Word - Aurora_report_LONG_DRAFT.docx", False),
    ("2011_wp_dissecting_lurid_apt.pdf", False),
    ("INCIBE-CERT_NOBELIUM_ANALYSIS_STUDY_2022", False),
    ("Untitled document", False),
    ("Secrets of the Comfoo Masters", True),
])
def test_pdf_metadata_titles_that_are_file_names_are_rejected(title, plausible) -> None:
    assert documents._plausible_title(title) is plausible


def test_first_heading_skips_banners_and_dates() -> None:
    text = "TLP:WHITE\n\nSeptember 2022\n\nOperation Glasswick Technical Analysis\n\nBody text follows here."
    assert documents._first_heading(text) == "Operation Glasswick Technical Analysis"


# The text rules as they stand: extracting a document differently than the reports loaded before means a
# new EXTRACTION_VERSION, so that ingest reads those again (then update this digest).
EXTRACTION_RULES = ("text-2", "fcccb464858d")


def test_a_change_to_the_extraction_rules_comes_with_a_new_version() -> None:
    import hashlib
    from pathlib import Path

    root = Path(documents.__file__).parent
    digest = hashlib.sha256((root / "documents.py").read_bytes() + (root / "sentences.py").read_bytes()).hexdigest()
    assert (documents.EXTRACTION_VERSION, digest[:12]) == EXTRACTION_RULES, (
        "extractors/documents.py or sentences.py changed: bump EXTRACTION_VERSION (loaded reports are read again)")
