"""A/B slots in the running service: the experiments of one process, bound to its model.

`ExperimentRuntime` owns the `ExperimentBook`, the `ExposureLog` (background writes of
exposures) and the `EventIngestor`. It keeps, per RPC, the running experiments bound
to the served catalog (`LiveExperiment`s) as one tuple replaced whole, so a request
reads it once without a lock and never touches the database:

- after each model swap (`bind`), and after an admin change, everything is re-bound;
- every `refresh_s` a background thread pulls changes made by other replicas or
  processes (`book.refresh()`) and recomputes the traffic split from the stored
  counts (Thompson sampling, `recsvc.allocation`).

The admin actions (create, list, status, report, export) are plain Python here; the
server converts messages. No gRPC in this module.
"""
from __future__ import annotations

import io
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import numpy as np
import yaml

from recsvc.allocation import allocation_for
from recsvc.answers import BadRequest
from recsvc.events import Event, EventIngestor, ExposureLog, IngestResult
from recsvc.experiments import RPCS, Experiment, ExperimentBook, LiveExperiment, bind
from recsvc.model import Model
from recsvc.report import Report, build_report, write_csv
from recsvc.store import Store

log = logging.getLogger("recsvc.experiments")


class UnknownExperiment(LookupError):
    def __init__(self, experiment_id: str) -> None:
        self.experiment_id = experiment_id
        super().__init__(f"id: no experiment {experiment_id!r} (`recsvc experiments list` shows them)")


@dataclass(frozen=True)
class Bound:
    """The experiments a request may place, bound to one model's catalog."""

    model: Model | None
    by_rpc: Mapping[str, tuple[LiveExperiment, ...]]


_NOTHING = Bound(None, {rpc: () for rpc in RPCS})
STATUS_ACTIONS = {"pause": "paused", "resume": "active", "stop": "stopped"}


class ExperimentRuntime:
    def __init__(self, store: Store, refresh_s: float = 5.0, flush_s: float = 0.2, seed: int | None = None) -> None:
        self.book = ExperimentBook(store)
        self.exposures = ExposureLog(store, interval_s=flush_s)
        self.ingestor = EventIngestor(store, self.exposures)
        self._store = store
        self._refresh_s = refresh_s
        self._rng = np.random.default_rng(seed)
        self._bound: Bound = _NOTHING
        self._model: Model | None = None
        self._weights: dict[str, tuple[float, ...]] = {}  # experiment id -> last split
        self._lock = threading.Lock()  # orders re-binds (model swap, admin, refresh thread)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- request path ---------------------------------------------------------------
    def bound(self) -> Bound:
        return self._bound

    def record(self, exposure) -> None:
        self.exposures.record(exposure)

    # --- binding ----------------------------------------------------------------------
    def bind(self, model: Model) -> None:
        """Bind every experiment to a newly served model (a Runtime swap callback)."""
        with self._lock:
            self._model = model
            self._rebind()

    def _rebind(self) -> None:
        m = self._model
        if m is None:
            self._bound = _NOTHING
            return
        live = [bind(e, m.product_ids, m.product_index, m.product_category, self._weights.get(e.id))
                for e in self.book.list() if e.status != "stopped"]
        self._bound = Bound(m, {rpc: tuple(x for x in live if rpc in x.experiment.rpcs) for rpc in RPCS})

    def refresh(self) -> None:
        """Pull definitions written elsewhere; recompute Thompson splits from stored counts."""
        self.book.refresh()
        now = datetime.now(timezone.utc)
        weights = {}
        for e in self.book.list():
            if e.running_at(now) and e.allocation != "even":
                weights[e.id] = tuple(allocation_for(e, self._store.experiment_stats(e.id), self._rng).tolist())
        with self._lock:
            self._weights = weights
            self._rebind()

    # --- background -------------------------------------------------------------------
    def start(self) -> "ExperimentRuntime":
        self.exposures.start()
        self._thread = threading.Thread(target=self._loop, name="experiments-refresh", daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.wait(self._refresh_s):
            try:
                self.refresh()
            except Exception:  # a store outage must not end the thread; next tick retries
                log.exception("refreshing experiments failed; retrying")

    def close(self) -> None:
        """Stop refreshing and write the pending exposures (before the store closes)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        try:
            self.exposures.close()
        except Exception:  # store down at exit: say how many are lost instead of hanging
            log.exception("could not write the last exposures on shutdown")

    # --- events -----------------------------------------------------------------------
    def ingest(self, events: list[Event]) -> IngestResult:
        try:
            return self.ingestor.ingest(events)
        except ValueError as e:  # an oversized batch
            raise BadRequest("events", str(e).split(": ", 1)[-1]) from None

    # --- admin ------------------------------------------------------------------------
    def create(self, e: Experiment, known_item_ids: Callable[[], Any]) -> Experiment:
        try:
            created = self.book.create(e, known_item_ids())
        except ValueError as err:  # messages start with the field name
            raise _bad(err) from None
        self._changed()
        return created

    def list(self) -> list[Experiment]:
        self.book.refresh()  # an admin read: also what other replicas created
        return self.book.list()

    def get(self, experiment_id: str) -> Experiment:
        e = self.book.get(experiment_id)
        if e is None:
            self.book.refresh()
            e = self.book.get(experiment_id)
        if e is None:
            raise UnknownExperiment(experiment_id)
        return e

    def set_status(self, experiment_id: str, status: str) -> Experiment:
        status = STATUS_ACTIONS.get(status, status)
        try:
            e = self.book.set_status(experiment_id, status)
        except KeyError:
            raise UnknownExperiment(experiment_id) from None
        except ValueError as err:
            raise _bad(err) from None
        self._changed()
        return e

    def report(self, experiment_id: str, now: datetime | None = None) -> Report:
        e = self.get(experiment_id)
        self.exposures.flush()  # exposures of this process so far: the report is current
        return build_report(e, self._store.experiment_stats(e.id), now=now,
                            rejected_events=self._store.rejected_event_count())

    def export_csv(self, experiment_id: str) -> str:
        out = io.StringIO()
        write_csv(self.report(experiment_id), out)
        return out.getvalue()

    def _changed(self) -> None:
        with self._lock:
            self._rebind()


def _bad(err: ValueError) -> BadRequest:
    field, _, message = str(err).partition(": ")
    return BadRequest(f"experiment.{field}", message) if message else BadRequest("experiment", str(err))


def parse_definition(text: str) -> Experiment:
    """An experiment from a JSON or YAML document (JSON is YAML); BadRequest says what is wrong."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise BadRequest("definition", f"not valid JSON or YAML: {e}") from None
    if not isinstance(data, dict):
        raise BadRequest("definition", "expected a mapping of fields (name, item_ids, rpcs, slot, ...)")
    return experiment_of(data)


def experiment_of(data: Mapping[str, Any]) -> Experiment:
    data = dict(data)
    for key in ("starts_at", "ends_at"):  # YAML reads unquoted times as datetimes
        t = data.get(key)
        if isinstance(t, datetime) and t.tzinfo is None:
            data[key] = t.replace(tzinfo=timezone.utc)
        elif isinstance(t, datetime):
            data[key] = t.isoformat()
    try:
        return Experiment.from_dict(data)
    except (TypeError, ValueError) as e:
        raise _bad(ValueError(str(e))) from None
