"""How long each refit trains (``ensemble.refit_steps``): the trial's whole schedule or its best step."""

from __future__ import annotations

import optuna
import pytest

from helpers import study_toml, tiny_run_config
from yieldtune.ensemble.refit import plan_refits, refit_config
from yieldtune.study.spec import load_study_spec


def _trial(config, value, intermediate, **attrs):
    return optuna.trial.create_trial(value=value, intermediate_values=intermediate,
                                     user_attrs={"config": config.model_dump(mode="json"), **attrs})


@pytest.mark.parametrize("refit_steps", ["full", "best", None])
def test_refits_train_the_whole_schedule_or_the_best_step(tmp_path, refit_steps):
    path = tmp_path / "plan.toml"
    chosen = "" if refit_steps is None else f'\nrefit_steps = "{refit_steps}"'
    path.write_text(study_toml("plan", search_space="", n_trials=2,
                               ensemble=f"auto = false\ntop_k = 1\nseeds = 1{chosen}"))
    spec = load_study_spec(path)
    refit_steps = refit_steps or "best"  # the default
    study = optuna.create_study(direction="maximize")
    transformer = tiny_run_config(epochs=6)
    study.add_trial(_trial(transformer, 0.8, {1: 0.5, 2: 0.8, 3: 0.7, 4: 0.6, 5: 0.6, 6: 0.7},
                           family="transformer"))
    gbm = tiny_run_config().with_overrides({"family": "gbm", "gbm.n_rounds": 400})
    study.add_trial(_trial(gbm, 0.6, {50: 0.5, 100: 0.6}, family="gbm", best_iteration=120))
    plan = {entry["family"]: entry for entry in plan_refits(spec, study)}
    want = {"full": {"transformer": 6, "gbm": 400}, "best": {"transformer": 2, "gbm": 120}}[refit_steps]
    assert {family: entry["steps"] for family, entry in plan.items()} == want
    refit = refit_config(spec, plan["transformer"])
    assert refit.train.epochs == want["transformer"] and refit.train.early_stopping_patience == 0
    refit = refit_config(spec, plan["gbm"])
    assert refit.gbm.n_rounds == want["gbm"] and refit.gbm.early_stopping_rounds == 0


def test_a_full_refit_of_a_trial_with_unset_epochs_follows_the_refit_rows(tmp_path):
    path = tmp_path / "plan.toml"
    path.write_text(study_toml("plan", search_space="", n_trials=1,
                               ensemble='auto = false\ntop_k = 1\nseeds = 1\nrefit_steps = "full"'))
    spec = load_study_spec(path)
    study = optuna.create_study(direction="maximize")
    study.add_trial(_trial(tiny_run_config(epochs=None), 0.8, {1: 0.8, 2: 0.7}, family="transformer"))
    [entry] = plan_refits(spec, study)
    assert entry["steps"] is None
    config = refit_config(spec, entry)
    assert config.train.epochs is None and config.train.epochs_for(20000) == 10
