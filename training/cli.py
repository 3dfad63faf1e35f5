"""`recsvc-train`: train and publish bundles, list and switch versions.

    recsvc-train --orders PATH --catalog PATH --model-dir DIR      train + publish (default verb)
    recsvc-train --format online-retail --orders FILE --model-dir DIR
    recsvc-train list --model-dir DIR
    recsvc-train promote VERSION --model-dir DIR
    recsvc-train rollback --model-dir DIR
    recsvc-train run --config retrain.toml [--force]            retrain + quality gate (scheduled job)
    recsvc-train schedule "0 3 * * *" --config retrain.toml      built-in scheduler for `run`
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

VERBS = ("train", "list", "promote", "rollback", "show", "run", "schedule")

EPILOG = """\
inputs (CSV or Parquet, a directory of partitions, or an http(s) URL):
  orders   one row per order line: order_id, user_id, item_id, ts   [quantity, price]
           negative quantity or a cancelled/returned flag = a return, never a purchase
  catalog  one row per item (variant): item_id, category   [product_id, title, price, brand, size, color, ...]
           variants roll up to product_id; extra columns are attributes
formats: standard (the above) | online-retail (UCI raw parquet, no --catalog)
         | complete-journey (directory with transactions.parquet + products.parquet)
exit codes: 0 published; 2 bad input or config (the message says what to fix); 1 unexpected error
other verbs: list | promote VERSION | rollback | show [VERSION]   (versions under --model-dir)
             run --config FILE     scheduled retraining with a quality gate (`run --help`)
             schedule CRON --config FILE   built-in scheduler for `run`
"""


def _train_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="recsvc-train",
        description="Train co-purchase, category, ALS, substitute and popularity models from order "
                    "history, evaluate them on a time-based hold-out against baselines, and publish "
                    "a versioned model bundle under --model-dir (made `current` for the service).",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--orders", required=True, help="order lines file/dir/URL (see inputs below)")
    p.add_argument("--catalog", help="catalog file/URL (required for --format standard)")
    p.add_argument("--model-dir", required=True, type=Path, help="where bundles live (DIR/versions, DIR/current)")
    p.add_argument("--format", default="standard", choices=["standard", "online-retail", "complete-journey"],
                   help="input layout (default: standard)")
    p.add_argument("--config", type=Path, help="TOML file with [copurchase], [als], [substitutes], [eval] ... settings")
    p.add_argument("--holdout", type=float, help="fraction of the period held out for evaluation (default 0.1)")
    p.add_argument("--no-refit", action="store_true", help="publish the models fitted on the training split")
    p.add_argument("--no-current", action="store_true", help="write the bundle but do not make it current")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (logs only)")
    p.add_argument("--json", action="store_true", help="print the result as JSON instead of tables")
    return p


def _version_parser(verb: str) -> argparse.ArgumentParser:
    helps = {"list": "list bundle versions (newest last), marking the current one",
             "promote": "make VERSION the current bundle; the service follows within seconds",
             "rollback": "make the version before the current one current again",
             "show": "print a bundle's manifest summary (default: current)"}
    p = argparse.ArgumentParser(prog=f"recsvc-train {verb}", description=helps[verb])
    if verb in ("promote", "show"):
        p.add_argument("version", nargs="?" if verb == "show" else None)
    p.add_argument("--model-dir", required=True, type=Path)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    verb = argv[0] if argv and argv[0] in VERBS else "train"
    if argv and argv[0] in VERBS:
        argv = argv[1:]
    from training.bundle import BundleError

    try:
        if verb == "train":
            return _train(_train_parser().parse_args(argv))
        if verb == "run":
            return _run(_run_parser().parse_args(argv))
        if verb == "schedule":
            return _schedule(_schedule_parser().parse_args(argv))
        return _versions(verb, _version_parser(verb).parse_args(argv))
    except BundleError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def _train(args: argparse.Namespace) -> int:
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    from training.config import ConfigError, TrainConfig
    from training.io import InputError
    from training.pipeline import train

    try:
        cfg = TrainConfig.from_toml(args.config) if args.config else TrainConfig()
        if args.holdout is not None:
            if not 0 < args.holdout < 1:
                raise ConfigError(f"--holdout must be between 0 and 1, got {args.holdout}")
            cfg.eval.holdout_fraction = args.holdout
        if args.no_refit:
            cfg.refit_full = False
        if args.format == "standard" and not args.catalog:
            raise ConfigError("--catalog is required with --format standard")
        result = train(args.orders, args.catalog, args.model_dir, fmt=args.format, cfg=cfg,
                       make_current=not args.no_current, progress=not args.no_progress and sys.stderr.isatty())
    except (InputError, ConfigError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({"version": result.version, "bundle": str(result.bundle_path),
                          "timings_s": result.timings, "peak_rss_mb": result.peak_rss_mb,
                          "refit_peak_rss_mb": result.refit_peak_rss_mb,
                          "metrics": [r.__dict__ for r in result.rows],
                          "data_report": result.report.to_dict()}, indent=2, default=str))
        return 0
    print(result.report.format())
    print()
    print(result.table())
    print()
    total = sum(result.timings.values())
    print("stage times: " + ", ".join(f"{k} {v:.1f}s" for k, v in result.timings.items())
          + f"; total {total:.1f}s; peak RSS {result.peak_rss_mb:.0f} MB"
          + (f" (+ {result.refit_peak_rss_mb:.0f} MB in the refit's child process)"
             if result.refit_peak_rss_mb else ""))
    print(f"published {result.bundle_path}" + ("" if args.no_current else " (current)"))
    return 0


def _versions(verb: str, args: argparse.Namespace) -> int:
    from training.bundle import BundleError, current_version, list_versions, read_manifest, set_current
    from training.gate import read_verdict

    versions = list_versions(args.model_dir)
    cur = current_version(args.model_dir)
    verdicts = {v: read_verdict(args.model_dir / "versions" / v) for v in versions}
    if verb == "list":
        if not versions:
            print(f"no bundles in {args.model_dir}")
        for v in versions:
            mark = {"rejected": "  (rejected by the quality gate)", "forced": "  (forced past the quality gate)"}
            print(("* " if v == cur else "  ") + v + mark.get(verdicts[v] or "", ""))
        return 0
    if verb == "promote":
        set_current(args.model_dir, args.version)
        if verdicts.get(args.version) == "rejected":
            print(f"warning: {args.version} was rejected by the quality gate (see its gate.json)", file=sys.stderr)
        print(f"current -> {args.version}")
        return 0
    if verb == "rollback":
        # Bundles the gate rejected were never live: rolling back skips them.
        older = [v for v in versions[:versions.index(cur)] if verdicts[v] != "rejected"] if cur in versions else []
        if not older:
            raise BundleError(f"no older version to roll back to in {args.model_dir} (current: {cur})")
        prev = older[-1]
        set_current(args.model_dir, prev)
        print(f"current -> {prev} (was {cur})")
        return 0
    target = args.model_dir / "versions" / args.version if args.version else args.model_dir
    m = read_manifest(target)
    summary = {k: m.get(k) for k in ("id", "created", "fingerprint", "counts", "period", "inputs")}
    summary["gate"] = verdicts.get(str(m.get("id")))  # passed / rejected / forced; null if never gated
    print(json.dumps(summary, indent=2))
    return 0


RUN_EPILOG = """\
exit codes: 0 published (also when --force overrode the gate); 1 unexpected error;
  2 bad config or input; 3 rejected by the quality gate (bundle kept, not current);
  4 storage error writing the bundle (disk full, permissions); 5 order database
  unreachable (retry later); 75 another run holds the lock (nothing done)
