"""Merchandisers' bundle discounts: definition, validation, and pricing a bundle.

A `Promotion` discounts a whole bundle when the bundle holds at least `min_items`
lines and one of its lines (the anchor or a complement) is named in `item_ids` (by
variant id or product id) or falls in one of `categories`. The discount is a percent
of the bundle's list price or a fixed amount, never more than `cap` nor the list price.

`PromotionBook` keeps the promotions in memory so that pricing a bundle on the
request path never touches the store; writes go to the store first.

Money is computed in `Decimal` and rounded to cents half-up (0.005 -> 0.01), so a
bundle price plus its saving always equals its list price to the cent.

>>> book = PromotionBook(open_store("sqlite:///state.db"))        # doctest: +SKIP
>>> book.create(Promotion("", "Winter set", [], ["gloves"], "percent", 20, 15.0,
...                       starts, ends))                            # doctest: +SKIP
>>> book.price_bundle([BundleLine("jacket-M", "jacket", "coats", 120.0),
...                    BundleLine("glove-S", "glove", "gloves", 30.0)], now)   # doctest: +SKIP
PricedBundle(list_price=150.0, bundle_price=135.0, saving=15.0, ...)   # capped at 15
"""
from __future__ import annotations

import math
import threading
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from decimal import ROUND_HALF_UP, Decimal
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:  # the store imports this module; only type-check the reverse edge
    from recsvc.store.base import Store

KINDS = ("percent", "amount")
CENT = Decimal("0.01")


@dataclass
class Promotion:
    """A bundle-discount rule. `id` is assigned by the store when created empty."""

    id: str
    name: str
    item_ids: list[str]
    categories: list[str]
    kind: Literal["percent", "amount"]
    value: float
    cap: float | None
    starts_at: datetime
    ends_at: datetime
    priority: int = 0
    min_items: int = 2

    def active_at(self, now: datetime) -> bool:
        """Half-open window: active from `starts_at` up to, not including, `ends_at`."""
        return self.starts_at <= now < self.ends_at

    @cached_property
    def named(self) -> tuple[frozenset[str], frozenset[str]]:
        """(item ids, categories) as sets, made once: a bundle request tests them for
        every candidate line. A promotion is a value: it is replaced, never changed."""
        return frozenset(self.item_ids), frozenset(self.categories)


@dataclass
class BundleLine:
    item_id: str
    product_id: str
    category: str
    price: float


@dataclass
class PricedBundle:
    list_price: float
    bundle_price: float
    saving: float
    promotion: Promotion | None
    valid_until: datetime | None  # the promotion's end; None without a promotion


def validate_promotion(p: Promotion) -> None:
    """Raise ValueError naming the offending field; return None when `p` is usable."""
    if p.kind not in KINDS:
        raise ValueError(f"kind: must be one of {', '.join(KINDS)}, got {p.kind!r}")
    if not _finite(p.value) or p.value <= 0:
        raise ValueError(f"value: must be a number > 0, got {p.value!r}")
    if p.kind == "percent" and p.value > 100:
        raise ValueError(f"value: a percent discount must be at most 100, got {p.value!r}")
    if p.cap is not None and (not _finite(p.cap) or p.cap < 0):
        raise ValueError(f"cap: must be >= 0 or empty (no cap), got {p.cap!r}")
    for name in ("starts_at", "ends_at"):
        t = getattr(p, name)
        if not isinstance(t, datetime) or t.tzinfo is None:
            raise ValueError(f"{name}: must be a timezone-aware datetime, got {t!r}")
    if p.ends_at <= p.starts_at:
        raise ValueError(f"ends_at: must be after starts_at ({p.starts_at.isoformat()}), "
                         f"got {p.ends_at.isoformat()}")
    if not p.item_ids and not p.categories:
        raise ValueError("item_ids, categories: name at least one item or one category")
    if p.min_items < 1:
        raise ValueError(f"min_items: must be >= 1, got {p.min_items!r}")


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _cents(x: Decimal) -> Decimal:
    return x.quantize(CENT, rounding=ROUND_HALF_UP)


