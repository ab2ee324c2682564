"""Running a study: create/resume it, loop trials in one or several workers, keep the files.

`run_search` is what `lightmark search` calls; `run_fixed_candidates` (fixed.py) is the same
machinery for a list of fixed (label, spec, protocol) candidates (the ablation suites). Both are
resumable: `n_trials` is the study's total target of finished trials (complete, pruned, infeasible,
failed by an error), so re-running the same command tops the study up; trials orphaned by a dead
worker are failed and their architecture queued again; nothing finished is trained twice (the
runner's cache).

The pieces live in their own modules: config.py (SearchConfig, Hooks), samplers.py (the sampler
and pruner registries), prepare.py (opening a study), loop.py (the worker loop), limits.py (the
--timeout limit), locking.py, memory.py (out-of-memory trials), progress.py (what counts),
workers.py (N processes), fixed.py (fixed candidates); import each name from the module that owns it.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from lightmark.benchmarks.record import Record
from lightmark.benchmarks.runner import candidate_dir_of
from lightmark.errors import ResumableError
from lightmark.models.spec import ModelSpec
from lightmark.search.config import Hooks, SearchConfig
from lightmark.search.loop import worker_loop, write_run_files
from lightmark.search.prepare import prepare
from lightmark.search.progress import failed_by_error
from lightmark.search.storage_retry import redact_url
from lightmark.search.workers import WorkerExit, run_workers
from lightmark.training.trainer import BEST_NAME


@dataclass
class SearchResult:
    config: SearchConfig
    summary: dict[str, Any]
    recovered: list[int] = field(default_factory=list)
    enqueued: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    failed_trials: list[int] = field(default_factory=list)  # failed by an error of their own in this run
    dead_workers: list[WorkerExit] = field(default_factory=list)  # worker processes that stopped early

    @property
    def exit_code(self) -> int:
        """The command's exit status: 0 when the run finished and each of its trials ended complete,
        pruned, over budget or stopped at the time limit; 1 when it finished but a worker process died or a
        trial failed with an error of its own (their numbers are in the notes). 2 (a user error), 3 (the
        storage unreachable past the retry bound, or a full disk) and 130 (interrupted) are exceptions
        the CLI turns into its exit status."""
        return 1 if self.failed_trials or self.dead_workers else 0

    def best_checkpoint(self) -> str | None:
        """Absolute path of the best feasible candidate's best.pt (the file to export or retrain from),
        or None when there is none yet or it is not on this machine (trained by another one)."""
        best = self.summary.get("best")
        if not best or not best.get("key"):
            return None
        path = candidate_dir_of(self.config.cache, best["key"]) / BEST_NAME
        return str(path.resolve()) if path.is_file() else None

    def to_json(self) -> dict[str, Any]:
        best = self.summary.get("best")
        return {
            "study": self.config.study_name,
            "storage": redact_url(self.config.storage.url),
            "exit_code": self.exit_code,
            "failed_trials": self.failed_trials,
            "dead_workers": [w.describe() for w in self.dead_workers],
            "run_dir": str(self.config.run_dir),
            "protocol": self.config.protocol.name,
            "objectives": list(self.config.objectives),
            "budget": self.config.budget.to_dict() if self.config.budget else None,
            "best_spec": best["spec"] if best else None,
            "best_checkpoint": self.best_checkpoint(),
            "best": best,
            "pareto": self.summary.get("pareto", []),
            "counts": self.summary.get("counts", {}),
            "trials": self.summary.get("trials", 0),
            "trained": self.summary.get("trained", 0),
            "reused": self.summary.get("reused", 0),
            "repeats": self.summary.get("repeats", 0),
            "skipped_over_budget": self.summary.get("skipped_over_budget", 0),
            "budget_check_ms": self.summary.get("budget_check_ms"),
            "recovered_trials": self.recovered,
            "enqueued": self.enqueued,
            "notes": self.notes,
            "records_csv": str(self.config.records_csv),
            "pareto_json": str(self.config.pareto_json),
            "storage_path": str(self.config.storage.path) if self.config.storage.path else None,
        }


def run_search(
    config: SearchConfig,
    *,
    workers: int = 1,
    runner: Callable[..., Record] | None = None,
    hooks: Hooks | None = None,
    enqueue: Sequence[tuple[str, ModelSpec]] = (),
    view: Any = None,
) -> SearchResult:
    """Run (or resume) a study to its target with `workers` processes; returns the summary."""
    started = datetime.now()
    study, recovered, queued = prepare(config, enqueue=enqueue)
    notes = [config.storage.note] if config.storage.note else []
    if recovered:
        notes.append(f"re-queued trial(s) {recovered} left running by a dead worker")
    exits: list[WorkerExit] = []
    if workers <= 1:
        worker_loop(config, runner=runner, hooks=hooks, study=study)
    else:
        exits = run_workers(config, workers, view=view)
        stopped = [e.describe() for e in exits if e.code == ResumableError.exit_code]
        if stopped:  # their error (storage unreachable, disk full) is above; the study is not waited for again
            raise ResumableError(f"{', '.join(stopped)} stopped (the error above); what finished is kept, "
                                 "and the same command resumes")
    summary = write_run_files(study, config)
    pids = {e.pid for e in exits} if exits else {os.getpid()}
    failed = failed_by_error(study.get_trials(deepcopy=False), pids, socket.gethostname(), started)
    dead = [e for e in exits if e.died]
    if failed:
        notes.append(f"exit status 1: trial(s) {failed} failed with an error of their own (see the reason "
                     f"column of {config.records_csv})")
    if dead:
        notes.append(f"exit status 1: {', '.join(e.describe() for e in dead)} stopped early; re-run the "
                     "command to recover their trials")
    return SearchResult(config, summary, recovered, queued, notes, failed_trials=failed, dead_workers=dead)

