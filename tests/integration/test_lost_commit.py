"""A commit that reaches the database but whose answer is lost leaves no zombie trial.

When the connection breaks between the server's COMMIT and the client hearing of it, the storage call fails
although its write landed, and it is sent again (Optuna's own retry of trial creation, and the reconnecting
storage's retry of every call). Creating a trial, or popping a queued one, then leaves one RUNNING trial that
no worker owns. Its first heartbeat is written in the same transaction that made it RUNNING, so the heartbeat
check fails it like any dead worker's trial and re-queues it. Real PostgreSQL and MariaDB; the lost answer is
injected after the real COMMIT (no server can be made to drop a connection at exactly that point on cue).
"""

from __future__ import annotations

import time

import optuna
import pytest
import sqlalchemy
from optuna.trial import TrialState

from yieldtune.study.storage import open_storage

BEATS = dict(heartbeat_interval=1, grace_period=2, max_retry=1)


@pytest.fixture(params=["postgres", "mysql"])
def url(request):
    return request.getfixturevalue("pg_url" if request.param == "postgres" else "mysql_url")


def lose_next_commit_answer(storage) -> list[bool]:
    """The next COMMIT of a transaction that writes a trial lands on the server; then the connection drops and
    the client gets the driver's own "connection lost" error instead of the answer."""
    from optuna.storages._rdb import models

    dialect, fired, armed = storage.engine.dialect, [], []
    real_commit = dialect.do_commit

    def note_trial_write(session, flush_context, instances) -> None:
        if any(isinstance(obj, models.TrialModel) for obj in (*session.new, *session.dirty)):
            armed.append(True)

    def commit_then_drop(dbapi_connection) -> None:
        real_commit(dbapi_connection)
        if armed and not fired:
            fired.append(True)
            if dialect.name == "postgresql":
                raise dialect.loaded_dbapi.OperationalError("server closed the connection unexpectedly")
            raise dialect.loaded_dbapi.OperationalError(2013, "Lost connection to MySQL server during query")

    sqlalchemy.event.listen(storage.scoped_session, "before_flush", note_trial_write)
    dialect.do_commit = commit_then_drop
    return fired


def reap(study: optuna.Study) -> dict[int, optuna.trial.FrozenTrial]:
    """Fail every trial whose heartbeat is older than the grace period, as any worker does between trials."""
    time.sleep(BEATS["grace_period"] + 1.5)
    optuna.storages.fail_stale_trials(study)
    return {t.number: t for t in study.get_trials(deepcopy=False)}


def test_a_created_trial_whose_commit_answer_was_lost_is_reaped(url):
    storage = open_storage(url, **BEATS)
    study = optuna.create_study(study_name="lost-create", storage=storage)
    fired = lose_next_commit_answer(storage)
    mine = study.ask()
    assert fired
    orphan = [t for t in study.get_trials(deepcopy=False) if t.number != mine.number]
    assert [t.state for t in orphan] == [TrialState.RUNNING]  # the landed first attempt: nobody works on it
    trials = reap(study)
    assert trials[orphan[0].number].state == TrialState.FAIL


def test_a_popped_trial_whose_commit_answer_was_lost_is_reaped_and_requeued(url):
    storage = open_storage(url, **BEATS)
    study = optuna.create_study(study_name="lost-pop", storage=storage)
    study.enqueue_trial({"x": 0.25})
    fired = lose_next_commit_answer(storage)
    mine = study.ask()
    assert fired and mine.number == 1  # the retried pop found the trial RUNNING already, so ask made a new one
    assert study.get_trials(deepcopy=False)[0].state == TrialState.RUNNING
    trials = reap(study)
    assert trials[0].state == TrialState.FAIL
    requeued = [t for t in trials.values() if t.system_attrs.get("failed_trial") == 0]
    assert [(t.state, t.system_attrs["fixed_params"]) for t in requeued] == [(TrialState.WAITING, {"x": 0.25})]
