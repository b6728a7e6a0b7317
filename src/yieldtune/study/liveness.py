"""Heartbeats from a trial's first moment, and for workers behind the gRPC storage proxy.

Optuna starts a trial's heartbeat thread only after ``study.ask`` has created the trial RUNNING and sampled its
relative parameters, and ``fail_stale_trials`` never reaps a RUNNING trial that has no heartbeat yet: a worker
SIGKILLed in that window (seconds with a slow sampler on loaded cores) left a zombie that every other worker
then waited on. The storage closes it: on a database, the transaction that makes a trial RUNNING (its creation,
or the pop of a WAITING trial) also writes its first heartbeat (:class:`HeartbeatInStartTransaction`), so even a
trial whose commit landed while its answer was lost to a broken connection, and which the retried call then
left to nobody, goes stale and is reaped. Behind the gRPC proxy the first beat follows the call at once
(:class:`HeartbeatFromStart`).

Optuna's gRPC client (:class:`optuna.storages.GrpcStorageProxy`) sends no heartbeats, so a worker that dies
behind ``tune proxy`` would leave its trial RUNNING for ever. :class:`GrpcStorageWithHeartbeat` adds Optuna's
own heartbeat interface (``BaseHeartbeat``) on top of the client: Optuna's heartbeat thread then writes a trial
system attribute (:data:`BEAT_ATTR`) every ``heartbeat_interval`` seconds, which travels through the proxy like
any other write. A trial is stale when that attribute has not changed for its ``grace_period`` seconds as seen
by the watcher's own clock (so clocks of different machines never need to agree). Stale trials are failed and
re-queued by Optuna's ``fail_stale_trials`` with ``RetryHeartbeatStaleTrialCallback(max_retry)``, the same rule
as for direct database connections: by any worker between trials, and by ``tune proxy`` itself
(:func:`watch_silent_trials`) every few seconds.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import optuna
import sqlalchemy
from optuna.storages import GrpcStorageProxy
from optuna.storages._heartbeat import BaseHeartbeat  # Optuna exports no public name for it
from optuna.trial import FrozenTrial, TrialState

logger = logging.getLogger(__name__)

# {"at": sender's time.time(), "grace_period": s, "max_retry": n}; only "at" changing matters to the watcher.
BEAT_ATTR = "yieldtune:heartbeat"


class HeartbeatFromStart:
    """gRPC client mixin: a trial gets its first heartbeat right after the storage call that makes it RUNNING.

    Covers the pop of a WAITING trial (``set_trial_state_values(RUNNING)``, enqueued or re-queued) here and the
    creation in :meth:`GrpcStorageWithHeartbeat.create_new_trial`. A WAITING trial gets no beat: it would be
    stale the moment it is popped. Databases write the beat inside the starting transaction instead
    (:class:`HeartbeatInStartTransaction`).
    """

    def set_trial_state_values(self, trial_id: int, state: TrialState, values=None) -> bool:
        changed = super().set_trial_state_values(trial_id, state=state, values=values)
        if changed and state == TrialState.RUNNING:
            self._first_heartbeat(trial_id)
        return changed

    def _first_heartbeat(self, trial_id: int) -> None:
        from optuna.storages._heartbeat import is_heartbeat_enabled  # Optuna exports no public name for it

        if is_heartbeat_enabled(self):
            self.record_heartbeat(trial_id)


_STARTED = "yieldtune:started_trials"  # session.info key: trial rows this transaction inserted or changed


def _note_trial_writes(session, flush_context=None, instances=None) -> None:
    from optuna.storages._rdb import models  # Optuna exports no public name for its tables

    started = session.info.setdefault(_STARTED, [])
    started += [obj for obj in session.new if isinstance(obj, models.TrialModel)]
    started += [obj for obj in session.dirty
                if isinstance(obj, models.TrialModel) and sqlalchemy.inspect(obj).attrs.state.history.has_changes()]


def _beat_started_trials(session) -> None:
    """Before COMMIT: a heartbeat row, dated by the database's clock, for each trial this transaction left RUNNING."""
    from optuna.storages._rdb import models

    _note_trial_writes(session)  # changes not flushed yet
    if not session.info.get(_STARTED):
        return
    session.flush()  # ids for new rows, and the template path's final state
    started = session.info.pop(_STARTED)
    for trial_id in {t.trial_id for t in started if t.state == TrialState.RUNNING}:
        if models.TrialHeartbeatModel.where_trial_id(trial_id, session) is None:  # not on a state write of a live trial
            session.add(models.TrialHeartbeatModel(trial_id=trial_id))  # the column defaults to the server's now


def _forget_trial_writes(session, *_) -> None:
    session.info.pop(_STARTED, None)


class HeartbeatInStartTransaction:
    """RDBStorage mixin: the transaction that makes a trial RUNNING writes its first heartbeat too.

    Optuna resends a trial creation that failed in its COMMIT, and :class:`~yieldtune.study.reconnect.
    ReconnectingRDBStorage` resends any call that lost its connection; where the COMMIT had landed, the first
    attempt's trial (created or popped) is RUNNING with no worker. A beat written by a later call would never
    come for it; written in the same transaction, it ages, and ``fail_stale_trials`` reaps and re-queues the
    trial like a dead worker's. SQLAlchemy session events on the storage's own sessions, so every path Optuna
    takes to a RUNNING row is covered without copying its code.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._beat_in_start_transaction()

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)  # a new engine and session factory
        self._beat_in_start_transaction()

    def _beat_in_start_transaction(self) -> None:
        if self.heartbeat_interval is None:
            return
        for name, handler in (("before_flush", _note_trial_writes), ("before_commit", _beat_started_trials),
                              ("after_commit", _forget_trial_writes),
                              ("after_soft_rollback", _forget_trial_writes)):
            sqlalchemy.event.listen(self.scoped_session, name, handler)


class HeartbeatRDBStorage(HeartbeatInStartTransaction, optuna.storages.RDBStorage):
    """Optuna's RDBStorage (SQLite) with the first heartbeat in the transaction that starts a trial."""


