"""`lightmark search` as real processes: exit codes, resume, journal workers, SIGKILL, SIGINT.

The candidate runner and size function are the synthetic ones (same contracts as
`benchmarks.runner.run_candidate` / `benchmarks.profile.size_mb`, selected through
LIGHTMARK_SEARCH_RUNNER / LIGHTMARK_SEARCH_SIZER) so that these tests exercise processes,
storages and signals in seconds; tests/test_search_real.py runs the real trainer.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import sqlalchemy.exc
from optuna.trial import TrialState

from lightmark.cli.main import main
from lightmark.search import testing

FAKE = {
    "LIGHTMARK_SEARCH_RUNNER": "lightmark.search.testing:synthetic_runner",
    "LIGHTMARK_SEARCH_SIZER": "lightmark.search.testing:synthetic_size_mb",
    "NO_ALBUMENTATIONS_UPDATE": "1",
    "MPLBACKEND": "Agg",
}


def _cmd(out: Path, *extra: str, n_trials: int = 4) -> list[str]:
    return [sys.executable, "-m", "lightmark.cli.main", "search", "--protocol", "smoke",
            "--budget-mb", "1", "--n-trials", str(n_trials), "--out", str(out), "--no-report",
            "--workers", "1", *extra]  # one process (the default) unless a test asks for more


def _run(cmd: list[str], epoch_s: float = 0.0, timeout: float = 240, **env: str):
    environ = {**os.environ, **FAKE, "LIGHTMARK_FAKE_EPOCH_S": str(epoch_s), **env}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=environ)


def _start(cmd: list[str], epoch_s: float) -> subprocess.Popen:
    environ = {**os.environ, **FAKE, "LIGHTMARK_FAKE_EPOCH_S": str(epoch_s)}
    return subprocess.Popen(cmd, env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _load(url: str, name: str = "lightmark-smoke") -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    if url.startswith("journal:"):
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        url = JournalStorage(JournalFileBackend(url[len("journal:"):]))
    return optuna.load_study(study_name=name, storage=url)


def _wait_for_training(db: Path, proc: subprocess.Popen, timeout: float = 120) -> int:
    """Number of a RUNNING trial that has finished at least one epoch."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[1][-2000:]
        if db.exists():
            try:
                for trial in _load(f"sqlite:///{db}").trials:
                    if trial.state == TrialState.RUNNING and trial.user_attrs.get("epoch", 0) >= 1:
                        return trial.number
            except (KeyError, sqlalchemy.exc.OperationalError, sqlalchemy.exc.IntegrityError):
                pass  # the study is not created yet, or its tables are being created by the search right now
        time.sleep(0.3)
    raise AssertionError("no trial reached epoch 1 in time")


def _in_process(monkeypatch, capsys, cmd: list[str]) -> tuple[int, str]:
    """A command of `_cmd` run in this process (argument errors need no interpreter of their own)."""
    for key, value in FAKE.items():
        monkeypatch.setenv(key, value)
    code = main(cmd[cmd.index("lightmark.cli.main") + 1:])
    return code, capsys.readouterr().err


def test_impossible_budget_exits_2_with_a_clear_message(tmp_path, monkeypatch, capsys):
    code, err = _in_process(monkeypatch, capsys, _cmd(tmp_path / "run", "--budget-mb", "0.001"))
    assert code == 2
    message = err.strip().splitlines()[-1]
    assert "no architecture of the search space fits size <= 0.001 MiB" in message
    assert "s1-d2-c32" in message  # names the smallest architecture and its size
    assert "Traceback" not in err
    assert not (tmp_path / "run" / "study.db").exists()  # nothing started


def test_malformed_space_file_names_the_bad_key(tmp_path, monkeypatch, capsys):
    space = tmp_path / "space.toml"
    space.write_text("n_stacks = [1, 2]\nchanels = [32, 64]\n")
    code, err = _in_process(monkeypatch, capsys, _cmd(tmp_path / "run", "--space", str(space)))
    assert code == 2
    assert "chanels" in err and str(space) in err
    assert "Traceback" not in err


