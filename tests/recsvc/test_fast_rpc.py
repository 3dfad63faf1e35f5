"""recsvc.fast.CompiledRPC: the chatbot's four RPCs answered in one compiled step, and
every call it does not answer handed to the Python path unchanged."""
from __future__ import annotations

import dataclasses
import logging
import types

import grpc
import pytest

from recsvc.fast import CompiledRPC
from recsvc.interceptors import HandlerStats
from recsvc.server import RECOMMENDER
from recsvc.v1 import recommender_pb2 as pb
from tests.recsvc.bundles import write_apparel
from tests.recsvc.test_fast import kernel_answer
from tests.recsvc.test_server import serving

pytestmark = pytest.mark.skipif(CompiledRPC is None, reason="recsvc.fast is not built (pip install -e .)")

REQUESTS = {"GetComplements": ("complements", pb.ComplementsRequest(item_ids=["JKT-1"], limit=2)),
            "GetSubstitutes": ("substitutes", pb.SubstitutesRequest(item_id="JKT-1-M", limit=2)),
            "GetBundle": ("bundle", pb.BundleRequest(item_id="JKT-1")),
            "Recommend": ("recommend", pb.RecommendRequest(limit=2))}


class _Context:
    """What CompiledRPC reads of a grpc.ServicerContext."""

    def __init__(self, remaining: float | None = 10.0, metadata=()) -> None:
        self.remaining, self.metadata = remaining, metadata

    def time_remaining(self):
        return self.remaining

    def invocation_metadata(self):
        return self.metadata


class _Broken:
    """A kernel whose every answer raises, as a bug in it would."""

    def __getattr__(self, name):
        def fail(*args):
            raise RuntimeError(f"kernel bug in {name}")
        return fail


@pytest.fixture
def server(tmp_path):
    write_apparel(tmp_path / "model")
    with serving(tmp_path / "model") as (running, client):
        yield running, client


def _rpc(runtime, method: str, python, stats: HandlerStats | None = None):
    rpc = CompiledRPC(RECOMMENDER, method, runtime, python, lambda m, reasons: None, ("t-", iter(range(1, 1000))),
                      *HandlerStats().edges)
    if stats is not None:
        stats.add_source(rpc)
    return rpc


def test_the_server_answers_through_the_kernel_counts_each_call_and_echoes_the_request_id(server):
    running, client = server
    live = running.runtime.live()
    for method, (rpc, request) in REQUESTS.items():
        assert kernel_answer(live.kernel, live, rpc, request, "x") is not None, f"{method}: the kernel must answer it"
        call = getattr(client.recommender, method)
        given = call(request, timeout=5, metadata=(("x-request-id", "chat-7"),))
        assert given.request_id == "chat-7"
        made = {call(request, timeout=5).request_id for _ in range(3)}
        assert len(made) == 3 and all(made), "every call without an id gets a new one"
    stats = {m.method.rpartition("/")[2]: m for m in client.admin.GetServerStats(pb.GetServerStatsRequest(),
                                                                                  timeout=5).methods}
    for method in REQUESTS:
        assert stats[method].count == 4 and stats[method].errors == 0
    assert client.admin.GetServerStats(pb.GetServerStatsRequest(), timeout=5).in_flight <= 1  # this call only


def test_request_ids_the_two_paths_make_never_repeat(server):
    """An unknown item goes to the Python path (its NOT_FOUND message is Python's): its
    request id comes from the same counter as the compiled calls' ids."""
    running, client = server
    ids = [client.recommender.GetComplements(REQUESTS["GetComplements"][1], timeout=5).request_id for _ in range(3)]
    with pytest.raises(grpc.RpcError) as e:
        client.recommender.GetComplements(pb.ComplementsRequest(item_ids=["NO-SUCH-ITEM"]), timeout=5)
    assert e.value.code() == grpc.StatusCode.NOT_FOUND and "NO-SUCH-ITEM" in e.value.details()
    ids.append(dict(e.value.trailing_metadata())["x-request-id"])
    ids += [client.recommender.GetComplements(REQUESTS["GetComplements"][1], timeout=5).request_id for _ in range(3)]
    assert len(set(ids)) == 7
    prefixes = {i.rpartition("-")[0] for i in ids}
    assert len(prefixes) == 1, f"one prefix, one counter: {ids}"


@pytest.mark.parametrize("method", list(REQUESTS))
def test_a_kernel_that_raises_leaves_the_call_to_python_and_is_logged_once(server, method, caplog):
    running, _ = server
    real = running.runtime
    broken = dataclasses.replace(real.live(), kernel=_Broken())
    runtime = types.SimpleNamespace(live=lambda: broken, experiments=real.experiments)
    python_calls = []
    stats = HandlerStats()
    rpc = _rpc(runtime, method, lambda request, context: python_calls.append(request) or b"python", stats)
    with caplog.at_level(logging.ERROR, logger="recsvc.server"):
        assert rpc(REQUESTS[method][1], _Context()) == b"python"
        assert rpc(REQUESTS[method][1], _Context()) == b"python"
    assert len(python_calls) == 2
    failed = [r for r in caplog.records if f"compiled {method} failed" in r.getMessage()]
    assert len(failed) == 1 and "kernel bug" in failed[0].exc_text
    assert stats.snapshot() == []  # the Python path records its own calls


