"""Cross-cutting gRPC concerns, applied to every unary call in one place.

- request id: the caller's `x-request-id` metadata, or a new one; handlers read it
  with `request_id()` and echo it in the response (an error sends it as trailing
  metadata);
- deadlines: a call whose deadline passed while it waited is answered
  DEADLINE_EXCEEDED without doing the work;
- errors: the service's exceptions become status codes with a message naming the
  field or id; anything unexpected becomes INTERNAL with the request id (and a logged
  traceback) — a bug fails one request, never the server;
- handler time per method, wall and CPU, in histograms, and calls by status code
  (`HandlerStats`: `Admin.GetServerStats`, the benchmark, Prometheus).

The server applies `_call` to its own services with `instrument` (no per-call
interceptor pipeline); `ServiceInterceptor` is also a grpc server interceptor for
handlers registered any other way.

Bounded concurrency is grpc's own `maximum_concurrent_rpcs` (see server.py): it
rejects a call with RESOURCE_EXHAUSTED before it is queued, which an interceptor
(running after admission) cannot do.
"""
from __future__ import annotations

import contextvars
import functools
import itertools
import logging
import os
import threading
import time
import types
from bisect import bisect_left
from dataclasses import dataclass

import grpc

from recsvc.answers import BadRequest, UnknownItem, Unpriced
from recsvc.experiments_service import UnknownExperiment
from recsvc.inventory import UnknownItems
from recsvc.store.base import StoreUnavailable

log = logging.getLogger("recsvc.server")

_REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("recsvc_request_id", default="")
REQUEST_ID_KEY = "x-request-id"


class NoModel(Exception):
    """No model is loaded yet (the server is NOT_SERVING)."""


def request_id() -> str:
    return _REQUEST_ID.get()


def status_for(e: BaseException) -> tuple[grpc.StatusCode, str] | None:
    """The status code and message for an exception the service raises on purpose."""
    if isinstance(e, BadRequest):
        return grpc.StatusCode.INVALID_ARGUMENT, str(e)
    if isinstance(e, (UnknownItem, UnknownExperiment)):
        return grpc.StatusCode.NOT_FOUND, str(e)
    if isinstance(e, UnknownItems):
        return grpc.StatusCode.NOT_FOUND, f"{e} (not in the catalog of the loaded model)"
    if isinstance(e, (NoModel, StoreUnavailable)):
        return grpc.StatusCode.UNAVAILABLE, str(e)
    if isinstance(e, Unpriced):
        return grpc.StatusCode.FAILED_PRECONDITION, str(e)
    return None


# Log-spaced buckets: 20 per decade from 10 us to 100 s; enough for p50/p99 to ~12 %.
_BUCKETS_PER_DECADE = 20
_MIN_S = 1e-5
_N_BUCKETS = 7 * _BUCKETS_PER_DECADE
# Upper edges of buckets 0 .. N-2 (the last one takes the rest): bisect instead of a log per call.
_EDGES = tuple(_MIN_S * 10 ** (b / _BUCKETS_PER_DECADE) for b in range(_N_BUCKETS - 1))
# The coarse histogram exported to Prometheus (recsvc_request_duration_seconds):
# handlers take ~0.1-1 ms; a reload or a store outage can push a call to seconds.
LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                   2.5, 5.0, 10.0)


@dataclass
class MethodStat:
    method: str
    count: int
    errors: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    cpu_p50_ms: float
    cpu_p99_ms: float


@dataclass(frozen=True)
class MethodCounts:
    """What Prometheus reads of one method: calls by status code and the coarse histogram."""
    method: str
    codes: dict[str, int]
    bounds: tuple[float, ...]
    buckets: list[int]  # per bound, then one for larger values (not cumulative)
    seconds: float  # the sum of handler times


class _Method:
    __slots__ = ("wall", "cpu", "coarse", "codes", "seconds", "max")

    def __init__(self, coarse: int) -> None:
        self.wall, self.cpu, self.coarse = [0] * _N_BUCKETS, [0] * _N_BUCKETS, [0] * (coarse + 1)
        self.codes: dict[str, int] = {}
        self.seconds = self.max = 0.0


