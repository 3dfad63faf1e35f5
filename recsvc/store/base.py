"""The state store interface: what the service keeps between requests and restarts.

Everything the service must not forget — stock levels, catalog price overrides,
promotions — goes through `Store`. Two implementations share one SQL core
(`recsvc.store.sql`): SQLite (default, one file, several processes may write) and
PostgreSQL (several replicas). `recsvc.store.open_store(url)` picks one by URL.

Failure contract: when the database cannot be reached, or stays locked, a call is
retried a few times with backoff (`RetryPolicy`) and then raises `StoreUnavailable`.
A write that raises was not acknowledged; callers report the error (gRPC
UNAVAILABLE) instead of pretending it happened.
"""
from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, NamedTuple, TypeVar

if TYPE_CHECKING:
    from recsvc.events import ArmItemStats, Event, IngestResult
    from recsvc.experiments import Experiment, Exposure
    from recsvc.promotions import Promotion

T = TypeVar("T")


class StockUpdate(NamedTuple):
    """Units on hand for one variant; `quantity <= 0` means out of stock.

    A tuple, not a dataclass, so that a store may hand back plain `(item_id, quantity)`
    tuples, which compare equal: a new model's inventory reads every stored level (60k
    in the benchmark), and as many dataclass objects (or tuple subclasses) set off
    gen-2 collections of ~18 ms in the worker while requests waited, where the cyclic
    GC stops tracking plain tuples of str and int at their first collection."""

    item_id: str
    quantity: int


@dataclass(frozen=True)
class PriceUpdate:
    item_id: str
    price: float


def to_us(t: datetime) -> int:
    """Stored time: integer microseconds since the epoch, UTC."""
    if t.tzinfo is None:
        raise ValueError(f"expected a timezone-aware datetime, got {t!r}")
    return round(t.timestamp() * 1_000_000)


def now_us() -> int:
    return to_us(datetime.now(timezone.utc))


class StoreUnavailable(Exception):
    """The database is down or unreachable; the operation did not happen."""


@dataclass(frozen=True)
class RetryPolicy:
    """How long a brief outage (restart, failover, a held lock) is ridden out.

    Defaults: 4 attempts, waiting 0.05 s, 0.2 s, 0.8 s in between (about 1 s in all,
    short enough to answer within a chatbot's deadline with UNAVAILABLE).
    """

    attempts: int = 4
    first_delay_s: float = 0.05
    factor: float = 4.0

    def call(self, fn: Callable[[], T], transient: Callable[[BaseException], bool],
             what: str) -> T:
        """Run `fn`; retry it on transient errors; raise StoreUnavailable when they persist."""
        delay = self.first_delay_s
        for attempt in range(1, self.attempts + 1):
            try:
                return fn()
            except Exception as e:  # noqa: BLE001 — classified right below
                if not transient(e):
                    raise
                if attempt == self.attempts:
                    raise StoreUnavailable(
                        f"{what} failed after {attempt} attempts: {type(e).__name__}: {e}".strip()
                    ) from e
            time.sleep(delay)
            delay *= self.factor
        raise AssertionError("unreachable")


class Store(ABC):
    """One interface over SQLite and PostgreSQL; methods are thread-safe.

    Stock changes carry a sequence number: each `upsert_stock` batch gets the next
    one, and `stock_changes_since(seq)` returns everything written after `seq`, so
    replicas sharing a database poll for news with one indexed query.
    """

    url: str  # as given, with any password masked; for logs

    # --- stock ------------------------------------------------------------------------
    @abstractmethod
    def upsert_stock(self, updates: Sequence[StockUpdate]) -> int:
        """Store the batch atomically (last entry wins for a repeated id); return its seq."""

    @abstractmethod
    def all_stock(self) -> dict[str, int]:
        """Every stock record. Items never updated have no record (and count as in stock)."""

    @abstractmethod
    def stock_changes_since(self, seq: int) -> tuple[int, list[StockUpdate]]:
        """(latest seq, current value of each record changed after `seq`), each a
        StockUpdate or a plain (item_id, quantity) tuple."""

    # --- prices -----------------------------------------------------------------------
    @abstractmethod
    def upsert_prices(self, updates: Sequence[PriceUpdate]) -> None: ...

    @abstractmethod
    def all_prices(self) -> dict[str, float]: ...

    # --- promotions -------------------------------------------------------------------
    @abstractmethod
    def create_promotion(self, p: "Promotion") -> "Promotion":
        """Store `p`; an empty `id` is replaced by a new unique one. Duplicate id -> ValueError."""

    @abstractmethod
    def list_promotions(self) -> list["Promotion"]:
        """All promotions, oldest first (expired ones too, until deleted)."""

    @abstractmethod
    def delete_promotion(self, promo_id: str) -> bool:
        """True when a promotion was deleted, False when there was none with this id."""

    # --- experiments (A/B slots) ------------------------------------------------------
    @abstractmethod
    def create_experiment(self, e: Experiment, check: Callable[[list[Experiment]], None] | None = None
                          ) -> tuple[Experiment, list[Experiment]]:
        """Store `e`; an empty `id` gets a new unique one. `check(existing)` runs inside the
        same write transaction, under a lock every replica's create takes, so two replicas
        cannot both pass it with experiments that conflict (it raises to refuse). Returns
        the stored experiment and the ones that existed before it."""

    @abstractmethod
    def list_experiments(self) -> list["Experiment"]:
        """All experiments, oldest first."""

    @abstractmethod
    def set_experiment_status(self, experiment_id: str, status: str) -> bool:
        """False when there is no experiment with this id."""

    @abstractmethod
    def record_exposures(self, exposures: Sequence["Exposure"]) -> None:
        """Store exposures (idempotent on exposure_id)."""

    @abstractmethod
    def ingest_events(self, events: Sequence["Event"]) -> "IngestResult":
        """Resolve each (well-formed) event to its exposure and store it once per event id;
        events without a known exposure are rejected and kept in the rejected list.
        Committed before returning."""

    @abstractmethod
    def experiment_stats(self, experiment_id: str) -> list["ArmItemStats"]:
        """Per (item, arm): exposures, and exposures with at least one event of each kind."""

    @abstractmethod
    def event_counts(self, experiment_id: str) -> dict[str, int]:
        """Stored events of the experiment by kind (each event once)."""

    @abstractmethod
    def rejected_event_count(self) -> int:
        """Events rejected for an unknown exposure, each event id once."""

    # --- lifecycle --------------------------------------------------------------------
    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
