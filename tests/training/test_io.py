"""Reading and validating the standard inputs: every row kept, skipped with a reason, or a return."""
from __future__ import annotations

import functools
import http.server
import json
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from training.io import DataReport, InputError, load_catalog, load_inputs, load_orders, read_table

CATALOG = pd.DataFrame({
    "item_id": [" J1-M ", "J1-L", "T1", "123.0"],
    "product_id": ["J1", "J1", "", "B7"],
    "category": ["jackets", "jackets", "t-shirts", "belts"],
    "title": ["Field Jacket", "Field Jacket", "Crew Tee", "Leather Belt"],
    "price": ["499", "499", "79.5", ""],
    "size": ["M", "L", "", "38.0"],
})
ORDERS = pd.DataFrame({
    "order_id": ["o1", "o1", "o2", "o3"],
    "user_id": ["u1", "u1", "u2", "u1"],
    "item_id": ["J1-M", "T1", "J1-L", "123"],
    "ts": ["2024-03-01 10:00:00", "2024-03-01 10:00:00", "2024-03-02 09:30:00", "2024-03-05 20:00:00"],
    "quantity": ["1", "2", "1", "1"],
    "price": ["499", "79.5", "449", ""],
})


def write_csvs(tmp_path: Path, orders: pd.DataFrame = ORDERS, catalog: pd.DataFrame = CATALOG) -> tuple[str, str]:
    orders.to_csv(tmp_path / "orders.csv", index=False)
    catalog.to_csv(tmp_path / "catalog.csv", index=False)
    return str(tmp_path / "orders.csv"), str(tmp_path / "catalog.csv")


def with_row(**overrides: str) -> pd.DataFrame:
    """ORDERS plus one row (marked in an extra `note` column) that differs from a good one by `overrides`."""
    row = {**ORDERS.iloc[0].to_dict(), "order_id": "bad", "note": "bad row", **overrides}
    return pd.concat([ORDERS, pd.DataFrame([row])], ignore_index=True)


def test_good_csv_files_load_with_normalised_ids_types_and_variant_roll_up(tmp_path):
    orders, catalog, report = load_inputs(*write_csvs(tmp_path))
    items = catalog.items.set_index("item_id")
    assert list(items.index) == ["J1-M", "J1-L", "T1", "123"]  # stripped; float id "123.0" -> "123"
    assert items.loc["T1", "product_id"] == "T1"  # product_id defaults to the item
    assert items.loc["123", "size"] == "38" and items.loc["T1", "size"] == ""
    assert np.isnan(items.loc["123", "price"]) and items.loc["T1", "price"] == 79.5
    assert catalog.attribute_columns == ["size"]

    lines = orders.lines
    assert list(lines.columns) == ["order_id", "user_id", "item_id", "product_id", "ts", "quantity", "price"]
    assert lines["ts"].dtype == "datetime64[ns]" and lines["quantity"].dtype == float
    assert lines["product_id"].tolist() == ["J1", "T1", "J1", "B7"]  # variants roll up to products
    assert lines["quantity"].tolist() == [1.0, 2.0, 1.0, 1.0]
    assert report.rollup["catalog_products"] == 3 and report.rollup["products_with_variants"] == 1
    assert report.files["orders"].rows_kept == 4 and report.rejected_share == 0.0


def test_the_report_sums_up_orders_and_notes_odd_ones(tmp_path):
    orders = pd.concat([ORDERS, pd.DataFrame({  # o2 again, by another user; J1-M twice on o1
        "order_id": ["o2", "o1"], "user_id": ["u9", "u1"], "item_id": ["T1", "J1-M"],
        "ts": ["2024-03-02 09:30:00", "2024-03-01 10:00:00"], "quantity": ["1", "1"], "price": ["79.5", "499"]})])
    _, _, report = load_inputs(*write_csvs(tmp_path, orders))
    assert report.summary["lines"] == 6 and report.summary["orders"] == 3 and report.summary["users"] == 3
    assert report.summary["median_basket"] == 2.0  # o1: 3 lines, o2: 2, o3: 1
    assert report.rollup["items_bought"] == 4 and report.rollup["products_bought"] == 3
    assert "1 order ids appear with more than one user_id" in report.notes
    assert "1 lines repeat an item already on the same order (kept)" in report.notes


