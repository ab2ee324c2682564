"""The Optuna objective: trial -> architecture -> budget check -> (cached) training -> values.

Over-budget candidates are answered from the spec alone (no training, no intermediate values,
a violated constraint, a Record with status "infeasible"). Feasible ones go through the
candidate runner, which caches finished Records by candidate key, so an architecture already
trained under the same protocol is never trained again (the trial says `reused`). In a
single-objective study the trainer's per-epoch callback reports the validation NME and raises
`optuna.TrialPruned` when the pruner says so.
"""

from __future__ import annotations

import json
import math
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import optuna

from lightmark.benchmarks.macs import count_macs
from lightmark.benchmarks.record import Record, Status, candidate_key
from lightmark.benchmarks.runner import RECORD_NAME, candidate_dir_of, run_candidate
from lightmark.benchmarks.size import size_mb
from lightmark.errors import ConfigError, LightmarkError, StorageUnavailableError
from lightmark.models.specs import AnySpec, parse_spec
from lightmark.search.budget import Budget
from lightmark.search.family_space import AnySpace
from lightmark.search.optuna_compat import frozen_trial, heartbeat_enabled, study_storage
from lightmark.search.pareto_pruner import ParetoPruner
from lightmark.search.prepare import fail_stale
from lightmark.search.records import OBJECTIVE_KEYS, RECORD_FIELDS, record_attrs
from lightmark.search.storage import process_alive
from lightmark.search.storage_retry import single_attempt
from lightmark.training.protocol import Protocol

OBJECTIVES = ("nme", "nme,size", "nme,macs", "nme,latency")
# What `metric` may name: the Record's validation NMEs (the trainer reports them every evaluation).
METRICS = tuple(name for name in RECORD_FIELDS if name.startswith("nme_") and name.endswith("_pct"))
Runner = Callable[..., Record]
EpochHook = Callable[[int, int, dict], None]  # (trial number, epoch, metrics)
TWIN_POLL_S = 2.0  # how often a trial waiting for its twin looks again


def parse_objectives(text: str) -> tuple[str, ...]:
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    if ",".join(names) not in OBJECTIVES:
        raise LightmarkError(f"--objectives {text!r}: choose one of {', '.join(OBJECTIVES)}")
    return names


def cached_record_path(cache_dir: Path, key: str) -> Path:
    """Where the runner keeps a finished candidate's Record (the runner's contract)."""
    return candidate_dir_of(cache_dir, key) / RECORD_NAME


def default_runner() -> Runner:
    return run_candidate


