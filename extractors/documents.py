"""Bytes → text: sniff the format, extract PDF / HTML / plain text, and normalise the result.

PDF text comes from PDFium (pypdfium2), or from OCR (``extractors.ocr``) for PDFs without a text layer,
HTML main text from trafilatura (menus, cookie banners and footers dropped), plain text is decoded as UTF-8
(Latin-1 fallback). Title, published date and publisher come from document metadata when present.

The normalised text is paragraphs separated by one blank line, lines inside a paragraph joined
with spaces, words hyphenated across line breaks re-joined, and page furniture (running headers,
footers, page numbers) dropped. Sentence offsets refer to this text.

``EXTRACTION_VERSION`` names these rules (with the sentence splitter's); each report stores the version
its text came from, so an ingest after an upgrade reads its documents again (``flows.ingest``). A change
to this module or ``extractors/sentences.py`` comes with a new version (``tests/test_documents.py`` pins
the pair).
"""

from __future__ import annotations

import ctypes
import re
import statistics
from collections import Counter
from datetime import date
from itertools import pairwise
from typing import Any

from breachminer.records import DocumentText
from breachminer.settings import OcrOptions
from extractors.ocr import OcrError, ocr_page


class ExtractionError(Exception):
    """A document could not be turned into text. ``stage`` names the pipeline step."""

    stage = "extract"

    def __init__(self, message: str, *, stage: str | None = None) -> None:
        super().__init__(message)
        if stage:
            self.stage = stage

    @property
    def error_class(self) -> str:
        return type(self).__name__


class NoTextLayer(ExtractionError):
    """A PDF whose pages hold images only (scanned or printed-to-image) and OCR could not read it."""


class OcrFailed(ExtractionError):
    """Tesseract failed on a page of a PDF without a text layer."""

    stage = "ocr"


class UnsupportedFormat(ExtractionError):
    """Bytes that are neither PDF, HTML nor text."""


class CorruptDocument(ExtractionError):
    """A document the parser cannot read (truncated, malformed, encrypted)."""


class DocumentTooLarge(ExtractionError):
    """A document above the configured size limit."""

    stage = "read"


EXTRACTION_VERSION = "text-2"  # text-2: PDF sentences joined across page breaks, PDFium's line-end hyphens
MIN_TEXT_CHARS = 200  # below this, a document has no usable text
_BULLETS = "•◦▪●■–·*-"
# A table-of-contents entry: a dot leader ending the line, then a page number ("Timeline ..... 5"), or a long
# leader alone ("Limitations . . . . . . . ." whose number sits on the next line). Prose "Wait....." is kept.
# The leader is matched from its first dot and possessively: tried from every dot of a long run of dots, it
# took time quadratic in the run's length.
_TOC_ENTRY = re.compile(r"(?<!\.)(?<!\.\s)(?:(?:\.\s?){5,}+\s*(?:\d{1,4}|[ivxlc]{1,6})\s*$|(?:\.\s?){8,}+\s*$)",
                        re.IGNORECASE)
_PAGE_NUMBER = re.compile(r"^(?:page\s*)?\d{1,4}(?:\s*(?:of|/)\s*\d{1,4})?$", re.IGNORECASE)


def sniff(data: bytes, name: str = "") -> str:
    """The document kind from its leading bytes ("pdf", "html", "text"); the name only breaks ties."""
    head = data[:2048].lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"%PDF-") or b"%PDF-" in data[:1024]:
        return "pdf"
    lowered = head[:1024].lower()
    if lowered.startswith((b"<!doctype html", b"<html", b"<?xml")) or b"<html" in lowered or (
        b"<head" in lowered or b"<body" in lowered
    ):
        return "html"
    if b"\x00" in data[:4096]:
        raise UnsupportedFormat(f"{name or 'document'}: binary data that is neither PDF nor HTML")
    return "text"


