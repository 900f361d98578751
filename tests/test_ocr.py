"""OCR of image-only PDFs: Tesseract reads them, a missing Tesseract says so, the next run retries it."""

from __future__ import annotations

import io
import os
import re
import shutil

import pypdfium2 as pdfium
import pytest
from conftest import EMPTY_PAGE_PDF, REPORTS, SAMPLES, needs_shared

import warehouse.db as wh
from breachminer.catalog import AttackCatalog
from breachminer.settings import OcrOptions
from extractors import documents
from extractors.documents import NoTextLayer, OcrFailed
from extractors.ocr import MAX_SIDE_PIXELS, render_scale
from extractors.pipeline import DocumentAnalyzer
from flows.ingest import run_ingest

SAMPLE_PDF = SAMPLES / "2024-espionage-supply-chain.pdf"

# .ci/run installs Tesseract and sets BREACHMINER_REQUIRE_TESSERACT=1, so there these tests run or fail, never skip
needs_tesseract = pytest.mark.skipif(
    shutil.which("tesseract") is None and not os.environ.get("BREACHMINER_REQUIRE_TESSERACT"),
    reason="needs the Tesseract OCR program (apt-get install tesseract-ocr); not installed here",
)


def image_only_pdf(source: bytes, pages: list[int], *, text_pages: tuple[int, ...] = (), dpi: int = 150) -> bytes:
    """A PDF of the source's ``text_pages`` as they are, then pictures of its ``pages`` (no text layer)."""
    original = pdfium.PdfDocument(source)
    built = pdfium.PdfDocument.new()
    if text_pages:
        built.import_pages(original, list(text_pages))
    for index in pages:
        width, height = original[index].get_size()
        page = built.new_page(width, height)
        image = pdfium.PdfImage.new(built)
        image.set_bitmap(original[index].render(scale=dpi / 72, grayscale=True))
        image.set_matrix(pdfium.PdfMatrix().scale(width, height))
        page.insert_obj(image)
        page.gen_content()
    buffer = io.BytesIO()
    built.save(buffer)
    return buffer.getvalue()


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


@pytest.fixture(scope="module")
def scanned_sample() -> bytes:
    data = image_only_pdf(SAMPLE_PDF.read_bytes(), [0, 1])
    picture = pdfium.PdfDocument(data)
    assert [picture[i].get_textpage().get_text_range().strip() for i in range(len(picture))] == ["", ""]
    return data


@needs_tesseract
def test_an_image_only_pdf_is_read_by_ocr_and_tagged_like_its_text(scanned_sample) -> None:
    by_ocr = documents.extract(scanned_sample, "scan.pdf", ocr=OcrOptions())
    by_text = documents.extract(SAMPLE_PDF.read_bytes(), SAMPLE_PDF.name, max_pages=2)
    assert by_ocr.notes == ("text of 2 of 2 pages read by OCR (Tesseract, 200 dpi)",)
    assert by_ocr.title == "Operation GLASSWICK: Trojanised ArchivaDesk Update Used to Spy on the Valdorian " \
                           "Ministry of Public Works"
    ocr_words, text_words = words(by_ocr.text), set(words(by_text.text))
    assert sum(word in text_words for word in ocr_words) >= 0.97 * len(ocr_words)
    assert len(ocr_words) >= 0.95 * len(words(by_text.text))
    assert "DLL side-loading (T1574.002)" in by_ocr.text

    analyzer = DocumentAnalyzer(AttackCatalog.load(), ocr=OcrOptions())
    from_scan = analyzer.analyse_bytes(scanned_sample, "scan.pdf")
    from_text = DocumentAnalyzer(AttackCatalog.load(), max_pages=2).analyse_bytes(SAMPLE_PDF.read_bytes())
    assert {s.technique_id for s in from_scan.sightings} == {s.technique_id for s in from_text.sightings}
    assert "T1574.001" in {s.technique_id for s in from_scan.sightings}  # the cited T1574.002, revoked in v18


def test_without_tesseract_or_with_ocr_off_the_failure_says_why(scanned_sample) -> None:
    with pytest.raises(NoTextLayer, match=r"OCR needs Tesseract \('/nonexistent/tesseract' not found: "
                                          r"apt-get install tesseract-ocr\), and the next run retries it"):
        documents.extract(scanned_sample, "scan.pdf", ocr=OcrOptions(tesseract="/nonexistent/tesseract"))
    with pytest.raises(NoTextLayer, match=r"OCR is off \(BREACHMINER_OCR=0\)"):
        documents.extract(scanned_sample, "scan.pdf", ocr=OcrOptions(enabled=False))
    with pytest.raises(NoTextLayer, match="OCR is off"):
        documents.extract(scanned_sample, "scan.pdf")  # the library reads no pictures unless asked


