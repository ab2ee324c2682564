"""Where a study lives, and how trials orphaned by a dead worker are recovered.

- default: an SQLite file in the run directory (`<out>/study.db`), zero set-up, one writer;
- `--workers N > 1` with the default: a journal file in the run directory instead
  (`<out>/study.journal`, `JournalFileBackend`), because SQLite is not for parallel writers; once a
  run directory has a journal it keeps using it;
- `journal:PATH` or a path ending in .log/.jsonl/.journal: a journal file (one host or shared disk);
- `sqlite:///...`, `postgresql://...`, `mysql://...`: Optuna's RDB storage. Server databases get
  heartbeats, and trials whose worker stopped beating are failed and re-queued by Optuna
  (`RetryHeartbeatStaleTrialCallback`); every call to them is retried while the server is
  unreachable, within a bound (storage_retry.py).

SQLite and journal files have no heartbeat, so each trial stores the host, pid and process start
time of its worker; `recover_orphans` fails RUNNING trials whose process is gone (this host only)
and enqueues their architecture again. The runner's per-candidate checkpoint makes the retry
resume where the dead worker stopped.
"""

from __future__ import annotations

import os
import socket
import time
import warnings
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import optuna
from optuna.storages.journal import JournalFileBackend, JournalStorage
from optuna.trial import TrialState
from sqlalchemy import event
from sqlalchemy import exc as sa_exc

from lightmark.benchmarks.record import Status
from lightmark.errors import ConfigError
from lightmark.search.optuna_compat import study_storage, trial_id, with_read_cache
from lightmark.search.storage_retry import RetryingStorage, connect_args, redact_url, retrying

JOURNAL_SUFFIXES = (".log", ".jsonl", ".journal")
DEFAULT_SQLITE = "study.db"
DEFAULT_JOURNAL = "study.journal"
UNLABELLED_GRACE_S = 120
HEARTBEAT_INTERVAL_S = int(os.environ.get("LIGHTMARK_HEARTBEAT_S", "60"))
# Several hosts opening an empty server database at once race to create Optuna's tables; the losers
# see these (PostgreSQL's catalog, Optuna's version row). The winner's tables are there a moment later.
SCHEMA_RACE = ("duplicate key value", "already exists", "unique constraint")
SCHEMA_ATTEMPTS = 8


@dataclass(frozen=True)
class StorageChoice:
    """A storage URL every worker process can open, and a line for people saying why."""

    url: str
    kind: str  # sqlite | journal | rdb
    note: str = ""
    path: Path | None = None  # the file, for file storages


def choose_storage(url: str | None, run_dir: Path, workers: int = 1) -> StorageChoice:
    """Resolve `--storage` (or its absence) to a URL; see the module docstring."""
    run_dir = Path(run_dir)
    if url is None:
        journal, sqlite = run_dir / DEFAULT_JOURNAL, run_dir / DEFAULT_SQLITE
        if journal.exists():
            return StorageChoice(f"journal:{journal}", "journal", "", journal)
        if workers > 1 and not sqlite.exists():
            return StorageChoice(
                f"journal:{journal}", "journal",
                f"{workers} workers: using the journal file {journal} instead of SQLite "
                "(SQLite is not for parallel writers)",
                journal,
            )
        note = ""
        if workers > 1:
            note = (f"{sqlite} already holds this study: keeping SQLite for {workers} workers "
                    "(fine for long trials; use --storage journal:PATH for many fast writers)")
        return StorageChoice(f"sqlite:///{sqlite.resolve()}", "sqlite", note, sqlite)
    text = str(url)
    if text.startswith("journal:"):
        path = Path(text[len("journal:"):]).expanduser()
        return StorageChoice(f"journal:{path.resolve()}", "journal", "", path)
    if "://" not in text:
        path = Path(text).expanduser()
        if path.suffix in JOURNAL_SUFFIXES:
            return StorageChoice(f"journal:{path.resolve()}", "journal", "", path)
        if path.suffix in (".db", ".sqlite", ".sqlite3"):
            return StorageChoice(f"sqlite:///{path.resolve()}", "sqlite", "", path)
        raise ConfigError(
            f"--storage {text!r}: expected an Optuna storage URL (sqlite:///..., postgresql://...), "
            "journal:PATH, or a file ending in .db/.log/.jsonl/.journal"
        )
    if text.startswith("sqlite:"):
        path = Path(text.split(":///", 1)[-1]) if ":///" in text else None
        return StorageChoice(text, "sqlite", "", path)
    return StorageChoice(text, "rdb")


