"""The serving state of one process: the live snapshot, hot reload, and replica refresh.

`Runtime` owns the state store, the promotion book and a `Holder[Live]`. A background
thread (started by the server) follows the model directory's `current` link: a new
version is loaded, checked and tried on a few queries *before* it is swapped in with one
reference assignment, so requests in flight finish on the old snapshot and a corrupt or
incompatible bundle is refused with a log line while the old model keeps serving. The
same thread pulls what other replicas wrote to a shared store (stock each `refresh_s`;
promotions too; prices, re-read in full, each `slow_refresh_s`).

No gRPC here: the server asks `live()`, `reload()` and `status()`.
"""
from __future__ import annotations

import fcntl
import gc
import hashlib
import logging
import os
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from recsvc import model_image
from recsvc.answers import (ComplementsQuery, Context, Live, RecommendQuery, SubstitutesQuery, complements,
                            recommend, substitutes)
from recsvc.config import Config
from recsvc.experiments_service import ExperimentRuntime
from recsvc.fast import kernel_for
from recsvc.inventory import Inventory
from recsvc.model import Holder, Model, load_model
from recsvc.pacing import pause, paced
from recsvc.prices import Prices
from recsvc.promotions import PromotionBook
from recsvc.store import Store, open_store
from training.bundle import BundleError, current_version, resolve

log = logging.getLogger("recsvc.runtime")
_RETIRE_S = 0.2  # after a swap, before the old model's mapped pages are released


@dataclass
class ReloadResult:
    changed: bool
    version: str  # serving now ("" while nothing is)
    previous: str
    message: str


@dataclass
class RuntimeStatus:
    version: str
    swaps: int
    last_error: str
    started_at: float = field(default_factory=time.time)


def make_live(model: Model, store: Store, promotions: PromotionBook, config: Config,
              previous: Live | None = None) -> Live:
    """Bind the mutable state (stock, prices) to a model's catalog; on a swap, the stock
    is carried over from the `previous` snapshot's (its refresh() then pulls what changed)."""
    args = (model.variant_ids, model.variant_product, model.n_products, model.variant_index)
    inventory = previous.inventory.rebind(*args) if previous is not None else Inventory(store, *args)
    return Live(model=model, inventory=inventory, prices=Prices(store, model), promotions=promotions, config=config,
                kernel=kernel_for(model, config))


def smoke_test(live: Live) -> None:
    """Run each query kind once on the first product: a bundle whose arrays load but do
    not answer (bad dtypes, NaN factors...) fails here, before it is swapped in."""
    m = live.model
    if m.n_products == 0:
        raise BundleError(f"bundle {m.path} has no products")
    first = str(m.product_ids[0])
    complements(live, ComplementsQuery(item_ids=(first,), limit=3))
    substitutes(live, SubstitutesQuery(item_id=first, limit=3))
    user = str(m.user_index.ids[0]) if len(m.user_index) else ""
    recommend(live, RecommendQuery(limit=3, context=Context(user_id=user)))
    if len(m.user_factors) and not np.isfinite(m.user_factors[:1000]).all():
        raise BundleError(f"bundle {m.path}: user_factors hold NaN or infinite values")
    if len(m.item_factors) and not np.isfinite(m.item_factors).all():
        raise BundleError(f"bundle {m.path}: item_factors hold NaN or infinite values")


@contextmanager
def _one_loader_at_a_time(model_dir: Path) -> Iterator[None]:
    """Worker processes of one machine load a new bundle in turn, not all at once: a load
    costs about a CPU-second at 100k products, and while one worker loads the others
    keep their full share of the cores for requests."""
    digest = hashlib.sha1(str(model_dir.resolve()).encode()).hexdigest()[:12]
    try:
        fd = os.open(os.path.join(tempfile.gettempdir(), f"recsvc-load-{digest}.lock"), os.O_RDWR | os.O_CREAT, 0o600)
    except OSError:  # no writable temp dir: load without taking turns
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock (the OS does so too if the process dies)


