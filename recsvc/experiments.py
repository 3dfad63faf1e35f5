"""A/B slots: merchandisers test new items in a share of the chatbot's slots.

An `Experiment` names test items (product ids), where they appear (RPCs and a 1-based
slot), the share of customers taking part, and a time window. Per request:

1. `assign()` puts the customer in "test", "control" or nowhere. It hashes the
   experiment's salt with the customer key (`user_id`, else `session_id`): no RNG
   state, so every replica and every restart agrees.
2. `place_test_item()` picks the test item for the slot among the eligible ones (in
   stock, not already in the organic list, of a fitting category when targeted),
   weighted by the experiment's allocation (see `recsvc.allocation`). A control
   customer keeps the organic list; the organic item in the slot gets the exposure,
   so the report compares the slot's conversion with and without the test.
   Either way the result carries an `Exposure` to record and an `exposure_id` for
   the chatbot to send back with events.

Exposures are only placed when an eligible test item exists, for test and control
alike, so the two arms see the same kind of requests.

>>> e = Experiment.from_dict(yaml.safe_load(open("spring.yaml")))   # doctest: +SKIP
>>> validate_experiment(e, catalog_product_ids, book.list())        # doctest: +SKIP
"""
from __future__ import annotations

import hashlib
import math
import os
import threading
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

if TYPE_CHECKING:  # the store imports this module
    from recsvc.store.base import Store

RPCS = ("complements", "substitutes", "recommend")
ALLOCATIONS = ("even", "thompson")
METRICS = ("click", "add_to_cart", "purchase")
STATUSES = ("active", "paused", "stopped")
Arm = Literal["test", "control"]


@dataclass
class Experiment:
    id: str  # assigned by the store when empty
    name: str
    item_ids: list[str]  # test items: product ids of the served catalog
    rpcs: list[str]  # where: any of RPCS
    slot: int  # 1-based position in the answer
    share_pct: float  # customers taking part, 0 < share <= 100
    starts_at: datetime
    ends_at: datetime
    control_pct: float = 20.0  # of those taking part: they see the organic list
    allocation: Literal["even", "thompson"] = "even"
    floor_pct: float = 2.0  # thompson: each item keeps at least this share of test traffic
    top_n: int = 3  # the "pick N" question the report and the allocation answer
    metric: Literal["click", "add_to_cart", "purchase"] = "add_to_cart"
    targeting: bool = False  # only where the test item's category fits the request
    status: Literal["active", "paused", "stopped"] = "active"
    salt: str = ""  # defaults to the id; a new salt reshuffles customers

    def running_at(self, now: datetime) -> bool:
        return self.status == "active" and self.starts_at <= now < self.ends_at

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["starts_at"] = self.starts_at.astimezone(timezone.utc).isoformat()
        d["ends_at"] = self.ends_at.astimezone(timezone.utc).isoformat()
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Experiment":
        """From a YAML/JSON definition; ValueError names unknown or missing fields."""
        known = {f for f in cls.__dataclass_fields__}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"{', '.join(unknown)}: unknown field(s); known: {', '.join(sorted(known))}")
        d = {"id": "", **d}
        missing = [f for f in ("name", "item_ids", "rpcs", "slot", "share_pct", "starts_at", "ends_at")
                   if f not in d]
        if missing:
            raise ValueError(f"{', '.join(missing)}: required")
        for key in ("starts_at", "ends_at"):
            if isinstance(d[key], str):
                try:
                    d[key] = datetime.fromisoformat(d[key].replace("Z", "+00:00"))
                except ValueError:
                    raise ValueError(f"{key}: not an ISO 8601 time: {d[key]!r}") from None
        d["item_ids"] = [str(i) for i in d["item_ids"]]
        d["rpcs"] = [str(r) for r in d["rpcs"]]
        return cls(**d)


@dataclass(frozen=True)
class Exposure:
    """One decision to show an item in an experiment's slot (test item or control's organic)."""

    exposure_id: str
    experiment_id: str
    arm: Arm
    item_id: str
    rpc: str
    slot: int
    customer: str  # customer_key(): "u:<user_id>" or "s:<session_id>"
    at: datetime


@dataclass(frozen=True)
class Placement:
    exposure: Exposure
    item_code: int  # product code of the exposed item in the served catalog
    position: int  # 0-based index in the answer: insert the test item here (test arm)

    @property
    def exposure_id(self) -> str:
        return self.exposure.exposure_id

    @property
    def is_test(self) -> bool:
        return self.exposure.arm == "test"


# --- validation ---------------------------------------------------------------------

