"""The loaded model bundle as arrays, and the holder that swaps it on hot reload.

`load_model` reads a bundle (training/bundle.py documents its arrays), checks that the
arrays fit together — shapes, index ranges, catalog against product ids — and derives
what the request path needs so that a request is only lookups: id -> index maps
(`IdIndex`: numpy, no Python object per id),
variant <-> product maps, variant attribute codes (size...), and products ranked by
popularity, overall and per category (sorted once here, never per request).

A `Model` is never mutated after loading; a new bundle means a new `Model`, swapped in
with one reference assignment (`Holder.swap`), so a request that took the old one
finishes on it.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cached_property
from pathlib import Path
from typing import Any, Generic, TypeVar

import numpy as np
import pandas as pd

from recsvc.idindex import IdIndex
from recsvc.pacing import pause
from training.bundle import BundleError, load_bundle

# Catalog columns with a fixed meaning; every other column is a variant attribute.
CATALOG_FIXED = ("item_id", "product_id", "category", "title", "brand", "price")
T = TypeVar("T")
_CHUNK = 5_000  # rows converted between GIL hand-overs while loading (~1.5 ms of work)


@dataclass(frozen=True)
class Attribute:
    """One variant attribute (e.g. size): a code per variant, -1 where it has none."""

    codes: np.ndarray  # (V,) int32
    values: dict[str, int]  # value -> code


@dataclass(frozen=True, eq=False)
class Model:
    version: str
    path: Path
    manifest: dict[str, Any]
    # products (P) and their categories (C)
    product_ids: np.ndarray  # (P,) str
    product_index: IdIndex
    product_title: np.ndarray  # (P,) str, the first variant's title
    product_category: np.ndarray  # (P,) int32
    category_names: list[str]
    category_index: dict[str, int]
    # variants (V): the catalog's sellable items
    variant_ids: np.ndarray  # (V,) str
    variant_index: IdIndex
    variant_product: np.ndarray  # (V,) int32
    variant_price: np.ndarray  # (V,) float64 catalog price, NaN when unknown
    product_variants_indptr: np.ndarray  # (P+1,) int64: variants of p are
    product_variants: np.ndarray  # product_variants[indptr[p]:indptr[p+1]]
    attributes: dict[str, Attribute]
    # popularity, and products ranked by it
    popularity: np.ndarray  # (P,) float32
    popularity_count: np.ndarray  # (P,) int32
    popular_order: np.ndarray  # (P,) int32, most popular first
    category_popular_indptr: np.ndarray  # (C+1,) int64: category c's products, most
    category_popular: np.ndarray  # popular first, are category_popular[indptr[c]:indptr[c+1]]
    # neighbour lists (-1 pads)
    complements_idx: np.ndarray
    complements_score: np.ndarray
    complements_support: np.ndarray
    category_complements_idx: np.ndarray
    category_complements_score: np.ndarray
    substitutes_idx: np.ndarray
    substitutes_score: np.ndarray
    # personal model
    item_factors: np.ndarray
    user_factors: np.ndarray
    user_index: IdIndex
    user_items_indptr: np.ndarray
    user_items_indices: np.ndarray
    loaded_at: datetime
    load_seconds: float

    # Lists of what a request reads entry by entry (a few dozen a call): a list hands
    # back the object, where numpy builds a scalar (or decodes a string) every time.
    @cached_property
    def product_category_list(self) -> list[int]:
        return self.product_category.tolist()

    @cached_property
    def product_id_list(self) -> list[str]:
        return _sliced_list(self.product_ids)

    @cached_property
    def product_title_list(self) -> list[str]:
        return _sliced_list(self.product_title)

    @property
    def n_products(self) -> int:
        return len(self.product_ids)

    @property
    def n_variants(self) -> int:
        return len(self.variant_ids)

    def lookup(self, item_id: str) -> tuple[int, int] | None:
        """(product, variant) for a variant id, (product, -1) for a product id, else None."""
        v = self.variant_index.get(item_id)
        if v is not None:
            return int(self.variant_product[v]), v
        p = self.product_index.get(item_id)
        return None if p is None else (p, -1)

    def variants_of(self, products: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """All variants of `products`, flat, with the position in `products` each belongs to."""
        starts = self.product_variants_indptr[products]
        counts = self.product_variants_indptr[products + 1] - starts
        owner = np.repeat(np.arange(len(products)), counts)
        first = np.repeat(starts - (np.cumsum(counts) - counts), counts)
        return self.product_variants[first + np.arange(len(owner))], owner

    def popular_in(self, category: int) -> np.ndarray:
        """Products of `category`, most popular first (a view, no copy)."""
        lo, hi = self.category_popular_indptr[category], self.category_popular_indptr[category + 1]
        return self.category_popular[lo:hi]

    def user_items(self, user: int) -> np.ndarray:
        return self.user_items_indices[self.user_items_indptr[user]:self.user_items_indptr[user + 1]]


class Holder(Generic[T]):
    """One reference, replaced whole: readers take `get()` once per request, lock-free."""

    def __init__(self, value: T | None = None) -> None:
        self._value = value
        self._lock = threading.Lock()  # orders writers only

    def get(self) -> T | None:
        return self._value

    def swap(self, new: T) -> T | None:
        with self._lock:
            old, self._value = self._value, new
        return old


def _check(cond: bool, bundle: Path, what: str) -> None:
    if not cond:
        raise BundleError(f"bundle {bundle} is inconsistent: {what}; retrain it or promote another version")


def _validate(a: dict[str, np.ndarray], path: Path) -> None:
    """Shapes and index ranges, so a request can never index out of bounds."""
    P = len(a["product_ids"])
    C = len(a["category_names"])
    U = len(a["user_ids"])
    for name in ("product_category", "popularity", "popularity_count"):
        _check(a[name].shape == (P,), path, f"{name} has shape {a[name].shape}, expected ({P},)")
    _check(P == 0 or (a["product_category"].min() >= 0 and a["product_category"].max() < C), path,
           "product_category holds codes outside category_names")
    for group, n_rows, bound in ((("complements_idx", "complements_score", "complements_support"), P, P),
                                 (("substitutes_idx", "substitutes_score"), P, P),
                                 (("category_complements_idx", "category_complements_score"), C, C)):
        idx = a[group[0]]
        _check(idx.ndim == 2 and idx.shape[0] == n_rows, path, f"{group[0]} has shape {idx.shape}, expected ({n_rows}, K)")
        for other in group[1:]:
            _check(a[other].shape == idx.shape, path, f"{other} has shape {a[other].shape}, expected {idx.shape}")
        _check(idx.size == 0 or (idx.min() >= -1 and idx.max() < bound), path, f"{group[0]} holds indices outside -1..{bound - 1}")
    f_items, f_users = a["item_factors"], a["user_factors"]
    _check(f_items.ndim == 2 and f_items.shape[0] == P, path, f"item_factors has shape {f_items.shape}, expected ({P}, F)")
    _check(f_users.ndim == 2 and f_users.shape == (U, f_items.shape[1]), path,
           f"user_factors has shape {f_users.shape}, expected ({U}, {f_items.shape[1]})")
    indptr, indices = a["user_items_indptr"], a["user_items_indices"]
    _check(indptr.shape == (U + 1,) and indptr[0] == 0 and indptr[-1] == len(indices)
           and bool(np.all(np.diff(indptr) >= 0)), path, "user_items_indptr does not index user_items_indices")
    _check(indices.size == 0 or (indices.min() >= 0 and indices.max() < P), path,
           "user_items_indices holds products outside product_ids")


def _sliced_list(a: np.ndarray) -> list:
    """a.tolist(), in slices with the GIL handed over in between (built while loading)."""
    out: list = []
    for lo in range(0, len(a), _CHUNK):
        out += a[lo:lo + _CHUNK].tolist()
        if lo + _CHUNK < len(a):
            pause()
    return out


def _strings(col: pd.Series) -> np.ndarray:
    """A text column as a fixed-width unicode array (missing -> ""), converted in slices
    with the GIL handed over in between: a hot reload must not stall requests."""
    parts = []
    for lo in range(0, len(col), _CHUNK):
        parts.append(col.iloc[lo:lo + _CHUNK].astype("string").fillna("").to_numpy(dtype=str))
        pause()  # a window for request threads (recsvc.pacing), not just a chance
    return np.concatenate(parts) if parts else np.empty(0, dtype=str)


def load_model(path: str | Path, *, verify: bool = True, mapped: bool = False) -> Model:
    """Load and check a bundle (a model dir following `current`, or a bundle dir).

    Raises BundleError, saying what is wrong, for anything the service cannot serve.
    mapped: the bundle's arrays stay memory maps of its files (for a process that serves
    no requests: the model image's child, which copies them on file to file).
    """
    t0 = time.perf_counter()
    # Otherwise read into memory: a request must never wait on a page fault, and a
    # freshly swapped-in model would fault on its first requests.
    b = load_bundle(path, verify=verify, mmap=mapped, pause=pause)
    a, path = b.arrays, b.path
    _validate(a, path)
    pause()
    product_ids = np.asarray(a["product_ids"], dtype=str)
    product_index = IdIndex(product_ids)
    pause()
    _check(not product_index.has_duplicates(), path, "product_ids are not unique")
    category_names = [str(s) for s in a["category_names"].tolist()]
    P, C = len(product_ids), len(category_names)

    cat = b.tables["catalog"]
    missing = [c for c in ("item_id", "category") if c not in cat.columns]
    _check(not missing, path, f"catalog.parquet lacks column(s) {', '.join(missing)}")
    variant_ids = _strings(cat["item_id"])
    variant_index = IdIndex(variant_ids)
    pause()
    _check(not variant_index.has_duplicates(), path, "catalog item_ids are not unique")
    variant_product_ids = _strings(cat["product_id"]) if "product_id" in cat.columns else variant_ids
    variant_product = product_index.codes(variant_product_ids).astype(np.int32)
    unknown = np.flatnonzero(variant_product < 0)
    _check(len(unknown) == 0, path, f"catalog products missing from product_ids, e.g. "
                                    f"{variant_product_ids[unknown[:3]].tolist()}")
    counts = np.bincount(variant_product, minlength=P)
    _check(bool(np.all(counts > 0)), path, "some product_ids have no catalog row")
    pause()
    product_variants = np.argsort(variant_product, kind="stable").astype(np.int32)
    pause()
    indptr = np.zeros(P + 1, np.int64)
    np.cumsum(counts, out=indptr[1:])

    first_variant = product_variants[indptr[:-1]]
    titles = _strings(cat["title"].iloc[first_variant]) if "title" in cat.columns else product_ids
    price = (cat["price"].to_numpy(dtype=np.float64, na_value=np.nan) if "price" in cat.columns
             else np.full(len(cat), np.nan))
    attributes: dict[str, Attribute] = {}
    for col in cat.columns:
        if col in CATALOG_FIXED:
            continue
        values = _strings(cat[col])
        names, codes = np.unique(values, return_inverse=True)
        codes = np.where(values == "", -1, codes).astype(np.int32)
        attributes[str(col)] = Attribute(codes=codes, values={str(v): i for i, v in enumerate(names) if v})
        pause()

    popularity = np.asarray(a["popularity"], dtype=np.float32)
    product_category = np.asarray(a["product_category"], dtype=np.int32)
    popular_order = np.argsort(-popularity, kind="stable").astype(np.int32)
    pause()
    by_category = popular_order[np.argsort(product_category[popular_order], kind="stable")]
    pause()
    cat_indptr = np.zeros(C + 1, np.int64)
    np.cumsum(np.bincount(product_category, minlength=C), out=cat_indptr[1:])
    user_index = IdIndex(np.asarray(a["user_ids"], dtype=str))
    _check(not user_index.has_duplicates(), path, "user_ids are not unique")

    model = Model(
        version=b.version, path=path, manifest=b.manifest,
        product_ids=product_ids, product_index=product_index, product_title=titles,
        product_category=product_category,
        category_names=category_names, category_index={c: i for i, c in enumerate(category_names)},
        variant_ids=variant_ids, variant_index=variant_index, variant_product=variant_product,
        variant_price=price, product_variants_indptr=indptr, product_variants=product_variants,
        attributes=attributes,
        popularity=popularity, popularity_count=np.asarray(a["popularity_count"], dtype=np.int32),
        popular_order=popular_order, category_popular_indptr=cat_indptr,
        category_popular=by_category.astype(np.int32),
        complements_idx=a["complements_idx"], complements_score=a["complements_score"],
        complements_support=a["complements_support"],
        category_complements_idx=a["category_complements_idx"],
        category_complements_score=a["category_complements_score"],
        substitutes_idx=a["substitutes_idx"], substitutes_score=a["substitutes_score"],
        item_factors=a["item_factors"], user_factors=a["user_factors"], user_index=user_index,
        user_items_indptr=a["user_items_indptr"], user_items_indices=a["user_items_indices"],
        loaded_at=datetime.now(timezone.utc), load_seconds=time.perf_counter() - t0,
    )
    for lists in ("product_category_list", "product_id_list", "product_title_list"):
        pause()
        getattr(model, lists)  # built here, not in the first request after a swap
    return model
