"""Runtime: where its background work (reloads, replica refresh) runs."""
from __future__ import annotations

import os
import time

import pytest

from recsvc.config import Config
from recsvc.runtime import Runtime
from tests.recsvc.bundles import write_apparel


def test_a_pinned_workers_loads_run_on_the_cpus_it_was_given(tmp_path):
    """A worker pinned to one CPU (`pin_workers`) hands its background thread the CPUs
    the worker could use before, so a load's GIL-free parts need not take its core."""
    mine = sorted(os.sched_getaffinity(0))
    if len(mine) < 2:
        pytest.skip("needs 2 CPUs to tell a pinned thread from the others")
    write_apparel(tmp_path / "model")
    rt = Runtime(Config(model_dir=str(tmp_path / "model"), state_url=f"sqlite:///{tmp_path}/s.db"),
                 loader_cpus={mine[-1]})
    rt.start()
    try:
        assert rt.live() is not None
        deadline = time.monotonic() + 5  # the thread applies it as it starts
        while os.sched_getaffinity(rt._thread.native_id) != {mine[-1]} and time.monotonic() < deadline:
            time.sleep(0.01)
        assert os.sched_getaffinity(rt._thread.native_id) == {mine[-1]}
        assert os.sched_getaffinity(0) == set(mine)  # the caller's own thread is left as it was
    finally:
        rt.close()
