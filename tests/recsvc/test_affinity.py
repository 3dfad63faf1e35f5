"""recsvc.affinity: worker i on the i-th CPU it may use, round robin."""
from __future__ import annotations

import json
import os
import subprocess
import sys


def pinned_in_a_child(worker: int) -> tuple[list[int], list[int]]:
    """(the CPUs it could use, the CPUs it may use after pin_to_cpu(worker)), measured
    in a child process: pinning the test process would pin the rest of the suite."""
    code = ("import json, os; from recsvc.affinity import pin_to_cpu; "
            f"before = pin_to_cpu({worker}); print(json.dumps([sorted(before), sorted(os.sched_getaffinity(0))]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    before, after = json.loads(out)
    return before, after


def test_worker_i_runs_on_the_ith_cpu_round_robin():
    cpus = sorted(os.sched_getaffinity(0))
    for worker in range(len(cpus) + 1):  # one more than there are CPUs: wraps around
        before, after = pinned_in_a_child(worker)
        assert before == cpus and after == [cpus[worker % len(cpus)]]
