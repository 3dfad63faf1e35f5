"""Recommend: "recommend me something", for a customer.

Known customer (`context.user_id` in the model): products ranked by the ALS score
`user_factors[u] . item_factors[p]`, leaving out what they already bought except in
the categories configured as repeat purchases. Scoring every product costs about
1.2 ms at 100k products, over the request budget, so above
`recommend_exact_max_products` (catalog, or the asked categories) the scored set is
the customer's neighbourhood instead: the co-purchase and substitute rows of what they
bought, plus the most popular products — the ALS top items of a customer almost
always lie there. Unknown customer, or too few personal items: popular products, in
the asked categories when some are given.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recsvc.answers.common import (Answer, Context, ItemFilter, Live, Reason, Scope,
                                   check_limit, request_exclusions)

_NEIGHBOURHOOD_SOURCES = 32  # bought products whose rows feed the candidates ...
_ROW_HEAD = 20  # ... with the head of each row
_POPULAR_CANDIDATES = 100
_HEAD_FACTOR = 3  # best-scored candidates per answer slot tried before filtering them all


@dataclass(frozen=True)
class RecommendQuery:
    limit: int = 10
    context: Context = Context()
    filter: ItemFilter = ItemFilter()


def recommend(live: Live, q: RecommendQuery) -> Answer:
    check_limit(q.limit)
    m, cfg = live.model, live.config
    user = m.user_index.get(q.context.user_id) if q.context.user_id else None
    excluded = request_exclusions(m, q.context, q.filter)
    if user is not None:
        bought = m.user_items(user)
        repeat = [m.category_index[c] for c in cfg.recommend_repeat_categories if c in m.category_index]
        if repeat:
            bought = bought[~np.isin(m.product_category[bought], repeat)]
        excluded += bought.tolist()
    scope = Scope(live, q.filter, excluded)
    chosen = _personal(scope, live, user, q.limit) if user is not None else ([], [], [])
    products, variants, scores = chosen
    reasons = [Reason.PERSONAL] * len(products)
    why = ["picked for you from your past orders"] * len(products)
    if len(products) < q.limit:
        _fill_popular(scope, q, products, variants, scores, reasons, why)
    return scope.answer(products, variants, scores, reasons, why)


def _asked_categories(scope: Scope) -> list[int]:
    m = scope.model
    return [m.category_index[c] for c in scope.filt.categories]  # Scope validated the names


def _personal(scope: Scope, live: Live, user: int, limit: int) -> tuple[list[int], list[int], list[float]]:
    m = scope.model
    cats = _asked_categories(scope)
    size = m.n_products if not cats else sum(len(m.popular_in(c)) for c in cats)
    u = m.user_factors[user]
    if size > live.config.recommend_exact_max_products:
        universe = _neighbourhood(m, user, cats)
        # The compiled kernel's scores when there is one (C, float32 in a fixed order), so
        # that its answers and these agree to the bit; numpy's otherwise.
        scores = live.kernel.scores(universe, user) if live.kernel is not None else m.item_factors[universe] @ u
    elif cats:
        universe = np.concatenate([m.popular_in(c) for c in cats])
        scores = m.item_factors[universe] @ u
    else:  # the whole catalog, in product order: no gather needed
        universe = np.arange(m.n_products, dtype=np.int32)
        scores = m.item_factors @ u
    scores = np.asarray(scores, dtype=np.float64)
    # The best few, filtered one by one, usually fill the answer; else filter them all.
    head = min(len(universe), _HEAD_FACTOR * limit)
    if head < len(universe):
        top = top_positions(scores, head)
        best = dict(zip(universe[top].tolist(), scores[top].tolist()))  # the neighbourhood repeats products
        cands = list(best)
        pos, variant = scope.first(cands, limit)
        if len(pos) == limit:
            chosen = [cands[i] for i in pos]
            return chosen, variant, [best[p] for p in chosen]
    universe, first_seen = np.unique(universe, return_index=True)
    scores = scores[first_seen]
    ok, variant = scope.keep(universe)
    idx = np.flatnonzero(ok)
    idx = idx[top_positions(scores[idx], limit)]
    return universe[idx].tolist(), variant[idx].tolist(), scores[idx].tolist()


def top_positions(scores: np.ndarray, head: int) -> np.ndarray:
    """Positions of the `head` highest scores, best first; equal scores in position
    order, so the answer never depends on how a partition happened to break a tie."""
    n = len(scores)
    if head >= n or np.isnan(scores).any():
        return np.argsort(-scores, kind="stable")[:head]
    kth = np.partition(scores, n - head)[n - head]  # the head-th highest
    above = np.flatnonzero(scores > kth)
    ties = np.flatnonzero(scores == kth)[:head - len(above)]
    top = np.concatenate([above, ties])
    return top[np.argsort(-scores[top], kind="stable")]


def _neighbourhood(m, user: int, cats: list[int]) -> np.ndarray:
    """Candidates near a customer: rows of what they bought, plus popular products
    (repeats left in: the caller dedupes only what it reads)."""
    bought = m.user_items(user)[:_NEIGHBOURHOOD_SOURCES]
    parts = [m.complements_idx[bought, :_ROW_HEAD].ravel(), m.substitutes_idx[bought, :_ROW_HEAD].ravel()]
    if cats:
        parts += [m.popular_in(c)[:_POPULAR_CANDIDATES] for c in cats]
    else:
        parts.append(m.popular_order[:_POPULAR_CANDIDATES])
    cands = np.concatenate(parts)
    return cands[cands >= 0]


def _fill_popular(scope: Scope, q: RecommendQuery, products: list[int], variants: list[int], scores: list[float],
                  reasons: list[Reason], why: list[str]) -> None:
    m = scope.model
    need = q.limit - len(products)
    taken = set(products)
    cats = _asked_categories(scope)
    if cats:  # each category's head, merged by popularity
        found = [scope.walk(m.popular_in(c), need + len(taken)) for c in cats]
        merged = sorted(((float(m.popularity[p]), p, v) for f in found for p, v in zip(*f)), key=lambda x: -x[0])
        prods, vars_ = [p for _, p, _ in merged], [v for _, _, v in merged]
    else:
        prods, vars_ = scope.walk(m.popular_order, need + len(taken))
    floor = scores[-1] if scores else None
    for p, v in zip(prods, vars_):
        if len(products) >= q.limit:
            break
        if p in taken:
            continue
        taken.add(p)
        score = float(m.popularity[p])
        if floor is not None:  # popular fills rank below every personal item
            score = floor = min(score, floor - abs(floor) * 0.01 - 1e-6)
        n = int(m.popularity_count[p])
        where = f"in {m.category_names[m.product_category[p]]}" if cats else "in the shop"
        products.append(p), variants.append(v), scores.append(score), reasons.append(Reason.POPULAR)
        why.append(f"popular {where}: bought in {n:,} order{'s' if n != 1 else ''} recently")
