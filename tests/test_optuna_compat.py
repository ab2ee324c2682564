"""lightmark's uses of Optuna's private API all go through search/optuna_compat.py; this test
fails, naming the Optuna version and the missing name, when an Optuna release moves one."""

import optuna
import pytest

from lightmark.search import optuna_compat
from lightmark.search.optuna_compat import (
    OptunaPrivateAPIError,
    check,
    frozen_trial,
    heartbeat,
    heartbeat_enabled,
    study_storage,
    trial_id,
)


def test_the_installed_optuna_has_every_private_name_lightmark_uses():
    try:
        check()
    except OptunaPrivateAPIError as exc:
        pytest.fail(str(exc))


def test_the_adapter_works_on_a_real_study():
    study = optuna.create_study(storage=optuna.storages.InMemoryStorage())
    trial = study.ask()
    trial.set_user_attr("spec", "s1")
    storage = study_storage(study)
    assert isinstance(storage, optuna.storages.BaseStorage)
    assert frozen_trial(study, trial).user_attrs == {"spec": "s1"}
    assert not heartbeat_enabled(storage)
    with heartbeat(study, trial):  # a no-op context without heartbeats
        pass
    study.tell(trial, 2.0)
    assert trial_id(study.trials[0]) == trial_id(trial)


def test_a_missing_private_name_is_reported_with_the_optuna_version(monkeypatch):
    class Bare:
        pass

    with pytest.raises(OptunaPrivateAPIError) as info:
        study_storage(Bare())
    message = str(info.value)
    assert "optuna.Study._storage" in message and optuna.__version__ in message
    monkeypatch.setattr(optuna_compat, "_heartbeat", None)
    with pytest.raises(OptunaPrivateAPIError, match=f"optuna.storages._heartbeat.*optuna {optuna.__version__}"):
        check()
