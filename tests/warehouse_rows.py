"""Test helper: load a report with given sightings straight into a warehouse (no documents, no flow)."""

from __future__ import annotations

from datetime import date

import warehouse.db as wh
from breachminer.records import Mention, Sentence, Sighting


def load(con, rid, techniques, published=date(2020, 1, 1), title=None, publisher="Pub", published_year=None,
         observables=None):
    """``observables`` ({technique: "observable:fidelity"}): a lexicon mention of it too, as the lexicon writes one."""
    sentences = [Sentence(i, i * 10, i * 10 + 9, f"sentence {i}") for i in range(len(techniques))]
    mentions = [Mention(i, t, "id", 0.97, t, 0, 5, "active", "id-1") for i, t in enumerate(techniques)]
    mentions += [Mention(i, t, "lexicon", 0.95, t, 0, 5, (observables or {})[t], "lexicon-1")
                 for i, t in enumerate(techniques) if t in (observables or {})]
    sightings = [Sighting(t, 0.97, ("id",), 1, 1, "test") for t in dict.fromkeys(techniques)]
    report = wh.ReportRow(rid, rid * 4, title or rid, publisher, published, "text", 100, None, [1, 2, 3],
                          f"/src/{rid}", {"id": "id-1"}, published_year=published_year)
    source = wh.SourceRow(f"/src/{rid}", f"bytes-{rid}", "text", 100)
    wh.load_report(con, report, source, sentences, mentions, sightings, "run1")
