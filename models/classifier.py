"""The sentence technique classifier: a scikit-learn Pipeline, its thresholds, and the shipped artifact.

``Pipeline(features=FeatureUnion(word TF-IDF, char TF-IDF), clf=one-vs-rest linear model)``,
multi-label over every active technique with enough training examples. Training fits a
``OneVsRestClassifier`` of logistic regressions (fitted by SGD); the shipped model replaces it with
``SparseLinearOvR``: the same decision function with each technique's weights pruned to its
strongest features and stacked into one sparse matrix, so the artifact stays small. The TF-IDF
vectorizers are ``models.features.TfidfFeatures``: they fit as scikit-learn's and transform with array
operations, to the same bits. Scores are probabilities in 0–1; each technique has a decision threshold
calibrated on out-of-fold scores of validation reports (cross-validation by report, ``models.train``),
never on the evaluation reports.

The artifact holds data only: a compressed NumPy ``.npz`` (vocabularies, IDF weights, the sparse
weight matrix, intercepts, labels) read with ``allow_pickle=False``, and a JSON model card with the
pipeline's construction arguments. Loading rebuilds the Pipeline from those; no code from the file is
ever executed. (``skops.io`` was tried first: it took over 4 minutes to write the 120k-term
vocabularies.) A model built with another scikit-learn minor version, or whose bytes do not match its
card, is refused with a clear message instead of being loaded.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import SGDClassifier
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.preprocessing import MultiLabelBinarizer

from models.features import TfidfFeatures

MODEL_DIR = Path(__file__).resolve().parent / "artifacts"
# Fragments (table headers, captions, list stubs such as "Additional File" or "Deleted file.") carry no
# procedure; a model trained with ``min_words`` scores them 0. Models from before record nothing: 0.
MIN_WORDS = 4
_WORD = re.compile(r"[^\W\d_]{2,}")


def word_count(text: str) -> int:
    """Words of two letters or more (what ``min_words`` counts)."""
    return len(_WORD.findall(text))


def silence_fragments(probabilities: np.ndarray, texts: Sequence[str], min_words: int) -> np.ndarray:
    """Zero the rows of sentences under ``min_words`` words (in place; returned for chaining)."""
    if min_words:
        probabilities[[word_count(text) < min_words for text in texts]] = 0.0
    return probabilities
MODEL_FILE = "technique-classifier.npz"
CARD_FILE = "model-card.json"


class ModelCompatibilityError(RuntimeError):
    """The saved model was built with a scikit-learn version this installation cannot load safely."""


class SparseLinearOvR(ClassifierMixin, BaseEstimator):
    """One-vs-rest logistic scores from a sparse weight matrix: ``sigmoid(X @ W.T + b)``.

    Built from a fitted one-vs-rest linear classifier (``coef_``/``intercept_``) by keeping, per technique,
    the ``keep`` largest-magnitude weights.
    """

    CHUNK = 2048  # rows scored at once: bounds the densified weights to (features used) × techniques

    def __init__(self, keep: int = 4000) -> None:
        self.keep = keep

    @classmethod
    def from_ovr(cls, ovr: OneVsRestClassifier, classes: Sequence[str], keep: int = 4000) -> SparseLinearOvR:
        model = cls(keep=keep)
        n_features = next(e.coef_.shape[1] for e in ovr.estimators_ if hasattr(e, "coef_"))
        rows, cols, values, intercepts = [], [], [], []
        for i, estimator in enumerate(ovr.estimators_):
            if not hasattr(estimator, "coef_"):  # a label with one class in training: never predicted
                intercepts.append(-20.0)
                continue
            weights = np.asarray(estimator.coef_, dtype=np.float64).ravel()
            top = np.argpartition(-np.abs(weights), min(keep, weights.size - 1))[:keep]
            top = top[weights[top] != 0]
            rows.extend([i] * top.size)
            cols.extend(top.tolist())
            values.extend(weights[top].tolist())
            intercepts.append(float(np.ravel(estimator.intercept_)[0]))
        model.coef_ = sp.csr_matrix(
            (np.asarray(values, dtype=np.float32), (np.asarray(rows), np.asarray(cols))),
            shape=(len(classes), n_features),
        )
        model.intercept_ = np.asarray(intercepts, dtype=np.float32)
        model.classes_ = np.asarray(list(classes))
        return model

    def fit(self, X: Any, y: Any) -> SparseLinearOvR:
        raise NotImplementedError("SparseLinearOvR is built from a fitted OneVsRestClassifier (from_ovr)")

    def decision_function(self, X: Any) -> np.ndarray:
        if not sp.issparse(X):
            return np.asarray(X) @ self.coef_.T.toarray() + self.intercept_
        # The scores are nearly dense (most sentences get a weight for most techniques), and a sparse ×
        # sparse product spends its time building a sparse result. Instead: densify the weights of only the
        # features this batch uses (tens of MB at most, in chunks of rows) and take a sparse × dense product,
        # about 2× faster.
        X = sp.csr_matrix(X)
        weights_by_feature = self._weights_by_feature()
        scores = np.empty((X.shape[0], self.coef_.shape[0]), dtype=np.result_type(X.dtype, self.coef_.dtype))
        for start in range(0, X.shape[0], self.CHUNK):
            chunk = X[start:start + self.CHUNK]
            used = np.unique(chunk.indices)
            local = sp.csr_matrix((chunk.data, np.searchsorted(used, chunk.indices), chunk.indptr),
                                  shape=(chunk.shape[0], used.size))
            scores[start:start + chunk.shape[0]] = local @ weights_by_feature[used].toarray()
        return scores + self.intercept_

    def _weights_by_feature(self) -> sp.csr_matrix:
        cached = getattr(self, "_by_feature", None)
        if cached is None or cached[0] is not self.coef_:
            cached = (self.coef_, sp.csr_matrix(self.coef_.T))
            self._by_feature = cached
        return cached[1]

    def predict_proba(self, X: Any) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-self.decision_function(X)))

    def predict(self, X: Any) -> np.ndarray:
        return (self.predict_proba(X) >= 0.5).astype(int)


def build_pipeline(word_features: int = 60000, char_features: int = 60000, char_ngrams: tuple[int, int] = (4, 4),
                   alpha: float = 2e-6, epochs: int = 8, seed: int = 20261127, n_jobs: int = 2) -> Pipeline:
    """The training pipeline: word 1–2-gram and char_wb n-gram TF-IDF, one-vs-rest logistic regression.

    Character n-grams are 4-grams only (``char_wb`` 3–5 before): on the cross-validated validation
    reports they score the same, and extraction is about 2.5× cheaper (57 instead of 171 features per
    sentence).

    The logistic regressions are fitted by SGD (``SGDClassifier(loss="log_loss")``, a fixed number of
    epochs): liblinear took 3–5 s per technique on the ~64k training sentences (about 30 min for 600
    techniques on 2 cores), SGD about 1 s, which keeps ``breachminer train`` within its 15-minute budget.
    """
    features = FeatureUnion([
        ("word", TfidfFeatures(ngram_range=(1, 2), min_df=2, max_features=word_features, sublinear_tf=True,
                               dtype=np.float32, token_pattern=r"(?u)\b[\w.\-:\\/]+\b")),
        ("char", TfidfFeatures(analyzer="char_wb", ngram_range=char_ngrams, min_df=3, max_features=char_features,
                               sublinear_tf=True, dtype=np.float32)),
    ])
    clf = OneVsRestClassifier(
        SGDClassifier(loss="log_loss", alpha=alpha, max_iter=epochs, tol=None, random_state=seed),
        n_jobs=n_jobs,
    )
    return Pipeline([("features", features), ("clf", clf)])


@dataclass
class TechniqueClassifier:
    """A fitted pipeline, its label set and per-technique thresholds."""

    pipeline: Pipeline
    labels: list[str]
    thresholds: dict[str, float]
    default_threshold: float
    card: dict[str, Any] = field(default_factory=dict)
    hybrid_threshold: float | None = None  # classifier threshold inside the hybrid rule
    hybrid_sighting_threshold: float | None = None  # sighting threshold of the hybrid rule
    hybrid_thresholds: dict[str, float] = field(default_factory=dict)  # per technique, inside the hybrid rule
    min_words: int = 0  # sentences with fewer words score 0

    @property
    def version(self) -> str:
        return str(self.card.get("model_version", "unversioned"))

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Scores in 0–1, one column per label (``self.labels`` order)."""
        if not texts:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        features = self.pipeline.named_steps["features"].transform(list(texts))
        features.sort_indices()
        return silence_fragments(self.pipeline.named_steps["clf"].predict_proba(features), texts, self.min_words)

    def threshold_vector(self) -> np.ndarray:
        """The classifier-alone threshold of every label (per technique, else the default)."""
        return np.asarray([self.thresholds.get(label, self.default_threshold) for label in self.labels])

    def hybrid_threshold_vector(self) -> np.ndarray:
        """The classifier thresholds inside the hybrid rule (classifier-alone ones for a model without them)."""
        if self.hybrid_threshold is None:
            return self.threshold_vector()
        return np.asarray([self.hybrid_thresholds.get(label, self.hybrid_threshold) for label in self.labels])

    # ------------------------------------------------------------------------------ persistence

    def save(self, directory: Path | str = MODEL_DIR) -> Path:
        """Write the ``.npz`` artifact and the model card (with the artifact's SHA-256)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / MODEL_FILE
        arrays: dict[str, np.ndarray] = {}
        for name, vectorizer in self.pipeline.named_steps["features"].transformer_list:
            vocabulary = vectorizer.vocabulary_
            arrays[f"{name}_vocabulary"] = np.asarray(sorted(vocabulary, key=vocabulary.__getitem__))
            arrays[f"{name}_idf"] = np.asarray(vectorizer.idf_, dtype=np.float32)
        clf = self.pipeline.named_steps["clf"]
        coef = sp.csr_matrix(clf.coef_)
        arrays.update({
            "coef_data": coef.data.astype(np.float32), "coef_indices": coef.indices.astype(np.int32),
            "coef_indptr": coef.indptr.astype(np.int64), "coef_shape": np.asarray(coef.shape, dtype=np.int64),
            "intercept": np.asarray(clf.intercept_, dtype=np.float32), "labels": np.asarray(self.labels),
        })
        with path.open("wb") as handle:
            np.savez_compressed(handle, **arrays)
        card = dict(self.card)
        card.update({
            "labels": self.labels,
            "thresholds": self.thresholds,
            "default_threshold": self.default_threshold,
            "hybrid_threshold": self.hybrid_threshold,
            "hybrid_sighting_threshold": self.hybrid_sighting_threshold,
            "hybrid_thresholds": self.hybrid_thresholds,
            "min_words": self.min_words,
            "artifact": MODEL_FILE,
            "artifact_sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            "artifact_bytes": path.stat().st_size,
        })
        (directory / CARD_FILE).write_text(json.dumps(card, indent=1) + "\n", encoding="utf-8")
        self.card = card
        return path

    @classmethod
    def load(cls, directory: Path | str = MODEL_DIR) -> TechniqueClassifier:
        """Load a shipped model; refuses another scikit-learn minor version or a modified artifact."""
        import sklearn

        directory = Path(directory)
        card_path = directory / CARD_FILE
        if not card_path.exists():
            raise FileNotFoundError(f"no model card at {card_path}: train one with `breachminer train`")
        card = json.loads(card_path.read_text(encoding="utf-8"))
        built_with = str(card.get("libraries", {}).get("scikit-learn", "unknown"))
        if _minor(built_with) != _minor(sklearn.__version__):
            raise ModelCompatibilityError(
                f"the model in {directory} was built with scikit-learn {built_with}, this installation has "
                f"{sklearn.__version__}; install scikit-learn=={built_with} or retrain with `breachminer train`"
            )
        path = directory / card["artifact"]
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest != card["artifact_sha256"]:
            raise ModelCompatibilityError(f"{path} does not match its model card (sha256 {digest[:12]}…)")
        build_args = dict(card.get("build_args", {}))
        build_args.setdefault("char_ngrams", (3, 5))  # models before procedure v4 recorded only the seed
        if "char_ngrams" in build_args:
            build_args["char_ngrams"] = tuple(build_args["char_ngrams"])
        pipeline = build_pipeline(**build_args)
        with np.load(path, allow_pickle=False) as arrays:
            for name, vectorizer in pipeline.named_steps["features"].transformer_list:
                vectorizer.vocabulary_ = {term: i for i, term in enumerate(arrays[f"{name}_vocabulary"].tolist())}
                vectorizer.idf_ = arrays[f"{name}_idf"]
            labels = arrays["labels"].tolist()
            clf = SparseLinearOvR()
            clf.coef_ = sp.csr_matrix((arrays["coef_data"], arrays["coef_indices"], arrays["coef_indptr"]),
                                      shape=tuple(arrays["coef_shape"]))
            clf.intercept_ = arrays["intercept"]
            clf.classes_ = np.asarray(labels)
        pipeline.steps[-1] = ("clf", clf)
        if labels != list(card["labels"]):
            raise ModelCompatibilityError(f"{path}: labels differ from the model card")
        return cls(pipeline=pipeline, labels=labels, thresholds=dict(card["thresholds"]),
                   default_threshold=float(card["default_threshold"]), card=card,
                   hybrid_threshold=card.get("hybrid_threshold"),
                   hybrid_sighting_threshold=card.get("hybrid_sighting_threshold"),
                   hybrid_thresholds=dict(card.get("hybrid_thresholds") or {}),
                   min_words=int(card.get("min_words") or 0))


def read_card(directory: Path | str = MODEL_DIR) -> dict[str, Any] | None:
    """A model card, without loading the model (None when there is no card)."""
    card_path = Path(directory) / CARD_FILE
    if not card_path.exists():
        return None
    return json.loads(card_path.read_text(encoding="utf-8"))



def _minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


def binarize(labels: Sequence[Sequence[str]], classes: Sequence[str]) -> sp.csr_matrix:
    known = set(classes)
    binarizer = MultiLabelBinarizer(classes=list(classes), sparse_output=True)
    return binarizer.fit_transform([[lab for lab in row if lab in known] for row in labels]).tocsr()
