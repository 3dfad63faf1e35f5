"""`recsvc serve` as a real process (SIGTERM, workers) and `recsvc ask/admin` against it."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest

from recsvc.cli import main
from recsvc.client import Client
from recsvc.v1 import recommender_pb2 as pb
from tests.recsvc.bundles import write_apparel
from tests.recsvc.test_server import sqlite_write_lock

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(model_dir: Path, port: int, *extra: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    env = {**os.environ, "RECSVC_RELOAD_POLL_S": "0.2", "RECSVC_GRACE_S": "5", **(env or {})}
    return subprocess.Popen([sys.executable, "-m", "recsvc.cli", "serve", "--model-dir", str(model_dir),
                             "--host", "127.0.0.1", "--port", str(port), *extra],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def wait_serving(client: Client, proc: subprocess.Popen, timeout: float = 20) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        assert proc.poll() is None, proc.stdout.read()
        try:
            if client.health() == "SERVING":
                return
        except grpc.RpcError:
            pass
        time.sleep(0.1)
    raise AssertionError("server did not start serving")


@pytest.fixture
def server(tmp_path):
    write_apparel(tmp_path / "model")
    port = free_port()
    proc = start(tmp_path / "model", port)
    client = Client(f"127.0.0.1:{port}", timeout=5)
    try:
        wait_serving(client, proc)
        yield tmp_path / "model", port, proc, client
    finally:
        client.close()
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def test_sigterm_lets_in_flight_requests_finish(server):
    model_dir, port, proc, client = server
    with sqlite_write_lock(model_dir / "state.db"):  # the next stock update stalls in the handler
        in_flight = client.admin.UpdateStock.future(
            pb.UpdateStockRequest(levels=[pb.StockLevel(item_id="TEE-1", quantity=2)]), timeout=20)
        time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        assert proc.poll() is None  # still draining
    assert in_flight.result().applied == 1
    assert proc.wait(timeout=10) == 0
    assert "shutting down" in proc.stdout.read()


def test_ask_prints_a_table_with_reasons(server, capsys):
    _, port, _, _ = server
    target = ["--target", f"127.0.0.1:{port}"]
    assert main(["ask", "complements", "JKT-1-M", "--limit", "2", *target]) == 0
    out = capsys.readouterr().out
    assert "JEANS-1" in out and "co-purchase" in out and "bought together in 312 orders" in out
    assert main(["ask", "substitutes", "JKT-1-XL", "--size", "XL", *target]) == 0
    assert "your size XL is in stock" in capsys.readouterr().out
    assert main(["admin", *target, "promotions", "create", "--name", "Denim", "--amount", "10",
                 "--category", "jeans", "--start", "now", "--end", "now+1h"]) == 0
    assert main(["ask", "bundle", "JKT-1-M", *target]) == 0
    out = capsys.readouterr().out
    assert "saving 10.00" in out and "Denim" in out
    assert main(["admin", *target, "stock", "set", "JEANS-1=0"]) == 0
    assert main(["admin", *target, "stock", "get", "JEANS-1"]) == 0
    assert "OUT OF STOCK" in capsys.readouterr().out
    assert main(["ask", "complements", "NOPE", *target]) == 1
    assert "NOT_FOUND" in capsys.readouterr().err


def test_workers_share_the_port_each_on_a_cpu_of_its_own_and_stop_together(tmp_path):
    write_apparel(tmp_path / "model")
    port = free_port()
    proc = start(tmp_path / "model", port, "--workers", "2")
    try:
        with Client(f"127.0.0.1:{port}") as c:
            wait_serving(c, proc)
        pids = set()
        for _ in range(16):  # separate connections land on either worker
            ch = grpc.insecure_channel(f"127.0.0.1:{port}", options=[("grpc.use_local_subchannel_pool", 1)])
            with Client(channel=ch) as c:
                try:
                    pids.add(c.server_stats().pid)
                except grpc.RpcError:
                    pass  # the other worker may still be loading
            ch.close()
        assert len(pids) == 2 and proc.pid not in pids
        cpus = [os.sched_getaffinity(pid) for pid in pids]  # pin_workers: on by default
        assert all(len(c) == 1 for c in cpus)
        if len(os.sched_getaffinity(0)) >= 2:
            assert cpus[0] != cpus[1]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
        for pid in pids:
            with pytest.raises(ProcessLookupError):
                os.kill(pid, 0)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_workers_load_a_bundle_once_and_map_its_model_image(tmp_path):
    """The first worker loads and writes the image, the second maps it; a new bundle is
    loaded by one child process, and both workers map what it wrote."""
    write_apparel(tmp_path / "model", version="v1")
    port, images = free_port(), tmp_path / "images"
    proc = start(tmp_path / "model", port, "--workers", "2", env={"RECSVC_MODEL_IMAGE_DIR": str(images)})
    try:
        with Client(f"127.0.0.1:{port}") as c:
            wait_serving(c, proc)
            write_apparel(tmp_path / "model", version="v2")
            end = time.monotonic() + 30
            while time.monotonic() < end:
                versions = set()
                for _ in range(16):  # separate connections land on either worker
                    ch = grpc.insecure_channel(f"127.0.0.1:{port}", options=[("grpc.use_local_subchannel_pool", 1)])
                    with Client(channel=ch) as each:
                        stats = each.server_stats()
                        versions.add((stats.pid, stats.model_version))
                    ch.close()
                if {v for _, v in versions} == {"v2"} and len(versions) == 2:
                    break
                time.sleep(0.2)
            assert {v for _, v in versions} == {"v2"} and len(versions) == 2, versions
        proc.send_signal(signal.SIGTERM)
        log = proc.communicate(timeout=15)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert sorted(p.name.split("-")[0] for p in images.iterdir()) == ["v1", "v2"]
    assert log.count("wrote model image") == 1 and log.count("made by a child process") == 1, log
    assert log.count("mapped model image") == 2, log  # v1 by the second worker, v2 by the other one


def test_help_explains_the_commands(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "recsvc serve --model-dir DIR" in out and "recsvc ask complements" in out
    assert main(["config"]) == 0 and "RECSVC_MAX_CONCURRENT_RPCS" in capsys.readouterr().out