@pytest.mark.parametrize("method", list(REQUESTS))
def test_calls_the_compiled_path_does_not_answer_go_to_python(server, method):
    running, _ = server
    real = running.runtime
    live = real.live()
    request = REQUESTS[method][1]
    seen = []
    python = lambda request, context: seen.append(request) or b"python"  # noqa: E731
    # a deadline that passed while the call waited: Python answers DEADLINE_EXCEEDED
    assert _rpc(real, method, python)(request, _Context(remaining=0.0)) == b"python"
    # no model loaded yet: Python answers UNAVAILABLE
    assert _rpc(types.SimpleNamespace(live=lambda: None, experiments=real.experiments), method, python)(
        request, _Context()) == b"python"
    # no kernel (compiled_answers = false)
    plain = dataclasses.replace(live, kernel=None)
    assert _rpc(types.SimpleNamespace(live=lambda: plain, experiments=real.experiments), method, python)(
        request, _Context()) == b"python"
    # a request the kernel leaves to Python (an id it does not know: Python words the error)
    odd = type(request).FromString(request.SerializeToString())
    if method == "Recommend":
        odd.filter.categories.append("no-such-category")
    elif method == "GetComplements":
        odd.item_ids[0] = "NO-SUCH-ITEM"
    else:
        odd.item_id = "NO-SUCH-ITEM"
    assert _rpc(real, method, python)(odd, _Context()) == b"python"
    assert len(seen) == 4
    # and the usual call is the kernel's: the same bytes it writes, the call and its answer counted
    stats = HandlerStats()
    rpc = _rpc(real, method, python, stats)
    for i in range(16):
        rid = f"r-{i}"
        out = rpc(request, _Context(metadata=(("x-request-id", rid),)))
        want = kernel_answer(live.kernel, live, REQUESTS[method][0], request, rid)
        assert out == want[0] and len(seen) == 4
    assert rpc.drain_answers() == {tuple(want[1]): 16} and rpc.drain_answers() == {}
    [m] = stats.snapshot()
    assert m.method == f"/{RECOMMENDER}/{method}" and m.count == 16 and m.errors == 0 and stats.in_flight == 0
    assert 0 < m.p50_ms <= m.max_ms and 0 < m.cpu_p50_ms  # CPU time: one call in 16
    [c] = stats.counts()
    assert c.codes == {"OK": 16} and sum(c.buckets) == 16 and 0 < c.seconds <= 16 * m.max_ms / 1e3
    rpc(request, _Context())
    assert stats.snapshot()[0].count == 17  # counted since the last read, folded in at the next


def test_an_ab_test_on_the_rpc_sends_its_calls_to_python(server):
    """with_test_slots may place a test item in complements, substitutes and recommend
    answers from the model an experiment is bound to; bundles have no slots."""
    running, _ = server
    real = running.runtime
    live = real.live()
    for method, (rpc_name, request) in REQUESTS.items():
        bound = types.SimpleNamespace(model=live.model, by_rpc={rpc_name: ("an experiment",)})
        runtime = types.SimpleNamespace(live=real.live, experiments=types.SimpleNamespace(bound=lambda b=bound: b))
        out = _rpc(runtime, method, lambda request, context: b"python")(request, _Context())
        assert (out == b"python") == (method != "GetBundle"), method
        # bound to another model (a swap is under way): nothing to place from this one
        other = types.SimpleNamespace(model=object(), by_rpc={rpc_name: ("an experiment",)})
        runtime.experiments = types.SimpleNamespace(bound=lambda b=other: b)
        assert _rpc(runtime, method, lambda request, context: b"python")(request, _Context()) != b"python"


def test_only_the_four_chatbot_rpcs_have_a_compiled_path():
    with pytest.raises(ValueError, match="ReportEvents has no compiled path"):
        CompiledRPC(RECOMMENDER, "ReportEvents", None, None, None, ("", iter(())), *HandlerStats().edges)


def test_compiled_calls_reach_prometheus_with_their_answers(tmp_path):
    """recsvc_requests_total and recsvc_answer_items_total count the compiled calls, read
    from the counts CompiledRPC keeps (folded in at each scrape)."""
    from tests.recsvc.test_metrics import free_port, scrape, value

    write_apparel(tmp_path / "model")
    with serving(tmp_path / "model", metrics_port=free_port()) as (running, client):
        for _ in range(3):
            client.recommender.GetComplements(REQUESTS["GetComplements"][1], timeout=5)
        samples = scrape(running.metrics_port)
        labels = dict(service="recsvc.v1.Recommender", method="GetComplements", code="OK")
        assert value(samples, "recsvc_requests_total", **labels) == 3
        items = {k: v for (name, k), v in samples.items() if name == "recsvc_answer_items_total"
                 and ("method", "GetComplements") in k}
        assert sum(items.values()) == 6, items  # 2 items an answer
        assert value(samples, "recsvc_answers_total", method="GetComplements", source="model") == 3
        client.recommender.GetComplements(REQUESTS["GetComplements"][1], timeout=5)
        assert value(scrape(running.metrics_port), "recsvc_requests_total", **labels) == 4
