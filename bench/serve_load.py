"""Serving benchmark: recsvc against a bare gRPC server, same generator, same run.

    .venv/bin/python -m bench.serve_load [--workers 2] [--threads 1] [--duration 3] [--generator c]

Against a 100k-product synthetic bundle (bench/serve_synthetic.py; 20 % of variants
out of stock), with load from separate processes over loopback (bench/loadgen.c, raw HTTP/2 in C;
--generator python for grpc.aio's bench/serve_loadgen.py);
both servers run the same gRPC settings (worker processes sharing the port, each on a
CPU of its own; handler threads, admission limit):

1. start-up time (process start to health SERVING) and memory (RSS, all processes);
2. per RPC: maximum throughput (closed loop, each server's best over the
   `--concurrency` levels), then p50/p99 latency at the same offered
   load (open loop, half the bare server's maximum) for both servers, in interleaved
   rounds (best of each), recsvc's handler time p99, wall and CPU
   (Admin.GetServerStats, the worst worker), and CPU per answered call of each server
   and of the generator; bundles under a promotion on half the categories (15 % off,
   at most 100 saved);
3. model swap under load: 10 swaps of `current`, each to a version the server has not
   loaded before (`retrained`: a hard-linked copy under a new id), while complements run
   at a share of the sustainable rate (--swap-load); every failed request is counted by
   status;
4. overload: 1.25, 1.5 and 2 times the sustainable rate for 3 s each, then half of it:
   p50/p99 of accepted requests (from the scheduled start), RESOURCE_EXHAUSTED count,
   how long until 0.5 s pass in which no request fails or waits over 50 ms once the load
   drops (and any such 0.1 s bin later, on its own), and the server's CPU per refused
   call.

The machine is shared and noisy: read ratios against the bare server measured in the
same run, not absolute figures. Results: a table on stdout, JSON in bench/out/.
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import pickle
import platform
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from bench.serve_synthetic import remove_copies, retrained, write_synthetic
from recsvc import model_image
from recsvc.config import Config
from training.bundle import list_versions, set_current

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
PY = sys.executable
METHODS = {"complements": "/recsvc.v1.Recommender/GetComplements", "substitutes": "/recsvc.v1.Recommender/GetSubstitutes",
           "bundle": "/recsvc.v1.Recommender/GetBundle", "recommend": "/recsvc.v1.Recommender/Recommend"}


@dataclass
class Load:
    sent: int
    ok: int
    codes: dict[str, int]
    throughput: float  # OK answers per second
    p50_ms: float
    p99_ms: float
    timeline: list[tuple[float, int, int, float]] = field(default_factory=list)  # (t, ok, failed, p99 ms)
    gen_cpu_s: float = 0.0  # CPU seconds the generator processes used
    server_cpu_s: float = 0.0  # CPU seconds the server's processes used (when its pid is given)
    raw: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None  # offsets s, latencies ms, ok, lag ms


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepare(model_dir: Path, fresh: bool) -> tuple[list[str], Path]:
    """Two synthetic versions (swapped back and forth later) and the request sets."""
    remove_copies(model_dir)  # the last swap phase's
    versions = list_versions(model_dir)
    if fresh or len(versions) < 2:
        print("writing two 100k-product synthetic bundles ...", flush=True)
        versions = [write_synthetic(model_dir, seed=7).name, write_synthetic(model_dir, seed=8).name]
    versions = versions[-2:]
    set_current(model_dir, versions[0])
    cat = pd.read_parquet(model_dir / "versions" / versions[0] / "catalog.parquet", columns=["item_id", "product_id", "size"])
    rng = np.random.default_rng(1)
    from recsvc.v1 import recommender_pb2 as pb

    rows = cat.iloc[rng.integers(0, len(cat), 4000)]
    reqs: dict[str, list[bytes]] = {k: [] for k in METHODS}
    for n, (item, product, size) in enumerate(rows.itertuples(index=False)):
        anchor = item if n % 2 else product
        reqs["complements"].append(pb.ComplementsRequest(item_ids=[anchor], limit=10).SerializeToString())
        f = pb.Filter(attributes={"size": size}) if n % 2 else pb.Filter()  # the sold-out size, half the time
        reqs["substitutes"].append(pb.SubstitutesRequest(item_id=item, limit=10, filter=f).SerializeToString())
        reqs["bundle"].append(pb.BundleRequest(item_id=item).SerializeToString())
        user = f"U{rng.integers(0, 100_000):06d}" if n % 5 else f"guest-{n}"
        reqs["recommend"].append(pb.RecommendRequest(limit=10, context=pb.Context(user_id=user)).SerializeToString())
    path = OUT / "serve-requests.pkl"
    with open(path, "wb") as f:
        pickle.dump(reqs, f)
    for rpc, messages in reqs.items():
        write_requests(path.with_name(f"serve-requests-{rpc}.bin"), messages)
    return versions, path


def write_requests(path: Path, messages: list[bytes]) -> None:
    """Requests for bench/loadgen.c: u32 count, then u32 length + bytes each (little endian)."""
    with open(path, "wb") as f:
        f.write(struct.pack("<I", len(messages)))
        for m in messages:
            f.write(struct.pack("<I", len(m)) + m)


def build_loadgen(out: Path = OUT) -> Path:
    """Compile bench/loadgen.c into `out` (again when the source is newer)."""
    src, exe = ROOT / "bench" / "loadgen.c", out / "loadgen"
    if not exe.exists() or exe.stat().st_mtime < src.stat().st_mtime:
        cc = os.environ.get("CC", "cc")
        try:
            subprocess.run([cc, "-O2", "-o", str(exe), str(src)], check=True)
        except (OSError, subprocess.CalledProcessError) as e:
            raise SystemExit(f"cannot compile bench/loadgen.c with {cc} ({e}); install a C compiler or set CC, "
                             f"or run with --generator python") from e
    return exe


@dataclass(frozen=True)
class Generator:
    """Which load generator, and how many server processes to spread its connections over."""
    kind: str  # "c" (bench/loadgen.c) or "python" (bench/serve_loadgen.py)
    workers: int = 1

    def command(self, rpc: str, requests: Path) -> list[str]:
        """argv of one generator process for `rpc` (both take the same options)."""
        if self.kind == "python":
            return [PY, "-m", "bench.serve_loadgen", f"--rpc={rpc}", f"--requests={requests}"]
        argv = [str(build_loadgen()), f"--requests={requests.with_name(f'serve-requests-{rpc}.bin')}"]
        if self.workers > 1:  # an even share of the connections for each worker, whatever SO_REUSEPORT draws
            argv += ["--balance-method=/recsvc.v1.Admin/GetServerStats", f"--workers={self.workers}"]
        return argv


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children."""
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) / 1024
            todo += [int(c) for c in Path(f"/proc/{p}/task/{p}/children").read_text().split()]
        except OSError:
            pass
    return total


