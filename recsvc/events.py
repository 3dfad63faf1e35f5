"""What customers did with test-slot items: exposures out, events in.

Exposures are decided on the request path, which must not wait for a disk:
`ExposureLog.record()` only appends to memory, and a background thread writes the
pending ones to the store every `interval_s` (0.2 s by default). A crash loses at
most that interval's exposures; events for them are then rejected as unknown, and
counted. Ingesting events first flushes this process's pending exposures, so an
event can never overtake its own exposure within one replica.

Events (`EventIngestor.ingest`) arrive in batches from the chatbot:

- each names its exposure (`exposure_id`), or the customer (`user_id`, else
  `session_id`) and `item_id`, which resolve to that customer's latest exposure of
  the item;
- they are idempotent on `event_id`: a retried batch is stored once, and the
  result says how many were duplicates;
- an event whose exposure is unknown is rejected, stored in the rejected list (also
  once per event id) and reported back; malformed events are reported back too;
- the batch is committed durably before `ingest` returns.
"""
from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from recsvc.experiments import Exposure
    from recsvc.store.base import Store

EVENT_KINDS = ("impression", "click", "add_to_cart", "purchase")
MAX_ID_LEN = 200


@dataclass(frozen=True)
class Event:
    event_id: str
    kind: str  # one of EVENT_KINDS
    at: datetime  # when it happened, timezone-aware
    exposure_id: str | None = None
    user_id: str | None = None
    session_id: str | None = None
    item_id: str | None = None


@dataclass(frozen=True)
class Rejected:
    event_id: str
    reason: str


@dataclass
class IngestResult:
    accepted: int = 0  # stored now
    duplicates: int = 0  # already stored by an earlier (retried) batch
    rejected: list[Rejected] = field(default_factory=list)

    def merge(self, other: "IngestResult") -> "IngestResult":
        return IngestResult(self.accepted + other.accepted, self.duplicates + other.duplicates,
                            self.rejected + other.rejected)


@dataclass(frozen=True)
class ArmItemStats:
    """Counts for one (item, arm) of an experiment. Event counts are exposures that
    had at least one event of the kind, so every rate is a proportion of exposures."""

    item_id: str
    arm: str
    exposures: int
    impressions: int = 0
    clicks: int = 0
    add_to_carts: int = 0
    purchases: int = 0

    def converted(self, metric: str) -> int:
        return {"impression": self.impressions, "click": self.clicks,
                "add_to_cart": self.add_to_carts, "purchase": self.purchases}[metric]


def event_problem(e: Event) -> str | None:
    """Why `e` cannot be stored as given, or None."""
    if not e.event_id or len(e.event_id) > MAX_ID_LEN:
        return f"event_id: required, at most {MAX_ID_LEN} characters"
    if e.kind not in EVENT_KINDS:
        return f"kind: one of {', '.join(EVENT_KINDS)}, got {e.kind!r}"
    if not isinstance(e.at, datetime) or e.at.tzinfo is None:
        return "at: a timezone-aware time is required"
    if not e.exposure_id and not ((e.user_id or e.session_id) and e.item_id):
        return "exposure_id, or user_id/session_id and item_id, is required"
    return None


class ExposureLog:
    """Exposures buffered in memory, written to the store in batches in the background."""

    def __init__(self, store: "Store", interval_s: float = 0.2,
                 max_pending: int = 200_000) -> None:
        self._store = store
        self._interval_s = interval_s
        self._max_pending = max_pending
        self._pending: list[Exposure] = []
        self._lock = threading.Lock()  # guards _pending
        self._flush_lock = threading.Lock()  # one writer at a time keeps the order
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.dropped = 0  # exposures given up after the store stayed down too long

    def record(self, exposure: "Exposure") -> None:
        with self._lock:
            self._pending.append(exposure)

    def flush(self) -> int:
        """Write what is pending now; return how many. StoreUnavailable keeps them pending."""
        with self._flush_lock:
            with self._lock:
                batch, self._pending = self._pending, []
            if not batch:
                return 0
            try:
                self._store.record_exposures(batch)
            except BaseException:
                with self._lock:
                    self._pending = batch + self._pending
                    excess = len(self._pending) - self._max_pending
                    if excess > 0:  # keep the newest: their events are still to come
                        del self._pending[:excess]
                        self.dropped += excess
                raise
            return len(batch)

    def start(self) -> "ExposureLog":
        self._thread = threading.Thread(target=self._run, name="exposure-log", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            try:
                self.flush()
            except Exception:  # noqa: BLE001 — store down: keep them, try again next tick
                pass

    def close(self) -> None:
        """Stop the thread and write what is left (raises if the store is down)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.flush()


class EventIngestor:
    def __init__(self, store: "Store", exposures: ExposureLog | None = None,
                 max_batch: int = 10_000) -> None:
        self._store = store
        self._exposures = exposures
        self._max_batch = max_batch

    def ingest(self, events: Sequence[Event]) -> IngestResult:
        """Store a batch durably; ValueError for an oversized batch, StoreUnavailable when down."""
        if len(events) > self._max_batch:
            raise ValueError(f"events: at most {self._max_batch} per batch, got {len(events)}; "
                             "split the batch")
        valid: list[Event] = []
        malformed: list[Rejected] = []
        for e in events:
            problem = event_problem(e)
            if problem:
                malformed.append(Rejected(e.event_id, problem))
            else:
                valid.append(e)
        if self._exposures is not None:
            self._exposures.flush()
        result = self._store.ingest_events(valid) if valid else IngestResult()
        return IngestResult(result.accepted, result.duplicates, malformed + result.rejected)
