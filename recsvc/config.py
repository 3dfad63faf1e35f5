"""The service's one typed configuration: every key documented once, here.

Precedence, lowest first: the defaults below < a TOML or YAML file (`--config FILE`,
flat `key = value`) < `RECSVC_<KEY>` environment variables < command-line flags.
`python -m recsvc.config` prints every key with its default and meaning.

Environment values are parsed by the key's type: numbers, booleans (1/0, true/false,
yes/no), lists as `a,b,c`, and mappings as JSON (`{"tops": ["shirts"]}`).
Unknown keys in a file are refused (a typo must not silently keep a default); other
`RECSVC_*` variables are left alone, since tools beside the service use the prefix.
"""
from __future__ import annotations

import dataclasses
import json
import os
import tomllib
from dataclasses import dataclass, field
from difflib import get_close_matches
from pathlib import Path
from typing import Any, Mapping

ENV_PREFIX = "RECSVC_"


class ConfigError(ValueError):
    """A configuration value is wrong; the message names the key and where it came from."""


def _doc(text: str, **kw: Any) -> Any:
    return field(metadata={"doc": text}, **kw)


@dataclass(frozen=True)
class Config:
    # --- where things are -------------------------------------------------------------
    model_dir: str = _doc("directory holding `versions/` and the `current` link written by "
                          "recsvc-train; the server follows `current`", default="model")
    state_url: str = _doc("state store for stock, price overrides and promotions: "
                          "sqlite:///path/state.db or postgresql://user@host/db; empty = "
                          "sqlite:///<model_dir>/state.db", default="")
    # --- serving ----------------------------------------------------------------------
    host: str = _doc("address to listen on", default="[::]")
    port: int = _doc("port to listen on; 0 picks a free one (tests)", default=50051)
    workers: int = _doc("server processes sharing the port (SO_REUSEPORT); about one per core",
                        default=1)
    pin_workers: bool = _doc("with several workers, worker i runs on the i-th CPU this process "
                             "may use (round robin): workers do not take each other's core, and "
                             "one holding the GIL is not preempted by another (closed-loop "
                             "throughput on 2 cores +16 % on average over five interleaved "
                             "pairs, -11 % to +35 %); false: the scheduler places them", default=True)
    threads: int = _doc("handler threads per process for the chatbot's calls (Admin calls, event "
                        "reports and reflection have a pool of their own); handlers are short and hold the GIL, so more threads "
                        "only contend with the thread that takes calls off grpc's queue",
                        default=1)
    max_concurrent_rpcs: int = _doc("requests admitted at once per process (running + queued); "
                                    "beyond it the answer is RESOURCE_EXHAUSTED at once, so "
                                    "queueing stays bounded under overload (32 x ~0.4 ms of "
                                    "work: a queued call waits ~15 ms; at twice the sustainable "
                                    "rate accepted calls kept p99 at 49-315 ms over five runs of "
                                    "bench.serve_load, at 100: 250-340 ms). Lower refuses sooner "
                                    "in a brief stall (a model swap)",
                                    default=32)
    grace_s: float = _doc("on SIGTERM, seconds given to in-flight requests before exit",
                          default=10.0)
    reload_poll_s: float = _doc("how often `current` is checked for a new bundle (a readlink: "
                                "cheap; a new version answers within about this plus its load time)",
                                default=1.0)
    reload_cpu_share: float = _doc("while a model serves, the share of a worker's time that taking "
                                   "in the next one may take (0-1]: the rest answers requests, so a swap "
                                   "under load does not overflow the admission limit (at half the "
                                   "sustainable rate a worker needs ~60 % of its core for requests: "
                                   "0.5 left it short). With model images (model_image_dir) a worker "
                                   "maps the image and builds its kernel, ~75 ms of CPU at 100k "
                                   "products: ~0.4 s at 0.25; without, it loads the bundle itself, "
                                   "~0.8 s of CPU: over 3 s at 0.25", default=0.25)
    refresh_s: float = _doc("how often stock and promotions written by other replicas (or "
                            "other worker processes) are pulled in", default=1.0)
    slow_refresh_s: float = _doc("how often price overrides written by other replicas are "
                                 "re-read in full", default=10.0)
    experiments_refresh_s: float = _doc("how often A/B experiments changed elsewhere (other "
                                        "replicas, the CLI) are pulled in and Thompson traffic "
                                        "splits recomputed from the stored counts", default=5.0)
    compiled_answers: bool = _doc("answer the common requests with the compiled kernel "
                                  "(recsvc/fast); false: everything in Python, the same "
                                  "answers, slower", default=True)
    model_image_dir: str = _doc("where loaded models are kept as model images, array files every "
                                "worker maps (recsvc/model_image.py): a hot reload loads the bundle "
                                "once, in a child process on idle CPU time, instead of in each "
                                "worker beside its requests; auto = /dev/shm/recsvc-images-<uid> "
                                "(the temp dir where /dev/shm lacks room for three times the bundle); "
                                "off = each worker loads the bundle itself, within reload_cpu_share",
                                default="auto")
    verify_checksums: bool = _doc("check bundle checksums on load (refuses corrupt files)",
                                  default=True)
    log_level: str = _doc("DEBUG, INFO, WARNING or ERROR", default="INFO")
    log_format: str = _doc("text (one line per record) or json (one object per line); both "
                           "carry the request id", default="text")
    metrics_port: int = _doc("port of the Prometheus /metrics endpoint (on `host`); 0 = off. "
                             "Worker i of `workers` uses metrics_port + i. 9464 is the usual "
                             "choice in production; off by default so that several servers on "
                             "one machine (tests, benchmarks) never fight over it", default=0)
    # --- answers ----------------------------------------------------------------------
    default_limit: int = _doc("items returned when a request gives no limit (1..100)", default=10)
    complements_same_category: list[str] = _doc(
        "categories whose complements may come from the same category (e.g. socks that "
        "sell in pairs of styles); all others never suggest their own category",
        default_factory=list)
    substitutes_price_band: float = _doc("substitutes cost within +/- this fraction of the item's "
                                         "price; 0 turns the band off", default=0.30)
    substitutes_category_map: dict[str, list[str]] = _doc(
        "extra categories a category's substitutes may come from, e.g. "
        '{"hoodies": ["sweatshirts"]}', default_factory=dict)
    substitutes_min_complement_support: int = _doc(
        "a product bought together with the item in at least this many orders is a "
        "complement, never offered as its substitute", default=2)
    recommend_repeat_categories: list[str] = _doc(
        "categories bought again and again (socks, coffee): already-bought products of "
        "these stay recommendable", default_factory=list)
    recommend_exact_max_products: int = _doc(
        "score every product with the customer's factors when the catalog (or the asked "
        "categories) has at most this many; larger ones score candidates from the "
        "customer's own neighbourhood plus popular items, to stay under a millisecond",
        default=20000)
    bundle_max_items: int = _doc("most complements a bundle may hold", default=5)
    bundle_candidates: int = _doc("top complements considered per bundle slot; the best-ranked "
                                  "one an active promotion covers wins, else the best-ranked",
                                  default=5)

    # ----------------------------------------------------------------------------------
    @property
    def effective_state_url(self) -> str:
        return self.state_url or f"sqlite:///{Path(self.model_dir).resolve() / 'state.db'}"

    def validate(self) -> "Config":
        def need(ok: bool, key: str, msg: str) -> None:
            if not ok:
                raise ConfigError(f"{key}: {msg}, got {getattr(self, key)!r}")

        need(0 <= self.port <= 65535, "port", "must be within 0..65535")
        need(self.metrics_port == 0 or 1 <= self.metrics_port <= 65536 - self.workers, "metrics_port",
             f"must be 0 (off) or a port leaving room for one per worker (workers = {self.workers})")
        need(self.metrics_port == 0 or self.metrics_port != self.port, "metrics_port", "must differ from port")
        need(self.log_format in ("text", "json"), "log_format", "must be text or json")
        need(self.workers >= 1, "workers", "must be >= 1")
        need(self.threads >= 1, "threads", "must be >= 1")
        need(0 < self.reload_cpu_share <= 1, "reload_cpu_share", "must be in (0, 1]")
        need(self.model_image_dir.strip() != "", "model_image_dir", "must be auto, off or a directory")
        need(self.max_concurrent_rpcs >= self.threads, "max_concurrent_rpcs",
             f"must be >= threads ({self.threads})")
        for key in ("grace_s", "reload_poll_s", "refresh_s", "slow_refresh_s", "experiments_refresh_s"):
            need(getattr(self, key) > 0, key, "must be > 0 seconds")
        need(1 <= self.default_limit <= 100, "default_limit", "must be within 1..100")
        need(0 <= self.substitutes_price_band < 10, "substitutes_price_band",
             "must be a fraction >= 0 (0.3 = +/-30 %)")
        need(self.substitutes_min_complement_support >= 1, "substitutes_min_complement_support",
             "must be >= 1")
        need(self.recommend_exact_max_products >= 0, "recommend_exact_max_products", "must be >= 0")
        need(1 <= self.bundle_max_items <= 20, "bundle_max_items", "must be within 1..20")
        need(self.bundle_candidates >= 1, "bundle_candidates", "must be >= 1")
        need(self.log_level.upper() in ("DEBUG", "INFO", "WARNING", "ERROR"), "log_level",
             "must be DEBUG, INFO, WARNING or ERROR")
        need(bool(self.model_dir), "model_dir", "must name a directory")
        need(self.state_url == "" or self.state_url.startswith(("sqlite:///", "postgresql://", "postgres://")),
             "state_url", "must start with sqlite:/// or postgresql://")
        return self

    def replace(self, **changes: Any) -> "Config":
        return dataclasses.replace(self, **changes).validate()