@dataclass
class Objective:
    """Callable objective; one per worker process. `runner` is injectable for tests."""

    protocol: Protocol
    cache_dir: Path
    space: AnySpace | None = None  # None: fixed candidates only (spec in the trial's attrs)
    budget: Budget | None = None
    objectives: tuple[str, ...] = ("nme",)
    metric: str = "nme_image_pct"
    pruning: bool = True
    device: str = "auto"
    precision: str = "auto"  # passed to the runner: auto | fp32 | bf16 | fp16
    threads: int | None = None  # torch CPU threads per candidate (None: torch's choice)
    runner: Runner | None = None
    on_epoch: EpochHook | None = None
    pareto: ParetoPruner | None = None  # two-objective pruning (Optuna's pruners are single-objective)
    _runner: Runner | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise ConfigError(f"metric {self.metric!r} is not a validation metric of a Record: "
                              f"choose one of {', '.join(METRICS)}")

    @property
    def multi(self) -> bool:
        return len(self.objectives) > 1

    def _get_runner(self) -> Runner:
        if self._runner is None:
            self._runner = self.runner or default_runner()
        return self._runner

    # -- the objective ----------------------------------------------------------------------
    def __call__(self, trial: optuna.Trial) -> float | tuple[float, ...]:
        spec, protocol = self._candidate(trial)
        key = candidate_key(spec, protocol)
        trial.set_user_attr("spec", str(spec))
        trial.set_user_attr("key", key)

        if self.budget is not None:
            check = self.budget.check(spec)
            trial.set_user_attr("size_mb", round(check.size_mb, 6))
            trial.set_user_attr("budget_check_ms", round(check.seconds * 1000, 3))
            with warnings.catch_warnings():  # a retried trial inherits its constraints: set again, same value
                warnings.filterwarnings("ignore", message="The constraint value is ignored")
                for name, value in check.constraints.items():
                    trial.set_constraint(name, value)
            if not check.feasible:
                return self._infeasible(trial, spec, protocol, key, check)
        else:
            self._set_size_early(trial, spec)

        reused = cached_record_path(self.cache_dir, key).exists()
        if not reused:
            _wait_for_twins(trial, key)
            # Another machine (own cache) may have trained it for this study already.
            earlier = _completed_in_study(trial, key)
            pruned = _finished_in_study(trial, key, optuna.trial.TrialState.PRUNED)
            if earlier is None and pruned is not None and self.pruning:
                raise optuna.TrialPruned(f"{spec} was pruned in trial {pruned.number} of this study")
            if earlier is not None:
                for k, v in earlier.user_attrs.items():
                    if k in RECORD_FIELDS:
                        trial.set_user_attr(k, v)
                trial.set_user_attr("reused", True)
                trial.set_user_attr("reused_from_trial", earlier.number)
                return self._values(Record.from_dict(earlier.user_attrs), spec)
        trial.set_user_attr("reused", reused)
        try:
            record = self._get_runner()(
                spec, protocol, self.cache_dir, device=self.device, precision=self.precision,
                threads=self.threads, callback=self._callback(trial, protocol), progress=False,
            )
        except optuna.TrialPruned:
            self._store_cached(trial, key, status=Status.PRUNED)
            raise
        except KeyboardInterrupt:
            raise
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}"
            self._store_cached(trial, key, status=Status.FAILED)
            trial.set_user_attr("status", Status.FAILED)
            trial.set_user_attr("error", reason[:2000])
            trial.set_user_attr("reason", reason[:300])
            raise
        for k, v in record_attrs(record).items():
            trial.set_user_attr(k, v)
        if record.status == Status.PRUNED:
            if self.pruning:
                raise optuna.TrialPruned(f"cached Record of {spec} was pruned")
            raise LightmarkError(
                f"{spec} was pruned earlier under this protocol (its cached Record: "
                f"{cached_record_path(self.cache_dir, key)}); remove that directory to train it fully"
            )
        if record.status not in (Status.COMPLETE, ""):
            raise LightmarkError(f"runner returned status {record.status!r} for {spec}: {record.error}")
        trial.set_user_attr("status", Status.COMPLETE)
        return self._values(record, spec)

    # -- pieces -----------------------------------------------------------------------------
    def _candidate(self, trial: optuna.Trial) -> tuple[AnySpec, Protocol]:
        fixed = trial.user_attrs.get("fixed_spec")
        if fixed:
            protocol = self.protocol
            if trial.user_attrs.get("fixed_protocol"):
                protocol = Protocol.from_dict(json.loads(trial.user_attrs["fixed_protocol"]))
            return parse_spec(fixed), protocol
        if self.space is None:
            raise LightmarkError("this study runs fixed candidates only, and the trial has none")
        return self.space.suggest(trial), self.protocol

    def _set_size_early(self, trial: optuna.Trial, spec: AnySpec) -> None:
        """Every trial carries its size, even one that later fails (fixed candidates too); a spec
        that cannot be sized cannot be trained either, so that error fails the trial."""
        trial.set_user_attr("size_mb", round(float(size_mb(spec)), 6))

    def _callback(self, trial: optuna.Trial, protocol: Protocol) -> Callable[[int, dict], None]:
        taken: list[int] = []  # the epoch at which another worker turned out to have failed this trial

        def callback(epoch: int, metrics: dict) -> None:
            value = _metric(metrics, self.metric)
            try:
                if not taken:
                    with single_attempt():  # the database away: train on, report the next epoch
                        self._report(trial, protocol, epoch, value)
            except StorageUnavailableError as exc:
                _warn(f"trial {trial.number}: {exc}; epoch {epoch} not reported, training goes on")
            except optuna.exceptions.UpdateFinishedTrialError:
                taken.append(epoch)  # nothing left to report to; the worker loop salvages the result
                _warn(f"trial {trial.number} was failed by another worker while this one could not reach the "
                      "storage (its heartbeat went stale); training goes on, and its result will be added to "
                      "the study as a new trial")
            finally:
                if self.on_epoch is not None:
                    self.on_epoch(trial.number, epoch, metrics)

        return callback

    def _report(self, trial: optuna.Trial, protocol: Protocol, epoch: int, value: float | None) -> None:
        """One epoch to the study: the epoch and NME as user attributes, the intermediate value, and
        pruning (Optuna's pruner, or the Pareto pruner with two objectives)."""
        trial.set_user_attr("epoch", int(epoch))
        trial.set_user_attr("epochs", int(protocol.epochs))
        if value is not None:
            trial.set_user_attr("last_val_nme_pct", float(value))
        if value is None or not self.pruning:
            return
        last = int(epoch) >= protocol.epochs  # pruning after the last epoch would throw a result away
        if not self.multi:
            trial.report(float(value), int(epoch))
            if not last and trial.should_prune():
                raise optuna.TrialPruned(f"epoch {epoch}: val {self.metric} {value:.3f}")
        elif self.pareto is not None and not last:
            curve = {**trial.user_attrs.get("curve", {}), str(int(epoch)): float(value)}
            trial.set_user_attr("curve", curve)
            cost = self._cost(trial)
            if cost is not None and self.pareto.should_prune(int(epoch), float(value), cost,
                                                             _finished_curves(trial, self._cost_key)):
                raise optuna.TrialPruned(f"epoch {epoch}: val {self.metric} {value:.3f} dominated by "
                                         f"finished trials of no larger {self.objectives[1]}")

    @property
    def _cost_key(self) -> str:
        return OBJECTIVE_KEYS[self.objectives[1]]

    def _cost(self, trial: optuna.Trial) -> float | None:
        """The trial's second objective, known before training (size always; MACs from the budget's
        check or counted once; latency only when the budget measured it)."""
        value = trial.user_attrs.get(self._cost_key)
        if value is None and self._cost_key == "macs":
            value = count_macs(parse_spec(trial.user_attrs["spec"]), self.protocol.input_size).fvcore
            trial.set_user_attr("macs", int(value))
        return None if value is None else float(value)

    def _infeasible(self, trial, spec, protocol, key, check) -> float | tuple[float, ...]:
        over = ", ".join(
            f"{name} over by {value:.4g}" for name, value in check.violations().items()
        )
        record = Record.from_spec(
            spec, protocol, status=Status.INFEASIBLE, params=int(check.params or 0), size_mb=check.size_mb,
            macs=check.macs, latency_ms=check.latency_ms, error=f"over budget: {over}",
        )
        for k, v in record_attrs(record).items():
            trial.set_user_attr(k, v)
        trial.set_user_attr("reason", f"over budget ({over}); not trained")
        values = []
        for name in self.objectives:
            value = getattr(record, OBJECTIVE_KEYS[name])
            values.append(math.inf if name == "nme" or value is None else float(value))
        return values[0] if len(values) == 1 else tuple(values)

    def _store_cached(self, trial: optuna.Trial, key: str, status: str) -> None:
        """After a pruned/failed run, copy what the runner saved (train time, epochs...)."""
        path = cached_record_path(self.cache_dir, key)
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            data = {}
        if data.get("key") == key:
            for k, v in record_attrs(Record.from_dict(data)).items():
                trial.set_user_attr(k, v)
        trial.set_user_attr("status", status)

    def salvage(self, study: optuna.Study, trial: optuna.Trial) -> str:
        """Keep a result this worker finished for a trial that another worker failed meanwhile (its
        heartbeat went stale while this one could not reach the storage): the Record is in the local
        candidate cache, so it is added to the study as a new COMPLETE trial with the same parameters
        (user attribute `salvaged_from_trial`). Nothing is added when the run did not complete here, or
        when another trial of the study already holds this architecture's result. Says which."""
        key = trial.user_attrs.get("key")
        try:
            record = Record.from_dict(json.loads(cached_record_path(self.cache_dir, str(key)).read_text()))
        except (OSError, ValueError, TypeError):
            record = None
        if not key or record is None or record.status != Status.COMPLETE:
            return "its run here did not complete, so there is nothing to add"
        earlier = _completed_in_study(trial, key)
        if earlier is not None:
            return f"the study already has this architecture's result (trial {earlier.number})"
        frozen = frozen_trial(study, trial)
        values = self._values(record, parse_spec(trial.user_attrs["spec"]))
        attrs = {**frozen.user_attrs, **trial.user_attrs, **record_attrs(record), "status": Status.COMPLETE,
                 "salvaged_from_trial": trial.number}
        system = {k: v for k, v in frozen.system_attrs.items() if k not in ("failed_trial", "retry_history")}
        study.add_trial(optuna.trial.create_trial(
            params=frozen.params, distributions=frozen.distributions,
            values=list(values) if isinstance(values, tuple) else [values], user_attrs=attrs, system_attrs=system,
        ))
        return "the result trained here is added to the study as a new trial"

    def _values(self, record: Record, spec: AnySpec) -> float | tuple[float, ...]:
        values = []
        for name in self.objectives:
            key = self.metric if name == "nme" else OBJECTIVE_KEYS[name]
            value = getattr(record, key, None)
            if value is None or not math.isfinite(float(value)):
                raise LightmarkError(f"the Record of {spec} has no finite {key} ({value!r})")
            values.append(float(value))
        return values[0] if len(values) == 1 else tuple(values)


