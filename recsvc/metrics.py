"""Prometheus metrics of one server process, served over HTTP on `metrics_port`.

Each server builds its own `Metrics` (its own `CollectorRegistry`, never the global
one), so several servers in one process (tests) do not mix their numbers.

Several worker processes (`workers > 1`): worker i listens on `metrics_port + i`, and
Prometheus scrapes each like any other target; `sum without (instance)` adds them up.
This keeps every number in the memory of the process that counts it: no shared
multiprocess directory, nothing written to disk per request, and a worker that dies
takes only its own counters with it (Prometheus handles the reset of a counter).

The request path does O(1) work here: label children are looked up once and cached,
and each update is one short lock inside prometheus_client.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, ProcessCollector
from prometheus_client.exposition import start_wsgi_server

from recsvc.answers.common import Reason

# Reasons that mean "the model had nothing better": category popularity, category fallback.
FALLBACK_REASONS = frozenset({Reason.CATEGORY_FALLBACK, Reason.POPULAR})
MODEL_REASONS = frozenset({Reason.CO_PURCHASE, Reason.SIMILAR, Reason.PERSONAL})
# Handlers take ~0.1-1 ms; a reload or a store outage can push a call to seconds.
LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                   2.5, 5.0, 10.0)


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
        self.requests = Counter("recsvc_requests", "Finished gRPC calls by RPC and status code (errors: code != OK)",
                                ["service", "method", "code"], registry=r)
        self.latency = Histogram("recsvc_request_duration_seconds", "Handler time of gRPC calls (in the interceptor)",
                                 ["service", "method"], buckets=LATENCY_BUCKETS, registry=r)
        self.answers = Counter("recsvc_answers", "Answers by where their items came from: model, fallback "
                               "(category popularity / category fallback only) or empty", ["method", "source"],
                               registry=r)
        self.items = Counter("recsvc_answer_items", "Items returned, by reason", ["method", "reason"], registry=r)
        self.exposures = Counter("recsvc_experiment_exposures", "A/B experiment exposures: test-slot items "
                                 "returned (REASON_TEST_SLOT)", registry=r)
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
        self._calls: dict[tuple[str, str], tuple] = {}
        self._answer_plans: dict[tuple[str, tuple[int, ...]], list[tuple[object, int]]] = {}
        self._server: WSGIServer | None = None

    # --- request path -------------------------------------------------------------------
    def observe_call(self, method: str, seconds: float, code: str, response: object = None) -> None:
        """One finished call (`code`: a grpc.StatusCode name). A recommendation's items are
        counted by the service itself (`observe_answer`, from the answer's reasons)."""
        key = (method, code)
        children = self._calls.get(key)
        if children is None:  # first call of this kind: resolve the label children once
            service, name = _split(method)
            children = self._calls[key] = (self.requests.labels(service, name, code),
                                           self.latency.labels(service, name))
        children[0].inc()
        children[1].observe(seconds)
        if response is None:
            return
        if method == "/recsvc.v1.Admin/UpdateStock":  # acknowledged: the store committed them
            self.stock_updates.inc(response.applied)
        elif method == "/recsvc.v1.Admin/UpdatePrices":
            self.price_updates.inc(response.applied)

    def observe_answer(self, method: str, reasons: Iterable[int]) -> None:
        """Count an answer's items by reason, and the answer by source (model / fallback)."""
        key = (method, tuple(reasons))
        plan = self._answer_plans.get(key)
        if plan is None:  # a new mix of reasons: work out which counters move, once
            plan = self._plan_answer(*key)
            if len(self._answer_plans) >= 4096:  # mixes repeat; bound the table anyway
                self._answer_plans.clear()
            self._answer_plans[key] = plan
        for child, n in plan:
            child.inc(n)

    def _plan_answer(self, method: str, reasons: tuple[int, ...]) -> list[tuple[object, int]]:
        counts: dict[int, int] = {}
        for r in reasons:
            counts[r] = counts.get(r, 0) + 1
        source = answer_source(counts)
        plan: list[tuple[object, int]] = [(self.answers.labels(method, source), 1)]
        if Reason.TEST_SLOT in counts:
            plan.append((self.exposures, counts[Reason.TEST_SLOT]))
        plan += [(self.items.labels(method, _reason_name(reason)), n) for reason, n in counts.items()]
        return plan

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

    def track_in_flight(self, read: Callable[[], float]) -> None:
        self.in_flight.set_function(read)

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
