"""A built-in scheduler for people without cron, systemd or Kubernetes:

    recsvc-train schedule "0 3 * * *" --config retrain.toml

Five-field cron expressions (minute hour day-of-month month day-of-week, with `*`,
lists, ranges, steps and jan..dec / sun..sat names, or @daily, @hourly, ...) in the
machine's local time, as cron reads them. Each run is a child process
(`recsvc-train run`), so a crash or leak in one night's training cannot take the
scheduler down; runs never overlap (the scheduler waits for each, and the run's own
lock guards against other schedulers), and a run longer than the interval skips the
missed times instead of queueing them. SIGTERM/SIGINT stop it cleanly (a running
child is terminated; an interrupted run leaves nothing half-published).
"""
from __future__ import annotations

import logging
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

log = logging.getLogger("recsvc.schedule")
ALIASES = {"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
           "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *"}
MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
# (name, low, high, names offset by low)
FIELDS = (("minute", 0, 59, ()), ("hour", 0, 23, ()), ("day of month", 1, 31, ()),
          ("month", 1, 12, MONTHS), ("day of week", 0, 7, DAYS))
HORIZON_DAYS = 5 * 366  # no match within this: the expression can never fire (e.g. 30 Feb)


class CronError(ValueError):
    """The expression is malformed; the message names the field."""


@dataclass(frozen=True)
class Cron:
    expr: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    any_day: bool  # day-of-month field was *
    any_weekday: bool  # day-of-week field was *

    @classmethod
    def parse(cls, expr: str) -> "Cron":
        text = ALIASES.get(expr.strip().lower(), expr)
        parts = text.split()
        if len(parts) != 5:
            raise CronError(f"cron expression {expr!r} needs 5 fields (minute hour day-of-month month "
                            f"day-of-week) or one of {', '.join(ALIASES)}; got {len(parts)}")
        sets = [_field(p, *spec) for p, spec in zip(parts, FIELDS)]
        weekdays = frozenset(d % 7 for d in sets[4])  # 7 is Sunday too
        cron = cls(expr, *sets[:4], weekdays, parts[2] == "*", parts[4] == "*")
        cron.next_after(datetime(2000, 1, 1))  # refuses expressions that never fire
        return cron

    def day_matches(self, dt: datetime) -> bool:
        dom, dow = dt.day in self.days, (dt.weekday() + 1) % 7 in self.weekdays
        if self.any_day or self.any_weekday:  # cron: both restricted means either may match
            return dom and dow
        return dom or dow

    def next_after(self, dt: datetime) -> datetime:
        """The first matching minute strictly after `dt` (naive local wall time)."""
        t = dt.replace(second=0, microsecond=0) + timedelta(minutes=1)
        limit = t + timedelta(days=HORIZON_DAYS)
        while t < limit:
            if t.month not in self.months:
                t = (t.replace(day=1) + timedelta(days=32)).replace(day=1, hour=0, minute=0)
            elif not self.day_matches(t):
                t = (t + timedelta(days=1)).replace(hour=0, minute=0)
            elif t.hour not in self.hours:
                t = (t + timedelta(hours=1)).replace(minute=0)
            elif t.minute not in self.minutes:
                t += timedelta(minutes=1)
            else:
                return t
        raise CronError(f"cron expression {self.expr!r} never fires (no matching date within {HORIZON_DAYS // 366} years)")


def _field(text: str, name: str, low: int, high: int, names: tuple[str, ...]) -> frozenset[int]:
    values: set[int] = set()
    for item in text.split(","):
        body, _, step_text = item.partition("/")
        try:
            step = int(step_text) if step_text else 1
            if step < 1:
                raise ValueError
            if body == "*":
                start, end = low, high
            elif "-" in body:
                a, b = body.split("-", 1)
                start, end = _value(a, names, low), _value(b, names, low)
            else:
                start = _value(body, names, low)
                end = high if step_text else start
        except ValueError:
            raise CronError(f"cron {name} field {text!r}: {item!r} is not a number, range, step or name") from None
        if not low <= start <= end <= high:
            raise CronError(f"cron {name} field {text!r}: {item!r} is outside {low}-{high}")
        values.update(range(start, end + 1, step))
    return frozenset(values)


def _value(token: str, names: tuple[str, ...], low: int) -> int:
    token = token.strip().lower()
    if token in names:
        return names.index(token) + low
    return int(token)


# ------------------------------------------------------------------------ the loop

def run_command(config: Path, extra: list[str]) -> list[str]:
    return [sys.executable, "-m", "training.cli", "run", "--config", str(config), *extra]


def serve(cron: Cron, command: list[str], *, run_now: bool = False, max_runs: int | None = None) -> int:
    """Run `command` at every time the expression fires; returns the last run's exit code
    once `max_runs` runs are done or a signal asks it to stop."""
    stop = threading.Event()
    child: list[subprocess.Popen] = []

    def on_signal(signum: int, _frame: object) -> None:
        log.info("schedule: %s received, stopping", signal.Signals(signum).name)
        stop.set()
        for proc in child:
            proc.terminate()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    runs, last = 0, 0
    try:
        due = datetime.now() if run_now else cron.next_after(datetime.now())
        while not stop.is_set() and (max_runs is None or runs < max_runs):
            wait = max(0.0, due.timestamp() - time.time())
            log.info("schedule: next run at %s (in %s) for %r", due.isoformat(" ", "minutes"),
                     timedelta(seconds=round(wait)), cron.expr)
            if stop.wait(wait):
                break
            t0 = time.monotonic()
            log.info("schedule: starting %s", " ".join(command))
            proc = subprocess.Popen(command)
            child.append(proc)
            if stop.is_set():  # the signal came between the wait and the start
                proc.terminate()
            last = proc.wait()
            child.clear()
            runs += 1
            log.info("schedule: run exited %d after %.0f s", last, time.monotonic() - t0)
            due = cron.next_after(datetime.now())  # times missed during a long run are skipped
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    return last
