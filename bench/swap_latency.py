"""From `current` changing to the server answering with the new model_version, under load.

A real `recsvc serve` (1..N workers) on two synthetic bundles; client threads send
GetComplements without pause while `current` moves to a new version (a hard-linked copy
of one of the two under a new id: never loaded before, as after a retraining). Per
swap: seconds until the first answer names the new version, seconds until the last
answer naming the old one (every worker switched), and the requests that failed in the
whole run. Target (issue 5): <= 5 s, zero failed.

  .venv/bin/python -m bench.swap_latency [--workers 1 2] [--swaps 3] [--products 100000]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from bench.serve_load import drop_images, free_port, resolve_current, workers_serving
from bench.serve_synthetic import remove_copies, retrained, write_synthetic
from recsvc.client import Client
from recsvc.config import Config
from recsvc.v1 import recommender_pb2 as pb
from training.bundle import list_versions, set_current

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"


@dataclass
class Load:
    """Answers as (time, version) and failures, from several client threads."""
    port: int
    answers: list[tuple[float, str]] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self, threads: int) -> list[threading.Thread]:
        ts = [threading.Thread(target=self._client, args=(i,), daemon=True) for i in range(threads)]
        for t in ts:
            t.start()
        return ts

    def _client(self, i: int) -> None:
        with grpc.insecure_channel(f"127.0.0.1:{self.port}") as ch:  # a channel each: spread over workers
            call = ch.unary_unary("/recsvc.v1.Recommender/GetComplements",
                                  request_serializer=pb.ComplementsRequest.SerializeToString,
                                  response_deserializer=pb.ItemsResponse.FromString)
            n = 0
            while not self.stop.is_set():
                n += 1
                try:
                    r = call(pb.ComplementsRequest(item_ids=[f"P{(i * 7919 + n) % 1000:06d}"], limit=10), timeout=5)
                    self.answers.append((time.time(), r.model_version))
                except grpc.RpcError as e:
                    self.failed.append(f"{e.code().name}: {e.details()}")


def start(model_dir: Path, port: int, workers: int) -> subprocess.Popen:
    env = {**os.environ, "RECSVC_LOG_LEVEL": "WARNING", "OPENBLAS_NUM_THREADS": "1",
           "RECSVC_STATE_URL": f"sqlite:///{OUT / 'swap-state.db'}"}
    proc = subprocess.Popen([sys.executable, "-m", "recsvc.cli", "serve", "--model-dir", str(model_dir),
                             "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)], cwd=ROOT, env=env)
    with Client(f"127.0.0.1:{port}") as c:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if c.health() == "SERVING" and workers_serving(port, workers, resolve_current(model_dir).name, 120):
                    return proc  # every worker serves `current` (they load in turn)
            except grpc.RpcError:
                pass
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("recsvc did not start")


def measure(model_dir: Path, versions: list[str], workers: int, swaps: int, clients: int) -> list[list[str]]:
    set_current(model_dir, versions[0])
    port = free_port()
    proc = start(model_dir, port, workers)
    load = Load(port)
    threads = load.run(clients)
    rows = []
    try:
        time.sleep(1.0)
        old = versions[0]
        for n in range(swaps):
            new = retrained(model_dir, versions[(n + 1) % 2])  # never loaded before: a full load
            t0 = time.time()
            set_current(model_dir, new)
            # until every worker serves it (a fixed 8 s window printed nan when a swap took
            # longer), then a second more: an answer still naming the old one would show
            switched = workers_serving(port, workers, new, 60)
            time.sleep(1.0)
            window = [(t, v) for t, v in list(load.answers) if t >= t0]
            first = min((t for t, v in window if v == new), default=float("nan")) - t0
            last_old = max((t for t, v in window if v == old), default=t0) - t0
            rows.append([str(workers), f"{n + 1}", f"{first:.2f}" if switched else "> 60", f"{last_old:.2f}",
                         f"{len(window):,}", str(len(load.failed))])
            old = new
    finally:
        load.stop.set()
        for t in threads:
            t.join()
        proc.terminate()
        proc.wait(30)
        set_current(model_dir, versions[0])
        remove_copies(model_dir)
        drop_images(model_dir)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--swaps", type=int, default=3)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--products", type=int, default=100_000)
    ap.add_argument("--model-dir", type=Path, default=OUT / "swap-model")
    args = ap.parse_args()
    remove_copies(args.model_dir)  # an interrupted run's
    versions = list_versions(args.model_dir)[-2:]
    if len(versions) < 2:
        print(f"writing two {args.products:,}-product synthetic bundles to {args.model_dir} ...", flush=True)
        kw = dict(n_products=args.products, n_users=args.products)
        versions = [write_synthetic(args.model_dir, seed=s, **kw).name for s in (7, 8)]
    print(f"reload_poll_s = {Config().reload_poll_s} (default), {args.clients} client threads, GetComplements\n")
    header = ["workers", "swap", "first new answer s", "last old answer s", "answers after flip", "failed (run)"]
    rows = [r for w in args.workers for r in measure(args.model_dir, versions, w, args.swaps, args.clients)]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print("| " + " | ".join(c.rjust(w) for c, w in zip(r, widths)) + " |")


if __name__ == "__main__":
    main()