class Runtime:
    def __init__(self, config: Config, store: Store | None = None) -> None:
        self.config = config
        self.model_dir = Path(config.model_dir)
        self.store = store or open_store(config.effective_state_url)
        self.promotions = PromotionBook(self.store)
        # A/B slots: re-bound to each model swapped in (see the on_swap list below).
        self.experiments = ExperimentRuntime(self.store, refresh_s=config.experiments_refresh_s)
        self._holder: Holder[Live] = Holder()
        self._reload_lock = threading.Lock()  # one load at a time (watcher vs Admin Reload)
        self._refused: str | None = None  # version refused last; not retried until `current` moves
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.status = RuntimeStatus(version="", swaps=0, last_error="")
        self._on_swap: list = [lambda live: self.experiments.bind(live.model)]
        self._on_refuse: list = []

    # --- reads --------------------------------------------------------------------------
    def live(self) -> Live | None:
        return self._holder.get()

    def on_swap(self, callback) -> None:
        """Call `callback(live)` after each swap (the server flips health to SERVING)."""
        self._on_swap.append(callback)

    def on_reload_status(self, callback) -> None:
        """Call `callback(why)` each time `current` cannot be loaded, and `callback("")`
        once it is served again (metrics, the "recsvc.model" health status)."""
        self._on_refuse.append(callback)

    # --- loading ------------------------------------------------------------------------
    def reload(self, force: bool = False) -> ReloadResult:
        """Load what `current` points to if it is not what is served; refuse bad bundles."""
        with self._reload_lock:
            live = self._holder.get()
            previous = live.model.version if live else ""
            try:
                target = current_version(self.model_dir) or resolve(self.model_dir).name
            except BundleError as e:
                return self._refuse(previous, "", str(e))
            except OSError as e:  # e.g. EACCES: the directory exists but this user may not read it
                return self._refuse(previous, "", f"cannot read the model directory {self.model_dir} "
                                    f"({e.strerror}); give user {os.geteuid()} read access to it")
            if target == previous:
                if self.status.last_error:  # `current` is back on the served version
                    self._refused, self.status.last_error = None, ""
                    log.info("`current` names %s again, which is served; reload problem cleared", previous)
                    for cb in self._on_refuse:
                        cb("")
                return ReloadResult(False, previous, previous, f"already serving {previous}")
            if target == self._refused and not force:
                return ReloadResult(False, previous, previous, f"{target} was refused: {self.status.last_error}")
            t0 = time.perf_counter()
            try:
                # while a model serves, the load keeps to its share of the worker (recsvc.pacing)
                share = self.config.reload_cpu_share if live is not None else 1.0
                with _one_loader_at_a_time(self.model_dir), paced(share):
                    model = self._load(background=live is not None)
                    pause()
                    new = make_live(model, self.store, self.promotions, self.config, previous=live)
                    pause()
                    smoke_test(new)
            except Exception as e:  # any failure to load keeps the old model serving
                return self._refuse(previous, target, f"{type(e).__name__}: {e}" if not isinstance(e, BundleError) else str(e))
            old = self._holder.swap(new)
            new.inventory.refresh()  # stock written to the old inventory while this one loaded
            # A model is ~10^6 long-lived objects (id maps, titles): frozen, the cyclic GC
            # stops walking them, which would otherwise pause a request for milliseconds.
            gc.freeze()
            self._refused, self.status.last_error = None, ""
            self.status.version = model.version
            self.status.swaps += 1
            log.info("serving model %s (loaded in %.2f s%s)", model.version, time.perf_counter() - t0,
                     f", replacing {previous}" if previous else "")
            for cb in self._on_swap:
                cb(new)
            for cb in self._on_refuse:
                cb("")
            if old is not None:
                with paced(self.config.reload_cpu_share):
                    model_image.release(old.model, after_s=_RETIRE_S)
            return ReloadResult(True, model.version, previous, f"now serving {model.version}")

    def _load(self, background: bool) -> Model:
        """The model `current` names, through its model image where images are on."""
        verify, setting = self.config.verify_checksums, self.config.model_image_dir
        if setting != "off":
            try:
                return model_image.load(self.model_dir, setting, verify=verify, background=background)
            except model_image.ImageUnavailable as e:
                log.warning("no model image (%s); loading the bundle in this worker", e)
        return load_model(self.model_dir, verify=verify)

    def _refuse(self, previous: str, target: str, why: str) -> ReloadResult:
        self._refused = target or None
        keeps = f"; still serving {previous}" if previous else "; no model is served yet"
        if why != self.status.last_error:  # once per problem, not at every poll
            log.error("refused model bundle %s: %s%s", target or str(self.model_dir), why, keeps)
        self.status.last_error = why
        for cb in self._on_refuse:
            cb(why)
        return ReloadResult(False, previous, previous, f"refused {target or self.model_dir}: {why}{keeps}")

    # --- background work ----------------------------------------------------------------
    def start(self) -> None:
        """Load now if possible, then follow `current` and refresh state in a thread."""
        self.experiments.start()
        self.reload()
        self._thread = threading.Thread(target=self._loop, name="recsvc-runtime", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        cfg = self.config
        next_refresh = next_slow = time.monotonic()
        next_reload = next_refresh + cfg.reload_poll_s  # start() has just loaded
        while not self._stop.is_set():
            now = time.monotonic()
            try:
                if now >= next_reload:
                    next_reload = now + cfg.reload_poll_s
                    self.reload()
                live = self._holder.get()
                if live is not None and now >= next_refresh:
                    next_refresh = now + cfg.refresh_s
                    live.inventory.refresh()
                    self.promotions.refresh()  # a small table: cheap to re-read often
                if live is not None and now >= next_slow:
                    next_slow = now + cfg.slow_refresh_s
                    live.prices.refresh()
            except Exception:  # a store outage must not end the watcher; it retries next tick
                log.exception("background refresh failed; retrying")
            self._stop.wait(max(0.05, min(next_reload, next_refresh, next_slow) - time.monotonic()))

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.experiments.close()  # writes the pending exposures: before the store closes
        self.store.close()
