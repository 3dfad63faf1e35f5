"""CPU per call of recsvc's handlers in one process, compiled kernel against Python.

    .venv/bin/python -m bench.handler_cost [--passes 3]

Replays bench/serve_load.py's 4,000 requests per RPC (100k-product synthetic model, 20 %
of variants out of stock) through the servicer as the server registers it (request
parsing, request id, handler statistics, metrics, the answer, the response bytes),
without gRPC's own per-call cost (bundles under serve_load's promotion), once with
`compiled_answers` on and once off, in
interleaved passes; the best pass counts (noise only ever slows one). Also: the share
of requests the kernel answers itself (the rest fall back to Python inside the same
call). Thread CPU time, so other jobs on the machine distort it less than wall time.
"""
from __future__ import annotations

import argparse
import pickle
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from bench.serve_load import OUT, out_of_stock_ids, prepare
from recsvc.operations import create_promotion, update_stock
from recsvc.promotions import Promotion
from recsvc.config import Config
from recsvc.interceptors import HandlerStats, ServiceInterceptor
from recsvc.metrics import Metrics
from recsvc.runtime import Runtime
from recsvc.server import recommender_servicer
from recsvc.v1 import recommender_pb2 as pb

RPCS = {"complements": ("GetComplements", pb.ComplementsRequest), "substitutes": ("GetSubstitutes", pb.SubstitutesRequest),
        "bundle": ("GetBundle", pb.BundleRequest), "recommend": ("Recommend", pb.RecommendRequest)}


class _Context:
    """What the servicer reads of a grpc.ServicerContext on the answered path."""

    def invocation_metadata(self):
        return ()

    def time_remaining(self):
        return 10.0


def _servicer(model_dir: Path, state: Path, compiled: bool):
    runtime = Runtime(Config(model_dir=str(model_dir), state_url=f"sqlite:///{state}", compiled_answers=compiled))
    runtime.start()
    stats, metrics = HandlerStats(), Metrics()
    metrics.track_calls(stats)
    return runtime, recommender_servicer(runtime, ServiceInterceptor(stats), metrics)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--passes", type=int, default=3, help="interleaved passes per side; the best counts")
    args = ap.parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    model_dir = OUT / "serve-model"
    _, request_file = prepare(model_dir, fresh=False)
    with open(request_file, "rb") as f:
        raw = pickle.load(f)
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp) / "state.db"
        sides = {name: _servicer(model_dir, state, compiled) for name, compiled in (("python", False), ("compiled", True))}
        live = sides["python"][0].live()  # one store for both sides
        update_stock(live, [(i, 0) for i in out_of_stock_ids(model_dir)])
        now = datetime.now(timezone.utc)
        create_promotion(live.promotions, Promotion(  # as bench/serve_load.py's
            id="bench-set", name="Bench set", item_ids=[], categories=[f"category-{i:03d}" for i in range(0, 200, 2)],
            kind="percent", value=15.0, cap=100.0, starts_at=now - timedelta(hours=1), ends_at=now + timedelta(days=1)))
        for runtime, _ in sides.values():
            runtime.live().inventory.refresh()
            runtime.promotions.refresh()
        ctx = _Context()
        rows = []
        for rpc, (method, cls) in RPCS.items():
            requests = raw[rpc]
            best = {name: float("inf") for name in sides}
            for _ in range(args.passes):
                for name, (_, servicer) in sides.items():
                    handler = getattr(servicer, method)
                    t0 = time.thread_time()
                    for b in requests:
                        handler(cls.FromString(b), ctx)
                    best[name] = min(best[name], (time.thread_time() - t0) / len(requests))
            live = sides["compiled"][0].live()
            stock, prices = live.inventory.view(), live.prices.view()
            kernel_call = getattr(live.kernel, rpc)
            extra = (live.promotions.active(now), now) if rpc == "bundle" else ()
            answered = sum(kernel_call(cls.FromString(b), stock, prices, "x", *extra) is not None for b in requests)
            rows.append((rpc, best["python"] * 1e6, best["compiled"] * 1e6, answered / len(requests)))
        for runtime, _ in sides.values():
            runtime.close()
    print(f"recsvc handler CPU per call, in process, {len(raw['complements'])} requests per RPC, best of {args.passes}\n")
    print("| RPC | Python us/call | compiled us/call | speed-up | answered by the kernel |")
    print("|---|---:|---:|---:|---:|")
    for rpc, py, fast, share in rows:
        print(f"| {rpc} | {py:.0f} | {fast:.0f} | {py / fast:.1f}x | {share:.0%} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
