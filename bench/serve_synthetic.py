"""A random shop the size of a large one, as a model bundle, for the serving benchmark.

100k products in 200 categories, 1-5 sizes each (~300k variants), top-50 complement and
substitute rows, 64 ALS factors, 100k customers. Structure, not quality, matters here:
rows have the shapes and index ranges training writes, substitutes share a category,
so every filter on the request path does real work.
"""
from __future__ import annotations

import json
import os
import shutil
import uuid
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from training.bundle import MANIFEST, VERSIONS, list_versions, new_version_id, write_bundle

SIZES = np.array(["XS", "S", "M", "L", "XL"])


def synthetic_arrays(n_products: int = 100_000, n_categories: int = 200, n_users: int = 100_000, k: int = 50,
                     factors: int = 64, seed: int = 7) -> tuple[dict[str, np.ndarray], pd.DataFrame]:
    rng = np.random.default_rng(seed)  # the model: differs between versions
    shop = np.random.default_rng(1000)  # the catalog: the same in every version, as after a retrain
    P, C, U = n_products, n_categories, n_users
    product_ids = np.array([f"P{p:06d}" for p in range(P)])
    category = shop.integers(0, C, P).astype(np.int32)
    popularity = rng.lognormal(2.0, 1.5, P).astype(np.float32)
    # complements: random products, best first, with decreasing support
    comp = rng.integers(0, P, (P, k)).astype(np.int32)
    comp_score = np.sort(rng.random((P, k), dtype=np.float32), axis=1)[:, ::-1].copy()
    comp_support = np.sort(rng.integers(1, 400, (P, k)), axis=1)[:, ::-1].astype(np.int32)
    comp[rng.random(P) < 0.05] = -1  # new products: no co-purchase history
    # substitutes: random products of the same category
    by_cat = np.argsort(category, kind="stable").astype(np.int32)
    starts = np.searchsorted(category[by_cat], np.arange(C))
    sizes = np.bincount(category, minlength=C)
    pick = (rng.random((P, k)) * sizes[category][:, None]).astype(np.int64)
    subs = by_cat[starts[category][:, None] + pick]
    sub_score = np.sort(rng.random((P, k), dtype=np.float32), axis=1)[:, ::-1].copy()
    cat_comp = np.stack([rng.permutation(C)[:10] for _ in range(C)]).astype(np.int32)
    item_f = rng.normal(0, 0.1, (P, factors)).astype(np.float32)
    user_f = rng.normal(0, 0.1, (U, factors)).astype(np.float32)
    n_bought = rng.integers(1, 10, U)
    indptr = np.concatenate([[0], np.cumsum(n_bought)]).astype(np.int64)
    indices = rng.integers(0, P, indptr[-1]).astype(np.int32)
    arrays = {
        "product_ids": product_ids, "product_category": category,
        "category_names": np.array([f"category-{c:03d}" for c in range(C)]),
        "popularity": popularity, "popularity_count": np.ceil(popularity).astype(np.int32),
        "complements_idx": comp, "complements_score": comp_score, "complements_support": comp_support,
        "category_complements_idx": cat_comp,
        # the shape of the index rows (shops of fewer than 10 categories have shorter ones)
        "category_complements_score": np.sort(rng.random(cat_comp.shape, dtype=np.float32), axis=1)[:, ::-1].copy(),
        "substitutes_idx": subs.astype(np.int32), "substitutes_score": sub_score,
        "item_factors": item_f, "user_factors": user_f, "user_ids": np.array([f"U{u:06d}" for u in range(U)]),
        "user_items_indptr": indptr, "user_items_indices": indices,
    }
    n_sizes = shop.integers(1, 6, P)
    owner = np.repeat(np.arange(P), n_sizes)
    size = SIZES[np.arange(len(owner)) - np.repeat(np.cumsum(n_sizes) - n_sizes, n_sizes)]
    price = np.round(shop.lognormal(3.5, 0.6, P), 2)
    catalog = pd.DataFrame({
        "item_id": np.char.add(np.char.add(product_ids[owner], "-"), size), "product_id": product_ids[owner],
        "category": arrays["category_names"][category[owner]], "title": np.char.add("Product ", product_ids[owner]),
        "brand": "Synth", "price": price[owner], "size": size,
    })
    return arrays, catalog


def write_synthetic(model_dir: str | Path, *, make_current: bool = True, **kw) -> Path:
    arrays, catalog = synthetic_arrays(**kw)
    return write_bundle(model_dir, arrays, {"catalog": catalog}, {"fingerprint": "synthetic", "params": kw},
                        make_current=make_current)


def retrained(model_dir: str | Path, source: str) -> str:
    """A new version holding `source`'s files (hard links) under a manifest of its own:
    to a server, a bundle it has never loaded, as after a retraining (a swap back to a
    version served before could reuse that version's model image)."""
    versions = Path(model_dir) / VERSIONS
    src = versions / source
    manifest = json.loads((src / MANIFEST).read_text())
    version = new_version_id(uuid.uuid4().hex)
    tmp = versions / f".tmp-{version}"
    tmp.mkdir()
    for f in src.iterdir():
        if f.name != MANIFEST:
            try:
                os.link(f, tmp / f.name)
            except OSError:  # no hard links here: a copy
                shutil.copy2(f, tmp / f.name)
    manifest.update(id=version, created=datetime.now(timezone.utc).isoformat(), copy_of=source)
    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2))
    os.rename(tmp, versions / version)
    return version


def remove_copies(model_dir: str | Path, keep: str | None = None) -> None:
    """Remove the versions `retrained` made, except `keep`."""
    for name in list_versions(model_dir):
        path = Path(model_dir) / VERSIONS / name
        if name != keep and "copy_of" in json.loads((path / MANIFEST).read_text()):
            shutil.rmtree(path)
