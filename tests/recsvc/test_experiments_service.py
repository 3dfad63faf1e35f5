"""A/B slots through the real server and a real channel (catalog: tests/recsvc/bundles.py).

Complements of JKT-1 (limit 5), organic: JEANS-1, TEE-1, BELT-1, then the category
fill (JEANS-2, TEE-2). The test items below are JEANS-2 (already in that list, so
never placed there) and SOCK-1.
"""
from __future__ import annotations

import csv
import io
import json
import math
from datetime import datetime, timedelta, timezone

import grpc
import pytest

from recsvc.v1 import recommender_pb2 as pb
from tests.recsvc.bundles import write_apparel
from tests.recsvc.stores import store_url  # noqa: F401  (fixture: every test on SQLite and PostgreSQL)
from tests.recsvc.test_server import rpc_error, serving

NOW = datetime.now(timezone.utc)
USERS = [f"user-{i}" for i in range(60)]


def definition(**kw) -> str:
    d = dict(name="Socks with jackets", item_ids=["JEANS-2", "SOCK-1"], rpcs=["complements"], slot=2,
             share_pct=100, control_pct=0, top_n=1, starts_at=(NOW - timedelta(hours=1)).isoformat(),
             ends_at=(NOW + timedelta(days=1)).isoformat())
    return json.dumps({**d, **kw})


def arm_of(response: pb.ItemsResponse, slot: int = 2) -> str:
    """What a customer saw in the slot: a test item, control's organic item, or no experiment."""
    item = response.items[slot - 1]
    if item.reason == pb.REASON_TEST_SLOT:
        return "test"
    return "control" if item.exposure_id else "none"


def event(event_id: str, kind=pb.EVENT_TYPE_CLICK, **kw) -> pb.Event:
    return pb.Event(event_id=event_id, type=kind, **kw)


@pytest.fixture
def model_dir(tmp_path):
    write_apparel(tmp_path / "model")
    return tmp_path / "model"


@pytest.fixture
def shop(model_dir, store_url):
    with serving(model_dir, state_url=store_url) as (running, client):
        yield running, client


def test_experiments_are_created_listed_and_invalid_definitions_refused(shop):
    _, c = shop
    created = c.create_experiment(definition())
    assert created.id and created.status == "active" and list(created.item_ids) == ["JEANS-2", "SOCK-1"]
    assert [e.id for e in c.list_experiments()] == [created.id]
    assert c.get_experiment(created.id).name == "Socks with jackets"
    for bad, message in [
        (definition(item_ids=["SOCK-1", "GHOST-9"]), "experiment.item_ids: unknown items GHOST-9"),
        (definition(share_pct=150), "experiment.share_pct: the percent of customers"),
        (definition(ends_at=(NOW - timedelta(days=2)).isoformat()), "experiment.ends_at: "),
        (definition(name="Other", slot=2), "experiment.slot: experiment 'Socks with jackets'"),
        ("rpcs: [complements", "definition: not valid JSON or YAML"),
        (definition(colour="red"), "experiment.colour: unknown field"),
    ]:
        e = rpc_error(lambda: c.create_experiment(bad))
        assert e.code() == grpc.StatusCode.INVALID_ARGUMENT and e.details().startswith(message), e.details()
    assert len(c.list_experiments()) == 1
    assert rpc_error(lambda: c.get_experiment("nope")).code() == grpc.StatusCode.NOT_FOUND


def test_a_test_item_is_shown_in_the_slot_only_in_stock_and_never_twice(shop):
    _, c = shop
    organic = [i.item_id for i in c.complements(["JKT-1"], limit=5).items]  # anonymous: no experiment
    assert organic == ["JEANS-1", "TEE-1", "BELT-1", "JEANS-2", "TEE-2"]
    c.create_experiment(definition())
    r = c.complements(["JKT-1"], limit=5, user="alice")
    assert [i.item_id for i in r.items] == ["JEANS-1", "SOCK-1", "TEE-1", "BELT-1", "JEANS-2"]
    test = r.items[1]
    assert (test.reason, test.in_stock, test.title) == (pb.REASON_TEST_SLOT, True, "Wool socks")
    assert len(test.exposure_id) == 32 and [i.exposure_id for i in r.items if i is not test] == [""] * 4
    # In the cart, or out of stock: no test item and no exposure, the organic list as is.
    in_cart = c.complements(["JKT-1"], limit=5, user="alice", cart=["SOCK-1-one"])
    assert [i.item_id for i in in_cart.items] == organic and not any(i.exposure_id for i in in_cart.items)
    c.update_stock({"SOCK-1": 0})
    sold_out = c.complements(["JKT-1"], limit=5, user="alice")
    assert [i.item_id for i in sold_out.items] == organic and not any(i.exposure_id for i in sold_out.items)


