"""`recsvc`: run the service, ask it questions, manage stock, prices and promotions.

  recsvc serve --model-dir DIR [--port 50051] [--config FILE] [--workers N]
  recsvc ask complements JKT-1-M [--user alice] [--size XL] [--limit 5]
  recsvc ask substitutes JKT-1-XL --size XL
  recsvc ask bundle JKT-1-M [--max-items 2]
  recsvc ask recommend [--user alice] [--category shirts]
  recsvc admin stock set JKT-1-XL=0 JEANS-1=25 | stock get JKT-1-XL
  recsvc admin prices JKT-1-M=89.90
  recsvc admin promotions list [--active] | create ... | delete ID
  recsvc admin model-info | reload | stats
  recsvc experiments create FILE.yaml | list | show ID | pause ID | stop ID | report ID [--watch] | export ID
  recsvc config                      every configuration key, its default and meaning

`ask`, `admin` and `experiments` talk to a running server (--target, default localhost:50051).
"""
from __future__ import annotations

import argparse
import sys
import textwrap
from datetime import datetime, timedelta, timezone

import grpc

from recsvc.config import ConfigError, describe, load_config

REASONS = {0: "", 1: "co-purchase", 2: "similar", 3: "category", 4: "personal", 5: "popular", 6: "test slot"}


