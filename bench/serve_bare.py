"""The baseline for bench/serve_load.py: a bare gRPC server with recsvc's proto.

Same gRPC settings as `recsvc serve` (handler threads, admission limit, worker
processes sharing the port, each pinned to a CPU), but every Recommender handler returns one fixed
response of the size recsvc sends (10 items; a bundle of 2 under a promotion). What recsvc adds on top
of this — interceptor, validation, the query, building the response — is what the
benchmark measures.
"""
from __future__ import annotations

import argparse
import os
import signal
import threading
from concurrent import futures

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from recsvc.affinity import pin_to_cpu
from recsvc.config import Config
from recsvc.v1 import recommender_pb2 as pb
from recsvc.v1 import recommender_pb2_grpc as pb_grpc


def _item(i: int) -> pb.Item:
    return pb.Item(item_id=f"P{i:06d}", score=1.0 / (i + 1), reason=pb.REASON_CO_PURCHASE,
                   explanation=f"bought together in {300 - i} orders", title=f"Product P{i:06d}",
                   category="category-042", price=49.9, in_stock=True)


ITEMS = pb.ItemsResponse(items=[_item(i) for i in range(10)], model_version="20250101T000000000000Z-synthetic",
                         request_id="1a2b-3c4d-1")
BUNDLE = pb.BundleResponse(  # under a promotion, as recsvc's bench bundles mostly are
    anchor=_item(99), items=[_item(0)], list_price=99.8, bundle_price=84.83, saving=14.97,
    promotion=pb.Promotion(id="bench-set", name="Bench set", categories=[f"category-{i:03d}" for i in range(0, 200, 2)],
                           kind=pb.Promotion.KIND_PERCENT, value=15.0, cap=100.0, priority=0, min_items=2,
                           starts_at=Timestamp(seconds=1764547200), ends_at=Timestamp(seconds=1764633600)),
    valid_until=Timestamp(seconds=1764633600),
    explanation="buy both and save 14.97 with Bench set, valid until 2025-12-02 00:00 UTC",
    model_version=ITEMS.model_version, request_id=ITEMS.request_id)


class Bare(pb_grpc.RecommenderServicer):
    def GetComplements(self, request, context):
        return ITEMS

    def GetSubstitutes(self, request, context):
        return ITEMS

    def Recommend(self, request, context):
        return ITEMS

    def GetBundle(self, request, context):
        return BUNDLE


class BareAdmin(pb_grpc.AdminServicer):
    """Only which process answers: the load generator spreads its connections over the
    worker processes with it, as it does against recsvc."""

    def GetServerStats(self, request, context):
        return pb.ServerStats(pid=os.getpid())


def serve_one(port: int, threads: int, max_concurrent: int, reuse: bool) -> None:
    server = grpc.server(futures.ThreadPoolExecutor(threads), maximum_concurrent_rpcs=max_concurrent,
                         options=[("grpc.so_reuseport", int(reuse))])
    pb_grpc.add_RecommenderServicer_to_server(Bare(), server)
    pb_grpc.add_AdminServicer_to_server(BareAdmin(), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    while not stop.wait(0.5):
        pass
    server.stop(1).wait()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--threads", type=int, default=Config.threads)  # recsvc's defaults
    ap.add_argument("--max-concurrent-rpcs", type=int, default=Config.max_concurrent_rpcs)
    ap.add_argument("--pin-workers", action=argparse.BooleanOptionalAction, default=Config.pin_workers)
    args = ap.parse_args()
    if args.workers == 1:
        serve_one(args.port, args.threads, args.max_concurrent_rpcs, False)
        return 0
    children = []
    for worker in range(args.workers):  # forked before any gRPC object exists
        pid = os.fork()
        if pid == 0:
            if args.pin_workers:
                pin_to_cpu(worker)
            serve_one(args.port, args.threads, args.max_concurrent_rpcs, True)
            os._exit(0)
        children.append(pid)
    signal.signal(signal.SIGTERM, lambda *_: [os.kill(p, signal.SIGTERM) for p in children])
    for pid in children:
        while True:
            try:
                os.waitpid(pid, 0)
                break
            except InterruptedError:
                continue
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
