"""Real worker processes sharing one study on SQLite, PostgreSQL and MariaDB; SIGKILL/SIGTERM; warm start.

Tiny everything (60 reactions, d_model 16, 1 layer, 2-3 epochs): what is tested is the service — exact
shared budget, unique trial numbers, pruning, heartbeat failure + retry, clean signal handling, artifacts.
"""

from __future__ import annotations

import json
import signal
import subprocess
import textwrap
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from helpers import run_tune, study_toml, tiny_search_space, tune_argv, tune_env
from yieldtune.study.service import create_or_load_study, load_study
from yieldtune.study.spec import load_study_spec

TINY_SPACE_FIXED = """
[fixed.model]
max_len = 192

[fixed.train]
precision = "fp32"
"""


def make_study(tmp_path: Path, *, name: str = "tiny", n_trials: int = 5, epochs: int = 3, pruner: str | None = None,
               extra: str = "") -> Path:
    """A study file over a 60-reaction synthetic plate, with fast heartbeats (1 s, grace 3 s)."""
    from yieldtune.data.synth import write_synthetic_plate

    if not (tmp_path / "plate.csv").exists():
        write_synthetic_plate(tmp_path / "plate.csv", n=60)
    # percentile 0 keeps only trials at least as good as the best completed one at every epoch, so on this
    # noisy tiny search some trial is pruned once one has completed
    pruner = pruner or ('type = "percentile"\npercentile = 0.0\nn_startup_trials = 1\nn_warmup_steps = 0\n'
                        'interval_steps = 1\nn_min_trials = 1')
    body = study_toml(name, n_trials=n_trials, sampler_seed=7, pruner=pruner,
                      search_space=tiny_search_space(epochs=epochs, pooling='["cls", "mean"]',
                                                   lr="{low = 1e-7, high = 1e-2, log = true}", weight_decay=0.0,
                                                   fixed=TINY_SPACE_FIXED) + textwrap.dedent(extra))
    path = tmp_path / f"{name}.toml"
    path.write_text(body)
    return path


