"""Two workers against a real PostgreSQL server on loopback (Optuna RDB storage + heartbeats).

Needs the server binaries (Debian: `apt-get install postgresql`, which provides
/usr/lib/postgresql/<v>/bin/initdb and pg_ctl) and psycopg2 (`pip install 'lightmark[postgres]'`).
PostgreSQL refuses to run as root, so as root the server runs as the `postgres` user (runuser).
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
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


@pytest.fixture
def postgres_url():
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
    data, sock = root / "data", root / "sock"
    sock.mkdir()
    if owner is not None:
        for path in (root, sock):
            os.chown(path, owner.pw_uid, owner.pw_gid)
    port = _free_port()
    env = {**os.environ, "LC_ALL": "C"}
    run = lambda *cmd: subprocess.run([*prefix, *map(str, cmd)], check=True, capture_output=True,  # noqa: E731
                                      text=True, env=env, timeout=120)
    try:
        run(pg_bin / "initdb", "-D", data, "-U", "lightmark", "--auth=trust", "-E", "UTF8")
        run(pg_bin / "pg_ctl", "-D", data, "-l", root / "server.log", "-w", "-o",
            f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=off", "start")
    except subprocess.CalledProcessError as exc:
        shutil.rmtree(root, ignore_errors=True)
        pytest.skip(f"could not start PostgreSQL: {exc.stderr.strip()[-300:]}")
    try:
        import psycopg2

        conn = psycopg2.connect(host="127.0.0.1", port=port, user="lightmark", dbname="postgres")
        conn.autocommit = True
        conn.cursor().execute("CREATE DATABASE optuna")
        conn.close()
        yield f"postgresql+psycopg2://lightmark@127.0.0.1:{port}/optuna"
    finally:
        subprocess.run([*prefix, str(pg_bin / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
                       capture_output=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)


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