@needs_shared
@needs_tesseract
def test_the_real_image_only_report_is_read() -> None:
    analysis = DocumentAnalyzer(AttackCatalog.load(), ocr=OcrOptions()).analyse_bytes(
        (REPORTS / "2021_GroupIB_Big_Airline_Heist_APT41.pdf").read_bytes(), "2021_GroupIB_Big_Airline_Heist_APT41.pdf")
    assert analysis.document.notes == ("text of 2 of 2 pages read by OCR (Tesseract, 200 dpi)",)
    assert "Air India was the first carrier to reveal more details about its security breach." in analysis.document.text
    assert "APT41" in analysis.document.text
    assert "T1195.002" in {s.technique_id for s in analysis.sightings}  # the IT service provider's compromise


@needs_tesseract
def test_a_tesseract_failure_is_an_ocr_stage_error(scanned_sample) -> None:
    with pytest.raises(OcrFailed, match=r"OCR of page 1: Tesseract exited with status \d+") as caught:
        documents.extract(scanned_sample, "scan.pdf", ocr=OcrOptions(language="no-such-language"))
    assert caught.value.stage == "ocr"


@needs_tesseract
def test_a_poster_sized_scan_is_read_at_a_bounded_size() -> None:
    original = pdfium.PdfDocument(SAMPLE_PDF.read_bytes())
    width, height = original[0].get_size()
    poster = pdfium.PdfDocument.new()
    page = poster.new_page(12 * width, 12 * height)  # 102 x 132 inches: 20,400 x 26,400 pixels at 200 dpi
    image = pdfium.PdfImage.new(poster)
    image.set_bitmap(original[0].render(scale=150 / 72, grayscale=True))
    image.set_matrix(pdfium.PdfMatrix().scale(12 * width, 12 * height))
    page.insert_obj(image)
    page.gen_content()
    assert max(12 * width, 12 * height) * render_scale((12 * width, 12 * height), 200) <= MAX_SIDE_PIXELS
    assert render_scale((width, height), 200) == 200 / 72  # a letter page keeps its 200 dpi
    buffer = io.BytesIO()
    poster.save(buffer)
    document = documents.extract(buffer.getvalue(), "poster.pdf", ocr=OcrOptions())
    assert "Between November 2023 and April 2024 a state-sponsored intrusion set" in document.text


@needs_tesseract
def test_a_blank_scan_is_still_no_text_layer() -> None:
    with pytest.raises(NoTextLayer, match=r"OCR of 1 page\(s\) found no more"):
        documents.extract(EMPTY_PAGE_PDF, "blank.pdf", ocr=OcrOptions())


@needs_tesseract
def test_a_few_picture_pages_in_a_text_report_are_not_ocrd() -> None:
    source = SAMPLE_PDF.read_bytes()
    mixed = image_only_pdf(source, [3], text_pages=(0, 1, 2))  # three text pages, then a picture of page 4
    document = documents.extract(mixed, "mixed.pdf", ocr=OcrOptions())
    assert document.notes == ()
    assert document.text == documents.extract(source, max_pages=3).text


@needs_tesseract
@pytest.mark.usefixtures("prefect_harness")
@pytest.mark.parametrize(("setting", "says"), [
    ("BREACHMINER_TESSERACT", "apt-get install tesseract-ocr"),  # Tesseract missing, then installed
    ("BREACHMINER_OCR", "OCR is off (BREACHMINER_OCR=0)"),       # OCR off, then on
])
def test_ingest_records_a_scan_it_cannot_read_and_a_later_run_with_tesseract_loads_it(
        tmp_path, db_file, monkeypatch, scanned_sample, setting, says) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "scan.pdf").write_bytes(scanned_sample)
    monkeypatch.setenv("BREACHMINER_RETRY_DELAY", "3600")
    monkeypatch.setenv(setting, str(tmp_path / "no-tesseract-here") if setting == "BREACHMINER_TESSERACT" else "0")
    first = run_ingest([str(folder)], str(db_file), workers=1)
    assert (first["new"], first["failed"]) == (0, 1)
    with wh.connect(db_file, read_only=True) as con:
        stage, error_class, message = con.execute("SELECT stage, error_class, message FROM failures").fetchone()
    assert (stage, error_class) == ("extract", "NoTextLayer")
    assert says in message
    assert run_ingest([str(folder)], str(db_file), workers=1)["deferred"] == 1  # unchanged setting: backoff holds

    monkeypatch.delenv(setting)  # the refusal is lifted: retried at once, without --retry-failed
    second = run_ingest([str(folder)], str(db_file), workers=1)
    assert (second["new"], second["failed"], second["deferred"]) == (1, 0, 0)
    with wh.connect(db_file, read_only=True) as con:
        notes, kind = con.execute("SELECT notes, kind FROM reports").fetchone()
        resolved = con.execute("SELECT resolved_at IS NOT NULL FROM failures").fetchone()[0]
        sighted = {r[0] for r in con.execute("SELECT technique_id FROM sightings").fetchall()}
    assert (notes, kind, resolved) == ("text of 2 of 2 pages read by OCR (Tesseract, 200 dpi)", "pdf", True)
    assert "T1574.001" in sighted
    assert run_ingest([str(folder)], str(db_file), workers=1)["unchanged"] == 1  # and it is not read again
