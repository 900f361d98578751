"""The ``classifier`` method: the trained model as one more tagger (``extractors.taggers.base.Tagger``).

A sentence gets a classifier mention for a technique when its probability reaches half the
technique's decision threshold. The mention's score maps the probability onto the sighting rule's
scale: ``score = 1 - (1 - T) ** (p / threshold)``, so a probability at the calibrated threshold
scores exactly the sighting threshold ``T`` and counts alone, and a weaker one counts only together
with other evidence (noisy-OR in ``extractors.sightings``). The raw probability is kept in ``detail``.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

from breachminer.catalog import AttackCatalog
from breachminer.records import Mention, Sentence
from breachminer.settings import DEFAULT_SIGHTING_THRESHOLD
from extractors.pipeline import DocumentAnalyzer
from extractors.taggers import IdTagger, LexiconTagger, NameTagger, Tagger
from models.classifier import CARD_FILE, MODEL_DIR, TechniqueClassifier

FLOOR_RATIO = 0.5
BATCH = 4096


class ClassifierTagger:
    """Sentence classifier mentions."""

    method = "classifier"

    def __init__(self, model: TechniqueClassifier, sighting_threshold: float = DEFAULT_SIGHTING_THRESHOLD) -> None:
        self.model = model
        self.version = model.version
        self.sighting_threshold = sighting_threshold
        self._thresholds = model.threshold_vector()

    def tag(self, sentences: Sequence[Sentence]) -> list[Mention]:
        mentions: list[Mention] = []
        miss = 1.0 - self.sighting_threshold
        for offset in range(0, len(sentences), BATCH):
            batch = sentences[offset:offset + BATCH]
            scores = self.model.predict_proba([s.text for s in batch])
            rows, cols = np.nonzero(scores >= FLOOR_RATIO * self._thresholds)
            for row, col in zip(rows.tolist(), cols.tolist(), strict=True):
                p = float(scores[row, col])
                threshold = float(self._thresholds[col])
                sentence = batch[row]
                mentions.append(Mention(
                    sentence_index=sentence.index,
                    technique_id=self.model.labels[col],
                    method=self.method,
                    score=round(min(0.999, 1.0 - miss ** (p / threshold)), 4),
                    cited="",
                    start=0,
                    end=len(sentence.text),
                    detail=f"p={p:.3f} threshold={threshold:.3f}",
                    tagger_version=self.version,
                ))
        return mentions


def default_taggers(catalog: AttackCatalog, model: TechniqueClassifier | None = None,
                    sighting_threshold: float = DEFAULT_SIGHTING_THRESHOLD) -> list[Tagger]:
    """The hybrid tagger set: id, name, lexicon, and the classifier when a model is given."""
    taggers: list[Tagger] = [IdTagger(catalog), NameTagger(catalog), LexiconTagger(catalog)]
    if model is not None:
        taggers.append(ClassifierTagger(model, sighting_threshold))
    return taggers


def load_model(model_dir: Path | str | None = None) -> TechniqueClassifier | None:
    """The classifier in ``model_dir`` (default: the shipped one), or None when none has been trained.

    An artifact that exists but cannot be loaded safely raises ``ModelCompatibilityError``.
    """
    directory = Path(model_dir) if model_dir else MODEL_DIR
    if not (directory / CARD_FILE).exists():
        return None
    return TechniqueClassifier.load(directory)


@lru_cache(maxsize=4)
def hybrid_analyzer(catalog_path: str, sighting_threshold: float, max_pages: int, model_dir: str | None,
                    use_classifier: bool) -> DocumentAnalyzer:
    """One analyzer per process and configuration, with the classifier when there is one."""
    catalog = AttackCatalog.load(catalog_path)
    model = load_model(model_dir) if use_classifier else None
    return DocumentAnalyzer(catalog, default_taggers(catalog, model, sighting_threshold),
                            sighting_threshold=sighting_threshold, max_pages=max_pages)
