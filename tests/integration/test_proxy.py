"""`tune proxy`: Optuna's gRPC storage proxy in front of a real database, with real worker processes."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import optuna
import pytest
from click.testing import CliRunner

from helpers import free_port, start_proxy, stop_proxy, tune_env

optuna.logging.set_verbosity(optuna.logging.WARNING)

# A worker process: joins the study through the proxy (our open_storage, grpc:// scheme) and runs trials.
WORKER = textwrap.dedent("""
    import sys, optuna
    from yieldtune.study.storage import open_storage
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url, name, worker, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    study = optuna.load_study(study_name=name, storage=open_storage(url))
    def objective(trial):
        trial.set_user_attr("worker_id", worker)
        x = trial.suggest_float("lr", 1e-5, 1e-1, log=True)
        for epoch in range(1, 4):
            trial.report(-abs(x - 1e-3) * epoch, epoch)
        return -abs(x - 1e-3)
    study.optimize(objective, n_trials=n)
""")


def run_two_workers_through_proxy(db_url: str, tmp_path: Path) -> None:
    port = free_port()
    proxy = start_proxy(db_url, port)
    try:
        grpc_url = f"grpc://127.0.0.1:{port}"
        from yieldtune.study.storage import open_storage

        optuna.create_study(study_name="proxied", storage=open_storage(grpc_url), direction="maximize")
        script = tmp_path / "worker.py"
        script.write_text(WORKER)
        workers = [subprocess.Popen([sys.executable, str(script), grpc_url, "proxied", f"w{i}", "4"],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=tune_env())
                   for i in range(2)]
        for w in workers:
            _, err = w.communicate(timeout=300)
            assert w.returncode == 0, err[-2000:]
    finally:
        code, err = stop_proxy(proxy)
    assert code == 130, err  # Ctrl-C: "interrupted", no traceback
    assert "listening on grpc://127.0.0.1" in err and "Traceback" not in err

    # Everything the workers did through the proxy is in the database itself.
    study = optuna.load_study(study_name="proxied", storage=db_url)
    trials = study.trials
    assert len(trials) == 8
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    assert {t.user_attrs["worker_id"] for t in trials} == {"w0", "w1"}
    assert all(len(t.intermediate_values) == 3 for t in trials)
    assert len({t.number for t in trials}) == 8


def test_two_workers_through_proxy_on_sqlite(tmp_path):
    run_two_workers_through_proxy(f"sqlite:///{tmp_path / 'proxied.db'}", tmp_path)


@pytest.mark.postgres
def test_two_workers_through_proxy_on_postgres(pg_url, tmp_path):
    run_two_workers_through_proxy(pg_url, tmp_path)


def test_proxy_refuses_a_proxy_url_and_needs_storage(monkeypatch):
    from yieldtune.cli.main import main

    monkeypatch.delenv("TUNE_STORAGE", raising=False)
    runner = CliRunner()
    res = runner.invoke(main, ["proxy", "--storage", "grpc://127.0.0.1:13000"])
    assert res.exit_code == 2 and "not another proxy" in res.output and "Traceback" not in res.output
    res = runner.invoke(main, ["proxy"])
    assert res.exit_code == 2 and "--storage" in res.output
    res = runner.invoke(main, ["proxy", "--storage", "nonsense"])
    assert res.exit_code == 2 and res.output.startswith("error:")


TINY_STUDY = """
name = "tiny"
[data]
dataset = "synthetic"
max_rows = 60
[validation]
scheme = "holdout"
fraction = 0.25
[search_space]
epochs = {low = 1, high = 2, step = 1}
d_model = [16, 32]
n_layers = 1
reaction_layers = 1
n_heads = 2
ffn_mult = 2
lr = {low = 3e-4, high = 3e-3, log = true}
batch_size = 32
use_augmentation = [false, true]
augment_ratio = {low = 0.5, high = 1.0}
scheduler = ["constant", "cosine"]
[fixed.model]
max_len = 128
[sampler]
type = "random"
seed = 0
[pruner]
type = "median"
n_startup_trials = 3
n_warmup_steps = 0
[budget]
n_trials = 5
[ensemble]
top_k = 2
seeds = 1
"""


@pytest.mark.slow
def test_tune_workers_through_proxy_then_ensemble_and_report(tmp_path):
    """The real pipeline behind a proxy: two `tune worker`s train tiny models, then ensemble and report."""
    spec = tmp_path / "tiny.toml"
    spec.write_text(TINY_STUDY)
    db_url = f"sqlite:///{tmp_path / 'tiny.db'}"
    port = free_port()
    proxy = start_proxy(db_url, port)
    try:
        workers = [subprocess.Popen(
            [sys.executable, "-m", "yieldtune.cli.main", "worker", str(spec), "--storage",
             f"grpc://127.0.0.1:{port}", "--device", "cpu", "--threads", "1", "--worker-id", f"w{i}"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=tune_env()) for i in range(2)]
        for w in workers:
            out, _ = w.communicate(timeout=600)
            assert w.returncode == 0, out[-3000:]
    finally:
        stop_proxy(proxy)

    study = optuna.load_study(study_name="tiny", storage=db_url)
    finished = [t for t in study.trials if t.state.is_finished()]
    assert len([t for t in finished if t.state != optuna.trial.TrialState.FAIL]) >= 5
    assert {t.user_attrs.get("worker") for t in finished} == {"w0", "w1"}

    env = tune_env()
    res = subprocess.run([sys.executable, "-m", "yieldtune.cli.main", "ensemble", str(spec), "--storage", db_url,
                          "--device", "cpu"], capture_output=True, text=True, env=env, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    res = subprocess.run([sys.executable, "-m", "yieldtune.cli.main", "report", str(spec), "--storage", db_url,
                          "--out", str(tmp_path / "report")], capture_output=True, text=True, env=env,
                         timeout=600, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    text = (tmp_path / "report" / "index.html").read_text(encoding="utf-8")
    for key in ("history", "intermediate", "timeline", "slice-model-size", "ensemble-r2", "ensemble-predictions",
                "ensemble-residuals"):
        assert f'id="fig-{key}"' in text, key
    assert "no ensemble yet" not in text
    assert "w0" in text and "w1" in text  # the worker timeline names both workers


@pytest.mark.slow
def test_sigkilled_worker_behind_proxy_is_failed_and_retried(tmp_path):
    """Two `tune worker`s through the proxy, one SIGKILLed mid-trial: its heartbeats (a trial attribute sent
    through the proxy) stop, the proxy fails and re-queues the trial, and the survivor meets the budget."""
    import time

    from helpers import study_toml, tiny_search_space, tune_argv
    from yieldtune.data.synth import write_synthetic_plate
    from yieldtune.study.liveness import BEAT_ATTR

    write_synthetic_plate(tmp_path / "plate.csv", n=60)
    space = tiny_search_space(epochs=30, fixed="[fixed.model]\nmax_len = 128\n")
    study_file = tmp_path / "killed.toml"
    study_file.write_text(study_toml("killed", search_space=space, n_trials=2, max_retry=1))
    db_url = f"sqlite:///{tmp_path / 'killed.db'}"
    port = free_port()
    proxy = start_proxy(db_url, port)
    grpc_url = f"grpc://127.0.0.1:{port}"

    def worker(name: str) -> subprocess.Popen:
        return subprocess.Popen(tune_argv("worker", study_file, "--worker-id", name, "--threads", "1", "--device",
                                          "cpu"), env=tune_env(grpc_url), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)

    try:
        victim, survivor = worker("victim"), worker("survivor")
        deadline = time.monotonic() + 240
        doomed = None
        while doomed is None and time.monotonic() < deadline:
            assert victim.poll() is None, victim.stdout.read()[-3000:]
            try:
                running = optuna.load_study(study_name="killed", storage=db_url).get_trials(
                    deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
            except KeyError:  # the study is not created yet
                running = []
            doomed = next((t for t in running if t.user_attrs.get("worker") == "victim"
                           and t.user_attrs.get("epochs")), None)
            time.sleep(0.2)
        assert doomed is not None, "the victim never got a trial into training"
        from yieldtune.study.spec import load_study_spec
        from yieldtune.study.status import study_status

        shown = study_status(load_study_spec(study_file), grpc_url)["running"]
        assert any(r["heartbeat_age_s"] is not None and r["heartbeat_age_s"] < 30 for r in shown), shown
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=30)
        beat = optuna.load_study(study_name="killed", storage=db_url)._storage.get_trial(doomed._trial_id)
        assert BEAT_ATTR in beat.system_attrs  # its heartbeats came through the proxy
        out, _ = survivor.communicate(timeout=400)
        assert survivor.returncode == 0, out[-3000:]
    finally:
        for proc in (victim, survivor):
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        code, err = stop_proxy(proxy)

    trials = optuna.load_study(study_name="killed", storage=db_url).trials
    states = {t.number: t.state for t in trials}
    assert not [t for t in trials if t.state == optuna.trial.TrialState.RUNNING], states
    assert sum(t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED) for t in trials) == 2
    assert states[doomed.number] == optuna.trial.TrialState.FAIL
    retries = [t for t in trials if t.system_attrs.get("failed_trial") == doomed.number]
    assert len(retries) == 1 and retries[0].params == doomed.params
    assert retries[0].user_attrs["worker"] == "survivor" and retries[0].state.is_finished()
    # the proxy's watcher or the surviving worker, whichever looks first, fails and re-queues it, and says so
    reaped = f"study 'killed' trial {doomed.number}: no heartbeat for 3 s -> FAIL, re-queued (max_retry 1)"
    assert reaped in err or reaped in out, (err, out[-3000:])
