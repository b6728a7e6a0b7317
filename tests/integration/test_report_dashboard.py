"""`tune dashboard`: optuna-dashboard served over HTTP for a real study, with its artifact store wired in."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import optuna
import pytest
from click.testing import CliRunner
from studyfiles import sigint_default

from test_report import make_study

optuna.logging.set_verbosity(optuna.logging.WARNING)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str, timeout: float = 10.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def start_dashboard(args: list[str], port: int) -> subprocess.Popen:
    """``tune dashboard ARGS --port PORT`` in a subprocess, returned once it answers HTTP."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    env.pop("TUNE_STORAGE", None)
    log = tempfile.NamedTemporaryFile("w+", prefix="dashboard-", suffix=".log", delete=False)
    # a file, not a pipe: a full pipe would block the server's request log
    proc = subprocess.Popen([sys.executable, "-m", "yieldtune.cli.main", "dashboard", *args, "--port", str(port)],
                            stdout=log, stderr=subprocess.STDOUT, text=True, env=env, preexec_fn=sigint_default)
    proc.log_path = log.name  # type: ignore[attr-defined]
    log.close()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"dashboard exited {proc.returncode}: {Path(log.name).read_text()[-2000:]}")
        try:
            if get(f"http://127.0.0.1:{port}/api/meta", timeout=2)[0] == 200:
                return proc
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.3)
    proc.kill()
    pytest.fail("dashboard did not answer within 120 s")


def stop(proc: subprocess.Popen) -> tuple[int, str]:
    """Ctrl-C, repeated: wsgiref swallows an interrupt that lands inside a request handler."""
    for _ in range(5):
        if proc.poll() is not None:
            break
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            continue
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    log = Path(proc.log_path)  # type: ignore[attr-defined]
    text = log.read_text()
    log.unlink(missing_ok=True)
    return proc.returncode, text


def study_with_artifact(tmp_path: Path) -> tuple[str, Path, optuna.Study, str, bytes]:
    """A sqlite study whose best trial has a file in the study's FileSystemArtifactStore."""
    from optuna.artifacts import FileSystemArtifactStore, upload_artifact

    url = f"sqlite:///{tmp_path / 'dash.db'}"
    study = make_study(url, n_trials=8)
    artifact_dir = tmp_path / "artifacts"
    artifact_dir.mkdir()
    payload = b"id,y_true,y_pred\nrxn0,0.5,0.45\n"
    src = tmp_path / "val_predictions.csv"
    src.write_bytes(payload)
    trial = study.ask()  # artifacts are attached while a trial runs, as the worker's objective does
    artifact_id = upload_artifact(artifact_store=FileSystemArtifactStore(str(artifact_dir)), file_path=str(src),
                                  study_or_trial=trial, mimetype="text/csv")
    study.tell(trial, 2.0)  # and make it the best trial
    return url, artifact_dir, study, artifact_id, payload


def test_dashboard_serves_study_and_its_artifacts(tmp_path):
    url, artifact_dir, study, artifact_id, payload = study_with_artifact(tmp_path)
    port = free_port()
    proc = start_dashboard(["toy", "--storage", url, "--artifacts", str(artifact_dir)], port)
    try:
        status, body = get(f"http://127.0.0.1:{port}/api/studies")
        assert status == 200
        names = {s["study_name"] for s in json.loads(body)["study_summaries"]}
        assert names == {"toy"}
        best = study.best_trial
        status, body = get(f"http://127.0.0.1:{port}/artifacts/{study._study_id}/{best._trial_id}/{artifact_id}")
        assert status == 200 and body == payload  # served from the artifact store we passed
        status, body = get(f"http://127.0.0.1:{port}/dashboard")
        assert status == 200 and b'id="dashboard"' in body
    finally:
        code, err = stop(proc)
    assert code in (0, 130), err  # Ctrl-C ends it (bottle or our CLI handles the interrupt)
    assert f"on http://127.0.0.1:{port}/" in err  # bound to loopback by default


def test_dashboard_from_study_file_uses_its_artifact_dir(tmp_path):
    url, artifact_dir, study, artifact_id, payload = study_with_artifact(tmp_path)
    spec = tmp_path / "toy.toml"
    spec.write_text(f'name = "toy"\n[data]\ndataset = "synthetic"\n[storage]\nurl = "{url}"\n'
                    f'[artifacts]\ndir = "{artifact_dir.name}"\n')
    port = free_port()
    proc = start_dashboard([str(spec)], port)
    try:
        best = study.best_trial
        status, body = get(f"http://127.0.0.1:{port}/artifacts/{study._study_id}/{best._trial_id}/{artifact_id}")
        assert status == 200 and body == payload
    finally:
        stop(proc)


def test_dashboard_user_errors_are_one_line(tmp_path, monkeypatch):
    from yieldtune.cli.main import main

    monkeypatch.delenv("TUNE_STORAGE", raising=False)
    url = f"sqlite:///{tmp_path / 'd.db'}"
    make_study(url, n_trials=1)
    runner = CliRunner()
    res = runner.invoke(main, ["dashboard", "other", "--storage", url, "--port", str(free_port())])
    assert res.exit_code == 2 and "no study named 'other'" in res.output and "Traceback" not in res.output
    res = runner.invoke(main, ["dashboard", "toy", "--storage", url, "--port", "70000"])
    assert res.exit_code == 2
