"""Retraining overhead: a scheduled run (train + quality gate + publish) vs plain training.

The plain run trains and publishes a bundle; the retraining run then trains again on
the same data in the same model directory, so its gate really loads the live bundle,
remaps it and scores both on the hold-out, as on any night after the first. Target:
the retraining run within 1.5x the plain one.

Run:  OPENBLAS_NUM_THREADS=1 .venv/bin/python -m bench.retrain_overhead
      (complete-journey from ../shared/datasets; several minutes on 2 cores)
      .venv/bin/python -m bench.retrain_overhead --orders DIR_OR_FILE --format standard --catalog FILE
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

DATASET = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "complete-journey"
TARGET = 1.5


def timed(fn, *args, **kwargs):  # -> (result, wall s, cpu s)
    w0, c0 = time.perf_counter(), time.process_time()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - w0, time.process_time() - c0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--orders", type=Path, default=DATASET)
    p.add_argument("--catalog", type=Path)
    p.add_argument("--format", default="complete-journey")
    p.add_argument("--work", type=Path, help="model directory to use (default: a temporary one)")
    args = p.parse_args(argv)
    if not args.orders.exists():
        print(f"skipped: {args.orders} not found (the shared datasets sit beside the project in CI only)")
        return 0
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")

    from training.pipeline import train
    from training.retrain import RetrainConfig, run

    with tempfile.TemporaryDirectory() as tmp:
        model_dir = args.work or Path(tmp) / "models"
        plain, plain_wall, plain_cpu = timed(train, args.orders, args.catalog, model_dir, fmt=args.format,
                                             progress=False)
        cfg = RetrainConfig(orders=str(args.orders), catalog=None if args.catalog is None else str(args.catalog),
                            format=args.format, model_dir=model_dir)
        outcome, run_wall, run_cpu = timed(run, cfg)
    if outcome.code not in (0, 3):  # 3: the gate said no, which still timed the whole run
        print(f"retraining run exited {int(outcome.code)}: {outcome.message}", file=sys.stderr)
        return 1
    ratio = run_wall / plain_wall
    verdict = outcome.gate.verdict if outcome.gate else "none"
    print()
    print(f"dataset            {args.orders} ({args.format})")
    print(f"plain training     {plain_wall:7.1f} s wall  {plain_cpu:7.1f} s cpu  "
          f"(stages: {', '.join(f'{k} {v:.1f}' for k, v in plain.timings.items())})")
    print(f"retraining run     {run_wall:7.1f} s wall  {run_cpu:7.1f} s cpu  "
          f"(stages: {', '.join(f'{k} {v:.1f}' for k, v in outcome.timings.items())}; gate {verdict})")
    print(f"ratio              {ratio:7.2f}x wall  {run_cpu / plain_cpu:7.2f}x cpu   target <= {TARGET}x: "
          f"{'met' if ratio <= TARGET else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
