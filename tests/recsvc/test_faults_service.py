"""Faults the running service must survive: a bad `current`, an unreadable model
directory, a database that goes away for a moment."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone

import grpc
import pytest

from recsvc.client import Client
from recsvc.store import open_store
from tests.recsvc.bundles import corrupt, write_apparel
from tests.recsvc.netproxy import TcpProxy
from tests.recsvc.test_metrics import free_port, scrape, value
from tests.recsvc.test_server import rpc_error, serving, wait_for
from training.bundle import set_current


def test_a_corrupt_current_keeps_the_old_model_and_health_says_so(tmp_path, caplog):
    with caplog.at_level("ERROR", logger="recsvc.runtime"):
        write_apparel(tmp_path / "model")
        with serving(tmp_path / "model", metrics_port=free_port()) as (running, c):
            good = c.model_info().version
            assert c.health("recsvc.model") == "SERVING"
            bad = write_apparel(tmp_path / "model", make_current=False)
            corrupt(bad)
            set_current(tmp_path / "model", bad.name)
            assert wait_for(lambda: c.health("recsvc.model") == "NOT_SERVING")
            assert c.health() == "SERVING" and c.complements(["JKT-1"], limit=1).model_version == good
            info = c.model_info()
            assert info.current_version == bad.name and "checksum mismatch" in info.last_reload_error
            assert value(scrape(running.metrics_port), "recsvc_model_reload_failing") == 1
            set_current(tmp_path / "model", good)  # the operator rolls back
            assert wait_for(lambda: c.health("recsvc.model") == "SERVING")
            assert value(scrape(running.metrics_port), "recsvc_model_reload_failing") == 0
    refused = [r.getMessage() for r in caplog.records if "refused model bundle" in r.getMessage()]
    assert len(refused) == 1  # once per problem, not at every poll
    assert f"still serving {good}" in refused[0] and "recsvc-train rollback" in refused[0]


def _read_line(proc: subprocess.Popen, pattern: str, timeout: float = 20.0) -> re.Match:
    """The first stderr line matching `pattern` (the server logs to stderr)."""
    found: list[re.Match] = []

    def read():
        for line in proc.stderr:
            if m := re.search(pattern, line):
                found.append(m)
                return

    t = threading.Thread(target=read, daemon=True)
    t.start()
    t.join(timeout)
    assert found, f"no log line matching {pattern!r} within {timeout} s"
    return found[0]


def test_an_unreadable_model_directory_keeps_serving_and_the_log_says_what_to_fix(tmp_path):
    """A real `recsvc serve` process. As root, it runs without the capability to
    override file permissions, so a chmod bites it as it would a service account."""
    model_dir, state = tmp_path / "model", tmp_path / "state"
    write_apparel(model_dir)
    state.mkdir()
    port = free_port()
    cmd = [sys.executable, "-m", "recsvc.cli", "serve", "--model-dir", str(model_dir), "--host", "127.0.0.1",
           "--port", str(port), "--state-url", f"sqlite:///{state}/state.db"]
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without setpriv: a chmod cannot make a directory unreadable")
        drop = "-dac_override,-dac_read_search"
        cmd = [setpriv, f"--bounding-set={drop}", f"--inh-caps={drop}", *cmd]
    env = {**os.environ, "RECSVC_RELOAD_POLL_S": "0.1", "RECSVC_LOG_FORMAT": "text", "OPENBLAS_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env=env, cwd=os.getcwd())
    try:
        _read_line(proc, r"recsvc listening on")
        with Client(f"127.0.0.1:{port}", timeout=5) as c:
            assert wait_for(lambda: c.health() == "SERVING")
            version = c.complements(["JKT-1"], limit=1).model_version
            model_dir.chmod(0)
            try:
                m = _read_line(proc, r"ERROR .*refused model bundle .*")
                assert "Permission denied" in m.group(0) and "read access" in m.group(0)
                assert f"still serving {version}" in m.group(0)
                assert wait_for(lambda: c.health("recsvc.model") == "NOT_SERVING")
                r = c.complements(["JKT-1-M"], limit=2)  # the loaded model answers as before
                assert r.model_version == version and [i.item_id for i in r.items] == ["JEANS-1", "TEE-1"]
                assert c.health() == "SERVING" and "Permission denied" in c.model_info().last_reload_error
            finally:
                model_dir.chmod(0o755)
            assert wait_for(lambda: c.health("recsvc.model") == "SERVING")
    finally:
        proc.terminate()
        assert proc.wait(10) == 0


@pytest.fixture
def pg_proxy(postgres_url):
    """The service's PostgreSQL URL through a proxy the test can cut, and the direct URL."""
    port = int(re.search(r"@[^:/]+:(\d+)/", postgres_url).group(1))
    with TcpProxy(port) as proxy:
        yield proxy, re.sub(r"@[^/]+/", f"@127.0.0.1:{proxy.port}/", postgres_url, count=1), postgres_url


def test_a_database_outage_refuses_writes_with_unavailable_and_loses_nothing_acknowledged(tmp_path, pg_proxy):
    proxy, via_proxy, direct = pg_proxy
    write_apparel(tmp_path / "model")
    acknowledged: dict[str, int] = {}
    with serving(tmp_path / "model", state_url=via_proxy) as (running, c):
        c.update_stock({"JEANS-1-30": 1})
        acknowledged["JEANS-1-30"] = 1
        proxy.cut()
        t0 = time.monotonic()
        e = rpc_error(lambda: c.update_stock({"JEANS-1-32": 2}))
        assert e.code() == grpc.StatusCode.UNAVAILABLE and "failed after 4 attempts" in e.details()
        assert time.monotonic() - t0 < 5  # refused within a chatbot's patience, not hung
        now = datetime.now(timezone.utc)
        e = rpc_error(lambda: c.create_promotion(name="x", kind="percent", value=5, categories=["jeans"],
                                                 starts_at=now, ends_at=now + timedelta(days=1)))
        assert e.code() == grpc.StatusCode.UNAVAILABLE
        assert c.complements(["JKT-1"], limit=1).items  # reads keep answering from memory
        proxy.restore()
        # a write that starts while the link is down is retried and goes through once it is back
        result: list = []
        proxy.cut()
        writer = threading.Thread(target=lambda: result.append(c.update_stock({"TEE-1-S": 3})))
        writer.start()
        time.sleep(0.2)
        proxy.restore()
        writer.join()
        assert result and result[0].applied == 1
        acknowledged["TEE-1-S"] = 3
        assert wait_for(lambda: c.update_stock({"JEANS-2-30": 4}).applied == 1)
        acknowledged["JEANS-2-30"] = 4
    with open_store(direct) as store:  # straight to the database, after the server is gone
        stored = store.all_stock()
    assert {k: stored.get(k) for k in acknowledged} == acknowledged and "JEANS-1-32" not in stored
