"""What optuna-dashboard shows: the objective's name (not "Objective 0"), and a refit study that says what it is."""

from __future__ import annotations

import optuna

from helpers import TINY_SEARCH_SPACE, study_toml
from yieldtune.data.synth import write_synthetic_plate
from yieldtune.ensemble.refit import enqueue_refits, refit_study_name
from yieldtune.study.service import create_or_load_study
from yieldtune.study.spec import load_study_spec


def test_metric_names_of_the_study_and_its_refit_queue(tmp_path):
    write_synthetic_plate(tmp_path / "plate.csv", n=40)
    path = tmp_path / "names.toml"
    path.write_text(study_toml("names", search_space=TINY_SEARCH_SPACE, n_trials=1))
    spec = load_study_spec(path)
    url = f"sqlite:///{tmp_path / 'names.db'}"
    study = create_or_load_study(spec, url)
    assert study.metric_names == ["r2"]  # optuna-dashboard's label for the value
    study.add_trial(optuna.trial.create_trial(
        params={"lr": 1e-3}, distributions={"lr": optuna.distributions.FloatDistribution(5e-4, 5e-3, log=True)},
        value=0.5, intermediate_values={1: 0.4, 2: 0.5}))
    enqueue_refits(spec, url)
    refit = optuna.load_study(study_name=refit_study_name("names"), storage=url)
    assert refit.metric_names == ["final_train_loss"]
    assert "refit queue of study 'names'" in refit.user_attrs["what"] and "not a search" in refit.user_attrs["what"]
