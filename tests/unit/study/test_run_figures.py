"""What `tune run`/`tune status` report: a stepped-back trial is not a failure; one trials/min figure."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from optuna.trial import TrialState

from helpers import TINY_SEARCH_SPACE, run_tune, study_toml
from yieldtune.data.synth import write_synthetic_plate
from yieldtune.study.service import create_or_load_study, state_counts
from yieldtune.study.spec import load_study_spec
from yieldtune.study.status import render_status, study_status


def study_file(root: Path, n_trials: int) -> Path:
    write_synthetic_plate(root / "plate.csv", n=40)
    path = root / "figs.toml"
    path.write_text(study_toml("figs", search_space=TINY_SEARCH_SPACE, n_trials=n_trials))
    return path


def test_a_stepped_back_trial_is_counted_apart_from_failures(tmp_path):
    """Two trials start at once with room for one: the later one's FAIL is bookkeeping, and says so."""
    from rich.console import Console

    from yieldtune.study.datasets import prepare_folds
    from yieldtune.study.objective import BudgetReached, StudyObjective, WorkerInfo

    storage = f"sqlite:///{tmp_path / 'figs.db'}"
    spec = load_study_spec(study_file(tmp_path, 1))
    study = create_or_load_study(spec, storage)
    objective = StudyObjective(spec, spec.search(), prepare_folds(spec), device="cpu", worker=WorkerInfo("x", "cpu"),
                               store=None, budget=1)
    first, second = study.ask(), study.ask()
    with pytest.raises(BudgetReached):
        objective(second)
    study.tell(second, state=TrialState.FAIL)
    study.tell(first, 0.5)
    counts = state_counts(study)
    assert counts["FAIL"] == 0 and counts["STEPPED_BACK"] == 1 and counts["COMPLETE"] == 1
    console = Console(record=True, width=200)
    console.print(render_status(study_status(spec, storage)))
    text = console.export_text()
    assert "failed 0" in text and "stepped back 1" in text


@pytest.mark.slow
@pytest.mark.slow  # a real `tune run`
def test_run_summary_and_status_show_the_same_trials_per_minute(tmp_path):
    path = study_file(tmp_path, 3)
    proc = run_tune("run", path, "--device", "cpu", "--no-live", cwd=tmp_path)
    summary = next(line for line in proc.stderr.splitlines() if line.startswith("study figs: 3/3 finished"))
    rate = float(re.search(r"([\d.]+) trials/min", summary)[1])
    status = json.loads(run_tune("status", path, "--json", cwd=tmp_path).stdout)
    assert rate == pytest.approx(status["trials_per_minute"], abs=0.006), (summary, status["trials_per_minute"])
