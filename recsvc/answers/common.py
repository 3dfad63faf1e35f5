"""What every query kind shares: request and answer records, errors, and the filters.

A request takes one `Live` snapshot (model + stock + prices of one moment) and works
on it alone; a model swap or a stock update during the request does not tear it.
Filters are evaluated on the K candidates of a precomputed row at once (`Scope.keep`),
never over the catalog.
"""
from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from recsvc.config import Config
from recsvc.inventory import Inventory, StockView
from recsvc.model import Model
from recsvc.prices import Prices, PriceView
from recsvc.promotions import PromotionBook

MAX_LIMIT = 100
SCAN_CAP = 4096  # most ranked products a fill walks through before giving up


class Reason(enum.IntEnum):
    UNSPECIFIED = 0  # the anchor of a bundle: asked for, not recommended
    CO_PURCHASE = 1
    SIMILAR = 2
    CATEGORY_FALLBACK = 3
    PERSONAL = 4
    POPULAR = 5
    TEST_SLOT = 6


class BadRequest(ValueError):
    """A request field is wrong; `field` is its path in the request ("filter.min_price")."""

    def __init__(self, field_path: str, message: str) -> None:
        self.field = field_path
        super().__init__(f"{field_path}: {message}")


class UnknownItem(LookupError):
    def __init__(self, item_id: str, field_path: str) -> None:
        self.item_id, self.field = item_id, field_path
        super().__init__(f"{field_path}: item {item_id!r} is not in the catalog of the loaded model")


@dataclass(frozen=True, slots=True)
class Context:
    user_id: str = ""
    cart_item_ids: tuple[str, ...] = ()
    shown_item_ids: tuple[str, ...] = ()
    shop_id: str = ""
    session_id: str = ""


@dataclass(frozen=True, slots=True)
class ItemFilter:
    include_out_of_stock: bool = False
    exclude_item_ids: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    min_price: float | None = None
    max_price: float | None = None
    attributes: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class AnsweredItem:
    item_id: str  # product id
    score: float
    reason: Reason
    explanation: str
    title: str
    category: str
    price: float | None
    in_stock: bool
    variant_id: str = ""
    exposure_id: str = ""  # in an A/B experiment's slot (see answers/slots.py)


@dataclass(slots=True)
class Answer:
    """The answer's items as columns: built with a few vectorised lookups and turned into
    a message without an object per item (the request path's largest cost otherwise)."""

    item_ids: list[str]
    scores: list[float]
    reasons: list[Reason]
    explanations: list[str]
    titles: list[str]
    categories: list[str]
    prices: list[float | None]
    in_stock: list[bool]
    variant_ids: list[str]
    model_version: str = ""
    exposure_ids: list[str] | None = None  # per item, "" outside A/B slots; None: no slot at all
    # Kept for A/B slots (answers/slots.py), so they need no second lookup of the ids:
    product_codes: list[int] | None = None  # per item, the product's code in the model
    excluded_codes: np.ndarray | None = None  # products the request ruled out (anchors, cart, shown...)

    @property
    def items(self) -> list[AnsweredItem]:
        """The same, as one record per item."""
        return [AnsweredItem(*row) for row in zip(self.item_ids, self.scores, self.reasons, self.explanations,
                                                  self.titles, self.categories, self.prices, self.in_stock,
                                                  self.variant_ids, self.exposure_ids or [""] * len(self.item_ids))]


@dataclass(frozen=True, eq=False)
class Live:
    """What a request reads: one model and the mutable state bound to its catalog."""

    model: Model
    inventory: Inventory
    prices: Prices
    promotions: PromotionBook
    config: Config


def check_limit(limit: int, field_path: str = "limit", top: int = MAX_LIMIT) -> int:
    if not 1 <= limit <= top:
        raise BadRequest(field_path, f"must be within 1..{top}, got {limit}")
    return limit