def start_recsvc(model_dir: Path, port: int, workers: int, threads: int, admit: int,
                 pin: bool = Config.pin_workers) -> tuple[subprocess.Popen, float]:
    env = {**os.environ, "RECSVC_THREADS": str(threads), "RECSVC_MAX_CONCURRENT_RPCS": str(admit),
           "RECSVC_PIN_WORKERS": str(int(pin)),
           "RECSVC_RELOAD_POLL_S": "0.5", "RECSVC_LOG_LEVEL": "WARNING",
           "RECSVC_STATE_URL": f"sqlite:///{OUT / 'serve-state.db'}"}
    for suffix in ("", "-wal", "-shm"):
        Path(f"{OUT / 'serve-state.db'}{suffix}").unlink(missing_ok=True)
    t0 = time.perf_counter()
    proc = subprocess.Popen([PY, "-m", "recsvc.cli", "serve", "--model-dir", str(model_dir), "--host", "127.0.0.1",
                             "--port", str(port), "--workers", str(workers)], cwd=ROOT, env=env)
    from recsvc.client import Client

    with Client(f"127.0.0.1:{port}") as c:
        while True:
            if proc.poll() is not None:
                raise SystemExit("recsvc exited during start-up")
            try:
                if c.health() == "SERVING":
                    break
            except Exception:  # not listening yet
                pass
            time.sleep(0.02)
    startup = time.perf_counter() - t0
    workers_serving(port, workers)  # with several workers, every one (they load in turn)
    return proc, startup


