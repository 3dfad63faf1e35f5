"""Bundle offers: "buy this hoodie with these jeans and save 100".

The anchor plus up to `max_items` in-stock complements (one per category while there
is a choice), priced by the promotions active *now*. For each slot, of the
`bundle_candidates` best-ranked complements, the best-ranked one that an active
promotion covers wins; when none is covered, simply the best-ranked. Without an active
promotion the bundle is at list price and the explanation says so. Prices are the
current ones (catalog + Admin overrides); complements without a known price are
skipped, since a bundle price cannot be stated for them.
"""
from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from datetime import datetime

from recsvc.answers.common import (AnsweredItem, Context, ItemFilter, Live, Reason, check_limit,
                                   money, resolve)
from recsvc.answers.complements import complement_scope, pick_complements
from recsvc.promotions import BundleLine, Promotion


class Unpriced(Exception):
    """The anchor has no price, so no bundle price can be given."""


@dataclass(frozen=True)
class BundleQuery:
    item_id: str
    max_items: int = 1
    context: Context = Context()
    filter: ItemFilter = ItemFilter()


@dataclass
class BundleAnswer:
    anchor: AnsweredItem
    items: list[AnsweredItem]
    list_price: float
    bundle_price: float
    saving: float
    promotion: Promotion | None
    valid_until: datetime | None
    explanation: str
    model_version: str


def bundle(live: Live, q: BundleQuery, now: datetime) -> BundleAnswer:
    cfg, m = live.config, live.model
    check_limit(q.max_items, "max_items", cfg.bundle_max_items)
    product, variant = resolve(m, q.item_id, "item_id")
    # A bundle is bought now: its complements must be in stock whatever the filter says.
    filt = dataclasses.replace(q.filter, include_out_of_stock=False)
    scope = complement_scope(live, [product], q.context, filt)
    anchor_price = scope.price_of(product, variant)
    if anchor_price is None:
        raise Unpriced(f"item_id: {q.item_id!r} has no price in the catalog; set one with "
                       "`recsvc admin prices` to offer bundles with it")
    anchor = scope.item(product, variant, 0.0, Reason.UNSPECIFIED, "the item the customer is looking at")
    picks = pick_complements(scope, [product], cfg.bundle_candidates + q.max_items - 1)
    lines = [BundleLine(q.item_id, str(m.product_ids[product]), anchor.category, anchor_price)]
    pool = [i for i in range(len(picks.products)) if scope.price_of(picks.products[i], picks.variants[i]) is not None]
    chosen: list[int] = []
    any_active = any(p.active_at(now) for p in live.promotions.list())  # else skip pricing every candidate
    for _ in range(q.max_items):
        if not pool:
            break
        in_bundle = {line.category for line in lines}
        fresh = [i for i in pool if _category(m, picks.products[i]) not in in_bundle] or pool
        window = fresh[:cfg.bundle_candidates]
        covered = [i for i in window if any_active and
                   live.promotions.price_bundle(lines + [_line(scope, picks, i)], now).promotion is not None]
        pick = covered[0] if covered else window[0]
        chosen.append(pick)
        pool.remove(pick)
        lines.append(_line(scope, picks, pick))
    priced = live.promotions.price_bundle(lines, now)
    items = scope.answer([picks.products[i] for i in chosen], [picks.variants[i] for i in chosen],
                         [picks.scores[i] for i in chosen], [picks.reasons[i] for i in chosen],
                         [picks.explanations[i] for i in chosen]).items
    return BundleAnswer(anchor, items, priced.list_price, priced.bundle_price, priced.saving,
                        priced.promotion, priced.valid_until, explain(priced, len(lines)), m.version)


def _category(m, product: int) -> str:
    return m.category_names[m.product_category[product]]


def _line(scope, picks, i: int) -> BundleLine:
    m = scope.model
    p, v = picks.products[i], picks.variants[i]
    return BundleLine(str(m.variant_ids[v] if v >= 0 else m.product_ids[p]), str(m.product_ids[p]), _category(m, p),
                      scope.price_of(p, v))


@functools.lru_cache(maxsize=256)
def _until(valid_until: datetime) -> str:
    """A promotion's end as the bot says it; cached: strftime took most of a bundle's
    explanation (~9 us per call in the server), and promotions are few."""
    return valid_until.strftime("%Y-%m-%d %H:%M %Z").strip()


def explain(priced, n_lines: int) -> str:
    """The sentence the bot says about a priced bundle of `n_lines` lines (the anchor included)."""
    if n_lines == 1:
        return "nothing in stock goes with this item right now"
    if priced.promotion is None:
        return f"no promotion covers these items right now: together they cost {money(priced.list_price)}"
    until = _until(priced.valid_until) if priced.valid_until else ""
    return (f"buy {'both' if n_lines == 2 else f'all {n_lines}'} and save {money(priced.saving)} "
            f"with {priced.promotion.name}" + (f", valid until {until}" if until else ""))

