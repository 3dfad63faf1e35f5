"""The compiled answers (recsvc/fast/_kernel.pyx) are the Python answers, byte for byte.

The Python path (`recsvc.answers` + `recsvc.wire.items_response` / `bundle_response`) is
the one definition of an answer. The rules checked here, over seeded random requests on
several shops, for GetComplements, GetSubstitutes, Recommend and GetBundle:

  * whenever the kernel answers (not None), its bytes are exactly the serialised
    `wire.items_response(answer, request_id)` (bundles: `wire.bundle_response`) and its
    reasons are the answer's reasons (bundles: its items' reasons);
  * whenever Python refuses a request (BadRequest, UnknownItem; bundles also Unpriced,
    or a price `price_bundle` rejects), the kernel returns None; it never raises;
  * bundles are compared with the promotions active at the request's moment, as the
    server passes them (`active_promotions`), under promotions of every kind;
  * the kernel may decline (None) a valid request, but it answers most plain ones: each
    comparison asserts a minimum handled share, so a kernel that always declines fails.

A failure lists the smallest differing requests, both decoded responses and the first
field that differs.
"""
from __future__ import annotations

import math
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import grpc
import numpy as np
import pytest
from google.protobuf import text_format
from google.protobuf.message import DecodeError

from bench.serve_synthetic import synthetic_arrays, write_synthetic
from recsvc import wire
from recsvc.answers import BadRequest, UnknownItem, Unpriced, bundle, complements, recommend, substitutes
from recsvc.answers.common import SCAN_CAP, Reason
from recsvc.config import Config
from recsvc.fast import UNAVAILABLE, Kernel
from recsvc.model import load_model
from recsvc.operations import create_promotion, update_prices, update_stock
from recsvc.promotions import Promotion, PromotionBook
from recsvc.runtime import make_live
from recsvc.server import build_server
from recsvc.store import open_store
from recsvc.v1 import recommender_pb2 as pb
from recsvc.v1 import recommender_pb2_grpc as pb_grpc
from tests.recsvc.bundles import write_apparel
from training.bundle import write_bundle

@pytest.fixture(autouse=True)
def _kernel_is_built():
    """`pip install -e .` (make install, CI) compiles the kernel; without it every request
    would quietly take the slower Python path, so its absence fails every test here."""
    if Kernel is None:
        pytest.fail(UNAVAILABLE)

RPCS = ("complements", "substitutes")
MORE_RPCS = ("recommend", "bundle")
ALL_RPCS = RPCS + MORE_RPCS
RID = "req-7f3a"
PYTHON = {"complements": (complements, wire.complements_query),
          "substitutes": (substitutes, wire.substitutes_query),
          "recommend": (recommend, wire.recommend_query)}
RESPONSE = {"bundle": pb.BundleResponse}  # else ItemsResponse
# What Python raises for a request it cannot answer. A bundle's price_bundle also rejects
# a price that is not finite (ValueError: INTERNAL through the server): not the kernel's.
REFUSALS = {"bundle": (BadRequest, UnknownItem, Unpriced, ValueError)}


# --- comparing one request ----------------------------------------------------------------

@dataclass
class Mismatch:
    request: object
    kernel: tuple
    python: bytes | None  # None: Python refused the request
    rule: str
    python_reasons: list = field(default_factory=list)
    error: str = ""  # the kernel raised this


@dataclass
class Tally:
    """Outcomes of the comparisons of one RPC: handled (same bytes), declined (kernel None,
    Python answers), refused (both: Python raised, kernel None), and mismatches."""
    rpc: str
    handled: int = 0
    declined: int = 0
    refused: int = 0
    mismatches: list[Mismatch] = field(default_factory=list)
    reasons: Counter = field(default_factory=Counter, repr=False)  # of the items the kernel answered alike
    last: object = field(default=None, repr=False)  # the Python answer to the last request compared (None: refused)

    @property
    def compared(self) -> int:
        return self.handled + self.declined + self.refused + len(self.mismatches)

    @property
    def share(self) -> float:
        """Handled share of the requests Python answers."""
        answered = self.handled + self.declined
        return self.handled / answered if answered else 0.0

    def check(self, min_share: float, min_refused: int = 0, min_reasons: dict | None = None) -> None:
        """`min_reasons`: Reason -> how many items of it the kernel must have answered
        (each of its paths taken, e.g. Recommend's personal and popular ones)."""
        print(self)  # shown with -s, or beside a failure
        assert not self.mismatches, report(self)
        assert self.share >= min_share, (f"{self.rpc}: the kernel answered only {self.handled} of the "
                                         f"{self.handled + self.declined} valid requests ({self.share:.0%} < "
                                         f"{min_share:.0%})")
        assert self.refused >= min_refused, f"{self.rpc}: only {self.refused} refused requests were generated"
        for reason, n in (min_reasons or {}).items():
            assert self.reasons[reason] >= n, (f"{self.rpc}: only {self.reasons[reason]} {Reason(reason).name} items "
                                               f"answered by the kernel (< {n})")

    def __str__(self) -> str:
        reasons = ", ".join(f"{Reason(r).name} {n}" for r, n in sorted(self.reasons.items()))
        return (f"{self.rpc}: {self.compared} compared, {self.handled} handled, {self.declined} declined, "
                f"{self.refused} refused, {len(self.mismatches)} mismatches, share {self.share:.1%}"
                + (f" (items: {reasons})" if reasons else ""))


def active_promotions(live, now: datetime) -> list:
    """What the server passes the kernel's bundle: the promotions active at `now`."""
    return live.promotions.active(now)


def promotions_active(live, now: datetime) -> bool:
    return bool(active_promotions(live, now))


def kernel_answer(kernel, live, rpc: str, request, request_id: str, now: datetime | None = None):
    args = (request, live.inventory.view(), live.prices.view(), request_id)
    if rpc != "bundle":
        return getattr(kernel, rpc)(*args)
    now = now or datetime.now(timezone.utc)
    return kernel.bundle(*args, active_promotions(live, now), now)


def python_answer(live, rpc: str, request, request_id: str, now: datetime):
    """(the answer, its serialised response, its reasons), as the server's Python path."""
    if rpc == "bundle":
        b = bundle(live, wire.bundle_query(request), now)
        return b, wire.bundle_response(b, request_id).SerializeToString(), [i.reason for i in b.items]
    answer, query = PYTHON[rpc]
    a = answer(live, query(request, live.config.default_limit))
    return a, wire.items_response(a, request_id).SerializeToString(), list(a.reasons)


def compare(live, rpc: str, request, tally: Tally, request_id: str = RID) -> bytes | None:
    """Kernel vs Python on one request, at one moment; the kernel's bytes when it answers."""
    now = datetime.now(timezone.utc)
    tally.last = None
    try:
        out = kernel_answer(live.kernel, live, rpc, request, request_id, now)
    except Exception as e:  # noqa: BLE001 - any error must be a None
        tally.mismatches.append(Mismatch(request, (b"", ()), None, "the kernel raised: it must return None",
                                         error=f"{type(e).__name__}: {e}"))
        return None
    try:
        a, ref, want = python_answer(live, rpc, request, request_id, now)
    except REFUSALS.get(rpc, (BadRequest, UnknownItem)) as e:
        if out is None:
            tally.refused += 1
        else:
            tally.mismatches.append(Mismatch(request, out, None, f"Python refuses the request "
                                                                 f"({type(e).__name__}: {e}); the kernel "
                                                                 f"must return None"))
        return None
    tally.last = a
    if out is None:
        tally.declined += 1
        return None
    data, reasons = out
    if data == ref and list(reasons) == list(want):
        tally.handled += 1
        tally.reasons.update(int(x) for x in reasons)
        return data
    rule = "bytes differ" if data != ref else "reasons differ"
    tally.mismatches.append(Mismatch(request, out, ref, rule, want))
    return data


