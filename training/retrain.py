"""One scheduled retraining run: train -> quality gate -> publish or keep -> retention.

    recsvc-train run --config retrain.toml [--force]

Safe to start from cron, a systemd timer or a Kubernetes CronJob: an advisory lock in
the model directory (DIR/.retrain.lock, released by the kernel even when the run is
killed) keeps two runs from overlapping, every stage logs one line, and the exit code
says what happened:

    0   published: the new bundle is current (also when --force overrode the gate)
    1   unexpected error (a bug; the traceback is in the log)
    2   bad config or unusable input data; the message names what to fix
    3   rejected by the quality gate: the bundle is kept (not current) with gate.json
    4   storage error writing the bundle (disk full, permissions); nothing was published
    5   the order database was unreachable; retry later
    75  another run holds the lock (EX_TEMPFAIL); nothing was done

A killed run leaves no visible partial bundle (bundles are renamed into place) and
`current` untouched; its hidden leftovers are removed by a later run.
"""
from __future__ import annotations

import errno
import logging
import time
import tomllib
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path
from typing import Any, Iterator

from training import bundle as bundle_fmt
from training.bundle import BundleError, load_bundle
from training.config import ConfigError, TrainConfig
from training.config import _update as update_section  # same key/type checks as [als] etc.
from training.gate import GateConfig, GateReport, run_gate, write_report
from training.io import InputError
from training.pipeline import TrainResult, train
from training.retention import prune, remove_leftovers
from training.runlock import Locked, run_lock
from training.sources import SourceUnavailable

log = logging.getLogger("recsvc.retrain")
FORMATS = ("standard", "online-retail", "complete-journey")


class Exit(IntEnum):
    PUBLISHED = 0
    ERROR = 1
    BAD_INPUT = 2
    REJECTED = 3
    STORAGE = 4
    SOURCE_UNAVAILABLE = 5
    LOCKED = 75


@dataclass
class RetrainConfig:
    """The retrain TOML: top-level inputs, [gate], and [train.*] model sections.

    Relative paths are taken from the config file's directory, so the same file works
    from cron, systemd and a shell alike.
    """

    orders: str
    model_dir: Path
    catalog: str | None = None
    format: str = "standard"
    keep_last: int = 10  # usable bundles kept (current always kept besides)
    keep_rejected: int = 2  # rejected bundles kept for inspection
    gate: GateConfig = field(default_factory=GateConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    @classmethod
    def from_toml(cls, path: str | Path) -> "RetrainConfig":
        path = Path(path)
        try:
            with open(path, "rb") as f:
                data = tomllib.load(f)
        except (OSError, tomllib.TOMLDecodeError) as e:
            raise ConfigError(f"cannot read config {path}: {e}") from e
        return cls.from_dict(data, base=path.parent, where=str(path))

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, base: Path = Path("."), where: str = "config") -> "RetrainConfig":
        data = dict(data)
        known = {"orders", "model_dir", "catalog", "format", "keep_last", "keep_rejected", "gate", "train"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"{where}: unknown key {unknown[0]!r}; known: {', '.join(sorted(known))}")
        for key in ("orders", "model_dir"):
            if not isinstance(data.get(key), str) or not data[key]:
                raise ConfigError(f"{where}: {key} is required (a path{' or URL' if key == 'orders' else ''})")
        for key in ("catalog", "format"):
            if key in data and not isinstance(data[key], str):
                raise ConfigError(f"{where}: {key}: expected a string, got {data[key]!r}")
        fmt = data.get("format", "standard")
        if fmt not in FORMATS:
            raise ConfigError(f"{where}: format {fmt!r} is not one of {', '.join(FORMATS)}")
        for key in ("keep_last", "keep_rejected"):
            value = data.get(key, 1)
            if isinstance(value, bool) or not isinstance(value, int) or value < (1 if key == "keep_last" else 0):
                raise ConfigError(f"{where}: {key} must be an integer >= {1 if key == 'keep_last' else 0}, got {value!r}")
        gate = update_section(GateConfig(), _table(data, "gate", where), f"{where}: [gate]")
        gate.validate(f"{where}: [gate]")
        cfg = cls(
            orders=_resolve(data["orders"], base), model_dir=Path(_resolve(data["model_dir"], base)),
            catalog=_resolve(data["catalog"], base) if data.get("catalog") else None, format=fmt,
            keep_last=data.get("keep_last", 10), keep_rejected=data.get("keep_rejected", 2), gate=gate,
            train=TrainConfig.from_dict(_table(data, "train", where), where=f"{where}: [train]"),
        )
        if cfg.format == "standard" and cfg.catalog is None:
            raise ConfigError(f"{where}: catalog is required with format = \"standard\"")
        return cfg


