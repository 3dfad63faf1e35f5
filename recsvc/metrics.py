"""Prometheus metrics of one server process, served over HTTP on `metrics_port`.

Each server builds its own `Metrics` (its own `CollectorRegistry`, never the global
one), so several servers in one process (tests) do not mix their numbers.

Several worker processes (`workers > 1`): worker i listens on `metrics_port + i`, and
Prometheus scrapes each like any other target; `sum without (instance)` adds them up.
This keeps every number in the memory of the process that counts it: no shared
multiprocess directory, nothing written to disk per request, and a worker that dies
takes only its own counters with it (Prometheus handles the reset of a counter).

The request path does almost nothing here: a call's status and handler time are in the
`HandlerStats` record it leaves anyway (recsvc.interceptors), and an answer's mix of
reasons is one dict increment; collectors turn both into Prometheus counters and a
histogram at scrape time. prometheus_client's own counters cost each call several Python
calls and locks, which between grpc's work run with cold caches (~20 us of a ~300 us call).
"""
from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Info, ProcessCollector
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
from prometheus_client.exposition import start_wsgi_server
from prometheus_client.registry import Collector

from recsvc.answers.common import Reason

# Reasons that mean "the model had nothing better": category popularity, category fallback.
FALLBACK_REASONS = frozenset({Reason.CATEGORY_FALLBACK, Reason.POPULAR})
MODEL_REASONS = frozenset({Reason.CO_PURCHASE, Reason.SIMILAR, Reason.PERSONAL})
# Distinct mixes of (method, reasons) kept apart before they are folded into totals.
_MAX_MIXES = 4096


def answer_source(reasons: Iterable[int]) -> str:
    """"model" when any item came from the model, "fallback" when the items came only
    from category popularity / category fallback (and test slots), "empty" without items."""
    seen = set(reasons)
    if not seen:
        return "empty"
    if seen & MODEL_REASONS:
        return "model"
    return "fallback" if seen & FALLBACK_REASONS else "model"


def _split(method: str) -> tuple[str, str]:
    """"/recsvc.v1.Recommender/GetComplements" -> ("recsvc.v1.Recommender", "GetComplements")."""
    service, _, name = method.lstrip("/").rpartition("/")
    return service, name


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.answers = _AnswerCounts()
        r.register(self.answers)
        # the request path: observe_answer(method, reasons of the items) counts an answer's
        # items by reason and the answer by source (model / fallback); bound, not wrapped
        self.observe_answer = self.answers.add
        self.add_answer_source = self.answers.add_source
        self.stock_updates = Counter("recsvc_inventory_updates", "Stock records written through this process "
                                     "(UpdateStock items acknowledged)", registry=r)
        self.price_updates = Counter("recsvc_price_updates", "Price overrides written through this process",
                                     registry=r)
        self.model = Info("recsvc_model", "The model bundle being served", registry=r)
        self.model_age = Gauge("recsvc_model_age_seconds", "Seconds since the served bundle was trained "
                               "(its manifest's `created`); NaN while none is served", registry=r)
        self.model_swaps = Counter("recsvc_model_swaps", "Model bundles swapped in", registry=r)
        self.reload_failures = Counter("recsvc_model_reload_failures", "Attempts to load `current` that were "
                                       "refused (unreadable directory, corrupt bundle...)", registry=r)
        self.reload_failing = Gauge("recsvc_model_reload_failing", "1 while `current` cannot be loaded and an "
                                    "older model (or none) is served; see Admin GetModelInfo / the log", registry=r)
        self.in_flight = Gauge("recsvc_requests_in_flight", "Calls inside a handler now", registry=r)
        ProcessCollector(registry=r)  # CPU, memory, open files of this process
        self._created = float("nan")
        self.model_age.set_function(lambda: time.time() - self._created)
        self._server: WSGIServer | None = None

    def track_calls(self, stats) -> None:
        """Export `stats` (a recsvc.interceptors.HandlerStats): calls by RPC and status code,
        handler time, calls in flight."""
        self.registry.register(_CallCounts(stats))
        self.in_flight.set_function(lambda: stats.in_flight)

    # --- model lifecycle ----------------------------------------------------------------
    def model_swapped(self, version: str, created_epoch_s: float | None) -> None:
        self.model.info({"version": version})
        self._created = float("nan") if created_epoch_s is None else created_epoch_s
        self.model_swaps.inc()

    def reload_status(self, why: str) -> None:
        """`why`: the reason `current` was refused, or "" once it is served."""
        if why:
            self.reload_failures.inc()
        self.reload_failing.set(1 if why else 0)

    # --- exposition ---------------------------------------------------------------------
    def serve(self, host: str, port: int) -> int:
        """Serve /metrics on host:port in a daemon thread; returns the bound port."""
        try:
            self._server, _ = start_wsgi_server(port, addr=host.strip("[]"), registry=self.registry)
        except OSError as e:
            raise OSError(f"cannot serve metrics on {host}:{port} (metrics_port): {e.strerror}") from None
        return self._server.server_port

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def _reason_name(reason: int) -> str:
    try:
        return Reason(reason).name.lower()
    except ValueError:
        return str(reason)


