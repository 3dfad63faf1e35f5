"""The real server on a free port, spoken to through a real channel."""
from __future__ import annotations

import queue
import sqlite3
import threading
import time
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone

import grpc
import pytest
from google.protobuf.descriptor_pool import DescriptorPool
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

from recsvc.client import Client
from recsvc.config import Config
from recsvc.interceptors import HandlerStats, ServiceInterceptor
from recsvc.server import build_server
from recsvc.v1 import recommender_pb2 as pb
from tests.recsvc.bundles import corrupt, write_apparel
from training.bundle import set_current

FAST = dict(reload_poll_s=0.1, refresh_s=0.1, slow_refresh_s=0.2, grace_s=2.0)


@contextmanager
def serving(model_dir, **cfg):
    settings = {**FAST, **cfg}
    running = build_server(Config(model_dir=str(model_dir), host="127.0.0.1", port=0, **settings))
    client = Client(f"127.0.0.1:{running.port}", timeout=5)
    try:
        yield running, client
    finally:
        client.close()
        running.stop(grace=1)


def wait_for(predicate, timeout=5.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def rpc_error(call) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as e:
        call()
    return e.value


@pytest.fixture
def shop(tmp_path):
    write_apparel(tmp_path / "model")
    with serving(tmp_path / "model") as (running, client):
        yield running, client


def test_every_rpc_answers_with_version_and_request_id(shop):
    running, c = shop
    version = running.runtime.live().model.version
    r = c.complements(["JKT-1-M"], limit=2, request_id="chat-42")
    assert [i.item_id for i in r.items] == ["JEANS-1", "TEE-1"]
    assert r.items[0].reason == pb.REASON_CO_PURCHASE and r.items[0].explanation == "bought together in 312 orders"
    assert (r.model_version, r.request_id) == (version, "chat-42")
    s = c.substitutes("JKT-1-XL", size="XL")
    assert [(i.item_id, i.variant_id) for i in s.items] == [("JKT-2", "JKT-2-XL"), ("JKT-NEW", "JKT-NEW-XL")]
    assert s.request_id and s.request_id != r.request_id
    b = c.bundle("JKT-1-M")
    assert (b.anchor.variant_id, [i.item_id for i in b.items], b.list_price, b.saving) == ("JKT-1-M", ["JEANS-1"], 160, 0)
    assert not b.HasField("promotion") and "no promotion" in b.explanation
    rec = c.recommend(user="alice", limit=2)
    assert [i.item_id for i in rec.items] == ["TEE-1", "TEE-2"] and rec.items[0].reason == pb.REASON_PERSONAL
    assert c.model_info().version == version and c.model_info().products == 12


@pytest.mark.parametrize("call, code, text", [
    (lambda c: c.complements([]), grpc.StatusCode.INVALID_ARGUMENT, "item_ids: must name at least one item"),
    (lambda c: c.complements(["JKT-1", ""]), grpc.StatusCode.INVALID_ARGUMENT, "item_ids[1]: must not be empty"),
    (lambda c: c.complements(["JKT-1"], limit=0), grpc.StatusCode.INVALID_ARGUMENT, "limit: must be within 1..100"),
    (lambda c: c.recommend(limit=101), grpc.StatusCode.INVALID_ARGUMENT, "limit: must be within 1..100"),
    (lambda c: c.substitutes("JKT-1", min_price=50, max_price=10), grpc.StatusCode.INVALID_ARGUMENT,
     "filter.min_price: must not exceed filter.max_price"),
    (lambda c: c.substitutes(""), grpc.StatusCode.INVALID_ARGUMENT, "item_id: must name an item"),
    (lambda c: c.bundle("JKT-1", max_items=0), grpc.StatusCode.INVALID_ARGUMENT, "max_items"),
    (lambda c: c.complements(["JKT-1", "GHOST-9"]), grpc.StatusCode.NOT_FOUND, "'GHOST-9'"),
    (lambda c: c.update_stock({"GHOST-9": 1}), grpc.StatusCode.NOT_FOUND, "GHOST-9"),
    (lambda c: c.update_prices({"JKT-1": -5}), grpc.StatusCode.INVALID_ARGUMENT, "prices[0].price"),
    (lambda c: c.create_promotion(name="x", kind="percent", value=10, categories=["jeans"],
                                  starts_at=datetime(2030, 1, 2), ends_at=datetime(2030, 1, 1)),
     grpc.StatusCode.INVALID_ARGUMENT, "promotion.ends_at"),
])
def test_bad_requests_get_a_status_naming_the_field_or_id(shop, call, code, text):
    _, c = shop
    e = rpc_error(lambda: call(c))
    assert e.code() == code and text in e.details()


def test_stock_changes_act_on_the_next_request_and_survive_a_restart(tmp_path):
    write_apparel(tmp_path / "model")
    with serving(tmp_path / "model") as (_, c):
        assert c.complements(["JKT-1"], limit=1).items[0].item_id == "JEANS-1"
        assert c.update_stock({"JEANS-1": 0}).applied == 1
        assert c.complements(["JKT-1"], limit=1).items[0].item_id == "TEE-1"
        assert c.get_stock(["JEANS-1", "JEANS-1-32", "TEE-1"]) == {"JEANS-1": False, "JEANS-1-32": False, "TEE-1": True}
        c.update_prices({"TEE-1-M": 15.0})
    with serving(tmp_path / "model") as (_, c):  # a new process reads the same SQLite state
        assert c.get_stock(["JEANS-1"]) == {"JEANS-1": False}
        assert c.complements(["JKT-1"], limit=1).items[0].price == 15.0  # "from" price of TEE-1
        c.update_stock({"JEANS-1-32": 3})
        assert c.complements(["JKT-1"], limit=1).items[0].item_id == "JEANS-1"


def test_promotions_apply_within_their_time_window(shop):
    _, c = shop
    now = datetime.now(timezone.utc)
    active = c.create_promotion(name="Denim days", kind="percent", value=50, cap=25, categories=["jeans"],
                                starts_at=now - timedelta(hours=1), ends_at=now + timedelta(hours=1))
    c.create_promotion(name="Later", kind="amount", value=40, item_ids=["JEANS-1"], priority=9,
                       starts_at=now + timedelta(hours=1), ends_at=now + timedelta(hours=2))
    assert [p.name for p in c.list_promotions(active_only=True)] == ["Denim days"]
    assert len(c.list_promotions()) == 2
    b = c.bundle("JKT-1-M")
    assert (b.list_price, b.saving, b.bundle_price) == (160, 25, 135)  # 50 % capped at 25
    assert b.promotion.id == active.id and b.valid_until.ToDatetime(tzinfo=timezone.utc) > now
    assert [p.name for p in c.list_promotions(active_only=True, at=now + timedelta(minutes=90))] == ["Later"]
    assert c.delete_promotion(active.id) and not c.delete_promotion(active.id)
    assert c.bundle("JKT-1-M").saving == 0


def test_not_serving_until_a_model_arrives_then_hot_reload(tmp_path):
    model_dir = tmp_path / "model"
    with serving(model_dir) as (running, c):
        assert c.health() == "NOT_SERVING" and c.health("recsvc.v1.Admin") == "SERVING"
        e = rpc_error(lambda: c.complements(["JKT-1"]))
        assert e.code() == grpc.StatusCode.UNAVAILABLE and "no model is loaded yet" in e.details()
        first = write_apparel(model_dir).name
        assert wait_for(lambda: c.health() == "SERVING")
        assert c.complements(["JKT-1"], limit=1).model_version == first
        # a retrained bundle where TEE-1 leads: picked up without a restart
        from tests.recsvc.bundles import arrays
        a = arrays()
        a["complements_idx"][0, :2] = a["complements_idx"][0, [1, 0]]
        second = write_apparel(model_dir, changes={"complements_idx": a["complements_idx"]}).name
        assert wait_for(lambda: c.complements(["JKT-1"], limit=1).model_version == second)
        assert c.complements(["JKT-1"], limit=1).items[0].item_id == "TEE-1"
        assert running.runtime.status.swaps == 2


def test_a_corrupt_bundle_is_refused_and_the_old_one_keeps_serving(shop, tmp_path):
    running, c = shop
    good = c.model_info().version
    bad = write_apparel(tmp_path / "model", make_current=False)
    corrupt(bad)
    set_current(tmp_path / "model", bad.name)
    r = c.reload()
    assert not r.changed and r.model_version == good and "checksum mismatch" in r.message
    info = c.model_info()
    assert info.version == good and info.current_version == bad.name and "checksum" in info.last_reload_error
    assert c.complements(["JKT-1"], limit=1).model_version == good and c.health() == "SERVING"


def test_swaps_under_load_fail_no_request(shop, tmp_path):
    running, c = shop
    errors, done, stop = [], [], threading.Event()

    def load():
        with Client(f"127.0.0.1:{running.port}") as own:
            while not stop.is_set():
                try:
                    own.complements(["JKT-1-M"], limit=3)
                    done.append(1)
                except grpc.RpcError as e:
                    errors.append(e.code())

    threads = [threading.Thread(target=load, daemon=True) for _ in range(3)]
    for t in threads:
        t.start()
    served = []
    try:
        for _ in range(4):
            version = write_apparel(tmp_path / "model").name
            c.reload()  # or the watcher got there first
            served.append(c.model_info().version == version)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert errors == [] and len(done) > 20 and all(served)
    assert running.runtime.status.swaps == 5


def test_reflection_describes_every_rpc(shop):
    running, _ = shop
    with grpc.insecure_channel(f"127.0.0.1:{running.port}") as ch:
        db = ProtoReflectionDescriptorDatabase(ch)
        services = set(db.get_services())
        assert {"recsvc.v1.Recommender", "recsvc.v1.Admin", "grpc.health.v1.Health"} <= services
        pool = DescriptorPool(db)
        rec = pool.FindServiceByName("recsvc.v1.Recommender")
        assert {m.name for m in rec.methods} == {"GetComplements", "GetSubstitutes", "GetBundle", "Recommend",
                                               "ReportEvents"}
        assert pool.FindMessageTypeByName("recsvc.v1.Filter").fields_by_name["attributes"]


@contextmanager
def sqlite_write_lock(path):
    """Hold the state database's write lock, as a stalled writer would."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN EXCLUSIVE")
    try:
        yield
    finally:
        conn.execute("ROLLBACK")
        conn.close()


def _one_stock_level() -> pb.UpdateStockRequest:
    return pb.UpdateStockRequest(levels=[pb.StockLevel(item_id="TEE-1", quantity=1)])


def test_overload_is_refused_at_once_and_deadlines_are_honoured(tmp_path):
    write_apparel(tmp_path / "model")
    with serving(tmp_path / "model", max_concurrent_rpcs=6) as (running, c):
        with sqlite_write_lock(tmp_path / "model" / "state.db"):
            stalled = [c.admin.UpdateStock.future(_one_stock_level(), timeout=30) for _ in range(4)]
            time.sleep(0.3)  # they hold the four threads Admin calls run on
            t0 = time.monotonic()
            e = rpc_error(lambda: c.admin.UpdateStock(_one_stock_level(), timeout=0.3))
            assert e.code() == grpc.StatusCode.DEADLINE_EXCEEDED and time.monotonic() - t0 < 1
            queued = c.admin.UpdateStock.future(_one_stock_level(), timeout=30)
            time.sleep(0.1)
            t1 = time.monotonic()  # admitted: the four stalled calls, the expired one, the queued one
            e = rpc_error(lambda: c.complements(["JKT-1"]))
            assert e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and time.monotonic() - t1 < 0.2
        assert [f.result().applied for f in stalled + [queued]] == [1] * 5  # all finish once the stall ends
        assert c.complements(["JKT-1"]).items  # and the server recovers by itself
        updates = {s.method: s for s in c.server_stats().methods}["/recsvc.v1.Admin/UpdateStock"]
        assert updates.count == 5  # the expired call never ran


def test_a_stalled_admin_call_or_an_open_reflection_stream_does_not_hold_up_the_chatbot(tmp_path):
    """The chatbot's calls have their own handler thread (one, by default): a stock
    upload waiting on the store, or a tool keeping a reflection stream open, runs on
    another pool."""
    from grpc_reflection.v1alpha import reflection_pb2

    write_apparel(tmp_path / "model")
    with serving(tmp_path / "model", threads=1) as (running, c):
        with sqlite_write_lock(tmp_path / "model" / "state.db"):
            stalled = c.admin.UpdateStock.future(_one_stock_level(), timeout=30)
            with grpc.insecure_channel(f"127.0.0.1:{running.port}") as ch:
                ask = queue.Queue()
                info = ch.stream_stream("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
                                        request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
                                        response_deserializer=reflection_pb2.ServerReflectionResponse.FromString)
                replies = info(iter(ask.get, None), timeout=30)
                ask.put(reflection_pb2.ServerReflectionRequest(list_services=""))
                assert next(replies).list_services_response.service  # open, and its handler waits for more
                time.sleep(0.2)
                t0 = time.monotonic()
                assert c.complements(["JKT-1"]).items and c.recommend(user="C1").items
                assert time.monotonic() - t0 < 1 and not stalled.done()
                ask.put(None)
        assert stalled.result().applied == 1


def test_an_internal_error_fails_one_call_not_the_server():
    """The interceptor under a real server, with a handler that has a bug."""
    def handler(request, context):
        if request == b"boom":
            raise ZeroDivisionError("a bug")
        return request

    server = grpc.server(__import__("concurrent.futures").futures.ThreadPoolExecutor(2),
                         interceptors=[ServiceInterceptor(HandlerStats())])
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
        "t.T", {"Echo": grpc.unary_unary_rpc_method_handler(handler)}),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
            echo = ch.unary_unary("/t.T/Echo")
            with pytest.raises(grpc.RpcError) as e:
                echo(b"boom", timeout=5, metadata=(("x-request-id", "r-1"),))
            assert e.value.code() == grpc.StatusCode.INTERNAL and "request id r-1" in e.value.details()
            assert ("x-request-id", "r-1") in e.value.trailing_metadata()
            assert echo(b"fine", timeout=5) == b"fine"
    finally:
        server.stop(0)


def test_replicas_share_stock_and_promotions_through_postgres(tmp_path, postgres_url):
    write_apparel(tmp_path / "model")
    with serving(tmp_path / "model", state_url=postgres_url) as (_, a), \
            serving(tmp_path / "model", state_url=postgres_url) as (_, b):
        a.update_stock({"JEANS-1": 0})
        assert wait_for(lambda: b.complements(["JKT-1"], limit=1).items[0].item_id == "TEE-1", 3)
        now = datetime.now(timezone.utc)
        a.create_promotion(name="Shared", kind="amount", value=10, categories=["jeans", "shirts"],
                           starts_at=now - timedelta(minutes=1), ends_at=now + timedelta(hours=1))
        assert wait_for(lambda: b.bundle("JKT-1").saving == 10, 3)
