"""Waiting out a lost database connection instead of dying on the first error.

A PostgreSQL/MySQL restart or failover in the middle of a study breaks every pooled connection and refuses
new ones for a while. Optuna's RDBStorage raises on the first failed call, which would kill the worker (and
leave its trial RUNNING until a heartbeat check). :class:`ReconnectingRDBStorage` retries each storage call
that failed because the connection was lost, with exponential backoff, for up to ``reconnect_timeout``
seconds, logging one line when the connection is lost and one when it is back. Pooled connections are
health-checked on checkout (``pool_pre_ping``), so the first call after the server returns reconnects.

A write whose commit reached the server just before the connection broke is sent again: a trial state change
then finds the trial already in that state and counts as done. Creating or popping a trial cannot be told apart
from its resend; if the break falls exactly inside its commit, the first attempt's trial is RUNNING with no
worker, and its first heartbeat, written in that same commit
(:class:`~yieldtune.study.liveness.HeartbeatInStartTransaction`), lets the heartbeat check reap and re-queue it.
"""

from __future__ import annotations

import functools
import logging
import threading
import time

import optuna

from yieldtune.study.liveness import HeartbeatInStartTransaction

DEFAULT_RECONNECT_TIMEOUT_S = 300.0
_BACKOFF_START_S, _BACKOFF_MAX_S = 0.5, 10.0

# Every storage call a worker makes (BaseStorage, BaseHeartbeat, and the private ones Optuna's _CachedStorage
# calls on its backend); each is one short transaction.
_RETRIED = (
    "_create_new_trial", "_get_best_trial_id", "_get_trials", "_set_trial_param",
    "create_new_study", "delete_study", "set_study_user_attr", "set_study_system_attr", "get_study_id_from_name",
    "get_study_name_from_id", "get_study_directions", "get_study_user_attrs", "get_study_system_attrs",
    "get_all_studies", "create_new_trial", "set_trial_param", "get_trial_id_from_study_id_trial_number",
    "get_trial_param", "set_trial_state_values", "set_trial_intermediate_value", "set_trial_user_attr",
    "set_trial_system_attr", "get_trial", "get_all_trials", "get_best_trial", "get_trial_user_attrs",
    "get_trial_system_attrs", "record_heartbeat", "_get_stale_trial_ids",
)

logger = logging.getLogger(__name__)


def is_connection_lost(err: BaseException) -> bool:
    """Whether ``err`` (or what it wraps) says the database connection broke or could not be made."""
    import sqlalchemy.exc

    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, sqlalchemy.exc.DBAPIError) and err.connection_invalidated:
            return True
        if isinstance(err, (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError, ConnectionError)):
            return True
        if type(err).__name__ in ("OperationalError", "InterfaceError") and "sqlite" not in type(err).__module__:
            return True  # the driver's own class (psycopg, pymysql), seen before SQLAlchemy wraps it
        err = err.__cause__ or err.__context__
    return False


class ReconnectingRDBStorage(optuna.storages.RDBStorage):
    """Optuna's RDBStorage whose calls wait out a lost connection (server restart, failover, network blip)."""

    def __init__(self, *args, reconnect_timeout: float = DEFAULT_RECONNECT_TIMEOUT_S, label: str = "database",
                 **kwargs) -> None:
        self._reconnect_timeout = float(reconnect_timeout)
        self._label = label
        self._outage_lock = threading.Lock()
        self._outage_since: float | None = None
        super().__init__(*args, **kwargs)

    def __getstate__(self) -> dict:
        state = super().__getstate__()
        state.pop("_outage_lock", None)
        return state

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        self._outage_lock = threading.Lock()

    def _lost(self, err: BaseException) -> float:
        """Note the outage (logging it once) and return when it began."""
        with self._outage_lock:
            if self._outage_since is None:
                self._outage_since = time.monotonic()
                cause = err.__cause__ or err
                reason = " ".join(str(getattr(cause, "orig", None) or cause).split())[:160]
                logger.warning(f"storage {self._label}: connection lost ({type(cause).__name__}: {reason}); retrying "
                               f"with backoff for up to {self._reconnect_timeout:g} s")
            return self._outage_since

    def _back(self) -> None:
        with self._outage_lock:
            if self._outage_since is not None:
                logger.info(f"storage {self._label}: reconnected after {time.monotonic() - self._outage_since:.1f} s")
                self._outage_since = None

    def _call(self, method, name: str, *args, **kwargs):
        delay = _BACKOFF_START_S
        retried = False
        while True:
            try:
                result = method(self, *args, **kwargs)
            except optuna.exceptions.UpdateFinishedTrialError:
                # A state change whose commit reached the server just before the connection broke: done.
                if retried and name == "set_trial_state_values":
                    trial_id, state = args[0], kwargs.get("state", args[1] if len(args) > 1 else None)
                    if super().get_trial(trial_id).state == state:
                        self._back()
                        return True
                raise
            except Exception as err:
                if not is_connection_lost(err):
                    raise
                since = self._lost(err)
                if time.monotonic() - since > self._reconnect_timeout:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, _BACKOFF_MAX_S)
                retried = True
                continue
            if self._outage_since is not None:
                self._back()
            return result


def _retrying(name: str):
    method = getattr(optuna.storages.RDBStorage, name)

    @functools.wraps(method)
    def call(self: ReconnectingRDBStorage, *args, **kwargs):
        return self._call(method, name, *args, **kwargs)

    return call


for _name in _RETRIED:
    setattr(ReconnectingRDBStorage, _name, _retrying(_name))


class HeartbeatReconnectingRDBStorage(HeartbeatInStartTransaction, ReconnectingRDBStorage):
    """:class:`ReconnectingRDBStorage` with the first heartbeat in the transaction that starts a trial."""


__all__ = ["DEFAULT_RECONNECT_TIMEOUT_S", "HeartbeatReconnectingRDBStorage", "ReconnectingRDBStorage",
           "is_connection_lost"]
