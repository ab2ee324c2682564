"""`--timeout S`: no trial starts after S seconds, and one still running at HARD_LIMIT_FACTOR x S
is stopped (recorded, re-queued; its checkpoint resumes it on the next run), so a command ends by then."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any

HARD_LIMIT_FACTOR = 1.2


class TimeLimitReached(BaseException):
    """Raised (SIGALRM) in a worker's main thread when a trial outlives the time limit; a
    BaseException so that no `except Exception` in a runner or trainer swallows it."""


@contextlib.contextmanager
def hard_limit(seconds: float | None) -> Iterator[None]:
    """Interrupt the block after `seconds` (main thread with SIGALRM only; else no limit)."""
    if (seconds is None or threading.current_thread() is not threading.main_thread()
            or not hasattr(signal, "setitimer")):
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise TimeLimitReached()

    previous = signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, max(seconds, 0.01))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
