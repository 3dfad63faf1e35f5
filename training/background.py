"""Run one stage of the job in a child process while the job goes on.

The refit on all orders does not depend on the fit on the training split nor on the
evaluation, and most of the work in each is single-threaded numpy/scipy, so on two
cores the refit can run beside them: the job then takes about the longer of the two
branches instead of their sum.

The child is *spawned*, not forked: implicit's ALS runs on OpenMP, and a forked child
of a process that has already used OpenMP can hang in its first parallel region. It
receives its inputs pickled (encoded arrays, tens of MB), returns its result pickled,
and dies with its parent (PR_SET_PDEATHSIG on Linux), so a killed job leaves no child
computing on.
"""
from __future__ import annotations

import ctypes
import multiprocessing
import os
import resource
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")
_PR_SET_PDEATHSIG = 1


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _die_with_parent() -> None:
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        except (OSError, AttributeError):
            pass  # best effort: the child then finishes its stage and exits


def _child(conn: Any, fn: Callable[..., Any], args: tuple) -> None:
    _die_with_parent()
    try:
        value = fn(*args)
    except BaseException as e:  # sent back: the parent re-raises it
        conn.send(("error", e))
    else:
        conn.send(("ok", value, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))
    finally:
        conn.close()


@dataclass
class Finished(Generic[T]):
    value: T
    in_child: bool  # False: the child died, and the stage ran again here
    child_peak_rss_mb: float = 0.0
    why: str = ""  # when it ran here: what happened to the child


class Background(Generic[T]):
    """`fn(*args)` computed in a spawned child; `result()` waits for it.

    If the child dies (killed, out of memory) the stage runs again in this process, so
    a lost child costs time, never the job. An exception raised by `fn` itself is
    re-raised here: running it again would fail the same way."""

    def __init__(self, fn: Callable[..., T], *args: Any) -> None:
        self._fn, self._args = fn, args
        ctx = multiprocessing.get_context("spawn")
        self._conn, child_end = ctx.Pipe(duplex=False)
        self._proc = ctx.Process(target=_child, args=(child_end, fn, args), name="recsvc-train-refit", daemon=True)
        try:
            self._proc.start()
        except BaseException:
            self._conn.close()
            raise
        finally:
            child_end.close()  # ours closed: recv() sees EOF when the child dies

    def result(self) -> Finished[T]:
        try:
            msg = self._conn.recv()
        except (EOFError, OSError) as e:
            self._proc.join()
            why = f"the child process ended with exit code {self._proc.exitcode} ({type(e).__name__})"
            return Finished(self._fn(*self._args), in_child=False, why=why)
        finally:
            self._conn.close()
        self._proc.join()
        if msg[0] == "error":
            raise msg[1]
        return Finished(msg[1], in_child=True, child_peak_rss_mb=msg[2])

    def cancel(self) -> None:
        """Stop the child (the job failed before it needed the result)."""
        if self._proc.is_alive():
            self._proc.kill()
        self._proc.join()
        self._conn.close()
