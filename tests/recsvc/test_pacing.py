"""recsvc.pacing: a load that shares the worker keeps to its budget."""
from __future__ import annotations

import threading
import time

import pytest

from recsvc.pacing import alone, pause, paced


def _work(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def _cpu_work(seconds: float) -> None:
    """`seconds` of this thread's CPU time: what the budget counts, however busy the machine."""
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


def test_inside_a_budget_the_work_keeps_to_its_share_of_the_time():
    t0 = time.perf_counter()
    with paced(0.25):
        for _ in range(4):
            _cpu_work(0.005)
            pause()
    assert time.perf_counter() - t0 >= 0.02 / 0.25 * 0.95  # 20 ms of work took at least 80 ms


def test_outside_a_budget_a_pause_is_only_a_window():
    t0 = time.perf_counter()
    for _ in range(4):
        _work(0.005)
        pause()
    assert time.perf_counter() - t0 < 0.06  # 20 ms of work and four ~1 ms windows
    with paced(1.0):  # the whole worker: no budget either
        t1 = time.perf_counter()
        _work(0.005)
        pause()
        assert time.perf_counter() - t1 < 0.03


def test_the_budget_is_the_loading_threads_own():
    seen = {}

    def other():
        t = time.perf_counter()
        _work(0.01)
        pause()  # not inside this thread's budget
        seen["s"] = time.perf_counter() - t

    with paced(0.1):
        t = threading.Thread(target=other)
        t.start()
        t.join()
    assert seen["s"] < 0.05


@pytest.mark.parametrize("share", [0.0, -0.5, 1.5])
def test_a_share_outside_0_to_1_is_refused(share):
    with pytest.raises(ValueError, match="share"):
        with paced(share):
            pass


def test_alone_a_pause_hands_nothing_over():
    """A process of its own (the model image's preparation) has no request thread to
    wait for: 100 pauses take no window of 1 ms each."""
    t0 = time.perf_counter()
    with alone():
        for _ in range(100):
            pause()
    assert time.perf_counter() - t0 < 0.05
