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

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from lightmark.benchmarks.record import Record
from lightmark.benchmarks.runner import candidate_dir_of
from lightmark.models.spec import ModelSpec
from lightmark.search.config import Hooks, SearchConfig
from lightmark.search.loop import worker_loop, write_run_files
from lightmark.search.prepare import prepare
from lightmark.search.workers import run_workers
from lightmark.training.trainer import BEST_NAME


@dataclass
class SearchResult:
    config: SearchConfig
    summary: dict[str, Any]
    recovered: list[int] = field(default_factory=list)
    enqueued: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

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
            "storage": self.config.storage.url,
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
    study, recovered, queued = prepare(config, enqueue=enqueue)
    notes = [config.storage.note] if config.storage.note else []
    if recovered:
        notes.append(f"re-queued trial(s) {recovered} left running by a dead worker")
    if workers <= 1:
        worker_loop(config, runner=runner, hooks=hooks, study=study)
    else:
        run_workers(config, workers, view=view)
    summary = write_run_files(study, config)
    return SearchResult(config, summary, recovered, queued, notes)