def start_worker(study_file: Path, storage: str, worker_id: str, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(tune_argv("worker", str(study_file), "--worker-id", worker_id, "--threads", "1",
                                 "--device", "cpu", *extra),
                            env=tune_env(storage), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def wait_for_training_trial(study: optuna.Study, worker_id: str, proc: subprocess.Popen, timeout: float = 120):
    """The RUNNING trial of ``worker_id`` once it has finished at least one epoch (so it is mid-training)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stdout.read()
        for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            if t.user_attrs.get("worker") == worker_id and t.user_attrs.get("epochs"):
                return t
        time.sleep(0.2)
    raise AssertionError(f"worker {worker_id} never got a trial into training")


def worker_mid_trial(tmp_path: Path, name: str, *, n_trials: int, worker_id: str):
    """A SQLite study of long (30-epoch) trials and one worker process caught in the middle of one of them."""
    storage = f"sqlite:///{tmp_path / f'{name}.db'}"
    study_file = make_study(tmp_path, name=name, n_trials=n_trials, epochs=30, pruner='type = "none"')
    study = create_or_load_study(load_study_spec(study_file), storage)
    proc = start_worker(study_file, storage, worker_id)
    return study_file, storage, study, proc, wait_for_training_trial(study, worker_id, proc)


def check_budget_met(study: optuna.Study, budget: int) -> list:
    trials = study.get_trials(deepcopy=False)
    numbers = [t.number for t in trials]
    assert len(numbers) == len(set(numbers))
    finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert len(finished) == budget, [(t.number, t.state.name) for t in trials]
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    for t in trials:
        if t.state == TrialState.COMPLETE:
            assert t.user_attrs["artifact:model"] and t.user_attrs["artifact:val_predictions"]
            assert len(t.intermediate_values) >= 1 and t.user_attrs["epochs"][0]["train_loss"] is not None
    return trials


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres),
                                     pytest.param("mysql", marks=pytest.mark.mysql)])
def test_tune_run_two_workers_share_budget_exactly(tmp_path, request, backend):
    storage = {"sqlite": lambda: f"sqlite:///{tmp_path / 'tiny.db'}",
               "postgres": lambda: request.getfixturevalue("pg_url"),
               "mysql": lambda: request.getfixturevalue("mysql_url")}[backend]()
    study_file = make_study(tmp_path, n_trials=5)
    proc = run_tune("run", study_file, "-j", "2", "--no-live", "--device", "cpu", storage=storage, check=False,
                    timeout=400)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "trials/min" in proc.stderr and "5/5 finished" in proc.stderr
    assert "Traceback" not in proc.stderr
    spec = load_study_spec(study_file)
    study = load_study(spec, storage, heartbeat=False)
    trials = check_budget_met(study, 5)
    assert {t.user_attrs.get("worker") for t in trials} <= {"w0", "w1"}
    assert any(t.state == TrialState.PRUNED for t in trials), [(t.state.name, t.params) for t in trials]
    # the predictor and validation predictions of the best trial come back from the artifact store
    from yieldtune.study.artifacts import download_predictor, download_val_predictions

    best = study.best_trial
    preds = download_val_predictions(study, best)
    assert list(preds.columns) == ["id", "y_true", "y_pred"] and len(preds) == 15
    predictor = download_predictor(study, best, tmp_path / "best_model")
    mean, _ = predictor.predict(["CC(C)Br.Nc1ccccc1>CCO>CC(C)Nc1ccccc1"])
    assert mean.shape == (1,)


def test_sigkilled_worker_trial_fails_by_heartbeat_and_is_retried(tmp_path):
    study_file, storage, study, victim, doomed = worker_mid_trial(tmp_path, "kill", n_trials=2, worker_id="victim")
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=30)
    doomed = study._storage.get_trial(doomed._trial_id)
    assert doomed.state == TrialState.RUNNING  # nobody told it yet

    survivor = start_worker(study_file, storage, "survivor")
    out, _ = survivor.communicate(timeout=400)
    assert survivor.returncode == 0, out[-3000:]
    trials = check_budget_met(study, 2)
    states = {t.number: t.state for t in trials}
    assert states[doomed.number] == TrialState.FAIL
    retries = [t for t in trials
               if optuna.storages.RetryHeartbeatStaleTrialCallback.retried_trial_number(t) == doomed.number]
    assert len(retries) == 1 and retries[0].state == TrialState.COMPLETE
    assert retries[0].params == doomed.params and retries[0].user_attrs["worker"] == "survivor"
    assert retries[0].system_attrs["retry_history"] == [doomed.number]


def test_sigterm_ends_running_trial_and_requeues_it(tmp_path):
    _, _, study, worker, running = worker_mid_trial(tmp_path, "term", n_trials=3, worker_id="w")
    worker.send_signal(signal.SIGTERM)
    out, _ = worker.communicate(timeout=60)
    assert worker.returncode == 128 + signal.SIGTERM, out[-3000:]
    assert "Traceback" not in out
    trials = study.get_trials(deepcopy=False)
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    assert study._storage.get_trial(running._trial_id).state == TrialState.FAIL
    waiting = [t for t in trials if t.state == TrialState.WAITING]
    assert len(waiting) == 1 and waiting[0].params == running.params
    assert waiting[0].system_attrs["failed_trial"] == running.number


def test_warm_start_runs_listed_configs_first_and_status_json(tmp_path):
    from yieldtune.study.worker import run_worker

    storage = f"sqlite:///{tmp_path / 'warm.db'}"
    study_file = make_study(tmp_path, name="warm", n_trials=3, epochs=2, pruner='type = "none"', extra="""
        [[warm_start.configs]]
        lr = 0.002
        pooling = "mean"

        [[warm_start.configs]]
        lr = 0.0005
        pooling = "cls"
    """)
    spec = load_study_spec(study_file)
    study = create_or_load_study(spec, storage)
    create_or_load_study(spec, storage)  # a second creation does not enqueue again
    assert len(study.get_trials(states=(TrialState.WAITING,))) == 2
    result = run_worker(spec, storage, device="cpu", worker_id="solo", threads=1, handle_signals=False)
    assert (result.complete, result.pruned, result.failed) == (3, 0, 0)
    trials = sorted(study.get_trials(), key=lambda t: t.number)
    assert trials[0].params == {"lr": 0.002, "pooling": "mean"} and trials[0].user_attrs["warm_start"]
    assert trials[1].params == {"lr": 0.0005, "pooling": "cls"}
    assert "warm_start" not in trials[2].user_attrs
    assert trials[0].user_attrs["config"]["train"]["lr"] == 0.002

    proc = run_tune("status", study_file, "--json", storage=storage, check=False, timeout=120)
    assert proc.returncode == 0, proc.stderr
    status = json.loads(proc.stdout)
    assert status["counts"]["COMPLETE"] == 3 and status["finished"] == 3 and status["budget"] == 3
    assert status["counts"]["RUNNING"] == 0 and status["running"] == []
    assert status["best"]["number"] == study.best_trial.number

    # a second study warm-starts from this one's best trials
    other = make_study(tmp_path, name="warm2", n_trials=1, epochs=2, pruner='type = "none"', extra=f"""
        [warm_start.from_study]
        name = "warm"
        storage = "{storage}"
        top_k = 2
    """)
    study2 = create_or_load_study(load_study_spec(other), f"sqlite:///{tmp_path / 'warm2.db'}")
    queued = [t.system_attrs["fixed_params"] for t in study2.get_trials(states=(TrialState.WAITING,))]
    ranked = sorted(study.get_trials(), key=lambda t: -t.value)[:2]
    assert queued == [t.params for t in ranked]


def test_a_late_starter_steps_back_when_the_budget_is_taken(tmp_path):
    """Two trials started at once with room for one: the later one steps back and re-queues its params."""
    from yieldtune.study.datasets import prepare_folds
    from yieldtune.study.objective import BudgetReached, StudyObjective, WorkerInfo

    storage = f"sqlite:///{tmp_path / 'race.db'}"
    spec = load_study_spec(make_study(tmp_path, name="race", n_trials=1))
    study = create_or_load_study(spec, storage)
    objective = StudyObjective(spec, spec.search(), prepare_folds(spec), device="cpu", worker=WorkerInfo("x", "cpu"),
                               store=None, budget=1)
    first, second = study.ask(), study.ask()
    objective.check_slot(first)
    with pytest.raises(BudgetReached):
        objective.check_slot(second)


def test_run_and_worker_errors_are_one_line(tmp_path, request):
    """Bad study files and unusable storages: one 'error:' line, exit 2, no traceback, no password."""
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "b"\n[data]\ndataset = "x.csv"\n[search_space]\nlr = {low = 1.0, high = 0.1}\n')
    unknown = tmp_path / "unknown.toml"
    unknown.write_text('name = "u"\n[data]\ndataset = "x.csv"\n[search_space]\nwarp = [1]\n')
    broken = tmp_path / "broken.toml"
    broken.write_text('name = "b"\n[data\n')
    good = make_study(tmp_path, name="good")
    cases = [
        (["run", str(bad)], None, "search_space.lr: empty range"),
        (["worker", str(unknown)], None, "search_space.warp: unknown parameter"),
        (["status", str(broken)], None, "malformed TOML"),
        (["run", str(good), "--no-live"], "postgresql+psycopg://postgres:hunter2pw@127.0.0.1:1/x",
         "cannot open storage postgresql+psycopg://postgres:***@127.0.0.1:1/x"),
    ]
    # every command that reads the study names the driver's reason, not Optuna's generic commit message
    refused = "cannot open storage postgresql+psycopg://postgres:***@127.0.0.1:1/x: OperationalError: connection failed"
    cases += [(args, "postgresql+psycopg://postgres:hunter2pw@127.0.0.1:1/x", refused) for args in (
        ["status", str(good)], ["report", str(good), "--out", str(tmp_path / "report")],
        ["dashboard", str(good)], ["ensemble", str(good), "--device", "cpu"],
        ["export-best", str(good), "--out", str(tmp_path / "export")])]
    try:
        mysql_ok = request.getfixturevalue("mysql_url")
    except pytest.skip.Exception:
        mysql_ok = None
    if mysql_ok:
        cases += [([cmd, str(good)], "mysql+pymysql://root:hunter2pw@127.0.0.1:3306/test", "Access denied")
                  for cmd in ("worker", "status", "report")]
    for args, storage, needle in cases:
        proc = run_tune(*args, storage=storage, check=False, timeout=120)
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        assert proc.returncode == 2, (args, proc.stderr)
        assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], (args, proc.stderr)
        assert "Traceback" not in proc.stderr + proc.stdout and "hunter2pw" not in proc.stderr + proc.stdout


def test_tune_run_forwards_sigterm_to_its_workers(tmp_path):
    storage = f"sqlite:///{tmp_path / 'fwd.db'}"
    study_file = make_study(tmp_path, name="fwd", n_trials=4, epochs=30, pruner='type = "none"')
    runner = subprocess.Popen(tune_argv("run", str(study_file), "-j", "2", "--no-live", "--device", "cpu"),
                              env=tune_env(storage), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 120
    study = None
    while study is None and time.monotonic() < deadline:
        try:
            study = optuna.load_study(study_name="fwd", storage=storage)
        except KeyError:
            time.sleep(0.2)
    running = wait_for_training_trial(study, "w0", runner)
    runner.send_signal(signal.SIGTERM)
    out, _ = runner.communicate(timeout=120)
    assert runner.returncode == 130, out[-3000:]
    trials = study.get_trials(deepcopy=False)
    assert not [t for t in trials if t.state == TrialState.RUNNING], out[-3000:]
    assert study._storage.get_trial(running._trial_id).state == TrialState.FAIL
    assert any(t.state == TrialState.WAITING and t.system_attrs.get("failed_trial") == running.number
               for t in trials)


def test_kfold_minimize_metric_reports_fold0_and_uploads_out_of_fold_predictions(tmp_path):
    from yieldtune.study.artifacts import download_val_predictions
    from yieldtune.study.worker import run_worker

    storage = f"sqlite:///{tmp_path / 'kf.db'}"
    study_file = make_study(tmp_path, name="kf", n_trials=1, epochs=2, pruner='type = "none"')
    text = study_file.read_text().replace("[validation]\nfraction = 0.25", '[validation]\nscheme = "kfold"\nk = 3')
    study_file.write_text(text + '\n[objective]\nmetric = "mae"\n')
    spec = load_study_spec(study_file)
    assert spec.validation.scheme == "kfold" and spec.direction == "minimize"
    result = run_worker(spec, storage, device="cpu", worker_id="kf", threads=1, handle_signals=False)
    assert result.complete == 1
    study = load_study(spec, storage, heartbeat=False)
    trial = study.best_trial
    assert study.direction == optuna.study.StudyDirection.MINIMIZE
    assert len(trial.user_attrs["fold_values"]) == 3
    assert trial.value == pytest.approx(sum(trial.user_attrs["fold_values"]) / 3)
    assert sorted(trial.intermediate_values) == [1, 2]  # fold 0's epochs only
    assert {e["fold"] for e in trial.user_attrs["epochs"]} == {0, 1, 2}
    preds = download_val_predictions(study, trial)
    assert len(preds) == 60 and preds["id"].is_unique  # every train row predicted out of fold once