def _retry_stale_trial(study: optuna.Study, trial: FrozenTrial) -> None:
    """Re-queue a stale trial with the ``max_retry`` its own worker announced (its study file's setting)."""
    beat = trial.system_attrs.get(BEAT_ATTR) or {}
    callback = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=beat.get("max_retry"))
    callback(study, trial)


def proxied_heartbeat_age(trial: FrozenTrial) -> float | None:
    """Seconds since a proxied worker's last heartbeat for ``trial`` by the sender's clock (None: no such beat)."""
    beat = trial.system_attrs.get(BEAT_ATTR)
    if not isinstance(beat, dict) or not isinstance(beat.get("at"), (int, float)):
        return None
    return max(0.0, time.time() - float(beat["at"]))


class GrpcStorageWithHeartbeat(HeartbeatFromStart, GrpcStorageProxy, BaseHeartbeat):
    """Optuna's gRPC client plus heartbeats carried as a trial system attribute through the proxy (the first
    one as the trial starts)."""

    def __init__(self, *, host: str, port: int, heartbeat_interval: int, grace_period: int,
                 max_retry: int | None, log: Callable[[str], None] | None = None) -> None:
        super().__init__(host=host, port=port)
        self._interval = int(heartbeat_interval)
        self._log = log if log is not None else logger.warning  # a worker that reaps a trial says so too
        self._announce = {"grace_period": int(grace_period), "max_retry": max_retry}
        self._seen: dict[int, tuple[object, float]] = {}  # trial id -> (last beat seen, when first seen)

    def create_new_trial(self, study_id: int, template_trial: FrozenTrial | None = None) -> int:
        trial_id = super().create_new_trial(study_id, template_trial)  # the gRPC client has no _create_new_trial
        if template_trial is None or template_trial.state == TrialState.RUNNING:
            self._first_heartbeat(trial_id)
        return trial_id

    def record_heartbeat(self, trial_id: int) -> None:
        import grpc

        try:
            self.set_trial_system_attr(trial_id, BEAT_ATTR, {"at": time.time(), **self._announce})
        except (optuna.exceptions.UpdateFinishedTrialError, KeyError):
            pass  # the trial ended (or was failed as stale) meanwhile: nothing to keep alive
        except grpc.RpcError:
            pass  # proxy briefly unreachable: the next beat retries; a long outage makes the trial stale

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        now = time.monotonic()
        running = self.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,))
        stale = []
        for trial in running:
            beat = trial.system_attrs.get(BEAT_ATTR)
            if not isinstance(beat, dict):
                continue  # not a proxied worker's trial (direct connections have database heartbeats)
            last = self._seen.get(trial._trial_id)
            if last is None or last[0] != beat.get("at"):
                self._seen[trial._trial_id] = (beat.get("at"), now)
            elif now - last[1] > float(beat.get("grace_period", 0)):
                stale.append(trial._trial_id)
        alive = {t._trial_id for t in running}
        for trial_id in [t for t in self._seen if t not in alive]:
            del self._seen[trial_id]
        return stale

    def get_heartbeat_interval(self) -> int:
        return self._interval

    def get_heartbeat_stale_trial_callback(self) -> Callable[[optuna.Study, FrozenTrial], None]:
        def retry(study: optuna.Study, trial: FrozenTrial) -> None:
            beat = trial.system_attrs.get(BEAT_ATTR) or {}
            self._log(f"study {study.study_name!r} trial {trial.number}: no heartbeat for "
                      f"{beat.get('grace_period')} s -> FAIL, re-queued (max_retry {beat.get('max_retry')})")
            _retry_stale_trial(study, trial)

        return retry


def watch_silent_trials(host: str, port: int, *, every: float = 2.0, stop: threading.Event | None = None,
                        log: Callable[[str], None] | None = None) -> threading.Thread:
    """Start a daemon thread that fails and re-queues the stale trials of every study behind the proxy.

    It is a gRPC client of the proxy itself, so it sees exactly what the workers see and uses the same
    :class:`GrpcStorageWithHeartbeat` staleness rule and Optuna's own ``fail_stale_trials``.
    """
    stop = stop or threading.Event()
    connect_host = "127.0.0.1" if host in ("0.0.0.0", "", "[::]", "::") else host

    def loop() -> None:
        client = GrpcStorageWithHeartbeat(host=connect_host, port=port, heartbeat_interval=1, grace_period=0,
                                          max_retry=None, log=log)
        complained = False
        try:
            client.wait_server_ready(timeout=60)
        except Exception:  # the proxy never came up: the loop below reports what goes wrong
            pass
        while not stop.wait(every):
            try:
                for frozen in client.get_all_studies():
                    optuna.storages.fail_stale_trials(optuna.load_study(study_name=frozen.study_name,
                                                                        storage=client))
                complained = False
            except Exception as err:  # keep watching through database or network trouble
                if log is not None and not complained:
                    log(f"stale-trial watch: {type(err).__name__}: {err}; retrying every {every:g} s")
                complained = True

    thread = threading.Thread(target=loop, name="yieldtune-stale-trial-watch", daemon=True)
    thread.start()
    return thread


__all__ = ["BEAT_ATTR", "GrpcStorageWithHeartbeat", "HeartbeatFromStart", "HeartbeatInStartTransaction",
           "HeartbeatRDBStorage",
           "proxied_heartbeat_age", "watch_silent_trials"]