def extract(data: bytes, name: str = "", *, max_pages: int = 500, ocr: OcrOptions | None = None) -> DocumentText:
    """Extract normalised text and metadata from a document's bytes (``ocr``: how image-only PDF pages are read)."""
    kind = sniff(data, name)
    if kind == "pdf":
        return extract_pdf(data, max_pages=max_pages, ocr=ocr)
    if kind == "html":
        return extract_html(data)
    return extract_plain_text(data)


# ----------------------------------------------------------------------------------------- PDF


def _pdf_date(value: object) -> date | None:
    if isinstance(value, bytes):
        value = value.decode("latin-1", "ignore")
    match = re.search(r"(\d{4})(\d{2})(\d{2})", str(value or ""))
    if not match:
        return None
    try:
        parsed = date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
    except ValueError:
        return None
    return parsed if 1990 <= parsed.year <= 2100 else None


def preload_parsers() -> None:
    """Import the PDF and HTML parsers now rather than on first use (see ``DocumentAnalyzer.warm_up``)."""
    import pypdfium2
    import pypdfium2.raw  # noqa: F401
    import trafilatura  # noqa: F401


def extract_pdf(data: bytes, *, max_pages: int = 500, ocr: OcrOptions | None = None) -> DocumentText:
    """PDF text via PDFium (pypdfium2), page by page, with running headers and footers removed.

    PDFium gives lines in reading order but no paragraph breaks; :func:`_pdfium_page_text` starts a
    paragraph at a vertical gap. On the 22 text PDFs of ``../shared/data/reports`` this reads about 10×
    faster than pdfminer.six, the previous engine, and breaks fewer sentences mid-way (pdfminer's layout
    analysis put a blank line after many wrapped lines, and wrote glyphs without Unicode as "(cid:N)"):
    13.7 % of sentences start in lower case against 21.6 %.

    When at least half the pages read have no text layer (an image-only or scanned PDF), those pages are
    read by OCR (:mod:`extractors.ocr`) if ``ocr`` allows it and Tesseract is installed; a few image pages
    in a text report (a cover, a diagram) are left alone.
    """
    import pypdfium2 as pdfium

    notes: list[str] = []
    try:
        pdf = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        if "password" in str(exc).lower():
            raise CorruptDocument(f"encrypted PDF: {exc}") from exc
        raise CorruptDocument(f"unreadable PDF (PdfiumError: {exc})") from exc
    ocr_outcome = "too little text to be a report"
    try:
        n_pages = len(pdf)
        pages = [_pdfium_page_text(pdf[index]) for index in range(min(n_pages, max_pages))]
        info = pdf.get_metadata_dict(skip_empty=True)
        textless = [index for index, page in enumerate(pages) if len("".join(page.split())) < TEXTLESS_PAGE_CHARS]
        if textless and 2 * len(textless) >= len(pages):
            ocr_outcome = _ocr_pages(pdf, pages, textless, ocr or OcrOptions(enabled=False), notes)
    except pdfium.PdfiumError as exc:
        raise CorruptDocument(f"unreadable PDF (PdfiumError: {exc})") from exc
    finally:
        pdf.close()
    if n_pages == 0:
        raise CorruptDocument("PDF has no pages")
    if n_pages > max_pages:
        notes.append(f"only the first {max_pages} of {n_pages} pages were read")
    text = normalise_text(_drop_page_furniture(pages))
    if len(text) < MIN_TEXT_CHARS:
        raise NoTextLayer(f"no text layer: {n_pages} page(s) gave {len(text)} characters of text ({ocr_outcome})")
    metadata_title = (info.get("Title") or "").strip().strip("\x00") or None
    return DocumentText(
        kind="pdf",
        text=text,
        title=metadata_title if _plausible_title(metadata_title) else _first_heading(text),
        published=_pdf_date(info.get("CreationDate")) or _pdf_date(info.get("ModDate")),
        publisher=None,
        n_pages=n_pages,
        notes=tuple(notes),
    )


TEXTLESS_PAGE_CHARS = 40  # a page whose text layer holds fewer non-space characters has none worth reading


