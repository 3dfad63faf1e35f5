"""Scope: the one-by-one filter (`first`, `walk`) and the array filter (`keep`) are the
same rules, over random stock, filters and candidate lists of a small synthetic shop."""
from __future__ import annotations

import numpy as np
import pytest

from bench.serve_synthetic import write_synthetic
from recsvc.answers.common import ItemFilter, Scope
from recsvc.config import Config
from recsvc.model import load_model
from recsvc.operations import update_stock
from recsvc.promotions import PromotionBook
from recsvc.runtime import make_live
from recsvc.store import open_store


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    d = tmp_path_factory.mktemp("scope")
    write_synthetic(d / "model", n_products=2_000, n_categories=12, n_users=50, k=20, factors=4)
    model = load_model(d / "model")
    store = open_store(f"sqlite:///{d / 'state.db'}")
    live = make_live(model, store, PromotionBook(store), Config(model_dir=str(d / "model")))
    rng = np.random.default_rng(0)
    sold_out = rng.choice(model.variant_ids, len(model.variant_ids) // 3, replace=False)
    update_stock(live, [(str(v), 0) for v in sold_out])
    yield live
    store.close()


def random_scope(live, rng) -> Scope:
    m = live.model
    names = m.category_names
    filt = ItemFilter(
        include_out_of_stock=bool(rng.random() < 0.2),
        categories=tuple(rng.choice(names, rng.integers(1, 4), replace=False)) if rng.random() < 0.3 else (),
        min_price=float(rng.uniform(10, 40)) if rng.random() < 0.3 else None,
        max_price=float(rng.uniform(40, 120)) if rng.random() < 0.3 else None,
        attributes={"size": str(rng.choice(["S", "M", "L", "XL"]))} if rng.random() < 0.4 else {})
    excluded = rng.integers(0, m.n_products, rng.integers(0, 30)).tolist()
    blocked = rng.integers(0, len(names), rng.integers(0, 3)).tolist()
    within = rng.integers(0, len(names), 4).tolist() if rng.random() < 0.3 else None
    scope = Scope(live, filt, excluded, blocked, within)
    if rng.random() < 0.3:
        scope.narrow_prices(20.0, 60.0)
    return scope


def test_first_takes_what_keep_passes_in_order(live):
    rng = np.random.default_rng(1)
    for _ in range(300):
        scope = random_scope(live, rng)
        cands = rng.integers(-1, live.model.n_products, 60)
        limit = int(rng.integers(1, 20))
        ok, variant = scope.keep(np.maximum(cands, 0))
        expected = np.flatnonzero(ok & (cands >= 0))[:limit]
        pos, var = scope.first(cands.tolist(), limit)
        assert pos == expected.tolist()
        assert var == variant[expected].tolist()


def test_walk_reads_past_the_head_in_chunks_with_the_same_rules(live):
    rng = np.random.default_rng(2)
    ranked = live.model.popular_order
    for _ in range(100):
        scope = random_scope(live, rng)
        need = int(rng.integers(1, 40))
        ok, variant = scope.keep(ranked)
        expected = np.flatnonzero(ok)[:need]
        products, variants = scope.walk(ranked, need)
        assert products == ranked[expected].tolist()
        assert variants == variant[expected].tolist()
