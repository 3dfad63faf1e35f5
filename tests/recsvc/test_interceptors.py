"""Handler statistics: the part of the interceptor with rules of its own."""
from __future__ import annotations

from recsvc.interceptors import HandlerStats


def test_handler_stats_give_percentiles_per_method():
    stats = HandlerStats()
    for i in range(100):
        stats.enter()
        stats.record("/m/A", 0.001 if i < 99 else 0.050, 0.0005, "OK" if i else "NOT_FOUND")
    (a,) = stats.snapshot()
    assert (a.method, a.count, a.errors) == ("/m/A", 100, 1)
    assert 0.9 <= a.p50_ms <= 1.2 and 0.9 <= a.p99_ms <= 1.2 and a.max_ms == 50.0
    assert 0.45 <= a.cpu_p99_ms <= 0.6 and stats.in_flight == 0


def test_handler_stats_count_calls_by_code_in_prometheus_buckets():
    """A call of exactly a bucket's bound falls in that bucket (Prometheus' `le`)."""
    stats = HandlerStats(latency_buckets=(0.001, 0.01))
    for seconds, code in [(0.0005, "OK"), (0.001, "OK"), (0.005, "NOT_FOUND"), (3.0, "OK")]:
        stats.enter()
        stats.record("/m/A", seconds, seconds, code)
    (a,) = stats.counts()
    assert a.codes == {"OK": 3, "NOT_FOUND": 1} and a.bounds == (0.001, 0.01)
    assert a.buckets == [2, 1, 1] and abs(a.seconds - 3.0065) < 1e-9
    assert stats.snapshot()[0].errors == 1
