"""Which CPU a worker process runs on (`pin_workers`).

Its own module so that bench/serve_bare.py can pin its workers the same way without
importing the service (a heap of ~75k more objects would slow its garbage collector).
"""
from __future__ import annotations

import os


def pin_to_cpu(worker: int) -> set[int]:
    """Run this process (and the threads it starts from now on) on one CPU, the
    worker-th of those it may use, round robin; returns those it may use."""
    cpus = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {sorted(cpus)[worker % len(cpus)]})
    return cpus
