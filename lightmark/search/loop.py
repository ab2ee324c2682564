"""The worker loop: ask a trial, run the objective under the time limit and the heartbeat, tell
the result, rewrite the run files; the same loop in one process or in each of N workers."""

from __future__ import annotations

import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from lightmark.benchmarks.record import Record, Status
from lightmark.errors import DiskFullError, LightmarkError, StorageUnavailableError
from lightmark.search.budget import load_callable
from lightmark.search.config import Hooks, SearchConfig
from lightmark.search.limits import HARD_LIMIT_FACTOR, TimeLimitReached, hard_limit
from lightmark.search.locking import local_lock
from lightmark.search.memory import is_out_of_memory, release_gpu_memory
from lightmark.search.objective import Objective, default_runner
from lightmark.search.optuna_compat import frozen_trial, heartbeat
from lightmark.search.prepare import fail_stale, open_study
from lightmark.search.progress import progress_counts
from lightmark.search.records import summarise_trials, write_pareto_json, write_records_csv
from lightmark.search.samplers import make_pareto_pruner
from lightmark.search.storage import process_identity, requeue
from lightmark.search.storage_retry import redact_url


def work_left(study: optuna.Study, config: SearchConfig, started: float) -> bool:
    if config.timeout is not None and time.monotonic() - started >= config.timeout:
        return False
    trials = study.get_trials(deepcopy=False)
    done, running, waiting = progress_counts(trials)
    if config.fixed:
        return waiting > 0
    if isinstance(study.sampler, optuna.samplers.GridSampler) and not waiting:
        if study.sampler.is_exhausted(study):
            return False
    return config.n_trials is None or done + running < config.n_trials


def write_run_files(study: optuna.Study, config: SearchConfig) -> dict[str, Any]:
    trials = study.get_trials(deepcopy=False)
    write_records_csv(config.records_csv, trials)
    summary = summarise_trials(trials, config.objectives)
    extra = {
        "study": config.study_name,
        "storage": redact_url(config.storage.url),
        "protocol": config.protocol.name,
        "objectives": list(config.objectives),
        "budget": config.budget.to_dict() if config.budget else None,
    }
    write_pareto_json(config.pareto_json, summary, extra)
    return summary


def worker_loop(
    config: SearchConfig,
    *,
    worker: int = 0,
    runner: Callable[..., Record] | None = None,
    hooks: Hooks | None = None,
    study: optuna.Study | None = None,
) -> int:
    """Run trials until the target, the timeout or the end of the queue; returns how many.

    A trial that raises is failed with its reason and the loop goes on; Ctrl-C fails the current
    trial with reason "interrupted", queues its architecture again and re-raises.
    """
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # This loop beats for its trials itself (optuna_compat.heartbeat), as Study.optimize would.
    warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used with Study.optimize")
    hooks = hooks or Hooks()
    study = study or open_study(config, worker, create=False)
    objective = Objective(
        protocol=config.protocol, cache_dir=config.cache, space=config.space,
        budget=None if config.fixed else config.budget, objectives=config.objectives,
        metric=config.metric, pruning=not config.fixed and config.pruner != "none",
        device=config.device, precision=config.precision, threads=config.threads,
        runner=runner or load_callable(config.runner, default_runner),
        on_epoch=hooks.epoch, pareto=make_pareto_pruner(config),
    )
    identity = {**process_identity(), "worker": worker}
    started = time.monotonic()
    hard_deadline = None if config.timeout is None else started + HARD_LIMIT_FACTOR * config.timeout
    ran = 0
    while True:
        with local_lock(Path(config.run_dir)):
            fail_stale(study)
            if not work_left(study, config, started):
                break
            trial = study.ask()
            for key, value in identity.items():
                trial.set_user_attr(key, value)
        if hooks.trial_started:
            hooks.trial_started(trial.number, trial.user_attrs.get("fixed_spec", ""))
        left = None if hard_deadline is None else hard_deadline - time.monotonic()
        try:
            with hard_limit(left), heartbeat(study, trial):
                values = objective(trial)
        except optuna.TrialPruned:
            _tell(study, trial, objective, state=TrialState.PRUNED)
        except TimeLimitReached:
            _interrupted(study, trial, config, "stopped at the time limit (--timeout); resumes on re-run")
            break
        except KeyboardInterrupt:
            _interrupted(study, trial, config, "interrupted")
            raise
        except StorageUnavailableError:
            # Past the retry bound. The trial stays RUNNING: its heartbeat goes stale (or the next run finds
            # its worker gone) and it is re-queued; a finished Record waits in the candidate cache.
            raise
        except DiskFullError as exc:  # not the candidate's fault: re-queued, resumes from its last checkpoint
            _interrupted(study, trial, config, f"stopped: {exc}"[:300])
            raise
        except optuna.exceptions.UpdateFinishedTrialError:
            _taken(study, trial, objective)
        except Exception as exc:  # noqa: BLE001 - any candidate error fails only that trial
            attrs = {} if "reason" in trial.user_attrs else {
                "status": Status.FAILED, "reason": f"{type(exc).__name__}: {exc}"[:300]}
            _tell(study, trial, objective, state=TrialState.FAIL, attrs=attrs)
            if is_out_of_memory(exc):
                release_gpu_memory()
            elif not isinstance(exc, LightmarkError):
                _warn(f"trial {trial.number} failed: {type(exc).__name__}: {exc}")
        else:
            _tell(study, trial, objective, values=values)
        ran += 1
        write_run_files(study, config)
        if hooks.trial_finished:
            hooks.trial_finished(frozen_trial(study, trial))
    return ran


def _tell(study: optuna.Study, trial: optuna.Trial, objective: Objective, *, values: Any = None,
          state: TrialState | None = None, attrs: dict[str, Any] | None = None) -> None:
    """Set `attrs` and tell the study; when another worker has failed the trial meanwhile (its heartbeat
    went stale while this one could not reach the storage), keep what this worker did instead (_taken)."""
    try:
        for key, value in (attrs or {}).items():
            trial.set_user_attr(key, value)
        study.tell(trial, values, state=state)
    except (optuna.exceptions.UpdateFinishedTrialError, ValueError):  # tell: "Cannot tell a FAIL trial"
        if frozen_trial(study, trial).state == TrialState.RUNNING:
            raise
        _taken(study, trial, objective)


def _taken(study: optuna.Study, trial: optuna.Trial, objective: Objective) -> None:
    _warn(f"trial {trial.number} had been failed and re-queued by another worker (its heartbeat went stale): "
          f"{objective.salvage(study, trial)}")


def _interrupted(study: optuna.Study, trial: optuna.Trial, config: SearchConfig, reason: str) -> None:
    """Record a stopped trial (FAIL, not counted) and queue its architecture again: the
    runner's checkpoint lets the retry resume where this one stopped."""
    try:
        trial.set_user_attr("status", Status.FAILED)
        trial.set_user_attr("reason", reason)
        trial.set_user_attr("requeued", True)
        frozen = frozen_trial(study, trial)
        study.tell(trial, state=TrialState.FAIL)
    except (optuna.exceptions.UpdateFinishedTrialError, ValueError):
        if frozen_trial(study, trial).state == TrialState.RUNNING:
            raise
        return  # another worker failed it (heartbeat stale) and re-queued it already
    requeue(study, frozen, reason)
    write_run_files(study, config)


def _warn(message: str) -> None:
    print(f"lightmark search: {message}", file=sys.stderr)
