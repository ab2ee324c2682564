"""The faults a long search meets, on one machine: a trial that fails, a worker process that dies, a
storage that cannot be reached, a disk that fills up. Exit status: 0 finished cleanly, 1 finished but a
worker died or a trial failed with an error of its own, 2 a user error, 3 stopped by its surroundings
(storage unreachable past the retry bound, disk full; resumable), 130 interrupted.

PostgreSQL going away mid-search is tests/test_search_postgres.py; the many-host drill scripts/multihost-drill.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import optuna
import pytest
import sqlalchemy.exc
from optuna.trial import TrialState

from lightmark.atomic import append_line, write_json_atomic, write_text_atomic
from lightmark.cli.main import main
from lightmark.errors import DiskFullError, LightmarkError, StorageUnavailableError
from lightmark.models.spec import ModelSpec
from lightmark.search import storage_retry, testing
from lightmark.search.budget import Budget
from lightmark.search.config import SearchConfig
from lightmark.search.space import SearchSpace
from lightmark.search.storage import choose_storage
from lightmark.search.study import run_search
from lightmark.training.protocol import get_protocol

FAKE = {
    "LIGHTMARK_SEARCH_RUNNER": "lightmark.search.testing:synthetic_runner",
    "LIGHTMARK_SEARCH_SIZER": "lightmark.search.testing:synthetic_size_mb",
}
SMALL = SearchSpace(n_stacks=(1,), depth=(2,), channels=(32, 40, 48), attention=("none",), coordconv=(False,))


def _config(run_dir: Path, **kw) -> SearchConfig:
    return SearchConfig(
        protocol=get_protocol("smoke"), run_dir=run_dir, storage=choose_storage(None, run_dir), study_name="t",
        space=kw.pop("space", SMALL),
        budget=Budget(size_mb=1.0, input_size=64, sizer=FAKE["LIGHTMARK_SEARCH_SIZER"]),
        runner=FAKE["LIGHTMARK_SEARCH_RUNNER"], sampler=kw.pop("sampler", "grid"), **kw,
    )


def _search_args(out: Path, *extra: str, n_trials: int = 3) -> list[str]:
    return ["search", "--protocol", "smoke", "--budget-mb", "1", "--n-trials", str(n_trials), "--stacks", "1",
            "--depth", "2", "--channels", "32-48:8", "--attention", "none", "--coordconv", "false",
            "--sampler", "grid", "--out", str(out), "--no-report", *extra]


# -- exit status -------------------------------------------------------------------------------------
def test_a_trial_failed_by_its_own_error_makes_the_exit_status_1(tmp_path, monkeypatch):
    monkeypatch.setenv("LIGHTMARK_FAKE_FAIL", "s1-d2-c40")
    result = run_search(_config(tmp_path / "bad", n_trials=3))
    assert result.exit_code == 1
    assert len(result.failed_trials) == 1
    assert any("exit status 1" in note and str(result.failed_trials) in note for note in result.notes)
    assert result.to_json()["exit_code"] == 1 and result.to_json()["failed_trials"] == result.failed_trials

    monkeypatch.delenv("LIGHTMARK_FAKE_FAIL")
    clean = run_search(_config(tmp_path / "good", n_trials=3))
    assert clean.exit_code == 0 and clean.failed_trials == [] and clean.dead_workers == []


def test_a_resumed_search_is_not_blamed_for_an_earlier_runs_failure(tmp_path, monkeypatch):
    one = SearchSpace(n_stacks=(1,), depth=(2,), channels=(32,), attention=("none",), coordconv=(False,))
    monkeypatch.setenv("LIGHTMARK_FAKE_FAIL", "s1-d2-c32")
    assert run_search(_config(tmp_path, space=one, n_trials=1, sampler="tpe")).exit_code == 1
    monkeypatch.delenv("LIGHTMARK_FAKE_FAIL")
    again = run_search(_config(tmp_path, space=one, n_trials=2, sampler="tpe"))  # same pid, a later trial
    assert again.exit_code == 0 and again.summary["trials"] == 2  # the failure was the first run's


def test_the_cli_exits_1_and_says_which_trial_failed(tmp_path, monkeypatch, capsys):
    for key, value in FAKE.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("LIGHTMARK_FAKE_FAIL", "s1-d2-c48")
    assert main(_search_args(tmp_path / "run")) == 1
    err = " ".join(capsys.readouterr().err.split())  # rich wraps long lines
    assert "exit status 1: trial(s) [" in err and "failed with an error of their own" in err


def test_user_and_resumable_errors_have_their_own_exit_codes():
    assert LightmarkError("x").exit_code == 2
    assert StorageUnavailableError("x").exit_code == 3 and DiskFullError("x").exit_code == 3
    assert isinstance(DiskFullError("x"), LightmarkError)


def _children(pid: int) -> list[int]:
    """Worker processes of `pid` (its children, less multiprocessing's resource tracker)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes()
            if int(fields[1]) == pid and b"resource_tracker" not in cmdline:
                out.append(int(stat.parent.name))
    return out


@pytest.mark.slow
def test_a_search_whose_worker_is_killed_exits_1(tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, **FAKE, "LIGHTMARK_FAKE_EPOCH_S": "1.5"}
    cmd = [sys.executable, "-m", "lightmark.cli.main", "search", "--protocol", "smoke", "--budget-mb", "3",
           "--n-trials", "6", "--workers", "2", "--pruner", "none", "--out", str(out), "--no-report"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while len(_children(proc.pid)) < 2 or not list(out.glob("candidates/*/trainings.log")):
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[1][-2000:]
            time.sleep(0.2)
        victim = _children(proc.pid)[0]
        os.kill(victim, signal.SIGKILL)
        _, err = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, err[-2000:]
    assert f"pid {victim}, killed by signal 9" in err and "exit status 1" in err


# -- the storage's retry helper ------------------------------------------------------------------------
def _unreachable_error() -> Exception:
    return sqlalchemy.exc.OperationalError("SELECT 1", {}, Exception("connection refused"))


def test_retry_waits_double_up_to_the_bound():
    assert storage_retry.retry_delays(300) == [1, 2, 4, 8, 16, 32, 60, 60, 60, 57]
    assert storage_retry.retry_delays(3) == [1, 2]
    assert storage_retry.retry_delays(0) == []


def test_retry_bound_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv(storage_retry.RETRY_ENV, "7.5")
    assert storage_retry.retry_bound() == 7.5
    monkeypatch.setenv(storage_retry.RETRY_ENV, "soon")
    with pytest.raises(LightmarkError, match=storage_retry.RETRY_ENV):
        storage_retry.retry_bound()


def test_a_password_never_appears_in_the_url_shown():
    url = "postgresql+psycopg2://lightmark:s3cret@db.example:5432/optuna"
    assert storage_retry.redact_url(url) == "postgresql+psycopg2://lightmark@db.example:5432/optuna"
    assert storage_retry.redact_url("journal:/tmp/x.log") == "journal:/tmp/x.log"


def test_an_unreachable_storage_is_retried_with_a_line_per_attempt(monkeypatch, capsys):
    monkeypatch.setattr(storage_retry.time, "sleep", lambda s: None)
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise optuna.exceptions.StorageInternalError("commit failed") from _unreachable_error()
        return "ok"

    url = "postgresql://lightmark:s3cret@127.0.0.1:5432/optuna"
    assert storage_retry.retrying(flaky, url, [1, 2, 4]) == "ok"
    err = capsys.readouterr().err
    assert "storage postgresql://lightmark@127.0.0.1:5432/optuna unreachable, retrying in 1 s (attempt 1/4)" in err
    assert "retrying in 2 s (attempt 2/4)" in err and "s3cret" not in err


def test_past_the_bound_the_error_names_the_url_without_its_password(monkeypatch):
    monkeypatch.setattr(storage_retry.time, "sleep", lambda s: None)

    def down():
        raise _unreachable_error()

    with pytest.raises(StorageUnavailableError) as info:
        storage_retry.retrying(down, "postgresql://u:s3cret@127.0.0.1:1/db", [1, 2])
    assert "storage postgresql://u@127.0.0.1:1/db unreachable after 3 attempt(s) over 3 s" in str(info.value)
    assert "s3cret" not in str(info.value)


def test_errors_that_waiting_cannot_fix_are_not_retried(monkeypatch):
    monkeypatch.setattr(storage_retry.time, "sleep", lambda s: pytest.fail("waited"))
    auth = sqlalchemy.exc.OperationalError("connect", {}, Exception('password authentication failed for "u"'))

    def wrong_password():
        raise auth

    with pytest.raises(sqlalchemy.exc.OperationalError):
        storage_retry.retrying(wrong_password, "postgresql://u@h/db", [1])
    with pytest.raises(ValueError):
        storage_retry.retrying(lambda: int("x"), "postgresql://u@h/db", [1])


def test_single_attempt_does_not_wait(monkeypatch):
    monkeypatch.setattr(storage_retry.time, "sleep", lambda s: pytest.fail("waited"))

    def down():
        raise _unreachable_error()

    with storage_retry.single_attempt(), pytest.raises(StorageUnavailableError, match="unreachable"):
        storage_retry.retrying(down, "postgresql://u@h/db", [1, 2])


def test_the_cli_exits_3_naming_an_unreachable_database_without_its_password(tmp_path, monkeypatch, capsys):
    pytest.importorskip("psycopg2")
    for key, value in FAKE.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv(storage_retry.RETRY_ENV, "1")
    import socket

    with socket.socket() as sock:  # a port nobody listens on: connection refused at once
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"postgresql+psycopg2://lightmark:s3cret@127.0.0.1:{port}/optuna"
    assert main(_search_args(tmp_path / "run", "--storage", url)) == 3
    err = capsys.readouterr().err
    assert f"storage postgresql+psycopg2://lightmark@127.0.0.1:{port}/optuna unreachable after 2 attempt(s)" in err
    assert "retrying in 1 s (attempt 1/2)" in err
    assert "s3cret" not in err and "Traceback" not in err


# -- a full disk ---------------------------------------------------------------------------------------
@pytest.fixture
def small_disk(tmp_path):
    """A 2 MiB tmpfs (root only; skipped where mount is not permitted) and a way to fill it."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(disk)], capture_output=True,
                          text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def _fill(disk: Path) -> Path:
    """Fill the disk to the last byte with a ballast file; remove the file to free it."""
    ballast = disk / "ballast"
    with open(ballast, "wb", buffering=0) as handle:  # unbuffered: closing it writes nothing more
        for chunk in (b"\0" * 65536, b"\0"):
            with contextlib.suppress(OSError):
                while True:
                    handle.write(chunk)
    return ballast


def _temp_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob(".*.tmp")]


def test_a_full_disk_keeps_the_previous_file_and_names_the_path(small_disk):
    import torch

    from lightmark.training.checkpoint import load_checkpoint, save_checkpoint

    ckpt, record, log = small_disk / "last.pt", small_disk / "record.json", small_disk / "log.jsonl"
    save_checkpoint(ckpt, {"model": {"w": torch.ones(10)}, "spec": {}, "protocol": {}, "epoch": 1})
    write_json_atomic(record, {"epoch": 1})
    append_line(log, '{"epoch": 1}')
    _fill(small_disk)
    with pytest.raises(DiskFullError, match=re.escape(f"{ckpt}: no space left on the device")) as info:
        save_checkpoint(ckpt, {"model": {"w": torch.ones(100_000)}, "spec": {}, "protocol": {}, "epoch": 2})
    assert "the previous version is intact" in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(DiskFullError, match=re.escape(str(record))):
        write_json_atomic(record, {"epoch": 2, "pad": "x" * 100_000})
    with pytest.raises(DiskFullError, match=re.escape(str(log))):
        append_line(log, '{"epoch": 2, "pad": "' + "x" * 100_000 + '"}')
    with pytest.raises(DiskFullError, match="nothing was written"):
        write_text_atomic(small_disk / "new.csv", "x" * 100_000)
    assert load_checkpoint(ckpt)["epoch"] == 1 and torch.equal(load_checkpoint(ckpt)["model"]["w"], torch.ones(10))
    assert record.read_text().strip() == '{\n  "epoch": 1\n}'
    assert log.read_text() == '{"epoch": 1}\n'  # no half line
    assert _temp_files(small_disk) == [] and not (small_disk / "new.csv").exists()


@pytest.mark.slow
def test_training_on_a_full_disk_stops_cleanly_and_resumes(small_disk):
    from lightmark.training.checkpoint import load_checkpoint
    from lightmark.training.trainer import LAST_NAME, train

    protocol = get_protocol("smoke").override({"train_samples": 16, "val_samples": 8, "epochs": 2})
    spec, out = ModelSpec.parse("s1-d2-c16"), small_disk / "run"
    ballast: list[Path] = []

    def fill_after_first_epoch(epoch: int, metrics: dict) -> None:
        if epoch == 1:
            ballast.append(_fill(small_disk))

    with pytest.raises(DiskFullError, match=re.escape(str(out))):
        train(spec, protocol, out, device="cpu", progress=False, callback=fill_after_first_epoch)
    assert load_checkpoint(out / LAST_NAME)["epoch"] == 1  # epoch 1's checkpoint, intact
    assert _temp_files(out) == []
    ballast[0].unlink()
    result = train(spec, protocol, out, device="cpu", progress=False, resume=True)
    assert result.epochs_done == 2 and load_checkpoint(out / LAST_NAME)["epoch"] == 2


@pytest.mark.slow
def test_a_search_on_a_full_disk_exits_3_in_one_line_and_the_next_run_resumes(small_disk, tmp_path):
    out = small_disk / "run"
    env = {**os.environ, **FAKE, "LIGHTMARK_FAKE_EPOCH_S": "0"}
    args = ["--stacks", "1", "--depth", "2-3", "--channels", "16-48:8", "--budget-mb", "3", "--pruner", "none",
            "--sampler", "grid",  # no architecture twice: each trial writes to the disk
            "--storage", f"journal:{tmp_path / 'study.log'}"]  # the study elsewhere: the records fill the disk
    run = lambda n: subprocess.run(  # noqa: E731
        [sys.executable, "-m", "lightmark.cli.main", "search", "--protocol", "smoke", "--n-trials", str(n),
         "--out", str(out), "--no-report", "--workers", "1", *args], capture_output=True, text=True, env=env,
        timeout=240)
    first = run(3)
    assert first.returncode == 0, first.stderr[-2000:]
    csv_before = (out / "records.csv").read_text()
    ballast = _fill(small_disk)
    full = run(6)
    assert full.returncode == 3, full.stderr[-2000:]
    last = full.stderr.strip().splitlines()[-1]
    assert last.startswith("lightmark search: error: ") and "no space left on the device" in last
    assert str(out) in last and "Traceback" not in full.stderr
    assert (out / "records.csv").read_text() == csv_before and _temp_files(out) == []
    ballast.unlink()
    again = run(6)
    assert again.returncode == 0, again.stderr[-2000:]
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.load_study(study_name="lightmark-smoke",
                              storage=JournalStorage(JournalFileBackend(str(tmp_path / "study.log"))))
    stopped = [t for t in study.trials if t.state == TrialState.FAIL]
    assert stopped and all("no space left" in t.user_attrs["reason"] for t in stopped)
    assert all(t.user_attrs.get("requeued") for t in stopped)  # not counted: re-queued and retried
    assert sum(t.state == TrialState.COMPLETE for t in study.trials) == 6
    retried = {t.user_attrs.get("retry_of") for t in study.trials if t.state == TrialState.COMPLETE}
    assert {t.number for t in stopped} <= retried
    assert len((out / "records.csv").read_text().strip().splitlines()) == 1 + len(study.trials)
    assert all(n == 1 for key, n in testing.trainings(out).items())


# -- a trial taken away, a twin waited for ----------------------------------------------------------------
def test_a_result_trained_after_another_worker_failed_the_trial_is_salvaged(tmp_path, capsys):
    """While this worker trains, another one fails its trial as stale (as a host cut off from the
    database meets it) and re-queues it: the result trained here is still added to the study."""
    from lightmark.search.optuna_compat import study_storage, trial_id
    from lightmark.search.storage import open_storage

    config = _config(tmp_path, n_trials=2)
    meddled: list[int] = []

    def runner(spec, protocol, run_dir, *, callback=None, **kw):
        def callback_after_a_stale_verdict(epoch: int, metrics: dict) -> None:
            if not meddled:  # what fail_stale_trials does on another host
                study = optuna.load_study(study_name="t", storage=open_storage(config.storage))
                running = study.get_trials(states=(TrialState.RUNNING,))[0]
                study_storage(study).set_trial_state_values(trial_id(running), TrialState.FAIL)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                    optuna.storages.RetryHeartbeatStaleTrialCallback()(study, study.trials[running.number])
                meddled.append(running.number)
            callback(epoch, metrics)

        return testing.synthetic_runner(spec, protocol, run_dir, callback=callback_after_a_stale_verdict, **kw)

    result = run_search(config, runner=runner)
    study = optuna.load_study(study_name="t", storage=open_storage(config.storage))
    taken = study.trials[meddled[0]]
    salvaged = [t for t in study.trials if t.user_attrs.get("salvaged_from_trial") == taken.number]
    assert taken.state == TrialState.FAIL and len(salvaged) == 1
    assert salvaged[0].state == TrialState.COMPLETE and salvaged[0].user_attrs["key"] == taken.user_attrs["key"]
    assert salvaged[0].params == taken.params and salvaged[0].value == pytest.approx(
        salvaged[0].user_attrs["nme_image_pct"])
    retry = [t for t in study.trials if t.system_attrs.get("failed_trial") == taken.number]
    assert retry and retry[0].state == TrialState.COMPLETE and retry[0].user_attrs["reused"]  # not trained again
    assert testing.trainings(tmp_path)[taken.user_attrs["key"]] == 1
    assert result.exit_code == 0  # nothing failed by an error of its own
    assert "the result trained here is added to the study as a new trial" in capsys.readouterr().err


@pytest.mark.slow
def test_two_workers_given_one_architecture_train_it_once(tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, **FAKE, "LIGHTMARK_FAKE_EPOCH_S": "1"}
    cmd = [sys.executable, "-m", "lightmark.cli.main", "search", "--protocol", "smoke", "--budget-mb", "1",
           "--n-trials", "2", "--stacks", "1", "--depth", "2", "--channels", "32", "--attention", "none",
           "--coordconv", "false", "--workers", "2", "--out", str(out), "--no-report"]  # one architecture
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=180)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "waiting for its result" in result.stderr
    (key, n), = testing.trainings(out).items()
    assert n == 1  # the second trial waited for the first instead of training it again