FIELDS: dict[str, dataclasses.Field] = {f.name: f for f in dataclasses.fields(Config)}


def describe() -> str:
    """Every key with its type, default and meaning (for --help and the README)."""
    defaults = Config()
    lines = []
    for name, f in FIELDS.items():
        typ = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
        lines.append(f"{name} ({typ}, env {ENV_PREFIX}{name.upper()}, default {getattr(defaults, name)!r})")
        lines.append(f"    {f.metadata['doc']}")
    return "\n".join(lines)


def _coerce(name: str, raw: Any, source: str, from_text: bool) -> Any:
    """Turn `raw` into the type of field `name`; ConfigError names the key and source."""
    typ = FIELDS[name].type
    where = f"{name} (from {source})"
    try:
        if typ == "bool":
            if isinstance(raw, bool):
                return raw
            if from_text and str(raw).strip().lower() in ("1", "true", "yes", "on"):
                return True
            if from_text and str(raw).strip().lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError("expected true or false")
        if typ == "int":
            if isinstance(raw, bool) or (not from_text and not isinstance(raw, int)):
                raise ValueError("expected an integer")
            return _number(int, raw, "an integer")
        if typ == "float":
            if isinstance(raw, bool) or (not from_text and not isinstance(raw, (int, float))):
                raise ValueError("expected a number")
            return _number(float, raw, "a number")
        if typ == "str":
            if not isinstance(raw, str):
                raise ValueError("expected a string")
            return raw
        if typ == "list[str]":
            if from_text and isinstance(raw, str):
                raw = json.loads(raw) if raw.strip().startswith("[") else [s.strip() for s in raw.split(",") if s.strip()]
            if not isinstance(raw, list) or not all(isinstance(s, str) for s in raw):
                raise ValueError("expected a list of strings")
            return list(raw)
        if typ == "dict[str, list[str]]":
            if from_text and isinstance(raw, str):
                raw = json.loads(raw)
            if not isinstance(raw, dict) or not all(
                    isinstance(k, str) and isinstance(v, list) and all(isinstance(s, str) for s in v)
                    for k, v in raw.items()):
                raise ValueError('expected a mapping of category to a list of categories, e.g. {"a": ["b"]}')
            return {k: list(v) for k, v in raw.items()}
    except (ValueError, json.JSONDecodeError) as e:
        raise ConfigError(f"{where}: {e}; got {raw!r}") from None
    raise AssertionError(f"unhandled config type {typ} for {name}")


