"""Synthetic shops: an apparel shop with planted structure, and a bulk generator for benchmarks.

`generate_shop` plants what the models should find, and records it in `DemoTruth`:
complement styles bought together across categories (a jacket with its trousers),
groups of interchangeable styles of which each customer picks one (substitutes), new
styles without orders, and sold-out variants and products. The raw orders are in the
standard input format, returns and cancellations included, so the whole pipeline (load,
report, train, serve) can be shown on them in seconds.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

APPAREL = ("XS", "S", "M", "L", "XL", "XXL")
SHOE = tuple(str(s) for s in range(38, 47))
SML = ("S", "M", "L")
ONE = ("ONE",)
SIZE_SYSTEMS = (APPAREL, SHOE, SML, ONE)
COLORS = ("black", "white", "navy", "grey", "beige", "olive", "red", "blue")
BRANDS = ("Northwind", "Kestrel", "Marlow", "Aster", "Juniper & Co", "Fjell", "Oriel", "Sable")
ADJECTIVES = ("Classic", "Slim", "Relaxed", "Essential", "Heritage", "Urban", "Light", "Organic", "Tailored", "Everyday")


@dataclass(frozen=True)
class CategorySpec:
    price: tuple[float, float]  # typical price range (CNY)
    sizes: tuple[str, ...]
    nouns: tuple[str, ...]
    weight: float  # share of styles


CATEGORIES: dict[str, CategorySpec] = {
    "jackets": CategorySpec((399, 1299), APPAREL,
                            ("Bomber Jacket", "Denim Jacket", "Puffer Jacket", "Field Jacket", "Blazer"), 1.0),
    "trousers": CategorySpec((199, 599), APPAREL, ("Chinos", "Cargo Trousers", "Pleated Trousers", "Joggers"), 1.0),
    "t-shirts": CategorySpec((59, 199), APPAREL, ("Crew Tee", "V-neck Tee", "Pocket Tee", "Graphic Tee"), 1.4),
    "belts": CategorySpec((99, 399), SML, ("Leather Belt", "Canvas Belt", "Braided Belt"), 0.6),
    "shoes": CategorySpec((299, 999), SHOE, ("Sneakers", "Loafers", "Boots", "Runners"), 1.0),
    "socks": CategorySpec((19, 59), SML, ("Ankle Socks", "Crew Socks", "Wool Socks"), 0.5),
    "hoodies": CategorySpec((169, 459), APPAREL, ("Zip Hoodie", "Pullover Hoodie", "Fleece Hoodie"), 0.8),
    "jeans": CategorySpec((229, 699), APPAREL, ("Slim Jeans", "Straight Jeans", "Wide Jeans", "Tapered Jeans"), 0.9),
    "dresses": CategorySpec((199, 899), APPAREL, ("Midi Dress", "Wrap Dress", "Shirt Dress", "Slip Dress"), 1.0),
    "scarves": CategorySpec((79, 299), ONE, ("Wool Scarf", "Silk Scarf", "Knit Scarf"), 0.5),
}
# What goes with what (the brief: trousers, a T-shirt and a belt for a jacket; jeans for a hoodie).
CATEGORY_COMPLEMENTS: dict[str, tuple[str, ...]] = {
    "jackets": ("trousers", "t-shirts", "belts"),
    "hoodies": ("jeans", "t-shirts"),
    "jeans": ("belts", "t-shirts"),
    "trousers": ("belts", "shoes"),
    "dresses": ("scarves", "shoes"),
    "shoes": ("socks",),
}
# Customer tastes: category affinity per segment (others get a small base rate).
SEGMENTS: dict[str, dict[str, float]] = {
    "tailored": {"jackets": 3, "trousers": 3, "belts": 2, "shoes": 2},
    "street": {"hoodies": 3, "jeans": 3, "t-shirts": 3, "shoes": 1.5},
    "dress": {"dresses": 4, "scarves": 2.5, "shoes": 2},
    "basics": {"t-shirts": 3, "socks": 3, "jeans": 2, "trousers": 1},
}
P_PARTNER = 0.5  # chance a planted complement partner joins the anchor's order
FAVOURITE_BRAND = 5.0  # weight of a customer's favourite brand over the others
P_PREFERRED = 0.9  # chance a customer takes their preferred member of a substitute group


@dataclass
class DemoTruth:
    complement_pairs: list[tuple[str, str]]  # (style, partner style in a complementary category)
    category_complements: dict[str, list[str]]
    substitute_groups: list[list[str]]  # same category, brand, noun, price within ~8 %
    new_products: list[str]  # styles with no orders
    sold_out_items: list[str]  # variants with stock 0
    sold_out_products: list[str] = field(default_factory=list)  # styles with every variant at 0


@dataclass
class DemoShop:
    orders: pd.DataFrame  # standard format; ts as ISO text, a `status` column (paid/cancelled/returned)
    catalog: pd.DataFrame  # item_id, product_id (style), category, title, brand, price, size, color
    stock: pd.DataFrame  # item_id, quantity
    truth: DemoTruth


def _allocate(n: int, weights: np.ndarray, minimum: int) -> np.ndarray:
    """Largest-remainder split of n into len(weights) parts of at least `minimum`."""
    spare = n - minimum * len(weights)
    if spare < 0:
        raise ValueError(f"need at least {minimum * len(weights)} styles, got {n}")
    raw = spare * weights / weights.sum()
    counts = np.floor(raw).astype(int)
    counts[np.argsort(-(raw - counts), kind="stable")[: spare - counts.sum()]] += 1
    return counts + minimum


def _styles(rng: np.random.Generator, n_styles: int) -> pd.DataFrame:
    names = list(CATEGORIES)
    counts = _allocate(n_styles, np.array([CATEGORIES[c].weight for c in names]), 3)
    cat = np.repeat(np.arange(len(names)), counts)
    lo = np.array([CATEGORIES[names[c]].price[0] for c in cat])
    hi = np.array([CATEGORIES[names[c]].price[1] for c in cat])
    price = np.round(np.exp(rng.uniform(np.log(lo), np.log(hi))) / 10) * 10 - 1  # shop prices end in 9
    noun = [CATEGORIES[names[c]].nouns[rng.integers(len(CATEGORIES[names[c]].nouns))] for c in cat]
    return pd.DataFrame({
        "product_id": [f"ST{i:04d}" for i in range(n_styles)],
        "cat": cat, "category": np.array(names)[cat],
        "brand": rng.integers(len(BRANDS), size=n_styles),
        "adj": rng.integers(len(ADJECTIVES), size=n_styles), "noun": noun, "price": price,
        "pop": rng.lognormal(0.0, 1.0, n_styles),
        "n_colors": rng.integers(1, 5, size=n_styles),
        "group": -1, "new": False,
    })


def _plant_groups(rng: np.random.Generator, st: pd.DataFrame, n_groups: int) -> list[np.ndarray]:
    """Make sets of 2-3 same-category styles near-identical: one brand, noun, price band."""
    groups: list[np.ndarray] = []
    free = ~st["new"].to_numpy()
    for g in range(n_groups):
        cat = g % len(CATEGORIES)
        pool = np.flatnonzero(free & (st["cat"].to_numpy() == cat))
        k = int(rng.integers(2, 4))
        if len(pool) < k + 2:
            continue
        members = rng.choice(pool, size=k, replace=False)
        base = members[0]
        for col in ("brand", "noun"):
            st.loc[members, col] = st.loc[base, col]
        st.loc[members, "price"] = np.round(st.loc[base, "price"] * rng.uniform(0.92, 1.08, k) / 10) * 10 - 1
        st.loc[members, "adj"] = rng.choice(len(ADJECTIVES), size=k, replace=False)
        st.loc[members, "group"] = len(groups)
        free[members] = False
        groups.append(members)
    return groups


def _plant_partners(rng: np.random.Generator, st: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """CSR (indptr, partners): one partner style per complementary category.

    Members of a substitute group share their partners (they are interchangeable), and
    partners are plain styles so the planted pair is exact.
    """
    names = list(CATEGORIES)
    cat, group, new = st["cat"].to_numpy(), st["group"].to_numpy(), st["new"].to_numpy()
    eligible = ~new & (group < 0)
    pop = st["pop"].to_numpy()
    by_group: dict[int, list[int]] = {}
    partners: list[list[int]] = []
    for s in range(len(st)):
        if new[s]:
            partners.append([])
            continue
        if group[s] >= 0 and group[s] in by_group:
            partners.append(by_group[group[s]])
            continue
        chosen = []
        for target in CATEGORY_COMPLEMENTS.get(names[cat[s]], ()):
            pool = np.flatnonzero(eligible & (cat == names.index(target)))
            chosen.append(int(rng.choice(pool, p=pop[pool] / pop[pool].sum())))
        partners.append(chosen)
        if group[s] >= 0:
            by_group[group[s]] = chosen
    indptr = np.concatenate([[0], np.cumsum([len(p) for p in partners])])
    return indptr, np.array([p for ps in partners for p in ps], dtype=np.int64)


def _timestamps(rng: np.random.Generator, n: int, start: pd.Timestamp, days: int) -> np.ndarray:
    """Weekends busier, gentle growth, one campaign day; peak hours as in the brief."""
    day = np.arange(days)
    weekend = np.asarray(pd.DatetimeIndex(start + pd.to_timedelta(day, "D")).day_of_week >= 5)
    w = (1 + 0.3 * weekend) * (1 + day / days)
    w[int(days * 0.8)] *= 5
    hour_w = np.ones(24)
    hour_w[[0, 9, 10, 14, 15, 16, 20, 21, 22]] = 3
    hour_w[1:8] = 0.2
    d = rng.choice(days, size=n, p=w / w.sum())
    h = rng.choice(24, size=n, p=hour_w / hour_w.sum())
    secs = d * 86400 + h * 3600 + rng.integers(3600, size=n)
    return np.sort(np.datetime64(start.to_datetime64(), "s") + secs.astype("timedelta64[s]"))


def generate_shop(seed: int = 0, n_styles: int = 300, n_users: int = 2000, n_orders: int = 20000,
                  start: str = "2024-01-01", days: int = 180, messy: bool = False) -> DemoShop:
    """A deterministic apparel shop (same seed, same shop)."""
    rng = np.random.default_rng(seed)
    st = _styles(rng, n_styles)
    new = rng.choice(n_styles, size=max(1, n_styles // 20), replace=False)
    st.loc[new, ["new", "pop"]] = [True, 0.0]
    groups = _plant_groups(rng, st, max(1, n_styles // 15))
    indptr, partners = _plant_partners(rng, st)
    names = np.array(list(CATEGORIES))

    # Customers: a taste segment, a favourite brand, sizes, a fixed pick within each substitute group.
    seg_names = list(SEGMENTS)
    seg_cat = np.array([[SEGMENTS[g].get(c, 0.3) for c in names] for g in seg_names])
    seg_brand = rng.gamma(2.0, 1.0, (len(seg_names), len(BRANDS)))
    user_seg = rng.integers(len(seg_names), size=n_users)
    user_taste = user_seg * len(BRANDS) + rng.integers(len(BRANDS), size=n_users)  # segment x favourite brand
    user_size = np.stack([np.clip(np.round(rng.normal((len(s) - 1) / 2, len(s) / 5, n_users)), 0, len(s) - 1)
                          for s in SIZE_SYSTEMS]).astype(int)
    user_pick = rng.random(n_users)
    activity = rng.lognormal(0.0, 1.0, n_users)

    # One anchor style per order, drawn from the customer's taste; planted partners join it.
    order_user = rng.choice(n_users, size=n_orders, p=activity / activity.sum())
    brand = st["brand"].to_numpy()
    seg_taste = st["pop"].to_numpy() * seg_cat[:, st["cat"].to_numpy()] * seg_brand[:, brand]
    fav = np.where(np.arange(len(BRANDS))[:, None] == brand, FAVOURITE_BRAND, 1.0)
    taste = (seg_taste[:, None, :] * fav[None, :, :]).reshape(-1, n_styles)  # row = user_taste
    anchor = _draw(rng, taste, user_taste[order_user])
    extra_order = np.repeat(np.arange(n_orders), rng.poisson(0.4, n_orders))
    extra = _draw(rng, taste, user_taste[order_user[extra_order]])
    n_part = np.diff(indptr)[anchor]
    part_order = np.repeat(np.arange(n_orders), n_part)
    part = partners[indptr[anchor[part_order]] + _ragged_arange(n_part)]
    joined = rng.random(len(part)) < P_PARTNER
    order = np.concatenate([np.arange(n_orders), part_order[joined], extra_order])
    style = np.concatenate([anchor, part[joined], extra])
    style = _pick_member(rng, st, groups, style, user_pick[order_user[order]])
    # One line per style per order, and never two members of one substitute group.
    key = np.where(st["group"].to_numpy()[style] >= 0, -1 - st["group"].to_numpy()[style], style)
    first = ~pd.DataFrame({"o": order, "k": key}).duplicated().to_numpy()
    order, style = order[first], style[first]

    catalog, variants = _catalog(rng, st)
    lines = _lines(rng, st, variants, order, style, user_size[:, order_user[order]])
    ts = _timestamps(rng, n_orders, pd.Timestamp(start), days)
    lines.insert(0, "order_id", np.char.add("O", np.char.zfill(order.astype(str), 6)))
    lines.insert(1, "user_id", np.char.add("U", np.char.zfill(order_user[order].astype(str), 5)))
    lines.insert(3, "ts", ts[order])
    lines = _returns_and_cancellations(rng, lines)
    lines = lines.sort_values(["ts", "order_id"], kind="stable", ignore_index=True)
    lines["ts"] = lines["ts"].dt.strftime("%Y-%m-%d %H:%M:%S")
    stock, sold_out_products = _stock(rng, st, catalog)
    if messy:
        lines, catalog = _mess_up(lines, catalog)

    pid = st["product_id"].to_numpy()
    truth = DemoTruth(
        complement_pairs=sorted({(str(pid[s]), str(pid[p]))
                                 for s in range(n_styles) for p in partners[indptr[s]:indptr[s + 1]]}),
        category_complements={k: list(v) for k, v in CATEGORY_COMPLEMENTS.items()},
        substitute_groups=[sorted(pid[g].tolist()) for g in groups],
        new_products=sorted(pid[st["new"].to_numpy()].tolist()),
        sold_out_items=sorted(stock.loc[stock["quantity"] == 0, "item_id"].tolist()),
        sold_out_products=sold_out_products,
    )
    return DemoShop(orders=lines, catalog=catalog, stock=stock, truth=truth)


def _draw(rng: np.random.Generator, taste: np.ndarray, who: np.ndarray) -> np.ndarray:
    """One style per entry of `who`, drawn from row `who` of `taste` (unnormalised weights)."""
    out = np.empty(len(who), dtype=np.int64)
    for t in np.unique(who):  # at most segments x brands rows
        rows = np.flatnonzero(who == t)
        out[rows] = rng.choice(taste.shape[1], size=len(rows), p=taste[t] / taste[t].sum())
    return out


def _ragged_arange(counts: np.ndarray) -> np.ndarray:
    """[0..c0-1, 0..c1-1, ...] without a Python loop."""
    ends = np.cumsum(counts)
    return np.arange(ends[-1] if len(ends) else 0) - np.repeat(ends - counts, counts)


def _pick_member(rng: np.random.Generator, st: pd.DataFrame, groups: list[np.ndarray],
                 style: np.ndarray, pick: np.ndarray) -> np.ndarray:
    """A customer who wants a style of a substitute group takes their own preferred member."""
    group = st["group"].to_numpy()[style]
    style = style.copy()
    for g, members in enumerate(groups):
        rows = np.flatnonzero(group == g)
        preferred = members[(pick[rows] * len(members)).astype(int)]
        other = members[rng.integers(len(members), size=len(rows))]
        style[rows] = np.where(rng.random(len(rows)) < P_PREFERRED, preferred, other)
    return style


def _catalog(rng: np.random.Generator, st: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Variants: every size of the category in each of the style's colours."""
    rows = []
    for s in st.itertuples():  # a few hundred styles, not data rows
        colors = rng.choice(len(COLORS), size=s.n_colors, replace=False)
        for rank, c in enumerate(colors):
            for size in CATEGORIES[s.category].sizes:
                rows.append((s.Index, rank, COLORS[c], size))
    v = pd.DataFrame(rows, columns=["style", "color_rank", "color", "size"])
    v["item_id"] = st["product_id"].to_numpy()[v["style"]] + "-" + v["color"].str[:3].str.upper() + "-" + v["size"]
    title = (pd.Series(np.array(BRANDS)[st["brand"].to_numpy()]) + " " + np.array(ADJECTIVES)[st["adj"].to_numpy()]
             + " " + st["noun"].to_numpy()).to_numpy()
    catalog = pd.DataFrame({
        "item_id": v["item_id"], "product_id": st["product_id"].to_numpy()[v["style"]],
        "category": st["category"].to_numpy()[v["style"]], "title": title[v["style"]],
        "brand": np.array(BRANDS)[st["brand"].to_numpy()[v["style"]]],
        "price": st["price"].to_numpy()[v["style"]], "size": v["size"], "color": v["color"],
    })
    return catalog, v


