"""Training speed: the whole job per stage, on complete-journey and on synthetic scale.

Each run is a separate `recsvc-train --json` process (so its peak RSS is its own),
reporting per-stage wall time and peak memory:

  complete-journey   the whole job (load, validate, co-purchase, ALS, substitutes,
                     evaluation, bundle); target <= 60 s on 2 cores
  synthetic 1M, 10M  order lines from training.demo_data.generate_order_lines; the
                     per-line cost should not grow with size (linear scaling)

Run:  OPENBLAS_NUM_THREADS=1 .venv/bin/python -m bench.training_speed [--scale 1000000 10000000] [--skip-cj]
          [--sequential] [--products 100000]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"


def run_train(args: list[str], model_dir: Path, sequential: bool = False) -> dict:
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    if sequential:  # every stage in turn, in one process: per-stage times that add up
        conf = model_dir.parent / f"{model_dir.name}-sequential.toml"
        conf.write_text("parallel_refit_min_lines = 1000000000000\n")
        args = [*args, "--config", str(conf)]
    cmd = [sys.executable, "-m", "training.cli", *args, "--model-dir", str(model_dir), "--json", "--no-progress"]
    t0 = time.perf_counter()
    out = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if out.returncode != 0:
        raise SystemExit(f"training failed ({' '.join(cmd)}):\n{out.stderr[-3000:]}")
    result = json.loads(out.stdout)
    result["wall_s"] = wall
    return result


def synthetic(n_lines: int, directory: Path, n_products: int | None = None) -> list[str]:
    """`n_products` None: the catalog grows with the history (1 product per 100 lines)."""
    from training.demo_data import generate_order_lines

    orders, catalog = generate_order_lines(n_lines, n_products=n_products or max(2000, n_lines // 100),
                                           n_users=max(1000, n_lines // 50), seed=0)
    orders.to_parquet(directory / "orders.parquet", index=False)
    catalog.to_parquet(directory / "catalog.parquet", index=False)
    return ["--orders", str(directory / "orders.parquet"), "--catalog", str(directory / "catalog.parquet")]


def table(results: list[tuple[str, int, dict]]) -> str:
    stages = list(dict.fromkeys(s for _, _, r in results for s in r["timings_s"]))
    head = ["run", "lines"] + stages + ["total s", "process s", "µs/line", "peak RSS MB", "refit child MB"]
    rows = []
    for name, lines, r in results:
        t = r["timings_s"]
        total = sum(t.values())
        rows.append([name, f"{lines:,}"] + [f"{t.get(s, 0):.1f}" for s in stages]
                    + [f"{total:.1f}", f"{r['wall_s']:.1f}", f"{1e6 * total / max(lines, 1):.1f}",
                       f"{r['peak_rss_mb']:.0f}", f"{r.get('refit_peak_rss_mb', 0):.0f}"])
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
    fmt = lambda r: "  ".join(c.rjust(w) for c, w in zip(r, widths))  # noqa: E731
    return "\n".join([fmt(head), fmt(["-" * w for w in widths])] + [fmt(r) for r in rows])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=int, nargs="*", default=[1_000_000, 10_000_000],
                    help="synthetic order-line counts (default: 1M and 10M)")
    ap.add_argument("--skip-cj", action="store_true", help="skip complete-journey")
    ap.add_argument("--products", type=int, default=None,
                    help="a fixed synthetic catalog of this many products at every scale (only the order "
                         "history grows); default: the catalog grows with the lines (1 product per 100)")
    ap.add_argument("--sequential", action="store_true",
                    help="run every stage in turn (no refit in a child process beside the evaluation), "
                         "so the per-stage times add up to the job's")
    args = ap.parse_args(argv)
    results: list[tuple[str, int, dict]] = []
    with tempfile.TemporaryDirectory(prefix="recsvc-bench-") as tmp:
        tmp_path = Path(tmp)
        cj = DATASETS / "complete-journey"
        if args.skip_cj:
            pass
        elif cj.is_dir():
            r = run_train(["--format", "complete-journey", "--orders", str(cj)], tmp_path / "cj", args.sequential)
            results.append(("complete-journey", r["data_report"]["files"]["orders"]["rows_read"], r))
            print(f"complete-journey done in {r['wall_s']:.1f}s", file=sys.stderr)
        else:
            print(f"skipping complete-journey: {cj} not found", file=sys.stderr)
        for n in args.scale:
            d = tmp_path / f"s{n}"
            d.mkdir()
            inputs = synthetic(n, d, args.products)
            r = run_train(inputs, d / "model", args.sequential)
            name = f"synthetic {n // 1_000_000}M" if n >= 1_000_000 else f"synthetic {n:,}"
            results.append((name + (f", {args.products // 1000}k products" if args.products else ""), n, r))
            print(f"synthetic {n:,} done in {r['wall_s']:.1f}s", file=sys.stderr)
    print(table(results))
    print("\nstage times are wall seconds inside the job; 'process s' includes interpreter start-up and "
          "imports; peak RSS is the training process's maximum resident memory, 'refit child MB' that of the "
          "child process the refit on all orders ran in (beside the fit on the split and the evaluation; its "
          "stage time is then only the wait for it; --sequential runs it in turn).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