@pytest.mark.slow
def test_resume_tops_up_one_study_and_json_summary(tmp_path):
    out = tmp_path / "run"
    first = _run(_cmd(out, "--json", n_trials=4))
    assert first.returncode == 0, first.stderr[-2000:]
    second = _run(_cmd(out, "--json", n_trials=6))
    assert second.returncode == 0, second.stderr[-2000:]
    summary = json.loads(second.stdout)
    assert summary["trials"] == 6
    assert Path(summary["records_csv"]).exists() and Path(summary["pareto_json"]).exists()
    assert summary["best_spec"] and summary["best"]["size_mb"] <= 1.0
    db = out / "study.db"
    assert optuna.get_all_study_names(f"sqlite:///{db}") == ["lightmark-smoke"]
    study = _load(f"sqlite:///{db}")
    assert len(study.trials) == 6
    for trial in study.trials:
        if trial.user_attrs["size_mb"] > 1.0:
            assert trial.user_attrs["train_seconds"] == 0 and not trial.intermediate_values
    assert all(n == 1 for n in testing.trainings(out).values())


@pytest.mark.slow
def test_two_workers_on_one_journal_lose_and_duplicate_nothing(tmp_path):
    out = tmp_path / "run"
    journal = tmp_path / "shared.log"
    result = _run(_cmd(out, "--workers", "2", "--storage", f"journal:{journal}", "--budget-mb", "3",
                       "--pruner", "none", n_trials=10), epoch_s=0.3)
    assert result.returncode == 0, result.stderr[-3000:]
    study = _load(f"journal:{journal}")
    trials = study.trials
    assert len(trials) == 10  # exactly the target: no overshoot
    assert sorted(t.number for t in trials) == list(range(10))
    assert all(t.state == TrialState.COMPLETE for t in trials)
    assert len({t.user_attrs["pid"] for t in trials}) == 2  # both workers took trials
    assert all("size_mb" in t.user_attrs for t in trials)
    trained = testing.trainings(out)
    assert all(n == 1 for n in trained.values())  # no architecture trained twice
    feasible = {t.user_attrs["key"] for t in trials if t.user_attrs["status"] == "complete"}
    assert set(trained) == feasible


@pytest.mark.slow
def test_sigkill_mid_trial_then_rerun_retries_it_and_keeps_finished_ones(tmp_path):
    out = tmp_path / "run"
    cmd = _cmd(out, "--budget-mb", "50", "--pruner", "none", n_trials=4)
    proc = _start(cmd, epoch_s=1.5)
    killed = _wait_for_training(out / "study.db", proc)
    before = {t.number: t for t in _load(f"sqlite:///{out / 'study.db'}").trials
              if t.state == TrialState.COMPLETE}
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    study = _load(f"sqlite:///{out / 'study.db'}")
    assert study.trials[killed].state == TrialState.RUNNING  # left behind by the dead process

    result = _run(cmd, epoch_s=0.05)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "re-queued trial(s)" in result.stderr
    study = _load(f"sqlite:///{out / 'study.db'}")
    trials = {t.number: t for t in study.trials}
    dead = trials[killed]
    assert dead.state == TrialState.FAIL and "worker died" in dead.user_attrs["reason"]
    retry = [t for t in study.trials if t.user_attrs.get("retry_of") == killed]
    assert len(retry) == 1 and retry[0].state == TrialState.COMPLETE
    assert retry[0].user_attrs["spec"] == dead.user_attrs["spec"]
    for number, trial in before.items():  # finished trials intact
        assert trials[number].state == TrialState.COMPLETE and trials[number].values == trial.values
    assert sum(t.state == TrialState.COMPLETE for t in study.trials) == 4
    log = (out / "candidates" / dead.user_attrs["key"] / "trainings.log").read_text().splitlines()
    assert len(log) == 2 and log[1].endswith("start at epoch 1")  # resumed from its checkpoint


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_sigint_stops_with_exit_130_and_a_consistent_study(tmp_path, signum):
    out = tmp_path / "run"
    cmd = _cmd(out, "--budget-mb", "50", "--pruner", "none", n_trials=3)
    # 4 s epochs: the signal must land mid-trial even when a loaded machine makes polling slow
    proc = _start(cmd, epoch_s=4.0)
    number = _wait_for_training(out / "study.db", proc)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err[-2000:]
    study = _load(f"sqlite:///{out / 'study.db'}")
    states = {t.number: t.state for t in study.trials}
    assert TrialState.RUNNING not in states.values()
    interrupted = study.trials[number]
    assert interrupted.state == TrialState.FAIL and interrupted.user_attrs["reason"] == "interrupted"
    waiting = [t for t in study.trials if t.state == TrialState.WAITING]
    assert len(waiting) == 1 and waiting[0].user_attrs["retry_of"] == number
    assert (out / "records.csv").exists()

    result = _run(cmd, epoch_s=0.05)
    assert result.returncode == 0, result.stderr[-3000:]
    study = _load(f"sqlite:///{out / 'study.db'}")
    assert sum(t.state == TrialState.COMPLETE for t in study.trials) == 3
    retry = [t for t in study.trials if t.user_attrs.get("retry_of") == number]
    assert retry and retry[0].state == TrialState.COMPLETE