def _lines(rng: np.random.Generator, st: pd.DataFrame, variants: pd.DataFrame, order: np.ndarray,
           style: np.ndarray, sizes: np.ndarray) -> pd.DataFrame:
    """Variant per line: the customer's size (mostly) and a colour skewed to the first one."""
    names = list(CATEGORIES)
    system = np.array([SIZE_SYSTEMS.index(CATEGORIES[c].sizes) for c in names])[st["cat"].to_numpy()[style]]
    n_sizes = np.array([len(s) for s in SIZE_SYSTEMS])[system]
    off_size = rng.choice([-1, 0, 0, 0, 0, 0, 1], len(style))
    size_idx = np.clip(sizes[system, np.arange(len(style))] + off_size, 0, n_sizes - 1)
    n_colors = st["n_colors"].to_numpy()[style]
    color_rank = np.minimum((rng.random(len(style)) ** 2 * n_colors).astype(int), n_colors - 1)
    # variants are laid out style by style, colour by colour, size by size (see _catalog)
    per_style = st["n_colors"].to_numpy() * np.array([len(CATEGORIES[c].sizes) for c in names])[st["cat"].to_numpy()]
    row = (np.cumsum(per_style) - per_style)[style] + color_rank * n_sizes + size_idx
    item = variants["item_id"].to_numpy()[row]
    socks = st["category"].to_numpy()[style] == "socks"
    return pd.DataFrame({
        "item_id": item,
        "quantity": np.where(socks, rng.integers(1, 4, len(style)), 1),
        "price": st["price"].to_numpy()[style].astype(float),
    })