def _wait_for_twins(trial: optuna.Trial, key: str) -> None:
    """Another trial of the study (an earlier number, on this host or another) is training this very
    architecture now: wait for it to finish instead of training it twice. An earlier trial never waits
    for a later one, so two trials never wait for each other; a twin whose worker dies is failed (its
    heartbeat goes stale, or its process is gone on this host) and then this trial trains."""
    said = False
    while twins := _running_twins(trial, key):
        if not said:
            _warn(f"trial {trial.number}: {trial.user_attrs.get('spec')} is being trained by trial "
                  f"{twins[0].number}; waiting for its result")
            trial.set_user_attr("waited_for_trial", twins[0].number)
            said = True
        time.sleep(TWIN_POLL_S)


def _running_twins(trial: optuna.Trial, key: str) -> list[optuna.trial.FrozenTrial]:
    study = trial.study
    fail_stale(study)  # a twin whose worker died stops being one
    beats = heartbeat_enabled(study_storage(study))
    twins = []
    for other in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        attrs = other.user_attrs
        if other.number >= trial.number or attrs.get("key") != key:
            continue
        # Without heartbeats only a process seen alive on this host is waited for: one elsewhere may be dead.
        if beats or process_alive(attrs.get("host"), attrs.get("pid"), attrs.get("pid_start")):
            twins.append(other)
    return twins


