from __future__ import annotations

import subprocess
import sys

import pytest

from lightmark.errors import ConfigError
from lightmark.search.records import pareto_front
from lightmark.search.storage import choose_storage, process_alive, process_identity
from lightmark.search.workers import gpu_for_worker, visible_gpus


def test_default_storage_is_sqlite_in_the_run_dir(tmp_path):
    choice = choose_storage(None, tmp_path)
    assert choice.kind == "sqlite" and choice.url == f"sqlite:///{(tmp_path / 'study.db').resolve()}"


def test_several_workers_switch_to_a_journal_and_keep_it(tmp_path):
    choice = choose_storage(None, tmp_path, workers=3)
    assert choice.kind == "journal" and choice.path == tmp_path / "study.journal"
    assert "SQLite is not for parallel writers" in choice.note
    choice.path.write_text("")
    assert choose_storage(None, tmp_path, workers=1).kind == "journal"  # sticky once created


def test_existing_sqlite_study_is_kept_for_workers(tmp_path):
    (tmp_path / "study.db").write_bytes(b"")
    choice = choose_storage(None, tmp_path, workers=2)
    assert choice.kind == "sqlite" and "already holds this study" in choice.note


@pytest.mark.parametrize(
    "url, kind",
    [
        ("journal:/x/y.log", "journal"),
        ("/x/y.jsonl", "journal"),
        ("runs/a/study.journal", "journal"),
        ("runs/a/s.db", "sqlite"),
        ("sqlite:///runs/a/s.db", "sqlite"),
        ("postgresql://u:p@db:5432/optuna", "rdb"),
        ("mysql+pymysql://u@db/optuna", "rdb"),
    ],
)
def test_storage_urls(tmp_path, url, kind):
    assert choose_storage(url, tmp_path).kind == kind


def test_unknown_storage_text_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="--storage"):
        choose_storage("runs/a/study.txt", tmp_path)


def test_process_liveness_uses_pid_and_start_time():
    me = process_identity()
    assert process_alive(me["host"], me["pid"], me["pid_start"]) is True
    assert process_alive(me["host"], me["pid"], "1") is False  # same pid, another process
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    assert process_alive(me["host"], int(dead), None) is False
    assert process_alive("another-host.example", me["pid"], me["pid_start"]) is None


def test_gpu_assignment_round_robin(monkeypatch):
    assert [gpu_for_worker(i, ["0", "1", "2"]) for i in range(5)] == ["0", "1", "2", "0", "1"]
    assert gpu_for_worker(3, []) is None
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,6")
    assert visible_gpus() == ["4", "6"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert visible_gpus() == []


def test_pareto_front_keeps_only_non_dominated_rows():
    rows = [
        {"spec": "a", "nme": 5.0, "size": 1.0},
        {"spec": "b", "nme": 4.0, "size": 2.0},
        {"spec": "c", "nme": 4.5, "size": 2.5},  # dominated by b
        {"spec": "d", "nme": 3.0, "size": 9.0},
        {"spec": "e", "nme": None, "size": 0.5},  # unusable
    ]
    assert [r["spec"] for r in pareto_front(rows, ["nme", "size"])] == ["d", "b", "a"]


def test_recover_orphans_fails_dead_workers_trials_and_requeues_them(tmp_path):
    import optuna
    from optuna.trial import TrialState

    from lightmark.search.storage import recover_orphans

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 's.db'}", study_name="s")
    me = process_identity()
    dead_pid = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                                  capture_output=True, text=True).stdout)
    orphan = study.ask()
    orphan.suggest_int("channels", 16, 64, step=8)
    for key, value in {**me, "pid": dead_pid, "pid_start": ""}.items():
        orphan.set_user_attr(key, value)
    mine = study.ask()  # a live worker: this process
    for key, value in me.items():
        mine.set_user_attr(key, value)
    fresh = study.ask()  # asked a moment ago, not yet labelled: left alone
    assert recover_orphans(study) == [orphan.number]
    trials = {t.number: t for t in study.get_trials()}
    assert trials[orphan.number].state == TrialState.FAIL
    assert trials[orphan.number].user_attrs["requeued"] is True
    assert trials[mine.number].state == TrialState.RUNNING
    assert trials[fresh.number].state == TrialState.RUNNING
    retry = [t for t in trials.values() if t.state == TrialState.WAITING]
    assert len(retry) == 1 and retry[0].user_attrs["retry_of"] == orphan.number
    assert retry[0].system_attrs["fixed_params"] == trials[orphan.number].params
    assert recover_orphans(study) == []  # idempotent


def test_a_host_that_loses_the_race_to_create_the_tables_opens_the_winners(monkeypatch):
    """Hosts starting together on an empty server database all create Optuna's tables; the losers get a
    unique violation from the catalog (the drill's CI run lost a host to it) and must simply open again."""
    import optuna
    from sqlalchemy import exc as sa_exc

    from lightmark.search import storage

    class UniqueViolation(Exception):
        pass

    race = sa_exc.IntegrityError("CREATE TABLE studies", {}, UniqueViolation(
        'duplicate key value violates unique constraint "pg_type_typname_nsp_index"'))
    calls = []

    class RDB(optuna.storages.InMemoryStorage):  # a class: Optuna's get_storage checks isinstance with it
        def __init__(self, url, **kwargs):
            calls.append(url)
            if len(calls) < 3:
                raise race
            super().__init__()

    monkeypatch.setattr(optuna.storages, "RDBStorage", RDB)
    monkeypatch.setattr(storage.time, "sleep", lambda s: None)
    opened = storage.open_storage("postgresql+psycopg2://u@db:5432/optuna")
    assert len(calls) == 3 and opened is not None

    calls.clear()  # the RDB above raises `race` again, now a failure that is not a race
    race = sa_exc.IntegrityError("INSERT", {}, UniqueViolation("null value in column violates not-null"))
    with pytest.raises(Exception, match="cannot connect"):  # not a race: said at once, no retries
        storage.open_storage("postgresql+psycopg2://u@db:5432/optuna")
    assert len(calls) == 1
