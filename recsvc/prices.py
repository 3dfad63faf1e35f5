"""Current prices: the catalog's, overridden per variant through Admin, backed by the store.

A product's price is the lowest known price of its variants ("from"), the figure the
price filters and the substitutes' price band use. Overrides live in the store, so
they survive restarts and reach other replicas (`refresh`), and outlive a model swap:
a new catalog is priced with the overrides that name its variants.

Arrays are replaced whole on every write (copy-on-write, like `Inventory`), so a
request reading `view()` once sees one consistent state without taking a lock.
"""
from __future__ import annotations

import math
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from recsvc.inventory import UnknownItems
from recsvc.model import Model
from recsvc.store.base import PriceUpdate, Store


@dataclass(frozen=True)
class PriceView:
    variant: np.ndarray  # (V,) float64, NaN when unknown
    product: np.ndarray  # (P,) float64, min over the product's variants, NaN when none known


class Prices:
    def __init__(self, store: Store, model: Model) -> None:
        self._store = store
        self._model = model
        self._lock = threading.Lock()
        self._overrides = store.all_prices()  # what the view holds: refresh rebuilds only on a change
        self._view = self._publish(model.variant_price.copy(), self._overrides.items())

    def view(self) -> PriceView:
        return self._view

    def apply(self, updates: Sequence[PriceUpdate]) -> None:
        """Validate, store durably, then serve. UnknownItems/ValueError change nothing."""
        unknown = [u.item_id for u in updates if u.item_id not in self._model.variant_index]
        if unknown:
            raise UnknownItems(unknown)
        for u in updates:
            if not isinstance(u.price, (int, float)) or not math.isfinite(u.price) or u.price < 0:
                raise ValueError(f"price of {u.item_id!r}: must be a number >= 0, got {u.price!r}")
        with self._lock:
            self._store.upsert_prices(updates)
            self._view = self._publish(self._view.variant.copy(), ((u.item_id, u.price) for u in updates))
            self._overrides = {**self._overrides, **{u.item_id: float(u.price) for u in updates}}

    def refresh(self) -> None:
        """Re-read every override (other replicas' writes); cheap while overrides are few.
        The arrays are rebuilt only when the overrides changed: a rebuild of a 100k-product
        catalog holds the GIL for 6-14 ms, a stall for every request queued behind it."""
        overrides = self._store.all_prices()
        with self._lock:
            if overrides == self._overrides:
                return
            self._view = self._publish(self._model.variant_price.copy(), overrides.items())
            self._overrides = overrides

    def _publish(self, variant: np.ndarray, overrides: Iterable[tuple[str, float]]) -> PriceView:
        pairs = list(overrides)
        if pairs:
            codes = self._model.variant_index.codes([item_id for item_id, _ in pairs])
            known = codes >= 0  # overrides for items of another catalog stay stored, unused
            variant[codes[known]] = np.asarray([price for _, price in pairs], dtype=np.float64)[known]
        m = self._model
        ordered = variant[m.product_variants]
        # fmin ignores NaN unless all are NaN: a product priced by any variant has a price.
        product = np.fmin.reduceat(ordered, m.product_variants_indptr[:-1]) if len(ordered) else np.empty(0)
        variant.flags.writeable = False
        product.flags.writeable = False
        return PriceView(variant, product)
