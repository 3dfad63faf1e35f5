"""Work that shares a worker's GIL with request threads (loading a new bundle): a
budget, not only windows.

The code that loads a bundle calls `pause()` between its slices. Alone, that hands the
GIL over for a moment; inside `paced(share)` it sleeps long enough that the loading
thread's own CPU time stays at most `share` of the time. Without a budget a load took
most of the worker's GIL for a second, and at half of the sustainable rate the
requests it delayed overflowed the admission limit (RESOURCE_EXHAUSTED during swaps).
The loader's CPU time counts, not its wall time: time it spends waiting for the GIL
already went to requests, and counting it too made a swap on a busy worker take over
twice as long (8 s instead of under 5).
"""
from __future__ import annotations

import contextvars
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

_WINDOW_S = 0.001  # the shortest hand-over: long enough for a waiting thread to take the GIL


@dataclass
class _Budget:
    share: float  # 0: alone (`alone()`), no hand-over at all
    since: float = field(default_factory=time.thread_time)


_BUDGET: contextvars.ContextVar[_Budget | None] = contextvars.ContextVar("recsvc_pacing", default=None)


def pause() -> None:
    """Between two slices of background work: hand the GIL over (and keep to the budget)."""
    budget = _BUDGET.get()
    if budget is None:
        time.sleep(_WINDOW_S)
        return
    if budget.share == 0.0:
        return
    worked = time.thread_time() - budget.since
    time.sleep(max(_WINDOW_S, worked * (1.0 / budget.share - 1.0)))
    budget.since = time.thread_time()


@contextmanager
def paced(share: float) -> Iterator[None]:
    """Within this block (this thread), `pause()` keeps the work to `share` of the time."""
    if not 0.0 < share <= 1.0:
        raise ValueError(f"share must be in (0, 1], not {share}")
    token = _BUDGET.set(_Budget(share) if share < 1.0 else None)
    try:
        yield
    finally:
        _BUDGET.reset(token)


@contextmanager
def alone() -> Iterator[None]:
    """Within this block (this thread), `pause()` returns at once: for a process of its
    own that serves no requests (the model image's preparation), where the windows would
    only add a millisecond each (~0.6 s over a 100k-product load)."""
    token = _BUDGET.set(_Budget(0.0))
    try:
        yield
    finally:
        _BUDGET.reset(token)
