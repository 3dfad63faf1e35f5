"""A tiny apparel shop as a model bundle, written with the real bundle writer.

Small enough that every right answer can be read off this page:

  product   title            category  price  sizes        notes
  JKT-1     Rain jacket      jackets   100    S M L XL     bought with JEANS-1 (312 orders), TEE-1 (120),
                                                           JKT-3 (50, same category), BELT-1 (10)
  JKT-2     Wool jacket      jackets   110    S M L XL     bought with JEANS-2 (80), TEE-2 (40),
                                                           JKT-4 (5: a frequent complement, not a substitute)
  JKT-3     Down jacket      jackets   300    S M L XL     similar, but far outside +/-30 % of 100
  JKT-4     Denim jacket     jackets    90    M L          no XL
  JKT-NEW   New parka        jackets   120    S M L XL     no order history: category fallback
  JEANS-1   Slim jeans       jeans      60    30 32 34
  JEANS-2   Wide jeans       jeans      55    30 32 34
  JEANS-3   Bootcut jeans    jeans      58    30 32
  TEE-1     White tee        shirts     20    S M L
  TEE-2     Black tee        shirts     22    S M L
  BELT-1    Leather belt     belts      30    one
  SOCK-1    Wool socks       socks       8    one

Substitutes of JKT-1: JKT-2, JKT-3, JKT-4, JKT-NEW (in that order); of JKT-2: JKT-4,
JKT-1, JKT-3, JKT-NEW. Categories that go with jackets: jeans, shirts, belts.

Customers: "alice" bought JKT-1, JEANS-1 and SOCK-1; her factors point at shirts, then
socks. "bob" bought TEE-1. Popularity: JEANS-1 > TEE-1 > JKT-1 > ... (see POPULARITY).
Variant ids are PRODUCT-SIZE, e.g. "JKT-1-XL".
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from training.bundle import write_bundle

CATEGORIES = ["belts", "jackets", "jeans", "shirts", "socks"]  # sorted, as training writes them
PRODUCTS = [  # id, title, category, price, sizes
    ("JKT-1", "Rain jacket", "jackets", 100.0, ["S", "M", "L", "XL"]),
    ("JKT-2", "Wool jacket", "jackets", 110.0, ["S", "M", "L", "XL"]),
    ("JKT-3", "Down jacket", "jackets", 300.0, ["S", "M", "L", "XL"]),
    ("JKT-4", "Denim jacket", "jackets", 90.0, ["M", "L"]),
    ("JKT-NEW", "New parka", "jackets", 120.0, ["S", "M", "L", "XL"]),
    ("JEANS-1", "Slim jeans", "jeans", 60.0, ["30", "32", "34"]),
    ("JEANS-2", "Wide jeans", "jeans", 55.0, ["30", "32", "34"]),
    ("JEANS-3", "Bootcut jeans", "jeans", 58.0, ["30", "32"]),
    ("TEE-1", "White tee", "shirts", 20.0, ["S", "M", "L"]),
    ("TEE-2", "Black tee", "shirts", 22.0, ["S", "M", "L"]),
    ("BELT-1", "Leather belt", "belts", 30.0, ["one"]),
    ("SOCK-1", "Wool socks", "socks", 8.0, ["one"]),
]
IDS = [p[0] for p in PRODUCTS]
P = {pid: i for i, pid in enumerate(IDS)}
POPULARITY = {"JEANS-1": 50, "TEE-1": 40, "JKT-1": 30, "JEANS-2": 25, "TEE-2": 20, "JKT-2": 15, "BELT-1": 12,
              "JEANS-3": 10, "SOCK-1": 9, "JKT-4": 5, "JKT-3": 3, "JKT-NEW": 0}
# anchor -> [(complement, score, support)], best first
COMPLEMENTS = {
    "JKT-1": [("JEANS-1", 0.9, 312), ("TEE-1", 0.6, 120), ("JKT-3", 0.3, 50), ("BELT-1", 0.1, 10)],
    "JKT-2": [("JEANS-2", 0.8, 80), ("TEE-2", 0.5, 40), ("JKT-4", 0.2, 5)],
    "JEANS-1": [("JKT-1", 0.9, 312), ("TEE-1", 0.7, 100), ("BELT-1", 0.4, 60)],
    "TEE-1": [("JEANS-1", 0.7, 100), ("JKT-1", 0.6, 120), ("SOCK-1", 0.2, 15)],
    "BELT-1": [("JEANS-1", 0.4, 60), ("JKT-1", 0.1, 10)],
}
SUBSTITUTES = {
    "JKT-1": ["JKT-2", "JKT-3", "JKT-4", "JKT-NEW"],
    "JKT-2": ["JKT-4", "JKT-1", "JKT-3", "JKT-NEW"],
    "JEANS-1": ["JEANS-2", "JEANS-3"],
    "TEE-1": ["TEE-2"],
}
CATEGORY_COMPLEMENTS = {"jackets": [("jeans", 0.9), ("shirts", 0.6), ("belts", 0.3)],
                        "jeans": [("shirts", 0.8), ("belts", 0.5), ("jackets", 0.4)],
                        "shirts": [("jeans", 0.8), ("jackets", 0.5)]}
USERS = {"alice": ["JKT-1", "JEANS-1", "SOCK-1"], "bob": ["TEE-1"]}
K = 4


def _factors() -> tuple[np.ndarray, np.ndarray]:
    """Three taste axes: (jackets+jeans, shirts, socks). Alice leans shirts > socks."""
    axis = {"jackets": 0, "jeans": 0, "belts": 0, "shirts": 1, "socks": 2}
    items = np.zeros((len(PRODUCTS), 3), np.float32)
    for i, (_, _, cat, _, _) in enumerate(PRODUCTS):
        items[i, axis[cat]] = 1.0 - 0.01 * i  # ties broken by catalog order
    users = np.array([[0.1, 1.0, 0.5], [1.0, 0.0, 0.0]], np.float32)
    return items, users


def catalog() -> pd.DataFrame:
    rows = []
    for pid, title, cat, price, sizes in PRODUCTS:
        for size in sizes:
            rows.append({"item_id": f"{pid}-{size}", "product_id": pid, "category": cat, "title": title,
                         "brand": "Acme", "price": price, "size": size})
    return pd.DataFrame(rows)


def arrays() -> dict[str, np.ndarray]:
    n = len(PRODUCTS)
    cidx = np.full((n, K), -1, np.int32)
    cscore = np.zeros((n, K), np.float32)
    csup = np.zeros((n, K), np.int32)
    for a, row in COMPLEMENTS.items():
        for j, (b, score, support) in enumerate(row):
            cidx[P[a], j], cscore[P[a], j], csup[P[a], j] = P[b], score, support
    sidx = np.full((n, K), -1, np.int32)
    sscore = np.zeros((n, K), np.float32)
    for a, row in SUBSTITUTES.items():
        for j, b in enumerate(row):
            sidx[P[a], j], sscore[P[a], j] = P[b], 1.0 - 0.1 * j
    C = {c: i for i, c in enumerate(CATEGORIES)}
    ccidx = np.full((len(CATEGORIES), 3), -1, np.int32)
    ccscore = np.zeros((len(CATEGORIES), 3), np.float32)
    for a, row in CATEGORY_COMPLEMENTS.items():
        for j, (b, score) in enumerate(row):
            ccidx[C[a], j], ccscore[C[a], j] = C[b], score
    items, users = _factors()
    indptr = np.zeros(len(USERS) + 1, np.int64)
    indices: list[int] = []
    for u, (_, bought) in enumerate(USERS.items()):
        indices += sorted(P[b] for b in bought)
        indptr[u + 1] = len(indices)
    pop = np.array([POPULARITY[pid] for pid in IDS], np.float32)
    return {
        "product_ids": np.array(IDS), "product_category": np.array([C[p[2]] for p in PRODUCTS], np.int32),
        "category_names": np.array(CATEGORIES), "popularity": pop, "popularity_count": pop.astype(np.int32),
        "complements_idx": cidx, "complements_score": cscore, "complements_support": csup,
        "category_complements_idx": ccidx, "category_complements_score": ccscore,
        "substitutes_idx": sidx, "substitutes_score": sscore,
        "item_factors": items, "user_factors": users, "user_ids": np.array(list(USERS)),
        "user_items_indptr": indptr, "user_items_indices": np.array(indices, np.int32),
    }


def write_apparel(model_dir: str | Path, *, version: str | None = None, make_current: bool = True,
                  changes: dict[str, np.ndarray] | None = None) -> Path:
    """Write the shop's bundle under `model_dir`; `changes` replaces arrays (to test reloads)."""
    a = arrays()
    a.update(changes or {})
    return write_bundle(model_dir, a, {"catalog": catalog()}, {"fingerprint": "apparel", "params": {}},
                        make_current=make_current, version=version)


def corrupt(bundle_dir: Path, name: str = "complements_idx.npy") -> None:
    """Flip bytes in one array file, keeping its size: only the checksum can tell."""
    path = bundle_dir / name
    data = bytearray(path.read_bytes())
    data[-4:] = bytes(b ^ 0xFF for b in data[-4:])
    path.write_bytes(bytes(data))