config: see deploy/retrain.example.toml
"""


def _run_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="recsvc-train run",
        description="One retraining run for a scheduler: train from the configured orders and catalog, "
                    "compare the new bundle with the live one on the same hold-out (quality gate), make it "
                    "current only if it passes, and keep the last N bundles.",
        epilog=RUN_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True, type=Path, help="retrain TOML (inputs, [gate], [train.*])")
    p.add_argument("--force", action="store_true", help="publish even if the quality gate fails (logged)")
    p.add_argument("--progress", action="store_true", help="show a progress bar (off: scheduled runs log)")
    return p


def _schedule_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="recsvc-train schedule",
        description="Run `recsvc-train run --config FILE` whenever the cron expression fires (local time), "
                    "each run in a child process; for hosts without cron, systemd or Kubernetes.",
        epilog='examples: "0 3 * * *" (03:00 daily), "30 2 * * mon-fri", "@hourly"',
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("cron", help="five-field cron expression or @daily/@hourly/...")
    p.add_argument("--config", required=True, type=Path, help="retrain TOML, checked at start")
    p.add_argument("--force", action="store_true", help="pass --force to every run (not recommended)")
    p.add_argument("--run-now", action="store_true", help="run once immediately, then follow the schedule")
    p.add_argument("--max-runs", type=int, help="stop after this many runs (default: run forever)")
    return p


def _run(args: argparse.Namespace) -> int:
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    from training.config import ConfigError
    from training.retrain import RetrainConfig, run

    try:
        cfg = RetrainConfig.from_toml(args.config)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    outcome = run(cfg, force=args.force, progress=args.progress and sys.stderr.isatty())
    if outcome.code != 0:
        print(f"error: {outcome.message}", file=sys.stderr)
    else:
        print(outcome.message)
    return int(outcome.code)


def _schedule(args: argparse.Namespace) -> int:
    from training.config import ConfigError
    from training.retrain import RetrainConfig
    from training.schedule import Cron, CronError, run_command, serve

    try:
        cron = Cron.parse(args.cron)
        RetrainConfig.from_toml(args.config)  # a typo should fail now, not at 3 am
    except (CronError, ConfigError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    command = run_command(args.config.resolve(), ["--force"] if args.force else [])
    last = serve(cron, command, run_now=args.run_now, max_runs=args.max_runs)
    return last if args.max_runs else 0  # a bounded schedule reports its last run


if __name__ == "__main__":
    sys.exit(main())
