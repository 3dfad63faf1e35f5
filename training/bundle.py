"""The model bundle: the only thing training and the service share.

Layout under a model directory::

    DIR/versions/<version>/manifest.json   id, created, fingerprint, params, metrics,
                                           data report, format version, checksums
    DIR/versions/<version>/<name>.npy      arrays (memory-mappable)
    DIR/versions/<version>/<name>.parquet  tables (the variant-level catalog)
    DIR/current -> versions/<version>      symlink, replaced atomically, updated last

A bundle is written into a hidden temporary directory and renamed into place, so a
reader never sees half a bundle; `current` moves only after the rename.

Arrays of format version 1 (product codes index `product_ids`; -1 pads top-K rows):

    product_ids (P,) str             category_names (C,) str
    product_category (P,) int32      popularity (P,) float32 recency-weighted orders
    popularity_count (P,) int32      orders containing the product (training window)
    complements_idx (P,K) int32      complements_score (P,K) float32
    complements_support (P,K) int32  orders in which both were bought
    category_complements_idx (C,Kc) int32   category_complements_score (C,Kc) float32
    substitutes_idx (P,K) int32      substitutes_score (P,K) float32
    item_factors (P,F) float32       user_factors (U,F) float32    user_ids (U,) str
    user_items_indptr (U+1,) int64   user_items_indices (N,) int32 products bought
Tables: catalog.parquet: item_id, product_id, category, title, brand, price, attrs...
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
CURRENT = "current"
VERSIONS = "versions"
REQUIRED_ARRAYS = (
    "product_ids", "product_category", "category_names", "popularity", "popularity_count",
    "complements_idx", "complements_score", "complements_support",
    "category_complements_idx", "category_complements_score",
    "substitutes_idx", "substitutes_score",
    "item_factors", "user_factors", "user_ids", "user_items_indptr", "user_items_indices",
)
REQUIRED_TABLES = ("catalog",)


class BundleError(Exception):
    """A bundle cannot be used; the message says what to do about it."""


@dataclass
class Bundle:
    path: Path
    manifest: dict[str, Any]
    arrays: dict[str, np.ndarray]
    tables: dict[str, pd.DataFrame]

    @property
    def version(self) -> str:
        return str(self.manifest["id"])


def _sha256(path: Path, pause: Callable[[], None] = lambda: None) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
            pause()
    return h.hexdigest()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def new_version_id(fingerprint: str = "") -> str:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    return f"{stamp}-{(fingerprint or uuid.uuid4().hex)[:8]}"


def write_bundle(
    model_dir: str | Path,
    arrays: dict[str, np.ndarray],
    tables: dict[str, pd.DataFrame],
    manifest: dict[str, Any],
    *,
    make_current: bool = True,
    version: str | None = None,
) -> Path:
    """Write a bundle atomically and (by default) point `current` at it.

    `manifest` holds the caller's fields (fingerprint, params, metrics, data_report...);
    id, created, format_version and checksums are added here.
    """
    missing = [n for n in REQUIRED_ARRAYS if n not in arrays] + [n for n in REQUIRED_TABLES if n not in tables]
    if missing:
        raise BundleError(f"refusing to write an incomplete bundle: missing {', '.join(missing)}")
    model_dir = Path(model_dir)
    versions = model_dir / VERSIONS
    versions.mkdir(parents=True, exist_ok=True)
    version = version or new_version_id(str(manifest.get("fingerprint", "")))
    final = versions / version
    if final.exists():
        raise BundleError(f"bundle version {version} already exists in {versions}")
    tmp = versions / f".tmp-{version}-{uuid.uuid4().hex[:6]}"
    tmp.mkdir()
    try:
        files: dict[str, str] = {}
        for name, arr in arrays.items():
            fname = f"{name}.npy"
            np.save(tmp / fname, np.ascontiguousarray(arr), allow_pickle=False)
            files[fname] = _sha256(tmp / fname)
        for name, df in tables.items():
            fname = f"{name}.parquet"
            df.to_parquet(tmp / fname, index=False)
            files[fname] = _sha256(tmp / fname)
        full = dict(manifest)
        full.update(
            id=version,
            created=datetime.now(timezone.utc).isoformat(),
            format_version=FORMAT_VERSION,
            files=files,
        )
        with open(tmp / MANIFEST, "w") as f:
            json.dump(full, f, indent=2, default=_json_default)
            f.flush()
            os.fsync(f.fileno())
        for fname in files:
            with open(tmp / fname, "rb") as f:
                os.fsync(f.fileno())
        _fsync_dir(tmp)
        os.rename(tmp, final)
        _fsync_dir(versions)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if make_current:
        set_current(model_dir, version)
    return final


def _json_default(o: Any) -> Any:
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, (datetime, pd.Timestamp)):
        return o.isoformat()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def set_current(model_dir: str | Path, version: str) -> None:
    """Atomically point DIR/current at versions/<version>."""
    model_dir = Path(model_dir)
    target = model_dir / VERSIONS / version
    if not (target / MANIFEST).is_file():
        raise BundleError(f"no bundle {version!r} in {model_dir / VERSIONS}; "
                          f"`recsvc-train list --model-dir {model_dir}` shows the versions")
    link_tmp = model_dir / f".current-{uuid.uuid4().hex[:8]}"
    os.symlink(Path(VERSIONS) / version, link_tmp)
    os.replace(link_tmp, model_dir / CURRENT)
    _fsync_dir(model_dir)


def current_version(model_dir: str | Path) -> str | None:
    link = Path(model_dir) / CURRENT
    if not link.is_symlink():
        return None
    return Path(os.readlink(link)).name


def resolve(path: str | Path) -> Path:
    """A model dir (follows `current`) or a bundle dir, to a concrete bundle dir."""
    path = Path(path)
    if (path / MANIFEST).is_file():
        return path.resolve()
    cur = path / CURRENT
    if cur.is_symlink() or cur.exists():
        if not (cur / MANIFEST).is_file():
            raise BundleError(f"{cur} points to {os.readlink(cur) if cur.is_symlink() else cur}, "
                              "which holds no manifest.json; promote a good version with "
                              f"`recsvc-train promote VERSION --model-dir {path}`")
        return cur.resolve()
    raise BundleError(f"no model bundle at {path}: expected {path / CURRENT} or {path / MANIFEST}; "
                      f"train one with `recsvc-train --model-dir {path} ...`")


def list_versions(model_dir: str | Path) -> list[str]:
    versions = Path(model_dir) / VERSIONS
    if not versions.is_dir():
        return []
    return sorted(p.name for p in versions.iterdir() if not p.name.startswith(".") and (p / MANIFEST).is_file())


def read_manifest(path: str | Path) -> dict[str, Any]:
    bundle_dir = resolve(path)
    try:
        with open(bundle_dir / MANIFEST) as f:
            return json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise BundleError(f"unreadable manifest in {bundle_dir}: {e}; retrain or promote another version") from e


def load_bundle(path: str | Path, *, verify: bool = True, mmap: bool = True,
                pause: Callable[[], None] = lambda: None) -> Bundle:
    """Load a bundle, refusing unknown formats and (with `verify`) checksum mismatches.

    `pause()` is called between files and checksum slices (a server loading while it
    answers requests hands the GIL over there)."""
    bundle_dir = resolve(path)
    manifest = read_manifest(bundle_dir)
    fmt = manifest.get("format_version")
    if fmt != FORMAT_VERSION:
        raise BundleError(f"bundle {bundle_dir} has format version {fmt!r}, this code reads "
                          f"version {FORMAT_VERSION}; retrain with this version of recsvc-train "
                          "or upgrade recsvc")
    files: dict[str, str] = manifest.get("files", {})
    for name in REQUIRED_ARRAYS:
        if f"{name}.npy" not in files:
            raise BundleError(f"bundle {bundle_dir} lacks {name}.npy; retrain it")
    arrays: dict[str, np.ndarray] = {}
    tables: dict[str, pd.DataFrame] = {}
    for fname, digest in files.items():
        fpath = bundle_dir / fname
        if not fpath.is_file():
            raise BundleError(f"bundle {bundle_dir} is missing {fname}; retrain or promote another version")
        if verify and _sha256(fpath, pause) != digest:
            raise BundleError(f"checksum mismatch for {fpath}: the file is corrupt; retrain or "
                              "promote another version (`recsvc-train rollback`)")
        try:
            if fname.endswith(".npy"):
                arrays[fname[:-4]] = np.load(fpath, mmap_mode="r" if mmap else None, allow_pickle=False)
            elif fname.endswith(".parquet"):
                tables[fname[:-8]] = pd.read_parquet(fpath)
        except Exception as e:  # numpy/pyarrow raise many types for damaged files
            raise BundleError(f"cannot read {fpath}: {e}; retrain or promote another version") from e
        pause()
    return Bundle(path=bundle_dir, manifest=manifest, arrays=arrays, tables=tables)