def _number(typ: type, raw: Any, what: str) -> Any:
    try:
        return typ(raw)
    except (TypeError, ValueError):
        raise ValueError(f"expected {what}") from None


def _read_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except OSError as e:
        raise ConfigError(f"config file {path}: cannot read it ({e.strerror})") from None
    try:
        if path.suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text) or {}
        else:
            data = tomllib.loads(text)
    except Exception as e:  # yaml and toml raise their own error types
        raise ConfigError(f"config file {path}: not valid {'YAML' if path.suffix in ('.yaml', '.yml') else 'TOML'}: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path}: expected key = value pairs at the top level")
    return data


def load_config(path: str | Path | None = None, env: Mapping[str, str] | None = None,
                overrides: Mapping[str, Any] | None = None) -> Config:
    """Defaults < file < RECSVC_* environment < `overrides` (command-line flags), validated."""
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}  # key -> where its value came from, for validation messages
    if path is not None:
        path = Path(path)
        for key, raw in _read_file(path).items():
            if key not in FIELDS:
                hint = get_close_matches(key, FIELDS, n=1)
                raise ConfigError(f"{key} (from {path}): unknown key"
                                  + (f"; did you mean {hint[0]!r}?" if hint else
                                     "; `python -m recsvc.config` lists the keys"))
            values[key] = _coerce(key, raw, str(path), from_text=False)
            sources[key] = str(path)
    env = os.environ if env is None else env
    for name in FIELDS:
        var = ENV_PREFIX + name.upper()
        if var in env:
            values[name] = _coerce(name, env[var], f"environment {var}", from_text=True)
            sources[name] = f"environment {var}"
    for key, raw in (overrides or {}).items():
        if raw is not None:
            values[key] = _coerce(key, raw, "command line", from_text=False)
            sources[key] = "command line"
    try:
        return Config(**values).validate()
    except ConfigError as e:
        key, _, rest = str(e).partition(":")
        if key in sources:  # say where the bad value was set
            raise ConfigError(f"{key} (from {sources[key]}):{rest}") from None
        raise


def env_typos(env: Mapping[str, str] | None = None) -> list[str]:
    """Warnings for RECSVC_* variables that look like a misspelt key (RECSVC_PROT).
    Other RECSVC_* variables are not ours to judge: tools beside the service use them."""
    env = os.environ if env is None else env
    names = [ENV_PREFIX + n.upper() for n in FIELDS]
    out = []
    for var in sorted(env):
        if var.startswith(ENV_PREFIX) and var not in names:
            hint = get_close_matches(var, names, n=1, cutoff=0.85)
            if hint:
                out.append(f"{var} is not a configuration key and is ignored; did you mean {hint[0]}?")
    return out


if __name__ == "__main__":
    print(describe())
