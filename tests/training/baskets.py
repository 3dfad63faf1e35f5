"""Tiny hand-written shops for model and metric tests: baskets in, Interactions out."""
from __future__ import annotations

import numpy as np

from training.data import Interactions

DAY = 86_400


def shop(baskets: list[list[str]], category: dict[str, str], days: list[float] | None = None) -> Interactions:
    """One order per basket (day i unless `days` says otherwise), one user, products
    named by `category`'s keys."""
    names = sorted(category)
    cats = sorted(set(category.values()))
    code = {p: i for i, p in enumerate(names)}
    sizes = [len(b) for b in baskets]
    product = np.array([code[p] for b in baskets for p in b], np.int32)
    days = list(range(len(baskets))) if days is None else days
    return Interactions(
        product_ids=np.array(names), category_names=np.array(cats),
        product_category=np.array([cats.index(category[p]) for p in names], np.int32),
        user_ids=np.array(["u"]), order=np.repeat(np.arange(len(baskets)), sizes).astype(np.int64),
        user=np.zeros(len(product), np.int32), product=product,
        ts=(np.repeat(np.asarray(days, float), sizes) * DAY).astype(np.int64),
        quantity=np.ones(len(product), np.float32),
    )