def validate_experiment(e: Experiment, known_item_ids: Collection[str],
                        others: Iterable[Experiment] = ()) -> None:
    """Raise ValueError saying what to fix; `others` are the experiments already defined."""
    if not e.name.strip():
        raise ValueError("name: give the experiment a name")
    if not e.item_ids:
        raise ValueError("item_ids: name at least one test item")
    dupes = sorted({i for i in e.item_ids if e.item_ids.count(i) > 1})
    if dupes:
        raise ValueError(f"item_ids: listed twice: {', '.join(dupes)}")
    unknown = [i for i in e.item_ids if i not in known_item_ids]
    if unknown:
        raise ValueError(f"item_ids: unknown items {', '.join(unknown[:10])}"
                         f"{' …' if len(unknown) > 10 else ''}; use product ids of the catalog")
    bad_rpcs = [r for r in e.rpcs if r not in RPCS]
    if not e.rpcs or bad_rpcs:
        raise ValueError(f"rpcs: choose from {', '.join(RPCS)}, got {e.rpcs!r}")
    if not isinstance(e.slot, int) or e.slot < 1:
        raise ValueError(f"slot: a position from 1 (the first item), got {e.slot!r}")
    if not _number(e.share_pct) or not 0 < e.share_pct <= 100:
        raise ValueError(f"share_pct: the percent of customers taking part, more than 0 and "
                         f"at most 100, got {e.share_pct!r}")
    if not _number(e.control_pct) or not 0 <= e.control_pct < 100:
        raise ValueError(f"control_pct: percent of participants in control, 0 to under 100, "
                         f"got {e.control_pct!r}")
    for key in ("starts_at", "ends_at"):
        t = getattr(e, key)
        if not isinstance(t, datetime) or t.tzinfo is None:
            raise ValueError(f"{key}: a time with a timezone, e.g. 2025-03-01T00:00:00Z, got {t!r}")
    if e.ends_at <= e.starts_at:
        raise ValueError(f"ends_at: {e.ends_at.isoformat()} is not after starts_at "
                         f"{e.starts_at.isoformat()}; end after the start")
    if e.allocation not in ALLOCATIONS:
        raise ValueError(f"allocation: one of {', '.join(ALLOCATIONS)}, got {e.allocation!r}")
    if not _number(e.floor_pct) or e.floor_pct < 0 or e.floor_pct * len(e.item_ids) > 100:
        raise ValueError(f"floor_pct: between 0 and {100 / len(e.item_ids):g} for "
                         f"{len(e.item_ids)} items, got {e.floor_pct!r}")
    if not isinstance(e.top_n, int) or not 1 <= e.top_n <= len(e.item_ids):
        raise ValueError(f"top_n: between 1 and the number of items ({len(e.item_ids)}), "
                         f"got {e.top_n!r}")
    if e.metric not in METRICS:
        raise ValueError(f"metric: one of {', '.join(METRICS)}, got {e.metric!r}")
    if e.status not in STATUSES:
        raise ValueError(f"status: one of {', '.join(STATUSES)}, got {e.status!r}")
    for o in others:
        if o.id == e.id or o.status == "stopped" or o.slot != e.slot:
            continue
        shared = sorted(set(o.rpcs) & set(e.rpcs))
        if shared and o.starts_at < e.ends_at and e.starts_at < o.ends_at:
            raise ValueError(
                f"slot: experiment {o.name!r} ({o.id}) already uses slot {o.slot} of "
                f"{', '.join(shared)} from {o.starts_at.isoformat()} to {o.ends_at.isoformat()}; "
                "choose another slot, other RPCs or a time that does not overlap, or stop it first")


def _number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


# --- assignment ---------------------------------------------------------------------

def customer_key(user_id: str | None, session_id: str | None) -> str | None:
    """The unit of assignment: the user when known, else the chat session."""
    if user_id:
        return f"u:{user_id}"
    if session_id:
        return f"s:{session_id}"
    return None


def unit_hash(*parts: str) -> float:
    """A uniform number in [0, 1) from the parts; the same everywhere, always."""
    digest = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


def assign(e: Experiment, customer: str | None) -> Arm | None:
    """"test", "control", or None (not taking part, or no customer to key on)."""
    if customer is None:
        return None
    salt = e.salt or e.id
    if unit_hash(salt, "share", customer) >= e.share_pct / 100:
        return None
    # A second, independent hash splits participants, so changing share_pct later
    # moves customers in or out without moving anyone between the arms.
    return "control" if unit_hash(salt, "arm", customer) < e.control_pct / 100 else "test"


# --- placement ----------------------------------------------------------------------

@dataclass(frozen=True)
class LiveExperiment:
    """An experiment bound to the served catalog, with its current traffic split.

    Per-item values are plain tuples: with ~10 test items, Python scalars are faster
    on the request path than numpy calls.
    """

    experiment: Experiment
    item_codes: tuple[int, ...]  # product codes, -1 when the model lacks the item
    item_categories: tuple[int, ...]  # category codes, -1 likewise
    product_ids: np.ndarray  # (P,) the served catalog's ids (a reference, not a copy)
    weights: tuple[float, ...]  # traffic split among the test items, sums to 1

    def with_weights(self, weights: Sequence[float] | np.ndarray) -> "LiveExperiment":
        if len(weights) != len(self.item_codes):
            raise ValueError(f"weights: {len(weights)} for {len(self.item_codes)} items")
        return replace(self, weights=tuple(float(w) for w in weights))


