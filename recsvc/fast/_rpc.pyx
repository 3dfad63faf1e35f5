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
in a few short Python calls).

A compiled call's record stays here, in C, with no Python call and no lock (the GIL
orders the calls): its handler times in `HandlerStats`' histograms (CPU time for one
call in 16: the thread's CPU clock is a system call), its answer's mix of
reasons in a dict. Readers fold them in when they read (`HandlerStats.add_source`,
`Metrics.add_answer_source`) through `drain()` and `drain_answers()`.
"""
from libc.stdint cimport int64_t
from libc.string cimport memset
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

DEF MAX_EDGES = 256
DEF MAX_MIXES = 4096  # distinct reason mixes kept between two reads; beyond: on_answer
# The thread's CPU clock is a system call (~1 us in a VM; a warm bundle call is 8 us):
# one call in 16 is timed, enough for the CPU histogram's percentiles.
DEF CPU_SAMPLE = 15


cdef inline int _bucket(const double* edges, int n, double x) noexcept:
    """bisect.bisect_left(edges, x): the first i with edges[i] >= x, n if none."""
    cdef int lo = 0, hi = n, mid
    while lo < hi:
        mid = (lo + hi) >> 1
        if edges[mid] < x:
            lo = mid + 1
        else:
            hi = mid
    return lo


cdef struct Tally:  # the calls counted since the last drain
    int64_t calls
    double seconds, max_s
    int64_t wall[MAX_EDGES + 1]
    int64_t cpu[MAX_EDGES + 1]
    int64_t coarse[MAX_EDGES + 1]

_RPCS = {"GetComplements": (COMPLEMENTS, "complements"), "GetSubstitutes": (SUBSTITUTES, "substitutes"),
         "GetBundle": (BUNDLE, "bundle"), "Recommend": (RECOMMEND, "recommend")}
_UTC = timezone.utc


cdef class CompiledRPC:
    """One Recommender method: `behavior(request, context)` for grpc, answered here or by
    `python(request, context)`, the instrumented Python path of the same method."""
    cdef object runtime, experiments, python, on_answer, ids
    cdef readonly str method, path
    cdef str prefix, rpc
    cdef int kind
    cdef bint warned
    cdef double fine[MAX_EDGES]
    cdef double coarse[MAX_EDGES]
    cdef int n_fine, n_coarse
    cdef Tally tally[2]
    cdef int active  # the tally calls go to; drain() reads and clears the other
    cdef dict mixes  # reasons of an answer -> answers
    cdef unsigned long calls

    def __init__(self, service: str, method: str, runtime, python, on_answer, request_ids, fine_edges,
                 coarse_bounds):
        """`request_ids`: (prefix, counter) shared with the Python path, so ids stay unique;
        `on_answer(method, reasons)`: where answers go once MAX_MIXES mixes wait;
        `fine_edges`, `coarse_bounds`: HandlerStats' histogram edges."""
        if method not in _RPCS:
            raise ValueError(f"{method} has no compiled path (only {', '.join(_RPCS)})")
        if len(fine_edges) > MAX_EDGES or len(coarse_bounds) > MAX_EDGES:
            raise ValueError(f"at most {MAX_EDGES} histogram edges")
        self.kind, self.rpc = _RPCS[method]
        self.method, self.path = method, f"/{service}/{method}"
        self.runtime, self.experiments, self.python = runtime, runtime.experiments, python
        self.on_answer = on_answer
        self.prefix, self.ids = request_ids
        self.warned = False
        self.n_fine, self.n_coarse = len(fine_edges), len(coarse_bounds)
        for i, x in enumerate(fine_edges):
            self.fine[i] = x
        for i, x in enumerate(coarse_bounds):
            self.coarse[i] = x
        memset(self.tally, 0, sizeof(self.tally))
        self.active = 0
        self.mixes = {}
        self.calls = 0

    cdef void _count(self, double wall, double cpu) noexcept:
        cdef Tally* t = &self.tally[self.active]
        t.calls += 1
        t.seconds += wall
        if wall > t.max_s:
            t.max_s = wall
        t.wall[_bucket(self.fine, self.n_fine, wall)] += 1
        if cpu >= 0:  # a sampled call
            t.cpu[_bucket(self.fine, self.n_fine, cpu)] += 1
        t.coarse[_bucket(self.coarse, self.n_coarse, wall)] += 1

    def drain(self):
        """(calls, seconds, max seconds, wall, cpu and coarse bucket counts) since the
        last drain. One reader at a time (HandlerStats holds a lock): calls count into
        the other tally from the first line on."""
        cdef int old = self.active
        self.active = 1 - old
        cdef Tally* t = &self.tally[old]
        out = (t.calls, t.seconds, t.max_s, [t.wall[i] for i in range(self.n_fine + 1)],
               [t.cpu[i] for i in range(self.n_fine + 1)], [t.coarse[i] for i in range(self.n_coarse + 1)])
        memset(t, 0, sizeof(Tally))
        return out

    def drain_answers(self):
        """{reasons of an answer: answers} since the last drain."""
        mixes = self.mixes
        self.mixes = {}
        return mixes

    def __call__(self, request, context):
        cdef double t0 = _clock(CLOCK_MONOTONIC), c0 = -1.0
        self.calls += 1
        if (self.calls & CPU_SAMPLE) == 0:
            c0 = _clock(CLOCK_THREAD_CPUTIME_ID)
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
            stock, prices = live.inventory.view(), live.prices.view()
            if self.kind == COMPLEMENTS:
                out = kernel.complements(request, stock, prices, rid)
            elif self.kind == SUBSTITUTES:
                out = kernel.substitutes(request, stock, prices, rid)
            elif self.kind == RECOMMEND:
                out = kernel.recommend(request, stock, prices, rid)
            else:
                now = datetime.now(_UTC)
                out = kernel.bundle(request, stock, prices, rid, live.promotions.active(now), now)
        except Exception:  # a kernel bug must not fail the call: Python answers it
            if not self.warned:
                self.warned = True
                log.exception("the compiled %s failed; the Python path answers (logged once)", self.method)
            out = None
        if out is None:
            return self.python(request, context)
        reasons = out[1]
        n = self.mixes.get(reasons)
        if n is not None:
            self.mixes[reasons] = n + 1
        elif len(self.mixes) < MAX_MIXES:
            self.mixes[reasons] = 1
        else:  # unbounded variety: the Python counter folds it
            self.on_answer(self.method, reasons)
        self._count(_clock(CLOCK_MONOTONIC) - t0, _clock(CLOCK_THREAD_CPUTIME_ID) - c0 if c0 >= 0 else -1.0)
        return out[0]
