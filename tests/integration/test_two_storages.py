"""One study file, two storages, one artifact directory: each study's ensemble and export are its own."""

from __future__ import annotations

import json

import optuna
import pytest

from helpers import TINY_SEARCH_SPACE, run_tune, study_toml
from yieldtune.data.synth import write_synthetic_plate

pytestmark = pytest.mark.slow


def trial_values(url: str) -> dict[int, float]:
    study = optuna.load_study(study_name="twin", storage=url)
    return {t.number: t.value for t in study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))}


def uid(url: str) -> str:
    return optuna.load_study(study_name="twin", storage=url).user_attrs.get("yieldtune:study_uid")


def test_ensembles_and_exports_of_one_study_file_in_two_storages_never_mix(tmp_path):
    write_synthetic_plate(tmp_path / "plate.csv", n=40)
    path = tmp_path / "twin.toml"
    first, second = f"sqlite:///{tmp_path / 'twin.db'}", f"sqlite:///{tmp_path / 'other.db'}"
    for seed, storage in ((0, []), (5, ["--storage", second])):  # another seed, so the two studies differ
        path.write_text(study_toml("twin", search_space=TINY_SEARCH_SPACE, n_trials=2, sampler_seed=seed,
                                   ensemble="top_k = 1\nseeds = 1"))
        run_tune("run", path, "--device", "cpu", "--no-live", *storage, cwd=tmp_path)  # one artifact dir
    assert trial_values(first) != trial_values(second)
    for name, url, storage in (("m2", second, ["--storage", second]), ("m1", first, [])):
        run_tune("export-best", path, "--out", tmp_path / name, *storage, cwd=tmp_path)
        exported = json.loads((tmp_path / name / "ensemble.json").read_text())
        values = trial_values(url)
        for member in exported["members"]:  # every member comes from this study's trials, not the other's
            assert member["trial_value"] == pytest.approx(values[member["trial_number"]]), name
        assert f"{max(values.values()):.4f}" in (tmp_path / name / "MODEL_CARD.md").read_text()
        assert exported["study_uid"] == uid(url) is not None
    assert uid(first) != uid(second)

    report = run_tune("report", path, "--storage", second, "--out", tmp_path / "r", cwd=tmp_path)
    assert "holds the ensemble of" in report.stderr  # the directory now holds the first study's again