def bind(e: Experiment, product_ids: np.ndarray, product_index: Mapping[str, int],
         product_category: np.ndarray, weights: Sequence[float] | None = None) -> LiveExperiment:
    """Map the test items onto the served catalog (again after every model swap)."""
    codes = tuple(int(product_index.get(i, -1)) for i in e.item_ids)
    cats = tuple(int(product_category[c]) if c >= 0 else -1 for c in codes)
    live = LiveExperiment(e, codes, cats, product_ids, ())
    n = len(e.item_ids)
    return live.with_weights([1.0 / n] * n if weights is None else weights)


def place_test_item(live: LiveExperiment, rpc: str, organic: Sequence[int],
                    product_in_stock: np.ndarray, *, user_id: str | None,
                    session_id: str | None, now: datetime,
                    allowed_categories: Collection[int] | None = None) -> Placement | None:
    """Decide this request's exposure for the experiment's slot, or None.

    `organic` is the answer's product codes in order, `product_in_stock` the (P,)
    roll-up. `allowed_categories` is used when the experiment is targeted: category
    codes that fit the request (complements: the anchors' complement categories).
    The caller inserts a test item at `position` (dropping the last item when over
    the limit) with reason "test slot"; a control placement changes nothing but
    attaches `exposure_id` to the organic item at `position`.
    """
    e = live.experiment
    if rpc not in e.rpcs or not e.running_at(now) or len(organic) < e.slot:
        return None
    customer = customer_key(user_id, session_id)
    arm = assign(e, customer)
    if arm is None or customer is None:
        return None
    shown = set(organic)
    targeted = e.targeting and allowed_categories is not None
    eligible = [k for k, code in enumerate(live.item_codes)
                if code >= 0 and product_in_stock[code] and code not in shown
                and (not targeted or live.item_categories[k] in allowed_categories)]  # type: ignore[operator]
    if not eligible:
        return None
    # os.urandom, not a shared generator: request threads share no RNG state, and
    # the same random bits both name the exposure and pick the item.
    raw = os.urandom(16)
    exposure_id = raw.hex()
    position = e.slot - 1
    if arm == "control":
        code = int(organic[position])
        return Placement(Exposure(exposure_id, e.id, arm, str(live.product_ids[code]), rpc,
                                  e.slot, customer, now), code, position)
    k = _weighted_choice(eligible, live.weights, int.from_bytes(raw[:8], "big") / 2.0**64)
    return Placement(Exposure(exposure_id, e.id, arm, e.item_ids[k], rpc, e.slot, customer, now),
                     live.item_codes[k], position)


def _weighted_choice(candidates: list[int], weights: tuple[float, ...], u: float) -> int:
    """The candidate whose share of the candidates' total weight covers `u` in [0, 1)."""
    total = sum(weights[k] for k in candidates)
    if total <= 0:
        return candidates[int(u * len(candidates))]
    x, acc = u * total, 0.0
    for k in candidates:
        acc += weights[k]
        if x < acc:
            return k
    return candidates[-1]  # float rounding at the very top


# --- the book -----------------------------------------------------------------------

class ExperimentBook:
    """Experiments in memory, backed by the store (like `PromotionBook`).

    Readers (`running`) take no lock and never touch the store; `refresh()` pulls
    what other replicas or the CLI changed.
    """

    def __init__(self, store: "Store") -> None:
        self._store = store
        self._lock = threading.Lock()
        self._experiments: tuple[Experiment, ...] = tuple(store.list_experiments())

    def create(self, e: Experiment, known_item_ids: Collection[str]) -> Experiment:
        """Validate against the store's current experiments (not a stale copy), then store."""
        with self._lock:
            created, before = self._store.create_experiment(
                e, check=lambda existing: validate_experiment(e, known_item_ids, existing))
            self._experiments = tuple(before) + (created,)
        return created

    def list(self) -> list[Experiment]:
        return list(self._experiments)

    def get(self, experiment_id: str) -> Experiment | None:
        return next((e for e in self._experiments if e.id == experiment_id), None)

    def set_status(self, experiment_id: str, status: str) -> Experiment:
        """pause (active -> paused), resume (paused -> active), stop (-> stopped, final)."""
        with self._lock:
            current = {e.id: e for e in self._store.list_experiments()}
            e = current.get(experiment_id)
            if e is None:
                raise KeyError(experiment_id)
            if status not in STATUSES:
                raise ValueError(f"status: one of {', '.join(STATUSES)}, got {status!r}")
            if e.status == "stopped" and status != "stopped":
                raise ValueError(f"status: experiment {experiment_id} is stopped; "
                                 "create a new one to test again")
            if status == "active":  # resuming must not collide with one created meanwhile
                validate_experiment(replace(e, status="active"), set(e.item_ids),
                                    current.values())
            self._store.set_experiment_status(experiment_id, status)
            current[experiment_id] = replace(e, status=status)
            self._experiments = tuple(current.values())
            return current[experiment_id]

    def refresh(self) -> None:
        with self._lock:
            self._experiments = tuple(self._store.list_experiments())

    def running(self, rpc: str, now: datetime) -> list[Experiment]:
        return [e for e in self._experiments if rpc in e.rpcs and e.running_at(now)]
