"""Stock per variant as numpy arrays, with a product-level roll-up, backed by the store.

The request path reads two boolean arrays — `variant_stock` (V,) and
`product_in_stock` (P,) — and never touches the store. Writes (`apply`, `refresh`)
go to the store first and then publish new read-only arrays in one reference
assignment (copy-on-write), so a reader sees either the old or the new state, never
half of a batch. A single lock orders writers; readers take no lock.

A variant with no stock record is in stock: a shop that never sends inventory
updates still gets recommendations. A record with quantity <= 0 is out of stock.

>>> inv = Inventory(store, item_ids, item_product, n_products)       # doctest: +SKIP
>>> inv.apply([StockUpdate("jacket-XL", 0)])                         # doctest: +SKIP
>>> inv.product_in_stock[jacket]   # still True while another size is left  # doctest: +SKIP
"""
from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from recsvc.idindex import IdIndex
from recsvc.pacing import pause
from recsvc.store.base import StockUpdate, Store


_SLICE = 5_000  # stock records turned into codes between GIL hand-overs (~2 ms)


class UnknownItems(KeyError):
    """Stock updates named items that the current catalog does not have."""

    def __init__(self, item_ids: Sequence[str]) -> None:
        self.item_ids = list(item_ids)
        super().__init__(self.item_ids)

    def __str__(self) -> str:
        shown = ", ".join(self.item_ids[:10])
        more = f" (+{len(self.item_ids) - 10} more)" if len(self.item_ids) > 10 else ""
        return f"unknown item ids: {shown}{more}"


@dataclass(frozen=True)
class _Carried:
    """An inventory's state for the next catalog (`Inventory.rebind`)."""

    seq: int
    out_of_stock: np.ndarray  # ids of its catalog's variants out of stock
    elsewhere: tuple[str, ...]  # ids outside its catalog that records put out of stock


@dataclass(frozen=True)
class StockView:
    """One consistent state: both arrays come from the same set of updates."""

    variant: np.ndarray  # (V,) bool
    product: np.ndarray  # (P,) bool, any variant of the product in stock


class Inventory:
    def __init__(self, store: Store, item_ids: np.ndarray, item_product: np.ndarray,
                 n_products: int, index: IdIndex | None = None, *, carried: _Carried | None = None) -> None:
        item_product = np.asarray(item_product, dtype=np.int32)
        if len(item_ids) != len(item_product):
            raise ValueError(f"item_product: {len(item_product)} codes for {len(item_ids)} items")
        if len(item_product) and (item_product.min() < 0 or item_product.max() >= n_products):
            raise ValueError(f"item_product: codes must lie in 0..{n_products - 1}")
        self._store = store
        self._item_ids = np.asarray(item_ids)
        self._item_product = item_product
        self._n_products = int(n_products)
        # The model's index when given (a hot swap must not spend half a second holding
        # the GIL on a dict of 300k ids while requests wait); else one built here.
        self._index = index if index is not None else IdIndex(self._item_ids)
        self._lock = threading.Lock()
        self._elsewhere: set[str] = set()  # out of stock, by records naming items outside this catalog
        variant = np.ones(len(self._item_ids), dtype=bool)
        if carried is None:
            # Every record has seq >= 1, so "changes since 0" is the whole table, read
            # together with the seq it is current to.
            self._seq, changes = store.stock_changes_since(0)
        else:  # a previous catalog's state, its ids looked up as arrays (no str per id)
            self._seq = carried.seq
            codes = self._index.codes(carried.out_of_stock)
            variant[codes[codes >= 0]] = False
            self._elsewhere.update(carried.out_of_stock[codes < 0].tolist())  # no longer sold: for a later catalog
            changes = [(i, 0) for i in carried.elsewhere]  # one of them may be sold here
        self._view = self._publish(variant, changes)

    # --- reads (request path) ---------------------------------------------------------
    @property
    def variant_stock(self) -> np.ndarray:
        return self._view.variant

    @property
    def product_in_stock(self) -> np.ndarray:
        return self._view.product

    def view(self) -> StockView:
        """Both arrays from one state, for a request that reads both."""
        return self._view

    def variant_in_stock(self, variant_idx: int) -> bool:
        return bool(self._view.variant[variant_idx])

    @property
    def seq(self) -> int:
        """The store's stock sequence this inventory has pulled up to (see `refresh`)."""
        return self._seq

    # --- writes -----------------------------------------------------------------------
    def apply(self, updates: Sequence[StockUpdate]) -> int:
        """Store `updates` durably, then serve them; return the batch's sequence number.

        Raises UnknownItems (nothing stored, nothing changed) when any id is not in
        the catalog, and StoreUnavailable when the store cannot take the write.
        """
        codes = self._index.codes([u.item_id for u in updates])
        unknown = [updates[i].item_id for i in np.flatnonzero(codes < 0).tolist()]
        if unknown:
            raise UnknownItems(unknown)
        with self._lock:
            seq = self._store.upsert_stock(updates)
            self._view = self._publish(self._view.variant.copy(), updates)
            # Seqs commit in order (the counter row is locked until commit), so when ours
            # comes right after what was pulled there is nothing in between to read:
            # skip reading our own rows back (a 20k-row upload took the GIL ~110 ms at
            # the next refresh, while requests waited). Otherwise another replica wrote
            # in between and refresh() pulls both.
            if updates and seq == self._seq + 1:
                self._seq = seq
        return seq

    def refresh(self) -> int:
        """Pull stock changes written through the store by others; return the seq reached."""
        with self._lock:
            seq, changes = self._store.stock_changes_since(self._seq)
            if changes:
                self._view = self._publish(self._view.variant.copy(), changes)
            self._seq = seq
        return seq

    def rebind(self, item_ids: np.ndarray, item_product: np.ndarray, n_products: int,
               index: IdIndex | None = None) -> "Inventory":
        """A new inventory over a new catalog (model hot swap) with this one's stock, and
        `refresh()` to come for what others wrote since. Reading every stored level again
        instead (60k records in the benchmark) took ~130 ms of CPU per swap, much of it
        holding the GIL, while the worker answered requests."""
        with self._lock:
            carried = _Carried(self._seq, self._item_ids[~self._view.variant], tuple(self._elsewhere))
        return Inventory(self._store, item_ids, item_product, n_products, index, carried=carried)

    # --- internals --------------------------------------------------------------------
    def _publish(self, variant: np.ndarray, changes: Sequence[StockUpdate]) -> StockView:
        # Vectorised, in slices with the GIL handed over between: a start-up or swap reads
        # every stock record (60k ids in one go held it for ~25 ms while requests waited).
        # Slices in order, so a later record of an item overwrites an earlier one.
        for lo in range(0, len(changes), _SLICE):
            part = changes[lo:lo + _SLICE][::-1]  # reversed: np.unique's first is the latest
            codes = self._index.codes([u[0] for u in part])  # (item_id, quantity) tuples or StockUpdates
            in_stock = np.fromiter((u[1] > 0 for u in part), bool, len(part))
            known = codes >= 0  # records for items outside this catalog are kept, not served
            latest, first = np.unique(codes[known], return_index=True)
            variant[latest] = in_stock[known][first]
            for j in np.flatnonzero(~known)[::-1].tolist():  # oldest first: the latest stays
                (self._elsewhere.discard if in_stock[j] else self._elsewhere.add)(part[j][0])
            if lo + _SLICE < len(changes):
                pause()
        in_stock_per_product = np.bincount(self._item_product[variant],
                                           minlength=self._n_products)
        product = in_stock_per_product > 0
        variant.flags.writeable = False
        product.flags.writeable = False
        return StockView(variant, product)
