"""What a search (or a run of fixed candidates) is: the picklable config every worker gets, and
the hooks the live view listens on."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import optuna

from lightmark.search.budget import Budget
from lightmark.search.family_space import AnySpace
from lightmark.search.storage import StorageChoice
from lightmark.training.protocol import Protocol

RECORDS_CSV = "records.csv"
PARETO_JSON = "pareto.json"


@dataclass(frozen=True)
class SearchConfig:
    """Everything a worker process needs (picklable: workers are spawned)."""

    protocol: Protocol
    run_dir: Path
    storage: StorageChoice
    study_name: str
    space: AnySpace | None = None  # None: fixed candidates
    budget: Budget | None = None
    objectives: tuple[str, ...] = ("nme",)
    sampler: str = "tpe"
    pruner: str = "median"
    seed: int = 0
    n_trials: int | None = None  # the study's total target; None: until timeout / Ctrl-C
    timeout: float | None = None  # seconds per invocation: no new trial starts after it
    device: str = "auto"
    precision: str = "auto"  # auto: autocast on CUDA, fp32 on the CPU; bf16 is faster on CPUs with bf16 units
    threads: int | None = None  # torch CPU threads per worker; None: see workers.threads_per_worker
    cache_dir: Path | None = None  # runner cache; default run_dir (shared across studies)
    runner: str | None = None  # "module:function"; None: benchmarks.runner.run_candidate
    fixed: bool = False
    metric: str = "nme_image_pct"
    startup_trials: int | None = None  # TPE random start-up; None: from n_trials

    @property
    def cache(self) -> Path:
        return Path(self.cache_dir or self.run_dir)

    @property
    def records_csv(self) -> Path:
        return Path(self.run_dir) / RECORDS_CSV

    @property
    def pareto_json(self) -> Path:
        return Path(self.run_dir) / PARETO_JSON


@dataclass
class Hooks:
    """What the live view wants to hear about (in-process worker only)."""

    trial_started: Callable[[int, str], None] | None = None
    epoch: Callable[[int, int, dict], None] | None = None
    trial_finished: Callable[[optuna.trial.FrozenTrial], None] | None = None


def default_study_name(protocol: Protocol) -> str:
    return f"lightmark-{protocol.name}"
