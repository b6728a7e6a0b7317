"""`tune dashboard`: optuna-dashboard served over HTTP for a real study, with its artifact store wired in."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
from click.testing import CliRunner

from helpers import free_port, get, make_study, start_dashboard, stop

optuna.logging.set_verbosity(optuna.logging.WARNING)


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