def workers_serving(port: int, workers: int, version: str | None = None, timeout: float | None = None) -> bool:
    """Wait until every worker process answers GetServerStats with a model (`version`,
    if given); False if `timeout` seconds pass first.

    One connection to each worker, kept open, polled every 0.25 s. A fresh connection per
    poll cost the workers a TCP and HTTP/2 handshake and an Admin call each, eight of them
    every ~0.28 s while the swap phase waited, and those bursts failed requests themselves
    (session 8)."""
    import grpc

    from recsvc.client import Client

    deadline = None if timeout is None else time.monotonic() + timeout
    channels: dict[int, object] = {}
    try:
        while deadline is None or time.monotonic() < deadline:
            if len(channels) < workers:
                for pid, (ch, _) in _worker_channels(port, 4 * workers).items():
                    if pid in channels:
                        ch.close()
                    else:
                        channels[pid] = ch
            seen = {}
            for pid, ch in list(channels.items()):
                try:
                    seen[pid] = Client(channel=ch).server_stats()
                except grpc.RpcError:  # that worker is gone (or restarting): find it again
                    channels.pop(pid).close()
            if len(seen) >= workers and all(s.model_version and version in (None, s.model_version)
                                            for s in seen.values()):
                return True
            time.sleep(0.25)
        return False
    finally:
        for ch in channels.values():
            ch.close()


def _worker_channels(port: int, tries: int) -> dict[int, tuple[object, object]]:
    """Open `tries` connections to the port (SO_REUSEPORT puts each on either worker) and
    keep one per worker process: {pid: (channel, its ServerStats)}."""
    import grpc

    from recsvc.client import Client

    found: dict[int, tuple[object, object]] = {}
    for _ in range(tries):
        ch = grpc.insecure_channel(f"127.0.0.1:{port}", options=[("grpc.use_local_subchannel_pool", 1)])
        try:
            s = Client(channel=ch).server_stats()
        except grpc.RpcError:
            ch.close()
            continue
        if s.pid in found:
            ch.close()
        else:
            found[s.pid] = (ch, s)
    return found


def worker_stats(port: int, tries: int = 24) -> dict[int, object]:
    """ServerStats of each worker process (separate connections reach either)."""
    found = _worker_channels(port, tries)
    for ch, _ in found.values():
        ch.close()
    return {pid: s for pid, (_, s) in found.items()}


def out_of_stock_ids(model_dir: Path, share: float = 0.2) -> list[str]:
    """The variants the benchmarks mark sold out (the same ones every run)."""
    cat = pd.read_parquet(resolve_current(model_dir) / "catalog.parquet", columns=["item_id"])
    return cat["item_id"].sample(frac=share, random_state=3).tolist()


def mark_out_of_stock(port: int, model_dir: Path, share: float = 0.2) -> None:
    from recsvc.client import Client

    ids = out_of_stock_ids(model_dir, share)
    with Client(f"127.0.0.1:{port}", timeout=60) as c:
        for lo in range(0, len(ids), 20_000):
            c.update_stock({i: 0 for i in ids[lo:lo + 20_000]})