def _returns_and_cancellations(rng: np.random.Generator, lines: pd.DataFrame) -> pd.DataFrame:
    """~3 % of lines come back (a negative line days later); ~1 % of orders are cancelled."""
    lines = lines.assign(status="paid")
    cancelled = lines["order_id"].isin(lines["order_id"].drop_duplicates().sample(frac=0.01, random_state=rng))
    lines.loc[cancelled, "status"] = "cancelled"
    back = lines[(rng.random(len(lines)) < 0.03) & ~cancelled.to_numpy()].copy()
    back["ts"] = back["ts"] + pd.to_timedelta(rng.integers(2, 15, len(back)), "D")
    back["quantity"] = -back["quantity"]
    back["status"] = "returned"
    return pd.concat([lines, back], ignore_index=True)


def _stock(rng: np.random.Generator, st: pd.DataFrame, catalog: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Stock per variant; some variants sold out, and a few popular styles sold out entirely."""
    qty = rng.poisson(12, len(catalog))
    qty[rng.random(len(catalog)) < 0.08] = 0
    sellers = st.loc[~st["new"] & (st["group"] < 0)].sort_values("pop", ascending=False)["product_id"]
    out = sorted(sellers.head(max(1, len(st) // 10)).sample(n=max(1, len(st) // 40), random_state=rng))
    qty[catalog["product_id"].isin(out).to_numpy()] = 0
    qty[catalog["product_id"].isin(st.loc[st["new"], "product_id"]).to_numpy()] += 5  # new styles are stocked
    return pd.DataFrame({"item_id": catalog["item_id"], "quantity": qty}), out


def _mess_up(lines: pd.DataFrame, catalog: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A handful of malformed rows of each kind, as real exports have (everything as text)."""
    lines = lines.astype(str)
    good = lines.iloc[0].to_dict()
    bad = [dict(good, user_id=""), dict(good, order_id=""), dict(good, ts="not a date"),
           dict(good, item_id="GHOST-404"), dict(good, price="free"), dict(good, quantity="0"),
           dict(good, item_id=" ")]
    lines = pd.concat([lines, pd.DataFrame(bad)], ignore_index=True)
    first = catalog.iloc[0].to_dict()
    catalog = pd.concat([catalog, pd.DataFrame([dict(first, title="duplicate row"),
                                                dict(first, item_id="NOCAT-1", category="")])], ignore_index=True)
    return lines, catalog


def write_shop(shop: DemoShop, directory: str | Path) -> dict[str, Path]:
    """orders.csv, catalog.csv, stock.csv and truth.json under `directory`."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = {name: directory / f"{name}.csv" for name in ("orders", "catalog", "stock")}
    shop.orders.to_csv(paths["orders"], index=False)
    shop.catalog.to_csv(paths["catalog"], index=False)
    shop.stock.to_csv(paths["stock"], index=False)
    paths["truth"] = directory / "truth.json"
    paths["truth"].write_text(json.dumps(asdict(shop.truth), indent=1))
    return paths


def generate_order_lines(n_lines: int, n_products: int, n_users: int,
                         seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Bulk order lines for scale benchmarks: Zipf popularity, co-purchase within clusters.

    Products fall in clusters of ~20 spanning categories; each order draws from one
    cluster (60 % of its lines, consecutive members so rarely twice the same) and the
    global popularity (the rest). Baskets average 4 lines. Ids are integers.
    """
    rng = np.random.default_rng(seed)
    n_categories = int(np.clip(n_products // 50, 2, 50))
    cluster_size = 20
    n_clusters = max(1, n_products // cluster_size)
    product_pop = 1.0 / (1 + rng.permutation(n_products)) ** 0.9
    cluster = rng.permutation(np.arange(n_products) % n_clusters)
    members = np.argsort(cluster, kind="stable")
    starts = np.searchsorted(cluster[members], np.arange(n_clusters))
    sizes = np.bincount(cluster, minlength=n_clusters)
    cluster_pop = np.bincount(cluster, weights=product_pop, minlength=n_clusters)

    basket = rng.geometric(1 / 4, size=n_lines // 4 + 16)
    while basket.sum() < n_lines:
        basket = np.concatenate([basket, rng.geometric(1 / 4, size=n_lines // 4 + 16)])
    ends = np.cumsum(basket)
    n_orders = int(np.searchsorted(ends, n_lines) + 1)
    basket = basket[:n_orders]
    basket[-1] -= ends[n_orders - 1] - n_lines
    order = np.repeat(np.arange(n_orders), basket)

    user_pop = 1.0 / (1 + rng.permutation(n_users)) ** 0.7
    order_user = rng.choice(n_users, size=n_orders, p=user_pop / user_pop.sum())
    order_cluster = rng.choice(n_clusters, size=n_orders, p=cluster_pop / cluster_pop.sum())
    secs = np.sort(rng.integers(0, 365 * 86400, n_orders))
    order_ts = np.datetime64("2024-01-01T00:00:00", "s") + secs.astype("timedelta64[s]")

    c = order_cluster[order]
    offset = (rng.random(n_orders) ** 2 * sizes[order_cluster]).astype(np.int64)  # skewed to a few members
    rank = np.arange(n_lines) - np.repeat(np.cumsum(basket) - basket, basket)
    within = members[starts[c] + (offset[order] + rank) % sizes[c]]
    anywhere = rng.choice(n_products, size=n_lines, p=product_pop / product_pop.sum())
    item = np.where(rng.random(n_lines) < 0.6, within, anywhere)
    price = np.round(rng.lognormal(3.0, 0.8, n_products), 2)
    orders = pd.DataFrame({
        "order_id": order.astype(np.int64), "user_id": order_user[order].astype(np.int64), "item_id": item,
        "ts": order_ts[order], "quantity": np.ones(n_lines), "price": price[item],
    })
    catalog = pd.DataFrame({
        "item_id": np.arange(n_products), "product_id": np.arange(n_products),
        "category": np.char.add("cat", (np.arange(n_products) % n_categories).astype(str)),
        "title": np.char.add("Product ", np.arange(n_products).astype(str)), "price": price,
    })
    return orders, catalog
