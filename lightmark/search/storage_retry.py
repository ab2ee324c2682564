"""A study's database goes away: every storage call retried with a bounded backoff, and said so.

A study on PostgreSQL (or MySQL) lives on another machine: a restart, a failover or a cut link makes
every call fail for a while. `RetryingStorage` wraps a worker's Optuna storage so that each call (ask,
tell, a user attribute, a read) that fails because the server cannot be reached is tried again after
1, 2, 4, ... s (each wait at most 60 s) until the waits add up to the bound, `LIGHTMARK_STORAGE_RETRY_S`
(default 300 s: 11 attempts), with one line on stderr per failed attempt:

    lightmark: storage postgresql://lightmark@db:5432/optuna unreachable, retrying in 4 s (attempt 3/11): ...

Past the bound the call raises `StorageUnavailableError` (exit status 3), naming the URL without its
password. Two kinds of call try once instead: the trial's heartbeat (a missed beat is harmless, the next
one tries again) and code inside `single_attempt()` (a trial's per-epoch reports and the live view:
training goes on while the database is away, and its result is written when it is back).

Errors that waiting cannot fix (a wrong password, a database that does not exist, an unknown host)
are not retried. This module is the only retry loop around the storage: everything goes through
`retrying`.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

import optuna
from optuna.storages import BaseStorage
from optuna.trial import TrialState
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, make_url

from lightmark.errors import ConfigError, StorageUnavailableError
from lightmark.search.optuna_compat import BaseHeartbeat

RETRY_ENV = "LIGHTMARK_STORAGE_RETRY_S"
DEFAULT_RETRY_S = 300.0
FIRST_WAIT_S = 1.0
MAX_WAIT_S = 60.0
# Failures no wait can cure: fail at once (the message still names the URL without its password).
PERMANENT = ("password authentication failed", "does not exist", "could not translate host name",
             "no pg_hba.conf entry", "access denied", "unknown database", "no password supplied")
# libpq: how long a connection attempt, or unacknowledged data on a cut link, may hang before failing
# (without these a dead link hangs a call for the kernel's TCP timeout: minutes).
PG_CONNECT_ARGS = {"connect_timeout": 5, "keepalives": 1, "keepalives_idle": 5, "keepalives_interval": 2,
                   "keepalives_count": 3, "tcp_user_timeout": 10000}

T = TypeVar("T")
_local = threading.local()


def retry_bound() -> float:
    """LIGHTMARK_STORAGE_RETRY_S: seconds of waiting between attempts in all (0: one attempt)."""
    text = os.environ.get(RETRY_ENV, "").strip()
    if not text:
        return DEFAULT_RETRY_S
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:  # also NaN
        raise ConfigError(f"{RETRY_ENV}={text!r}: expected seconds >= 0 (default {DEFAULT_RETRY_S:g})")
    return value


def retry_delays(total_s: float) -> list[float]:
    """The waits between attempts: 1, 2, 4, ... s, each at most 60, the last cut so they add up to `total_s`."""
    delays: list[float] = []
    wait, left = FIRST_WAIT_S, total_s
    while left > 1e-9:
        delays.append(min(wait, MAX_WAIT_S, left))
        left -= delays[-1]
        wait *= 2
    return delays


def redact_url(url: str) -> str:
    """The storage URL without its password (`postgresql://user@host:port/db`), for every message."""
    try:
        parsed = make_url(url)
    except Exception:  # noqa: BLE001 - not a database URL (a journal path): nothing to hide
        return url
    if parsed.password is None:
        return url
    return URL.create(parsed.drivername, parsed.username, None, parsed.host, parsed.port, parsed.database,
                      parsed.query).render_as_string(hide_password=False)


def connect_args(url: str) -> dict[str, Any]:
    """Timeouts for the libpq drivers (psycopg2, psycopg); other drivers keep theirs."""
    try:
        parsed = make_url(url)
    except Exception:  # noqa: BLE001
        return {}
    if parsed.get_backend_name() == "postgresql" and parsed.get_driver_name() in ("psycopg2", "psycopg"):
        return dict(PG_CONNECT_ARGS)
    return {}


def unreachable(exc: BaseException) -> bool:
    """True for a failure to reach the server (connection refused, reset, timed out, server shutting down);
    False for everything else, including the failures that waiting cannot fix (PERMANENT)."""
    inner = exc.__cause__ if isinstance(exc, optuna.exceptions.StorageInternalError) else exc
    if not isinstance(inner, (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.DBAPIError)):
        return False
    if not isinstance(inner, (sa_exc.OperationalError, sa_exc.InterfaceError)) and not inner.connection_invalidated:
        return False
    text = str(getattr(inner, "orig", None) or inner).lower()
    return not any(phrase in text for phrase in PERMANENT)


def _reason(exc: BaseException, url: str) -> str:
    inner = exc.__cause__ if isinstance(exc, optuna.exceptions.StorageInternalError) and exc.__cause__ else exc
    orig = getattr(inner, "orig", None) or inner
    lines = [line.strip() for line in str(orig).splitlines() if line.strip()]
    text = f"{type(orig).__name__}: {lines[0] if lines else ''}"[:200]
    password = _password(url)
    return text.replace(password, "***") if password else text


def _password(url: str) -> str | None:
    try:
        return make_url(url).password
    except Exception:  # noqa: BLE001
        return None


@contextlib.contextmanager
def single_attempt() -> Iterator[None]:
    """Storage calls in this block (this thread) try once: an unreachable server raises
    StorageUnavailableError at once, for callers that have something better to do than wait."""
    previous = getattr(_local, "once", False)
    _local.once = True
    try:
        yield
    finally:
        _local.once = previous


def retrying(call: Callable[[], T], url: str, delays: Sequence[float] | None = None) -> T:
    """`call()`, retried while the server is unreachable (see the module docstring)."""
    delays = retry_delays(retry_bound()) if delays is None else list(delays)
    attempts = 1 if getattr(_local, "once", False) else len(delays) + 1
    shown = redact_url(url)
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except Exception as exc:  # noqa: BLE001 - sorted by unreachable(): anything else is raised as it is
            if not unreachable(exc):
                raise
            reason = _reason(exc, url)
        if attempt < attempts:
            wait = delays[attempt - 1]
            print(f"lightmark: storage {shown} unreachable, retrying in {wait:g} s (attempt {attempt}/{attempts}): "
                  f"{reason}", file=sys.stderr, flush=True)
            time.sleep(wait)
    if attempts == 1 and getattr(_local, "once", False):
        raise StorageUnavailableError(f"storage {shown} unreachable ({reason})")
    raise StorageUnavailableError(
        f"storage {shown} unreachable after {attempts} attempt(s) over {sum(delays):g} s ({reason}); "
        f"what finished is kept (the candidate cache of the run directory) and is written to the study when the "
        f"same command runs again ({RETRY_ENV} sets how long to wait, default {DEFAULT_RETRY_S:g} s)")


def _retried(name: str) -> Callable[..., Any]:
    def method(self: RetryingStorage, *args: Any, **kwargs: Any) -> Any:
        bound = getattr(self.backend, name)
        return retrying(lambda: bound(*args, **kwargs), self.url, self.delays)

    method.__name__ = name
    return method


class RetryingStorage(BaseStorage, BaseHeartbeat):
    """An Optuna storage whose every call goes through `retrying` (the heartbeat tries once)."""

    def __init__(self, backend: BaseStorage, url: str, delays: Sequence[float] | None = None) -> None:
        self.backend = backend
        self.url = url
        self.delays = retry_delays(retry_bound()) if delays is None else list(delays)

    create_new_study = _retried("create_new_study")
    delete_study = _retried("delete_study")
    set_study_user_attr = _retried("set_study_user_attr")
    set_study_system_attr = _retried("set_study_system_attr")
    get_study_id_from_name = _retried("get_study_id_from_name")
    get_study_name_from_id = _retried("get_study_name_from_id")
    get_study_directions = _retried("get_study_directions")
    get_study_user_attrs = _retried("get_study_user_attrs")
    get_study_system_attrs = _retried("get_study_system_attrs")
    get_all_studies = _retried("get_all_studies")
    create_new_trial = _retried("create_new_trial")
    set_trial_param = _retried("set_trial_param")
    get_trial_id_from_study_id_trial_number = _retried("get_trial_id_from_study_id_trial_number")
    get_trial_number_from_id = _retried("get_trial_number_from_id")
    get_trial_param = _retried("get_trial_param")
    set_trial_intermediate_value = _retried("set_trial_intermediate_value")
    set_trial_user_attr = _retried("set_trial_user_attr")
    set_trial_system_attr = _retried("set_trial_system_attr")
    get_trial = _retried("get_trial")
    get_all_trials = _retried("get_all_trials")
    get_n_trials = _retried("get_n_trials")
    get_best_trial = _retried("get_best_trial")
    get_trial_params = _retried("get_trial_params")
    get_trial_user_attrs = _retried("get_trial_user_attrs")
    get_trial_system_attrs = _retried("get_trial_system_attrs")
    _get_stale_trial_ids = _retried("_get_stale_trial_ids")

    def set_trial_state_values(self, trial_id: int, state: TrialState, values: Sequence[float] | None = None) -> bool:
        """Retried like the rest; when an earlier attempt committed but its reply was lost, the retry finds
        the trial already in that state and says so (True) instead of failing."""
        tries = []

        def call() -> bool:
            tries.append(1)
            try:
                return self.backend.set_trial_state_values(trial_id, state=state, values=values)
            except optuna.exceptions.UpdateFinishedTrialError:
                if len(tries) > 1 and state.is_finished() and self.backend.get_trial(trial_id).state == state:
                    return True
                raise

        return retrying(call, self.url, self.delays)

    def remove_session(self) -> None:
        self.backend.remove_session()

    # -- the heartbeat: one try per beat -------------------------------------------------------
    def record_heartbeat(self, trial_id: int) -> None:
        try:
            self.backend.record_heartbeat(trial_id)  # type: ignore[attr-defined]
        except Exception as exc:  # noqa: BLE001 - an unreachable server skips a beat; the thread beats on
            if not unreachable(exc):
                raise

    def get_heartbeat_interval(self) -> int | None:
        getter = getattr(self.backend, "get_heartbeat_interval", None)
        return getter() if getter else None

    def get_heartbeat_stale_trial_callback(self) -> Any:
        getter = getattr(self.backend, "get_heartbeat_stale_trial_callback", None)
        return getter() if getter else None