def open_storage(choice: StorageChoice | str) -> optuna.storages.BaseStorage:
    """Open the storage in this process (each worker opens its own)."""
    if isinstance(choice, str):
        choice = choose_storage(choice, Path("."))
    if choice.kind == "journal":
        assert choice.path is not None
        choice.path.parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(str(choice.path)))
    if choice.kind == "sqlite":
        if choice.path is not None:
            choice.path.parent.mkdir(parents=True, exist_ok=True)
        # Wait for the file lock instead of failing when two processes write at once.
        storage = optuna.storages.RDBStorage(
            choice.url, engine_kwargs={"connect_args": {"timeout": 60}}
        )
        _fast_sqlite(storage)
        return storage

    def open_once() -> optuna.storages.RDBStorage:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(
                choice.url,
                heartbeat_interval=HEARTBEAT_INTERVAL_S,
                grace_period=max(2 * HEARTBEAT_INTERVAL_S, 2),
                heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(
                    max_retry=3
                ),
                engine_kwargs={"pool_pre_ping": True, "connect_args": connect_args(choice.url)},
            )

    def connect() -> optuna.storages.RDBStorage:
        for attempt in range(1, SCHEMA_ATTEMPTS + 1):
            try:
                return open_once()
            except (sa_exc.IntegrityError, sa_exc.ProgrammingError) as exc:
                if attempt == SCHEMA_ATTEMPTS or not schema_race(exc):
                    raise
                time.sleep(0.25 * attempt)
        raise AssertionError("unreachable")

    try:
        backend = retrying(connect, choice.url)  # a server that is down at the start is waited for too
    except ImportError as exc:
        raise ConfigError(f"--storage {redact_url(choice.url)}: missing database driver ({exc}); "
                          "pip install 'lightmark[postgres]'") from None
    except Exception as exc:  # wrong password, no such database: a user-side problem
        if type(exc).__module__.startswith("sqlalchemy"):
            raise ConfigError(f"--storage {redact_url(choice.url)}: cannot connect "
                              f"({str(exc).splitlines()[0]})") from None
        raise
    return RetryingStorage(with_read_cache(backend), choice.url)


def schema_race(exc: BaseException) -> bool:
    """True when creating the study's tables failed because another process was creating them too."""
    text = str(getattr(exc, "orig", None) or exc).lower()
    return any(phrase in text for phrase in SCHEMA_RACE)


def _fast_sqlite(storage: Any) -> None:
    """WAL + synchronous=NORMAL: a trial writes ~40 user attributes, one commit each, and a
    default SQLite commit fsyncs. WAL also lets the live view read while a worker
    writes. A killed process loses nothing committed; only a power cut can drop the last commits."""
    def on_connect(connection: Any, _record: Any) -> None:
        cursor = connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    event.listen(storage.engine, "connect", on_connect)
    storage.engine.dispose()  # connections opened during set-up lack the pragmas


def has_heartbeat(storage: Any) -> bool:
    getter = getattr(storage, "get_heartbeat_interval", None)
    return bool(getter and getter())


# -- who runs a trial -------------------------------------------------------------------------
def process_identity() -> dict[str, Any]:
    """host, pid and the process start time (so a reused pid is not mistaken for our worker)."""
    return {"host": socket.gethostname(), "pid": os.getpid(), "pid_start": _start_time(os.getpid())}


def _start_time(pid: int) -> str:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[-1].split()[19]  # field 22: start time in clock ticks


def process_alive(host: str | None, pid: int | None, pid_start: str | None) -> bool | None:
    """True/False for a process on this host; None when it ran elsewhere (cannot tell)."""
    if not host or pid is None:
        return False
    if host != socket.gethostname():
        return None
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    if pid_start and _start_time(int(pid)) not in ("", pid_start):
        return False
    return True


def recover_orphans(study: optuna.Study, params_of: Any = None) -> list[int]:
    """Fail RUNNING trials whose worker process on this host is gone; re-queue their params.

    Returns the numbers of the recovered trials. Safe against a concurrent recovery: a trial
    another process already finished raises on update and is skipped.
    """
    storage = study_storage(study)
    if has_heartbeat(storage):
        return []  # Optuna's heartbeat handles it (fail_stale_trials + retry callback)
    recovered = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        attrs = trial.user_attrs
        if "host" not in attrs:
            # Asked but not yet labelled (a worker elsewhere, this very moment), or killed in
            # that instant: only an old one is an orphan.
            started = trial.datetime_start
            if started is None or (datetime.now() - started).total_seconds() < UNLABELLED_GRACE_S:
                continue
        else:
            alive = process_alive(attrs.get("host"), attrs.get("pid"), attrs.get("pid_start"))
            if alive is None or alive:
                continue
        reason = f"worker died (host {attrs.get('host')}, pid {attrs.get('pid')})"
        try:
            tid = trial_id(trial)
            storage.set_trial_user_attr(tid, "status", Status.FAILED)
            storage.set_trial_user_attr(tid, "reason", reason)
            storage.set_trial_user_attr(tid, "error", reason)
            storage.set_trial_user_attr(tid, "requeued", True)
            if params_of is not None and "size_mb" not in attrs:
                for key, value in params_of(trial).items():
                    storage.set_trial_user_attr(tid, key, value)
            if not storage.set_trial_state_values(tid, TrialState.FAIL):
                continue
        except (RuntimeError, optuna.exceptions.UpdateFinishedTrialError):
            continue
        requeue(study, trial, reason)
        recovered.append(trial.number)
    return recovered


def requeue(study: optuna.Study, trial: Any, reason: str) -> None:
    """Enqueue a failed trial's architecture again (params + fixed-candidate attributes)."""
    keep = {k: v for k, v in trial.user_attrs.items() if k in ("label", "key", "fixed_spec", "fixed_protocol")}
    study.enqueue_trial(
        dict(trial.params), user_attrs={**keep, "retry_of": trial.number, "retry_reason": reason}
    )
