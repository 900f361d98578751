"""OCR of PDF pages that have no text layer: PDFium renders the page, the Tesseract command reads it.

Some reports are published as images only (a blog post printed to an image PDF, a scanned
advisory). Without OCR such a report is a recorded failure and its techniques are lost to every
table. Tesseract is an optional system program (``apt-get install tesseract-ocr``); without it the
PDF fails as before, with a message that says how to read it, and the next run retries it.

Speed, measured on the two pages of ``2021_GroupIB_Big_Airline_Heist_APT41.pdf`` (2 cores): rendering
at 200 dpi gives the same words as 300 dpi, and one Tesseract thread per page (``OMP_THREAD_LIMIT=1``)
reads a dense page in 1.3 s, where Tesseract's own threads took 9.5 s of mostly idle spinning.
"""

from __future__ import annotations

import os
import re
import subprocess
from typing import Any

from breachminer.settings import OcrOptions


class OcrError(Exception):
    """Tesseract failed on a page (bad exit status, timeout, missing language data)."""


MAX_SIDE_PIXELS = 6000  # 200 dpi of a 30-inch page: ~36 MB of grey pixels at most

# Tesseract reads a bullet "•" at a line start as "e", "©" or "«"; a line never starts with those before a capital.
_MISREAD_BULLET = re.compile(r"^[e©«»°](?= [A-Z0-9\"“])", re.MULTILINE)


def render_scale(size_points: tuple[float, float], dpi: int) -> float:
    """Pixels per point for OCR: ``dpi``, lowered so that a poster-sized page stays within ``MAX_SIDE_PIXELS``."""
    return min(dpi / 72, MAX_SIDE_PIXELS / max(*size_points, 1.0))


def ocr_page(page: Any, options: OcrOptions, command: str) -> str:
    """One PDFium page's text by OCR: lines as Tesseract reads them, a blank line between paragraphs."""
    bitmap = page.render(scale=render_scale(page.get_size(), options.dpi), grayscale=True)
    pixels = bitmap.to_numpy()
    height, width = pixels.shape[:2]
    image = b"P5\n%d %d\n255\n" % (width, height) + pixels.reshape(height, width).tobytes()  # PGM: no imaging library
    environment = {**os.environ, "OMP_THREAD_LIMIT": "1"}
    try:
        finished = subprocess.run([command, "stdin", "stdout", "-l", options.language], input=image,
                                  capture_output=True, timeout=options.page_timeout, env=environment, check=False)
    except subprocess.TimeoutExpired as exc:
        raise OcrError(f"Tesseract took longer than {options.page_timeout:.0f} s on one page") from exc
    except OSError as exc:
        raise OcrError(f"Tesseract could not be started: {exc}") from exc
    if finished.returncode != 0:
        message = finished.stderr.decode("utf-8", "replace").strip().splitlines()
        raise OcrError(f"Tesseract exited with status {finished.returncode}: {message[-1] if message else ''}")
    text = finished.stdout.decode("utf-8", "replace").replace("\f", "")
    return _MISREAD_BULLET.sub("•", text).strip()
