"""`tune bench workers|pruning|ensemble` on a tiny study: real worker processes and SQLite, JSON checked for
content (budgets met, epochs counted, bench studies cleaned up, finite R²), never for timings."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from helpers import TINY_SEARCH_SPACE as SEARCH_SPACE
from helpers import study_toml

PRUNER = 'type = "median"\nn_startup_trials = 1\nn_warmup_steps = 0'


def write_study(root: Path, name: str, extra_data: str = "") -> Path:
    path = root / f"{name}.toml"
    path.write_text(study_toml(name, search_space=SEARCH_SPACE, n_trials=4, pruner=PRUNER,
                               ensemble="top_k = 2\nseeds = 1\nauto = false", data=extra_data))
    return path


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    from yieldtune.data.synth import write_synthetic_plate

    root = tmp_path_factory.mktemp("bench")
    write_synthetic_plate(root / "plate.csv", n=56)
    return root


@pytest.fixture(autouse=True)
def _no_env_storage(monkeypatch):
    monkeypatch.delenv("TUNE_STORAGE", raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


def tune(*args) -> list[dict]:
    """Run `tune ...` in-process; return its stdout JSON lines (worker processes write their own logs)."""
    return [json.loads(line) for line in tune_text(*args).splitlines() if line.strip()]


def tune_text(*args) -> str:
    """Run `tune ...` in-process; return its stdout."""
    from yieldtune.cli.main import main

    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


def study_names(url: str) -> list[str]:
    import optuna

    return optuna.get_all_study_names(storage=url)


def test_bench_workers_runs_each_jobs_setting_and_cleans_up(root):
    path = write_study(root, "wk")
    url = f"sqlite:///{root / 'workers.db'}"
    lines = tune("bench", "workers", path, "--storage", url, "--jobs", "1", "--jobs", "2", "--n-trials", "3",
                 "--device", "cpu", "--json")
    runs, summary = lines[:-1], lines[-1]
    assert [r["jobs"] for r in runs] == [1, 2]
    for r in runs:
        assert r["study"].startswith("wk-bench-j") and r["bench"] == "workers"
        assert r["finished"] == r["budget"] == 3 and r["failed"] == 0
        assert r["complete"] >= 1 and r["best_value"] is not None and math.isfinite(r["best_value"])
        assert r["trials_per_minute"] > 0 and r["wall_seconds"] > 0
        assert 3 <= r["epochs_trained"] <= 6  # 2 epochs per trial at most, at least one each
        assert r["sampler_seed"] == 0 and r["device"] == "cpu"
    assert runs[0]["threads_per_worker"] >= runs[1]["threads_per_worker"]  # cores divided between workers
    assert summary["summary"] is True and summary["baseline_jobs"] == 1 and summary["jobs"] == 2
    assert summary["trials_per_minute_ratio"] > 0
    assert study_names(url) == []  # bench studies deleted


def test_bench_pruning_counts_epochs_with_and_without_pruner(root):
    path = write_study(root, "pr")
    lines = tune("bench", "pruning", path, "--n-trials", "3", "--device", "cpu", "--json")
    with_p, without, summary = lines
    assert with_p["pruner"] == "median" and without["pruner"] == "none"
    assert with_p["finished"] == without["finished"] == 3
    assert without["pruned"] == 0 and without["complete"] == 3
    assert without["epochs_trained"] == 3 * 2 == without["intermediate_values"]
    assert with_p["complete"] * 2 + with_p["pruned"] <= with_p["epochs_trained"] <= without["epochs_trained"]
    assert summary["epochs_with"] == with_p["epochs_trained"] and summary["epochs_without"] == 6
    assert 0 < summary["epochs_ratio"] <= 1
    assert math.isfinite(summary["best_diff"])
    assert study_names(f"sqlite:///{root / 'pr.db'}") == []


def test_bench_ensemble_builds_and_scores_on_test_then_validation(root):
    path = write_study(root, "ens", "train_rows = 40")
    text = path.read_text().replace('type = "median"', 'type = "none"')
    path.write_text(text.replace("n_startup_trials = 1\nn_warmup_steps = 0\n", ""))
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    run = subprocess.run([sys.executable, "-m", "yieldtune.cli.main", "run", str(path), "-j", "1", "--device", "cpu",
                          "--no-live", "--n-trials", "3"], cwd=root, env=env, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    ens_dir = root / "artifacts" / "ens" / "ensemble"
    assert not ens_dir.exists()  # auto = false: the bench builds it

    (rec,) = tune("bench", "ensemble", path, "--json")
    assert (ens_dir / "ensemble.json").is_file()
    assert rec["eval"] == "test" and rec["n_eval"] == 16
    assert rec["method"] == "caruana"
    for key in ("r2_best_single", "r2_ensemble", "r2_mean", "r2_best_member", "r2_trials_caruana",
                "r2_trials_bagged", "r2_trials_mean", "r2_ensemble_minus_best_single", "r2_baseline",
                "r2_ensemble_minus_baseline"):
        assert isinstance(rec[key], float) and math.isfinite(rec[key]), key
    baseline = [m for m in rec["members"] if m["name"] == "fingerprint_gbm"]  # a member where it got weight
    assert len(rec["members"]) == 2 + len(baseline) and abs(sum(m["weight"] for m in rec["members"]) - 1) < 1e-6
    if not baseline:  # ensemble.baseline_member (the default) weighted it out: the same mixture either way
        assert rec["r2_ensemble_without_baseline"] == pytest.approx(rec["r2_ensemble"], abs=1e-6)
    assert math.isfinite(rec["r2_ensemble_without_baseline"])
    assert all(math.isfinite(m["r2"]) for m in rec["members"])
    assert rec["r2_ensemble_minus_best_single"] == pytest.approx(rec["r2_ensemble"] - rec["r2_best_single"], abs=1e-5)
    assert rec["r2_ensemble_minus_baseline"] == pytest.approx(rec["r2_ensemble"] - rec["r2_baseline"], abs=1e-5)

    # the ensemble step kept how close each test row's molecules are to the training molecules; the report shows it
    import pandas as pd

    from yieldtune.model.domain import SIMILARITY_COLUMNS

    app = pd.read_csv(ens_dir / "test_applicability.csv", dtype={"id": str})
    assert len(app) == 16 and list(app.columns) == ["id", *SIMILARITY_COLUMNS]
    assert app["similarity_min"].between(0.0, 1.0).all()
    assert (app["similarity_min"] <= app[list(SIMILARITY_COLUMNS[:3])].min(axis=1) + 1e-6).all()
    page = Path(tune_text("report", path, "--out", root / "report").strip())
    assert 'id="fig-applicability"' in page.read_text(encoding="utf-8")

    # the same study read without its test split: scored on the trial models' validation predictions
    no_test = root / "ens_val" / "ens.toml"
    no_test.parent.mkdir()
    no_test.write_text(path.read_text().replace(
        'dataset = "plate.csv"', f'dataset = "{root / "plate.csv"}"').replace("train_rows = 40", "max_rows = 40")
        + f'[artifacts]\ndir = "{root / "artifacts" / "ens"}"\n')
    (val,) = tune("bench", "ensemble", no_test, "--storage", f"sqlite:///{root / 'ens.db'}", "--json")
    assert val["eval"] == "validation" and val["n_eval"] == 10
    assert "r2_baseline" not in val  # no test rows: nothing to score the baseline on
    info = json.loads((ens_dir / "ensemble.json").read_text())
    assert val["r2_ensemble"] == pytest.approx(info["r2_ensemble"], abs=1e-5)
    assert val["r2_mean"] == pytest.approx(info["r2_mean"], abs=1e-5)
    assert val["r2_best_single"] <= info["r2_best_member"] + 1e-6
