"""SQLite as the embedded default must hand each queued trial to exactly one of several processes."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import optuna

from yieldtune.study.storage import open_storage

POP_ALL = textwrap.dedent("""
    import sys, time
    import optuna
    from yieldtune.study.storage import open_storage
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.load_study(study_name="q", storage=open_storage(sys.argv[1], heartbeat=False))
    def objective(trial):
        if not trial.user_attrs.get("queued"):  # the queue emptied between our look and the pop
            raise optuna.TrialPruned()
        trial.set_user_attr("pid", {pid})
        return trial.suggest_int("k", 0, 1000)
    # one trial at a time until the queue is empty, the way refit workers take enqueued work
    while any(t.state == optuna.trial.TrialState.WAITING for t in study.get_trials(deepcopy=False)):
        study.optimize(objective, n_trials=1)
""")


def test_enqueued_trials_run_once_each_with_three_processes(tmp_path):
    url = f"sqlite:///{tmp_path / 'q.db'}"
    study = optuna.create_study(study_name="q", storage=open_storage(url, heartbeat=False))
    for k in range(60):
        study.enqueue_trial({"k": k}, user_attrs={"queued": True})
    procs = []
    for i in range(3):
        script_i = tmp_path / f"pop{i}.py"
        script_i.write_text(POP_ALL.replace("{pid}", str(i)))
        procs.append(subprocess.Popen([sys.executable, str(script_i), url], stderr=subprocess.PIPE, text=True))
    errors = [p.communicate(timeout=240)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], errors
    assert not any("database is locked" in e or "Cannot tell" in e for e in errors), errors
    trials = study.get_trials(deepcopy=False)
    done = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert sorted(t.params["k"] for t in done) == list(range(60))  # every queued config once, none twice
    assert all(t.state != optuna.trial.TrialState.WAITING for t in trials)
