"""A worker SIGKILLed between ``study.ask`` and its objective leaves no zombie trial, on every database.

Optuna starts the heartbeat thread only after ask has created the trial and sampled its relative parameters;
the storage now writes the first beat as it creates the trial, so the next worker's ``fail_stale_trials``
fails the trial and re-queues its configuration. Real processes, a real SIGKILL, real SQLite, PostgreSQL and
MariaDB, and ``tune proxy`` in front of SQLite (there the first beat is a trial attribute sent through it).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time

import optuna
import pytest
from optuna.trial import TrialState

from helpers import free_port, start_proxy, stop_proxy, tune_env
from yieldtune.study.storage import open_storage

BEATS = dict(heartbeat_interval=1, grace_period=2, max_retry=1)

_KILLED_AFTER_ASK = textwrap.dedent("""
    import json, os, signal, sys
    import optuna
    from yieldtune.study.storage import open_storage
    study = optuna.load_study(study_name="ask", storage=open_storage(sys.argv[1], **json.loads(sys.argv[2])))
    trial = study.ask()
    trial.suggest_float("x", 0.0, 1.0)
    os.kill(os.getpid(), signal.SIGKILL)  # dies before any objective (and Optuna's heartbeat thread) runs
""")


@pytest.fixture(params=["sqlite", "postgres", "mysql", "grpc"])
def url(request, tmp_path):
    if request.param == "grpc":
        port = free_port()
        proxy = start_proxy(f"sqlite:///{tmp_path / 'ask.db'}", port)
        yield f"grpc://127.0.0.1:{port}"
        stop_proxy(proxy)
    elif request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ask.db'}"
    else:
        yield request.getfixturevalue("pg_url" if request.param == "postgres" else "mysql_url")


def test_a_worker_killed_in_the_ask_window_leaves_no_zombie(url):
    study = optuna.create_study(study_name="ask", storage=open_storage(url, **BEATS))
    proc = subprocess.run([sys.executable, "-c", _KILLED_AFTER_ASK, url, json.dumps(BEATS)], capture_output=True,
                          text=True, timeout=120, env=tune_env())
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    (killed,) = study.get_trials(deepcopy=False)
    assert killed.state == TrialState.RUNNING and "x" in killed.params
    deadline = time.monotonic() + 30  # the grace period; through the proxy, two looks at an unchanged beat
    while study.get_trials(deepcopy=False)[0].state == TrialState.RUNNING and time.monotonic() < deadline:
        time.sleep(1.0)
        optuna.storages.fail_stale_trials(study)  # what every worker does before its next trial
    trials = study.get_trials(deepcopy=False)
    assert trials[0].state == TrialState.FAIL
    assert len(trials) == 2 and trials[1].state == TrialState.WAITING  # the same configuration, re-queued
    assert trials[1].params == killed.params and trials[1].system_attrs["failed_trial"] == killed.number
