"""Prometheus metrics and request-id logs, read the way Prometheus and a log shipper read them."""
from __future__ import annotations

import io
import json
import logging
import socket
import time
import urllib.request
from concurrent import futures

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families

from recsvc.answers.common import Reason
from recsvc.config import ConfigError, load_config
from recsvc.interceptors import HandlerStats, ServiceInterceptor
from recsvc.logging_setup import make_handler
from recsvc.metrics import Metrics, answer_source
from tests.recsvc.bundles import write_apparel
from tests.recsvc.test_server import rpc_error, serving


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scrape(port: int) -> dict[tuple[str, frozenset], float]:
    """Every sample as {(name, labels): value}."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples, name: str, **labels) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_answer_source_is_read_from_the_reasons():
    assert answer_source([Reason.CO_PURCHASE, Reason.POPULAR]) == "model"
    assert answer_source([Reason.CATEGORY_FALLBACK, Reason.POPULAR]) == "fallback"
    assert answer_source([Reason.POPULAR, Reason.TEST_SLOT]) == "fallback"
    assert answer_source([]) == "empty"


def test_requests_latency_fallbacks_model_and_stock_on_the_metrics_port(tmp_path):
    write_apparel(tmp_path / "model")
    with serving(tmp_path / "model", metrics_port=free_port()) as (running, c):
        version = c.model_info().version
        c.complements(["JKT-1-M"], limit=2)  # co-purchase: the model
        c.complements(["JKT-NEW"], limit=2)  # no history: category fallback
        rpc_error(lambda: c.complements(["JKT-1"], limit=0))
        c.update_stock({"JEANS-1": 0, "TEE-1-M": 4})  # a product (3 variants) and a variant: 2 items
        s = scrape(running.metrics_port)
    rec = dict(service="recsvc.v1.Recommender", method="GetComplements")
    assert value(s, "recsvc_requests_total", **rec, code="OK") == 2
    assert value(s, "recsvc_requests_total", **rec, code="INVALID_ARGUMENT") == 1
    assert value(s, "recsvc_request_duration_seconds_count", **rec) == 3
    assert 0 < value(s, "recsvc_request_duration_seconds_sum", **rec) < 1
    assert value(s, "recsvc_answers_total", method="GetComplements", source="model") == 1
    assert value(s, "recsvc_answers_total", method="GetComplements", source="fallback") == 1
    assert value(s, "recsvc_answer_items_total", method="GetComplements", reason="category_fallback") >= 1
    assert value(s, "recsvc_inventory_updates_total") == 2
    assert value(s, "recsvc_model_info", version=version) == 1
    assert 0 <= value(s, "recsvc_model_age_seconds") < 600  # the bundle was written seconds ago
    assert value(s, "recsvc_model_swaps_total") == 1 and value(s, "recsvc_model_reload_failing") == 0
    assert value(s, "recsvc_experiment_exposures_total") == 0


def test_each_server_counts_alone():
    (a, a_stats), (b, b_stats) = [(Metrics(), HandlerStats()) for _ in range(2)]
    for m, stats in ((a, a_stats), (b, b_stats)):
        m.track_calls(stats)
    a_stats.enter()
    a_stats.record("/recsvc.v1.Recommender/Recommend", 0.001, 0.001)
    a.observe_answer("Recommend", [Reason.PERSONAL])
    labels = {"service": "recsvc.v1.Recommender", "method": "Recommend", "code": "OK"}
    assert a.registry.get_sample_value("recsvc_requests_total", labels) == 1
    assert b.registry.get_sample_value("recsvc_requests_total", labels) is None
    assert a.registry.get_sample_value("recsvc_answer_items_total", {"method": "Recommend", "reason": "personal"}) == 1
    assert b.registry.get_sample_value("recsvc_answer_items_total", {"method": "Recommend", "reason": "personal"}) is None


def test_answers_are_counted_by_source_and_reason_and_survive_folding(monkeypatch):
    """The request path keeps a table of reason mixes; past its bound the table is folded
    into totals, and no count is lost."""
    import recsvc.metrics as metrics_module

    monkeypatch.setattr(metrics_module, "_MAX_MIXES", 3)
    m = Metrics()
    for i in range(10):  # 10 distinct mixes: folded twice
        m.observe_answer("GetComplements", [Reason.CO_PURCHASE] * (i + 1) + [Reason.TEST_SLOT])
    m.observe_answer("GetComplements", [Reason.POPULAR])
    m.observe_answer("GetComplements", [])
    get = m.registry.get_sample_value
    assert get("recsvc_answers_total", {"method": "GetComplements", "source": "model"}) == 10
    assert get("recsvc_answers_total", {"method": "GetComplements", "source": "fallback"}) == 1
    assert get("recsvc_answers_total", {"method": "GetComplements", "source": "empty"}) == 1
    assert get("recsvc_answer_items_total", {"method": "GetComplements", "reason": "co_purchase"}) == 55
    assert get("recsvc_experiment_exposures_total") == 10


def test_metrics_port_is_validated_and_a_taken_port_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match=r"metrics_port \(from environment RECSVC_METRICS_PORT\): must be 0"):
        load_config(env={"RECSVC_METRICS_PORT": "65535", "RECSVC_WORKERS": "2"})
    with pytest.raises(ConfigError, match="metrics_port .*must differ from port"):
        load_config(env={"RECSVC_METRICS_PORT": "50051"})
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(OSError, match=r"cannot serve metrics on 127.0.0.1:\d+ \(metrics_port\)"):
            Metrics().serve("127.0.0.1", taken.getsockname()[1])


@pytest.mark.parametrize("log_format", ["json", "text"])
def test_log_lines_carry_the_request_id(log_format):
    """A line logged anywhere below a handler names the caller's request id."""
    out = io.StringIO()
    handler = make_handler(log_format, out)
    logger = logging.getLogger("recsvc.test_metrics")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)

    def handler_fn(request, context):
        logger.info("looking up %s", request.decode())
        return request

    server = grpc.server(futures.ThreadPoolExecutor(2), interceptors=[ServiceInterceptor(HandlerStats())])
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
        "t.T", {"Echo": grpc.unary_unary_rpc_method_handler(handler_fn)}),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
            ch.unary_unary("/t.T/Echo")(b"JKT-1", timeout=5, metadata=(("x-request-id", "chat-7"),))
        logger.info("outside any request")
    finally:
        server.stop(0)
        logger.removeHandler(handler)
    lines = out.getvalue().splitlines()
    if log_format == "json":
        records = [json.loads(line) for line in lines]
        assert (records[0]["request_id"], records[0]["msg"], records[0]["level"]) == ("chat-7", "looking up JKT-1",
                                                                                      "INFO")
        assert records[1]["request_id"] == "-"
    else:
        assert "request_id=chat-7 recsvc.test_metrics: looking up JKT-1" in lines[0]
        assert "request_id=- " in lines[1]


def test_metric_updates_stay_cheap():
    """The request path: a few list and dict increments, no I/O (well under 20 us per call here)."""
    m, stats = Metrics(), HandlerStats()
    m.track_calls(stats)
    t0, n = time.perf_counter(), 2000
    for _ in range(n):
        stats.enter()
        stats.record("/recsvc.v1.Recommender/GetComplements", 0.001, 0.0005)
        m.observe_answer("GetComplements", [1, 1, 5, 3])
    assert (time.perf_counter() - t0) / n < 50e-6
    assert m.registry.get_sample_value("recsvc_requests_total", {
        "service": "recsvc.v1.Recommender", "method": "GetComplements", "code": "OK"}) == n
