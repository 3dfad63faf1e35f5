"""Training faults: a killed run or a full disk never leaves a partial bundle or moves `current`."""
from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from training import bundle as b
from training.cli import main
from tests.training.shops import write_config, write_inputs

REPO = Path(__file__).resolve().parents[2]
ENV = dict(os.environ, OPENBLAS_NUM_THREADS="1", PYTHONWARNINGS="ignore")
# Runs the real CLI, but SIGKILLs itself right after the bundle's third array is on disk.
KILL_DURING_WRITE = """
import os, signal, sys
import numpy as np
from training import cli
real_save, saved = np.save, []
def save_then_die(*args, **kwargs):
    real_save(*args, **kwargs)
    saved.append(args[0])
    if len(saved) == 3:
        os.kill(os.getpid(), signal.SIGKILL)
np.save = save_then_die
sys.exit(cli.main(sys.argv[1:]))
"""


@pytest.fixture
def live(tmp_path) -> tuple[Path, Path]:
    """(config, model dir) with one good bundle current."""
    orders, catalog = write_inputs(tmp_path / "shop")
    cfg = write_config(tmp_path / "retrain.toml", orders, catalog, tmp_path / "models")
    assert main(["run", "--config", str(cfg)]) == 0
    return cfg, tmp_path / "models"


def assert_untouched(models: Path, versions: list[str], current: str) -> None:
    assert b.list_versions(models) == versions  # nothing half-written is listed
    assert b.current_version(models) == current
    assert b.load_bundle(models).version == current  # and it still loads, checksums verified


def test_a_run_killed_while_training_leaves_nothing_and_the_next_run_succeeds(live):
    cfg, models = live
    versions, current = b.list_versions(models), b.current_version(models)
    proc = subprocess.Popen([sys.executable, "-m", "training.cli", "run", "--config", str(cfg)], cwd=REPO,
                            env=ENV, stderr=subprocess.PIPE, text=True)
    for line in proc.stderr:
        if "stage fit (train split)" in line:  # models fitted, evaluation and refit to come
            proc.send_signal(signal.SIGKILL)
            break
    assert proc.wait(timeout=60) == -signal.SIGKILL
    assert_untouched(models, versions, current)
    assert main(["run", "--config", str(cfg)]) == 0  # the dead run's lock died with it
    assert b.current_version(models) not in versions


def test_a_run_killed_while_writing_the_bundle_leaves_only_a_hidden_leftover(live):
    cfg, models = live
    versions, current = b.list_versions(models), b.current_version(models)
    proc = subprocess.run([sys.executable, "-c", KILL_DURING_WRITE, "run", "--config", str(cfg)], cwd=REPO,
                          env=ENV, capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL
    assert_untouched(models, versions, current)
    leftovers = list((models / "versions").glob(".tmp-*"))
    assert len(leftovers) == 1 and len(list(leftovers[0].glob("*.npy"))) == 3

    long_ago = time.time() - 86400  # a later run clears it once no live writer can own it
    os.utime(leftovers[0], (long_ago, long_ago))
    assert main(["run", "--config", str(cfg)]) == 0
    assert not leftovers[0].exists()
    assert b.current_version(models) not in versions


def _limit_file_size() -> None:
    # Writes past 8 KiB fail with EFBIG, as on a full disk (Python ignores SIGXFSZ). The
    # demo bundle's larger arrays are 11-16 KiB; the lock file and logs stay far below.
    resource.setrlimit(resource.RLIMIT_FSIZE, (8 * 1024, 8 * 1024))


def test_a_write_that_fails_for_space_exits_4_and_publishes_nothing(live):
    cfg, models = live
    versions, current = b.list_versions(models), b.current_version(models)
    proc = subprocess.run([sys.executable, "-m", "training.cli", "run", "--config", str(cfg)], cwd=REPO, env=ENV,
                          capture_output=True, text=True, timeout=120, preexec_fn=_limit_file_size)
    assert proc.returncode == 4, proc.stderr
    assert "could not write the bundle" in proc.stderr and "disk" in proc.stderr
    assert "nothing was published" in proc.stderr
    assert f"current is still {current}" in proc.stderr
    assert_untouched(models, versions, current)
    assert list((models / "versions").glob(".tmp-*")) == []  # the half-written bundle was removed


@pytest.fixture
def tiny_disk(tmp_path):
    """A 256 KiB tmpfs: room for one demo bundle, not two. Needs root (CAP_SYS_ADMIN)."""
    mnt = tmp_path / "models"
    mnt.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mnt)], capture_output=True)
    if done.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root); the RLIMIT_FSIZE test covers the same path")
    yield mnt
    subprocess.run(["umount", str(mnt)], check=True)


def test_a_full_disk_exits_4_keeps_current_and_frees_the_space(tmp_path, tiny_disk, capsys):
    orders, catalog = write_inputs(tmp_path / "shop")
    cfg = write_config(tmp_path / "retrain.toml", orders, catalog, tiny_disk)
    assert main(["run", "--config", str(cfg)]) == 0
    versions, current = b.list_versions(tiny_disk), b.current_version(tiny_disk)
    free_before = os.statvfs(tiny_disk).f_bfree
    assert main(["run", "--config", str(cfg)]) == 4
    assert "No space left on device (disk full or file size limit reached)" in capsys.readouterr().err
    assert_untouched(tiny_disk, versions, current)
    assert os.statvfs(tiny_disk).f_bfree == free_before