def _table(rows: list[list[str]], header: list[str], wrap_last: int = 60) -> str:
    """Plain aligned columns; the last column (the explanation) wraps."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header[:-1])]
    indent = sum(widths) + 2 * len(widths)
    out = ["  ".join(h.ljust(w) for h, w in zip(header[:-1], widths)) + "  " + header[-1]]
    for r in rows:
        lines = textwrap.wrap(r[-1], wrap_last) or [""]
        out.append("  ".join(c.ljust(w) for c, w in zip(r[:-1], widths)) + "  " + lines[0])
        out += [" " * indent + line for line in lines[1:]]
    return "\n".join(out)


def _price(item) -> str:
    return f"{item.price:,.2f}" if item.HasField("price") else "-"


def _items_table(items) -> str:
    rows = [[str(n), it.item_id + (f" ({it.variant_id})" if it.variant_id else ""), it.title[:28], it.category,
             _price(it), "yes" if it.in_stock else "NO", REASONS.get(it.reason, str(it.reason)), it.explanation]
            for n, it in enumerate(items, 1)]
    return _table(rows, ["#", "item", "title", "category", "price", "in stock", "reason", "why"])


def _attributes(pairs: list[str]) -> dict[str, str]:
    out = {}
    for p in pairs:
        key, sep, value = p.partition("=")
        if not sep:
            raise SystemExit(f"--attr {p!r}: expected KEY=VALUE, e.g. --attr color=red")
        out[key] = value
    return out


def _pairs(pairs: list[str], cast, what: str) -> dict:
    out = {}
    for p in pairs:
        key, sep, value = p.rpartition("=")
        try:
            if not sep or not key:
                raise ValueError
            out[key] = cast(value)
        except ValueError:
            raise SystemExit(f"{p!r}: expected ITEM={what}, e.g. JKT-1-XL={'0' if cast is int else '89.90'}") from None
    return out


def _when(text: str) -> datetime:
    """ISO 8601 time, or 'now', or now+2h / now+3d."""
    now = datetime.now(timezone.utc)
    if text == "now":
        return now
    if text.startswith("now+"):
        n, unit = text[4:-1], text[-1]
        return now + timedelta(**{{"m": "minutes", "h": "hours", "d": "days"}[unit]: float(n)})
    t = datetime.fromisoformat(text)
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def cmd_serve(args) -> int:
    from recsvc.server import serve

    overrides = {"model_dir": args.model_dir, "port": args.port, "workers": args.workers, "host": args.host,
                 "state_url": args.state_url, "threads": args.threads}
    return serve(load_config(args.config, overrides=overrides))


def cmd_ask(args) -> int:
    from recsvc.client import Client

    filters = dict(size=args.size, attributes=_attributes(args.attr), categories=args.category,
                   include_out_of_stock=args.include_out_of_stock, min_price=args.min_price,
                   max_price=args.max_price, exclude=args.exclude)
    ctx = dict(user=args.user, session=args.session, cart=args.cart)
    with Client(args.target, timeout=args.timeout) as c:
        if args.kind == "bundle":
            if len(args.items) != 1:
                raise SystemExit("ask bundle: give exactly one ITEM")
            b = c.bundle(args.items[0], max_items=args.max_items, **ctx, **filters)
            print(f"bundle for {b.anchor.title} ({b.anchor.item_id}), model {b.model_version}")
            print(_items_table([b.anchor, *b.items]))
            print(f"\nlist price {b.list_price:,.2f}   bundle price {b.bundle_price:,.2f}   saving {b.saving:,.2f}")
            if b.HasField("promotion"):
                print(f"promotion {b.promotion.name!r} ({b.promotion.id}), valid until "
                      f"{b.valid_until.ToDatetime(tzinfo=timezone.utc):%Y-%m-%d %H:%M} UTC")
            print(b.explanation)
            return 0
        if args.kind == "complements":
            if not args.items:
                raise SystemExit("ask complements: give at least one ITEM")
            r = c.complements(args.items, limit=args.limit, **ctx, **filters)
        elif args.kind == "substitutes":
            if len(args.items) != 1:
                raise SystemExit("ask substitutes: give exactly one ITEM")
            r = c.substitutes(args.items[0], limit=args.limit, **ctx, **filters)
        else:
            r = c.recommend(limit=args.limit, user=args.user, session=args.session, cart=[*args.cart, *args.items],
                            **filters)
        print(f"{args.kind} for {', '.join(args.items) or args.user or 'an unknown customer'}: "
              f"{len(r.items)} item(s), model {r.model_version}, request {r.request_id}")
        print(_items_table(r.items) if r.items else "(nothing matches)")
    return 0


def cmd_admin(args) -> int:
    from recsvc.client import Client

    with Client(args.target, timeout=args.timeout) as c:
        what = args.what
        if what == "stock":
            if args.action == "set":
                r = c.update_stock(_pairs(args.items, int, "QUANTITY"))
                print(f"stock updated for {r.applied} item(s) (change #{r.seq})")
            else:
                for item_id, ok in c.get_stock(args.items).items():
                    print(f"{item_id}  {'in stock' if ok else 'OUT OF STOCK'}")
        elif what == "prices":
            r = c.update_prices(_pairs(args.items, float, "PRICE"))
            print(f"prices updated for {r.applied} variant(s)")
        elif what == "promotions":
            return _promotions(c, args)
        elif what == "model-info":
            m = c.model_info()
            print(f"serving   {m.version or '(nothing yet)'}\ncurrent   {m.current_version}\npath      {m.path}\n"
                  f"created   {m.created}\nproducts  {m.products:,} ({m.variants:,} variants, {m.categories} "
                  f"categories)\ncustomers {m.users:,}\nloaded in {m.load_seconds:.2f} s\n"
                  f"versions  {', '.join(m.versions)}")
            if m.last_reload_error:
                print(f"last refused bundle: {m.last_reload_error}")
        elif what == "reload":
            print(c.reload().message)
        elif what == "stats":
            s = c.server_stats()
            print(f"pid {s.pid}, up {s.uptime_s:.0f} s, model {s.model_version}, {s.swaps} swap(s)")
            print(_table([[m.method, f"{m.count:,}", f"{m.errors:,}", f"{m.handler_p50_ms:.3f}",
                           f"{m.handler_p99_ms:.3f}", f"{m.handler_cpu_p99_ms:.3f}", f"{m.handler_max_ms:.3f}"]
                          for m in s.methods],
                         ["method", "calls", "errors", "p50 ms", "p99 ms", "CPU p99 ms", "max ms"]))
    return 0


def _promotions(c, args) -> int:
    if args.action == "list":
        promos = c.list_promotions(active_only=args.active)
        rows = [[p.id, p.name, ("%g%%" % p.value) if p.kind == 1 else f"{p.value:,.2f}",
                 f"{p.cap:,.2f}" if p.HasField("cap") else "-", str(p.priority),
                 f"{p.starts_at.ToDatetime():%Y-%m-%d %H:%M}", f"{p.ends_at.ToDatetime():%Y-%m-%d %H:%M}",
                 ", ".join([*p.item_ids, *p.categories])] for p in promos]
        print(_table(rows, ["id", "name", "off", "cap", "prio", "from (UTC)", "until (UTC)", "applies to"])
              if rows else "no promotions")
    elif args.action == "create":
        kind, value = ("percent", args.percent) if args.percent is not None else ("amount", args.amount)
        if value is None:
            raise SystemExit("promotions create: give --percent P or --amount A")
        p = c.create_promotion(name=args.name, kind=kind, value=value, item_ids=args.items,
                               categories=args.categories, starts_at=_when(args.start), ends_at=_when(args.end),
                               cap=args.cap, priority=args.priority, min_items=args.min_items)
        print(f"created promotion {p.id} ({p.name})")
    else:
        for promo_id in args.ids:
            print(f"{promo_id}: {'deleted' if c.delete_promotion(promo_id) else 'no such promotion'}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="recsvc", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True, metavar="{serve,ask,admin,experiments,config}")
    s = sub.add_parser("serve", help="run the gRPC server", description="Run the gRPC server. Keys not given as "
                       "flags come from --config FILE, then RECSVC_* variables; `recsvc config` lists them.")
    s.add_argument("--model-dir", help="directory with versions/ and current (from recsvc-train)")
    s.add_argument("--port", type=int, help="port (default 50051; 0 = any free port)")
    s.add_argument("--host", help="address to listen on (default [::])")
    s.add_argument("--config", help="TOML or YAML file of configuration keys")
    s.add_argument("--workers", type=int, help="server processes sharing the port (default 1)")
    s.add_argument("--threads", type=int, help="handler threads per process (default 1; see `recsvc config`)")
    s.add_argument("--state-url", help="sqlite:///path or postgresql://... (default: state.db in the model dir)")
    s.set_defaults(fn=cmd_serve)

    def client_flags(p: argparse.ArgumentParser) -> None:
        p.add_argument("--target", default="localhost:50051", help="server address (default localhost:50051)")
        p.add_argument("--timeout", type=float, default=10.0, help="deadline in seconds (default 10)")

    a = sub.add_parser("ask", help="ask the server what the chatbot would ask",
                       description="Ask a running server; prints a table with the reason for each item.")
    a.add_argument("kind", choices=["complements", "substitutes", "bundle", "recommend"])
    a.add_argument("items", nargs="*", metavar="ITEM", help="variant or product id(s); recommend: context items")
    a.add_argument("--user", default="", help="customer id")
    a.add_argument("--session", default="", help="chat session id (keys A/B slots for anonymous customers)")
    a.add_argument("--size", help="only items in stock in this size (a variant attribute)")
    a.add_argument("--attr", action="append", default=[], metavar="KEY=VALUE", help="other variant attributes")
    a.add_argument("--limit", type=int, help="items to return (1..100, default 10)")
    a.add_argument("--max-items", type=int, help="bundle: complements to add (default 1)")
    a.add_argument("--cart", action="append", default=[], metavar="ITEM", help="an item in the cart (repeatable)")
    a.add_argument("--exclude", action="append", default=[], metavar="ITEM", help="never return this item")
    a.add_argument("--category", action="append", default=[], help="only this category (repeatable)")
    a.add_argument("--min-price", type=float)
    a.add_argument("--max-price", type=float)
    a.add_argument("--include-out-of-stock", action="store_true")
    client_flags(a)
    a.set_defaults(fn=cmd_ask)

    ad = sub.add_parser("admin", help="stock, prices, promotions, model info, reload, stats")
    client_flags(ad)
    asub = ad.add_subparsers(dest="what", required=True)
    st = asub.add_parser("stock", help="set or read stock: `stock set ITEM=QTY ...`, `stock get ITEM ...` "
                                       "(a product id stands for all its variants)")
    st.add_argument("action", choices=["set", "get"])
    st.add_argument("items", nargs="+", metavar="ITEM[=QTY]")
    pr = asub.add_parser("prices", help="override prices: `prices ITEM=PRICE ...`")
    pr.add_argument("items", nargs="+", metavar="ITEM=PRICE")
    po = asub.add_parser("promotions", help="list, create or delete bundle promotions")
    po.add_argument("action", choices=["list", "create", "delete"])
    po.add_argument("ids", nargs="*", metavar="ID", help="delete: promotion ids")
    po.add_argument("--active", action="store_true", help="list: only those active now")
    po.add_argument("--name", default="", help="create: shown to customers")
    po.add_argument("--percent", type=float, help="create: percent off the bundle")
    po.add_argument("--amount", type=float, help="create: money off the bundle")
    po.add_argument("--cap", type=float, help="create: the saving never exceeds this")
    po.add_argument("--item", dest="items", action="append", default=[], help="create: item/product it covers")
    po.add_argument("--category", dest="categories", action="append", default=[], help="create: category it covers")
    po.add_argument("--start", default="now", help="create: ISO time, 'now' or now+2h (default now)")
    po.add_argument("--end", default="now+1d", help="create: ISO time or now+3d (default now+1d)")
    po.add_argument("--priority", type=int, default=0)
    po.add_argument("--min-items", type=int, help="create: lines a bundle needs (default 2)")
    for name, text in (("model-info", "the model being served"), ("reload", "load `current` now"),
                       ("stats", "request counts and handler times of one server process")):
        asub.add_parser(name, help=text)
    ad.set_defaults(fn=cmd_admin)

    from recsvc.cli_experiments import add_parser as add_experiments  # it imports this module's helpers

    add_experiments(sub, client_flags)

    c = sub.add_parser("config", help="every configuration key, its default and meaning")
    c.set_defaults(fn=lambda _args: print(describe()) or 0)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.fn(args) or 0)
    except ConfigError as e:
        print(f"configuration error: {e}", file=sys.stderr)
        return 2
    except grpc.RpcError as e:
        print(f"error: {e.code().name}: {e.details()}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
