"""Fast, exact scoring-time transforms for the classifier's fitted TF-IDF vectorizers.

``TfidfVectorizer.transform`` builds every n-gram as a Python string and looks it up in a dict, one
at a time; for the classifier that was two thirds of the time to score a sentence. ``TfidfFeatures``
is a ``TfidfVectorizer`` (it fits exactly as one) whose ``transform`` counts the vocabulary's n-grams
with array operations instead, then applies the same fitted ``TfidfTransformer``:

- ``char_wb`` n-grams (n ≤ 7): the lower-cased text is split into words and each is padded with a
  space, as scikit-learn does; characters become small integer codes (0 for a character that occurs in
  no vocabulary term, so an n-gram holding one cannot match), and every n-gram becomes one 64-bit key,
  looked up in a hash table of the vocabulary's keys.
- ``word`` 1- and 2-grams: tokens from the same ``token_pattern``; each token becomes an integer id
  (0 when no vocabulary term contains it), unigrams map through an id → column table and bigrams
  through a hash table of id pairs.

The counts equal scikit-learn's exactly (``tests/test_classifier.py`` compares the matrices on real
sentences and on Unicode edge cases). Any other configuration (stop words, a custom analyzer,
accent stripping, 3-grams of words, ...) falls back to scikit-learn's own ``transform``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from itertools import repeat
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer, _document_frequency

_MAX_CODE_POINT = 0x110000


class TfidfFeatures(TfidfVectorizer):
    """A ``TfidfVectorizer`` with a vectorised ``transform`` for ``char_wb`` and word 1–2-gram features, whose
    bounded vocabulary is the same on every machine (``_limit_features``)."""

    def _limit_features(self, X: Any, vocabulary: dict[str, int], high: Any = None, low: Any = None,
                        limit: int | None = None) -> Any:
        """scikit-learn's pruning, with ties at the ``max_features`` cut broken by the term (alphabetical).

        scikit-learn keeps the ``limit`` most frequent terms with an unstable ``argsort``, so which of the
        terms tied at the cut survive depends on numpy's sorting kernel, which depends on the CPU: thousands
        of the 60,000 terms (all occurring 3 times) differed between an AVX2 and an AVX-512 machine, and
        ``breachminer train`` did not reproduce the shipped model. The terms are sorted before this is
        called, so a stable sort breaks ties by term.
        """
        if high is None and low is None and limit is None:
            return X, set()
        dfs = _document_frequency(X)
        mask = np.ones(len(dfs), dtype=bool)
        if high is not None:
            mask &= dfs <= high
        if low is not None:
            mask &= dfs >= low
        if limit is not None and mask.sum() > limit:
            tfs = np.asarray(X.sum(axis=0)).ravel()
            mask_inds = (-tfs[mask]).argsort(kind="stable")[:limit]
            new_mask = np.zeros(len(dfs), dtype=bool)
            new_mask[np.where(mask)[0][mask_inds]] = True
            mask = new_mask
        new_indices = np.cumsum(mask) - 1
        for term, old_index in list(vocabulary.items()):
            if mask[old_index]:
                vocabulary[term] = new_indices[old_index]
            else:
                del vocabulary[term]
        kept_indices = np.where(mask)[0]
        if len(kept_indices) == 0:
            raise ValueError("After pruning, no terms remain. Try a lower min_df or a higher max_df.")
        return X[:, kept_indices]

    def transform(self, raw_documents: Iterable[str]) -> Any:
        counter = self._fast_counter()
        if counter is None:
            return super().transform(raw_documents)
        documents = list(raw_documents)
        if not documents or any(not isinstance(doc, str) for doc in documents):
            return super().transform(documents)  # scikit-learn's result, or its error
        return self._tfidf.transform(counter(documents), copy=False)

    def _fast_counter(self) -> Any:
        """The counting function for this configuration and vocabulary, or None to use scikit-learn's."""
        vocabulary = getattr(self, "vocabulary_", None)
        if vocabulary is None:
            return None
        cached = getattr(self, "_counter_cache", None)
        if cached is not None and cached[0] is vocabulary:
            return cached[1]
        counter = None
        plain = (self.input == "content" and self.lowercase and self.preprocessor is None and self.tokenizer is None
                 and self.strip_accents is None and not self.binary)
        if plain and self.analyzer == "char_wb" and 1 <= self.ngram_range[0] <= self.ngram_range[1] <= 7:
            counter = _CharWbCounter(vocabulary, self.ngram_range, self.dtype)
        elif (plain and self.analyzer == "word" and self.stop_words is None and self.ngram_range in ((1, 1), (1, 2))
              and re.compile(self.token_pattern).groups == 0):
            counter = _WordCounter(vocabulary, re.compile(self.token_pattern), self.ngram_range[1], self.dtype)
        if counter is not None and not counter.usable:
            counter = None
        self._counter_cache = (vocabulary, counter)
        return counter