def test_parquet_and_compressed_csv_read_like_csv(tmp_path):
    ORDERS.to_parquet(tmp_path / "orders.parquet", index=False)
    ORDERS.to_csv(tmp_path / "orders.csv.gz", index=False)
    csv_orders, catalog = write_csvs(tmp_path)
    frames = [load_inputs(str(tmp_path / name), catalog)[0].lines
              for name in ("orders.csv", "orders.parquet", "orders.csv.gz")]
    pd.testing.assert_frame_equal(frames[0], frames[1])
    pd.testing.assert_frame_equal(frames[0], frames[2])


def test_a_directory_of_partitions_loads_in_name_order(tmp_path):
    parts = tmp_path / "orders"
    (parts / "2024-03-02").mkdir(parents=True)
    ORDERS.iloc[2:].to_parquet(parts / "2024-03-02" / "part-0.parquet", index=False)
    ORDERS.iloc[:2].to_csv(parts / "2024-03-01.csv", index=False)
    (parts / "_SUCCESS").write_text("")
    (parts / ".hidden.csv").write_text("junk")
    table = read_table(parts)
    assert table["order_id"].tolist() == ORDERS["order_id"].tolist()
    _, catalog = write_csvs(tmp_path)
    assert len(load_inputs(str(parts), catalog)[0].lines) == 4


