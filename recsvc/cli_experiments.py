"""`recsvc experiments ...`: A/B slot experiments for merchandisers, against a running server.

  recsvc experiments create spring.yaml            (or .json; or the flags below)
  recsvc experiments create --name "Spring" --item TRS-1 --item TRS-2 --rpc complements \\
         --slot 3 --share 30 --end now+14d [--allocation thompson] [--targeting]
  recsvc experiments list | show ID | pause ID | resume ID | stop ID
  recsvc experiments report ID [--watch [SECONDS]]
  recsvc experiments export ID [-o FILE.csv]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import timezone
from pathlib import Path

from recsvc.cli import _table, _when

STATUS_WORDS = {"pause": "paused", "resume": "resumed", "stop": "stopped"}


def _when_text(ts) -> str:
    return f"{ts.ToDatetime(tzinfo=timezone.utc):%Y-%m-%d %H:%M}"


def _definition(args) -> str:
    if args.id:  # create FILE
        try:
            return Path(args.id).read_text()
        except OSError as e:
            raise SystemExit(f"experiments create: cannot read {args.id} ({e.strerror})") from None
    if not args.name or not args.items:
        raise SystemExit("experiments create: give a FILE.yaml/.json, or at least --name and --item")
    d = {"name": args.name, "item_ids": args.items, "rpcs": args.rpcs or ["complements"], "slot": args.slot,
         "share_pct": args.share, "starts_at": _when(args.start).isoformat(),
         "ends_at": _when(args.end).isoformat(), "allocation": args.allocation, "top_n": args.top_n,
         "metric": args.metric, "targeting": args.targeting}
    if args.control is not None:
        d["control_pct"] = args.control
    return json.dumps(d)


def _show(e) -> str:
    return "\n".join([
        f"id          {e.id}", f"name        {e.name}", f"status      {e.status}",
        f"where       {', '.join(e.rpcs)}, slot {e.slot}",
        f"customers   {e.share_pct:g}% take part, {e.control_pct:g}% of them in control (organic list)",
        f"running     {_when_text(e.starts_at)} to {_when_text(e.ends_at)} UTC",
        f"allocation  {e.allocation}" + (f" (floor {e.floor_pct:g}% per item)" if e.allocation == "thompson" else ""),
        f"question    top {e.top_n} of {len(e.item_ids)} by {e.metric}",
        f"targeting   {'only where the category fits' if e.targeting else 'off'}",
        f"test items  {', '.join(e.item_ids)}"])


def cmd_experiments(args) -> int:
    from recsvc.client import Client

    with Client(args.target, timeout=args.timeout) as c:
        action = args.action
        if action == "create":
            e = c.create_experiment(_definition(args))
            print(f"created experiment {e.id} ({e.name})\n{_show(e)}")
        elif action == "list":
            rows = [[e.id, e.name, e.status, ", ".join(e.rpcs), str(e.slot), f"{e.share_pct:g}%",
                     f"{_when_text(e.starts_at)} - {_when_text(e.ends_at)}", ", ".join(e.item_ids)]
                    for e in c.list_experiments()]
            print(_table(rows, ["id", "name", "status", "rpcs", "slot", "share", "running (UTC)", "test items"])
                  if rows else "no experiments")
        elif action == "show":
            print(_show(c.get_experiment(_one(args))))
        elif action in STATUS_WORDS:
            e = c.set_experiment_status(_one(args), action)
            print(f"experiment {e.id} ({e.name}) {STATUS_WORDS[action]}: now {e.status}")
        elif action == "report":
            return _report(c, _one(args), args.watch)
        elif action == "export":
            text = c.export_experiment(_one(args))
            if args.output:
                Path(args.output).write_text(text)
                print(f"wrote {text.count(chr(10)) - 1} row(s) to {args.output}")
            else:
                sys.stdout.write(text)
    return 0


def _one(args) -> str:
    if not args.id:
        raise SystemExit(f"experiments {args.action}: give the experiment ID (`recsvc experiments list`)")
    return args.id


def _report(c, experiment_id: str, watch: float | None) -> int:
    """Print the report; with --watch, again every `watch` seconds until Ctrl-C or the end."""
    while True:
        r = c.experiment_report(experiment_id)
        if watch:
            print("\033[H\033[J", end="")  # clear the terminal between refreshes
        print(r.text, flush=True)
        if not watch or r.experiment.status == "stopped":
            return 0
        try:
            time.sleep(watch)
        except KeyboardInterrupt:
            return 0


def add_parser(sub, client_flags) -> None:
    ex = sub.add_parser("experiments", help="A/B slot experiments: create, list, show, pause, resume, stop, "
                        "report, export", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ex.add_argument("action", choices=["create", "list", "show", "pause", "resume", "stop", "report", "export"])
    ex.add_argument("id", nargs="?", metavar="ID|FILE", help="the experiment (create: a .yaml/.json definition)")
    ex.add_argument("--name", help="create: the experiment's name")
    ex.add_argument("--item", dest="items", action="append", default=[], help="create: a test item (repeatable)")
    ex.add_argument("--rpc", dest="rpcs", action="append", default=[],
                    choices=["complements", "substitutes", "recommend"], help="create: where (default complements)")
    ex.add_argument("--slot", type=int, default=3, help="create: 1-based position (default 3)")
    ex.add_argument("--share", type=float, default=10.0, help="create: percent of customers (default 10)")
    ex.add_argument("--control", type=float, help="create: percent of them in control (default 20)")
    ex.add_argument("--start", default="now", help="create: ISO time, 'now' or now+2h (default now)")
    ex.add_argument("--end", default="now+14d", help="create: ISO time or now+14d (default now+14d)")
    ex.add_argument("--allocation", choices=["even", "thompson"], default="even")
    ex.add_argument("--top-n", type=int, default=3, help="create: how many winners to pick (default 3)")
    ex.add_argument("--metric", choices=["click", "add_to_cart", "purchase"], default="add_to_cart")
    ex.add_argument("--targeting", action="store_true", help="create: only where the category fits")
    ex.add_argument("--watch", type=float, nargs="?", const=5.0, metavar="SECONDS",
                    help="report: print again every SECONDS (default 5) until Ctrl-C")
    ex.add_argument("-o", "--output", help="export: write the CSV here (default: standard output)")
    client_flags(ex)
    ex.set_defaults(fn=cmd_experiments)
