"""A scheduled retraining run: lock, exit codes, a log line per stage, retention, scheduling."""
from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest

from training import bundle as b
from training.cli import main
from training.retention import prune, remove_leftovers
from training.retrain import RetrainConfig
from training.runlock import LOCK_FILE
from training.schedule import Cron, CronError
from tests.training.shops import shop, write_config, write_inputs
from tests.training.test_bundle import publish

REPO = Path(__file__).resolve().parents[2]


def config(tmp_path: Path, **kw) -> Path:
    orders, catalog = write_inputs(tmp_path / "shop")
    return write_config(tmp_path / "retrain.toml", orders, catalog, tmp_path / "models", **kw)


# ------------------------------------------------------------------------------ runs

def test_a_run_logs_each_stage_and_publishes_with_exit_0(tmp_path, caplog):
    with caplog.at_level(logging.INFO):
        assert main(["run", "--config", str(config(tmp_path))]) == 0
    lines = [r.getMessage() for r in caplog.records]
    for stage in ("lock", "cleanup", "train", "gate", "publish", "retention"):
        assert any(f"stage={stage} " in line for line in lines), stage
    assert any(line.startswith("stage write bundle") for line in lines)  # the training's own stages
    assert any(line.startswith("retrain finished exit=0 (published)") for line in lines)
    assert b.current_version(tmp_path / "models") == b.list_versions(tmp_path / "models")[0]


def test_a_second_run_exits_75_while_the_first_holds_the_lock(tmp_path, capsys):
    cfg = config(tmp_path)
    models = tmp_path / "models"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import time; from training.runlock import run_lock\n"
         f"with run_lock({str(models)!r}):\n    print('locked', flush=True); time.sleep(60)"],
        cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert main(["run", "--config", str(cfg)]) == 75
        assert f"another retraining run holds {models / LOCK_FILE} (pid {holder.pid}" in capsys.readouterr().err
        assert b.list_versions(models) == []
    finally:
        holder.kill()  # the kernel drops a dead holder's lock: no stale lock file to clean up
        holder.wait()
    assert main(["run", "--config", str(cfg)]) == 0


@pytest.mark.parametrize("toml, message", [
    ('catalog = "c.csv"\nmodel_dir = "m"\n', "orders is required"),
    ('orders = "o.csv"\ncatalog = "c.csv"\nmodel_dir = "m"\nkeep = 3\n', "unknown key 'keep'"),
    ('orders = "o.csv"\ncatalog = "c.csv"\nmodel_dir = "m"\nkeep_last = 0\n', "keep_last must be an integer >= 1"),
    ('orders = "o.csv"\nmodel_dir = "m"\n', "catalog is required"),
    ('orders = "o.csv"\ncatalog = "c.csv"\nmodel_dir = "m"\n[train.als]\nfactor = 8\n', "[train]: [als]: unknown key 'factor'"),
])
def test_a_bad_config_exits_2_naming_the_key(tmp_path, capsys, toml, message):
    path = tmp_path / "retrain.toml"
    path.write_text(toml)
    assert main(["run", "--config", str(path)]) == 2
    assert message in capsys.readouterr().err


