"""``record_first_heartbeat``: a trial is stale-able from the objective's first line, on a real SQLite storage."""

from __future__ import annotations

import time

import optuna
from optuna.trial import TrialState

from yieldtune.study.liveness import record_first_heartbeat
from yieldtune.study.storage import open_storage


def _running_trial(tmp_path, name):
    storage = open_storage(f"sqlite:///{tmp_path / name}.db", heartbeat=True, heartbeat_interval=1,
                           grace_period=1, max_retry=0)
    study = optuna.create_study(study_name=name, storage=storage)
    return study, study.ask()  # RUNNING; ask starts no heartbeat thread, like a worker killed before its first beat


def test_a_trial_killed_before_its_first_beat_is_a_zombie_unless_the_objective_beats_first(tmp_path):
    silent_study, silent = _running_trial(tmp_path, "silent")
    beaten_study, beaten = _running_trial(tmp_path, "beaten")
    record_first_heartbeat(beaten)  # what both objectives do first; then the "worker" dies
    time.sleep(2.5)  # past the 1 s grace period
    optuna.storages.fail_stale_trials(silent_study)
    optuna.storages.fail_stale_trials(beaten_study)
    assert silent_study.trials[silent.number].state == TrialState.RUNNING  # Optuna never reaps it
    assert beaten_study.trials[beaten.number].state == TrialState.FAIL


def test_without_heartbeats_it_does_nothing():
    study = optuna.create_study()  # in memory: no heartbeat interface
    record_first_heartbeat(study.ask())
