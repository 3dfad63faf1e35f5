# cython: language_level=3, boundscheck=False, wraparound=False
"""The chatbot's four RPCs in one compiled step per call: request in, response bytes out.

On the Python path a call runs `interceptors.ServiceInterceptor._call` (request id,
deadline, errors, the call's record) around a `RecommenderService` method (the model
in service, A/B slots, the kernel, the answer's metrics): a dozen Python frames, each
costing several times its warm cost between grpc's own work. `CompiledRPC` takes the
same steps in C, calling the kernel directly, and hands every call it does not answer
itself to that Python path, unchanged, which then answers it (or its error) as before:
no model or no kernel, an A/B test that may place an item in this RPC, a deadline that
passed while the call waited, a request the kernel leaves to Python, an exception.

What it does not keep: the request id in the context variable (no Python code runs
below it that reads one), and the in-flight count (a compiled call leaves the GIL only
in a few short Python calls; `HandlerStats.count`).
"""
from datetime import datetime, timezone
import logging

log = logging.getLogger("recsvc.server")

cdef extern from "<time.h>" nogil:
    ctypedef long time_t
    cdef struct timespec:
        time_t tv_sec
        long tv_nsec
    ctypedef int clockid_t
    int clock_gettime(clockid_t clk, timespec* tp)
    clockid_t CLOCK_MONOTONIC
    clockid_t CLOCK_THREAD_CPUTIME_ID


cdef inline double _clock(clockid_t which) noexcept:
    """time.perf_counter() (CLOCK_MONOTONIC) or time.thread_time(), without a Python call."""
    cdef timespec ts
    clock_gettime(which, &ts)
    return <double>ts.tv_sec + <double>ts.tv_nsec * 1e-9


cdef enum:
    COMPLEMENTS, SUBSTITUTES, BUNDLE, RECOMMEND

_RPCS = {"GetComplements": (COMPLEMENTS, "complements"), "GetSubstitutes": (SUBSTITUTES, "substitutes"),
         "GetBundle": (BUNDLE, "bundle"), "Recommend": (RECOMMEND, "recommend")}
_UTC = timezone.utc


cdef class CompiledRPC:
    """One Recommender method: `behavior(request, context)` for grpc, answered here or by
    `python(request, context)`, the instrumented Python path of the same method."""
    cdef object runtime, experiments, python, stats, on_answer, ids
    cdef str method, path, prefix, rpc
    cdef int kind
    cdef bint warned

    def __init__(self, service: str, method: str, runtime, python, stats, on_answer, request_ids):
        """`request_ids`: (prefix, counter) shared with the Python path, so ids stay unique."""
        if method not in _RPCS:
            raise ValueError(f"{method} has no compiled path (only {', '.join(_RPCS)})")
        self.kind, self.rpc = _RPCS[method]
        self.method, self.path = method, f"/{service}/{method}"
        self.runtime, self.experiments, self.python = runtime, runtime.experiments, python
        self.stats, self.on_answer = stats, on_answer
        self.prefix, self.ids = request_ids
        self.warned = False

    def __call__(self, request, context):
        cdef double t0 = _clock(CLOCK_MONOTONIC), c0 = _clock(CLOCK_THREAD_CPUTIME_ID)
        live = self.runtime.live()
        if live is None or live.kernel is None:
            return self.python(request, context)
        bound = self.experiments.bound()
        if self.kind != BUNDLE and bound.by_rpc[self.rpc] and bound.model is live.model:
            return self.python(request, context)  # with_test_slots may place an item: Python's
        remaining = context.time_remaining()
        if remaining is not None and remaining <= 0:
            return self.python(request, context)  # answers DEADLINE_EXCEEDED and counts it
        rid = ""
        for key, value in context.invocation_metadata():
            if key == "x-request-id":  # interceptors.REQUEST_ID_KEY
                rid = str(value)[:128]
                break
        if not rid:
            rid = self.prefix + str(next(self.ids))
        kernel = live.kernel
        try:
            if self.kind == COMPLEMENTS:
                out = kernel.complements(request, live.inventory.view(), live.prices.view(), rid)
            elif self.kind == SUBSTITUTES:
                out = kernel.substitutes(request, live.inventory.view(), live.prices.view(), rid)
            elif self.kind == RECOMMEND:
                out = kernel.recommend(request, live.inventory.view(), live.prices.view(), rid)
            else:
                now = datetime.now(_UTC)
                out = kernel.bundle(request, live.inventory.view(), live.prices.view(), rid,
                                    live.promotions.active(now), now)
        except Exception:  # a kernel bug must not fail the call: Python answers it
            if not self.warned:
                self.warned = True
                log.exception("the compiled %s failed; the Python path answers (logged once)", self.method)
            out = None
        if out is None:
            return self.python(request, context)
        self.on_answer(self.method, out[1])
        self.stats.count(self.path, _clock(CLOCK_MONOTONIC) - t0, _clock(CLOCK_THREAD_CPUTIME_ID) - c0)
        return out[0]