def _one_line(msg) -> str:
    return text_format.MessageToString(msg, as_one_line=True, as_utf8=True)


def decoded(data: bytes, response=pb.ItemsResponse) -> str:
    try:
        return _one_line(response.FromString(data))
    except DecodeError as e:
        return f"undecodable ({e}): {data!r}"


def _same_scalar(x, y) -> bool:
    if isinstance(x, float):
        return (x == y and math.copysign(1.0, x) == math.copysign(1.0, y)) or (x != x and y != y)
    return x == y


def _message_difference(k, p, path: str = "") -> str | None:
    """The first field (depth first, in field order) where two messages differ."""
    for f in k.DESCRIPTOR.fields:
        name, x, y = path + f.name, getattr(k, f.name), getattr(p, f.name)
        if f.is_repeated:
            if f.message_type is not None and not f.message_type.GetOptions().map_entry:
                if len(x) != len(y):
                    return f"{name}: {len(x)} from the kernel, {len(y)} from Python"
                for i, (a, b) in enumerate(zip(x, y)):
                    d = _message_difference(a, b, f"{name}[{i}].")
                    if d:
                        return d
            elif list(x) != list(y):
                return f"{name}: kernel {list(x)!r}, Python {list(y)!r}"
            continue
        if f.has_presence and k.HasField(f.name) != p.HasField(f.name):
            return f"{name}: set by {'the kernel' if k.HasField(f.name) else 'Python'} only"
        if f.message_type is not None:
            d = _message_difference(x, y, name + ".")
            if d:
                return d
        elif not _same_scalar(x, y):
            return f"{name}: kernel {x!r}, Python {y!r}"
    return None


def first_difference(kernel: bytes, python: bytes, response=pb.ItemsResponse) -> str:
    try:
        k, p = response.FromString(kernel), response.FromString(python)
    except DecodeError as e:
        i = next((i for i, (x, y) in enumerate(zip(kernel, python)) if x != y), min(len(kernel), len(python)))
        return (f"the kernel's bytes do not decode ({e}); from byte {i}: kernel {kernel[max(0, i - 30):i + 30]!r}, "
                f"Python {python[max(0, i - 30):i + 30]!r}")
    d = _message_difference(k, p)
    if d is None:
        return "equal messages, different encodings (field order or a default value written)"
    return d


def report(t: Tally, show: int = 3) -> str:
    lines = [str(t)]
    response = RESPONSE.get(t.rpc, pb.ItemsResponse)
    for m in sorted(t.mismatches, key=lambda m: (m.request.ByteSize(), len(m.kernel[0])))[:show]:
        lines.append(f"- request {type(m.request).__name__} {{{_one_line(m.request)}}}: {m.rule}")
        if m.error:
            lines.append(f"  kernel raised {m.error}")
            continue
        if m.python is None:
            lines.append(f"  kernel: {decoded(m.kernel[0], response)}")
            continue
        if m.python != m.kernel[0]:
            lines.append(f"  first difference: {first_difference(m.kernel[0], m.python, response)}")
        elif m.rule == "reasons differ":
            lines.append(f"  reasons: kernel {list(m.kernel[1])}, Python {[int(r) for r in m.python_reasons]}")
        lines.append(f"  kernel: {decoded(m.kernel[0], response)}")
        lines.append(f"  python: {decoded(m.python, response)}")
    return "\n".join(lines)


# --- shops ------------------------------------------------------------------------------------

