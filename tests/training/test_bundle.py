"""The bundle format: atomic publication, `current` pointer, refusal of bad bundles."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from training import bundle as b


def tiny_arrays(n_products: int = 3) -> dict[str, np.ndarray]:
    p, k = n_products, 2
    return {
        "product_ids": np.array([f"p{i}" for i in range(p)]),
        "product_category": np.zeros(p, np.int32),
        "category_names": np.array(["all"]),
        "popularity": np.ones(p, np.float32),
        "popularity_count": np.ones(p, np.int32),
        "complements_idx": np.full((p, k), -1, np.int32),
        "complements_score": np.zeros((p, k), np.float32),
        "complements_support": np.zeros((p, k), np.int32),
        "category_complements_idx": np.full((1, k), -1, np.int32),
        "category_complements_score": np.zeros((1, k), np.float32),
        "substitutes_idx": np.full((p, k), -1, np.int32),
        "substitutes_score": np.zeros((p, k), np.float32),
        "item_factors": np.zeros((p, 4), np.float32),
        "user_factors": np.zeros((1, 4), np.float32),
        "user_ids": np.array(["u0"]),
        "user_items_indptr": np.array([0, 1], np.int64),
        "user_items_indices": np.array([0], np.int32),
    }


def tiny_tables() -> dict[str, pd.DataFrame]:
    return {"catalog": pd.DataFrame({"item_id": ["p0", "p1", "p2"], "product_id": ["p0", "p1", "p2"],
                                     "category": ["all"] * 3})}


def publish(model_dir: Path, **kw) -> Path:
    return b.write_bundle(model_dir, tiny_arrays(), tiny_tables(), {"fingerprint": "abc"}, **kw)


def test_written_bundle_loads_with_manifest_and_becomes_current(tmp_path):
    path = publish(tmp_path)
    assert b.current_version(tmp_path) == path.name
    loaded = b.load_bundle(tmp_path)
    assert loaded.version == path.name
    assert loaded.manifest["format_version"] == b.FORMAT_VERSION
    assert set(loaded.manifest["files"]) >= {"product_ids.npy", "catalog.parquet"}
    assert list(loaded.arrays["product_ids"]) == ["p0", "p1", "p2"]
    assert isinstance(loaded.arrays["item_factors"], np.memmap)


def test_current_moves_only_when_asked_and_can_be_promoted_back(tmp_path):
    first = publish(tmp_path)
    second = publish(tmp_path, make_current=False)
    assert b.current_version(tmp_path) == first.name
    b.set_current(tmp_path, second.name)
    assert b.load_bundle(tmp_path).version == second.name
    assert b.list_versions(tmp_path) == sorted([first.name, second.name])


def test_failed_write_leaves_no_partial_bundle_and_keeps_current(tmp_path):
    good = publish(tmp_path)
    arrays = tiny_arrays()
    arrays["item_factors"] = np.array([object()], dtype=object)  # np.save refuses pickles
    with pytest.raises(ValueError):
        b.write_bundle(tmp_path, arrays, tiny_tables(), {})
    assert b.list_versions(tmp_path) == [good.name]
    assert [p.name for p in (tmp_path / "versions").iterdir()] == [good.name]  # temp dir removed
    assert b.current_version(tmp_path) == good.name


def test_incomplete_bundle_is_refused_at_write(tmp_path):
    arrays = tiny_arrays()
    del arrays["substitutes_idx"]
    with pytest.raises(b.BundleError, match="substitutes_idx"):
        b.write_bundle(tmp_path, arrays, tiny_tables(), {})


def test_checksum_mismatch_is_refused_with_what_to_do(tmp_path):
    path = publish(tmp_path)
    with open(path / "complements_idx.npy", "r+b") as f:
        f.seek(-4, os.SEEK_END)
        f.write(b"\x07\x07\x07\x07")
    with pytest.raises(b.BundleError, match=r"checksum mismatch .*complements_idx.*rollback"):
        b.load_bundle(tmp_path)


def test_unknown_format_version_is_refused(tmp_path):
    path = publish(tmp_path)
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["format_version"] = 99
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(b.BundleError, match="format version 99"):
        b.load_bundle(tmp_path)


def test_truncated_manifest_and_missing_dir_say_what_to_do(tmp_path):
    path = publish(tmp_path)
    (path / "manifest.json").write_text("{not json")
    with pytest.raises(b.BundleError, match="unreadable manifest"):
        b.load_bundle(tmp_path)
    with pytest.raises(b.BundleError, match="recsvc-train"):
        b.load_bundle(tmp_path / "nowhere")


def test_promoting_an_unknown_version_is_refused(tmp_path):
    publish(tmp_path)
    with pytest.raises(b.BundleError, match="no bundle 'nope'"):
        b.set_current(tmp_path, "nope")
