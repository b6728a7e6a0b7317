"""`tune status` after the budget: refit progress and whether the study's ensemble is built."""

from __future__ import annotations

import json

import pytest

from helpers import TINY_SEARCH_SPACE, run_tune, study_toml
from yieldtune.data.synth import write_synthetic_plate

pytestmark = pytest.mark.slow


def test_status_shows_refit_and_ensemble_progress(tmp_path):
    write_synthetic_plate(tmp_path / "plate.csv", n=40)
    path = tmp_path / "st.toml"
    path.write_text(study_toml("st", search_space=TINY_SEARCH_SPACE, n_trials=2,
                                 ensemble="auto = false\ntop_k = 1\nseeds = 2"))
    run_tune("run", path, "--device", "cpu", "--no-live", cwd=tmp_path)
    before = json.loads(run_tune("status", path, "--json", cwd=tmp_path).stdout)
    assert before["refits"] is None and before["ensemble"] is None  # auto = false: nothing queued yet
    assert "refits: not queued yet" in run_tune("status", path, cwd=tmp_path).stdout

    run_tune("ensemble", path, "--device", "cpu", cwd=tmp_path)
    after = json.loads(run_tune("status", path, "--json", cwd=tmp_path).stdout)
    assert after["refits"] == {"planned": 2, "complete": 2, "running": 0, "waiting": 0, "failed_attempts": 0}
    assert after["ensemble"]["members"] == 2 and after["ensemble"]["dir"].endswith("ensemble")
    text = run_tune("status", path, cwd=tmp_path).stdout
    assert "refits 2/2 done" in text and "ensemble: built in" in text and "2 members" in text