def _ocr_pages(pdf: Any, pages: list[str], textless: list[int], ocr: OcrOptions, notes: list[str]) -> str:
    """Replace the text of ``textless`` pages by their OCR, in place; returns what happened, for an error."""
    if not ocr.enabled:
        return "image-only PDF; OCR is off (BREACHMINER_OCR=0)"
    command = ocr.command()
    if command is None:
        return (f"image-only PDF; OCR needs Tesseract ({ocr.tesseract!r} not found: apt-get install tesseract-ocr), "
                "and the next run retries it")
    chosen = textless[:ocr.max_pages]
    for index in chosen:
        try:
            pages[index] = ocr_page(pdf[index], ocr, command)
        except OcrError as exc:
            raise OcrFailed(f"OCR of page {index + 1}: {exc}") from exc
    notes.append(f"text of {len(chosen)} of {len(pages)} pages read by OCR (Tesseract, {ocr.dpi} dpi)")
    if len(textless) > len(chosen):
        notes.append(f"{len(textless) - len(chosen)} more pages without a text layer were not OCR'd "
                     f"(BREACHMINER_OCR_MAX_PAGES={ocr.max_pages})")
    return f"image-only PDF; OCR of {len(chosen)} page(s) found no more"


PARAGRAPH_GAP = 1.25  # a drop to the next line this many times the page's usual line spacing starts a paragraph


def _pdfium_page_text(page: Any) -> str:
    """One page's text: PDFium's lines, with a blank line between paragraphs.

    PDFium returns a page's text in reading order, one line per visual line, but no paragraph breaks.
    Each line's baseline comes from its first character's origin; the page's usual line spacing is the
    median drop from one line to the next. A paragraph starts where the drop exceeds ``PARAGRAPH_GAP``
    times that, or where the text goes back up (a new column, a text box, a table cell).
    """
    import pypdfium2.raw as pdfium_raw

    textpage = page.get_textpage()
    try:
        text = textpage.get_text_range()  # one character per text-page index, CR LF between lines
        x, y = ctypes.c_double(), ctypes.c_double()
        lines: list[tuple[float, str]] = []
        offset = 0
        for line in text.split("\r\n"):
            if line.strip():
                first = offset + len(line) - len(line.lstrip())
                pdfium_raw.FPDFText_GetCharOrigin(textpage.raw, first, x, y)
                lines.append((y.value, _line_end_hyphens(line.strip())))
            offset += len(line) + 2
    finally:
        textpage.close()
    if not lines:
        return ""
    drops = [above[0] - below[0] for above, below in pairwise(lines) if above[0] - below[0] > 0.5]
    spacing = statistics.median(drops) if drops else 12.0
    parts = [lines[0][1]]
    for above, below in pairwise(lines):
        drop = above[0] - below[0]  # PDF y grows upward
        new_paragraph = drop > PARAGRAPH_GAP * spacing or drop < -0.5 * spacing
        parts.append(("\n\n" if new_paragraph else "\n") + below[1])
    return "".join(parts)


_LINE_END_HYPHEN = re.compile("\ufffe")


def _line_end_hyphens(line: str) -> str:
    """PDFium joins a word hyphenated at the end of a visual line and marks the hyphen U+FFFE
    ("infra\ufffestructure"). The hyphen goes, as ``_HYPHEN_BREAK`` decides for text files, between a
    lower-case letter (after another letter) and two lower-case letters, and inside a Windows path
    ("Current\ufffeVersion\\Run"); it stays in a URL or file name, after a capital ("UAC-bypassing", "e-mail",
    "mid-September") and before a digit ("CVE-2009-4324")."""
    def keep_or_drop(match: re.Match[str]) -> str:
        start = match.start()
        before = line[max(0, start - 200):start]  # bounded: a line of many marks stays linear
        token = before.rsplit(None, 1)[-1] if before.strip() else ""
        after = line[start + 1:start + 3]
        if "\\" in token:
            return ""
        if "/" in token or "." in token:
            return "-"
        if len(token) >= 2 and token[-2:].isalpha() and token[-1].islower() and len(after) == 2 and after.isalpha() \
                and after.islower():
            return ""
        return "-"
    return _LINE_END_HYPHEN.sub(keep_or_drop, line)