def test_http_urls_are_read(tmp_path):
    orders_csv, catalog_csv = write_csvs(tmp_path)
    handler = functools.partial(_QuietHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        orders, _, _ = load_inputs(f"{base}/orders.csv", f"{base}/catalog.csv")
    finally:
        server.shutdown()
    assert len(orders.lines) == 4


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.parametrize("overrides, reason", [
    ({"order_id": ""}, "missing order_id"),
    ({"user_id": "  "}, "missing user_id"),
    ({"item_id": ""}, "missing item_id"),
    ({"ts": ""}, "missing timestamp"),
    ({"ts": "last tuesday"}, "unparseable timestamp"),
    ({"quantity": "two"}, "non-numeric quantity"),
    ({"quantity": "0"}, "zero quantity"),
    ({"price": "free"}, "non-numeric price"),
    ({"price": "-5"}, "negative price"),
    ({"item_id": "NOPE-1"}, "item not in catalog"),
])
def test_each_malformed_order_row_is_skipped_counted_and_shown(tmp_path, overrides, reason):
    orders, _, report = load_inputs(*write_csvs(tmp_path, orders=with_row(**overrides)))
    f = report.files["orders"]
    assert len(orders.lines) == 4 and f.rows_read == 5 and f.rows_kept == 4
    assert {r: s.count for r, s in f.skipped.items()} == {reason: 1}
    assert f.skipped[reason].examples[0]["note"] == "bad row"  # the raw row, as read
    assert report.rejected_share == pytest.approx(1 / 5)
    assert reason in report.format()
    json.dumps(report.to_dict())  # stored in the bundle manifest


def test_examples_are_capped_at_five_per_reason(tmp_path):
    bad = pd.DataFrame([dict(ORDERS.iloc[0].to_dict(), order_id=f"b{i}", user_id="") for i in range(8)])
    _, _, report = load_inputs(*write_csvs(tmp_path, orders=pd.concat([ORDERS, bad])))
    skipped = report.files["orders"].skipped["missing user_id"]
    assert skipped.count == 8 and [e["order_id"] for e in skipped.examples] == [f"b{i}" for i in range(5)]


@pytest.mark.parametrize("extra_column, value", [
    ("quantity", "-1"), ("cancelled", "true"), ("is_cancelled", "1"), ("returned", "yes"),
    ("status", "Refunded"), ("status", "cancelled"),
])
def test_returns_and_cancellations_are_removed_and_counted_not_rejected(tmp_path, extra_column, value):
    orders_df = with_row(**{extra_column: value})
    orders, _, report = load_inputs(*write_csvs(tmp_path, orders=orders_df))
    assert "bad" not in set(orders.lines["order_id"])
    assert report.files["orders"].returns == 1 and report.returns_removed == 1
    assert report.files["orders"].return_examples[0]["order_id"] == "bad"
    assert report.files["orders"].skipped == {} and report.rejected_share == 0.0


@pytest.mark.parametrize("row, reason", [
    ({"item_id": "", "category": "belts"}, "missing item_id"),
    ({"item_id": "X1", "category": " "}, "missing category"),
    ({"item_id": "X1", "category": "belts", "price": "n/a?"}, "non-numeric price"),
    ({"item_id": "T1", "category": "socks"}, "duplicate item_id"),
])
def test_each_malformed_catalog_row_is_skipped_counted_and_shown(tmp_path, row, reason):
    catalog_df = pd.concat([CATALOG, pd.DataFrame([row])], ignore_index=True)
    _, catalog, report = load_inputs(*write_csvs(tmp_path, catalog=catalog_df))
    f = report.files["catalog"]
    assert {r: s.count for r, s in f.skipped.items()} == {reason: 1}
    assert f.rows_read == 5 and f.rows_kept == len(catalog.items) == 4
    assert catalog.items.set_index("item_id").loc["T1", "category"] == "t-shirts"  # the first one wins


def test_timestamps_in_other_layouts_become_naive_utc(tmp_path):
    layouts = ["2024-03-01T12:00:00+02:00", "2024-03-01T10:00:00Z", "03/02/2024 09:30", "2024-03-05"]
    orders_df = ORDERS.assign(ts=layouts)
    orders, _, _ = load_inputs(*write_csvs(tmp_path, orders=orders_df))
    assert orders.lines["ts"].astype(str).tolist() == ["2024-03-01 10:00:00", "2024-03-01 10:00:00",
                                                       "2024-03-02 09:30:00", "2024-03-05 00:00:00"]
    epoch = ORDERS.assign(ts=[1709287200, 1709287200, 1709371800, 1709596800], user_id=[17850.0, 17850.0, 2.0, 17850.0])
    lines = load_orders(epoch, load_inputs(*write_csvs(tmp_path))[1], DataReport()).lines
    assert lines["ts"].iloc[0] == pd.Timestamp("2024-03-01 10:00:00")
    assert lines["user_id"].tolist() == ["17850", "17850", "2", "17850"]  # float ids from a frame


def test_optional_order_columns_default(tmp_path):
    orders, _, _ = load_inputs(*write_csvs(tmp_path, orders=ORDERS.drop(columns=["quantity", "price"])))
    assert (orders.lines["quantity"] == 1.0).all() and orders.lines["price"].isna().all()


def test_a_missing_file_names_the_file(tmp_path):
    _, catalog = write_csvs(tmp_path)
    with pytest.raises(InputError, match="nowhere.csv.*does not exist"):
        load_inputs(str(tmp_path / "nowhere.csv"), catalog)


@pytest.mark.parametrize("content", ["", "order_id,user_id,item_id,ts\n"])
def test_an_empty_file_names_the_file(tmp_path, content):
    orders_csv, catalog = write_csvs(tmp_path)
    Path(orders_csv).write_text(content)
    with pytest.raises(InputError, match="orders.csv.*(empty|no data rows)"):
        load_inputs(orders_csv, catalog)


@pytest.mark.parametrize("table, column", [("orders", "ts"), ("orders", "user_id"), ("catalog", "category")])
def test_a_missing_required_column_names_file_and_column(tmp_path, table, column):
    frames = {"orders": ORDERS, "catalog": CATALOG}
    frames[table] = frames[table].drop(columns=[column])
    orders_csv, catalog_csv = write_csvs(tmp_path, **frames)
    with pytest.raises(InputError) as err:
        load_inputs(orders_csv, catalog_csv)
    assert f"{table}.csv" in str(err.value) and repr(column) in str(err.value)


def test_format_and_catalog_mistakes_are_input_errors(tmp_path):
    orders_csv, catalog_csv = write_csvs(tmp_path)
    with pytest.raises(InputError, match="--catalog"):
        load_inputs(orders_csv, None)
    with pytest.raises(InputError, match="unknown input format 'excel'.*online-retail"):
        load_inputs(orders_csv, catalog_csv, "excel")
    (tmp_path / "orders.xlsx").write_text("x")
    with pytest.raises(InputError, match="orders.xlsx"):
        load_catalog(str(tmp_path / "orders.xlsx"), DataReport())


# Ids that normalise alike (' o1' ~ 'o1', 2.0 ~ '2', '123.0' ~ '123'), blanks and unknown items.
MESSY = pd.DataFrame({
    "order_id": ["o1", " o1", "o2", "o2", "nan", "o3", "o4", "o4", "o1", "o5"],
    "user_id": [17850.0, 17850.0, 2.0, 2.0, 5.0, np.nan, 9.0, 2.0, 17850.0, 17850.0],
    "item_id": ["J1-M", " J1-L ", "123.0", "T1", "T1", "T1", "T1", "123", "J1-M", "GHOST"],
    "ts": ["2024-03-01 10:00:00"] * 4 + ["2024-03-02 09:30:00"] * 6,
    "quantity": [1, 1, 2, 1, 1, 1, 1, 1, 3, 1],
    "price": [499.0, 499.0, 12.5, 79.5, 79.5, 79.5, 1.0, 13.5, 450.0, 499.0],
})


def _messy(tmp_path):
    catalog = load_inputs(*write_csvs(tmp_path))[1]
    report = DataReport()
    return load_orders(MESSY, catalog, report), catalog, report


def test_validation_codes_describe_the_lines(tmp_path):
    orders, catalog, report = _messy(tmp_path)
    lines, codes = orders.lines, orders.codes
    assert codes is not None and len(lines) == 7  # skipped: the 'nan' order, the missing user, GHOST
    assert (codes.user_ids[codes.user] == lines["user_id"].to_numpy(str)).all()
    assert (codes.order_ids.take(codes.order) == lines["order_id"]).all()
    assert (catalog.items["item_id"].to_numpy()[codes.item_row] == lines["item_id"].to_numpy()).all()
    np.testing.assert_array_equal(codes.order, pd.factorize(lines["order_id"])[0])  # first appearance
    np.testing.assert_array_equal(codes.user, pd.factorize(lines["user_id"])[0])
    assert lines["order_id"].tolist()[:2] == ["o1", "o1"] and lines["user_id"].iloc[0] == "17850"
    assert report.summary["orders"] == 3 and report.summary["users"] == 3
    assert report.rollup["items_bought"] == 4 and report.rollup["lines_rolled_up"] == 5  # J1-M x2, J1-L, 123 x2 (B7)
    assert "1 order ids appear with more than one user_id" in report.notes  # o4: users 9 and 2
    assert "1 lines repeat an item already on the same order (kept)" in report.notes  # J1-M on o1


def test_encoding_from_validation_codes_matches_hashing_the_strings(tmp_path):
    from training.data import Orders, build_interactions, fill_prices_from_orders, hashable_lines

    orders, catalog, _ = _messy(tmp_path)
    by_strings = Orders(orders.lines)  # no codes: the string-hashing path
    filled = fill_prices_from_orders(catalog, orders)
    pd.testing.assert_frame_equal(filled.items, fill_prices_from_orders(catalog, by_strings).items)
    assert filled.items.set_index("item_id").loc["123", "price"] == 13.0  # median of its lines
    fast, slow = build_interactions(orders, filled), build_interactions(by_strings, filled)
    for name in ("product_ids", "product_category", "category_names", "user_ids", "order", "user", "product",
                 "ts", "quantity"):
        a, b = getattr(fast, name), getattr(slow, name)
        assert a.dtype == b.dtype and np.array_equal(a, b), name
    np.testing.assert_array_equal(pd.util.hash_pandas_object(hashable_lines(orders, filled), index=False),
                                  pd.util.hash_pandas_object(orders.lines, index=False))


def test_integer_id_columns_normalise_like_their_text(tmp_path):
    catalog = load_inputs(*write_csvs(tmp_path))[1]
    ints = ORDERS.assign(order_id=[7, 7, 8, 9], user_id=np.array([3, 3, 1, 3], np.int64))
    lines = load_orders(ints, catalog, DataReport()).lines
    assert lines["order_id"].tolist() == ["7", "7", "8", "9"] and lines["user_id"].tolist() == ["3", "3", "1", "3"]