def tree_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process and its children (the worker processes)."""
    total, todo, tick = 0.0, [pid], os.sysconf("SC_CLK_TCK")
    while todo:
        p = todo.pop()
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
            todo += [int(c) for c in Path(f"/proc/{p}/task/{p}/children").read_text().split()]
        except OSError:
            pass
    return total


def add_promotion(port: int) -> None:
    """A bundle discount on half the categories, active for a day: bundles are offered
    under promotions in a shop, so the bundle figures include pricing under one."""
    from datetime import datetime, timedelta, timezone

    from recsvc.client import Client

    now = datetime.now(timezone.utc)
    with Client(f"127.0.0.1:{port}", timeout=30) as c:
        c.create_promotion(name="Bench set", kind="percent", value=15.0, cap=100.0, promo_id="bench-set",
                           categories=[f"category-{i:03d}" for i in range(0, 200, 2)],
                           starts_at=now - timedelta(hours=1), ends_at=now + timedelta(days=1))


def drop_images(model_dir: Path) -> None:
    """The server's model images of this benchmark's bundles: in memory (/dev/shm), ~200 MB each."""
    setting = os.environ.get("RECSVC_MODEL_IMAGE_DIR", Config.model_image_dir)
    root = model_image.root_for(setting, resolve_current(model_dir))
    if root is not None:
        model_image.remove_images(root, model_dir)


def resolve_current(model_dir: Path) -> Path:
    return (model_dir / "current").resolve()


def run_load(port: int, rpc: str, requests: Path, *, generator: Generator, procs: int = 1, server_pid: int | None = None,
             **kw) -> Load:
    """Run the generator in `procs` processes (each at rate/procs) and pool the results."""
    args = [f"--{k.replace('_', '-')}={v}" for k, v in kw.items() if k not in ("rate", "phases")]
    cpu0 = tree_cpu_s(server_pid) if server_pid else 0.0
    outs = []
    for _ in range(procs):
        extra = []
        if "rate" in kw:
            extra.append(f"--rate={kw['rate'] / procs}")
        if "phases" in kw:
            extra.append("--phases=" + ",".join(f"{r / procs}:{d}" for r, d in kw["phases"]))
        outs.append(subprocess.Popen([*generator.command(rpc, requests), f"--target=127.0.0.1:{port}",
                                      f"--method={METHODS[rpc]}", *args, *extra],
                                     cwd=ROOT, stdout=subprocess.PIPE, text=True))
    results = [json.loads(p.communicate()[0]) for p in outs]
    server_cpu = tree_cpu_s(server_pid) - cpu0 if server_pid else 0.0  # includes the generator's connect
    off = np.concatenate([r["offsets"] for r in results])
    lat = np.concatenate([r["latencies"] for r in results]) * 1e3
    lag = np.concatenate([r["lags"] for r in results]) * 1e3
    codes = np.concatenate([r["codes"] for r in results]) if len(off) else np.array([], str)
    ok = codes == "OK"
    elapsed = max(r["elapsed"] for r in results)
    values, counts = np.unique(codes, return_counts=True)
    timeline = []
    for t in np.arange(0, elapsed, 0.1):
        sel = (off >= t) & (off < t + 0.1)
        good = sel & ok
        timeline.append((round(float(t), 1), int(good.sum()), int((sel & ~ok).sum()),
                         float(np.percentile(lat[good], 99)) if good.any() else 0.0))
    pct = (lambda q: float(np.percentile(lat[ok], q))) if ok.any() else (lambda q: float("nan"))
    return Load(len(codes), int(ok.sum()), dict(zip(values.tolist(), counts.tolist())), ok.sum() / elapsed,
                pct(50), pct(99), timeline, raw=(off, lat, ok, lag), gen_cpu_s=sum(r["cpu_s"] for r in results),
                server_cpu_s=server_cpu)


def measure_rpcs(rec_port: int, bare_port: int, requests: Path, args, rec_pid: int, bare_pid: int) -> list[dict]:
    """Interleaved rounds, best of each: noise from other processes only ever slows a run.

    Besides throughput, the CPU each side spends per answered call in the closed-loop
    runs (the server's processes, and the generator's): on two shared cores this says
    where the time goes better than the rate alone."""
    rows = []
    for rpc in METHODS:
        common = dict(duration=args.duration, channels=args.channels, procs=args.procs, generator=args.load)
        runs: dict[str, list[Load]] = {"bare_max": [], "rec_max": [], "bare_open": [], "rec_open": []}
        for _ in range(args.rounds):
            for conc in args.concurrency:  # each server's maximum over the levels, not at one level
                runs["bare_max"].append(run_load(bare_port, rpc, requests, mode="closed", concurrency=conc,
                                                 server_pid=bare_pid, **common))
                runs["rec_max"].append(run_load(rec_port, rpc, requests, mode="closed", concurrency=conc,
                                                server_pid=rec_pid, **common))
        bare_max = max(r.throughput for r in runs["bare_max"])
        rec_max = max(r.throughput for r in runs["rec_max"])
        per_call = lambda loads, attr: 1e6 * min(getattr(r, attr) / max(r.ok, 1) for r in loads)  # noqa: E731
        rate = round(0.5 * bare_max)
        for _ in range(args.rounds):
            runs["bare_open"].append(run_load(bare_port, rpc, requests, mode="open", rate=rate, **common))
            runs["rec_open"].append(run_load(rec_port, rpc, requests, mode="open", rate=rate, **common))
        bare_open = min(runs["bare_open"], key=lambda r: r.p99_ms)
        rec_open = min(runs["rec_open"], key=lambda r: r.p99_ms)
        rows.append({"rpc": rpc, "bare_max": bare_max, "recsvc_max": rec_max, "rate": rate,
                     "bare_server_us": per_call(runs["bare_max"], "server_cpu_s"),
                     "recsvc_server_us": per_call(runs["rec_max"], "server_cpu_s"),
                     "bare_gen_us": per_call(runs["bare_max"], "gen_cpu_s"),
                     "recsvc_gen_us": per_call(runs["rec_max"], "gen_cpu_s"),
                     "bare_p50": bare_open.p50_ms, "bare_p99": bare_open.p99_ms,
                     "recsvc_p50": rec_open.p50_ms, "recsvc_p99": rec_open.p99_ms,
                     "recsvc_errors": sum(v for r in runs["rec_max"] + runs["rec_open"]
                                          for k, v in r.codes.items() if k != "OK"),
                     "all_rounds": {k: [(round(r.throughput), round(r.p50_ms, 2), round(r.p99_ms, 2)) for r in v]
                                    for k, v in runs.items()}})
        print(f"  {rpc}: bare {bare_max:.0f}/s, recsvc {rec_max:.0f}/s; at {rate}/s p99 "
              f"{bare_open.p99_ms:.2f} vs {rec_open.p99_ms:.2f} ms", flush=True)
    wall, cpu = {}, {}
    for s in worker_stats(rec_port).values():
        for m in s.methods:
            wall[m.method] = max(wall.get(m.method, 0.0), m.handler_p99_ms)
            cpu[m.method] = max(cpu.get(m.method, 0.0), m.handler_cpu_p99_ms)
    for row in rows:
        row["handler_p99"] = wall.get(METHODS[row["rpc"]], float("nan"))
        row["handler_cpu_p99"] = cpu.get(METHODS[row["rpc"]], float("nan"))
    return rows


def measure_swaps(port: int, model_dir: Path, versions: list[str], requests: Path, rate: float, args) -> dict:
    stop = Path(tempfile.mkdtemp()) / "stop"
    before = {pid: s.swaps for pid, s in worker_stats(port).items()}
    gen = subprocess.Popen([*args.load.command("complements", requests), f"--target=127.0.0.1:{port}",
                            f"--method={METHODS['complements']}", "--mode=open", f"--rate={rate}", "--duration=600",
                            f"--channels={args.channels}", f"--stop-file={stop}"], cwd=ROOT, stdout=subprocess.PIPE,
                           text=True)
    time.sleep(1)
    t0 = time.perf_counter()
    for k in range(args.swaps):
        target = retrained(model_dir, versions[(k + 1) % 2])  # new to the server: a full load
        set_current(model_dir, target)
        workers_serving(port, args.workers, target, 60)
    took = time.perf_counter() - t0
    remove_copies(model_dir, keep=target)
    time.sleep(1)
    stop.touch()
    res = json.loads(gen.communicate()[0])
    after = {pid: s.swaps for pid, s in worker_stats(port).items()}
    codes = res["codes"]
    failed = collections.Counter(c for c in codes if c != "OK")
    return {"rate": rate, "swaps": min(after[p] - before.get(p, 0) for p in after), "requests": len(codes),
            "failed_by_code": dict(failed),
            "failed": sum(c != "OK" for c in codes), "p99_ms": float(np.percentile(np.array(res["latencies"]) * 1e3, 99)),
            "seconds": took}


def measure_overload(port: int, requests: Path, sustainable: float, factor: float, served_us: float | None, args,
                     server_pid: int | None = None) -> dict:
    """`factor` x the sustainable rate for 3 s, then half the sustainable rate for 3 s."""
    over, calm = factor * sustainable, 0.5 * sustainable
    load = run_load(port, "complements", requests, mode="open", phases=[(over, 3.0), (calm, 3.0)], timeout=5,
                    channels=args.channels, procs=max(args.procs, 2 if args.load.kind == "python" else 1),
                    generator=args.load, server_pid=server_pid)
    recovery_s, blips = recovery(load.timeline, drop_s=3.0)
    off, lat, ok, lag = load.raw
    accepted = ok & (off < 3.0)
    rejected = load.codes.get("RESOURCE_EXHAUSTED", 0)
    pct = (lambda x, q: float(np.percentile(x[accepted], q))) if accepted.any() else (lambda x, q: float("nan"))
    # What refusing costs: the server's CPU in this run less the answered calls at their
    # closed-loop cost, per refused call. grpc's Python server spends a good part of an
    # answered call's work to refuse one, which bounds what admission control can save.
    refused_us = ((load.server_cpu_s * 1e6 - load.ok * served_us) / rejected) if served_us and rejected else None
    # From the scheduled start (the customer's view) and from the actual send (the server's
    # share), in case the generator itself falls behind.
    return {"factor": factor, "offered": over, "accepted_per_s": accepted.sum() / 3.0, "accepted_p99_ms": pct(lat, 99),
            "accepted_p50_ms": pct(lat, 50),
            "accepted_p99_from_send_ms": pct(lat - lag, 99), "generator_lag_p99_ms": pct(lag, 99),
            "resource_exhausted": rejected, "other_errors": sum(v for k, v in load.codes.items()
                                                                 if k not in ("OK", "RESOURCE_EXHAUSTED")),
            "codes": load.codes, "refused_server_us": refused_us, "served_server_us": served_us,
            "recovery_s": recovery_s, "later_blips": blips, "timeline": load.timeline}


def recovery(timeline: list[tuple], drop_s: float, clean_s: float = 0.5) -> tuple[float | None, list[tuple]]:
    """Seconds from the load dropping at `drop_s` to the start of the first `clean_s` of
    0.1 s bins in which no request failed or waited over 50 ms (None: never), and the
    bad bins after that (time, failed, p99 ms): a stall seconds later is reported as
    itself, not as a slow recovery."""
    after = [b for b in timeline if b[0] >= drop_s - 1e-9]
    bad = [b[2] > 0 or b[3] > 50.0 for b in after]
    need = round(clean_s / 0.1)
    for i in range(len(after) - need + 1):
        if not any(bad[i:i + need]):
            return round(after[i][0] - drop_s, 1), [(b[0], b[2], round(b[3], 1)) for b, x in zip(after[i:], bad[i:]) if x]
    return None, []


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workers", type=int, default=2, help="server processes, both servers (default 2: both cores)")
    ap.add_argument("--threads", type=int, default=Config.threads,
                    help=f"handler threads per process, both servers (default {Config.threads}, recsvc's)")
    ap.add_argument("--max-concurrent-rpcs", type=int, default=Config.max_concurrent_rpcs,
                    help=f"admission limit per process, both servers (default {Config.max_concurrent_rpcs}, recsvc's)")
    ap.add_argument("--pin-workers", action=argparse.BooleanOptionalAction, default=Config.pin_workers,
                    help="each worker process on a CPU of its own, both servers (default: recsvc's, on)")
    ap.add_argument("--duration", type=float, default=3.0, help="seconds per measurement (default 3)")
    ap.add_argument("--concurrency", type=lambda v: [int(x) for x in v.split(",")], default=[16, 48],
                    help="closed loop: calls in flight, comma-separated levels; each server's maximum throughput is "
                         "its best over the levels (default 16,48: a server whose calls wait longer needs more in "
                         "flight to reach its capacity)")
    ap.add_argument("--channels", type=int, default=4, help="connections per generator process")
    ap.add_argument("--procs", type=int, default=1,
                    help="generator processes (with --generator python the overload phase uses at least 2)")
    ap.add_argument("--generator", choices=["c", "python"], default="c",
                    help="load generator: bench/loadgen.c (default; raw HTTP/2, a few us of CPU per call, compiled "
                         "on first use) or bench/serve_loadgen.py (grpc.aio, ~200 us per call: on two cores it "
                         "takes CPU from the server it measures)")
    ap.add_argument("--swaps", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=2, help="interleaved repetitions; the best counts")
    ap.add_argument("--swap-load", default="0.25,0.5", help="swap phase: shares of the sustainable rate, one run each")
    ap.add_argument("--phases", default="rpcs,swaps,overload", help="which measurements to run (comma-separated)")
    ap.add_argument("--overload", default="1.25,1.5,2",
                    help="overload phase: multiples of the sustainable rate, one 6 s run each (default 1.25,1.5,2)")
    ap.add_argument("--fresh", action="store_true", help="regenerate the synthetic bundles")
    args = ap.parse_args(argv)
    if args.generator == "c" and args.channels % args.workers:
        ap.error(f"--channels ({args.channels}) must be a multiple of --workers ({args.workers})")
    args.load = Generator(args.generator, args.workers)
    OUT.mkdir(parents=True, exist_ok=True)
    model_dir = OUT / "serve-model"
    versions, requests = prepare(model_dir, args.fresh)
    rec_port, bare_port = free_port(), free_port()
    load_avg = os.getloadavg()
    rec, startup = start_recsvc(model_dir, rec_port, args.workers, args.threads, args.max_concurrent_rpcs,
                                args.pin_workers)
    bare = subprocess.Popen([PY, "-m", "bench.serve_bare", "--port", str(bare_port), "--workers", str(args.workers),
                             "--threads", str(args.threads), "--max-concurrent-rpcs", str(args.max_concurrent_rpcs),
                             "--pin-workers" if args.pin_workers else "--no-pin-workers"],
                            cwd=ROOT)
    try:
        rss = rss_mb(rec.pid)
        mark_out_of_stock(rec_port, model_dir)
        add_promotion(rec_port)
        time.sleep(1.5)  # other workers pull the stock and promotion changes
        if "rpcs" in args.phases:
            print("per-RPC throughput and latency ...", flush=True)
            rows = measure_rpcs(rec_port, bare_port, requests, args, rec.pid, bare.pid)
            sustainable = next(r["recsvc_max"] for r in rows if r["rpc"] == "complements")
        else:
            rows, sustainable = [], run_load(rec_port, "complements", requests, mode="closed", duration=args.duration,
                                             concurrency=max(args.concurrency), channels=args.channels,
                                             generator=args.load).throughput
        swaps, overload = [], []
        if "swaps" in args.phases:
            for share in (float(x) for x in args.swap_load.split(",")):
                print(f"model swaps under load ({share:.0%} of sustainable) ...", flush=True)
                swaps.append(measure_swaps(rec_port, model_dir, versions, requests, share * sustainable, args))
        if "overload" in args.phases:
            served_us = next((r["recsvc_server_us"] for r in rows if r["rpc"] == "complements"), None)
            for factor in (float(x) for x in args.overload.split(",")):
                print(f"overload ({factor:g}x sustainable) ...", flush=True)
                overload.append(measure_overload(rec_port, requests, sustainable, factor, served_us, args, rec.pid))
        rss_after = rss_mb(rec.pid)
    finally:
        for p in (rec, bare):
            p.send_signal(signal.SIGTERM)
        for p in (rec, bare):
            p.wait(timeout=30)
        drop_images(model_dir)
    result = {"machine": {"cpus": os.cpu_count(), "cpu": platform.processor() or platform.machine(),
                          "load_avg_at_start": load_avg},
              "workers": args.workers, "startup_s": startup, "rss_mb": rss, "rss_mb_end": rss_after,
              "rpcs": rows, "swaps": swaps, "overload": overload}
    (OUT / "serve_load.json").write_text(json.dumps(result, indent=2))
    print(report(result))
    return 0


def _recovered(o: dict) -> str:
    if o["recovery_s"] is None:
        return "not recovered before the run ended"
    blips = o.get("later_blips") or []
    later = (f", then {len(blips)} later 0.1 s bin(s) with failures or p99 > 50 ms: " +
             ", ".join(f"{t:.1f} s ({n} failed, p99 {q:.0f} ms)" for t, n, q in blips)) if blips else ""
    return f"recovered {o['recovery_s']:.1f} s after the load dropped{later}"


def report(r: dict) -> str:
    lines = [f"recsvc serving benchmark: 100k products, {r['workers']} worker process(es), {r['machine']['cpus']} CPUs "
             f"(load average at start {r['machine']['load_avg_at_start'][0]:.1f})", "",
             "| RPC | bare max /s | recsvc max /s | ratio | offered /s | bare p50 / p99 ms | recsvc p50 / p99 ms "
             "| p99 ratio | handler p99 ms (wall / CPU) | server CPU us/call bare / recsvc | generator CPU us/call |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for x in r["rpcs"]:
        lines.append(f"| {x['rpc']} | {x['bare_max']:.0f} | {x['recsvc_max']:.0f} | {x['recsvc_max'] / x['bare_max']:.2f} "
                     f"| {x['rate']} | {x['bare_p50']:.2f} / {x['bare_p99']:.2f} | {x['recsvc_p50']:.2f} / "
                     f"{x['recsvc_p99']:.2f} | {x['recsvc_p99'] / x['bare_p99']:.2f} | {x['handler_p99']:.2f} / "
                     f"{x['handler_cpu_p99']:.2f} | {x.get('bare_server_us', float('nan')):.0f} / "
                     f"{x.get('recsvc_server_us', float('nan')):.0f} | {x.get('bare_gen_us', float('nan')):.0f} |")
    lines.append("")
    for x in r["swaps"]:
        lines.append(f"- model swaps under load ({x['rate']:.0f}/s complements): {x['swaps']} swaps in {x['seconds']:.0f} s, "
                     f"{x['requests']} requests, {x['failed']} failed {x['failed_by_code'] or ''}, "
                     f"p99 {x['p99_ms']:.1f} ms")
    for o in r["overload"]:
        refused = (f"; server CPU per refused call ~{o['refused_server_us']:.0f} us (an answered one "
                   f"{o['served_server_us']:.0f} us)") if o.get("refused_server_us") else ""
        lines.append(f"- overload at {o['offered']:.0f}/s ({o['factor']:g}x sustainable): {o['accepted_per_s']:.0f}/s "
                     f"accepted with p50 / p99 {o['accepted_p50_ms']:.1f} / {o['accepted_p99_ms']:.1f} ms from the "
                     f"schedule (generator lag p99 {o['generator_lag_p99_ms']:.1f} ms), {o['resource_exhausted']} "
                     f"RESOURCE_EXHAUSTED, {o['other_errors']} other errors (all codes: {o.get('codes', '?')}); "
                     f"{_recovered(o)}{refused}")
    lines.append(f"- start-up (process start to SERVING) {r['startup_s']:.1f} s; RSS {r['rss_mb']:.0f} MB after start, "
                 f"{r['rss_mb_end']:.0f} MB at the end")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