_BAD_TITLE = re.compile(
    r"^(?:microsoft (?:word|powerpoint)|untitled|document\d*$|slide \d|\S+\.(?:pdf|docx?|indd|pptx?)$)"
    r"|\.(?:pdf|docx?|indd)$",
    re.IGNORECASE,
)


_DATE_LINE = re.compile(
    r"^(?:updated\s+)?(?:\d{1,2}\s+)?(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?\s+(?:\d{1,2},?\s+)?\d{4}$",
    re.IGNORECASE,
)


def _plausible_title(title: str | None) -> bool:
    """PDF Info titles are often a word processor's file name ("Microsoft Word - draft.docx")."""
    return bool(title) and len(title) >= 4 and " " in title.strip() and not _BAD_TITLE.search(title.strip())


def _first_heading(text: str) -> str | None:
    """The first short line of the first page that reads like a title (letters, 3-20 words)."""
    for paragraph in text.split("\n\n")[:15]:
        words = paragraph.split()
        letters = sum(ch.isalpha() for ch in paragraph)
        if 2 <= len(words) <= 20 and letters >= 0.6 * len(paragraph) and not paragraph.lower().startswith(
            ("tlp", "page ", "copyright", "©")
        ) and not _DATE_LINE.match(paragraph):
            return paragraph[:200]
    return None


def _drop_page_furniture(pages: list[str]) -> str:
    """Join pages, dropping page numbers, table-of-contents entries and short lines repeated on most pages
    (headers, footers): none of them is prose a sighting could rest on."""
    def key(line: str) -> str:
        return re.sub(r"\d+", "#", line.strip().lower())

    counts: Counter[str] = Counter()
    for page in pages:
        counts.update({key(line) for line in page.splitlines() if 0 < len(line.strip()) <= 80})
    threshold = max(3, len(pages) // 2)
    repeated = {k for k, n in counts.items() if n >= threshold}
    kept_pages = []
    for page in pages:
        lines = [
            line
            for line in page.splitlines()
            if not (line.strip() and (key(line) in repeated or _PAGE_NUMBER.match(line.strip())
                                      or _TOC_ENTRY.search(line)))
        ]
        kept_pages.append("\n".join(lines))
    return "\n\n".join(kept_pages)


# ---------------------------------------------------------------------------------------- HTML


def extract_html(data: bytes) -> DocumentText:
    """Main text of an HTML page with trafilatura; tables kept, boilerplate dropped."""
    import trafilatura

    html = _decode(data)
    text = trafilatura.extract(
        html,
        include_tables=True,
        include_comments=False,
        include_links=False,
        favor_recall=True,
        output_format="txt",
    )
    metadata = trafilatura.extract_metadata(html)
    text = normalise_text(text or "", pdf_lines=False, html_lines=True)
    if len(text) < MIN_TEXT_CHARS:
        raise ExtractionError(f"HTML page has no main text ({len(text)} characters after boilerplate removal)")
    published = None
    if metadata is not None and metadata.date:
        try:
            published = date.fromisoformat(str(metadata.date)[:10])
        except ValueError:
            published = None
    return DocumentText(
        kind="html",
        text=text,
        title=(metadata.title if metadata is not None else None) or None,
        published=published,
        publisher=(metadata.sitename if metadata is not None else None) or None,
        n_pages=None,
    )


# ---------------------------------------------------------------------------------- plain text

_PUBLISHED_LINE = re.compile(r"^(?:published|date)\s*:\s*(\d{4}-\d{2}-\d{2})", re.IGNORECASE | re.MULTILINE)


def extract_plain_text(data: bytes) -> DocumentText:
    """A text file: the first non-empty line is its title; a ``Published: YYYY-MM-DD`` line its date."""
    raw = _decode(data)
    text = normalise_text(raw, pdf_lines=False)
    if len(text) < MIN_TEXT_CHARS:
        raise ExtractionError(f"text document too short to analyse ({len(text)} characters)")
    title = next((line.strip() for line in raw.splitlines() if line.strip()), None)
    match = _PUBLISHED_LINE.search(raw[:2000])
    published = None
    if match:
        try:
            published = date.fromisoformat(match.group(1))
        except ValueError:
            published = None
    return DocumentText(kind="text", text=text, title=title[:300] if title else None, published=published)


def _decode(data: bytes) -> str:
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1")


# ------------------------------------------------------------------------------- normalisation

# a word hyphenated at a line break ("persis-\ntence"); lookarounds, not a captured word: a captured
# ``[A-Za-z]{2,}`` backtracks through every long letter run (a base64 blob), quadratic in its length
_HYPHEN_BREAK = re.compile(r"(?<=[A-Za-z]{2})-\n(?=[a-z]{2})")
_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200b]+")
_SYMBOL_FONT = re.compile(r"[\uf000-\uf0ff]")  # Symbol/Wingdings glyphs (bullets, arrows) in the private-use area


