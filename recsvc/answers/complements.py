"""Complements: "what goes with this jacket?"

Candidates are the anchors' precomputed co-purchase rows; with several anchors (a
cart) the rows are merged and their scores added. Filters drop the anchors, the
anchors' own categories (unless configured otherwise), cart/shown/excluded items and,
unless asked, what is out of stock. When that leaves fewer than asked — a new product
has no co-purchase history at all — the answer is filled from the categories that go
with the anchors' categories (`category_complements_idx`), taking their most popular
products in turn, so a jacket gets trousers, a T-shirt and a belt rather than five
pairs of trousers.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from recsvc.answers.common import (Answer, BadRequest, Context, ItemFilter, Live, Reason, Scope, check_limit,
                                   request_exclusions, resolve)

_FALLBACK_PER_CATEGORY = 8  # categories that go with one category, at most, in a fill


@dataclass(frozen=True)
class ComplementsQuery:
    item_ids: tuple[str, ...]
    limit: int = 10
    context: Context = Context()
    filter: ItemFilter = ItemFilter()


@dataclass(slots=True)
class Picks:
    """Chosen products in answer order, before they are dressed as items."""

    products: list[int]
    variants: list[int]
    scores: list[float]
    reasons: list[Reason]
    explanations: list[str]


def complements(live: Live, q: ComplementsQuery) -> Answer:
    if not q.item_ids:
        raise BadRequest("item_ids", "must name at least one item")
    check_limit(q.limit)
    m = live.model
    anchors = list(dict.fromkeys(resolve(m, item_id, f"item_ids[{i}]")[0] for i, item_id in enumerate(q.item_ids)))
    scope = complement_scope(live, anchors, q.context, q.filter)
    picks = pick_complements(scope, anchors, q.limit)
    return scope.answer(picks.products, picks.variants, picks.scores, picks.reasons, picks.explanations)


def complement_scope(live: Live, anchors: Sequence[int], ctx: Context, filt: ItemFilter) -> Scope:
    m = live.model
    same_ok = live.config.complements_same_category
    own = {int(m.product_category[a]) for a in anchors}
    blocked = [c for c in own if m.category_names[c] not in same_ok]
    excluded = list(anchors) + request_exclusions(m, ctx, filt)
    return Scope(live, filt, excluded, blocked)


def pick_complements(scope: Scope, anchors: Sequence[int], limit: int) -> Picks:
    """Co-purchase candidates that pass the filters, best first, filled from categories."""
    m = scope.model
    if len(anchors) == 1:  # the common case: one stored row, already best first
        a = anchors[0]
        row = m.complements_idx[a].tolist()
        pos, variants = scope.first(row, limit)
        scores, support = m.complements_score[a], m.complements_support[a]
        said = _said_together_one
        picks = Picks([row[i] for i in pos], variants, [float(scores[i]) for i in pos],
                      [Reason.CO_PURCHASE] * len(pos), [said(int(support[i])) for i in pos])
    else:
        idx = m.complements_idx[anchors]
        valid = idx >= 0
        rows = np.repeat(np.arange(len(anchors)), idx.shape[1]).reshape(idx.shape)
        cands, score, support, source = _merge(idx[valid], m.complements_score[anchors][valid],
                                               m.complements_support[anchors][valid], rows[valid])
        ok, variant = scope.keep(cands)
        keep = np.flatnonzero(ok)
        order = keep[np.argsort(-score[keep], kind="stable")][:limit]
        picks = Picks(cands[order].tolist(), variant[order].tolist(), score[order].astype(float).tolist(),
                      [Reason.CO_PURCHASE] * len(order),
                      [_said_together(m, anchors, s, r) for s, r in zip(support[order].tolist(), source[order].tolist())])
    if len(picks.products) < limit:
        _fill_from_categories(scope, anchors, limit, picks)
    return picks


def _merge(cands: np.ndarray, score: np.ndarray, support: np.ndarray, source: np.ndarray):
    """Rows of several anchors -> one row: scores add up; the explanation quotes the
    anchor bought most often with the candidate."""
    uniq, inv = np.unique(cands, return_inverse=True)
    total = np.bincount(inv, weights=score, minlength=len(uniq))
    best = np.zeros(len(uniq), support.dtype)
    np.maximum.at(best, inv, support)
    best_source = np.zeros(len(uniq), np.int64)
    hit = np.flatnonzero(support == best[inv])[::-1]  # reversed: the first anchor wins
    best_source[inv[hit]] = source[hit]
    return uniq, total, best, best_source


def _said_together_one(support: int) -> str:
    if support <= 0:
        return "often bought together"
    return f"bought together in {support:,} order{'s' if support != 1 else ''}"


def _said_together(m, anchors: Sequence[int], support: int, source: int) -> str:
    """For several anchors: names the anchor the candidate was bought with most."""
    if support <= 0:
        return _said_together_one(support)
    orders = f"{support:,} order{'s' if support != 1 else ''}"
    return f"bought together with {m.product_title[anchors[source]] or m.product_ids[anchors[source]]} in {orders}"


def _fill_from_categories(scope: Scope, anchors: Sequence[int], limit: int, picks: Picks) -> None:
    """Append popular products of the categories that go with the anchors' categories,
    one per category in turn, until `limit` items."""
    m = scope.model
    own = list(dict.fromkeys(int(m.product_category[a]) for a in anchors))
    rows = m.category_complements_idx[own][:, :_FALLBACK_PER_CATEGORY]
    scores = m.category_complements_score[own][:, :_FALLBACK_PER_CATEGORY]
    valid = rows >= 0
    cats, cat_score, cat_source = rows[valid], scores[valid], np.broadcast_to(np.arange(len(own))[:, None], rows.shape)[valid]
    if not len(cats):
        return
    uniq, inv = np.unique(cats, return_inverse=True)
    total = np.bincount(inv, weights=cat_score, minlength=len(uniq))
    source = np.zeros(len(uniq), np.int64)
    source[inv[::-1]] = cat_source[::-1]
    ranked = np.argsort(-total, kind="stable")
    need = limit - len(picks.products)
    taken = set(picks.products)
    # Each category's passing products, read lazily: the round robin below takes only a
    # few from each, so a walk over a whole popular list would be wasted.
    per_cat = [(int(uniq[j]), float(total[j]), int(source[j]),
                (pv for pv in scope.passing(m.popular_in(int(uniq[j])), 8) if pv[0] not in taken))
               for j in ranked.tolist()]
    floor = min(picks.scores) if picks.scores else None
    for rank in range(need):  # round robin: every category's best, then every second best...
        for c, cs, src, passing in per_cat:
            if len(picks.products) >= limit:
                return
            got = next(passing, None)
            if got is not None:
                p, variant = got
                taken.add(p)
                s = cs / (rank + 1)
                if floor is not None:
                    s = min(s, floor)  # fills rank below every co-purchase item
                floor = s
                picks.products.append(p)
                picks.variants.append(variant)
                picks.scores.append(s)
                picks.reasons.append(Reason.CATEGORY_FALLBACK)
                anchor_cat = m.category_names[own[src]]
                picks.explanations.append(f"popular in {m.category_names[c]}, which goes well with {anchor_cat}")