class _CallCounts(Collector):
    """recsvc_requests_total and recsvc_request_duration_seconds, read from HandlerStats."""

    def __init__(self, stats) -> None:
        self._stats = stats

    def collect(self):
        requests = CounterMetricFamily("recsvc_requests", "Finished gRPC calls by RPC and status code "
                                       "(errors: code != OK)", labels=["service", "method", "code"])
        latency = HistogramMetricFamily("recsvc_request_duration_seconds", "Handler time of gRPC calls (in the "
                                        "interceptor)", labels=["service", "method"])
        for m in self._stats.counts():
            service, name = _split(m.method)
            for code, n in sorted(m.codes.items()):
                requests.add_metric([service, name, code], n)
            cumulative, buckets = 0, []
            for bound, n in zip((*map(str, m.bounds), "+Inf"), m.buckets):
                cumulative += n
                buckets.append((bound, cumulative))
            latency.add_metric([service, name], buckets, m.seconds)
        yield requests
        yield latency


class _AnswerCounts(Collector):
    """recsvc_answers_total, recsvc_answer_items_total and recsvc_experiment_exposures_total:
    the request path counts each (method, reasons) mix; scraping works out the counters."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._mixes: dict[tuple[str, tuple[int, ...]], int] = {}
        # mixes folded into totals once there were too many: {(family, labels): count}
        self._folded: dict[tuple[str, tuple[str, ...]], int] = {}
        self._sources: list = []
        self._drain_lock = threading.Lock()  # one drain at a time

    def add_source(self, source) -> None:
        """Answers that `source` counts itself (`source.method` and `drain_answers()`:
        {reasons: answers} since the last drain), folded in at every scrape."""
        self._sources.append(source)

    def add(self, method: str, reasons: Iterable[int]) -> None:
        self._add(method, tuple(reasons), 1)

    def _add(self, method: str, reasons: tuple[int, ...], n: int) -> None:
        key = (method, reasons)
        with self._lock:
            self._mixes[key] = self._mixes.get(key, 0) + n
            if len(self._mixes) > _MAX_MIXES:  # mixes repeat; bound the table anyway
                self._folded = self._totals(self._mixes, self._folded)
                self._mixes = {}

    @staticmethod
    def _totals(mixes: dict, into: dict) -> dict[tuple[str, tuple[str, ...]], int]:
        out = dict(into)
        for (method, reasons), n in mixes.items():
            counts: dict[int, int] = {}
            for r in reasons:
                counts[r] = counts.get(r, 0) + 1
            for key, k in [(("answers", (method, answer_source(counts))), 1),
                           (("exposures", ()), counts.get(Reason.TEST_SLOT, 0)),
                           *[(("items", (method, _reason_name(r))), c) for r, c in counts.items()]]:
                out[key] = out.get(key, 0) + k * n
        return out

    def collect(self):
        with self._drain_lock:
            for source in self._sources:
                for reasons, n in source.drain_answers().items():
                    self._add(source.method, reasons, n)
        with self._lock:
            mixes, folded = dict(self._mixes), self._folded
        totals = self._totals(mixes, folded)
        families = {"answers": CounterMetricFamily(
                        "recsvc_answers", "Answers by where their items came from: model, fallback (category "
                        "popularity / category fallback only) or empty", labels=["method", "source"]),
                    "items": CounterMetricFamily("recsvc_answer_items", "Items returned, by reason",
                                                 labels=["method", "reason"])}
        for (family, labels), n in sorted(totals.items()):
            if family in families:
                families[family].add_metric(list(labels), n)
        yield families["answers"]
        yield families["items"]
        yield CounterMetricFamily("recsvc_experiment_exposures", "A/B experiment exposures: test-slot items "
                                  "returned (REASON_TEST_SLOT)", value=totals.get(("exposures", ()), 0))
