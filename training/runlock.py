"""The retraining lock: one run per model directory at a time.

An exclusive, non-blocking flock on DIR/.retrain.lock. The kernel drops it when the
holder exits or is killed, so there is never a stale lock to clear by hand; the file
keeps the holder's pid, host and start time for the refusal message. (flock on NFS is
only as good as the NFS server's lock support; a shared model volume in Kubernetes
should rely on the CronJob's concurrencyPolicy: Forbid as well.)
"""
from __future__ import annotations

import errno
import fcntl
import os
import socket
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

LOCK_FILE = ".retrain.lock"


class Locked(Exception):
    """Another run holds the model directory's lock."""


@contextmanager
def run_lock(model_dir: str | Path) -> Iterator[Path]:
    """Hold DIR/.retrain.lock for the block; raises Locked (naming the holder) if taken."""
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    path = model_dir / LOCK_FILE
    with open(path, "a+") as f:  # a+: never truncate the holder's note before we own the lock
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            f.seek(0)
            holder = f.read().strip() or "holder unknown"
            raise Locked(f"another retraining run holds {path} ({holder}); not starting a second one") from None
        f.seek(0)
        f.truncate()
        f.write(f"pid {os.getpid()} on {socket.gethostname()} since {datetime.now(timezone.utc).isoformat()}\n")
        f.flush()
        yield path  # closing the file at the end of the block releases the lock
