"""Content vectors of products: sparse TF-IDF over title, brand and attributes.

Each field becomes its own L2-normalised TF-IDF block; blocks are scaled by the square
root of their weight and the row is normalised again. The cosine of two rows is then a
weighted average of per-field cosines over the fields the products have, so a catalog
without titles (or brands) simply leans on the fields it does have.

Title words catch "same kind of thing"; character n-grams inside words catch spelling
variants, plurals and compounds ("T-LIGHT" ~ "TLIGHT"); attributes are exact tokens
(`size=M`). IDF makes words shared by the whole category (or a colour every product
comes in) count little, which is what ranks "RED HEART HOLDER" next to "WHITE HEART
HOLDER" rather than next to every other red item.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import chain

import numpy as np
import pandas as pd
import scipy.sparse as sp

# product_table columns that are not free attributes
BASE_COLUMNS = ("product_id", "category", "title", "brand", "price", "n_variants")
# Attribute naming a product's variant family (online-retail's StockCode stem): the
# ground truth of the substitute evaluation, so by default not a content feature.
FAMILY_COLUMN = "family"
_WORD = re.compile(r"[^\W_]+", re.UNICODE)


@dataclass
class ContentConfig:
    """Which fields make up a product's content vector, and how much each counts.

    exclude_columns: attribute columns to leave out, e.g. a column that *is* the
        evaluation's ground truth (online-retail's variant `family`).
    """

    title_words: float = 1.0
    title_chars: float = 1.0
    brand: float = 0.5
    attributes: float = 1.0
    char_ngrams: tuple[int, int] = (3, 5)
    exclude_columns: tuple[str, ...] = field(default_factory=tuple)


def attribute_columns(products: pd.DataFrame, exclude: tuple[str, ...] = ()) -> list[str]:
    return [c for c in products.columns if c not in BASE_COLUMNS and c not in exclude]


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _char_ngrams(text: str, lo: int, hi: int) -> list[str]:
    out: list[str] = []
    for w in _words(text):
        w = f" {w} "  # word boundaries make prefixes/suffixes distinct n-grams
        for n in range(lo, hi + 1):
            out.extend(w[i:i + n] for i in range(max(1, len(w) - n + 1)))
    return out


def _clean(values: pd.Series) -> pd.Series:
    return values.fillna("").astype(str)


def _token_matrix(values: pd.Series, tokenize: Callable[[str], list[str]]) -> sp.csr_matrix:
    """Count matrix (rows of `values`, vocabulary); tokenises each distinct value once."""
    codes, uniques = pd.factorize(_clean(values))
    tokens = [tokenize(text) for text in uniques]
    indptr = np.r_[0, np.cumsum([len(t) for t in tokens])].astype(np.int64)
    vocab_codes, vocab = pd.factorize(np.asarray(list(chain.from_iterable(tokens)), dtype=object))
    per_unique = sp.csr_matrix(
        (np.ones(len(vocab_codes), np.float32), vocab_codes.astype(np.int64), indptr),
        shape=(len(uniques), max(len(vocab), 1)),
    )
    per_unique.sum_duplicates()
    return per_unique[codes]


def _tfidf(counts: sp.csr_matrix, row_weight: np.ndarray) -> sp.csr_matrix:
    """Sublinear tf x smoothed idf, rows L2-normalised (all-zero rows stay zero).
    Row r stands for row_weight[r] identical products, so document frequencies are
    counted over products, not over distinct rows."""
    m = counts.tocsr().astype(np.float32)
    n = row_weight.sum()
    df = np.bincount(m.indices, weights=np.repeat(row_weight, np.diff(m.indptr)), minlength=m.shape[1])
    idf = (np.log((1.0 + n) / (1.0 + df)) + 1.0).astype(np.float32)
    m.data = (1.0 + np.log(m.data)) * idf[m.indices]
    return _l2_rows(m)


def _l2_rows(m: sp.csr_matrix) -> sp.csr_matrix:
    norms = np.sqrt(np.asarray(m.multiply(m).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    return sp.csr_matrix(sp.diags_array(1.0 / norms).astype(np.float32) @ m)


@dataclass
class ContentVectors:
    """Unit content rows, stored once per distinct content (a grocer's catalog repeats
    "Soft Drinks 12 Oz, National" hundreds of times); `group[p]` is product p's row."""

    rows: sp.csr_matrix  # (G, V) float32
    group: np.ndarray  # (P,) int64

    def matrix(self) -> sp.csr_matrix:
        """(P, V) one row per product."""
        return self.rows[self.group]


def content_vectors(products: pd.DataFrame, cfg: ContentConfig | None = None) -> ContentVectors:
    """Content vectors of `products` (product_table rows); see the module doc."""
    cfg = cfg or ContentConfig()
    lo, hi = cfg.char_ngrams
    attrs = attribute_columns(products, cfg.exclude_columns)
    fields = [c for c in ("title", "brand") if c in products] + attrs
    if not fields:
        return ContentVectors(sp.csr_matrix((1, 1), dtype=np.float32), np.zeros(len(products), np.int64))
    text = products[fields].fillna("").astype(str)
    group, first = _distinct_rows(text)
    distinct = text.iloc[first]
    weight = np.bincount(group, minlength=len(first)).astype(np.float64)
    blocks: list[tuple[float, sp.csr_matrix]] = []
    if "title" in distinct:
        blocks.append((cfg.title_words, _token_matrix(distinct["title"], _words)))
        blocks.append((cfg.title_chars, _token_matrix(distinct["title"], lambda t: _char_ngrams(t, lo, hi))))
    if "brand" in distinct:
        blocks.append((cfg.brand, _token_matrix(distinct["brand"], lambda t: [t.strip().lower()] if t.strip() else [])))
    if attrs:
        # '|'-joined variant values (product_table) -> one token per value
        def values(column: str) -> Callable[[str], list[str]]:
            return lambda t: [f"{column}={v.strip().lower()}" for v in t.split("|") if v.strip()]

        per_col = [_token_matrix(distinct[c], values(c)) for c in attrs]
        blocks.append((cfg.attributes, sp.hstack(per_col, format="csr")))
    parts = [_tfidf(m, weight) * np.float32(np.sqrt(w)) for w, m in blocks if w > 0]
    if not parts:
        return ContentVectors(sp.csr_matrix((len(first), 1), dtype=np.float32), group)
    return ContentVectors(_l2_rows(sp.hstack(parts, format="csr")), group)


def _distinct_rows(text: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(group of each row, first row of each group) over identical rows of `text`."""
    group = text.groupby(list(text.columns), sort=False).ngroup().to_numpy(np.int64)
    first = np.full(group.max() + 1 if len(group) else 0, len(group), np.int64)
    np.minimum.at(first, group, np.arange(len(group)))
    return group, first


def content_matrix(products: pd.DataFrame, cfg: ContentConfig | None = None) -> sp.csr_matrix:
    """(P, V) float32 CSR, one L2-normalised row per product (zero row: no content)."""
    return content_vectors(products, cfg).matrix()