def _count_matrix(rows: np.ndarray, columns: np.ndarray, n_rows: int, n_columns: int, dtype: Any) -> sp.csr_matrix:
    """A CSR count matrix (sorted indices, no duplicates) of the (row, column) occurrences."""
    keys, counts = np.unique(rows.astype(np.int64) * n_columns + columns, return_counts=True)
    indptr = np.searchsorted(keys, np.arange(n_rows + 1, dtype=np.int64) * n_columns).astype(np.int32)
    return sp.csr_matrix((counts.astype(dtype), (keys % n_columns).astype(np.int32), indptr),
                         shape=(n_rows, n_columns))


class _KeyTable:
    """Integer keys of vocabulary terms → their columns (a hash lookup: 8× faster than a sorted search)."""

    def __init__(self, keys: np.ndarray, columns: np.ndarray) -> None:
        self.index = pd.Index(keys)
        self.columns = np.asarray(columns, dtype=np.int64)

    def lookup(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(positions in ``keys`` that are vocabulary keys, their columns)."""
        if not keys.size or not len(self.index):
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        at = self.index.get_indexer(keys)
        hit = np.flatnonzero(at >= 0)
        return hit, self.columns[at[hit]]


class _CharWbCounter:
    """Counts of ``char_wb`` n-grams, as ``CountVectorizer(analyzer="char_wb", lowercase=True)`` makes them."""

    def __init__(self, vocabulary: dict[str, int], ngram_range: tuple[int, int], dtype: Any) -> None:
        self.min_n, self.max_n = ngram_range
        self.n_columns = len(vocabulary)
        self.dtype = dtype
        alphabet = sorted({ch for term in vocabulary for ch in term})
        self.bits = max(1, (len(alphabet)).bit_length())  # codes 1..len(alphabet); 0 = in no term
        self.usable = self.max_n * self.bits <= 63
        if not self.usable:
            return
        self.codes = np.zeros(_MAX_CODE_POINT, dtype=np.uint16 if len(alphabet) < 65535 else np.uint32)
        for code, ch in enumerate(alphabet, start=1):
            self.codes[ord(ch)] = code
        self.table = _KeyTable(np.asarray([self._key(term) for term in vocabulary], dtype=np.uint64),
                               np.fromiter(vocabulary.values(), dtype=np.int64, count=len(vocabulary)))

    def _key(self, gram: str) -> int:
        key = 0
        for ch in gram:
            key = (key << self.bits) | int(self.codes[ord(ch)])
        return key

    def __call__(self, documents: list[str]) -> sp.csr_matrix:
        # scikit-learn: lower(), whitespace runs to one space, split(), each word padded " w "
        words_per_document = [doc.lower().split() for doc in documents]
        words = [w for doc_words in words_per_document for w in doc_words]
        if not words:
            return sp.csr_matrix((len(documents), self.n_columns), dtype=self.dtype)
        padded = " " + "  ".join(words) + " "  # = "".join(" " + w + " " for w in words)
        codes = self.codes[np.frombuffer(padded.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)]
        codes = codes.astype(np.uint64)
        lengths = np.fromiter(map(len, words), dtype=np.int64, count=len(words)) + 2
        starts = np.cumsum(lengths) - lengths
        word_document = np.repeat(np.arange(len(documents)), [len(w) for w in words_per_document])
        rows, columns = [], []
        for n in range(self.min_n, self.max_n + 1):
            # a word of padded length L gives its L-n+1 n-grams while n ≤ L; a word shorter than the smallest
            # n gives itself, once (scikit-learn's "count a short word only once")
            whole = lengths <= n if n == self.min_n else lengths == n
            longer = lengths > n
            gram_length = np.where(whole, lengths, n)
            counts = np.where(longer, lengths - n + 1, whole.astype(np.int64))
            selected = np.flatnonzero(counts)
            if not selected.size:
                continue
            per_word = counts[selected]
            owner = np.repeat(selected, per_word)
            offsets = np.arange(owner.size) - np.repeat(np.cumsum(per_word) - per_word, per_word)
            positions = starts[owner] + offsets
            size = gram_length[owner]
            keys = codes[positions]
            for k in range(1, n):
                nxt = codes[np.minimum(positions + k, codes.size - 1)]
                keys = np.where(size > k, (keys << np.uint64(self.bits)) | nxt, keys)
            # An unknown character is a 0 digit. A gram starting with one would read as a shorter gram, so
            # it is dropped; with a leading digit ≠ 0 a 0 digit elsewhere can equal no term's key.
            keep = np.flatnonzero(codes[positions] != 0)
            hit, found = self.table.lookup(keys[keep])
            rows.append(word_document[owner[keep[hit]]])
            columns.append(found)
        return _count_matrix(np.concatenate(rows), np.concatenate(columns), len(documents), self.n_columns,
                             self.dtype)


class _WordCounter:
    """Counts of word 1-grams (and 2-grams), as ``CountVectorizer(analyzer="word", lowercase=True)`` makes them."""

    usable = True

    def __init__(self, vocabulary: dict[str, int], token_pattern: re.Pattern[str], max_n: int, dtype: Any) -> None:
        self.findall = token_pattern.findall
        self.max_n = max_n
        self.n_columns = len(vocabulary)
        self.dtype = dtype
        token_ids: dict[str, int] = {}
        unigrams: list[tuple[int, int]] = []
        bigrams: list[tuple[int, int, int]] = []
        for term, column in vocabulary.items():
            parts = term.split(" ")
            ids = [token_ids.setdefault(part, len(token_ids) + 1) for part in parts]
            if len(ids) == 1:
                unigrams.append((ids[0], column))
            elif len(ids) == 2:
                bigrams.append((ids[0], ids[1], column))
            else:  # a term of three tokens cannot come from 1-2-grams
                self.usable = False
        self.token_ids = token_ids
        self.n_tokens = len(token_ids) + 1
        self.unigram_column = np.full(self.n_tokens, -1, dtype=np.int64)
        for token, column in unigrams:
            self.unigram_column[token] = column
        self.bigrams = _KeyTable(np.asarray([a * self.n_tokens + b for a, b, _ in bigrams], dtype=np.int64),
                                 np.asarray([c for _, _, c in bigrams], dtype=np.int64))

    def __call__(self, documents: list[str]) -> sp.csr_matrix:
        tokens_per_document = [self.findall(doc.lower()) for doc in documents]
        tokens = [t for doc_tokens in tokens_per_document for t in doc_tokens]
        ids = np.fromiter(map(self.token_ids.get, tokens, repeat(0)), dtype=np.int64, count=len(tokens))
        token_document = np.repeat(np.arange(len(documents)), [len(t) for t in tokens_per_document])
        columns = self.unigram_column[ids]
        known = np.flatnonzero(columns >= 0)
        rows, found = [token_document[known]], [columns[known]]
        if self.max_n == 2 and ids.size > 1:
            # consecutive tokens of the same document, both in some vocabulary term
            pair = np.flatnonzero((token_document[1:] == token_document[:-1]) & (ids[1:] != 0) & (ids[:-1] != 0))
            hit, bigram_columns = self.bigrams.lookup(ids[pair] * self.n_tokens + ids[pair + 1])
            rows.append(token_document[pair[hit]])
            found.append(bigram_columns)
        return _count_matrix(np.concatenate(rows), np.concatenate(found), len(documents), self.n_columns, self.dtype)
