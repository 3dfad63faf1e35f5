"""Admin operations as plain Python: stock, prices, promotions, model info.

Merchandisers think in products ("JKT-1 is sold out"); the inventory and price
overrides are per variant. A product id in a stock or price update therefore stands
for all of its variants. Every id is checked against the loaded catalog before anything
is written, so a batch with a typo changes nothing.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from recsvc.answers import BadRequest, Live
from recsvc.inventory import UnknownItems
from recsvc.promotions import Promotion, PromotionBook, validate_promotion
from recsvc.runtime import Runtime
from recsvc.store.base import PriceUpdate, StockUpdate
from training.bundle import current_version, list_versions


def _expand(live: Live, ids: Sequence[str], field_name: str) -> list[list[str]]:
    """Variant ids per given id (a variant: itself; a product: all of its variants)."""
    m = live.model
    out, unknown = [], []
    for i, item_id in enumerate(ids):
        if not item_id:
            raise BadRequest(f"{field_name}[{i}].item_id", "must name an item")
        hit = m.lookup(item_id)
        if hit is None:
            unknown.append(item_id)
        elif hit[1] >= 0:
            out.append([item_id])
        else:
            lo, hi = m.product_variants_indptr[hit[0]], m.product_variants_indptr[hit[0] + 1]
            out.append(m.variant_ids[m.product_variants[lo:hi]].tolist())
    if unknown:
        raise UnknownItems(unknown)
    return out


def update_stock(live: Live, levels: Sequence[tuple[str, int]]) -> int:
    """Set units on hand; returns the store's change sequence number."""
    if not levels:
        raise BadRequest("levels", "must hold at least one item")
    variants = _expand(live, [item_id for item_id, _ in levels], "levels")
    updates = [StockUpdate(v, int(q)) for vs, (_, q) in zip(variants, levels) for v in vs]
    return live.inventory.apply(updates)


def stock_of(live: Live, ids: Sequence[str]) -> list[tuple[str, bool]]:
    if not ids:
        raise BadRequest("item_ids", "must name at least one item")
    m, view = live.model, live.inventory.view()
    out, unknown = [], []
    for item_id in ids:
        hit = m.lookup(item_id)
        if hit is None:
            unknown.append(item_id)
            continue
        p, v = hit
        out.append((item_id, bool(view.variant[v] if v >= 0 else view.product[p])))
    if unknown:
        raise UnknownItems(unknown)
    return out


def update_prices(live: Live, prices: Sequence[tuple[str, float]]) -> int:
    if not prices:
        raise BadRequest("prices", "must hold at least one item")
    for i, (_, price) in enumerate(prices):
        if not math.isfinite(price) or price < 0:
            raise BadRequest(f"prices[{i}].price", f"must be a number >= 0, got {price!r}")
    variants = _expand(live, [item_id for item_id, _ in prices], "prices")
    updates = [PriceUpdate(v, float(price)) for vs, (_, price) in zip(variants, prices) for v in vs]
    live.prices.apply(updates)
    return len(updates)


def create_promotion(book: PromotionBook, p: Promotion) -> Promotion:
    try:
        validate_promotion(p)
        return book.create(p)
    except ValueError as e:  # messages start with the field name
        raise BadRequest(f"promotion.{str(e).split(':', 1)[0]}", str(e).split(": ", 1)[-1]) from None


def list_promotions(book: PromotionBook, active_at: datetime | None) -> list[Promotion]:
    return book.active(active_at) if active_at is not None else book.list()


@dataclass
class ModelInfo:
    version: str = ""
    path: str = ""
    created: str = ""
    format_version: int = 0
    products: int = 0
    variants: int = 0
    categories: int = 0
    users: int = 0
    loaded_at: datetime | None = None
    load_seconds: float = 0.0
    current_version: str = ""
    versions: list[str] = field(default_factory=list)
    last_reload_error: str = ""


def model_info(runtime: Runtime) -> ModelInfo:
    try:
        current, versions = current_version(runtime.model_dir) or "", list_versions(runtime.model_dir)
    except OSError as e:  # an unreadable model dir: report it, the loaded model still serves
        current, versions = f"(unreadable: {e.strerror})", []
    info = ModelInfo(current_version=current, versions=versions, last_reload_error=runtime.status.last_error)
    live = runtime.live()
    if live is not None:
        m = live.model
        info.version, info.path = m.version, str(m.path)
        info.created, info.format_version = str(m.manifest.get("created", "")), int(m.manifest.get("format_version", 0))
        info.products, info.variants = m.n_products, m.n_variants
        info.categories, info.users = len(m.category_names), len(m.user_index)
        info.loaded_at, info.load_seconds = m.loaded_at, m.load_seconds
    return info
