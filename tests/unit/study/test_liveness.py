"""``HeartbeatFromStart``: a trial can go stale from the moment it is RUNNING, on a real SQLite storage."""

from __future__ import annotations

import time

import optuna
from optuna.trial import TrialState

from yieldtune.study.storage import open_storage


def _study(tmp_path, name, *, heartbeat=True):
    storage = open_storage(f"sqlite:///{tmp_path / name}.db", heartbeat=heartbeat, heartbeat_interval=1,
                           grace_period=1, max_retry=0)
    return optuna.create_study(study_name=name, storage=storage)


def test_a_trial_abandoned_right_after_ask_is_reaped(tmp_path):
    """study.ask starts no heartbeat thread: a worker that dies before the objective runs leaves only the
    beat the storage wrote when it created the trial, so fail_stale_trials reaps it."""
    study = _study(tmp_path, "asked")
    trial = study.ask()
    optuna.storages.fail_stale_trials(study)
    assert study.trials[trial.number].state == TrialState.RUNNING  # fresh: within the grace period
    time.sleep(2.5)  # past the 1 s grace period
    optuna.storages.fail_stale_trials(study)
    assert study.trials[trial.number].state == TrialState.FAIL


def test_a_waiting_trial_gets_its_first_beat_when_popped(tmp_path):
    """An enqueued (or re-queued) trial waits without a beat for as long as it takes, is not stale the moment
    a worker pops it, and goes stale if that worker then dies."""
    study = _study(tmp_path, "queued")
    study.enqueue_trial({"x": 1.0})
    time.sleep(2.5)
    optuna.storages.fail_stale_trials(study)
    assert study.trials[0].state == TrialState.WAITING
    trial = study.ask()  # pops it: RUNNING with a fresh beat
    assert trial.number == 0
    optuna.storages.fail_stale_trials(study)
    assert study.trials[0].state == TrialState.RUNNING
    time.sleep(2.5)
    optuna.storages.fail_stale_trials(study)
    assert study.trials[0].state == TrialState.FAIL


def test_without_heartbeats_no_beat_is_written(tmp_path):
    study = _study(tmp_path, "silent", heartbeat=False)
    trial = study.ask()
    time.sleep(1.5)
    optuna.storages.fail_stale_trials(study)  # no heartbeat interface: nothing is ever stale
    assert study.trials[trial.number].state == TrialState.RUNNING
