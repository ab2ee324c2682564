"""Running a study: create/resume it, loop trials in one or several workers, keep the files.

`run_search` is what `lightmark search` calls; `run_fixed_candidates` is the same machinery for a
list of fixed (label, spec, protocol) candidates (the ablation suites). Both are resumable:
`n_trials` is the study's total target of finished trials (complete, pruned, infeasible, failed
by an error), so re-running the same command tops the study up; trials orphaned by a dead worker
are failed and their architecture queued again; nothing finished is trained twice (the runner's
cache).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import signal
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import optuna
from optuna.storages._heartbeat import get_heartbeat_thread, is_heartbeat_enabled
from optuna.trial import TrialState

from lightmark.benchmarks.record import Record, candidate_key
from lightmark.errors import ConfigError, LightmarkError
from lightmark.landmarks.protocol import Protocol
from lightmark.models.spec import ModelSpec
from lightmark.search.budget import Budget, load_callable
from lightmark.search.objective import Objective, default_runner
from lightmark.search.pareto_pruner import ParetoPruner
from lightmark.search.records import (
    summarise_trials,
    trial_record,
    write_pareto_json,
    write_records_csv,
)
from lightmark.search.space import SearchSpace
from lightmark.search.storage import (
    StorageChoice,
    choose_storage,
    open_storage,
    process_identity,
    recover_orphans,
    requeue,
)

SAMPLERS = ("tpe", "nsga2", "random", "grid")
PRUNERS = ("median", "hyperband", "pareto", "none")  # pareto: two-objective studies (pareto_pruner.py)
RECORDS_CSV = "records.csv"
PARETO_JSON = "pareto.json"
LOCK_FILE = ".search.lock"
# --timeout S: no trial starts after S seconds, and one still running at 1.2 x S is stopped
# (recorded, re-queued; its checkpoint resumes it on the next run), so a command ends by then.
HARD_LIMIT_FACTOR = 1.2


@dataclass(frozen=True)
class SearchConfig:
    """Everything a worker process needs (picklable: workers are spawned)."""

    protocol: Protocol
    run_dir: Path
    storage: StorageChoice
    study_name: str
    space: SearchSpace | None = None  # None: fixed candidates
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


# -- study construction -----------------------------------------------------------------------
def default_startup_trials(n_trials: int | None) -> int:
    """TPE's random start-up trials. Optuna's 10 are most of a 10-40 trial study; replayed on the
    tabular benchmark (docs/search.md, 100 seeds) 3-5 of 40 beat 10 of 40 at 10 trials and matched it
    at 20 and 40, so: n_trials // 8, at least 3, at most 10."""
    return 10 if not n_trials else max(3, min(10, n_trials // 8))


def make_sampler(config: SearchConfig, worker: int = 0) -> optuna.samplers.BaseSampler:
    seed = config.seed + 1000 * worker  # workers must not propose the same sequence
    if config.fixed:
        return optuna.samplers.RandomSampler(seed=seed)
    if config.sampler == "tpe":
        startup = config.startup_trials
        if startup is None:
            startup = default_startup_trials(config.n_trials)
        return optuna.samplers.TPESampler(
            seed=seed, n_startup_trials=startup, multivariate=True, constant_liar=True
        )
    if config.sampler == "nsga2":
        size = max(4, min(50, (config.n_trials or 40) // 4))
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=size)
    if config.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if config.sampler == "grid":
        assert config.space is not None
        return _QuietGridSampler(config.space.grid(), seed=seed)
    raise ConfigError(f"--sampler {config.sampler!r}: choose one of {', '.join(SAMPLERS)}")


class _QuietGridSampler(optuna.samplers.GridSampler):
    """GridSampler calls study.stop(), which only works inside study.optimize; the worker loop
    asks `is_exhausted` itself instead."""

    def after_trial(self, study, trial, state, values) -> None:  # noqa: D102
        return None


def make_pareto_pruner(config: SearchConfig) -> ParetoPruner | None:
    """Two-objective studies prune with the dominated-curve rule whenever pruning is asked for
    (Optuna's own pruners cannot see them); single-objective ones never use it."""
    if config.fixed or len(config.objectives) < 2 or config.pruner == "none":
        return None
    return ParetoPruner.for_epochs(config.protocol.epochs)


def make_pruner(config: SearchConfig) -> optuna.pruners.BasePruner:
    if config.pruner == "pareto" and len(config.objectives) < 2 and not config.fixed:
        raise ConfigError("--pruner pareto prunes two-objective searches (--objectives nme,size); "
                          "use median or hyperband for one objective")
    if config.fixed or len(config.objectives) > 1 or config.pruner == "none":
        return optuna.pruners.NopPruner()  # Optuna prunes single-objective studies only
    epochs = config.protocol.epochs
    if config.pruner == "median":
        # Epochs are reported from 1; judge no trial on its first epoch alone.
        return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=max(2, epochs // 3))
    if config.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max(epochs, 1),
                                              reduction_factor=3)
    raise ConfigError(f"--pruner {config.pruner!r}: choose one of {', '.join(PRUNERS)}")


def open_study(config: SearchConfig, worker: int = 0, *, create: bool = True) -> optuna.Study:
    storage = open_storage(config.storage)
    directions = ["minimize"] * len(config.objectives)
    kwargs = dict(study_name=config.study_name, storage=storage,
                  sampler=make_sampler(config, worker), pruner=make_pruner(config))
    if create:
        study = optuna.create_study(directions=directions, load_if_exists=True, **kwargs)
    else:
        study = optuna.load_study(**kwargs)
    if len(study.directions) != len(directions):
        raise ConfigError(
            f"study {config.study_name!r} has {len(study.directions)} objective(s), "
            f"--objectives asks for {len(directions)}: use another --study or --out"
        )
    return study


def check_study_protocol(study: optuna.Study, config: SearchConfig) -> None:
    """A study's Records are only comparable under one protocol: refuse to mix."""
    if config.fixed:
        return
    text = config.protocol.canonical_json()
    stored = study.user_attrs.get("protocol")
    if stored is None:
        study.set_user_attr("protocol", text)
        study.set_user_attr("protocol_name", config.protocol.name)
        study.set_user_attr("objectives", ",".join(config.objectives))
    elif stored != text:
        raise ConfigError(
            f"study {config.study_name!r} in {config.storage.url} was started under a different "
            f"protocol ({study.user_attrs.get('protocol_name', '?')}); use another --study or --out"
        )
    if config.space is not None:
        study.set_user_attr("space", json.dumps(config.space.to_dict()))
    if config.budget is not None:
        study.set_user_attr("budget", json.dumps(config.budget.to_dict()))


# -- counting ---------------------------------------------------------------------------------
def counted(trial: optuna.trial.FrozenTrial) -> bool:
    """A finished trial that counts towards the target: complete (infeasible included),
    pruned, or failed by an error of its own (not one re-queued after a crash or Ctrl-C)."""
    if trial.state in (TrialState.COMPLETE, TrialState.PRUNED):
        return True
    # A trial whose worker died (no status: it never got to record one) or that was re-queued
    # after a crash or Ctrl-C is retried, so it does not count itself.
    return (trial.state == TrialState.FAIL and trial.user_attrs.get("status") == "failed"
            and not trial.user_attrs.get("requeued"))


def progress_counts(trials: Sequence[optuna.trial.FrozenTrial]) -> tuple[int, int, int]:
    """(counted finished, running, waiting)."""
    done = sum(counted(t) for t in trials)
    running = sum(t.state == TrialState.RUNNING for t in trials)
    waiting = sum(t.state == TrialState.WAITING for t in trials)
    return done, running, waiting


# -- the worker loop --------------------------------------------------------------------------
@contextlib.contextmanager
def _local_lock(run_dir: Path) -> Iterator[None]:
    """Serialise "is there work left? then ask" between the workers of this host, so the
    study never overshoots its target or hands one fixed candidate to two workers."""
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / LOCK_FILE, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _work_left(study: optuna.Study, config: SearchConfig, started: float) -> bool:
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
        "storage": config.storage.url,
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
        with _local_lock(Path(config.run_dir)):
            _fail_stale(study)
            if not _work_left(study, config, started):
                break
            trial = study.ask()
            for key, value in identity.items():
                trial.set_user_attr(key, value)
        if hooks.trial_started:
            hooks.trial_started(trial.number, trial.user_attrs.get("fixed_spec", ""))
        left = None if hard_deadline is None else hard_deadline - time.monotonic()
        try:
            with _hard_limit(left), get_heartbeat_thread(trial._trial_id, study._storage):
                values = objective(trial)
        except optuna.TrialPruned:
            study.tell(trial, state=TrialState.PRUNED)
        except TimeLimitReached:
            _interrupted(study, trial, config, "stopped at the time limit (--timeout); resumes on re-run")
            break
        except KeyboardInterrupt:
            _interrupted(study, trial, config, "interrupted")
            raise
        except Exception as exc:  # noqa: BLE001 - any candidate error fails only that trial
            if "reason" not in trial.user_attrs:
                trial.set_user_attr("status", "failed")
                trial.set_user_attr("reason", f"{type(exc).__name__}: {exc}"[:300])
            study.tell(trial, state=TrialState.FAIL)
            if _is_oom(exc):
                _release_gpu_memory()
            elif not isinstance(exc, LightmarkError):
                _warn(f"trial {trial.number} failed: {type(exc).__name__}: {exc}")
        else:
            study.tell(trial, values)
        ran += 1
        write_run_files(study, config)
        if hooks.trial_finished:
            hooks.trial_finished(_frozen(study, trial))
    return ran


class TimeLimitReached(BaseException):
    """Raised (SIGALRM) in a worker's main thread when a trial outlives the time limit; a
    BaseException so that no `except Exception` in a runner or trainer swallows it."""


@contextlib.contextmanager
def _hard_limit(seconds: float | None) -> Iterator[None]:
    """Interrupt the trial after `seconds` (main thread with SIGALRM only; else no limit)."""
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


def _interrupted(study: optuna.Study, trial: optuna.Trial, config: SearchConfig, reason: str) -> None:
    """Record a stopped trial (FAIL, not counted) and queue its architecture again: the
    runner's checkpoint lets the retry resume where this one stopped."""
    trial.set_user_attr("status", "failed")
    trial.set_user_attr("reason", reason)
    trial.set_user_attr("requeued", True)
    frozen = _frozen(study, trial)
    study.tell(trial, state=TrialState.FAIL)
    requeue(study, frozen, reason)
    write_run_files(study, config)


def _fail_stale(study: optuna.Study) -> None:
    """RDB storages with heartbeats: fail trials whose worker stopped beating; Optuna's
    RetryHeartbeatStaleTrialCallback (set in storage.py) queues them again."""
    if is_heartbeat_enabled(study._storage):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            optuna.storages.fail_stale_trials(study)


def _frozen(study: optuna.Study, trial: optuna.Trial) -> optuna.trial.FrozenTrial:
    return study._storage.get_trial(trial._trial_id)


def _is_oom(exc: BaseException) -> bool:
    return "out of memory" in str(exc).lower()


def _release_gpu_memory() -> None:
    """After an out-of-memory trial, give the cached blocks back before the next candidate."""
    import gc

    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except Exception:  # noqa: BLE001 - best effort
        pass


def _warn(message: str) -> None:
    import sys

    print(f"lightmark search: {message}", file=sys.stderr)


# -- coordinator ------------------------------------------------------------------------------
@dataclass
class SearchResult:
    config: SearchConfig
    summary: dict[str, Any]
    recovered: list[int] = field(default_factory=list)
    enqueued: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

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


def prepare(config: SearchConfig, *, enqueue: Sequence[tuple[str, ModelSpec]] = ()) -> tuple[
    optuna.Study, list[int], list[str]
]:
    """Create/resume the study, recover orphans, enqueue first trials (once per study)."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    Path(config.run_dir).mkdir(parents=True, exist_ok=True)
    study = open_study(config)
    check_study_protocol(study, config)
    space = config.space

    def size_attrs(trial: optuna.trial.FrozenTrial) -> dict[str, Any]:
        spec = _spec_of_trial(trial, space)
        if spec is None or config.budget is None:
            return {}
        return {"spec": str(spec), "size_mb": round(config.budget.size_of(spec), 6)}

    with _local_lock(Path(config.run_dir)):
        _fail_stale(study)
        recovered = recover_orphans(study, params_of=size_attrs)
        queued = []
        seen = {t.user_attrs.get("label") for t in study.get_trials(deepcopy=False)}
        for label, spec in enqueue:
            if label in seen:
                continue
            assert space is not None
            study.enqueue_trial(space.params_of(spec), user_attrs={"label": label})
            queued.append(label)
    return study, recovered, queued


def _spec_of_trial(trial: optuna.trial.FrozenTrial, space: SearchSpace | None) -> ModelSpec | None:
    if trial.user_attrs.get("fixed_spec"):
        return ModelSpec.parse(trial.user_attrs["fixed_spec"])
    if trial.user_attrs.get("spec"):
        return ModelSpec.parse(trial.user_attrs["spec"])
    if space is None:
        return None
    values = {dim: getattr(space, dim)[0] for dim in ("n_stacks", "depth", "channels", "attention", "coordconv")}
    values.update({k: v for k, v in trial.params.items() if k in values})
    try:
        return ModelSpec(**values, n_landmarks=space.n_landmarks)
    except LightmarkError:
        return None


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
        from lightmark.search.workers import run_workers

        run_workers(config, workers, view=view)
    summary = write_run_files(study, config)
    return SearchResult(config, summary, recovered, queued, notes)


# -- fixed candidates (ablation suites) -------------------------------------------------------
def run_fixed_candidates(
    candidates: Sequence[tuple[str, ModelSpec, Protocol]],
    *,
    run_dir: Path | str,
    study_name: str,
    storage: str | None = None,
    workers: int = 1,
    device: str = "auto",
    precision: str = "auto",
    threads: int | None = None,
    progress: bool = True,
    runner: Callable[..., Record] | str | None = None,
) -> list[Record]:
    """Train + evaluate fixed (label, spec, protocol) candidates as trials of one study.

    Every candidate not yet finished in the study is enqueued as a fixed trial (user attrs
    label + key); workers, storage, resume and the runner's cache work as in a search (no budget,
    no pruning). Returns the Records in input order; a failed candidate has status "failed" and
    its error.
    """
    if not candidates:
        return []
    run_dir = Path(run_dir)
    labels = [c[0] for c in candidates]
    if len(set(labels)) != len(labels):
        raise ConfigError("run_fixed_candidates: candidate labels must be unique")
    config = SearchConfig(
        protocol=candidates[0][2], run_dir=run_dir,
        storage=choose_storage(storage, run_dir, workers), study_name=study_name,
        fixed=True, device=device, precision=precision, threads=threads or None,
        runner=runner if isinstance(runner, str) else None,
    )
    study, _recovered, _ = prepare(config)
    with _local_lock(run_dir):
        trials = study.get_trials(deepcopy=False)
        finished = {t.user_attrs.get("key") for t in trials if t.state == TrialState.COMPLETE}
        pending = {t.user_attrs.get("key") for t in trials
                   if t.state in (TrialState.WAITING, TrialState.RUNNING)}
        for label, spec, protocol in candidates:
            key = candidate_key(spec, protocol)
            if key in finished or key in pending:
                continue
            study.enqueue_trial({}, user_attrs={
                "label": label, "key": key, "fixed_spec": str(spec),
                "fixed_protocol": protocol.canonical_json(),
            })
    hooks = None
    view = None
    if progress:
        from lightmark.search.live import LiveView

        view = LiveView(config, title=f"{study_name}: {len(candidates)} candidates")
        hooks = view.hooks()
    with (view or contextlib.nullcontext()):
        if workers <= 1:
            worker_loop(config, runner=runner if callable(runner) else None, hooks=hooks, study=study)
        else:
            from lightmark.search.workers import run_workers

            run_workers(config, workers, view=view)
    write_run_files(study, config)
    return _records_in_order(study, candidates)


def _records_in_order(
    study: optuna.Study, candidates: Sequence[tuple[str, ModelSpec, Protocol]]
) -> list[Record]:
    by_key: dict[str, optuna.trial.FrozenTrial] = {}
    for trial in sorted(study.get_trials(deepcopy=False), key=lambda t: t.number):
        key = trial.user_attrs.get("key")
        if key is None or trial.state in (TrialState.WAITING, TrialState.RUNNING):
            continue
        current = by_key.get(key)
        if current is None or current.state != TrialState.COMPLETE:
            by_key[key] = trial  # the latest attempt, unless one already completed
    records = []
    for label, spec, protocol in candidates:
        key = candidate_key(spec, protocol)
        trial = by_key.get(key)
        record = trial_record(trial) if trial is not None else None
        if record is None or (trial is not None and trial.state != TrialState.COMPLETE):
            base = record.to_dict() if record else {}
            error = (trial.user_attrs.get("error") or trial.user_attrs.get("reason", "")) if trial else "not run"
            record = Record.from_dict({
                **_empty_record(spec, protocol, key), **base,
                "status": "pruned" if trial is not None and trial.state == TrialState.PRUNED else "failed",
                "error": error,
            })
        records.append(record)
    return records


def _empty_record(spec: ModelSpec, protocol: Protocol, key: str) -> dict[str, Any]:
    return dict(
        key=key, spec=str(spec), n_stacks=spec.n_stacks, depth=spec.depth, channels=spec.channels,
        attention=spec.attention, coordconv=spec.coordconv, protocol=protocol.name,
        input_size=protocol.input_size, seed=protocol.seed, status="failed", params=0, size_mb=0.0,
    )


def default_study_name(protocol: Protocol) -> str:
    return f"lightmark-{protocol.name}"


def with_storage(config: SearchConfig, url: str | None, workers: int) -> SearchConfig:
    return replace(config, storage=choose_storage(url, Path(config.run_dir), workers))


__all__ = [
    "SearchConfig", "SearchResult", "Hooks", "run_search", "run_fixed_candidates", "worker_loop",
    "prepare", "write_run_files", "default_study_name", "SAMPLERS", "PRUNERS", "make_pareto_pruner",
]
