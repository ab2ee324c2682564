"""The one place lightmark reaches into Optuna's private API (names with a leading underscore).

Optuna has no public way to run a trial's heartbeat around code that is not `study.optimize`, to
reach a study's storage, or to read a trial's storage id (needed to read a trial back, fail it or
set its attributes from outside the trial). Everything that needs one of these goes through this
module, so an Optuna release that moves them breaks here, with a message naming the Optuna version
and the missing name, and `tests/test_optuna_compat.py` (which calls `check()`) says so first.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

import optuna
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial

try:
    from optuna.storages import _heartbeat
except ImportError:  # reported by check() and at first use, with the version
    _heartbeat = None

# (owner, private name) pairs lightmark depends on; check() verifies each one.
PRIVATE_NAMES = (
    ("optuna.Study", "_storage"),
    ("optuna.Trial", "_trial_id"),
    ("optuna.trial.FrozenTrial", "_trial_id"),
    ("optuna.storages._heartbeat", "get_heartbeat_thread"),
    ("optuna.storages._heartbeat", "is_heartbeat_enabled"),
    ("optuna.storages._heartbeat", "BaseHeartbeat"),
)


# The heartbeat interface a storage must have for Optuna to beat for it (storage_retry.RetryingStorage
# forwards it); `object` when this Optuna lacks it, which check() reports.
BaseHeartbeat: type = getattr(_heartbeat, "BaseHeartbeat", object)


class OptunaPrivateAPIError(RuntimeError):
    """Optuna no longer has a private name lightmark uses: lightmark/search/optuna_compat.py needs updating."""


def _missing(owner: str, name: str) -> OptunaPrivateAPIError:
    return OptunaPrivateAPIError(
        f"lightmark uses Optuna's private {owner}.{name}, which optuna {optuna.__version__} does not have; "
        "update lightmark/search/optuna_compat.py for this Optuna version"
    )


def _attr(obj: Any, owner: str, name: str) -> Any:
    try:
        return getattr(obj, name)
    except AttributeError:
        raise _missing(owner, name) from None


def _heartbeat_function(name: str) -> Any:
    if _heartbeat is None:
        raise _missing("optuna.storages", "_heartbeat")
    return _attr(_heartbeat, "optuna.storages._heartbeat", name)


def study_storage(study: optuna.Study) -> BaseStorage:
    """The storage a study reads and writes (private `Study._storage`)."""
    return _attr(study, "optuna.Study", "_storage")


def trial_id(trial: optuna.Trial | FrozenTrial) -> int:
    """A trial's id in its storage (private `_trial_id`; `number` counts within the study only)."""
    owner = "optuna.trial.FrozenTrial" if isinstance(trial, FrozenTrial) else "optuna.Trial"
    return _attr(trial, owner, "_trial_id")


def frozen_trial(study: optuna.Study, trial: optuna.Trial | FrozenTrial) -> FrozenTrial:
    """A trial as the storage has it now (its user attributes included)."""
    return study_storage(study).get_trial(trial_id(trial))


def with_read_cache(storage: BaseStorage) -> BaseStorage:
    """What `create_study` makes of an RDBStorage: Optuna's cache of finished trials in front of it
    (`optuna.storages.get_storage`, documented as internal). Wrapping the storage (storage_retry.py) would
    otherwise lose it."""
    return optuna.storages.get_storage(storage)


def heartbeat_enabled(storage: BaseStorage) -> bool:
    """True when the storage beats (RDB storages given a heartbeat interval)."""
    return bool(_heartbeat_function("is_heartbeat_enabled")(storage))


def heartbeat(study: optuna.Study, trial: optuna.Trial) -> AbstractContextManager[Any]:
    """Beat for `trial` while the block runs (a no-op context on storages without heartbeats), as
    `study.optimize` does; the worker loop asks and tells trials itself."""
    return _heartbeat_function("get_heartbeat_thread")(trial_id(trial), study_storage(study))


def check() -> None:
    """Raise OptunaPrivateAPIError naming the first private name the installed Optuna lacks."""
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.create_study(storage=optuna.storages.InMemoryStorage())
    finally:
        optuna.logging.set_verbosity(verbosity)
    trial = study.ask()
    study.tell(trial, 1.0)
    objects = {"optuna.Study": study, "optuna.Trial": trial, "optuna.trial.FrozenTrial": study.trials[0]}
    for owner, name in PRIVATE_NAMES:
        if owner == "optuna.storages._heartbeat":
            _heartbeat_function(name)
        else:
            _attr(objects[owner], owner, name)
