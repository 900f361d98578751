"""Whole-document analysis time on pathological inputs: does any stage grow faster than the input?

An unattended nightly run must not stall on one odd document. Each case is a document of about
``--mb`` megabytes that stresses one stage: a base64 blob with no spaces (the hyphenation rule once
backtracked through it: 80 KB took 54 s), one huge line of prose, many short lines, a line of dots (the
table-of-contents rule), headings in capitals run into recommendations (the advice rule's agency list
once took hours on one such sentence), deeply nested and large HTML. Run it at two sizes: linear stages
take about twice as long at twice the size.

    python bench/pathological_inputs.py --mb 1
    python bench/pathological_inputs.py --mb 4 --no-classifier
"""

from __future__ import annotations

import argparse
import random
import resource
import time
from collections.abc import Callable

from breachminer.settings import get_settings
from models.tagger import hybrid_analyzer

WORDS = ["the", "actor", "used", "powershell", "to", "run", "a", "scheduled", "task", "and", "rundll32", "then",
         "exfiltrated", "data", "over", "https"]


def prose(n_chars: int, rng: random.Random) -> str:
    out, size = [], 0
    while size < n_chars:
        sentence = " ".join(rng.choice(WORDS) for _ in range(15)) + ". "
        out.append(sentence)
        size += len(sentence)
    return "".join(out)


def cases(n_chars: int, rng: random.Random) -> dict[str, tuple[str, Callable[[], bytes]]]:
    heading = "TECHNICAL DETAILS AND INDICATORS OF COMPROMISE APPENDIX "
    return {
        "base64 blob, no spaces": ("blob.txt", lambda: ("Payload:\n" + "QUFBQUFB" * (n_chars // 8)).encode()),
        "one line of prose": ("line.txt", lambda: prose(n_chars, rng).encode()),
        "short lines": ("lines.txt", lambda: "\n".join(prose(80, rng) for _ in range(n_chars // 90)).encode()),
        "lines of dots": ("dots.txt", lambda: ("Contents\n" + ("." * 5000 + "!\n") * (n_chars // 5002)).encode()),
        "capitals + recommends": ("caps.txt", lambda: "\n\n".join(
            heading * 3 + "the actor used PowerShell, and CISA recommends blocking it."
            for _ in range(n_chars // 230)).encode()),
        "nested HTML": ("nested.html", lambda: (
            "<html><body>" + "<div>" * 5000 + "".join(f"<p>{prose(500, rng)}</p>" for _ in range(n_chars // 1000))
            + "</div>" * 5000 + "</body></html>").encode()),
        "large HTML": ("large.html", lambda: (
            "<html><body>" + "".join(f"<p>{prose(500, rng)}</p>" for _ in range(n_chars // 520))
            + "</body></html>").encode()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=1.0, help="size of each document in megabytes")
    parser.add_argument("--no-classifier", action="store_true", help="rules only")
    args = parser.parse_args()
    settings = get_settings()
    analyzer = hybrid_analyzer(str(settings.catalog_path), None, settings.max_pages, None,
                               not args.no_classifier, None)
    rng = random.Random(20261129)
    print(f"{'case':<24} {'MB':>5} {'seconds':>8} {'sentences':>9} {'sightings':>9}  max RSS")
    for name, (file_name, build) in cases(int(args.mb * 1_000_000), rng).items():
        data = build()
        started = time.perf_counter()
        try:
            analysis = analyzer.analyse_bytes(data, file_name)
            result = f"{len(analysis.sentences):>9} {len(analysis.sightings):>9}"
        except Exception as exc:  # a clear failure is an acceptable outcome; a hang is not
            result = f"{type(exc).__name__}: {str(exc)[:60]}"
        seconds = time.perf_counter() - started
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
        print(f"{name:<24} {len(data) / 1e6:>5.1f} {seconds:>8.1f} {result}  {rss:.2f} GB", flush=True)


if __name__ == "__main__":
    main()
