"""The public datasets through their adapters: raw quirks handled, every raw row accounted for."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from training.io import InputError, load_inputs

RETAIL_ROWS = [  # InvoiceNo, StockCode, Description, Quantity, UnitPrice, CustomerID
    ("536365", "85123A", "WHITE HANGING HEART", 6, 2.55, 17850.0),
    ("536365", "85123B", "RED HANGING HEART", 2, 2.55, 17850.0),
    ("536366", "85123A", "WHITE HEART T-LIGHT", 1, 2.95, 13047.0),
    ("536367", "85123A", "WHITE HANGING HEART", 2, 2.55, 13047.0),
    ("536367", "15056bl", "EDWARDIAN PARASOL BLACK", 1, 5.95, 13047.0),
    ("C536368", "85123A", "WHITE HANGING HEART", -1, 2.55, 17850.0),  # cancellation
    ("536369", "22139", "RETROSPOT TEA SET", -4, 0.0, np.nan),  # stock adjustment: a negative line
    ("536370", "POST", "POSTAGE", 3, 18.0, 12583.0),
    ("536370", "gift_0001_20", "Dotcomgiftshop Gift Voucher", 1, 17.0, 12583.0),
    ("536371", "22139", "RETROSPOT TEA SET", 1, 4.25, np.nan),  # a guest: no customer
    ("536372", "22139", "damaged", 5, 0.0, 12583.0),  # free
]


def retail_file(tmp_path: Path) -> str:
    columns = ["InvoiceNo", "StockCode", "Description", "Quantity", "UnitPrice", "CustomerID"]
    df = pd.DataFrame(RETAIL_ROWS, columns=columns)
    df["InvoiceDate"] = pd.Timestamp("2010-12-01 08:26") + pd.to_timedelta(np.arange(len(df)), "h")
    df["Country"] = "United Kingdom"
    df.to_parquet(tmp_path / "online_retail.parquet", index=False)
    return str(tmp_path / "online_retail.parquet")


def test_online_retail_removes_cancellations_fees_guests_and_free_lines(tmp_path):
    orders, catalog, report = load_inputs(retail_file(tmp_path), None, "online-retail")
    f = report.files["orders"]
    assert f.returns == 2  # the C invoice and the negative adjustment
    assert {r: s.count for r, s in f.skipped.items()} == {
        "non-product code (postage, fees, adjustments)": 2, "missing user_id": 1, "zero or negative price": 1}
    assert f.rows_kept == 5 and f.rows_read == f.rows_kept + f.rows_skipped + f.returns
    lines = orders.lines
    assert set(lines["user_id"]) == {"17850", "13047"}
    assert set(lines["item_id"]) == {"85123A", "85123B", "15056BL"}

    items = catalog.items.set_index("item_id")
    assert (items["product_id"] == items.index).all()  # variants stay separate products
    assert items.loc["85123A", "family"] == items.loc["85123B", "family"] == "85123"
    assert items.loc["85123A", "title"] == "WHITE HANGING HEART"  # the most frequent description
    assert items.loc["85123A", "price"] == 2.55 and (items["category"] == "all").all()
    assert "22139" in items.index  # sold to a guest: still a catalog product
    assert "POST" not in items.index


def test_online_retail_names_a_missing_raw_column(tmp_path):
    pd.read_parquet(retail_file(tmp_path)).drop(columns=["CustomerID"]).to_parquet(tmp_path / "bad.parquet")
    with pytest.raises(InputError, match="bad.parquet.*'CustomerID'"):
        load_inputs(str(tmp_path / "bad.parquet"), None, "online-retail")


def test_complete_journey_prices_per_unit_and_keeps_uncategorised_products(tmp_path):
    pd.DataFrame({
        "product_id": [1, 2, 3], "manufacturer_id": [10, 10, 20], "department": ["GROCERY"] * 3,
        "brand": ["National", "Private", "National"], "product_category": ["SOUP", None, "BREAD"],
        "product_type": ["SOUP: CANNED", None, "BREAD:ITALIAN"], "package_size": ["10 OZ", None, None],
    }).to_parquet(tmp_path / "products.parquet")
    pd.DataFrame({
        "household_id": [7, 7, 8, 8], "store_id": 1, "basket_id": [100, 100, 101, 101],
        "product_id": [1, 2, 3, 999], "quantity": [2, 0, 1, 1], "sales_value": [3.0, 0.0, 2.5, 1.0],
        "transaction_timestamp": pd.to_datetime(["2017-01-01 10:00"] * 2 + ["2017-01-02 11:00"] * 2),
    }).to_parquet(tmp_path / "transactions.parquet")
    orders, catalog, report = load_inputs(str(tmp_path), None, "complete-journey")
    assert orders.lines[["order_id", "user_id", "item_id", "quantity", "price"]].values.tolist() == [
        ["100", "7", "1", 2.0, 1.5], ["101", "8", "3", 1.0, 2.5]]
    f = report.files["orders"]
    assert {r: s.count for r, s in f.skipped.items()} == {"zero quantity": 1, "item not in catalog": 1}
    items = catalog.items.set_index("item_id")
    assert items.loc["2", "category"] == "UNKNOWN"
    assert any("1 catalog items have no product_category" in n for n in report.notes)
    assert items.loc["1", "title"] == "Soup: Canned 10 Oz" and items.loc["1", "manufacturer_id"] == "10"
    assert catalog.attribute_columns == ["department", "product_type", "manufacturer_id", "package_size"]


@pytest.fixture(scope="module")
def online_retail(datasets_dir):
    return load_inputs(str(datasets_dir / "online-retail" / "online_retail.parquet"), None, "online-retail")


@pytest.fixture(scope="module")
def complete_journey(datasets_dir):
    return load_inputs(str(datasets_dir / "complete-journey"), None, "complete-journey")


@pytest.mark.datasets
def test_online_retail_dataset_magnitudes_and_accounting(online_retail):
    orders, catalog, report = online_retail
    lines = orders.lines
    assert 390_000 < len(lines) < 400_000
    assert 18_000 < lines["order_id"].nunique() < 18_600
    assert 3_600 < lines["item_id"].nunique() < 3_700
    assert 4_300 < lines["user_id"].nunique() < 4_350
    f = report.files["orders"]
    assert f.rows_read == 541_909 == f.rows_kept + f.rows_skipped + f.returns
    assert f.returns >= 9_288  # every line of a C invoice
    assert not lines["order_id"].str.startswith("C").any() and (lines["quantity"] > 0).all()
    assert f.skipped["missing user_id"].count > 130_000
    assert not lines["item_id"].isin(["POST", "DOT", "M", "BANK CHARGES", "AMAZONFEE"]).any()
    families = catalog.items.groupby("family").size()
    assert 250 <= (families > 1).sum() <= 280  # README: 254 families of 2+ variants


@pytest.mark.datasets
def test_complete_journey_dataset_magnitudes_and_accounting(complete_journey):
    orders, catalog, report = complete_journey
    lines = orders.lines
    assert 1_450_000 < len(lines) < 1_469_307
    assert 155_000 < lines["order_id"].nunique() <= 155_848
    assert lines["user_id"].nunique() == 2_469
    f = report.files["orders"]
    assert f.rows_read == 1_469_307 == f.rows_kept + f.rows_skipped + f.returns
    assert f.skipped["zero quantity"].count > 8_000
    assert len(catalog.items) == 92_331 and (catalog.items["category"] == "UNKNOWN").sum() == 540
    assert lines["price"].notna().all() and (lines["price"] >= 0).all()
