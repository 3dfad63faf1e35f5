"""Substitutes: "my size is sold out" / "this one is out of stock".

Candidates are the item's precomputed substitutes row. They must be in the item's
category (or one mapped to it in the config), cost within the price band around the
item (default +/-30 %), be in stock — in the asked variant when `filter.attributes`
names one (size XL: only products whose XL is in stock) — and must not be something
customers buy *together* with the item (a frequent complement is not a replacement).
Too few? The answer is filled with the category's popular products under the same rules.
"""
from __future__ import annotations

from dataclasses import dataclass

from recsvc.answers.common import (Answer, Context, ItemFilter, Live, Reason, Scope, check_limit,
                                   describe_attributes, request_exclusions, resolve)


@dataclass(frozen=True)
class SubstitutesQuery:
    item_id: str
    limit: int = 10
    context: Context = Context()
    filter: ItemFilter = ItemFilter()


def substitutes(live: Live, q: SubstitutesQuery) -> Answer:
    check_limit(q.limit)
    m, cfg = live.model, live.config
    product, variant = resolve(m, q.item_id, "item_id")
    own = int(m.product_category[product])
    allowed = [own] + [m.category_index[c] for c in cfg.substitutes_category_map.get(m.category_names[own], [])
                       if c in m.category_index]
    comp = m.complements_idx[product]
    frequent = comp[(comp >= 0) & (m.complements_support[product] >= cfg.substitutes_min_complement_support)]
    excluded = [product] + frequent.tolist() + request_exclusions(m, q.context, q.filter)
    scope = Scope(live, q.filter, excluded, within=allowed)
    base = scope.price_of(product, variant)
    band = cfg.substitutes_price_band
    if base is not None and band > 0:
        scope.narrow_prices(base * (1 - band), base * (1 + band))
    row = m.substitutes_idx[product].tolist()
    chosen, variants = scope.first(row, q.limit)  # rows are stored best first
    products = [row[i] for i in chosen]
    score_row = m.substitutes_score[product]
    scores = [float(score_row[i]) for i in chosen]
    reasons = [Reason.SIMILAR] * len(products)
    why = _explain("similar style", scope, q.filter, base, products, variants)
    taken = set(products)
    floor = scores[-1] if scores else 1.0
    for c in allowed:  # too few: the category's popular products, under the same rules
        if len(products) >= q.limit:
            break
        prods, vars_ = scope.walk(m.popular_in(c), q.limit - len(products) + len(taken))
        for p, v in zip(prods, vars_):
            if len(products) >= q.limit:
                break
            if p not in taken:
                taken.add(p)
                floor *= 0.99  # fills rank below every similar item, in popularity order
                products.append(p), variants.append(v), scores.append(floor), reasons.append(Reason.POPULAR)
                why += _explain(f"popular in {m.category_names[c]}", scope, q.filter, base, [p], [v])
    return scope.answer(products, variants, scores, reasons, why)


def _explain(what: str, scope: Scope, filt: ItemFilter, base: float | None, products: list[int],
             variants: list[int]) -> list[str]:
    """"similar style, your size XL is in stock, 10% dearer", for each product."""
    head = what
    if filt.attributes:
        head += (f", your {describe_attributes(filt.attributes)} is in stock" if not filt.include_out_of_stock
                 else f", comes in {describe_attributes(filt.attributes)}")
    elif not filt.include_out_of_stock:
        head += ", in stock"
    if not base or not products:
        return [head] * len(products)
    out = []
    for p, v in zip(products, variants):
        price = scope.price_of(p, v)
        if price is None:
            out.append(head)
            continue
        diff = (price - base) / base
        out.append(f"{head}, same price" if abs(diff) < 0.005 else
                   f"{head}, {abs(diff):.0%} {'cheaper' if diff < 0 else 'dearer'}")
    return out
