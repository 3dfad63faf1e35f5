"""A stage in a child process: its result comes back, its errors too, and a lost child
costs time, never the job (the refit on all orders runs this way, see pipeline.py)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from training.background import Background
from training.config import TrainConfig
from training.pipeline import train
from tests.training.shops import write_inputs

REPO = Path(__file__).resolve().parents[2]


def square_sum(n: int) -> int:
    return int((np.arange(n) ** 2).sum())


def fail(message: str) -> None:
    raise ValueError(message)


def die_unless_in(pid: int) -> str:
    """Killed as a child; returns in process `pid` (where the stage runs again)."""
    if os.getpid() != pid:
        os.kill(os.getpid(), signal.SIGKILL)
    return "ran here"


def test_the_result_comes_back_from_the_child_with_its_peak_memory():
    done = Background(square_sum, 1000).result()
    assert done.value == square_sum(1000) and done.in_child and done.child_peak_rss_mb > 10


def test_an_error_in_the_stage_is_raised_in_the_parent():
    with pytest.raises(ValueError, match="bad input in the child"):
        Background(fail, "bad input in the child").result()


def test_a_child_that_dies_is_replaced_by_running_the_stage_here():
    done = Background(die_unless_in, os.getpid()).result()
    assert done.value == "ran here" and not done.in_child and "exit code -9" in done.why


def _bundle_arrays(path: Path) -> dict[str, np.ndarray]:
    return {p.stem: np.load(p, allow_pickle=False) for p in sorted(path.glob("*.npy"))}


def test_the_refit_in_a_child_publishes_the_same_models_as_the_refit_in_turn(tmp_path):
    orders, catalog = write_inputs(tmp_path / "shop")
    runs = {}
    for name, min_lines in (("beside", 0), ("in turn", 10**12)):
        cfg = TrainConfig()
        cfg.als.factors, cfg.als.iterations, cfg.als.num_threads = 8, 5, 1
        cfg.parallel_refit_min_lines = min_lines
        runs[name] = train(orders, catalog, tmp_path / name, cfg=cfg, progress=False)
    beside, in_turn = runs["beside"], runs["in turn"]
    assert beside.refit_peak_rss_mb > 0 and in_turn.refit_peak_rss_mb == 0  # the child ran only when asked
    a, b = _bundle_arrays(beside.bundle_path), _bundle_arrays(in_turn.bundle_path)
    assert a.keys() == b.keys() and len(a) > 10
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_when_no_child_can_start_the_refit_runs_in_turn(tmp_path, monkeypatch, caplog):
    import multiprocessing.context

    def refuse(self):
        raise OSError("Resource temporarily unavailable")

    monkeypatch.setattr(multiprocessing.context.SpawnProcess, "start", refuse)
    orders, catalog = write_inputs(tmp_path / "shop")
    cfg = TrainConfig()
    cfg.als.factors, cfg.als.iterations, cfg.als.num_threads = 8, 5, 1
    cfg.parallel_refit_min_lines = 0
    result = train(orders, catalog, tmp_path / "models", cfg=cfg, progress=False)
    assert result.refit_peak_rss_mb == 0 and "cannot start a child process" in caplog.text


def test_a_killed_parent_takes_its_child_with_it():
    """The job killed (by a scheduler's timeout, by hand): its stage's child must not
    compute on for minutes with nobody to take the result."""
    parent = subprocess.Popen(
        [sys.executable, "-c", "import time; from training.background import Background\n"
                               "b = Background(time.sleep, 60)\nprint(b._proc.pid, flush=True)\ntime.sleep(60)"],
        cwd=REPO, stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())
    time.sleep(0.5)  # the child is up, sleeping
    assert _alive(child)
    parent.send_signal(signal.SIGKILL)
    parent.wait(timeout=10)
    deadline = time.monotonic() + 5
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child)


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "State:\tZ" not in status  # a zombie is dead, waiting for init to reap it
