"""bench/loadgen.c, the benchmark's load generator, against the real server: it must
read every answer's status right, or the benchmark's figures mean nothing."""
from __future__ import annotations

import collections
import json
import shutil
import subprocess

import numpy as np
import pytest

from bench.serve_load import build_loadgen, write_requests
from recsvc.config import Config
from recsvc.server import build_server
from recsvc.v1 import recommender_pb2 as pb
from tests.recsvc.bundles import write_apparel

pytestmark = pytest.mark.skipif(shutil.which("cc") is None, reason="bench/loadgen.c needs a C compiler (cc)")

REQUESTS = [pb.ComplementsRequest(item_ids=["JKT-1"], limit=3),  # answered
            pb.ComplementsRequest(item_ids=["NO-SUCH-ITEM"]),  # NOT_FOUND
            pb.ComplementsRequest(item_ids=["JKT-1"], limit=1000)]  # INVALID_ARGUMENT: limit outside 1..100


@pytest.fixture(scope="module")
def generator(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("loadgen")
    write_apparel(tmp / "model")
    running = build_server(Config(model_dir=str(tmp / "model"), host="127.0.0.1", port=0))
    write_requests(tmp / "requests.bin", [r.SerializeToString() for r in REQUESTS])
    exe = build_loadgen(tmp)

    def run(*options: str) -> dict:
        out = subprocess.run([str(exe), f"--target=127.0.0.1:{running.port}", f"--requests={tmp / 'requests.bin'}",
                              "--method=/recsvc.v1.Recommender/GetComplements", "--channels=2", *options],
                             capture_output=True, text=True, timeout=60, check=True)
        return json.loads(out.stdout)
    yield run
    running.stop(grace=1)


def test_closed_loop_reads_each_calls_status_from_the_trailers(generator):
    r = generator("--mode=closed", "--concurrency=1", "--duration=0.5")
    codes = r["codes"]  # one caller: the requests in turn
    assert len(codes) > 30 and codes[:6] == ["OK", "NOT_FOUND", "INVALID_ARGUMENT"] * 2
    counts = collections.Counter(codes)
    assert set(counts) == {"OK", "NOT_FOUND", "INVALID_ARGUMENT"} and max(counts.values()) - min(counts.values()) <= 1
    assert len(r["latencies"]) == len(r["offsets"]) == len(r["lags"]) == len(codes)
    assert 0 < min(r["latencies"]) and r["cpu_s"] > 0 and r["elapsed"] >= 0.5


def test_open_loop_keeps_its_schedule_and_measures_from_it(generator):
    r = generator("--mode=open", "--phases=400:0.5,100:0.5", "--concurrency=1")
    offsets = np.array(r["offsets"])
    assert 245 <= len(offsets) <= 255  # 400/s for 0.5 s, then 100/s for 0.5 s
    gaps = np.diff(offsets)
    assert np.allclose(gaps[:190], 1 / 400, atol=1e-6) and np.allclose(gaps[-40:], 1 / 100, atol=1e-6)
    assert set(r["codes"]) == {"OK", "NOT_FOUND", "INVALID_ARGUMENT"}
    assert np.all(np.array(r["latencies"]) >= np.array(r["lags"]))  # from the scheduled start, lag included


def test_a_server_that_is_not_there_is_a_clear_failure(tmp_path):
    write_requests(tmp_path / "r.bin", [b""])
    exe = build_loadgen(tmp_path)
    out = subprocess.run([str(exe), "--target=127.0.0.1:1", f"--requests={tmp_path / 'r.bin'}", "--method=/x.Y/Z"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode != 0 and "connect" in out.stderr
