"""`recsvc experiments ...` against a real server: the merchandiser's whole loop."""
from __future__ import annotations

import csv
from datetime import datetime, timedelta, timezone

import pytest

from recsvc.cli import main
from recsvc.v1 import recommender_pb2 as pb
from tests.recsvc.bundles import write_apparel
from tests.recsvc.test_server import serving

NOW = datetime.now(timezone.utc)
SPRING = f"""\
name: Spring socks
item_ids: [SOCK-1, JEANS-3]
rpcs: [complements]
slot: 2
share_pct: 100
control_pct: 0
top_n: 1
metric: click
starts_at: {(NOW - timedelta(hours=1)).isoformat()}
ends_at: {(NOW + timedelta(days=14)).isoformat()}
"""


@pytest.fixture
def shop(tmp_path):
    write_apparel(tmp_path / "model")
    with serving(tmp_path / "model") as (running, client):
        yield running, client


def run(capsys, running, *argv: str) -> tuple[int, str, str]:
    code = main(["experiments", *argv, "--target", f"127.0.0.1:{running.port}"])
    out, err = capsys.readouterr()
    return code, out, err


def test_create_list_show_report_stop_and_export_from_the_command_line(shop, capsys, tmp_path):
    running, c = shop
    (tmp_path / "spring.yaml").write_text(SPRING)
    code, out, _ = run(capsys, running, "create", str(tmp_path / "spring.yaml"))
    assert code == 0 and out.startswith("created experiment ")
    exp_id = out.split()[2]
    assert "test items  SOCK-1, JEANS-3" in out and "complements, slot 2" in out

    code, out, _ = run(capsys, running, "list")
    header, row = out.splitlines()
    assert header.split()[:4] == ["id", "name", "status", "rpcs"] and row.startswith(exp_id)
    assert "Spring socks" in row and "active" in row and "SOCK-1, JEANS-3" in row

    code, out, _ = run(capsys, running, "report", exp_id)
    assert code == 0 and "Spring socks" in out and "Stopping rule: NOT SETTLED" in out

    shown = c.complements(["JKT-1"], limit=5, user="carol").items[1]
    assert shown.reason == pb.REASON_TEST_SLOT
    c.report_events([pb.Event(event_id="c1", type=pb.EVENT_TYPE_CLICK, exposure_id=shown.exposure_id)])
    code, out, _ = run(capsys, running, "report", exp_id)
    line = next(x for x in out.splitlines() if x[2:].startswith(shown.item_id))
    assert line[2:].split()[1:3] == ["1", "1"]  # the report filled: 1 exposure, 1 click

    assert run(capsys, running, "pause", exp_id)[1].strip().endswith("paused: now paused")
    assert run(capsys, running, "show", exp_id)[1].splitlines()[2] == "status      paused"
    code, out, _ = run(capsys, running, "stop", exp_id)
    assert out.strip().endswith("stopped: now stopped")

    code, out, _ = run(capsys, running, "export", exp_id, "-o", str(tmp_path / "spring.csv"))
    assert out.strip() == f"wrote 3 row(s) to {tmp_path / 'spring.csv'}"
    with open(tmp_path / "spring.csv") as f:
        rows = list(csv.DictReader(f))
    assert [(r["item_id"], r["exposures"], r["clicks"]) for r in rows][0] == (shown.item_id, "1", "1")


def test_a_refused_definition_says_what_to_fix(shop, capsys, tmp_path):
    running, _ = shop
    (tmp_path / "bad.json").write_text('{"name": "x", "item_ids": ["SOCK-1"], "rpcs": ["complements"], '
                                       '"slot": 1, "share_pct": 120, "starts_at": "2025-01-01T00:00:00Z", '
                                       '"ends_at": "2099-01-01T00:00:00Z", "top_n": 1}')
    code, out, err = run(capsys, running, "create", str(tmp_path / "bad.json"))
    assert code == 1 and out == ""
    assert err.startswith("error: INVALID_ARGUMENT: experiment.share_pct: the percent of customers")
    code, _, err = run(capsys, running, "show", "nope")
    assert code == 1 and err.startswith("error: NOT_FOUND: id: no experiment 'nope'")
    code, out, _ = run(capsys, running, "list")
    assert out.strip() == "no experiments"
    code, out, _ = run(capsys, running, "create", "--name", "Flags", "--item", "SOCK-1", "--slot", "2",
                       "--share", "25", "--top-n", "1")
    assert code == 0 and "25% take part, 20% of them in control" in out
