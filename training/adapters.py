"""Adapters that map the two public datasets onto the standard input columns.

Each adapter only renames and derives columns, row-aligned with the raw file, and passes
its dataset-specific reasons (postage codes, ...) as rules to `validate_orders`; so the
report still accounts for every raw row and shows raw rows as examples.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from training.data import Catalog, Orders
from training.io import DataReport, InputError, read_table, validate_catalog, validate_orders

Adapter = Callable[[str, "str | None", DataReport], tuple[Orders, Catalog]]

# Online Retail: codes that are fees, postage, manual adjustments or vouchers, not products.
# Anything without a 5-digit stem is caught by the pattern; the list names the ones that matter.
NON_PRODUCT_CODES = frozenset({
    "POST", "DOT", "M", "D", "C2", "S", "B", "PADS", "CRUK", "BANK CHARGES", "AMAZONFEE",
    "DCGSSBOY", "DCGSSGIRL",
})
_PRODUCT_CODE = r"^\d{5}[A-Z]{0,3}$"


def _require(df: pd.DataFrame, columns: tuple[str, ...], source: str, what: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise InputError(f"{what} file {source} lacks the column {missing[0]!r} (expected {', '.join(columns)}); "
                         "is this the right file for this --format?")
    if df.empty:
        raise InputError(f"{what} file {source} has no data rows")


# ------------------------------------------------------------------------- online retail

def online_retail(orders: str, catalog: str | None, report: DataReport) -> tuple[Orders, Catalog]:
    """UCI Online Retail: one raw invoice-line file; the catalog is derived from the lines.

    Variants (85123A, 85123B) stay separate products: their family (numeric stem) is the
    ground truth for substitute evaluation, kept as attribute `family`.
    """
    if catalog is not None:
        report.notes.append(f"online-retail derives its catalog from the invoice lines; ignored {catalog}")
    raw = read_table(orders, what="orders")
    _require(raw, ("InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID"),
             orders, "orders")
    code = raw["StockCode"].astype("str").str.strip().str.upper()  # '15056bl' is '15056BL'
    invoice = raw["InvoiceNo"].astype("str").str.strip()
    frame = pd.DataFrame({
        "order_id": invoice, "user_id": raw["CustomerID"], "item_id": code,
        "ts": raw["InvoiceDate"], "quantity": raw["Quantity"], "price": raw["UnitPrice"],
        "cancelled": invoice.str.upper().str.startswith("C"),
        "title": raw["Description"].astype("str").str.strip(),  # for the derived catalog only
    })
    non_product = (code.isin(NON_PRODUCT_CODES) | ~code.str.match(_PRODUCT_CODE)).fillna(True).to_numpy()
    price = pd.to_numeric(raw["UnitPrice"], errors="coerce")
    free = (price <= 0).to_numpy()

    cat = validate_catalog(_retail_catalog(frame, non_product | free), report,
                           source=f"derived from {orders} (StockCode)")
    rules = [("non-product code (postage, fees, adjustments)", non_product), ("zero or negative price", free)]
    return validate_orders(frame, cat, report, source=str(orders), raw=raw, rules=rules), cat


def _retail_catalog(frame: pd.DataFrame, excluded: np.ndarray) -> pd.DataFrame:
    """One row per product code sold (to anyone): most frequent description, median price, stem."""
    qty = pd.to_numeric(frame["quantity"], errors="coerce")
    sold = frame[~excluded & (qty > 0).to_numpy() & ~frame["cancelled"].to_numpy()]
    counts = (sold[["item_id", "title"]].dropna().value_counts().reset_index()
              .sort_values(["count", "title"], ascending=[False, True]))  # ties: deterministic
    title = counts.drop_duplicates("item_id").set_index("item_id")["title"]
    price = pd.to_numeric(sold["price"], errors="coerce").groupby(sold["item_id"]).median()
    out = pd.DataFrame({"item_id": price.index, "price": price.to_numpy()})
    out["product_id"] = out["item_id"]
    out["category"] = "all"  # the dataset has no categories
    out["title"] = out["item_id"].map(title).fillna("")
    out["family"] = out["item_id"].str[:5]
    return out.sort_values("item_id", ignore_index=True)


# ---------------------------------------------------------------------- complete journey

def complete_journey(orders: str, catalog: str | None, report: DataReport) -> tuple[Orders, Catalog]:
    """dunnhumby The Complete Journey: a folder with transactions.parquet and products.parquet."""
    base = Path(orders)
    tx_path = base / "transactions.parquet" if base.is_dir() else base
    products_path = Path(catalog) if catalog else tx_path.parent / "products.parquet"
    products = read_table(products_path, what="catalog")
    _require(products, ("product_id", "product_category", "product_type", "brand", "department",
                        "manufacturer_id", "package_size"), str(products_path), "catalog")
    category = products["product_category"].astype("str").str.strip()
    unknown = category.isna() | (category == "")
    if unknown.any():
        report.notes.append(f"{int(unknown.sum()):,} catalog items have no product_category; put in category 'UNKNOWN'")
    ptype = products["product_type"].astype("str").fillna("")
    size = products["package_size"].astype("str").fillna("")
    items = pd.DataFrame({
        "item_id": products["product_id"], "product_id": products["product_id"],
        "category": category.mask(unknown, "UNKNOWN"),
        "title": (ptype + " " + size).str.strip().str.title(),
        "brand": products["brand"],
        "department": products["department"], "product_type": products["product_type"],
        "manufacturer_id": products["manufacturer_id"], "package_size": products["package_size"],
    })
    cat = validate_catalog(items, report, source=str(products_path), raw=products)

    tx = read_table(tx_path, what="orders")
    _require(tx, ("household_id", "basket_id", "product_id", "quantity", "sales_value", "transaction_timestamp"),
             str(tx_path), "orders")
    qty = pd.to_numeric(tx["quantity"], errors="coerce")
    frame = pd.DataFrame({
        "order_id": tx["basket_id"], "user_id": tx["household_id"], "item_id": tx["product_id"],
        "ts": tx["transaction_timestamp"], "quantity": qty,
        # unit price; quantity 0 gives NaN here and the line is skipped as zero quantity
        "price": pd.to_numeric(tx["sales_value"], errors="coerce") / qty.where(qty != 0),
    })
    return validate_orders(frame, cat, report, source=str(tx_path), raw=tx), cat


ADAPTERS: dict[str, Adapter] = {
    "online-retail": online_retail,
    "complete-journey": complete_journey,
}