class HandlerStats:
    """Per-method call counts and handler-time histograms (this process only): the one
    record a call leaves. `Admin.GetServerStats` reads the fine histograms, the
    Prometheus collector (recsvc.metrics) the counts by code and the coarse histogram, at
    scrape time: the request path does a few list increments under one lock, where
    prometheus_client's own counters and histograms took several Python calls and locks
    (cache misses between grpc's work cost a call ~20 us). Compiled calls count in C
    (recsvc.fast.CompiledRPC, a source) and are folded in when read."""

    def __init__(self, latency_buckets: tuple[float, ...] = LATENCY_BUCKETS) -> None:
        self._lock = threading.Lock()
        self._methods: dict[str, _Method] = {}
        self.latency_buckets = tuple(latency_buckets)
        self.started = time.time()
        self.in_flight = 0  # calls inside a handler now
        self._sources: list = []  # counts kept elsewhere (recsvc.fast.CompiledRPC), folded in when read
        self._fold_lock = threading.Lock()  # one drain at a time

    def add_source(self, source) -> None:
        """Calls that `source` counts itself (`source.path`, the method, and `drain()`:
        calls, seconds, max seconds and the wall, CPU and coarse bucket counts since the
        last drain, on these edges): part of every snapshot and count from now on, all OK."""
        self._sources.append(source)

    @property
    def edges(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """The fine histograms' upper edges and the coarse one's, for a source."""
        return _EDGES, self.latency_buckets

    def _fold(self) -> None:
        with self._fold_lock:
            for source in self._sources:
                calls, seconds, max_s, wall, cpu, coarse = source.drain()
                if not calls:
                    continue
                with self._lock:
                    m = self._method(source.path)
                    for into, add in ((m.wall, wall), (m.cpu, cpu), (m.coarse, coarse)):
                        for i, n in enumerate(add):
                            into[i] += n
                    m.codes["OK"] = m.codes.get("OK", 0) + calls
                    m.seconds += seconds
                    m.max = max(m.max, max_s)

    def _method(self, method: str) -> "_Method":
        m = self._methods.get(method)
        if m is None:
            m = self._methods[method] = _Method(len(self.latency_buckets))
        return m

    def enter(self) -> None:
        with self._lock:
            self.in_flight += 1

    def record(self, method: str, seconds: float, cpu_seconds: float, code: str = "OK") -> None:
        """Count one finished call (`code`: a grpc.StatusCode name) and leave the in-flight count."""
        b, c = bisect_left(_EDGES, seconds), bisect_left(_EDGES, cpu_seconds)
        k = bisect_left(self.latency_buckets, seconds)  # Prometheus' buckets: le, upper edge included
        with self._lock:
            self.in_flight -= 1
            m = self._method(method)
            m.wall[b] += 1
            m.cpu[c] += 1
            m.coarse[k] += 1
            m.codes[code] = m.codes.get(code, 0) + 1
            m.seconds += seconds
            if seconds > m.max:
                m.max = seconds

    def snapshot(self) -> list[MethodStat]:
        self._fold()
        with self._lock:
            items = [(name, list(m.wall), list(m.cpu), sum(m.codes.values()) - m.codes.get("OK", 0), m.max)
                     for name, m in self._methods.items()]
        return [MethodStat(m, sum(h), err, min(_quantile(h, 0.5), mx) * 1e3, min(_quantile(h, 0.99), mx) * 1e3,
                           mx * 1e3, min(_quantile(c, 0.5), mx) * 1e3, min(_quantile(c, 0.99), mx) * 1e3)
                for m, h, c, err, mx in sorted(items)]

    def counts(self) -> list[MethodCounts]:
        self._fold()
        with self._lock:
            return [MethodCounts(name, dict(m.codes), self.latency_buckets, list(m.coarse), m.seconds)
                    for name, m in sorted(self._methods.items())]


def _quantile(hist: list[int], q: float) -> float:
    """Upper edge of the bucket holding quantile q (a slight over-estimate, never under)."""
    total = sum(hist)
    if not total:
        return 0.0
    rank, seen = q * total, 0
    for b, n in enumerate(hist):
        seen += n
        if seen >= rank:
            return _MIN_S * 10 ** (b / _BUCKETS_PER_DECADE)
    return _MIN_S * 10 ** (_N_BUCKETS / _BUCKETS_PER_DECADE)


class ServiceInterceptor(grpc.ServerInterceptor):
    def __init__(self, stats: HandlerStats) -> None:
        self.stats = stats
        # new request ids: prefix + a counter, shared with recsvc.fast.CompiledRPC
        self.request_ids = (f"{os.getpid():x}-{int(time.time()) & 0xFFFFFF:x}-", itertools.count(1))
        self._wrapped: dict[str, grpc.RpcMethodHandler] = {}

    def instrument(self, servicer, service: str) -> object:
        """`servicer` with every unary method of `service` (a full name, "recsvc.v1.Admin")
        running inside `_call`, for the generated `add_*Servicer_to_server`.

        The same as registering this object as a server interceptor, minus grpc's
        interceptor pipeline on every call (10-15 % of a cheap call's CPU here), and
        the methods stay registered ones, which grpc core matches without Python."""
        from recsvc.v1 import recommender_pb2 as pb

        wrapped = types.SimpleNamespace()
        for m in pb.DESCRIPTOR.services_by_name[service.rpartition(".")[2]].methods:
            behavior = getattr(servicer, m.name)
            if not (m.client_streaming or m.server_streaming):
                behavior = functools.partial(self._call, f"/{service}/{m.name}", behavior)
            setattr(wrapped, m.name, behavior)
        return wrapped

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        if handler is None or handler.request_streaming or handler.response_streaming:
            return handler  # health Watch, reflection: streaming, left as they are
        method = handler_call_details.method
        wrapped = self._wrapped.get(method)
        if wrapped is None:  # a method's handler never changes once the server runs
            wrapped = self._wrapped[method] = grpc.unary_unary_rpc_method_handler(
                functools.partial(self._call, method, handler.unary_unary),
                request_deserializer=handler.request_deserializer, response_serializer=handler.response_serializer)
        return wrapped

    def _call(self, method: str, behavior, request, context: grpc.ServicerContext):
        stats = self.stats
        t0, c0 = time.perf_counter(), time.thread_time()
        rid = ""
        for key, value in context.invocation_metadata():
            if key == REQUEST_ID_KEY:
                rid = str(value)[:128]
                break
        if not rid:
            prefix, ids = self.request_ids
            rid = prefix + str(next(ids))
        stats.enter()
        remaining = context.time_remaining()
        if remaining is not None and remaining <= 0:
            stats.record(method, time.perf_counter() - t0, time.thread_time() - c0, "DEADLINE_EXCEEDED")
            context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, "the deadline passed before the request was handled")
        token = _REQUEST_ID.set(rid)
        try:
            response = behavior(request, context)
        except Exception as e:  # mapped to a status below; the server lives on
            status = status_for(e)
            if status is None:
                log.exception("internal error in %s (request id %s)", method, rid)
                status = (grpc.StatusCode.INTERNAL, f"internal error (request id {rid}); see the server log")
            elif isinstance(e, StoreUnavailable):  # an outage: operators need to see it, with the id
                log.warning("%s answered UNAVAILABLE: %s", method, e)
        else:
            stats.record(method, time.perf_counter() - t0, time.thread_time() - c0)
            return response
        finally:
            _REQUEST_ID.reset(token)
        stats.record(method, time.perf_counter() - t0, time.thread_time() - c0, status[0].name)
        context.set_trailing_metadata(((REQUEST_ID_KEY, rid),))
        context.abort(status[0], status[1])
