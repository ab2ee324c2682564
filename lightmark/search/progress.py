"""Which finished trials count towards a study's target, and how far it has got."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime

import optuna
from optuna.trial import TrialState

from lightmark.benchmarks.record import Status


def counted(trial: optuna.trial.FrozenTrial) -> bool:
    """A finished trial that counts towards the target: complete (infeasible included),
    pruned, or failed by an error of its own (not one re-queued after a crash or Ctrl-C)."""
    if trial.state in (TrialState.COMPLETE, TrialState.PRUNED):
        return True
    # A trial whose worker died (no status: it never got to record one) or that was re-queued
    # after a crash or Ctrl-C is retried, so it does not count itself.
    return (trial.state == TrialState.FAIL and trial.user_attrs.get("status") == Status.FAILED
            and not trial.user_attrs.get("requeued"))


def progress_counts(trials: Sequence[optuna.trial.FrozenTrial]) -> tuple[int, int, int]:
    """(counted finished, running, waiting)."""
    done = sum(counted(t) for t in trials)
    running = sum(t.state == TrialState.RUNNING for t in trials)
    waiting = sum(t.state == TrialState.WAITING for t in trials)
    return done, running, waiting


def failed_by_error(trials: Sequence[optuna.trial.FrozenTrial], pids: Collection[int], host: str,
                    since: datetime) -> list[int]:
    """Numbers of the trials that this run's processes (`pids` on `host`, asked at or after `since`)
    failed with an error of their own: counted failures, not trials re-queued after a crash, Ctrl-C, the
    time limit or a full disk, nor trials another worker failed because their heartbeat went stale."""
    return [t.number for t in trials
            if t.state == TrialState.FAIL and counted(t) and t.user_attrs.get("host") == host
            and t.user_attrs.get("pid") in pids and t.datetime_start is not None and t.datetime_start >= since]