def test_assignment_is_stable_across_a_restart_and_control_sees_the_organic_list(model_dir, store_url):
    with serving(model_dir, state_url=store_url) as (_, c):
        organic = [i.item_id for i in c.complements(["JKT-1"], limit=5).items]
        c.create_experiment(definition(share_pct=60, control_pct=40))
        before = {u: arm_of(c.complements(["JKT-1"], limit=5, user=u)) for u in USERS}
        control = next(u for u, arm in before.items() if arm == "control")
        seen = c.complements(["JKT-1"], limit=5, user=control)
        assert [i.item_id for i in seen.items] == organic and seen.items[1].exposure_id
    assert {"test", "control", "none"} <= set(before.values())
    with serving(model_dir, state_url=store_url) as (_, c):  # a new process state: same database, same salt
        after = {u: arm_of(c.complements(["JKT-1"], limit=5, user=u)) for u in USERS}
    assert after == before


def test_an_anonymous_chat_is_assigned_by_its_session_and_keeps_its_arm(shop):
    _, c = shop
    c.create_experiment(definition(share_pct=100, control_pct=50))
    assert arm_of(c.complements(["JKT-1"], limit=5)) == "none"  # no user, no session: nobody to key on
    arms = {s: arm_of(c.complements(["JKT-1"], limit=5, session=s)) for s in (f"chat-{i}" for i in range(30))}
    assert set(arms.values()) == {"test", "control"}
    assert all(arm_of(c.complements(["JKT-1"], limit=5, session=s)) == arm for s, arm in arms.items())


def test_events_are_idempotent_unknown_ones_rejected_and_the_report_fills_until_stopped(shop):
    _, c = shop
    exp = c.create_experiment(definition(control_pct=50, metric="click"))
    shown = [c.complements(["JKT-1"], limit=5, user=u).items[1] for u in USERS[:20]]
    test = [i for i in shown if i.reason == pb.REASON_TEST_SLOT]
    control = [i for i in shown if i.reason != pb.REASON_TEST_SLOT]
    assert test and control and all(i.exposure_id for i in shown)

    batch = [event(f"click-{n}", exposure_id=i.exposure_id) for n, i in enumerate(test[:2])] \
        + [event("cart-0", pb.EVENT_TYPE_ADD_TO_CART, exposure_id=test[0].exposure_id),
           event("ctl-0", exposure_id=control[0].exposure_id),
           event("ghost-1", exposure_id="f" * 32)]
    first = c.report_events(batch)
    assert (first.accepted, first.duplicates) == (4, 0)
    assert [(x.event_id, x.reason) for x in first.rejected] == [("ghost-1", "unknown exposure")]
    again = c.report_events(batch)  # a retried batch
    assert (again.accepted, again.duplicates, len(again.rejected)) == (0, 4, 1)
    variant = {"SOCK-1": "SOCK-1-one", "TEE-1": "TEE-1-S"}[shown[0].item_id]
    by_user = c.report_events([event("by-user", user_id=USERS[0], item_id=variant)])
    assert by_user.accepted == 1  # user + a variant id: resolved to the product shown

    report = c.experiment_report(exp.id)
    assert sum(r.exposures for r in report.items) == len(test) and report.control.exposures == len(control)
    sock = next(r for r in report.items if r.item_id == "SOCK-1")
    assert sock.exposures == len(test) and sock.clicks >= 2 and sock.add_to_carts == 1
    assert report.effect.test_exposures == len(test) and report.effect.control_conversions >= 1
    assert report.rejected_events == 1 and not math.isnan(sock.rate)
    assert "Stopping rule:" in report.text and "SOCK-1" in report.text

    assert c.complements(["JKT-1"], limit=5, user="late-comer").items[1].exposure_id
    later = c.experiment_report(exp.id)  # while it runs: the new exposure is in already
    assert later.control.exposures + sum(r.exposures for r in later.items) == len(shown) + 1

    stopped = c.set_experiment_status(exp.id, "stop")
    assert stopped.status == "stopped"
    after = c.complements(["JKT-1"], limit=5, user=USERS[0])
    assert not any(i.exposure_id for i in after.items) and after.items[1].reason != pb.REASON_TEST_SLOT
    resume = rpc_error(lambda: c.set_experiment_status(exp.id, "resume"))
    assert resume.code() == grpc.StatusCode.INVALID_ARGUMENT and "is stopped" in resume.details()

    rows = list(csv.DictReader(io.StringIO(c.export_experiment(exp.id))))
    assert [r["item_id"] for r in rows][-1] == "(organic)" and {r["item_id"] for r in rows[:-1]} == {"JEANS-2", "SOCK-1"}
    assert int(next(r for r in rows if r["item_id"] == "SOCK-1")["clicks"]) == sock.clicks


def test_an_oversized_event_batch_is_invalid_argument(shop):
    _, c = shop
    e = rpc_error(lambda: c.report_events([event(f"e{i}", exposure_id="x") for i in range(10_001)]))
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT and e.details().startswith("events: at most 10000")