def test_missing_input_exits_2_and_publishes_nothing(tmp_path, capsys):
    cfg = write_config(tmp_path / "r.toml", tmp_path / "nope.csv", tmp_path / "nope-catalog.csv", tmp_path / "m")
    assert main(["run", "--config", str(cfg)]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert b.list_versions(tmp_path / "m") == []


def test_relative_paths_are_read_from_the_config_files_directory(tmp_path, monkeypatch):
    write_inputs(tmp_path / "shop")
    (tmp_path / "r.toml").write_text('orders = "shop/orders.csv"\ncatalog = "shop/catalog.csv"\nmodel_dir = "m"\n')
    monkeypatch.chdir("/")
    cfg = RetrainConfig.from_toml(tmp_path / "r.toml")
    assert (cfg.orders, cfg.model_dir) == (str(tmp_path / "shop" / "orders.csv"), tmp_path / "m")


@pytest.mark.services
def test_orders_straight_from_the_shop_database(tmp_path, postgres_url):
    orders = shop().orders
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE order_lines (order_id text, user_id text, item_id text, ts timestamp, "
                     "quantity integer, price numeric(10, 2), status text)")
        with conn.cursor().copy("COPY order_lines FROM STDIN") as copy:
            for row in orders.itertuples(index=False):
                copy.write_row(row)
    _, catalog = write_inputs(tmp_path / "shop")
    cfg = write_config(tmp_path / "r.toml", f"{postgres_url}&table=order_lines", catalog, tmp_path / "m")
    assert main(["run", "--config", str(cfg)]) == 0
    manifest = b.read_manifest(tmp_path / "m")
    assert manifest["data_report"]["files"]["orders"]["rows_read"] == len(orders)


def test_an_unreachable_order_database_exits_5(tmp_path, capsys):
    _, catalog = write_inputs(tmp_path / "shop")
    url = "postgresql://shop@127.0.0.1:1/shop?connect_timeout=2&query=" + quote("SELECT * FROM orders")
    cfg = write_config(tmp_path / "r.toml", url, catalog, tmp_path / "m")
    assert main(["run", "--config", str(cfg)]) == 5
    assert "cannot connect to PostgreSQL after 3 attempts" in capsys.readouterr().err
    assert b.list_versions(tmp_path / "m") == []


# ------------------------------------------------------------------------- retention

def reject(model_dir: Path, version: str) -> None:
    (model_dir / "versions" / version / "gate.json").write_text(json.dumps({"verdict": "rejected"}))


def test_retention_keeps_the_last_n_usable_bundles_and_a_few_rejected_ones(tmp_path):
    versions = [publish(tmp_path, make_current=False).name for _ in range(6)]
    b.set_current(tmp_path, versions[3])
    for v in (versions[4], versions[5], versions[0]):
        reject(tmp_path, v)
    pruned = prune(tmp_path, keep_last=2, keep_rejected=1)
    # usable: 1, 2, 3 (current) -> keep 2, 3; rejected: 0, 4, 5 -> keep 5.
    assert b.list_versions(tmp_path) == [versions[2], versions[3], versions[5]]
    assert sorted(pruned.removed) == sorted([versions[0], versions[1], versions[4]])


def test_retention_never_deletes_current_even_after_a_rollback_to_an_old_version(tmp_path):
    versions = [publish(tmp_path).name for _ in range(4)]
    b.set_current(tmp_path, versions[0])
    prune(tmp_path, keep_last=1)
    assert b.list_versions(tmp_path) == [versions[0], versions[3]]
    assert b.load_bundle(tmp_path).version == versions[0]


def test_runs_apply_keep_last(tmp_path):
    cfg = config(tmp_path, extra="keep_last = 2")
    for _ in range(3):
        assert main(["run", "--config", str(cfg)]) == 0
    kept = b.list_versions(tmp_path / "models")
    assert len(kept) == 2 and b.current_version(tmp_path / "models") == kept[-1]


def test_leftovers_of_killed_runs_are_removed_once_stale(tmp_path):
    publish(tmp_path)
    stale, fresh = tmp_path / "versions" / ".tmp-old-abc", tmp_path / "versions" / ".tmp-new-def"
    for d in (stale, fresh):
        d.mkdir()
        (d / "popularity.npy").write_bytes(b"half")
    os.symlink("versions/x", tmp_path / ".current-1234")
    day_ago = time.time() - 86400
    for p in (stale, stale / "popularity.npy"):
        os.utime(p, (day_ago, day_ago))
    os.utime(tmp_path / ".current-1234", (day_ago, day_ago), follow_symlinks=False)
    assert sorted(remove_leftovers(tmp_path)) == [".current-1234", ".tmp-old-abc"]
    assert fresh.exists()  # may belong to a run writing right now


# ---------------------------------------------------------------------------- schedule

@pytest.mark.parametrize("expr, after, expected", [
    ("0 3 * * *", "2025-03-10 02:59", "2025-03-10 03:00"),
    ("0 3 * * *", "2025-03-10 03:00", "2025-03-11 03:00"),
    ("*/15 * * * *", "2025-03-10 10:07", "2025-03-10 10:15"),
    ("30 2 * * mon-fri", "2025-03-07 03:00", "2025-03-10 02:30"),  # Friday night -> Monday
    ("0 0 1 jan,jul *", "2025-03-10 00:00", "2025-07-01 00:00"),
    ("0 0 13 * fri", "2025-06-01 00:00", "2025-06-06 00:00"),  # day 13 OR a Friday, as cron does
    ("0 0 29 2 *", "2025-03-01 00:00", "2028-02-29 00:00"),
    ("@hourly", "2025-12-31 23:30", "2026-01-01 00:00"),
    ("0 12 * * 7", "2025-03-10 00:00", "2025-03-16 12:00"),  # 7 is Sunday too
])
def test_cron_expressions_fire_when_cron_would(expr, after, expected):
    assert Cron.parse(expr).next_after(datetime.fromisoformat(after)) == datetime.fromisoformat(expected)


@pytest.mark.parametrize("expr, message", [
    ("0 3 * *", "needs 5 fields"),
    ("61 3 * * *", "minute field '61'"),
    ("0 3 * * funday", "day of week field 'funday'"),
    ("0 0 31 2 *", "never fires"),
])
def test_bad_cron_expressions_name_the_field(expr, message):
    with pytest.raises(CronError, match=message):
        Cron.parse(expr)


def test_schedule_runs_the_job_and_reports_its_exit_code(tmp_path, caplog):
    cfg = config(tmp_path)
    with caplog.at_level(logging.INFO, logger="recsvc.schedule"):
        assert main(["schedule", "0 3 * * *", "--config", str(cfg), "--run-now", "--max-runs", "1"]) == 0
    assert any(r.getMessage().startswith("schedule: run exited 0") for r in caplog.records)
    assert len(b.list_versions(tmp_path / "models")) == 1  # the child `recsvc-train run` published


class _SignalOnLog(logging.Handler):
    """Delivers a real SIGTERM to this process when the scheduler says it is waiting."""

    def emit(self, record: logging.LogRecord) -> None:
        if "next run at" in record.getMessage():
            os.kill(os.getpid(), signal.SIGTERM)


def test_schedule_refuses_a_bad_config_at_start_and_stops_on_sigterm(tmp_path, caplog, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text('orders = "o.csv"\n')
    assert main(["schedule", "0 3 * * *", "--config", str(bad)]) == 2
    assert "model_dir is required" in capsys.readouterr().err
    trigger, sched_log = _SignalOnLog(), logging.getLogger("recsvc.schedule")
    sched_log.addHandler(trigger)
    try:
        with caplog.at_level(logging.INFO, logger="recsvc.schedule"):
            assert main(["schedule", "0 3 * * *", "--config", str(config(tmp_path))]) == 0
    finally:
        sched_log.removeHandler(trigger)
    messages = [r.getMessage() for r in caplog.records]
    assert any("03:00" in m for m in messages if "next run at" in m)
    assert "schedule: SIGTERM received, stopping" in messages
    assert b.list_versions(tmp_path / "models") == []  # stopped while waiting: nothing ran


def test_the_shipped_example_config_is_valid():
    cfg = RetrainConfig.from_toml(REPO / "deploy" / "retrain.example.toml")
    assert cfg.orders.startswith("postgresql://") and cfg.keep_last == 10
    assert cfg.gate.tolerances["complements/copurchase/NDCG@10"] == 0.05
