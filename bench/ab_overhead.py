"""Serving latency with an active A/B experiment vs without, side by side in one run.

Two real servers in this process load the same synthetic shop (bench/serve_synthetic.py,
100k products by default), each with its own state database: "plain" has no
experiment, "experiment" one running on complements, substitutes and recommend (slot
3, 10 test items, `--share` of customers, 20 % of them control; even or Thompson
allocation). One client per server, over a real gRPC channel, sends the same request
sequence (random anchors, random known customers: every request carries a user id, so
the experiment assigns each one) one at a time, alternating blocks of `--block`
requests between the servers, so drift (CPU frequency, other load) hits both alike.
Latency is client-side wall time per call. Client and servers share one Python
process (and the GIL), which inflates both columns equally; it is a ratio, not an
absolute figure (bench/serve_load.py measures those).

Run:  .venv/bin/python -m bench.ab_overhead [--requests 6000] [--share 100]
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

from bench.serve_synthetic import write_synthetic
from recsvc.client import Client
from recsvc.config import Config
from recsvc.server import build_server


def _calls(c: Client, rng: np.random.Generator, n: int, n_products: int, n_users: int):
    kinds = rng.integers(0, 3, n)
    anchors = rng.integers(0, n_products, n)
    users = rng.integers(0, n_users, n)
    for k, a, u in zip(kinds.tolist(), anchors.tolist(), users.tolist()):
        user = f"U{u:06d}"
        if k == 0:
            yield lambda a=a, user=user: c.complements([f"P{a:06d}"], user=user)
        elif k == 1:
            yield lambda a=a, user=user: c.substitutes(f"P{a:06d}", user=user)
        else:
            yield lambda user=user: c.recommend(user=user)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--products", type=int, default=100_000)
    ap.add_argument("--requests", type=int, default=6000, help="per server")
    ap.add_argument("--block", type=int, default=200, help="requests per server before switching")
    ap.add_argument("--share", type=float, default=100.0, help="percent of customers in the experiment")
    ap.add_argument("--allocation", choices=["even", "thompson"], default="thompson")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tmp) / "model"
        write_synthetic(model, n_products=args.products, n_users=min(args.products, 100_000))
        servers, clients = {}, {}
        for name in ("plain", "experiment"):
            cfg = Config(model_dir=str(model), host="127.0.0.1", port=0, state_url=f"sqlite:///{tmp}/{name}.db",
                         experiments_refresh_s=1.0)
            servers[name] = build_server(cfg)
            clients[name] = Client(f"127.0.0.1:{servers[name].port}", timeout=10)
        live = servers["experiment"].runtime.live()
        test_items = [str(p) for p in live.model.product_ids[np.random.default_rng(1).choice(args.products, 10,
                                                                                              replace=False)]]
        now = datetime.now(timezone.utc)
        exp = clients["experiment"].create_experiment(json.dumps(dict(
            name="overhead", item_ids=test_items, rpcs=["complements", "substitutes", "recommend"], slot=3,
            share_pct=args.share, allocation=args.allocation, starts_at=(now - timedelta(hours=1)).isoformat(),
            ends_at=(now + timedelta(days=1)).isoformat())))
        n_users = len(live.model.user_index)
        seqs = {name: _calls(c, np.random.default_rng(7), args.requests, args.products, n_users)
                for name, c in clients.items()}
        for name, c in clients.items():  # warm up both: connections, caches
            for call in _calls(c, np.random.default_rng(99), 300, args.products, n_users):
                call()
        lat: dict[str, list[float]] = {"plain": [], "experiment": []}
        exposed = 0
        for start in range(0, args.requests, args.block):
            order = ("plain", "experiment") if (start // args.block) % 2 == 0 else ("experiment", "plain")
            for name in order:
                for _ in range(min(args.block, args.requests - start)):
                    call = next(seqs[name])
                    t0 = time.perf_counter()
                    r = call()
                    lat[name].append(time.perf_counter() - t0)
                    if name == "experiment":
                        exposed += any(i.exposure_id for i in r.items)
        report = clients["experiment"].experiment_report(exp.id)
        for name in servers:
            clients[name].close()
            servers[name].stop(grace=1)

    print(f"A/B slot overhead: {args.requests} requests per server (complements/substitutes/recommend mixed), "
          f"{args.products:,} products, share {args.share:g}%, {args.allocation} allocation")
    print(f"requests with an exposure: {exposed} of {args.requests}; exposures stored "
          f"{report.control.exposures + sum(r.exposures for r in report.items)}\n")
    print(f"{'':12}{'mean ms':>9}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}")
    stats = {}
    for name, xs in lat.items():
        a = np.array(xs) * 1e3
        stats[name] = (a.mean(), *np.percentile(a, [50, 90, 99]))
        print(f"{name:<12}" + "".join(f"{x:>9.3f}" for x in stats[name]))
    over = [100 * (e / p - 1) for e, p in zip(stats["experiment"], stats["plain"])]
    print(f"{'overhead':<12}" + "".join(f"{x:>+8.1f}%" for x in over))
    print(f"\ntarget: <= 10 % more latency (p50): {'met' if over[1] <= 10 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
