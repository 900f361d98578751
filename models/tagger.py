"""The ``classifier`` method: the trained model as one more tagger (``extractors.taggers.base.Tagger``).

A sentence gets a classifier mention for a technique when its probability reaches half the
classifier threshold. The mention's score maps the probability onto the sighting rule's scale:
``score = 1 - (1 - T) ** (p / threshold)``, so a probability at the threshold scores exactly the
sighting threshold ``T`` and counts alone, and a weaker one counts only together with other evidence
(noisy-OR in ``extractors.sightings``). The raw probability is kept in ``detail``.

Inside the hybrid the classifier thresholds (a global one, ``hybrid_threshold``, and per-technique
ones shrunk toward it, ``hybrid_thresholds``) and ``T`` (``hybrid_sighting_threshold``) are calibrated
together on out-of-fold validation reports and stored in the model card. The mention scores always
use the calibrated ``T``, so a mention (the evidence) depends on the model alone;
``BREACHMINER_SIGHTING_THRESHOLD`` moves only the decision: a higher one asks more of every method's
evidence, the classifier's included.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

from breachminer.catalog import AttackCatalog
from breachminer.records import Mention, Sentence
from breachminer.settings import DEFAULT_SIGHTING_THRESHOLD, OcrOptions
from extractors.pipeline import DocumentAnalyzer
from extractors.sightings import SIGHTINGS_KEY, sighting_rule
from extractors.taggers import IdTagger, LexiconTagger, NameTagger, Tagger
from extractors.taggers.ids import id_version
from extractors.taggers.lexicon import lexicon_version
from extractors.taggers.names import name_version
from models.classifier import CARD_FILE, MODEL_DIR, TechniqueClassifier

FLOOR_RATIO = 0.5
BATCH = 4096


def classifier_mentions(scores: np.ndarray, thresholds: np.ndarray, labels: Sequence[str], sighting_threshold: float,
                        version: str, sentences: Sequence[Sentence] | None = None) -> list[Mention]:
    """Mentions for every (sentence, technique) scoring at least half its threshold."""
    miss = 1.0 - sighting_threshold
    rows, cols = np.nonzero(scores >= FLOOR_RATIO * thresholds)
    mentions = []
    for row, col in zip(rows.tolist(), cols.tolist(), strict=True):
        p, threshold = float(scores[row, col]), float(thresholds[col])
        sentence = sentences[row] if sentences is not None else None
        mentions.append(Mention(
            sentence_index=sentence.index if sentence else row,
            technique_id=labels[col],
            method="classifier",
            score=round(min(0.999, 1.0 - miss ** (p / threshold)), 4),
            cited="",
            start=0,
            end=len(sentence.text) if sentence else 0,
            detail=f"p={p:.3f} threshold={threshold:.3f}",
            tagger_version=version,
        ))
    return mentions


class ClassifierTagger:
    """Sentence classifier mentions (hybrid thresholds when the model has them)."""

    method = "classifier"

    def __init__(self, model: TechniqueClassifier) -> None:
        self.model = model
        self.version = model.version
        self.sighting_threshold = resolve_sighting_threshold(None, model)  # the score's scale: calibrated T
        self._thresholds = model.hybrid_threshold_vector()

    def tag(self, sentences: Sequence[Sentence]) -> list[Mention]:
        mentions: list[Mention] = []
        for offset in range(0, len(sentences), BATCH):
            batch = sentences[offset:offset + BATCH]
            scores = self.model.predict_proba([s.text for s in batch])
            mentions.extend(classifier_mentions(scores, self._thresholds, self.model.labels, self.sighting_threshold,
                                                self.version, batch))
        return mentions


def resolve_sighting_threshold(setting: float | None, model: TechniqueClassifier | None) -> float:
    """An explicit setting wins; then the model's calibrated hybrid value; then the rules-only default."""
    return decision_threshold(setting, model.hybrid_sighting_threshold if model is not None else None)


def decision_threshold(setting: float | None, calibrated: float | None) -> float:
    """``resolve_sighting_threshold`` given the calibrated value itself (read from a model card)."""
    if setting is not None:
        return setting
    if calibrated is not None:
        return float(calibrated)
    return DEFAULT_SIGHTING_THRESHOLD


def default_taggers(catalog: AttackCatalog, model: TechniqueClassifier | None = None) -> list[Tagger]:
    """The hybrid tagger set: id, name, lexicon, and the classifier when a model is given."""
    taggers: list[Tagger] = [IdTagger(catalog), NameTagger(catalog), LexiconTagger(catalog)]
    if model is not None:
        taggers.append(ClassifierTagger(model))
    return taggers


def tagger_versions(catalog: AttackCatalog, model_version: str | None = None,
                    sighting_threshold: float = DEFAULT_SIGHTING_THRESHOLD) -> dict[str, str]:
    """``{method: version}`` of ``default_taggers`` without building them (no spaCy matcher, no model
    load), and the sighting rule at ``sighting_threshold``: what a report analysed now stores, and what
    ``retag`` compares a report's stored versions with."""
    versions = {IdTagger.method: id_version(catalog), NameTagger.method: name_version(catalog),
                LexiconTagger.method: lexicon_version(catalog)}
    if model_version is not None:
        versions[ClassifierTagger.method] = model_version
    versions[SIGHTINGS_KEY] = sighting_rule(sighting_threshold)
    return versions


def load_model(model_dir: Path | str | None = None) -> TechniqueClassifier | None:
    """The classifier in ``model_dir`` (default: the shipped one), or None when none has been trained.

    An artifact that exists but cannot be loaded safely raises ``ModelCompatibilityError``.
    """
    directory = Path(model_dir) if model_dir else MODEL_DIR
    if not (directory / CARD_FILE).exists():
        return None
    return TechniqueClassifier.load(directory)


@lru_cache(maxsize=4)
def hybrid_analyzer(catalog_path: str, sighting_threshold: float | None, max_pages: int, model_dir: str | None,
                    use_classifier: bool, ocr: OcrOptions | None = None) -> DocumentAnalyzer:
    """One analyzer per process and configuration, with the classifier when there is one."""
    catalog = AttackCatalog.load(catalog_path)
    model = load_model(model_dir) if use_classifier else None
    threshold = resolve_sighting_threshold(sighting_threshold, model)
    analyzer = DocumentAnalyzer(catalog, default_taggers(catalog, model),
                                sighting_threshold=threshold, max_pages=max_pages, ocr=ocr)
    analyzer.warm_up()  # the ingest flow forks a child per document from this process
    return analyzer
