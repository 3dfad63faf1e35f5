"""What every query kind shares: request and answer records, errors, and the filters.

A request takes one `Live` snapshot (model + stock + prices of one moment) and works
on it alone; a model swap or a stock update during the request does not tear it.
Filters are evaluated on the candidates of a precomputed row, one by one until the
answer is full (`Scope.first`) or on a whole array at once (`Scope.keep`), never over
the catalog.
"""
from __future__ import annotations

import enum
import itertools
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

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
    excluded_codes: Collection[int] | None = None  # products the request ruled out (anchors, cart, shown...)

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
    kernel: Any = None  # recsvc.fast.Kernel of this model, or None: Python answers all


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
    """The filters of one request over one snapshot, applied to candidates.

    Two ways, same rules: `first` walks a ranked list in plain Python and stops as soon
    as the answer is full (a request reads 10-30 candidates of a 50-long row, where a
    numpy call's fixed cost would dominate); `keep` tests a whole array at once (the
    hundreds of candidates a personal recommendation scores).
    """

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
        self.excluded_set = set(excluded)
        self._excluded: np.ndarray | None = None
        allowed: set[int] | None = None
        if filt.categories:
            allowed = set()
            for i, name in enumerate(filt.categories):
                code = m.category_index.get(name)
                if code is None:
                    raise BadRequest(f"filter.categories[{i}]", f"unknown category {name!r}")
                allowed.add(code)
        if within is not None:
            allowed = set(within) if allowed is None else allowed & set(within)
        self.allowed_categories = allowed
        self.blocked_categories = set(blocked_categories)
        self._category_ok: np.ndarray | None = None
        self.price_lo, self.price_hi = filt.min_price, filt.max_price
        self.attrs: list[tuple[np.ndarray, int]] = []
        for name, value in filt.attributes.items():
            attr = m.attributes.get(name)
            if attr is None:
                known = ", ".join(sorted(m.attributes)) or "none"
                raise BadRequest(f"filter.attributes[{name!r}]", f"unknown attribute (the catalog has: {known})")
            self.attrs.append((attr.codes, attr.values.get(value, -2)))  # -2 matches no variant

    @property
    def excluded(self) -> np.ndarray:
        if self._excluded is None:
            self._excluded = np.asarray(sorted(self.excluded_set), dtype=np.int32)
        return self._excluded

    @property
    def category_ok(self) -> np.ndarray | None:
        """Per category code: may it be answered (None: every category may)."""
        if self._category_ok is None and (self.allowed_categories is not None or self.blocked_categories):
            ok = np.ones(len(self.model.category_names), bool)
            if self.allowed_categories is not None:
                ok[:] = False
                ok[list(self.allowed_categories)] = True
            ok[list(self.blocked_categories)] = False
            self._category_ok = ok
        return self._category_ok

    def first(self, cands: Sequence[int], limit: int) -> tuple[list[int], list[int]]:
        """Positions in `cands` (product codes, -1 = padding) of the first `limit` that pass
        every filter, and the matching variant of each (-1 without an attribute filter)."""
        m, f = self.model, self.filt
        excluded = self.excluded_set
        attrs = self.attrs  # then stock is a property of the variant, tested last
        stock = None if f.include_out_of_stock or attrs else self.stock.product
        allowed, blocked = self.allowed_categories, self.blocked_categories
        category = m.product_category_list if (allowed is not None or blocked) else None
        lo, hi = self.price_lo, self.price_hi
        price = self.prices.product if (lo is not None or hi is not None) else None
        pos: list[int] = []
        var: list[int] = []
        for i, c in enumerate(cands):
            if c < 0 or c in excluded:
                continue
            if stock is not None and not stock[c]:
                continue
            if category is not None:
                k = category[c]
                if k in blocked or (allowed is not None and k not in allowed):
                    continue
            if price is not None:  # NaN (unknown) fails any bound
                x = price[c]
                if (lo is not None and not x >= lo) or (hi is not None and not x <= hi):
                    continue
            if attrs:
                v = self._variant_of(c)
                if v < 0:
                    continue
                var.append(v)
            pos.append(i)
            if len(pos) >= limit:
                break
        return pos, var if attrs else [-1] * len(pos)

    def _variant_of(self, product: int) -> int:
        """The first variant of `product` with every asked attribute (in stock unless
        out-of-stock items are asked for), else -1."""
        m = self.model
        in_stock = None if self.filt.include_out_of_stock else self.stock.variant
        indptr = m.product_variants_indptr
        for v in m.product_variants[indptr[product]:indptr[product + 1]].tolist():
            if (in_stock is None or in_stock[v]) and all(codes[v] == code for codes, code in self.attrs):
                return v
        return -1

    def keep(self, cands: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(mask of candidates passing every filter, the matching variant per candidate or -1)."""
        m, f = self.model, self.filt
        # Start from the stock test (a fresh array): it applies to nearly every request.
        by_product_stock = not self.attrs and not f.include_out_of_stock
        ok = self.stock.product[cands] if by_product_stock else np.ones(len(cands), bool)
        if self.excluded_set:
            excluded = self.excluded
            if len(cands) * len(excluded) <= 4096:  # small: one broadcast compare
                ok &= ~(cands[:, None] == excluded[None, :]).any(1)
            else:
                out = np.zeros(m.n_products, bool)
                out[excluded] = True
                ok &= ~out[cands]
        category_ok = self.category_ok
        if category_ok is not None:
            ok &= category_ok[m.product_category[cands]]
        if self.price_lo is not None or self.price_hi is not None:
            price = self.prices.product[cands]  # NaN (unknown) fails any price bound
            if self.price_lo is not None:
                ok &= price >= self.price_lo
            if self.price_hi is not None:
                ok &= price <= self.price_hi
        variant = np.full(len(cands), -1, np.int32)
        if self.attrs:  # variants only of the candidates the product-level tests left
            idx = np.flatnonzero(ok)
            has, variant[idx] = self._variant_match(cands[idx])
            ok[idx] = has
        return ok, variant

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

    def passing(self, ranked: np.ndarray, head: int = 16) -> Iterator[tuple[int, int]]:
        """(product, variant) of a ranked list that pass the filters, in order, read
        lazily: the first `head` one by one (they usually fill an answer), then chunks
        growing 4x tested at once, so a strict filter over a 10k popular list costs a few
        array operations, not 10k steps."""
        for lo, hi in _chunks(min(len(ranked), SCAN_CAP), head):
            if lo == 0:
                part = ranked[:hi].tolist()
                pos, var = self.first(part, len(part))
                yield from ((part[i], v) for i, v in zip(pos, var))
            else:
                part = ranked[lo:hi]
                ok, variant = self.keep(part)
                idx = np.flatnonzero(ok)
                yield from zip(part[idx].tolist(), variant[idx].tolist())

    def walk(self, ranked: np.ndarray, need: int) -> tuple[list[int], list[int]]:
        """The first `need` products of a ranked list that pass the filters, and their variants."""
        got = list(itertools.islice(self.passing(ranked, max(16, 2 * need)), need))
        return [p for p, _ in got], [v for _, v in got]

    def price_of(self, product: int, variant: int) -> float | None:
        x = self.prices.variant[variant] if variant >= 0 else self.prices.product[product]
        return None if x != x else float(x)  # NaN: the catalog has no price

    def narrow_prices(self, lo: float, hi: float) -> None:
        """Only products priced within [lo, hi] pass, besides the filter's own bounds."""
        self.price_lo = lo if self.price_lo is None else max(lo, self.price_lo)
        self.price_hi = hi if self.price_hi is None else min(hi, self.price_hi)

    def answer(self, products: Sequence[int], variants: Sequence[int], scores: Sequence[float],
               reasons: Sequence[Reason], explanations: Sequence[str]) -> Answer:
        """Dress chosen products as an answer (a handful: read one by one)."""
        m = self.model
        product_ids, titles, category, names = m.product_id_list, m.product_title_list, m.product_category_list, \
            m.category_names
        variant_ids = m.variant_ids
        p_price, v_price, p_stock, v_stock = self.prices.product, self.prices.variant, self.stock.product, \
            self.stock.variant
        ids, title, cats, prices, stock, vids = [], [], [], [], [], []
        for p, v in zip(products, variants):
            ids.append(product_ids[p])
            title.append(titles[p])
            cats.append(names[category[p]])
            if v >= 0:  # the variant the filter asked for: its own price and stock
                x, s = v_price[v], v_stock[v]
                vids.append(str(variant_ids[v]))
            else:
                x, s = p_price[p], p_stock[p]
                vids.append("")
            prices.append(None if x != x else float(x))  # NaN: the catalog has no price
            stock.append(bool(s))
        return Answer(ids, list(scores), list(reasons), list(explanations), title, cats, prices, stock, vids,
                      m.version, None, [int(p) for p in products], self.excluded_set)

    def item(self, product: int, variant: int, score: float, reason: Reason, explanation: str) -> AnsweredItem:
        return self.answer([product], [variant], [score], [reason], [explanation]).items[0]


def _chunks(n: int, head: int) -> Iterable[tuple[int, int]]:
    """[0, head), then ranges growing 4x, up to n."""
    lo, size = 0, head
    while lo < n:
        yield lo, min(n, lo + size)
        lo += size
        size *= 4


def describe_attributes(attributes: dict[str, str]) -> str:
    """{"size": "XL"} -> "size XL"."""
    return ", ".join(f"{k} {v}" for k, v in attributes.items())


def money(x: float) -> str:
    return f"{x:,.2f}"
