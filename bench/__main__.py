"""`python -m bench [NAME ...]`: run the benchmarks one after another, each printing its table.

With no names, runs them all (about 30 minutes on 2 cores); `--list` shows them.
Each benchmark also runs alone: `python -m bench.NAME --help`.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys

BENCHES = {
    "complements_quality": "complement Recall/Coverage@10 vs co-count and popularity (issue 2)",
    "substitutes_quality": "substitute HitRate@10 on variant families / replacements (issue 2)",
    "copurchase_speed": "co-purchase stage vs mlxtend fpgrowth + association_rules (issue 2)",
    "training_speed": "whole training job per stage: complete-journey, synthetic 1M/10M (issue 2)",
    "serve_load": "gRPC throughput/latency vs a bare server, swaps, overload, RSS (issue 3)",
    "handler_cost": "handler CPU per call in process: compiled kernel vs Python (issue 3)",
    "ab_simulation": "A/B slots: exposures to find the top 3 of 10, even vs Thompson (issue 4)",
    "event_ingest": "event ingestion rate on SQLite and PostgreSQL, none lost (issue 4)",
    "retrain_overhead": "scheduled retraining with the gate vs plain training (issue 5)",
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="*", help="benchmarks to run (default: all)")
    ap.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    args = ap.parse_args(argv)
    if args.list:
        for name, what in BENCHES.items():
            print(f"{name:22} {what}")
        return 0
    unknown = [n for n in args.names if n not in BENCHES]
    if unknown:
        ap.error(f"unknown benchmark(s) {', '.join(unknown)}; --list shows them")
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    failed = []
    for name in args.names or list(BENCHES):
        print(f"\n===== bench.{name}: {BENCHES[name]}", flush=True)
        if subprocess.run([sys.executable, "-m", f"bench.{name}"], env=env).returncode != 0:
            failed.append(name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
