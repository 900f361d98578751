"""The fast scoring-time features equal scikit-learn's exactly, and the scoring product equals X·Wᵀ + b."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer

from models.classifier import MODEL_DIR, SparseLinearOvR, TechniqueClassifier
from models.features import TfidfFeatures

SAMPLES = Path(__file__).resolve().parents[1] / "reports_corpus" / "samples"
EDGE_CASES = [
    "", "   ", "a", "A b", "I", "ab", "aaa", "cmd.exe /c whoami", "C:\\Windows\\Temp\\x.dll", "tab\tsep\nnew  line",
    "İstanbul ﬁle ß Straße ΣΑΣ", "x\u00a0y\u2003z\u3000w", "emoji 😀 test 😀😀", "\ud800 lone surrogate",
    "\x1c\x1dfield separators", "ΑΒΓ δ", "T1059.001 - PowerShell, T1027", "…", "a-b-c a_b a.b ::",
]
ALPHABET = "abcdeXYZ İıßſΣσ😀.-_:/\\1 \t\n\u00a0"


def _random_texts(seed: int, count: int, alphabet: str = ALPHABET) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40))) for _ in range(count)]


def _reference(vectorizer: TfidfVectorizer) -> TfidfVectorizer:
    """scikit-learn's own vectorizer with the same parameters, vocabulary and IDF weights."""
    reference = TfidfVectorizer(**vectorizer.get_params())
    reference.vocabulary_ = vectorizer.vocabulary_
    reference.idf_ = vectorizer.idf_
    return reference


def _assert_identical(fast: TfidfVectorizer, texts: list[str]) -> None:
    assert fast._fast_counter() is not None, "the fast path must be the one under test"
    got, expected = fast.transform(texts), _reference(fast).transform(texts)
    assert got.shape == expected.shape and got.dtype == expected.dtype
    assert got.has_sorted_indices and expected.has_sorted_indices
    assert np.array_equal(got.indptr, expected.indptr) and np.array_equal(got.indices, expected.indices)
    assert np.array_equal(got.data, expected.data)  # bit for bit


def _sample_sentences() -> list[str]:
    lines = []
    for path in sorted(SAMPLES.glob("*.txt")):
        lines += [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert len(lines) > 50
    return lines


@pytest.fixture(scope="module")
def shipped() -> TechniqueClassifier:
    return TechniqueClassifier.load(MODEL_DIR)


@pytest.mark.parametrize("name", ["word", "char"])
def test_shipped_vectorizers_equal_scikit_learn(shipped, name) -> None:
    vectorizer = dict(shipped.pipeline.named_steps["features"].transformer_list)[name]
    assert isinstance(vectorizer, TfidfFeatures)
    _assert_identical(vectorizer, _sample_sentences() + EDGE_CASES)
    _assert_identical(vectorizer, EDGE_CASES[:1])  # one empty document


@pytest.mark.parametrize("settings", [
    {"analyzer": "char_wb", "ngram_range": (3, 5)},  # several n: the short-word rule of each n
    {"analyzer": "char_wb", "ngram_range": (1, 2)},
    {"analyzer": "char_wb", "ngram_range": (4, 4)},
    {"analyzer": "word", "ngram_range": (1, 2), "token_pattern": r"(?u)\b[\w.\-:\\/]+\b"},
    {"analyzer": "word", "ngram_range": (1, 1)},
], ids=str)
def test_random_unicode_text_counts_like_scikit_learn(settings) -> None:
    # fitted without some characters: n-grams holding a character the vocabulary lacks must not match
    unseen = "😀ſσ"
    fitted_on = _random_texts(1, 400, "".join(ch for ch in ALPHABET if ch not in unseen))
    fast = TfidfFeatures(sublinear_tf=True, dtype=np.float32, **settings).fit(fitted_on)
    _assert_identical(fast, _random_texts(2, 400) + EDGE_CASES + ["😀abc", "ſabcd σ 😀aa"])


def test_unsupported_settings_use_scikit_learns_transform() -> None:
    texts = _sample_sentences()
    for settings in ({"stop_words": "english"}, {"ngram_range": (1, 3)}, {"strip_accents": "unicode"},
                     {"analyzer": "char", "ngram_range": (2, 3)}):
        fast = TfidfFeatures(**settings).fit(texts)
        assert fast._fast_counter() is None
        assert (fast.transform(texts) != _reference(fast).transform(texts)).nnz == 0


def test_sparse_scores_equal_the_dense_product() -> None:
    rng = np.random.default_rng(7)
    model = SparseLinearOvR()
    model.coef_ = sp.random(5, 300, density=0.1, format="csr", dtype=np.float32, random_state=rng)
    model.intercept_ = rng.normal(size=5).astype(np.float32)
    model.CHUNK = 7  # several chunks
    x = sp.random(40, 300, density=0.05, format="csr", dtype=np.float32, random_state=rng)
    expected = (x @ model.coef_.T).toarray() + model.intercept_
    assert np.allclose(model.decision_function(x), expected, atol=1e-6)
    assert np.allclose(model.decision_function(x.toarray()), expected, atol=1e-6)
    assert model.decision_function(x[:0]).shape == (0, 5)


def test_the_bounded_vocabulary_breaks_ties_at_the_cut_by_term() -> None:
    """Which of the terms tied at the max_features cut are kept must not depend on the machine: scikit-learn's
    unstable argsort kept a CPU-dependent subset (thousands of the classifier's 60,000 terms differed between
    an AVX2 and an AVX-512 machine, so `breachminer train` did not reproduce the shipped model)."""
    import random

    from models.features import TfidfFeatures

    rng = random.Random(7)
    frequency = {f"w{j:05d}": rng.choice([1, 1, 1, 2, 2, 3, 4]) for j in range(5000)}
    documents = [" ".join([term] * n) for term, n in frequency.items()]
    most_frequent_then_first = sorted(frequency, key=lambda term: (-frequency[term], term))[:2000]
    assert sorted(TfidfFeatures(max_features=2000).fit(documents).vocabulary_) == sorted(most_frequent_then_first)
