"""Orders from a PostgreSQL table or query given by URL (against a real server)."""
from __future__ import annotations

from urllib.parse import quote

import pandas as pd
import psycopg
import pytest

from training.demo_data import generate_shop
from training.io import DataReport, InputError, load_orders, validate_catalog
from training.sources import SourceUnavailable, parse_postgres_url, read_postgres

pytestmark = pytest.mark.services


@pytest.fixture(scope="module")
def shop():
    return generate_shop(3, n_styles=40, n_users=100, n_orders=300)


def load_into(url: str, orders: pd.DataFrame) -> None:
    """The demo orders as a shop database would type them (ids text, ts timestamptz, price numeric)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE orders (order_id text, user_id text, item_id text, ts timestamptz, "
                     "quantity integer, price numeric(10, 2), status text)")
        with conn.cursor().copy("COPY orders FROM STDIN") as copy:
            for row in orders.itertuples(index=False):
                copy.write_row([row.order_id, row.user_id, row.item_id, row.ts + "+00", row.quantity,
                                row.price, row.status])


def validated(frame: pd.DataFrame, shop) -> pd.DataFrame:
    report = DataReport()
    catalog = validate_catalog(shop.catalog, report, source="catalog")
    lines = load_orders(frame, catalog, report).lines
    return lines.sort_values(["order_id", "item_id"], ignore_index=True)


def test_a_table_read_in_chunks_validates_to_the_same_lines_as_the_csv_export(postgres_url, shop):
    load_into(postgres_url, shop.orders)
    frame = read_postgres(f"{postgres_url}&table=orders&chunk_rows=100")  # 623 rows: 7 chunks
    assert len(frame) == len(shop.orders)
    assert list(frame.columns) == ["order_id", "user_id", "item_id", "ts", "quantity", "price", "status"]
    assert isinstance(frame["ts"].dtype, pd.DatetimeTZDtype)  # typed by the database, no text parsing
    assert frame["price"].dtype == float  # numeric arrives as float, not Decimal
    from_db, from_csv = validated(frame, shop), validated(shop.orders, shop)
    pd.testing.assert_frame_equal(from_db, from_csv, check_dtype=False)


def test_a_query_renames_columns_and_selects_rows(postgres_url, shop):
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE sales (id text, customer text, sku text, sold_at timestamp)")
        conn.execute("INSERT INTO sales VALUES ('o1','c1','a','2024-03-01 10:00'), ('o1','c1','b','2024-03-01 10:00'),"
                     " ('o2','c2','a','2023-12-31 09:00')")
    sql = ("SELECT id AS order_id, customer AS user_id, sku AS item_id, sold_at AS ts FROM sales "
           "WHERE sold_at >= '2024-01-01' ORDER BY sku")
    frame = read_postgres(f"{postgres_url}&query={quote(sql)}")
    assert frame.to_dict("list") == {"order_id": ["o1", "o1"], "user_id": ["c1", "c1"], "item_id": ["a", "b"],
                                     "ts": [pd.Timestamp("2024-03-01 10:00")] * 2}


def test_an_empty_table_is_refused_by_validation_with_the_usual_message(postgres_url, shop):
    load_into(postgres_url, shop.orders.head(0))
    frame = read_postgres(f"{postgres_url}&table=orders")
    assert frame.empty and "order_id" in frame.columns
    with pytest.raises(InputError, match="no data rows"):
        validated(frame, shop)


def test_a_missing_table_names_it_and_the_fix(postgres_url):
    with pytest.raises(InputError, match=r'"no_such_orders" does not exist.*schema\.table'):
        read_postgres(f"{postgres_url}&table=no_such_orders")


def test_an_unreachable_database_is_a_retryable_error_without_the_password():
    with pytest.raises(SourceUnavailable, match="cannot connect to PostgreSQL after 3 attempts") as err:
        read_postgres("postgresql://shop:s3cret@127.0.0.1:1/shop?table=orders&connect_timeout=2")
    assert "s3cret" not in str(err.value) and "shop:***@" in str(err.value)


@pytest.mark.parametrize("query, message", [
    ("", "exactly one of"),
    ("table=a&query=SELECT%201", "exactly one of"),
    ("table=a&chunk_rows=0", "chunk_rows must be a positive integer"),
])
def test_ambiguous_urls_are_refused(query, message):
    with pytest.raises(InputError, match=message):
        parse_postgres_url(f"postgresql://h/db?{query}")


def test_libpq_parameters_pass_through_and_ours_do_not():
    src = parse_postgres_url("postgresql://u@h:5433/db?sslmode=require&table=s.orders&chunk_rows=5000")
    assert src.conninfo == "postgresql://u@h:5433/db?sslmode=require"
    assert (src.table, src.query, src.chunk_rows) == ("s.orders", None, 5000)
