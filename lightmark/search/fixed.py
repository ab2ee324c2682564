"""Fixed (label, spec, protocol) candidates as the trials of one study (the ablation suites, the
tabular benchmark): the search's workers, storage, resume and runner cache, without a sampler's
choice, a budget or pruning."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from lightmark.benchmarks.record import Record, Status, architecture_fields, candidate_key
from lightmark.errors import ConfigError
from lightmark.models.specs import AnySpec
from lightmark.search.config import SearchConfig
from lightmark.search.live import LiveView
from lightmark.search.locking import local_lock
from lightmark.search.loop import worker_loop, write_run_files
from lightmark.search.prepare import prepare
from lightmark.search.records import trial_record
from lightmark.search.storage import choose_storage
from lightmark.search.workers import run_workers
from lightmark.training.protocol import Protocol


def run_fixed_candidates(
    candidates: Sequence[tuple[str, AnySpec, Protocol]],
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
    with local_lock(run_dir):
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
    view = LiveView(config, title=f"{study_name}: {len(candidates)} candidates") if progress else None
    hooks = view.hooks() if view is not None else None
    with (view or contextlib.nullcontext()):
        if workers <= 1:
            worker_loop(config, runner=runner if callable(runner) else None, hooks=hooks, study=study)
        else:
            run_workers(config, workers, view=view)
    write_run_files(study, config)
    return _records_in_order(study, candidates)


def _records_in_order(
    study: optuna.Study, candidates: Sequence[tuple[str, AnySpec, Protocol]]
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
    for _label, spec, protocol in candidates:
        key = candidate_key(spec, protocol)
        trial = by_key.get(key)
        record = trial_record(trial) if trial is not None else None
        if record is None or (trial is not None and trial.state != TrialState.COMPLETE):
            base = record.to_dict() if record else {}
            error = (trial.user_attrs.get("error") or trial.user_attrs.get("reason", "")) if trial else "not run"
            record = Record.from_dict({
                **_empty_record(spec, protocol, key), **base,
                "status": Status.PRUNED if trial is not None and trial.state == TrialState.PRUNED else Status.FAILED,
                "error": error,
            })
        records.append(record)
    return records


def _empty_record(spec: AnySpec, protocol: Protocol, key: str) -> dict[str, Any]:
    return dict(
        key=key, **architecture_fields(spec), protocol=protocol.name,
        input_size=protocol.input_size, seed=protocol.seed, status=Status.FAILED, params=0, size_mb=0.0,
    )
