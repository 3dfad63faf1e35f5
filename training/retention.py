"""Which bundles to keep: the last N usable ones, a few rejected ones, and always `current`.

Rejected bundles are counted apart so that a run of bad nights cannot push every good
version (the rollback targets) out of the window. Leftovers of killed runs (hidden
`.tmp-*` bundle directories, `.current-*` links) are removed once they are old enough
that no live writer can own them.
"""
from __future__ import annotations

import logging
import os
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from training.bundle import CURRENT, VERSIONS, current_version, list_versions
from training.gate import read_verdict

log = logging.getLogger("recsvc.retrain")
STALE_AFTER_S = 6 * 3600  # far longer than any training run's write stage


@dataclass
class Pruned:
    removed: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    leftovers: list[str] = field(default_factory=list)


def prune(model_dir: str | Path, keep_last: int, keep_rejected: int = 2) -> Pruned:
    """Delete all but the newest `keep_last` non-rejected and `keep_rejected` rejected
    versions; the current version is never deleted (it counts as one of the N when it
    is among the newest)."""
    if keep_last < 1:
        raise ValueError(f"keep_last must be at least 1, got {keep_last}")
    model_dir = Path(model_dir)
    versions = list_versions(model_dir)  # oldest first: ids start with a UTC timestamp
    cur = current_version(model_dir)
    rejected = [v for v in versions if v != cur and read_verdict(model_dir / VERSIONS / v) == "rejected"]
    usable = [v for v in versions if v not in rejected]
    keep = set(usable[-keep_last:]) | set(rejected[-keep_rejected:] if keep_rejected > 0 else [])
    if cur is not None:
        keep.add(cur)  # e.g. after a rollback to a version older than the last N
    result = Pruned(kept=[v for v in versions if v in keep])
    for v in versions:
        if v not in keep and current_version(model_dir) != v:  # re-read: a promote may have raced us
            _remove(model_dir / VERSIONS / v)
            result.removed.append(v)
    return result


def remove_leftovers(model_dir: str | Path, older_than_s: float = STALE_AFTER_S) -> list[str]:
    """Hidden half-written bundles and link temporaries of killed runs, once stale."""
    model_dir = Path(model_dir)
    now = time.time()
    candidates = [*(model_dir / VERSIONS).glob(".tmp-*"), *(model_dir / VERSIONS).glob(".deleting-*"),
                  *model_dir.glob(f".{CURRENT}-*")]
    removed = []
    for path in candidates:
        try:
            if now - path.lstat().st_mtime < older_than_s:
                continue
            if path.is_symlink() or path.is_file():
                path.unlink()
            else:
                shutil.rmtree(path)
            removed.append(path.name)
        except FileNotFoundError:
            continue
    return removed


def _remove(bundle_dir: Path) -> None:
    # Rename first: the version leaves `list` at once, even if deleting its files is slow or fails.
    trash = bundle_dir.with_name(f".deleting-{bundle_dir.name}-{uuid.uuid4().hex[:6]}")
    os.rename(bundle_dir, trash)
    shutil.rmtree(trash, ignore_errors=True)
    log.info("retention: removed bundle %s", bundle_dir.name)