class Shop:
    """A loaded model, the id pools a request generator draws from, and Lives over it."""

    def __init__(self, name: str, model_dir: Path, unknown_ids: list[str], bad_sizes: list[str]) -> None:
        self.name, self.dir = name, model_dir
        m = self.model = load_model(model_dir)
        self.product_ids = m.product_id_list
        self.variant_ids = m.variant_ids.tolist()
        self.categories = list(m.category_names)
        self.sizes = sorted(m.attributes["size"].values)
        self.colors = sorted(m.attributes["color"].values) if "color" in m.attributes else []
        self.bad_sizes = bad_sizes
        some = self.product_ids[len(self.product_ids) // 2]
        self.unknown_ids = unknown_ids + [some + "\x00", some[:-1] + "\x00" + some[-1], " " + some, some + " ",
                                          some.lower(), some + some, "x" * 300, "\x00", "é", "👕"]
        self.unknown_ids = [x for x in self.unknown_ids if m.lookup(x) is None]
        self.user_ids = m.user_index.ids.tolist()  # customers (Recommend's context.user_id)
        u = self.user_ids[len(self.user_ids) // 2]
        self.unknown_users = [x for x in ["U999999", "nobody", u + "\x00", u[:-1] + "\x00" + u[-1], " " + u, u + " ",
                                          u.upper(), u.lower(), u[:-1], u + u, "x" * 300, "\x00", "é", "👕"]
                              if m.user_index.get(x) is None]
        self.row_length = m.complements_idx.shape[1]
        prices = m.variant_price[np.isfinite(m.variant_price)]
        self.median_price = float(np.median(prices)) if len(prices) else 50.0
        self._stores: list = []

    def live(self, **cfg):
        """A Live with a fresh SQLite state (all in stock, catalog prices) and `cfg`."""
        store = open_store(f"sqlite:///{self.dir.parent / f'state-{len(self._stores)}.db'}")
        self._stores.append(store)
        return make_live(self.model, store, PromotionBook(store), Config(model_dir=str(self.dir), **cfg))

    def close(self) -> None:
        for s in self._stores:
            s.close()


def _synthetic(**kw):
    """bench's synthetic shop (arrays and catalog), to be changed before it is written."""
    return synthetic_arrays(**kw)


def _odd_bundle(model_dir: Path) -> None:
    """A small shop with what the common shops lack: two variant attributes (size,
    color), non-ASCII and empty strings (ids, titles, categories, sizes), ids that
    prefix each other, a variant id that is another product's id, prices that are NaN,
    0, -0.0, inf or huge, supports of 0, 1, 1,000+ and below 0, scores of 0, -0.0, NaN,
    denormal and negative, rows with repeats, the anchor itself and padding inside."""
    a, cat = _synthetic(n_products=500, n_categories=7, n_users=5, k=12, factors=2, seed=11)
    rng = np.random.default_rng(11)
    P = len(a["product_ids"])
    ids = []
    for p in range(P):  # no zero padding: P1 is a prefix of P10 and P100
        ids.append(f"é{p}" if p % 7 == 3 else f"商品{p}" if p % 11 == 5 else f"👕{p}" if p % 13 == 6 else f"P{p}")
    ids = np.array(ids)
    names = np.array(["", "Schuhe & Söckchen", "日本の服", "c1", "c1 ", "C1", "🧦" * 40])
    old_pids = cat["product_id"].to_numpy()
    owner = np.searchsorted(a["product_ids"], old_pids)
    sizes = cat["size"].to_numpy().astype(object)
    sizes[rng.random(len(sizes)) < 0.08] = ""  # no size: attribute code -1
    sizes[rng.random(len(sizes)) < 0.05] = "Größe 1"
    sizes[rng.random(len(sizes)) < 0.05] = "one size"
    item_ids = np.char.add(np.char.add(ids[owner], "/"), sizes.astype(str))
    seen: set[str] = set()
    unique = []
    for i, x in enumerate(item_ids.tolist()):  # two sizes of a product made alike: keep ids unique
        x = f"{x}#{i}" if x.endswith("/") or x in seen else x
        seen.add(x)
        unique.append(x)
    item_ids = np.array(unique)
    item_ids[0] = ids[5]  # a variant id that is also a product id: variant ids win
    price = cat["price"].to_numpy().copy()
    r = rng.random(len(price))
    price[r < 0.05] = np.nan
    price[(r >= 0.05) & (r < 0.08)] = 0.0
    price[(r >= 0.08) & (r < 0.09)] = -0.0
    price[(r >= 0.09) & (r < 0.095)] = np.inf
    price[(r >= 0.095) & (r < 0.11)] = 1e12
    no_price = rng.random(P) < 0.05  # every variant unpriced
    price[no_price[owner]] = np.nan
    titles = np.array([("" if p % 9 == 0 else "Jäckchen «" + ids[p] + "»" if p % 4 == 0 else
                        "t" * 500 if p % 17 == 0 else "Product " + ids[p]) for p in range(P)])
    colours = rng.choice(np.array(["red", "Grün", "", "navy blue"]), len(cat))  # a second attribute
    cat = cat.assign(item_id=item_ids, product_id=ids[owner], category=names[a["product_category"][owner]],
                     title=titles[owner], price=price, size=sizes.astype(str), color=colours)
    a["product_ids"], a["category_names"] = ids, names
    supports = np.array([0, 1, 2, 999, 1000, 1001, 123_456, 2**31 - 1, -3, 1_000_000])
    sup = a["complements_support"]
    hit = rng.random(sup.shape) < 0.4
    sup[hit] = rng.choice(supports, hit.sum())
    a["complements_support"] = sup
    for name in ("complements_score", "substitutes_score"):
        s = a[name]
        hit = rng.random(s.shape)
        s[hit < 0.03] = 0.0
        s[(hit >= 0.03) & (hit < 0.05)] = -0.0
        s[(hit >= 0.05) & (hit < 0.06)] = np.nan
        s[(hit >= 0.06) & (hit < 0.07)] = 1e-45
        s[(hit >= 0.07) & (hit < 0.09)] = -0.5
    for name in ("complements_idx", "substitutes_idx"):
        x = a[name]
        x[:, 3] = x[:, 1]  # repeats
        x[::5, 2] = np.arange(P)[::5]  # the anchor itself
        x[::3, 4] = -1  # padding in the middle
        x[::4, 5:7] = -1
    a["popularity"][rng.random(P) < 0.3] = 0.0  # ties: the stable sort decides
    counts = a["popularity_count"]  # "bought in N orders": 0, 1, thousands, and below 0
    hit = rng.random(P)
    counts[hit < 0.1] = 0
    counts[(hit >= 0.1) & (hit < 0.2)] = 1
    counts[(hit >= 0.2) & (hit < 0.3)] = -1234
    counts[(hit >= 0.3) & (hit < 0.35)] = 2**31 - 1
    write_bundle(model_dir, a, {"catalog": cat}, {"fingerprint": "odd", "params": {}}, make_current=True)


def _build(name: str, tmp: Path) -> Shop:
    d = tmp / "model"
    if name == "synthetic":  # 3000 products, 20 categories of ~150, rows of 50
        write_synthetic(d, n_products=3000, n_categories=20, n_users=20, k=50, factors=4)
        return Shop(name, d, ["P999999", "P003000", "P000001-XXL", "P00001", "P000001-", "p000001"],
                    ["XXL", "xl", " M"])
    if name == "apparel":
        write_apparel(d)
        return Shop(name, d, ["GHOST-9", "JKT-1-XXL", "JKT-", "JKT-10", "jkt-1", "JKT-1-M "], ["XXL", "m", "32 "])
    if name == "factors64":  # the synthetic shop with bench's 64 ALS factors (real models have 32-128)
        a, cat = synthetic_arrays(n_products=3000, n_categories=20, n_users=50, k=50, factors=64)
        indptr = a["user_items_indptr"]  # the last 5 customers bought nothing: only popular neighbours
        indptr[45:] = indptr[45]
        a["user_items_indices"] = a["user_items_indices"][:indptr[45]].copy()
        write_bundle(d, a, {"catalog": cat}, {"fingerprint": "factors64", "params": {}}, make_current=True)
        return Shop(name, d, ["P999999", "P003000"], ["XXL"])
    if name == "wide":  # one category of 5000: fills walk up to SCAN_CAP (4096) products
        a, cat = _synthetic(n_products=5000, n_categories=1, n_users=5, k=50, factors=2, seed=3)
        write_bundle(d, a, {"catalog": cat}, {"fingerprint": "wide", "params": {}}, make_current=True)
        return Shop(name, d, ["P999999", "P005000"], ["XXL"])
    if name == "odd":
        _odd_bundle(d)
        return Shop(name, d, ["P500", "P-1", "é", "商品", "P1/", "P1/S ", "p1", "P01"], ["XXL", "größe 1", "one"])
    raise AssertionError(name)


@pytest.fixture(scope="module")
def shops(tmp_path_factory):
    """name -> Shop, built on first use and kept for the module."""
    built: dict[str, Shop] = {}

    def get(name: str) -> Shop:
        if name not in built:
            built[name] = _build(name, tmp_path_factory.mktemp(name))
        return built[name]

    yield get
    for s in built.values():
        s.close()


# --- random requests ------------------------------------------------------------------------

LIMITS = [None, 1, 10, 50, 100, "row", 0, 101, -1, 2**31 - 1, -2**31]
LIMIT_P = [0.30, 0.08, 0.12, 0.04, 0.04, 0.34, 0.02, 0.02, 0.02, 0.01, 0.01]
# GetBundle's max_items: unset (1), 1..5 (bundle_max_items is 5 by default), 0, 6, -1, 21, huge
MAX_ITEMS = [None, 1, 2, 3, 4, 5, 0, 6, -1, 21, 2**31 - 1]
MAX_ITEMS_P = [0.30, 0.20, 0.15, 0.12, 0.05, 0.05, 0.04, 0.04, 0.02, 0.02, 0.01]


class Draw:
    """Seeded random request parts over one shop."""

    def __init__(self, shop: Shop, seed: int, bad: float = 1.0, prices: np.ndarray | None = None) -> None:
        self.s, self.m, self.rng = shop, shop.model, np.random.default_rng(seed)
        self.bad = bad  # scales the chance of fields Python refuses
        # product prices of the Live the requests are for: price bounds at a candidate's price
        self.prices = shop.model.variant_price[shop.model.product_variants[shop.model.product_variants_indptr[:-1]]] \
            if prices is None else prices
        self.pool: list[int] | None = None  # Recommend: the products its answer may hold
        self._hot: dict[int, list[int]] = {}

    def p(self, x: float) -> bool:
        return bool(self.rng.random() < x)

    def pick(self, xs):
        return xs[int(self.rng.integers(len(xs)))]

    # ids
    def id_of(self, product: int) -> str:
        """A product as its product id or as one of its variant ids."""
        m = self.m
        if self.p(0.5):
            return self.s.product_ids[product]
        lo, hi = m.product_variants_indptr[product], m.product_variants_indptr[product + 1]
        return self.s.variant_ids[int(m.product_variants[self.rng.integers(lo, hi)])]

    def anchor(self) -> tuple[str, int]:
        """(item id, its product or -1): a product id, a variant id, unknown or empty."""
        r = self.rng.random()
        if r < 0.45:
            p = int(self.rng.integers(self.m.n_products))
            return self.s.product_ids[p], p
        if r < 1 - 0.08 * self.bad:
            v = int(self.rng.integers(self.m.n_variants))
            return self.s.variant_ids[v], int(self.m.variant_product[v])
        if r < 1 - 0.02 * self.bad:
            return self.pick(self.s.unknown_ids), -1
        return "", -1

    def related(self, product: int) -> int:
        """A product the answer for `product` may hold (its rows), or any product."""
        m = self.m
        if self.pool is not None and self.p(0.8):
            return int(self.pick(self.pool))
        if product >= 0 and self.p(0.8):
            row = (m.complements_idx if self.p(0.5) else m.substitutes_idx)[product]
            row = row[row >= 0]
            if len(row):
                return int(self.pick(row))
        return int(self.rng.integers(m.n_products))

    def context_id(self, product: int) -> str:
        r = self.rng.random()
        if r < 0.75:
            return self.id_of(self.related(product))
        return self.pick(self.s.unknown_ids) if r < 0.92 else ""

    def ids(self, product: int, most: int = 4) -> list[str]:
        return [self.context_id(product) for _ in range(int(self.rng.integers(1, most + 1)))]

    # fields
    def limit(self, msg) -> None:
        x = LIMITS[int(self.rng.choice(len(LIMITS), p=LIMIT_P))]
        if x == "row":  # a limit the shop's rows can fill (after the filters)
            x = int(self.rng.integers(1, min(30, self.s.row_length // 2) + 1))
        if x is not None and not 1 <= x <= 100 and not self.p(self.bad):
            x = None
        if x is not None:
            msg.limit = x

    def price(self, product: int) -> float:
        r = self.rng.random()
        if r < 0.04 * self.bad:
            return self.pick([-1.0, -1e-300, float("nan"), float("inf"), float("-inf"), -float("nan")])
        if r < 0.4:  # exactly a candidate's price: the bound's edge
            x = float(self.prices[self.related(product)])
            if x == x and 0 <= x < float("inf"):
                return x
        if r < 0.46:
            return self.pick([0.0, -0.0, 1e308, 5e-324])
        return float(np.round(self.rng.uniform(0, 2.5 * self.s.median_price), 2))

    def context(self, ctx, product: int) -> None:
        if self.p(0.1):
            ctx.SetInParent()  # present but empty
            return
        if self.p(0.6):
            ctx.cart_item_ids.extend(self.ids(product))
        if self.p(0.6):
            ctx.shown_item_ids.extend(self.ids(product, 6))
        if self.p(0.3):
            ctx.user_id, ctx.session_id, ctx.shop_id = "U000001", "chat-1", "shop-1"

    def filter(self, f, product: int) -> None:
        m, s = self.m, self.s
        if self.p(0.05):
            f.SetInParent()
            return
        if self.p(0.25):
            f.include_out_of_stock = True
        if self.p(0.3):
            f.exclude_item_ids.extend(self.ids(product, 5))
        if self.p(0.25):
            for _ in range(int(self.rng.integers(1, 4))):
                r = self.rng.random()
                if r < 0.6:
                    c = m.category_names[m.product_category[self.related(product)]]
                elif r < 1 - 0.1 * self.bad:
                    c = self.pick(s.categories)
                else:
                    c = self.pick(["nope", "", "CATEGORY-000", s.categories[0] + " "])
                    if c in m.category_index:
                        c = "nope"
                f.categories.append(c)
        lo = hi = None
        if self.p(0.3):
            lo = f.min_price = self.price(product)
        if self.p(0.3):
            hi = f.max_price = self.price(product)
            if lo is not None and lo == lo and hi == hi and lo > hi and self.p(1 - 0.3 * self.bad):
                f.min_price, f.max_price = hi, lo  # mostly a valid range; else min > max
        if self.p(0.3):
            r = self.rng.random()
            if r < 1 - 0.2 * self.bad:
                f.attributes["size"] = self.pick(s.sizes)
                if s.colors and self.p(0.5):  # two attributes, in either order
                    f.attributes["color"] = self.pick(s.colors)
                    if self.p(0.5):
                        del f.attributes["size"]
                        f.attributes["size"] = self.pick(s.sizes)
            elif r < 1 - 0.1 * self.bad:
                f.attributes["size"] = self.pick(s.bad_sizes)  # no variant has it
            else:
                f.attributes[self.pick(["colour", "", "Size"])] = self.pick(s.sizes)  # no such attribute
                if self.p(0.5):
                    f.attributes["size"] = self.pick(s.sizes)

    def max_items(self, msg) -> None:
        x = MAX_ITEMS[int(self.rng.choice(len(MAX_ITEMS), p=MAX_ITEMS_P))]
        if x is not None and not 1 <= x <= 5 and not self.p(self.bad):
            x = None
        if x is not None:
            msg.max_items = x

    # customers
    def user(self) -> tuple[str, int]:
        """(a user id, its customer or -1): known customers, unknown ids and ""."""
        r = self.rng.random()
        if r < 0.6 and self.s.user_ids:
            u = int(self.rng.integers(len(self.s.user_ids)))
            return self.s.user_ids[u], u
        if r < 0.85:
            return self.pick(self.s.unknown_users), -1
        return "", -1

    def hot(self, user: int) -> list[int]:
        """Products a recommendation for `user` (-1: anyone) likely holds: the best
        scored and what they bought, or the most popular."""
        if user not in self._hot:
            m = self.m
            if user >= 0:
                s = np.asarray(m.item_factors @ m.user_factors[user], np.float64)
                pool = np.concatenate([np.argsort(-s, kind="stable")[:30], m.user_items(user)])
            else:
                pool = m.popular_order[:30]
            self._hot[user] = [int(x) for x in pool]
        return self._hot[user]

    def recommend(self, *, context: bool, filter: bool) -> pb.RecommendRequest:
        """A user id (known, unknown, "" or none), and cart, shown, excluded, categories and
        price bounds drawn mostly from what the answer may hold."""
        uid, user = self.user()
        msg = pb.RecommendRequest()
        self.limit(msg)
        self.pool = self.hot(user)
        try:
            if context and self.p(0.8):
                self.context(msg.context, -1)
            if uid or msg.HasField("context"):
                if self.p(0.9):
                    msg.context.user_id = uid
            if filter and self.p(0.85):
                self.filter(msg.filter, -1)
        finally:
            self.pool = None
        return msg

    def request(self, rpc: str, *, context: bool = False, filter: bool = False, anchors: int = 1):
        if rpc == "recommend":
            return self.recommend(context=context, filter=filter)
        item_id, product = self.anchor()
        if rpc == "complements":
            ids = [item_id] + [self.id_of(self.related(product)) if self.p(0.5) else self.anchor()[0]
                               for _ in range(anchors - 1)]
            msg = pb.ComplementsRequest(item_ids=ids)
        elif rpc == "bundle":
            msg = pb.BundleRequest(item_id=item_id)
        else:
            msg = pb.SubstitutesRequest(item_id=item_id)
        if rpc == "bundle":
            self.max_items(msg)
        else:
            self.limit(msg)
        if context and self.p(0.8):
            self.context(msg.context, product)
        if filter and self.p(0.85):
            self.filter(msg.filter, product)
        return msg


def run(live, shop: Shop, rpc: str, n: int, seed: int, **kind) -> Tally:
    d = Draw(shop, seed, prices=live.prices.view().product)
    tally = Tally(rpc)
    for _ in range(n):
        compare(live, rpc, d.request(rpc, **kind), tally)
    return tally


# Minimum handled shares of the valid requests, per shop, RPC and kind of request (well
# under what the kernel reaches, so they only catch a kernel that declines too much).
# Complements decline whenever the anchor's row cannot fill the answer (the category
# fill is Python's): the apparel shop's rows hold 4 items, so most are declined there.
MIN_SHARE = {
    ("synthetic", "complements"): {"plain": 0.75, "context": 0.7, "filtered": 0.4},
    ("apparel", "complements"): {"plain": 0.15, "context": 0.1, "filtered": 0.04},
    ("odd", "complements"): {"filtered": 0.25},
    **{(shop, "substitutes"): {"plain": 0.95, "context": 0.85, "filtered": 0.85}
       for shop in ("synthetic", "apparel", "odd", "wide")},
    # Recommend declines a known customer whose best 3 x limit scored candidates do not
    # fill the answer (the exhaustive path): on the apparel shop's 12 products, every
    # limit above 3.
    ("synthetic", "recommend"): {"plain": 0.8, "context": 0.7, "filtered": 0.5},
    ("apparel", "recommend"): {"plain": 0.4, "context": 0.4, "filtered": 0.25},
    ("odd", "recommend"): {"filtered": 0.5},
    # Bundles decline prices that are not whole cents, and (with promotions) everything.
    **{(shop, "bundle"): {"plain": 0.9, "context": 0.75, "filtered": 0.6} for shop in ("synthetic", "apparel", "odd")},
}
# Items of each kind the kernel must have answered in a comparison of `count(rpc, 1500)`
# requests or so: both of Recommend's paths, a bundle's co-purchase picks.
MIN_REASONS = {"recommend": {Reason.PERSONAL: 100, Reason.POPULAR: 100}, "bundle": {Reason.CO_PURCHASE: 100}}


def count(rpc: str, n: int) -> int:
    """Requests per comparison: Recommend's and GetBundle's Python answers cost more
    (and their rules repeat complements'), so they get fewer, to keep the file fast."""
    return n if rpc in RPCS else n // 3


# --- the comparisons -------------------------------------------------------------------------

@pytest.mark.parametrize("rpc", ALL_RPCS)
@pytest.mark.parametrize("shop_name", ["synthetic", "apparel"])
def test_plain_requests_match_python(shops, shop_name, rpc):
    """Anchors as product ids, variant ids, unknown and empty ids, with the limit unset,
    1, 10, 50, 100, 0, 101, -1 or within the row (bundles: max_items unset, 1..5, 0, 6,
    -1, 21, huge); Recommend: a known customer, an unknown id, "" or no user id, and no
    other field: same bytes, or None where Python refuses."""
    shop = shops(shop_name)
    tally = run(shop.live(), shop, rpc, count(rpc, 1500), seed=1)
    tally.check(MIN_SHARE[shop_name, rpc]["plain"], min_refused=count(rpc, 100) // 2,
                min_reasons=MIN_REASONS.get(rpc) if shop_name == "synthetic" else None)


@pytest.mark.parametrize("rpc", ALL_RPCS)
@pytest.mark.parametrize("shop_name", ["synthetic", "apparel"])
def test_context_ids_are_excluded_as_in_python(shops, shop_name, rpc):
    """Cart and shown ids (known products and variants from the answer's rows, or from
    a customer's best scored and bought products; unknown and empty ids) rule the same
    products out."""
    shop = shops(shop_name)
    tally = run(shop.live(), shop, rpc, count(rpc, 1500), seed=2, context=True)
    tally.check(MIN_SHARE[shop_name, rpc]["context"], min_refused=count(rpc, 100) // 2,
                min_reasons=MIN_REASONS.get(rpc) if shop_name == "synthetic" else None)


@pytest.mark.parametrize("rpc", ALL_RPCS)
@pytest.mark.parametrize("shop_name", ["synthetic", "apparel"])
def test_filters_match_python(shops, shop_name, rpc):
    """include_out_of_stock, exclude_item_ids, categories (known, several, unknown),
    min/max price (valid, at a candidate's price, min > max, negative, NaN, inf) and
    attributes (a known size, an unknown size, an unknown attribute), and their
    combinations with context: same bytes, or None where Python refuses."""
    shop = shops(shop_name)
    live = shop.live()
    update_stock(live, [(v, 0) for v in shop.variant_ids[::4]])  # some sizes sold out: attributes bite
    tally = run(live, shop, rpc, count(rpc, 2000), seed=3, context=True, filter=True)
    tally.check(MIN_SHARE[shop_name, rpc]["filtered"], min_refused=count(rpc, 300) // 2)


def _sell_out_and_reprice(live, shop: Shop, rng) -> None:
    """A third of the variants sell out, and 5% of the products entirely; a quarter come
    back; a fifth get new prices (0, another variant's, or random)."""
    m = live.model
    V = m.n_variants
    sold = rng.choice(V, max(1, V // 3), replace=False)
    update_stock(live, [(shop.variant_ids[v], 0) for v in sold.tolist()]
                 + [(shop.product_ids[p], 0) for p in rng.choice(m.n_products, max(1, m.n_products // 20)).tolist()])
    back = rng.choice(V, max(1, V // 4), replace=False)
    update_stock(live, [(shop.variant_ids[v], int(rng.integers(1, 5))) for v in back.tolist()])
    priced = rng.choice(V, max(2, V // 5), replace=False).tolist()
    old = live.prices.view().variant
    new = []
    for v in priced:
        r = rng.random()
        x = (0.0 if r < 0.05 else float(old[rng.integers(V)]) if r < 0.3 else
             float(np.round(rng.uniform(0.5, 2.5) * shop.median_price, 2)))
        new.append((shop.variant_ids[v], x if x == x and x != float("inf") else 1.0))
    update_prices(live, new)


@pytest.mark.parametrize("rpc", ALL_RPCS)
@pytest.mark.parametrize("shop_name", ["synthetic", "apparel"])
def test_answers_follow_stock_and_price_changes(shops, shop_name, rpc):
    """After variants sell out, come back and get new prices, the kernel answers from the
    views it is given (the current ones), as Python does: the same requests, compared
    again after each change, and their kernel answers change too."""
    shop = shops(shop_name)
    live = shop.live()
    rng = np.random.default_rng(4)
    d = Draw(shop, 40)
    requests = [d.request(rpc, context=True, filter=True) for _ in range(count(rpc, 700))]
    before = None
    changed = 0
    for round_ in range(3):
        if round_:
            _sell_out_and_reprice(live, shop, rng)
        tally = Tally(rpc)
        outs = [compare(live, rpc, r, tally) for r in requests]
        tally.check(MIN_SHARE[shop_name, rpc]["filtered"])
        if before is not None:
            changed += sum(a != b for a, b in zip(before, outs))  # another answer, or answered/declined
        before = outs
    assert changed >= 5, f"stock and price changes changed only {changed} kernel answers"


def _configs(shop: Shop) -> dict[str, dict]:
    cats = shop.categories
    if shop.name == "apparel":
        same = ["jackets", "jeans"]
        cmap = {"jackets": ["jeans", "nope", "jackets", "jeans"], "shirts": ["shirts"], "jeans": ["jackets"]}
    else:
        same = cats[::2]
        cmap = {c: [cats[(i + 1) % len(cats)], "nope", c, cats[(i + 3) % len(cats)]] for i, c in enumerate(cats[::2])}
    return {
        "same_category": dict(complements_same_category=same),
        "category_map": dict(substitutes_category_map=cmap),
        "band_0": dict(substitutes_price_band=0.0),
        "band_0.3": dict(substitutes_price_band=0.3),
        "band_0.05": dict(substitutes_price_band=0.05),
        "min_support_1": dict(substitutes_min_complement_support=1),
        "min_support_huge": dict(substitutes_min_complement_support=10**9),
        "default_limit_3": dict(default_limit=3),
        "together": dict(complements_same_category=same, substitutes_category_map=cmap, substitutes_price_band=0.5,
                         substitutes_min_complement_support=100, default_limit=3),
    }


CONFIGS = ["same_category", "category_map", "band_0", "band_0.3", "band_0.05", "min_support_1",
           "min_support_huge", "default_limit_3", "together"]


@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("shop_name", ["synthetic", "apparel"])
def test_config_variants_match_python(shops, shop_name, config):
    """The kernel takes the answer settings from the config it was built with:
    complements_same_category, substitutes_category_map (with unknown, repeated and own
    categories), substitutes_price_band (0, 0.05, 0.3), substitutes_min_complement_support
    (1, huge) and default_limit = 3 give the same bytes as Python under that config."""
    shop = shops(shop_name)
    live = shop.live(**_configs(shop)[config])
    update_stock(live, [(v, 0) for v in shop.variant_ids[1::5]])
    for rpc in RPCS:
        tally = run(live, shop, rpc, 400, seed=5 + CONFIGS.index(config), context=True, filter=True)
        tally.check(MIN_SHARE[shop_name, rpc]["filtered"], min_refused=50)


def _more_configs(shop: Shop) -> dict[str, dict]:
    cats = shop.categories
    repeat = ["socks", "jeans", "nope"] if shop.name == "apparel" else cats[::3] + ["nope"]
    same = ["jackets", "jeans"] if shop.name == "apparel" else cats[::2]
    return {
        "repeat_categories": dict(recommend_repeat_categories=repeat),
        "exact_max_0": dict(recommend_exact_max_products=0),
        "exact_max_100": dict(recommend_exact_max_products=100),
        "default_limit_3": dict(default_limit=3),
        "candidates_1": dict(bundle_candidates=1),
        "max_items_1": dict(bundle_max_items=1),
        "max_items_3": dict(bundle_max_items=3),
        "candidates_20_max_items_20": dict(bundle_candidates=20, bundle_max_items=20),
        "candidates_100_max_items_20": dict(bundle_candidates=100, bundle_max_items=20),
        "same_category": dict(complements_same_category=same),
        "together": dict(recommend_repeat_categories=repeat, recommend_exact_max_products=100, default_limit=3,
                         bundle_candidates=1, bundle_max_items=3, complements_same_category=same),
    }


MORE_CONFIGS = ["repeat_categories", "exact_max_0", "exact_max_100", "default_limit_3", "candidates_1", "max_items_1",
                "max_items_3", "candidates_20_max_items_20", "candidates_100_max_items_20", "same_category", "together"]
# Bundles of more than 100 candidates (bundle_candidates + max_items - 1) are Python's:
# here all but those of max_items 1.
MORE_CONFIG_MIN_SHARE = {("candidates_100_max_items_20", "bundle"): 0.2}


@pytest.mark.parametrize("config", MORE_CONFIGS)
@pytest.mark.parametrize("shop_name", ["synthetic", "apparel"])
def test_recommend_and_bundle_config_variants_match_python(shops, shop_name, config):
    """Recommend under recommend_repeat_categories (with an unknown name),
    recommend_exact_max_products 0 and 100 (the neighbourhood path; on the apparel shop
    100 keeps the exact one) and default_limit = 3; GetBundle under bundle_candidates 1,
    5 (default), 20 and 100, bundle_max_items 1, 3, 5 (default) and 20, and
    complements_same_category (the anchor's own category may fill the bundle): same
    bytes as Python under that config."""
    shop = shops(shop_name)
    live = shop.live(**_more_configs(shop)[config])
    update_stock(live, [(v, 0) for v in shop.variant_ids[2::5]])
    for rpc in MORE_RPCS:
        tally = run(live, shop, rpc, 150, seed=30 + MORE_CONFIGS.index(config), context=True, filter=True)
        tally.check(MORE_CONFIG_MIN_SHARE.get((config, rpc), MIN_SHARE[shop_name, rpc]["filtered"]), min_refused=10,
                    min_reasons={Reason.PERSONAL: 30} if rpc == "recommend" and shop_name == "synthetic" else None)


@pytest.mark.parametrize("shop_name", ["synthetic", "apparel"])
def test_several_anchors_match_python(shops, shop_name):
    """A complements request naming two or more items (a cart; also two variants of one
    product, or one id twice): the rows merged, scores added, the explanation quoting
    the anchor bought most often with each, then the category fill, as Python does."""
    shop = shops(shop_name)
    live = shop.live()
    d = Draw(shop, 6)
    tally = Tally("complements")
    for i in range(1000):
        r = d.request("complements", context=True, filter=True, anchors=int(d.rng.integers(2, 6)))
        if i % 5 == 0:
            r.item_ids[1] = r.item_ids[0]
        compare(live, "complements", r, tally)
    print(tally)
    assert not tally.mismatches, report(tally)
    assert tally.handled >= 0.5 * (tally.handled + tally.declined), str(tally)


@pytest.mark.parametrize("rpc", ALL_RPCS)
def test_odd_catalog_strings_numbers_and_rows_match_python(shops, rpc):
    """Two variant attributes; non-ASCII and empty ids, titles, categories and sizes;
    ids that prefix others; a variant id equal to another product's id; NaN, 0, -0.0,
    inf and huge prices; supports of 0, 1, 1,000+ and negative; scores of 0, -0.0, NaN,
    denormal and below 0; rows with repeats, the anchor itself and padding inside; with
    the default config and with band 0 / min support 1: same bytes."""
    shop = shops("odd")
    for cfg, seed in (({}, 7), ({"substitutes_price_band": 0.0, "substitutes_min_complement_support": 1}, 8)):
        live = shop.live(**cfg)
        update_stock(live, [(v, 0) for v in shop.variant_ids[2::6]])
        tally = run(live, shop, rpc, count(rpc, 1000), seed=seed, context=True, filter=True)
        tally.check(MIN_SHARE["odd", rpc]["filtered"], min_refused=count(rpc, 100) // 2)


def test_fills_stop_at_the_scan_cap_as_in_python(shops):
    """One category of 5000 products and narrow price windows: a substitutes fill walks
    the popular list up to SCAN_CAP (4096) products and stops there, as Python's."""
    shop = shops("wide")
    assert len(shop.model.popular_in(0)) > SCAN_CAP
    live = shop.live(substitutes_price_band=0.0)
    prices = live.prices.view().product
    d = Draw(shop, 9)
    tally = Tally("substitutes")
    short = 0  # answers the fill could not complete: it read every product up to the cap
    for _ in range(800):
        r = d.request("substitutes")
        x = float(prices[int(d.rng.integers(len(prices)))])
        r.filter.min_price, r.filter.max_price = x, x + float(d.pick([0.0, 0.01, 0.5, 3.0]))
        if d.p(0.3):
            r.filter.attributes["size"] = d.pick(shop.sizes)
        out = compare(live, "substitutes", r, tally)
        if out is not None:
            short += len(pb.ItemsResponse.FromString(out).items) < (r.limit if r.HasField("limit") else 10)
    tally.check(MIN_SHARE["wide", "substitutes"]["plain"], min_refused=50)
    assert short >= 200, f"only {short} fills walked to the end"


@pytest.mark.parametrize("price", [1e50, 1e60, 1.7976931348623157e308])
def test_a_huge_price_difference_is_worded_in_full(shops, price):
    """ "x% dearer" carries every digit Python writes, however many: next to JKT-1 at
    100, its first substitute JKT-2 priced 1e60 (any finite price >= 0 is valid through
    Admin UpdatePrices) is "similar style, in stock, 9999...083904% dearer" with all 60
    digits; at the largest double, 309 digits."""
    shop = shops("apparel")
    live = shop.live(substitutes_price_band=0.0)
    update_prices(live, [("JKT-2", price)])
    tally = Tally("substitutes")
    compare(live, "substitutes", pb.SubstitutesRequest(item_id="JKT-1", limit=1), tally)
    tally.check(1.0)


# Prices at the wording's edges: 0.5 % ("same price" below it), x.5 % (rounded half to
# even, as Python's "%" format and C's "%.0f" both do), 0 and -0.0 (no tail), a denormal
# (any price against it is "inf% dearer"), and large ones (every ratio here is < 1e30 or
# infinite: the 50+ digit ratios are the test above's).
EDGE_PRICES = [0.0, -0.0, 5e-324, 0.01, 1.0, 99.5, 99.5000001, 100.0, 100.4999, 100.5, 101.5, 102.5, 187.5, 1e20]


@pytest.mark.parametrize("band", [0.0, 0.3, 9.99])
def test_price_differences_are_worded_as_in_python(shops, band):
    """Substitutes' "x% cheaper/dearer" and "same price" tails, with every variant
    priced at an edge value, for every product and variant id as the item: same bytes."""
    shop = shops("apparel")
    rng = np.random.default_rng(10)
    tally = Tally("substitutes")
    d = Draw(shop, 11, bad=0.0)
    for round_ in range(8):
        live = shop.live(substitutes_price_band=band)
        picks = rng.choice(EDGE_PRICES, len(shop.variant_ids))
        update_prices(live, [(v, float(x)) for v, x in zip(shop.variant_ids, picks)])
        d.prices = live.prices.view().product
        for item_id in shop.product_ids + shop.variant_ids:
            for _ in range(3):
                r = pb.SubstitutesRequest(item_id=item_id)
                if d.p(0.5):
                    d.filter(r.filter, int(shop.model.lookup(item_id)[0]))
                compare(live, "substitutes", r, tally)
    tally.check(0.95)


# Prices a bundle cannot sum in whole cents (Python sums Decimal(str(price)) and rounds
# half up: 19.999 -> 20.00, 0.1 + 0.2 -> 0.30), and whole-cent ones at the edges of the
# kernel's cents (1e12 + 0.01 is not exactly representable; 1e13 and up are Python's).
NOT_CENTS = [19.999, 0.1 + 0.2, 1.005, 2.675, 0.125, 12.345, 1 / 3, 1e-3, 5e-324, 1e12 + 0.5, 1e15 + 0.25]
WHOLE_CENTS = [0.0, 0.29, 0.3, 1.1, 19.99, 99.99, 1e12, 1e12 + 0.01, 123456789.99, 9999999999999.99, 1e13, 1e20]


def _not_cents(x: float | None) -> bool:
    return x is not None and Decimal(str(x)).as_tuple().exponent < -2


@pytest.mark.parametrize("shop_name", ["synthetic", "apparel"])
def test_bundle_prices_that_are_not_whole_cents_match_python(shops, shop_name):
    """A third of the products get prices that are not whole cents (19.999, 0.1 + 0.2,
    1.005, 1/3, 5e-324 ...) and a third whole cents at the edges (0, 0.29, 1e12 + 0.01,
    9999999999999.99, 1e13, 1e20): bundles holding any of them, and Recommend (items'
    prices, price bounds at them), give Python's bytes or None."""
    shop = shops(shop_name)
    live = shop.live()
    rng = np.random.default_rng(14)
    P = shop.model.n_products
    picks = rng.choice(P, 2 * P // 3, replace=False).tolist()
    update_prices(live, [(shop.product_ids[p], float(rng.choice(NOT_CENTS if i % 2 else WHOLE_CENTS)))
                         for i, p in enumerate(picks)])
    d = Draw(shop, 15, prices=live.prices.view().product)
    tally = Tally("bundle")
    odd = Counter()  # Python's bundles holding a price that is not whole cents: how the kernel did
    for _ in range(400):
        handled = tally.handled
        compare(live, "bundle", d.request("bundle", context=d.p(0.5), filter=d.p(0.5)), tally)
        b = tally.last
        if b is not None and any(_not_cents(x) for x in [b.anchor.price] + [i.price for i in b.items]):
            odd["handled" if tally.handled > handled else "declined"] += 1
    print(f"bundles with a price not in whole cents: {dict(odd)}")
    tally.check(0.2)
    assert sum(odd.values()) >= 40, f"only {dict(odd)} bundles held a price that is not whole cents"
    run(live, shop, "recommend", 200, seed=16, context=True, filter=True).check(
        MIN_SHARE[shop_name, "recommend"]["filtered"])


def test_recommend_scores_of_a_product_scored_twice_match_python(shops):
    """A category asked twice (filter.categories = [c, c]) puts each of its products
    twice in the scored universe (`np.concatenate`), and Python keeps both among the best
    3 x limit: its answer lists a product at its first place, with the score `dict(zip(
    products, scores))` keeps, that of its last place. With 64 factors the two float32
    dot products of one product need not be equal (BLAS computes the matrix's last rows
    apart: they differ in the last bit), so the kernel must keep the same one: every
    known customer, every category asked twice, limits 1 and 10."""
    shop = shops("factors64")
    live = shop.live()
    tally = Tally("recommend")
    # the smallest: U000002's best in category-007 is P001455, scored at places 157 and 316 of 318
    compare(live, "recommend", pb.RecommendRequest(limit=1, context=pb.Context(user_id="U000002"),
                                                   filter=pb.Filter(categories=["category-007"] * 2)), tally)
    for user_id in shop.user_ids:
        for i, c in enumerate(shop.categories):
            r = pb.RecommendRequest(limit=10 if i % 2 else 1, context=pb.Context(user_id=user_id),
                                    filter=pb.Filter(categories=[c, c]))
            compare(live, "recommend", r, tally)
    tally.check(0.9, min_reasons={Reason.PERSONAL: 1000})


@pytest.mark.parametrize("exact_max", [0, 100, 20000])
def test_recommend_with_64_factors_matches_python(shops, exact_max):
    """Generated Recommend requests (customers, five of whom bought nothing; context;
    filters, their categories drawn from the answer's products, at times one twice) on a
    shop with 64 factors, through the neighbourhood path (recommend_exact_max_products 0,
    100) and the exact one."""
    shop = shops("factors64")
    live = shop.live(recommend_exact_max_products=exact_max)
    update_stock(live, [(v, 0) for v in shop.variant_ids[::4]])
    run(live, shop, "recommend", 300, seed=19, context=True, filter=True).check(
        MIN_SHARE["synthetic", "recommend"]["filtered"], min_reasons={Reason.PERSONAL: 100})


def _promotion(now: datetime, **kw) -> Promotion:
    base = dict(id="", name="Winter set", item_ids=[], categories=[], kind="percent", value=10.0, cap=None,
                starts_at=now - timedelta(hours=1), ends_at=now + timedelta(hours=1), priority=0)
    base.update(kw)
    return Promotion(**base)


@pytest.mark.parametrize("shop_name", ["synthetic", "apparel"])
def test_bundles_under_promotions_match_python(shops, shop_name):
    """Under a changing set of promotions (percent and amount, with and without a cap,
    naming variants, products or categories, needing 1-3 items, priorities that tie,
    windows past, present and future), the complements a promotion covers win their
    slot, and the price, saving, promotion, end and sentence are Python's."""
    shop = shops(shop_name)
    live = shop.live()
    rng = np.random.default_rng(23)
    now = datetime.now(timezone.utc)
    d = Draw(shop, 23)
    tally, promoted = Tally("bundle"), 0
    for round_ in range(6):
        for p in live.promotions.list():
            live.promotions.delete(p.id)
        for k in range(int(rng.integers(1, 5))):
            named = [str(x) for x in rng.choice(shop.product_ids, 3)] + \
                [str(x) for x in rng.choice(shop.variant_ids, 3)] if rng.random() < 0.6 else []
            cats = [str(x) for x in rng.choice(shop.categories, 2)] if rng.random() < 0.6 or not named else []
            start = now + timedelta(hours=float(rng.choice([-48, -1, 1])))
            create_promotion(live.promotions, _promotion(
                now, name=f"promo {round_}-{k}", item_ids=named, categories=cats,
                kind=str(rng.choice(["percent", "amount"])), value=float(rng.choice([5, 10, 12.5, 15, 33.3, 100])),
                cap=None if rng.random() < 0.4 else float(rng.choice([0, 5, 20, 99.99, 1000])),
                starts_at=start, ends_at=start + timedelta(hours=float(rng.choice([0.5, 24, 72]))),
                priority=int(rng.integers(0, 3)), min_items=int(rng.integers(1, 4))))
        for _ in range(120):
            compare(live, "bundle", d.request("bundle", context=True, filter=d.p(0.5)), tally)
            promoted += tally.last is not None and tally.last.promotion is not None
    print(tally, f"; {promoted} bundles under a promotion")
    assert not tally.mismatches, report(tally)
    assert tally.handled >= 0.5 * (tally.handled + tally.declined), str(tally)
    assert promoted >= 40, f"only {promoted} bundles were priced under a promotion"


def test_a_real_promotion_prices_bundles_as_python_and_an_inactive_one_changes_nothing(shops):
    """Promotions created with recsvc.operations.create_promotion: an expired one and a
    future one change nothing; under an active one covering half the categories the
    kernel's bundles are Python's, priced under the promotion."""
    shop = shops("synthetic")
    live = shop.live()
    now = datetime.now(timezone.utc)
    cats = shop.categories
    create_promotion(live.promotions, _promotion(now, name="Old", categories=cats, starts_at=now - timedelta(days=2),
                                                 ends_at=now - timedelta(days=1)))
    create_promotion(live.promotions, _promotion(now, name="Next", categories=cats, kind="amount", value=5.0,
                                                 starts_at=now + timedelta(days=1), ends_at=now + timedelta(days=2)))
    assert not promotions_active(live, now)
    d = Draw(shop, 18)
    requests = [d.request("bundle", context=True, filter=d.p(0.5)) for _ in range(250)]
    tally = Tally("bundle")
    for r in requests:
        compare(live, "bundle", r, tally)
    tally.check(MIN_SHARE["synthetic", "bundle"]["filtered"])
    create_promotion(live.promotions, _promotion(now, name="Winter set", categories=cats[::2],
                                                 item_ids=[shop.product_ids[7]], kind="percent", value=15.0, cap=20.0))
    assert promotions_active(live, now)
    tally, promoted = Tally("bundle"), 0
    for r in requests:
        compare(live, "bundle", r, tally)
        promoted += tally.last is not None and tally.last.promotion is not None
    print(tally, f"; {promoted} bundles under the promotion")
    assert not tally.mismatches, report(tally)
    tally.check(MIN_SHARE["synthetic", "bundle"]["filtered"])
    assert promoted >= 50, f"only {promoted} bundles were priced under the promotion"


def test_request_ids_are_written_as_given(shops):
    """The request id is the caller's string, any length and script, empty included."""
    shop = shops("synthetic")
    live = shop.live()
    d = Draw(shop, 12, bad=0.0)
    for rpc in ALL_RPCS:
        tally = Tally(rpc)
        for rid in ["", "a", "x" * 200, "chat-ü-日本-👕", "id with spaces\n"]:
            for _ in range(40):
                compare(live, rpc, d.request(rpc), tally, request_id=rid)
        tally.check(MIN_SHARE["synthetic", rpc]["plain"])


def test_no_kernel_when_compiled_answers_are_off(shops):
    """compiled_answers = false: the Live has no kernel; everything is Python's."""
    shop = shops("apparel")
    assert shop.live(compiled_answers=False).kernel is None
    assert isinstance(shop.live().kernel, Kernel)


# --- through the real server ------------------------------------------------------------------

@contextmanager
def _serving(model_dir: Path, state: Path, compiled: bool):
    running = build_server(Config(model_dir=str(model_dir), host="127.0.0.1", port=0, state_url=f"sqlite:///{state}",
                                  compiled_answers=compiled, reload_poll_s=0.2, refresh_s=0.2, slow_refresh_s=0.5,
                                  grace_s=1.0))
    channel = grpc.insecure_channel(f"127.0.0.1:{running.port}")
    try:
        yield running, channel
    finally:
        channel.close()
        running.stop(grace=1)


def _raw_call(channel, rpc: str, request, rid: str):
    """(status, bytes or details) of one call, the response left serialised."""
    method = {"complements": "GetComplements", "substitutes": "GetSubstitutes", "recommend": "Recommend",
              "bundle": "GetBundle"}[rpc]
    call = channel.unary_unary(f"/{pb.DESCRIPTOR.services_by_name['Recommender'].full_name}/{method}",
                               request_serializer=type(request).SerializeToString, response_deserializer=None)
    try:
        return grpc.StatusCode.OK, call(request, timeout=10, metadata=(("x-request-id", rid),))
    except grpc.RpcError as e:
        return e.code(), e.details()


def test_servers_with_and_without_the_kernel_answer_alike(shops, tmp_path):
    """Two servers over one model, compiled_answers true and false: every response (or
    error status and message) is the same, byte for byte, for the same request id, for
    all four RPCs; then, with the same active promotion created on both (Admin
    CreatePromotion), the same bundles again: priced under it, and by Python."""
    shop = shops("synthetic")
    model_dir = shop.dir
    d = Draw(shop, 13)
    requests = [(rpc, d.request(rpc, context=True, filter=d.p(0.5))) for rpc in RPCS for _ in range(40)]
    requests += [(rpc, d.request(rpc, context=True, filter=d.p(0.5))) for rpc in MORE_RPCS for _ in range(40)]
    with _serving(model_dir, tmp_path / "a.db", True) as (fast, a), \
            _serving(model_dir, tmp_path / "b.db", False) as (slow, b):
        kernel = fast.runtime.live().kernel
        assert kernel is not None and slow.runtime.live().kernel is None
        live = fast.runtime.live()
        handled = Counter()
        for i, (rpc, r) in enumerate(requests):
            rid = f"e2e-{i}"
            got, want = _raw_call(a, rpc, r, rid), _raw_call(b, rpc, r, rid)
            assert got == want, f"{rpc} {{{_one_line(r)}}}: compiled {got!r}, Python {want!r}"
            handled[rpc] += kernel_answer(kernel, live, rpc, r, rid) is not None
        for rpc in ALL_RPCS:
            assert handled[rpc] >= 15, f"only {handled[rpc]} of 40 {rpc} requests took the compiled path"

        now = datetime.now(timezone.utc)
        promo = wire.promotion_message(_promotion(now, id="e2e-winter", categories=shop.categories[::2],
                                                  kind="percent", value=15.0, cap=20.0))
        for channel in (a, b):
            pb_grpc.AdminStub(channel).CreatePromotion(pb.CreatePromotionRequest(promotion=promo), timeout=10)
        assert promotions_active(live, now)
        under = 0
        for i, (rpc, r) in enumerate(requests):
            if rpc != "bundle":
                continue
            rid = f"e2e-promoted-{i}"
            got, want = _raw_call(a, rpc, r, rid), _raw_call(b, rpc, r, rid)
            assert got == want, f"{rpc} {{{_one_line(r)}}} under a promotion: compiled {got!r}, Python {want!r}"
            handled["bundle under a promotion"] += kernel_answer(kernel, live, rpc, r, rid) is not None
            under += got[0] == grpc.StatusCode.OK and pb.BundleResponse.FromString(got[1]).HasField("promotion")
    print(f"compiled path taken: {dict(handled)}; {under} of 40 bundles priced under the promotion")
    assert under >= 10, f"only {under} of 40 bundles were priced under the promotion"


def test_id_lookups_answer_as_the_id_index():
    """The kernel's hash table over IdIndex's sorted ids: every id at its position (the
    first of equal ids), -1 for near misses and ids longer than any, -2 (Python's to
    decide) for a NUL."""
    from recsvc.fast._kernel import IdSearch
    from recsvc.idindex import IdIndex

    rng = np.random.default_rng(3)
    ids = [f"SKU-{i:05d}-{size}" for i in rng.permutation(30_000) for size in ("S", "XL")]
    ids += ["A", "AB", "日本-1", "👕-XL", "dup", "dup", ""]
    index = IdIndex(np.array(ids))
    search = IdSearch(index)
    for key in ids:
        assert search.position(key) == index.get(key), key
    assert search.position("dup") == ids.index("dup")
    for key in ["SKU-00001-", "SKU-00001-SX", "SKU-00001-s", "B", "日本", "👕-X", "Ab", "x" * 40]:
        assert index.get(key) is None and search.position(key) == -1, key
    assert search.position("A\0") == -2
    empty = IdSearch(IdIndex(np.array([], dtype=str)))
    assert empty.position("A") == -1
