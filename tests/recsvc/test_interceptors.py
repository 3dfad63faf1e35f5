"""Handler statistics: the part of the interceptor with rules of its own."""
from __future__ import annotations

from recsvc.interceptors import HandlerStats


def test_handler_stats_give_percentiles_per_method():
    stats = HandlerStats()
    for i in range(100):
        stats.enter()
        stats.record("/m/A", 0.001 if i < 99 else 0.050, 0.0005, ok=i != 0)
    (a,) = stats.snapshot()
    assert (a.method, a.count, a.errors) == ("/m/A", 100, 1)
    assert 0.9 <= a.p50_ms <= 1.2 and 0.9 <= a.p99_ms <= 1.2 and a.max_ms == 50.0
    assert 0.45 <= a.cpu_p99_ms <= 0.6 and stats.in_flight == 0
