"""Prices: catalog prices overridden through Admin, shared by replicas through the store."""
from __future__ import annotations

import math

import pytest

from recsvc.model import load_model
from recsvc.prices import Prices
from recsvc.store import PriceUpdate, open_store
from tests.recsvc.bundles import write_apparel
from tests.recsvc.stores import store, store_url  # noqa: F401 — fixtures


@pytest.fixture
def model(tmp_path):
    return load_model(write_apparel(tmp_path / "model"))


def price_of(prices: Prices, model, item_id: str) -> float:
    return float(prices.view().variant[model.variant_index.codes([item_id])[0]])


def test_an_override_reaches_another_replica_at_its_refresh(store, model):
    a, b = Prices(store, model), Prices(store, model)
    listed = price_of(a, model, "JKT-1-XL")
    a.apply([PriceUpdate("JKT-1-XL", 79.0)])
    assert price_of(a, model, "JKT-1-XL") == 79.0 and price_of(b, model, "JKT-1-XL") == listed
    b.refresh()
    assert price_of(b, model, "JKT-1-XL") == 79.0
    jacket = model.product_index.codes(["JKT-1"])[0]
    assert b.view().product[jacket] == min(79.0, listed)  # "from": the cheapest variant


def test_a_refresh_without_a_change_keeps_the_arrays(store, model):
    """Rebuilding a large catalog's arrays holds the GIL for milliseconds: a refresh that
    finds the overrides as they were publishes nothing new."""
    a, b = Prices(store, model), Prices(store, model)
    before = b.view()
    b.refresh()
    assert b.view() is before
    a.apply([PriceUpdate("TEE-1-M", 12.5)])
    b.refresh()
    changed = b.view()
    assert changed is not before and price_of(b, model, "TEE-1-M") == 12.5
    b.refresh()
    assert b.view() is changed
    a.apply([PriceUpdate("TEE-1-M", 12.5)])  # written again, the same price: nothing to rebuild
    b.refresh()
    assert b.view() is changed


def test_an_own_override_is_not_rebuilt_again_at_the_next_refresh(store, model):
    a = Prices(store, model)
    a.apply([PriceUpdate("JEANS-1-32", 49.0)])
    mine = a.view()
    a.refresh()
    assert a.view() is mine and price_of(a, model, "JEANS-1-32") == 49.0


def test_overrides_survive_a_restart(store_url, model):
    with_store = open_store(store_url)
    Prices(with_store, model).apply([PriceUpdate("BELT-1-one", 15.0)])
    with_store.close()
    again = open_store(store_url)
    try:
        assert price_of(Prices(again, model), model, "BELT-1-one") == 15.0
        assert not math.isnan(price_of(Prices(again, model), model, "JKT-2-M"))
    finally:
        again.close()