def _finished_in_study(trial: optuna.Trial, key: str, state: optuna.trial.TrialState
                       ) -> optuna.trial.FrozenTrial | None:
    for other in trial.study.get_trials(deepcopy=False, states=(state,)):
        if other.user_attrs.get("key") == key:
            return other
    return None


def _warn(message: str) -> None:
    print(f"lightmark search: {message}", file=sys.stderr, flush=True)


def _completed_in_study(trial: optuna.Trial, key: str) -> optuna.trial.FrozenTrial | None:
    try:
        trials = trial.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    except StorageUnavailableError:
        raise
    except Exception:  # noqa: BLE001 - a lookup failure just means "train it"
        return None
    for other in trials:
        attrs = other.user_attrs
        if attrs.get("key") == key and attrs.get("status") == Status.COMPLETE and "nme_image_pct" in attrs:
            return other
    return None


def _finished_curves(trial: optuna.Trial, cost_key: str) -> list[tuple[float, dict[int, float]]]:
    """(cost, {epoch: NME}) of the study's completed trials that recorded a curve."""
    out = []
    for other in trial.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
        attrs = other.user_attrs
        if attrs.get("curve") and attrs.get(cost_key) is not None:
            out.append((float(attrs[cost_key]), {int(k): float(v) for k, v in attrs["curve"].items()}))
    return out


def _metric(metrics: dict, name: str) -> float | None:
    """The study's metric from the trainer's per-epoch metrics (None when not a finite number).

    A missing metric is an error naming it and the keys there are: falling back to some other NME
    would prune (and report) on a metric the study does not optimise."""
    for key in (name, f"val_{name}", f"val/{name}"):  # the trainer may prefix validation metrics
        if key in metrics:
            value = metrics[key]
            break
    else:
        raise ConfigError(f"metric {name!r} is not among the trainer's per-epoch metrics "
                          f"(available: {', '.join(sorted(map(str, metrics))) or 'none'})")
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None