def test_space_flags_narrow_the_file(tmp_path):
    import argparse

    from lightmark.cli.search import build_space
    from lightmark.errors import ConfigError

    space_file = tmp_path / "s.toml"
    space_file.write_text("n_stacks = [1, 2, 3]\nattention = ['none', 'ca']\n")
    args = argparse.Namespace(space=space_file, stacks="1-2", depth="2,5", channels="32-64",
                              attention=None, coordconv="false")
    space = build_space(args, 64)
    assert space.n_stacks == (1, 2) and space.depth == (2,)  # depth 5 does not fit 64 px
    assert space.channels == (32, 40, 48, 56, 64)  # channel ranges step by 8 by default
    assert space.attention == ("none", "ca") and space.coordconv == (False,)
    args.channels = "32-64:16"
    assert build_space(args, 64).channels == (32, 48, 64)
    args.channels = "36"
    with pytest.raises(ConfigError, match="--channels"):
        build_space(args, 64)


def test_prescreen_tries_the_proxys_choices_first_once(tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    cmd = _cmd(out, "--stacks", "1", "--depth", "2", "--channels", "16,24", "--prescreen", "naswot:6", n_trials=5)
    code, err = _in_process(monkeypatch, capsys, cmd)
    assert code == 0, err[-2000:]
    assert "--prescreen naswot:6: 3 of 6 random feasible architectures chosen by naswot" in err
    scores = (out / "prescreen-naswot.csv").read_text().splitlines()
    assert scores[0] == "spec,score" and len(scores) == 7  # K scores kept for a resume
    trials = _load(f"sqlite:///{out / 'study.db'}").trials
    labels = [t.user_attrs.get("label") for t in trials]
    assert labels[:3] == ["prescreen naswot:6 #1", "prescreen naswot:6 #2", "prescreen naswot:6 #3"]
    code, err = _in_process(monkeypatch, capsys, cmd[:-2] + ["--n-trials", "7"] + cmd[-2:])  # a resume
    assert code == 0, err[-2000:]  # ... that enqueues nothing twice
    labels = [t.user_attrs.get("label") for t in _load(f"sqlite:///{out / 'study.db'}").trials]
    assert len(labels) == 7 and sum(bool(label) for label in labels) == 3


def test_prescreen_with_an_unknown_proxy_exits_2(tmp_path, monkeypatch, capsys):
    code, err = _in_process(monkeypatch, capsys, _cmd(tmp_path / "run", "--prescreen", "synflow:8"))
    assert code == 2 and "--prescreen 'synflow:8'" in err
    code, err = _in_process(monkeypatch, capsys, _cmd(tmp_path / "run", "--prescreen", "naswot"))
    assert code == 2 and "PROXY:K" in err


def test_without_n_trials_the_search_takes_the_suggested_count(tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    cmd = [c for c in _cmd(out, "--stacks", "1", "--depth", "2", "--channels", "16,24") if c not in ("--n-trials", "4")]
    code, err = _in_process(monkeypatch, capsys, cmd)
    assert code == 0, err[-2000:]
    # 1 x 1 x 2 widths x 3 attentions x 2 CoordConv = 12 architectures, all within 1 MiB: train them all
    assert "--n-trials 12: the space has 12 architectures within the budget" in err
    assert len(_load(f"sqlite:///{out / 'study.db'}").trials) == 12


def test_dashboard_hint_prints_the_command_only_when_it_is_installed(monkeypatch):
    from lightmark.cli import search as cli_search

    url = "sqlite:///runs/search/study.db"
    monkeypatch.setattr(cli_search.shutil, "which", lambda name: f"/usr/bin/{name}")
    assert cli_search.dashboard_hint(url) == f"watch it live: optuna-dashboard {url}"
    monkeypatch.setattr(cli_search.shutil, "which", lambda name: None)
    hint = cli_search.dashboard_hint(url)
    assert "not installed" in hint and "pip install -e '.[dashboard]'" in hint and url in hint
