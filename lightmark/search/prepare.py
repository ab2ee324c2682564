"""Opening a study: create or resume it under one protocol, recover trials orphaned by a dead
worker, enqueue the first trials (once per study)."""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import optuna

from lightmark.errors import ConfigError, LightmarkError
from lightmark.models.specs import AnySpec, parse_spec
from lightmark.search.config import SearchConfig
from lightmark.search.family_space import AnySpace
from lightmark.search.locking import local_lock
from lightmark.search.optuna_compat import heartbeat_enabled, study_storage
from lightmark.search.samplers import make_pruner, make_sampler
from lightmark.search.storage import open_storage, recover_orphans


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


def fail_stale(study: optuna.Study) -> None:
    """RDB storages with heartbeats: fail trials whose worker stopped beating; Optuna's
    RetryHeartbeatStaleTrialCallback (set in storage.py) queues them again."""
    if heartbeat_enabled(study_storage(study)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            optuna.storages.fail_stale_trials(study)


def prepare(config: SearchConfig, *, enqueue: Sequence[tuple[str, AnySpec]] = ()) -> tuple[
    optuna.Study, list[int], list[str]
]:
    """Create/resume the study, recover orphans, enqueue first trials (once per study)."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    Path(config.run_dir).mkdir(parents=True, exist_ok=True)
    study = open_study(config)
    check_study_protocol(study, config)
    space = config.space

    def size_attrs(trial: optuna.trial.FrozenTrial) -> dict[str, Any]:
        spec = spec_of_trial(trial, space)
        if spec is None or config.budget is None:
            return {}
        return {"spec": str(spec), "size_mb": round(config.budget.size_of(spec), 6)}

    with local_lock(Path(config.run_dir)):
        fail_stale(study)
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


def spec_of_trial(trial: optuna.trial.FrozenTrial, space: AnySpace | None) -> AnySpec | None:
    if trial.user_attrs.get("fixed_spec"):
        return parse_spec(trial.user_attrs["fixed_spec"])
    if trial.user_attrs.get("spec"):
        return parse_spec(trial.user_attrs["spec"])
    if space is None:
        return None
    try:
        return space.spec_from_params(trial.params)
    except LightmarkError:
        return None
