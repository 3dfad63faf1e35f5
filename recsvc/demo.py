"""`make demo`: a demo apparel shop, trained, served on localhost, and a short chat.

    python -m recsvc.demo [--dir demo-model] [--port 50051] [--serve]

1. generates a synthetic shop (orders, catalog with sizes/colours, stock levels);
2. trains and publishes a bundle (`recsvc-train` on those files), printing the data
   report and the evaluation table;
3. starts the gRPC server on localhost, loads the stock levels through Admin;
4. plays a scripted conversation: a jacket and what goes with it, a sold-out size and
   its substitutes, a bundle offer with its saving, recommendations for a customer.
With --serve it then keeps serving until Ctrl-C (try `recsvc ask ...` beside it).
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def _say(who: str, text: str) -> None:
    print(f"\n{who:>9}: {text}")


def pick_jacket(shop, answers_for) -> str:
    """A jacket style with planted complements whose M variant is in stock."""
    stock = dict(zip(shop.stock["item_id"], shop.stock["quantity"]))
    cat = shop.catalog
    anchors = [a for a, _ in shop.truth.complement_pairs]
    for style in dict.fromkeys(anchors):
        rows = cat[(cat["product_id"] == style) & (cat["size"] == "M")]
        if len(rows) and rows.iloc[0]["category"] == "jackets" and stock.get(rows.iloc[0]["item_id"], 1) > 0:
            if answers_for(rows.iloc[0]["item_id"]):
                return str(rows.iloc[0]["item_id"])
    raise SystemExit("demo shop has no jacket with planted complements in stock (generator changed?)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="recsvc-demo", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", type=Path, default=Path("demo-model"), help="where data, bundles and state go")
    ap.add_argument("--port", type=int, default=0, help="port to serve on (default: a free one)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--serve", action="store_true", help="keep serving after the conversation until Ctrl-C")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    from recsvc.cli import _items_table
    from recsvc.client import Client
    from recsvc.config import Config
    from recsvc.server import build_server
    from training.demo_data import generate_shop, write_shop
    from training.pipeline import train

    print("== 1. a demo shop =========================================================")
    shop = generate_shop(seed=args.seed, messy=True)
    files = write_shop(shop, args.dir / "data")
    print(f"{len(shop.orders):,} order lines, {shop.catalog['product_id'].nunique()} products in "
          f"{shop.catalog['category'].nunique()} categories ({len(shop.catalog):,} size/colour variants) "
          f"-> {args.dir / 'data'}")

    print("\n== 2. training (recsvc-train) ==============================================")
    result = train(files["orders"], files["catalog"], args.dir, progress=sys.stderr.isatty())
    print(result.report.format())
    print()
    print(result.table())
    print(f"\npublished bundle {result.version} in {sum(result.timings.values()):.1f}s")

    print("\n== 3. serving ==============================================================")
    config = Config(model_dir=str(args.dir), host="127.0.0.1", port=args.port)
    running = build_server(config)
    target = f"127.0.0.1:{running.port}"
    print(f"recsvc listening on {target} (health: SERVING once the model is loaded)")
    try:
        with Client(target, timeout=10) as c:
            c.update_stock(dict(zip(shop.stock["item_id"], shop.stock["quantity"].astype(int))))
            print(f"stock levels loaded: {len(shop.stock):,} variants, "
                  f"{int((shop.stock['quantity'] == 0).sum())} sold out")
            converse(c, shop, _items_table)
        if args.serve:
            print(f"\nserving on {target}; try: recsvc ask complements {shop.catalog['item_id'].iloc[0]} "
                  f"--target {target}   (Ctrl-C stops)")
            import signal
            signal.sigwait({signal.SIGINT, signal.SIGTERM})
    finally:
        running.stop(grace=2)
    return 0


def converse(c, shop, items_table) -> None:
    print("\n== 4. a conversation =======================================================")
    jacket = pick_jacket(shop, lambda item: len(c.complements([item], limit=3).items) > 0)
    title = shop.catalog.set_index("item_id").loc[jacket, "title"]
    _say("customer", f"I like this jacket ({title}, {jacket}). What goes with it?")
    r = c.complements([jacket], limit=4)
    _say("bot", f"These go well with it (model {r.model_version}):")
    print(items_table(r.items))

    style = jacket.rsplit("-", 1)[0]
    xl = f"{style}-XL"
    _say("customer", "Do you have it in XL?")
    c.update_stock({xl: 0})  # the XL sells out right now: the next request already knows
    r = c.substitutes(jacket, limit=4, size="XL")
    _say("bot", "Sorry, XL just sold out. Similar jackets in stock in XL:")
    print(items_table(r.items))

    now = datetime.now(timezone.utc)
    promo = c.create_promotion(name="Winter set", kind="percent", value=15, cap=100.0,
                               categories=["jackets"], starts_at=now - timedelta(minutes=1),
                               ends_at=now + timedelta(days=7), priority=1)
    _say("merchandiser", f"(creates promotion {promo.name!r}: jackets + a complement 15 % off, "
                         f"at most 100.00 saved, for 7 days)")
    b = c.bundle(jacket, max_items=1)
    _say("bot", b.explanation or "A bundle for you:")
    print(items_table([b.anchor, *b.items]))
    print(f"           list {b.list_price:,.2f}  bundle {b.bundle_price:,.2f}  saving {b.saving:,.2f}")

    user = str(shop.orders["user_id"].iloc[0])
    _say("customer", f"(customer {user}) Anything else you'd recommend for me?")
    r = c.recommend(user=user, limit=4, cart=[jacket])
    print(items_table(r.items))
    _say("customer", "(a new visitor) Show me some t-shirts.")
    r = c.recommend(user="visitor-without-history", limit=3, categories=["t-shirts"])
    print(items_table(r.items))


if __name__ == "__main__":
    sys.exit(main())
