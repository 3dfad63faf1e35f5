"""Typed records that flow between the training stages.

io.py produces `Catalog` and `Orders` (validated pandas frames); `build_interactions`
turns them into `Interactions`: integer codes over a fixed product and user index,
which every model consumes. Codes are shared by train and test splits, so a model
fitted on the past can be scored against the future without re-indexing.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

# Canonical column names after loading (adapters map raw files onto these).
ORDER_REQUIRED = ("order_id", "user_id", "item_id", "ts")
ORDER_OPTIONAL = ("quantity", "price")
CATALOG_REQUIRED = ("item_id", "category")
CATALOG_OPTIONAL = ("product_id", "title", "price", "brand")


@dataclass
class Catalog:
    """One row per sellable item (variant).

    `items` columns: item_id, product_id, category, title, brand (str), price (float,
    NaN when unknown), plus free attribute columns named in `attribute_columns`
    (size, color, ...), all str.
    """

    items: pd.DataFrame
    attribute_columns: list[str] = field(default_factory=list)


@dataclass
class LineCodes:
    """Integer codes of validated order lines, made once by validation (training.io), so
    the report and the encoding count and index on integers instead of hashing the same
    string ids again (at 10M lines each pass over a string column costs seconds)."""

    order: np.ndarray  # (n_lines,) int32 dense order code, in order of first appearance
    order_ids: pd.Index  # (n_orders,) str: order_ids[order] is the line's order_id
    user: np.ndarray  # (n_lines,) int32 dense user code, in order of first appearance
    user_ids: np.ndarray  # (n_users,) str: user_ids[user] is the line's user_id
    item_row: np.ndarray  # (n_lines,) int32 row of the line's item in Catalog.items
    n_catalog_items: int  # rows of the catalog the item rows refer to


@dataclass
class Orders:
    """One row per purchased order line (returns already removed).

    `lines` columns: order_id, user_id, item_id, product_id (str), ts (datetime64[ns]),
    quantity (float, > 0), price (float, NaN when unknown). `codes`: the lines' integer
    codes when validation made them (None for hand-built orders); they describe `lines`
    as validated, so a changed copy of `lines` goes without them.
    """

    lines: pd.DataFrame
    codes: LineCodes | None = field(default=None, repr=False)

    def codes_for(self, catalog: "Catalog") -> LineCodes | None:
        """`codes` when they still describe these lines against this catalog's rows;
        None (use the strings) for hand-built orders or a changed copy."""
        c = self.codes
        if c is None or c.n_catalog_items != len(catalog.items) or len(c.order) != len(self.lines):
            return None
        return c


@dataclass
class Interactions:
    """Order lines as integer codes over a fixed product/user index.

    Product codes index `product_ids` (every catalog product, including ones never
    bought). Order codes are dense within this object only.
    """

    product_ids: np.ndarray  # (n_products,) str
    product_category: np.ndarray  # (n_products,) int32 code into category_names
    category_names: np.ndarray  # (n_categories,) str
    user_ids: np.ndarray  # (n_users,) str
    order: np.ndarray  # (n_lines,) int64 dense order code
    user: np.ndarray  # (n_lines,) int32
    product: np.ndarray  # (n_lines,) int32
    ts: np.ndarray  # (n_lines,) int64 seconds since epoch
    quantity: np.ndarray  # (n_lines,) float32

    @property
    def n_products(self) -> int:
        return len(self.product_ids)

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_orders(self) -> int:
        return int(self.order.max()) + 1 if len(self.order) else 0

    def subset(self, mask: np.ndarray) -> "Interactions":
        """Lines where `mask` holds, same product/user index, orders re-densified."""
        order = self.order[mask]
        _, dense = np.unique(order, return_inverse=True)
        return Interactions(
            product_ids=self.product_ids,
            product_category=self.product_category,
            category_names=self.category_names,
            user_ids=self.user_ids,
            order=dense.astype(np.int64),
            user=self.user[mask],
            product=self.product[mask],
            ts=self.ts[mask],
            quantity=self.quantity[mask],
        )


def build_interactions(orders: Orders, catalog: Catalog) -> Interactions:
    """Encode validated orders against the catalog's product index.

    Products are the catalog's distinct product_ids in catalog order, users and orders
    are numbered in order of first appearance on the lines (validation's codes when it
    made them: the same numbering, without hashing the ids again)."""
    items = catalog.items
    products = items.drop_duplicates("product_id", keep="first")
    product_ids = products["product_id"].to_numpy(dtype=str)
    cat_codes, cat_names = pd.factorize(products["category"].astype(str), sort=True)
    product_index = pd.Index(product_ids)

    lines = orders.lines
    codes = orders.codes_for(catalog)
    if codes is not None:
        item_product = product_index.get_indexer(items["product_id"])  # catalog-sized
        product = item_product[codes.item_row]
        user_codes, user_ids, order_codes = codes.user, codes.user_ids, codes.order
    else:
        product = product_index.get_indexer(lines["product_id"])
        if (product < 0).any():
            raise ValueError("order lines reference products missing from the catalog; "
                             "validate orders against the catalog first (training.io)")
        user_codes, user_ids = pd.factorize(lines["user_id"], sort=False)
        order_codes, _ = pd.factorize(lines["order_id"], sort=False)
    ts = lines["ts"].to_numpy(dtype="datetime64[s]").astype(np.int64)
    qty = lines["quantity"].to_numpy(dtype=np.float32) if "quantity" in lines else np.ones(len(lines), np.float32)
    return Interactions(
        product_ids=product_ids,
        product_category=cat_codes.astype(np.int32),
        category_names=np.asarray(cat_names, dtype=str),
        user_ids=np.asarray(user_ids, dtype=str),
        order=order_codes.astype(np.int64),
        user=user_codes.astype(np.int32),
        product=product.astype(np.int32),
        ts=ts,
        quantity=qty,
    )


def hashable_lines(orders: Orders, catalog: Catalog) -> pd.DataFrame:
    """`orders.lines` with the id columns as categoricals built from validation's codes:
    pandas hashes a categorical as its values (pd.util.hash_pandas_object gives the same
    row hashes) but hashes each distinct id once instead of once per line."""
    lines, codes, items = orders.lines, orders.codes_for(catalog), catalog.items
    if codes is None:
        return lines
    item_product, product_ids = pd.factorize(items["product_id"])
    as_category = {
        # A deep copy: from_codes' uniqueness check caches a hash table (and the ids as
        # Python strings) on the array, which on codes.order_ids would live on all job.
        "order_id": (codes.order, codes.order_ids.copy(deep=True)),
        "user_id": (codes.user, pd.Index(codes.user_ids, dtype="str")),
        "item_id": (codes.item_row, pd.Index(items["item_id"], dtype="str")),
        "product_id": (item_product[codes.item_row], pd.Index(product_ids, dtype="str")),
    }
    try:
        return lines.assign(**{c: pd.Categorical.from_codes(code, categories=ids)
                               for c, (code, ids) in as_category.items()})
    except ValueError:  # duplicate catalog item ids (a hand-built catalog): hash the strings
        return lines


def fill_prices_from_orders(catalog: Catalog, orders: Orders) -> Catalog:
    """Catalog prices missing -> the item's median order-line price (then its product's).

    Substitutes compare prices and bundles quote them; many exports carry prices only
    on the order lines (complete-journey does).
    """
    items = catalog.items
    missing = items["price"].isna()
    if not missing.any() or "price" not in orders.lines:
        return catalog
    codes = orders.codes_for(catalog)
    if codes is not None:
        # The same medians grouped on integer codes: an item is a catalog row.
        price = pd.Series(orders.lines["price"].to_numpy(float))
        known = price.notna().to_numpy()
        item_product, _ = pd.factorize(items["product_id"])
        rows = codes.item_row[known]
        by_item = price[known].groupby(rows).median().reindex(range(len(items))).to_numpy()
        by_product = price[known].groupby(item_product[rows]).median()
        from_product = by_product.reindex(item_product).to_numpy()
        price = items["price"].fillna(pd.Series(by_item, index=items.index))
        price = price.fillna(pd.Series(from_product, index=items.index))
    else:
        lines = orders.lines[["item_id", "product_id", "price"]].dropna(subset=["price"])
        by_item = lines.groupby("item_id")["price"].median()
        by_product = lines.groupby("product_id")["price"].median()
        price = items["price"].fillna(items["item_id"].map(by_item)).fillna(items["product_id"].map(by_product))
    return Catalog(items=items.assign(price=price.round(2)), attribute_columns=catalog.attribute_columns)


def product_table(catalog: Catalog, product_ids: np.ndarray) -> pd.DataFrame:
    """Variants rolled up to products, in the order of `product_ids`.

    Columns: product_id, category, title, brand (first variant's), price (median of
    variants, NaN when none known), n_variants, and each attribute column as the
    sorted, '|'-joined set of the variants' values (e.g. size 'L|M|XL').
    """
    items = catalog.items
    g = items.groupby("product_id", sort=False)
    out = g[["category", "title", "brand"]].first()
    out["price"] = g["price"].median()
    out["n_variants"] = g.size()
    for col in catalog.attribute_columns:
        # Distinct values per product, sorted, joined: vectorised except the final join.
        vals = items[["product_id", col]].dropna()
        vals = vals.assign(**{col: vals[col].astype(str)})
        vals = vals[vals[col] != ""].drop_duplicates().sort_values(["product_id", col])
        multi = vals["product_id"].duplicated(keep=False).to_numpy()
        single = vals[~multi].set_index("product_id")[col]  # the common case: no Python per group
        joined = vals[multi].groupby("product_id", sort=False)[col].agg("|".join)
        out[col] = pd.concat([single, joined]).reindex(out.index).fillna("")
    out = out.reindex(pd.Index(product_ids, name="product_id"))
    return out.reset_index()


@dataclass
class MetricRow:
    """One line of the evaluation table: a model's metrics on one task."""

    task: str  # "complements" | "personal" | "substitutes"
    model: str  # "copurchase", "cocount", "popularity", "popularity-category", "als", ...
    metrics: dict[str, float]  # e.g. {"HitRate@10": .., "Recall@10": .., "NDCG@10": .., "Coverage@10": ..}
    n_queries: int
    note: str = ""
