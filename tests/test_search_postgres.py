"""Two workers against a real PostgreSQL server on loopback (Optuna RDB storage + heartbeats).

Needs the server binaries (Debian: `apt-get install postgresql`, which provides
/usr/lib/postgresql/<v>/bin/initdb and pg_ctl) and psycopg2 (`pip install 'lightmark[postgres]'`).
PostgreSQL refuses to run as root, so as root the server runs as the `postgres` user (runuser).
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from lightmark.search import testing

pytestmark = pytest.mark.slow


def _pg_bin() -> Path | None:
    for name in ("initdb",):
        found = shutil.which(name)
        if found:
            return Path(os.path.realpath(found)).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(candidates[-1]).parent if candidates else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PostgresServer:
    """A throw-away PostgreSQL server on loopback (trust auth: any password is accepted, so a URL may
    carry one to prove it is never printed); `stop()` and `start()` take it away and bring it back."""

    def __init__(self, pg_bin: Path, root: Path, port: int, prefix: list[str]) -> None:
        self.pg_bin, self.root, self.port, self.prefix = pg_bin, root, port, prefix
        self.url = f"postgresql+psycopg2://lightmark@127.0.0.1:{port}/optuna"

    def url_with_password(self, password: str) -> str:
        return f"postgresql+psycopg2://lightmark:{password}@127.0.0.1:{self.port}/optuna"

    def _ctl(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*self.prefix, str(self.pg_bin / "pg_ctl"), "-D", str(self.root / "data"), *args],
                              check=True, capture_output=True, text=True, env={**os.environ, "LC_ALL": "C"},
                              timeout=120)

    def start(self) -> None:
        self._ctl("-l", str(self.root / "server.log"), "-w", "-o",
                  f"-p {self.port} -k {self.root / 'sock'} -c listen_addresses=127.0.0.1 -c fsync=off", "start")

    def stop(self) -> None:
        self._ctl("-m", "fast", "-w", "stop")


@pytest.fixture
def postgres_server():
    pg_bin = _pg_bin()
    if pg_bin is None or not (pg_bin / "pg_ctl").exists():
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not found: apt-get install postgresql")
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        pytest.skip("psycopg2 not installed: pip install 'lightmark[postgres]'")
    prefix: list[str] = []
    owner = None
    if os.geteuid() == 0:
        try:
            import pwd

            owner = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no 'postgres' user to run the server as")
        prefix = ["runuser", "-u", "postgres", "--"]
    root = Path(tempfile.mkdtemp(prefix="lightmark-pg-", dir="/tmp"))
    (root / "sock").mkdir()
    if owner is not None:
        for path in (root, root / "sock"):
            os.chown(path, owner.pw_uid, owner.pw_gid)
    server = PostgresServer(pg_bin, root, _free_port(), prefix)
    try:
        subprocess.run([*prefix, str(pg_bin / "initdb"), "-D", str(root / "data"), "-U", "lightmark", "--auth=trust",
                        "-E", "UTF8"], check=True, capture_output=True, text=True, env={**os.environ, "LC_ALL": "C"},
                       timeout=120)
        server.start()
    except subprocess.CalledProcessError as exc:
        shutil.rmtree(root, ignore_errors=True)
        pytest.skip(f"could not start PostgreSQL: {exc.stderr.strip()[-300:]}")
    try:
        import psycopg2

        conn = psycopg2.connect(host="127.0.0.1", port=server.port, user="lightmark", dbname="postgres")
        conn.autocommit = True
        conn.cursor().execute("CREATE DATABASE optuna")
        conn.close()
        yield server
    finally:
        with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
            server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server):
    return postgres_server.url


def test_two_workers_share_a_postgresql_study(tmp_path, postgres_url):
    out = tmp_path / "run"
    env = {
        **os.environ,
        "LIGHTMARK_SEARCH_RUNNER": "lightmark.search.testing:synthetic_runner",
        "LIGHTMARK_SEARCH_SIZER": "lightmark.search.testing:synthetic_size_mb",
        "LIGHTMARK_FAKE_EPOCH_S": "0.3",
        "LIGHTMARK_HEARTBEAT_S": "2",
        "NO_ALBUMENTATIONS_UPDATE": "1",
    }
    cmd = [sys.executable, "-m", "lightmark.cli.main", "search", "--protocol", "smoke",
           "--budget-mb", "3", "--n-trials", "8", "--workers", "2", "--pruner", "none",
           "--storage", postgres_url, "--out", str(out), "--no-report"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.load_study(study_name="lightmark-smoke", storage=postgres_url)
    trials = study.trials
    assert len(trials) == 8 and all(t.state == TrialState.COMPLETE for t in trials)
    assert len({t.user_attrs["pid"] for t in trials}) == 2
    assert all(n == 1 for n in testing.trainings(out).values())
    assert study.user_attrs["protocol_name"] == "smoke"
    from lightmark.search.storage import choose_storage, has_heartbeat, open_storage

    assert has_heartbeat(open_storage(choose_storage(postgres_url, out)))  # workers beat


def test_hosts_starting_together_on_an_empty_database_all_open_it(postgres_url):
    """The first run of a multi-host search: every host creates Optuna's tables at once. Without the
    retry in open_storage about a third of such processes died with a catalog unique violation."""
    code = ("import optuna, sys\n"
            "from lightmark.search.storage import open_storage\n"
            "optuna.logging.set_verbosity(optuna.logging.ERROR)\n"
            "optuna.create_study(storage=open_storage(sys.argv[1]), study_name='race', load_if_exists=True)\n")
    procs = [subprocess.Popen([sys.executable, "-c", code, postgres_url], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for _ in range(4)]
    outputs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, "\n".join(outputs)[-3000:]
    assert [s.study_name for s in optuna.get_all_study_summaries(postgres_url)] == ["race"]


# -- the database goes away mid-search -----------------------------------------------------------------
FAKE = {
    "LIGHTMARK_SEARCH_RUNNER": "lightmark.search.testing:synthetic_runner",
    "LIGHTMARK_SEARCH_SIZER": "lightmark.search.testing:synthetic_size_mb",
    "LIGHTMARK_HEARTBEAT_S": "2",
    "NO_ALBUMENTATIONS_UPDATE": "1",
}


def _start_search(url: str, out: Path, n_trials: int, epoch_s: float, **env: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "lightmark.cli.main", "search", "--protocol", "smoke", "--budget-mb", "3",
           "--n-trials", str(n_trials), "--workers", "1", "--pruner", "none", "--storage", url,
           "--stacks", "1", "--depth", "2-3", "--channels", "16-48:8",  # every architecture trains
           "--out", str(out), "--no-report"]
    return subprocess.Popen(cmd, env={**os.environ, **FAKE, "LIGHTMARK_FAKE_EPOCH_S": str(epoch_s), **env},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _training_trial(url: str, proc: subprocess.Popen, timeout: float = 120) -> optuna.trial.FrozenTrial:
    """A RUNNING trial that has finished its first epoch (so it is mid-training now)."""
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[1][-2000:]
        with contextlib.suppress(KeyError):  # the study is not created yet
            for trial in optuna.load_study(study_name="lightmark-smoke", storage=url).trials:
                if trial.state == TrialState.RUNNING and trial.user_attrs.get("epoch", 0) >= 1:
                    return trial
        time.sleep(0.3)
    raise AssertionError("no trial reached epoch 1 in time")


def _complete_keys(url: str) -> set[str]:
    study = optuna.load_study(study_name="lightmark-smoke", storage=url)
    return {t.user_attrs["key"] for t in study.trials
            if t.state == TrialState.COMPLETE and t.user_attrs.get("status") == "complete"}


def _record_keys(out: Path) -> set[str]:
    return {p.parent.name for p in out.glob("candidates/*/record.json")
            if '"status": "complete"' in p.read_text()}


def test_a_database_stopped_for_seconds_mid_search_loses_nothing(tmp_path, postgres_server):
    out, url = tmp_path / "run", postgres_server.url_with_password("s3cret")
    proc = _start_search(url, out, n_trials=6, epoch_s=1.0)
    try:
        _training_trial(url, proc)
        postgres_server.stop()
        time.sleep(5)  # the trial trains on meanwhile; its end waits for the database
        postgres_server.start()
        stdout, stderr = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr[-3000:]
    assert "unreachable, retrying in 1 s (attempt 1/11)" in stderr
    assert "s3cret" not in stderr + stdout
    study = optuna.load_study(study_name="lightmark-smoke", storage=url)
    assert sum(t.state == TrialState.COMPLETE for t in study.trials) == 6
    assert not [t for t in study.trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    assert _complete_keys(url) == _record_keys(out)  # every result trained is in the study, and no other
    assert all(n == 1 for n in testing.trainings(out).values())  # and none trained twice


def test_past_the_retry_bound_the_search_exits_3_and_a_rerun_writes_what_was_trained(tmp_path, postgres_server):
    out, url = tmp_path / "run", postgres_server.url_with_password("s3cret")
    proc = _start_search(url, out, n_trials=3, epoch_s=1.5, LIGHTMARK_STORAGE_RETRY_S="3")
    try:
        key = _training_trial(url, proc).user_attrs["key"]
        postgres_server.stop()
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 3, stderr[-3000:]
    last = stderr.strip().splitlines()[-1]
    assert last.startswith(f"lightmark search: error: storage postgresql+psycopg2://lightmark@127.0.0.1:"
                           f"{postgres_server.port}/optuna unreachable after 3 attempt(s) over 3 s"), last
    assert "s3cret" not in stderr + stdout and "Traceback" not in stderr
    assert key in _record_keys(out)  # trained while the database was away, kept in the candidate cache

    postgres_server.start()
    again = _start_search(url, out, n_trials=3, epoch_s=0.1)
    stdout, stderr = again.communicate(timeout=300)
    assert again.returncode == 0, stderr[-3000:]
    assert key in _complete_keys(url) and _complete_keys(url) == _record_keys(out)  # written now, not lost
    assert testing.trainings(out)[key] == 1  # and not trained again