def _table(data: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: [{key}] must be a table of settings")
    return value


def _resolve(value: str, base: Path) -> str:
    if "://" in value or Path(value).is_absolute():
        return value
    return str((base / value).resolve())


# ------------------------------------------------------------------------------ a run

@dataclass
class RunOutcome:
    code: Exit
    message: str
    version: str | None = None
    gate: GateReport | None = None
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage


@contextmanager
def _stage(name: str, timings: dict[str, float]) -> Iterator[None]:
    t0 = time.perf_counter()
    log.info("retrain stage=%s start", name)
    yield
    timings[name] = time.perf_counter() - t0
    log.info("retrain stage=%s done in %.2f s", name, timings[name])


def run(cfg: RetrainConfig, *, force: bool = False, progress: bool = False) -> RunOutcome:
    """The whole run under the lock; failures come back as an outcome with its exit code."""
    try:
        with run_lock(cfg.model_dir) as lock:
            log.info("retrain stage=lock acquired %s", lock)
            timings: dict[str, float] = {}
            outcome = _locked_run(cfg, force=force, progress=progress, timings=timings)
            outcome.timings = timings
            return _finish(outcome)
    except Locked as e:
        return _finish(RunOutcome(Exit.LOCKED, str(e)))
    except OSError as e:  # the model directory itself: missing permissions, read-only, full
        return _finish(RunOutcome(Exit.STORAGE, f"model directory {cfg.model_dir} is not writable: {_why(e)}"))
    except Exception as e:  # a bug: say so in the log with the traceback, and exit 1
        log.exception("retrain failed unexpectedly")
        return _finish(RunOutcome(Exit.ERROR, f"unexpected {type(e).__name__}: {e}"))


def _locked_run(cfg: RetrainConfig, *, force: bool, progress: bool, timings: dict[str, float]) -> RunOutcome:
    live_version = bundle_fmt.current_version(cfg.model_dir)
    with _stage("cleanup", timings):
        leftovers = remove_leftovers(cfg.model_dir)
        if leftovers:
            log.info("retrain removed leftovers of killed runs: %s", ", ".join(leftovers))
    try:
        with _stage("train", timings):
            result = train(cfg.orders, cfg.catalog, cfg.model_dir, fmt=cfg.format, cfg=cfg.train,
                           make_current=False, progress=progress, keep_holdout=True)
    except SourceUnavailable as e:
        return RunOutcome(Exit.SOURCE_UNAVAILABLE, str(e))
    except (InputError, ConfigError, ValueError) as e:
        return RunOutcome(Exit.BAD_INPUT, str(e))
    except OSError as e:
        return RunOutcome(Exit.STORAGE, f"could not write the bundle under {cfg.model_dir}: {_why(e)}; nothing was "
                                        f"published and current is still {live_version or 'unset'}; free space "
                                        "or fix permissions there and rerun")
    version = result.version
    try:
        with _stage("gate", timings):
            report = _gate(cfg, result, live_version, force)
            write_report(result.bundle_path, report)
        print(report.format(), flush=True)
        if not report.passed and not force:
            log.error("retrain gate REJECTED %s: %s; kept at %s (not current), live stays %s",
                      version, "; ".join(report.reasons()), result.bundle_path, live_version)
            outcome = RunOutcome(Exit.REJECTED, f"quality gate rejected {version}: " + "; ".join(report.reasons())
                                 + f". The bundle is kept for inspection at {result.bundle_path}; "
                                 f"`recsvc-train promote {version}` or --force publishes it anyway", version, report)
        else:
            if not report.passed:
                log.warning("retrain gate FAILED but --force given: publishing %s anyway (%s)",
                            version, "; ".join(report.reasons()))
            with _stage("publish", timings):
                bundle_fmt.set_current(cfg.model_dir, version)
            outcome = RunOutcome(Exit.PUBLISHED, f"published {version} (was {live_version or 'none'})"
                                 + (" FORCED past the gate" if not report.passed else ""), version, report)
        with _stage("retention", timings):
            pruned = prune(cfg.model_dir, cfg.keep_last, cfg.keep_rejected)
            log.info("retrain retention kept %d bundles, removed %d%s", len(pruned.kept), len(pruned.removed),
                     f" ({', '.join(pruned.removed)})" if pruned.removed else "")
    except OSError as e:
        return RunOutcome(Exit.STORAGE, f"storage error after writing {version}: {e}; current is "
                                        f"{bundle_fmt.current_version(cfg.model_dir) or 'unset'}", version)
    return outcome


def _why(e: OSError) -> str:
    """The error, saying 'disk full' where the OS or numpy only hints at it."""
    if e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return f"{e.strerror} (disk full or file size limit reached)"
    if e.errno is None and "requested and" in str(e):  # numpy's report of a short write
        return f"{e} (a short write: the disk is full)"
    return str(e)


def _gate(cfg: RetrainConfig, result: TrainResult, live_version: str | None, force: bool) -> GateReport:
    new = load_bundle(result.bundle_path)  # also proves what is on disk is intact
    live, problem = None, None
    if live_version is not None:
        try:
            live = load_bundle(cfg.model_dir)
        except BundleError as e:
            # A broken live bundle is no standard to hold the new one to: compare nothing.
            problem = f"live bundle unreadable, metrics not compared: {e}"
            log.warning("retrain %s", problem)
    assert result.holdout is not None
    report = run_gate(new, live, result.holdout, result.rows, cfg.gate, cfg.train.eval, live_problem=problem)
    report.forced = force and not report.passed
    return report


def _finish(outcome: RunOutcome) -> RunOutcome:
    level = logging.INFO if outcome.code == Exit.PUBLISHED else logging.ERROR
    log.log(level, "retrain finished exit=%d (%s): %s", outcome.code, outcome.code.name.lower(), outcome.message)
    return outcome
