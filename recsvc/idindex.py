"""String id -> position, over numpy arrays instead of a dict.

A dict of 300k variant ids is 300k Python strings plus a hash table: ~100 ms of
GIL-holding work to build while the server answers requests during a hot reload,
objects the cyclic GC keeps walking, and a stall when the old model is freed. A sorted
fixed-width unicode array answers a lookup by binary search in ~1.5 us and is built
by numpy with the GIL mostly released.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import numpy as np

from recsvc.pacing import pause

_CHUNK = 5_000  # batch lookups in slices (~1-2 ms each), handing the GIL over in between


class IdIndex(Mapping[str, int]):
    def __init__(self, ids: np.ndarray) -> None:
        self.ids = np.asarray(ids, dtype=str)
        self._order = np.argsort(self.ids, kind="stable")
        self._sorted = self.ids[self._order]
        self._width = self._sorted.dtype.itemsize // 4  # characters of the widest id (UCS-4)
        # the compiled kernel's hash table over _sorted (recsvc.fast.id_slots), when a model
        # image brings one; else the kernel builds its own
        self.hash_slots: np.ndarray | None = None

    @classmethod
    def from_sorted(cls, ids: np.ndarray, order: np.ndarray, sorted_ids: np.ndarray,
                    hash_slots: np.ndarray | None = None) -> "IdIndex":
        """An index whose sort was done before (a model image): `sorted_ids = ids[order]`."""
        index = cls.__new__(cls)
        index.ids, index._order, index._sorted = ids, order, sorted_ids
        index._width = sorted_ids.dtype.itemsize // 4
        index.hash_slots = hash_slots
        return index

    def get(self, key: str, default: int | None = None) -> int | None:  # type: ignore[override]
        if len(key) > self._width:  # longer than every id; and searching with a wider key
            return default         # would make numpy cast the whole array (~100 us)
        i = int(np.searchsorted(self._sorted, np.array(key, dtype=self._sorted.dtype)))
        if i < len(self._sorted) and self._sorted[i] == key:
            return int(self._order[i])
        return default

    def __getitem__(self, key: str) -> int:
        i = self.get(key)
        if i is None:
            raise KeyError(key)
        return i

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.get(key) is not None

    def __len__(self) -> int:
        return len(self.ids)

    def __iter__(self) -> Iterator[str]:
        return iter(self.ids.tolist())

    def codes(self, keys: Sequence[str] | np.ndarray) -> np.ndarray:
        """Positions of many keys at once, -1 where unknown."""
        keys = np.asarray(keys, dtype=str)
        out = np.full(len(keys), -1, np.int64)
        if not len(self._sorted) or not len(keys):
            return out
        for lo in range(0, len(keys), _CHUNK):
            part = keys[lo:lo + _CHUNK]
            fits = np.char.str_len(part) <= self._width  # longer keys cannot match (nor be truncated into one)
            same = part.astype(self._sorted.dtype)  # search in the array's own width: no cast of the array
            pos = np.minimum(np.searchsorted(self._sorted, same), len(self._sorted) - 1)
            hit = fits & (self._sorted[pos] == same)
            out[lo:lo + _CHUNK][hit] = self._order[pos[hit]]
            if lo + _CHUNK < len(keys):  # only between slices: a short list returns at once
                pause()
        return out

    def has_duplicates(self) -> bool:
        return bool(len(self._sorted) > 1 and (self._sorted[1:] == self._sorted[:-1]).any())