def _money(price: float) -> Decimal:
    # str() first: Decimal(0.1) would carry the binary float's noise into the sum.
    return Decimal(str(price))


def promotion_saving(p: Promotion, list_price: Decimal) -> Decimal:
    """The discount `p` gives on a bundle of `list_price`, capped and rounded to cents."""
    if p.kind == "percent":
        saving = list_price * _money(p.value) / 100
    else:
        saving = _money(p.value)
    if p.cap is not None:
        saving = min(saving, _money(p.cap))
    return _cents(min(saving, list_price))


def promotion_applies(p: Promotion, items: list[BundleLine]) -> bool:
    if len(items) < p.min_items:
        return False
    ids, cats = p.named
    return any(line.item_id in ids or line.product_id in ids or line.category in cats
               for line in items)


def price_bundle(promotions: list[Promotion] | tuple[Promotion, ...],
                 items: list[BundleLine], now: datetime) -> PricedBundle:
    """Price `items` under the best promotion active at `now`.

    Best = highest priority, then largest saving, then the earliest end (the offer the
    customer must act on first), then id, so the choice is deterministic.
    """
    if now.tzinfo is None:
        raise ValueError("now: must be a timezone-aware datetime")
    for line in items:
        if not _finite(line.price) or line.price < 0:
            raise ValueError(f"price of {line.item_id!r}: must be a number >= 0, got {line.price!r}")
    list_price = _cents(sum((_money(line.price) for line in items), Decimal(0)))
    best: tuple[int, Decimal, float, str] | None = None
    best_promo: Promotion | None = None
    for p in promotions:
        if not p.active_at(now) or not promotion_applies(p, items):
            continue
        saving = promotion_saving(p, list_price)
        key = (p.priority, saving, -p.ends_at.timestamp(), p.id)
        if best is None or key > best:
            best, best_promo = key, p
    if best_promo is None or best is None:
        return PricedBundle(float(list_price), float(list_price), 0.0, None, None)
    saving = best[1]
    return PricedBundle(float(list_price), float(list_price - saving), float(saving),
                        best_promo, best_promo.ends_at)


class PromotionBook:
    """Promotions held in memory, backed by the store.

    Writes go to the store first and then replace the in-memory tuple in one
    assignment, so readers (any number of threads) always see a whole list.
    `refresh()` reloads what other replicas wrote.
    """

    def __init__(self, store: "Store") -> None:
        self._store = store
        self._lock = threading.Lock()  # serialises writers; readers take no lock
        self._promos: tuple[Promotion, ...] = tuple(store.list_promotions())

    def create(self, p: Promotion) -> Promotion:
        validate_promotion(p)
        with self._lock:
            created = self._store.create_promotion(p)
            self._promos = self._promos + (created,)
        return created

    def list(self) -> list[Promotion]:
        return list(self._promos)

    def active(self, now: datetime) -> list[Promotion]:
        """The promotions whose window holds `now`."""
        return [p for p in self._promos if p.active_at(now)]

    def delete(self, promo_id: str) -> bool:
        with self._lock:
            deleted = self._store.delete_promotion(promo_id)
            self._promos = tuple(p for p in self._promos if p.id != promo_id)
        return deleted

    def refresh(self) -> None:
        with self._lock:
            self._promos = tuple(self._store.list_promotions())

    def price_bundle(self, items: list[BundleLine], now: datetime) -> PricedBundle:
        return price_bundle(self._promos, items, now)


# --- serialisation, shared by both stores -------------------------------------------

def promotion_to_dict(p: Promotion) -> dict[str, Any]:
    d = asdict(p)
    d["starts_at"] = p.starts_at.astimezone(timezone.utc).isoformat()
    d["ends_at"] = p.ends_at.astimezone(timezone.utc).isoformat()
    return d


def promotion_from_dict(d: dict[str, Any]) -> Promotion:
    d = dict(d)
    d["starts_at"] = datetime.fromisoformat(d["starts_at"])
    d["ends_at"] = datetime.fromisoformat(d["ends_at"])
    d["item_ids"] = list(d.get("item_ids") or [])
    d["categories"] = list(d.get("categories") or [])
    return Promotion(**d)
