"""Inventory: variant stock, product roll-up, durability and replicas, on both stores.

Catalog used throughout: product 0 "jacket" in sizes M and XL, product 1 "scarf" in
one size, product 2 "hat" in one size.
"""
from __future__ import annotations

import numpy as np
import pytest

from recsvc.inventory import Inventory, UnknownItems
from recsvc.store import StockUpdate, open_store
from tests.recsvc.stores import store, store_url  # noqa: F401 — fixtures

ITEMS = np.array(["jacket-M", "jacket-XL", "scarf", "hat"])
PRODUCT = np.array([0, 0, 1, 2], dtype=np.int32)
JACKET_M, JACKET_XL, SCARF, HAT = range(4)


def inventory(store) -> Inventory:
    return Inventory(store, ITEMS, PRODUCT, n_products=3)


def test_items_without_a_stock_record_are_in_stock(store):
    inv = inventory(store)
    assert inv.variant_stock.tolist() == [True, True, True, True]
    assert inv.product_in_stock.tolist() == [True, True, True]


def test_a_product_is_in_stock_while_any_of_its_variants_is(store):
    inv = inventory(store)
    inv.apply([StockUpdate("jacket-XL", 0)])
    assert not inv.variant_in_stock(JACKET_XL) and inv.variant_in_stock(JACKET_M)
    assert inv.product_in_stock.tolist() == [True, True, True]
    inv.apply([StockUpdate("jacket-M", 0), StockUpdate("scarf", 4)])
    assert inv.product_in_stock.tolist() == [False, True, True]
    inv.apply([StockUpdate("jacket-XL", 2)])
    assert inv.product_in_stock.tolist() == [True, True, True]


def test_the_last_record_of_an_item_in_a_batch_wins(store):
    inv = inventory(store)
    inv.apply([StockUpdate("scarf", 0), StockUpdate("hat", 0), StockUpdate("scarf", 3), StockUpdate("hat", 0)])
    assert inv.variant_stock.tolist() == [True, True, True, False]
    inv.apply([StockUpdate("scarf", 3), StockUpdate("scarf", 0)])
    assert not inv.variant_in_stock(SCARF)
    assert inventory(store).variant_stock.tolist() == [True, True, False, False]  # the same, read back


def test_negative_quantities_count_as_out_of_stock(store):
    inv = inventory(store)
    inv.apply([StockUpdate("hat", -3)])
    assert inv.product_in_stock.tolist() == [True, True, False]


def test_unknown_ids_raise_and_nothing_of_the_batch_is_applied(store):
    inv = inventory(store)
    with pytest.raises(UnknownItems) as err:
        inv.apply([StockUpdate("scarf", 0), StockUpdate("boot-42", 0), StockUpdate("sock", 1)])
    assert err.value.item_ids == ["boot-42", "sock"]
    assert "boot-42, sock" in str(err.value)
    assert inv.variant_in_stock(SCARF)
    assert store.all_stock() == {}


def test_updates_are_durable_before_they_are_served(store_url):
    with open_store(store_url) as s:
        inventory(s).apply([StockUpdate("hat", 0)])
    with open_store(store_url) as s:  # a restart
        assert inventory(s).product_in_stock.tolist() == [True, True, False]


def test_refresh_pulls_what_another_replica_wrote(store_url):
    with open_store(store_url) as s1, open_store(store_url) as s2:
        mine, theirs = inventory(s1), inventory(s2)
        seq = theirs.apply([StockUpdate("scarf", 0)])
        assert mine.variant_in_stock(SCARF)  # not yet pulled
        assert mine.refresh() == seq
        assert not mine.variant_in_stock(SCARF)
        assert mine.refresh() == seq  # nothing new


def test_own_writes_do_not_hide_earlier_writes_of_others(store_url):
    with open_store(store_url) as s1, open_store(store_url) as s2:
        mine, theirs = inventory(s1), inventory(s2)
        theirs.apply([StockUpdate("hat", 0)])
        mine.apply([StockUpdate("scarf", 0)])
        mine.refresh()
        assert mine.variant_stock.tolist() == [True, True, False, False]


def test_an_own_write_right_after_what_was_pulled_is_not_read_back(store_url):
    with open_store(store_url) as s1, open_store(store_url) as s2:
        mine, theirs = inventory(s1), inventory(s2)
        seq = mine.apply([StockUpdate("hat", 0)])
        assert mine.seq == seq  # nothing can lie between what it had and its own write
        theirs.apply([StockUpdate("scarf", 0)])
        later = mine.apply([StockUpdate("jacket-M", 0)])
        assert mine.seq == seq  # theirs came in between: not skipped
        assert mine.refresh() == later
        assert mine.variant_stock.tolist() == [False, True, False, False]


def test_readers_keep_a_consistent_snapshot_while_a_writer_publishes(store):
    inv = inventory(store)
    before = inv.view()
    inv.apply([StockUpdate("jacket-M", 0), StockUpdate("jacket-XL", 0)])
    assert before.variant.tolist() == [True, True, True, True]
    assert before.product.tolist() == [True, True, True]
    with pytest.raises(ValueError):
        inv.variant_stock[SCARF] = False  # published arrays are read-only


def test_rebind_to_a_new_catalog_keeps_stock_of_items_still_sold(store):
    inv = inventory(store)
    inv.apply([StockUpdate("scarf", 0), StockUpdate("hat", 0)])
    new = inv.rebind(np.array(["hat", "boot-42", "scarf"]), np.array([0, 1, 2], np.int32), 3)
    assert new.variant_stock.tolist() == [False, True, False]
    assert new.product_in_stock.tolist() == [False, True, False]
    with pytest.raises(UnknownItems):
        new.apply([StockUpdate("jacket-M", 1)])  # no longer in the catalog


def test_product_codes_outside_the_product_range_are_refused(store):
    with pytest.raises(ValueError, match="item_product"):
        Inventory(store, ITEMS, np.array([0, 0, 1, 3], np.int32), n_products=3)


def test_rebind_carries_the_stock_and_refresh_catches_up_with_later_writes(store, store_url):
    inv = inventory(store)
    inv.apply([StockUpdate("scarf", 0), StockUpdate("jacket-XL", 0)])
    new = inv.rebind(ITEMS, PRODUCT, 3)
    assert new.variant_stock.tolist() == [True, False, False, True] and new.seq == inv.seq
    other = open_store(store_url)  # another replica writes after the swap's snapshot
    try:
        other.upsert_stock([StockUpdate("jacket-XL", 4), StockUpdate("hat", 0)])
    finally:
        other.close()
    new.refresh()
    assert new.variant_stock.tolist() == [True, True, False, False]


def test_stock_of_items_a_catalog_does_not_sell_reaches_a_later_catalog_that_does(store):
    inv = inventory(store)
    inv.refresh()
    store.upsert_stock([StockUpdate("boot-42", 0), StockUpdate("boot-43", 0), StockUpdate("boot-43", 2)])
    inv.refresh()  # records for items outside this catalog: kept, not served
    assert inv.variant_stock.tolist() == [True, True, True, True]
    new = inv.rebind(np.array(["boot-42", "boot-43", "hat"]), np.array([0, 0, 1], np.int32), 2)
    assert new.variant_stock.tolist() == [False, True, True]  # boot-43's latest record: back in stock
    again = new.rebind(ITEMS, PRODUCT, 3).rebind(np.array(["boot-42"]), np.array([0], np.int32), 1)
    assert again.variant_stock.tolist() == [False]  # carried through a catalog without it
