"""Cross-cutting gRPC concerns, applied to every unary call in one place.

- request id: the caller's `x-request-id` metadata, or a new one; handlers read it
  with `request_id()` and echo it in the response (an error sends it as trailing
  metadata);
- deadlines: a call whose deadline passed while it waited is answered
  DEADLINE_EXCEEDED without doing the work;
- errors: the service's exceptions become status codes with a message naming the
  field or id; anything unexpected becomes INTERNAL with the request id (and a logged
  traceback) — a bug fails one request, never the server;
- handler time per method, wall and CPU, in histograms (`Admin.GetServerStats`, the
  benchmark).

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
import math
import os
import threading
import time
import types
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


def _bucket(seconds: float) -> int:
    if seconds <= _MIN_S:
        return 0
    return min(_N_BUCKETS - 1, int(math.log10(seconds / _MIN_S) * _BUCKETS_PER_DECADE) + 1)


class HandlerStats:
    """Per-method call counts and handler-time histograms (this process only)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._hist: dict[str, list[int]] = {}
        self._cpu: dict[str, list[int]] = {}
        self._errors: dict[str, int] = {}
        self._max: dict[str, float] = {}
        self.started = time.time()
        self.in_flight = 0  # calls inside a handler now

    def enter(self) -> None:
        with self._lock:
            self.in_flight += 1

    def record(self, method: str, seconds: float, cpu_seconds: float, ok: bool) -> None:
        """Count one finished call (and leave the in-flight count)."""
        b, c = _bucket(seconds), _bucket(cpu_seconds)
        with self._lock:
            self.in_flight -= 1
            hist = self._hist.get(method)
            if hist is None:
                hist = self._hist[method] = [0] * _N_BUCKETS
                self._cpu[method] = [0] * _N_BUCKETS
                self._errors[method], self._max[method] = 0, 0.0
            hist[b] += 1
            self._cpu[method][c] += 1
            if not ok:
                self._errors[method] += 1
            if seconds > self._max[method]:
                self._max[method] = seconds

    def snapshot(self) -> list[MethodStat]:
        with self._lock:
            items = [(m, list(h), list(self._cpu[m]), self._errors[m], self._max[m]) for m, h in self._hist.items()]
        return [MethodStat(m, sum(h), err, min(_quantile(h, 0.5), mx) * 1e3, min(_quantile(h, 0.99), mx) * 1e3,
                           mx * 1e3, min(_quantile(c, 0.5), mx) * 1e3, min(_quantile(c, 0.99), mx) * 1e3)
                for m, h, c, err, mx in sorted(items)]


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
    def __init__(self, stats: HandlerStats, observe=None) -> None:
        self._stats = stats
        # observe(method, seconds, status code name, response or None): Prometheus (recsvc.metrics)
        self._observe = observe or (lambda method, seconds, code, response: None)
        self._ids = itertools.count(1)
        self._prefix = f"{os.getpid():x}-{int(time.time()) & 0xFFFFFF:x}-"
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
        stats = self._stats
        t0, c0 = time.perf_counter(), time.thread_time()
        rid = ""
        for key, value in context.invocation_metadata():
            if key == REQUEST_ID_KEY:
                rid = str(value)[:128]
                break
        rid = rid or self._prefix + str(next(self._ids))
        stats.enter()
        remaining = context.time_remaining()
        if remaining is not None and remaining <= 0:
            stats.record(method, time.perf_counter() - t0, time.thread_time() - c0, False)
            self._observe(method, time.perf_counter() - t0, "DEADLINE_EXCEEDED", None)
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
            seconds = time.perf_counter() - t0
            stats.record(method, seconds, time.thread_time() - c0, True)
            self._observe(method, seconds, "OK", response)
            return response
        finally:
            _REQUEST_ID.reset(token)
        seconds = time.perf_counter() - t0
        stats.record(method, seconds, time.thread_time() - c0, False)
        self._observe(method, seconds, status[0].name, None)
        context.set_trailing_metadata(((REQUEST_ID_KEY, rid),))
        context.abort(status[0], status[1])