def normalise_text(raw: str, *, pdf_lines: bool = True, html_lines: bool = False) -> str:
    """Paragraphs separated by one blank line; inside a paragraph, lines joined with spaces.

    With ``pdf_lines`` (hard-wrapped PDF text) a single newline is a wrapped line; otherwise
    (text files) each line is its own paragraph unless it is hard-wrapped prose. With ``html_lines``
    (trafilatura's text: a line per block element, table row or line of a code block) every line is its
    own paragraph: joining long unpunctuated lines, right for hard-wrapped text files, glued table rows,
    headings and command lines to what follows them.
    """
    raw = raw.replace("\r\n", "\n").replace("\r", "\n").replace("\f", "\n\n")
    raw = raw.replace("\u00ad", "").replace("\ufb01", "fi").replace("\ufb02", "fl")
    raw = _SYMBOL_FONT.sub("•", raw)
    raw = _HYPHEN_BREAK.sub("", raw)
    paragraphs: list[str] = []
    for block in re.split(r"\n\s*\n", raw):
        in_block: list[str] = []
        current: list[str] = []
        for line in block.split("\n"):
            line = _SPACES.sub(" ", line).strip()
            if not line:
                continue
            starts_item = line[0] in _BULLETS or bool(re.match(r"^\d{1,2}[.)]\s", line))
            if current and (starts_item or html_lines or (not pdf_lines and _ends_sentence(current[-1]))):
                in_block.append(" ".join(current))
                current = []
            current.append(line)
        if current:
            in_block.append(" ".join(current))
        if in_block and paragraphs and pdf_lines and _continues(paragraphs[-1], in_block[0]):
            paragraphs[-1] += " " + in_block.pop(0)
        paragraphs.extend(in_block)
    return "\n\n".join(p for p in paragraphs if p)


_OPEN_END = re.compile(r"[A-Za-z,]$")
_LOWER_START = re.compile(r"^[a-z][a-z'’-]*(?:[\s,.:;]|$)")


_CLOSED_END = re.compile(r"[.!?:][\"”’)]?$")


def _continues(previous: str, following: str) -> bool:
    """Whether a PDF paragraph break falls inside a sentence: a page, column or figure between "sent
    to the" and "attackers' server". The paragraph before must be prose (six words or more, mostly
    words, no code punctuation) ending without a full stop; the next must start with a lower-case word
    and end a sentence (or run on for 20 words), which rows of a command table ("getpl Load a plugin")
    do not."""
    if not (_OPEN_END.search(previous) and _LOWER_START.match(following)):
        return False
    if not (_CLOSED_END.search(following) or len(following.split()) >= 20):
        return False
    words = previous.split()
    if len(words) < 6 or any(mark in previous for mark in "={}<>|"):
        return False
    return sum(word.isalpha() for word in words) >= 0.6 * len(words)


def _ends_sentence(line: str) -> bool:
    return line.endswith((".", ":", "!", "?", ")")) or len(line) < 60