def resolve(model: Model, item_id: str, field_path: str) -> tuple[int, int]:
    """(product, variant or -1); UnknownItem when the catalog has no such id."""
    if not item_id:
        raise BadRequest(field_path, "must name an item")
    hit = model.lookup(item_id)
    if hit is None:
        raise UnknownItem(item_id, field_path)
    return hit


def products_of(model: Model, ids: Iterable[str]) -> list[int]:
    """Products named by variant or product ids; ids unknown to the catalog are skipped
    (a cart may hold items newer than the model)."""
    out = []
    for item_id in ids:
        hit = model.lookup(item_id)
        if hit is not None:
            out.append(hit[0])
    return out


def request_exclusions(model: Model, ctx: Context, filt: ItemFilter) -> list[int]:
    """Products the request rules out for every answer kind: cart, already shown, and
    `filter.exclude_item_ids`."""
    return products_of(model, ctx.cart_item_ids) + products_of(model, ctx.shown_item_ids) \
        + products_of(model, filt.exclude_item_ids)


class Scope:
    """The filters of one request over one snapshot, applied to candidate arrays."""

    def __init__(self, live: Live, filt: ItemFilter, excluded: Sequence[int],
                 blocked_categories: Sequence[int] = (), within: Sequence[int] | None = None) -> None:
        """`blocked_categories` never pass; with `within`, only those categories pass."""
        if filt.min_price is not None and filt.max_price is not None and filt.min_price > filt.max_price:
            raise BadRequest("filter.min_price", f"must not exceed filter.max_price "
                                                 f"({filt.min_price} > {filt.max_price})")
        m = self.model = live.model
        self.stock: StockView = live.inventory.view()
        self.prices: PriceView = live.prices.view()
        self.filt = filt
        self.excluded = np.asarray(sorted(set(excluded)), dtype=np.int32)
        self.category_ok: np.ndarray | None = None
        if filt.categories or blocked_categories or within is not None:
            ok = np.ones(len(m.category_names), bool)
            if filt.categories:
                ok[:] = False
                for i, name in enumerate(filt.categories):
                    code = m.category_index.get(name)
                    if code is None:
                        raise BadRequest(f"filter.categories[{i}]", f"unknown category {name!r}")
                    ok[code] = True
            if within is not None:
                inside = np.zeros_like(ok)
                inside[list(within)] = True
                ok &= inside
            ok[list(blocked_categories)] = False
            self.category_ok = ok
        self.attrs: list[tuple[np.ndarray, int]] = []
        for name, value in filt.attributes.items():
            attr = m.attributes.get(name)
            if attr is None:
                known = ", ".join(sorted(m.attributes)) or "none"
                raise BadRequest(f"filter.attributes[{name!r}]", f"unknown attribute (the catalog has: {known})")
            self.attrs.append((attr.codes, attr.values.get(value, -2)))  # -2 matches no variant

    def keep(self, cands: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(mask of candidates passing every filter, the matching variant per candidate or -1)."""
        m, f = self.model, self.filt
        # Start from the stock test (a fresh array): it applies to nearly every request.
        by_product_stock = not self.attrs and not f.include_out_of_stock
        ok = self.stock.product[cands] if by_product_stock else np.ones(len(cands), bool)
        if len(self.excluded):
            if len(cands) * len(self.excluded) <= 4096:  # small: one broadcast compare
                ok &= ~(cands[:, None] == self.excluded[None, :]).any(1)
            else:
                out = np.zeros(m.n_products, bool)
                out[self.excluded] = True
                ok &= ~out[cands]
        if self.category_ok is not None:
            ok &= self.category_ok[m.product_category[cands]]
        if f.min_price is not None or f.max_price is not None:
            price = self.prices.product[cands]  # NaN (unknown) fails any price bound
            if f.min_price is not None:
                ok &= price >= f.min_price
            if f.max_price is not None:
                ok &= price <= f.max_price
        if self.attrs:
            has, variant = self._variant_match(cands)
            ok &= has
            return ok, variant
        return ok, np.full(len(cands), -1, np.int32)

    def _variant_match(self, cands: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per candidate: has it a variant with every asked attribute (in stock unless
        out-of-stock items are asked for), and the first such variant."""
        variants, owner = self.model.variants_of(cands)
        ok = np.ones(len(variants), bool)
        for codes, code in self.attrs:
            ok &= codes[variants] == code
        if not self.filt.include_out_of_stock:
            ok &= self.stock.variant[variants]
        hits = np.flatnonzero(ok)[::-1]  # reversed: the first matching variant is written last
        chosen = np.full(len(cands), -1, np.int32)
        chosen[owner[hits]] = variants[hits]
        return chosen >= 0, chosen

    def walk(self, ranked: np.ndarray, need: int, extra: Callable[[np.ndarray], np.ndarray] | None = None
             ) -> tuple[np.ndarray, np.ndarray]:
        """The first `need` products of a ranked list that pass the filters (and `extra`,
        a test over a chunk of products, when given), read in chunks so that a popular
        list of 10k products costs only what it takes to fill the answer."""
        got_p: list[np.ndarray] = []
        got_v: list[np.ndarray] = []
        n, step = 0, max(64, 4 * need)
        for lo in range(0, min(len(ranked), SCAN_CAP), step):
            chunk = ranked[lo:lo + step]
            ok, var = self.keep(chunk)
            if extra is not None:
                ok &= extra(chunk)
            idx = np.flatnonzero(ok)[:need - n]
            got_p.append(chunk[idx])
            got_v.append(var[idx])
            n += len(idx)
            if n >= need:
                break
        if not got_p:
            return np.empty(0, np.int32), np.empty(0, np.int32)
        return np.concatenate(got_p), np.concatenate(got_v)

    def price_of(self, product: int, variant: int) -> float | None:
        x = self.prices.variant[variant] if variant >= 0 else self.prices.product[product]
        return None if x != x else float(x)  # NaN: the catalog has no price

    def answer(self, products: Sequence[int], variants: Sequence[int], scores: Sequence[float],
               reasons: Sequence[Reason], explanations: Sequence[str]) -> Answer:
        """Dress chosen products as an answer; lookups done for all of them at once."""
        m = self.model
        if not len(products):
            return Answer([], [], [], [], [], [], [], [], [], m.version, None, [], self.excluded)
        p = np.asarray(products, dtype=np.int64)
        v = np.asarray(variants, dtype=np.int64)
        vl = v.tolist()
        if max(vl) < 0:  # no variant chosen (no attribute filter): product-level figures
            price, stock = self.prices.product[p], self.stock.product[p]
        else:
            has_v = v >= 0
            vv = np.where(has_v, v, 0)
            price = np.where(has_v, self.prices.variant[vv], self.prices.product[p])
            stock = np.where(has_v, self.stock.variant[vv], self.stock.product[p])
        prices = price.tolist()
        if np.isnan(price.sum()):  # unknown prices (NaN) travel as None
            prices = [None if x != x else x for x in prices]
        stock = stock.tolist()
        names = m.category_names
        vids = m.variant_ids[np.maximum(v, 0)].tolist()
        return Answer(m.product_ids[p].tolist(), list(scores), list(reasons), list(explanations),
                      m.product_title[p].tolist(), [names[c] for c in m.product_category[p].tolist()], prices, stock,
                      [vid if b >= 0 else "" for vid, b in zip(vids, vl)], m.version, None, p.tolist(),
                      self.excluded)

    def item(self, product: int, variant: int, score: float, reason: Reason, explanation: str) -> AnsweredItem:
        return self.answer([product], [variant], [score], [reason], [explanation]).items[0]


def describe_attributes(attributes: dict[str, str]) -> str:
    """{"size": "XL"} -> "size XL"."""
    return ", ".join(f"{k} {v}" for k, v in attributes.items())


def money(x: float) -> str:
    return f"{x:,.2f}"
