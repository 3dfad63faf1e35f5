"""Load generator process for bench/serve_load.py (asyncio gRPC client, raw bytes).

Requests are serialised once up front and responses are not parsed, so the generator
spends its CPU on sending, not on protobuf. Two modes:

- closed: `concurrency` callers, each sending its next request when the last returns
  (finds the maximum throughput);
- open: requests start on a fixed schedule at `rate` per second whatever the server
  does (the way chat traffic arrives); latency is measured from the scheduled start,
  so a stalled server cannot hide its queueing (no coordinated omission).

Prints one JSON object: per request the scheduled offset, latency, the generator's own
lag (how late it sent, when starved of CPU) and status, for the parent to aggregate.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import pickle
import sys
import time

import grpc


async def _run(args) -> dict:
    with open(args.requests, "rb") as f:
        requests: list[bytes] = pickle.load(f)[args.rpc]
    opts = [("grpc.use_local_subchannel_pool", 1)]  # one TCP connection per channel: SO_REUSEPORT spreads them
    channels = [grpc.aio.insecure_channel(args.target, options=opts) for _ in range(args.channels)]
    calls = [ch.unary_unary(args.method) for ch in channels]
    for call in calls:  # connect every channel before the clock starts
        for attempt in range(300):  # another generator may already overload the server
            try:
                await call(requests[0], timeout=30, wait_for_ready=True)
                break
            except grpc.aio.AioRpcError as e:
                if e.code() != grpc.StatusCode.RESOURCE_EXHAUSTED or attempt == 299:
                    raise
                await asyncio.sleep(0.01)
    offsets: list[float] = []
    latencies: list[float] = []
    codes: list[str] = []
    n_req, n_calls = len(requests), len(calls)
    cpu0 = time.process_time()
    start = time.perf_counter()
    end = start + args.duration

    lags: list[float] = []

    async def one(i: int, scheduled: float) -> None:
        code = "OK"
        lag = time.perf_counter() - scheduled  # the generator's own delay, when it falls behind
        try:
            await calls[i % n_calls](requests[i % n_req], timeout=args.timeout)
        except grpc.aio.AioRpcError as e:
            code = e.code().name
        done = time.perf_counter()
        offsets.append(scheduled - start)
        latencies.append(done - scheduled)
        lags.append(lag)
        codes.append(code)

    if args.mode == "closed":
        counter = iter(range(10**12))

        async def caller() -> None:
            while time.perf_counter() < end:
                await one(next(counter), time.perf_counter())

        await asyncio.gather(*(caller() for _ in range(args.concurrency)))
    else:
        phases = [(float(r), float(d)) for r, d in (p.split(":") for p in args.phases.split(","))] if args.phases \
            else [(args.rate, args.duration)]
        phase_ends = [start + sum(d for _, d in phases[:k + 1]) for k in range(len(phases))]
        end = phase_ends[-1]
        i, k = 0, 0
        tasks: set[asyncio.Task] = set()
        nxt = next_check = start
        while True:
            now = time.perf_counter()
            if now >= end:
                break
            if args.stop_file and now >= next_check:
                next_check = now + 0.2
                if os.path.exists(args.stop_file):
                    break
            while nxt <= now:
                while nxt >= phase_ends[k] and k < len(phases) - 1:
                    k += 1
                interval = 1.0 / phases[k][0]
                t = asyncio.ensure_future(one(i, nxt))
                tasks.add(t)
                t.add_done_callback(tasks.discard)
                i += 1
                nxt += interval
                if nxt >= end:
                    break
            await asyncio.sleep(max(0.0, min(nxt, end) - time.perf_counter()))
        if tasks:
            await asyncio.wait(tasks, timeout=args.timeout + 5)
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu0  # the generator's own share of the cores
    for ch in channels:
        await ch.close()
    return {"elapsed": elapsed, "cpu_s": cpu, "offsets": offsets, "latencies": latencies, "lags": lags, "codes": codes}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--target", required=True)
    ap.add_argument("--method", required=True, help="/recsvc.v1.Recommender/GetComplements ...")
    ap.add_argument("--rpc", required=True, help="key of the request list in --requests")
    ap.add_argument("--requests", required=True, help="pickle: {rpc: [serialised request, ...]}")
    ap.add_argument("--mode", choices=["closed", "open"], default="closed")
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--rate", type=float, default=1000.0)
    ap.add_argument("--duration", type=float, default=3.0)
    ap.add_argument("--channels", type=int, default=4)
    ap.add_argument("--timeout", type=float, default=2.0)
    ap.add_argument("--phases", help="open mode: RATE:SECONDS,RATE:SECONDS,... (overrides --rate/--duration)")
    ap.add_argument("--stop-file", help="open mode: stop early once this file exists")
    args = ap.parse_args(argv)
    json.dump(asyncio.run(_run(args)), sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
