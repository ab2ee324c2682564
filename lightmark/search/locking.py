"""One host's workers take turns at "is there work left? then ask" (a lock file in the run directory)."""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path

LOCK_FILE = ".search.lock"


@contextlib.contextmanager
def local_lock(run_dir: Path) -> Iterator[None]:
    """Serialise "is there work left? then ask" between the workers of this host, so the
    study never overshoots its target or hands one fixed candidate to two workers."""
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / LOCK_FILE, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
