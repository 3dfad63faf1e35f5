"""Loading a bundle into arrays, refusing what cannot be served, and the swap holder."""
from __future__ import annotations

import threading

import numpy as np
import pytest

from recsvc.model import Holder, load_model
from tests.recsvc.bundles import IDS, P, arrays, corrupt, write_apparel
from training.bundle import BundleError


@pytest.fixture
def model(tmp_path):
    write_apparel(tmp_path)
    return load_model(tmp_path)


def test_ids_map_both_ways_and_variants_map_to_products(model):
    assert model.product_ids.tolist() == IDS and model.n_products == 12 and model.n_variants == 34
    assert model.lookup("JKT-1-XL") == (P["JKT-1"], model.variant_index["JKT-1-XL"])
    assert model.lookup("JKT-1") == (P["JKT-1"], -1)
    assert model.lookup("nope") is None
    variants, owner = model.variants_of(np.array([P["JKT-4"], P["BELT-1"]]))
    assert [model.variant_ids[v] for v in variants] == ["JKT-4-M", "JKT-4-L", "BELT-1-one"]
    assert owner.tolist() == [0, 0, 1]


def test_catalog_columns_become_titles_prices_and_attributes(model):
    assert model.product_title[P["JKT-NEW"]] == "New parka"
    assert model.variant_price[model.variant_index["JEANS-2-30"]] == 55.0
    assert set(model.attributes) == {"size"}  # brand, title, price... have fixed meanings
    size = model.attributes["size"]
    assert size.codes[model.variant_index["JKT-1-XL"]] == size.values["XL"]


def test_popular_lists_are_ranked_once_at_load(model):
    assert [model.product_ids[p] for p in model.popular_order[:3]] == ["JEANS-1", "TEE-1", "JKT-1"]
    jeans = model.category_index["jeans"]
    assert [model.product_ids[p] for p in model.popular_in(jeans)] == ["JEANS-1", "JEANS-2", "JEANS-3"]
    assert [model.product_ids[p] for p in model.user_items(model.user_index["alice"])] == ["JKT-1", "JEANS-1", "SOCK-1"]


def test_a_corrupt_file_is_refused(tmp_path):
    corrupt(write_apparel(tmp_path))
    with pytest.raises(BundleError, match="checksum mismatch"):
        load_model(tmp_path)


@pytest.mark.parametrize("name, bad, message", [
    ("complements_idx", lambda a: np.where(a >= 0, a + 100, a), "complements_idx holds indices outside"),
    ("substitutes_score", lambda a: a[:, :2], "substitutes_score has shape"),
    ("product_category", lambda a: a + 10, "product_category holds codes outside"),
    ("user_factors", lambda a: a[:, :2], "user_factors has shape"),
    ("user_items_indptr", lambda a: a[:-1], "user_items_indptr does not index"),
])
def test_inconsistent_arrays_are_refused_with_the_reason(tmp_path, name, bad, message):
    write_apparel(tmp_path, changes={name: bad(arrays()[name])})
    with pytest.raises(BundleError, match=message):
        load_model(tmp_path)


def test_catalog_products_must_be_known(tmp_path):
    a = arrays()
    write_apparel(tmp_path, changes={"product_ids": np.array([*a["product_ids"][:-1], "OTHER"])})
    with pytest.raises(BundleError, match="catalog products missing from product_ids"):
        load_model(tmp_path)


def test_holder_readers_see_whole_values_while_it_is_swapped():
    holder: Holder[tuple[int, int]] = Holder((0, 0))
    torn = []
    stop = threading.Event()

    def read():
        while not stop.is_set():
            a, b = holder.get()
            if a != b:
                torn.append((a, b))

    readers = [threading.Thread(target=read) for _ in range(2)]
    for t in readers:
        t.start()
    for i in range(1, 2000):
        assert holder.swap((i, i)) == (i - 1, i - 1)
    stop.set()
    for t in readers:
        t.join()
    assert torn == [] and holder.get() == (1999, 1999)


def test_id_index_is_a_mapping_over_arrays():
    from recsvc.idindex import IdIndex

    index = IdIndex(np.array(["b-2", "a-1", "c-3"]))
    assert index["a-1"] == 1 and index.get("c-3") == 2 and index.get("zz") is None and "b-2" in index
    assert index.get("a-1-longer-than-any-id") is None and "" not in index
    assert index.codes(["c-3", "nope", "b-2"]).tolist() == [2, -1, 0]
    assert list(index) == ["b-2", "a-1", "c-3"] and len(index) == 3
    with pytest.raises(KeyError):
        index["zz"]
    assert IdIndex(np.array(["x", "x"])).has_duplicates() and not index.has_duplicates()
