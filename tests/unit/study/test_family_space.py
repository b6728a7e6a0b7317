"""The ``family`` parameter: conditional search spaces per model family, and a pruner that compares a
trial only with trials of its own family."""

from __future__ import annotations

import optuna
import pytest

from yieldtune.study.space import PARAMS
from yieldtune.study.spec import HyperbandSpec, MedianSpec, PercentileSpec, parse_study_spec

TRANSFORMER_NAMES = {n for n, p in PARAMS.items() if p.family == "transformer"}
GBM_NAMES = {n for n, p in PARAMS.items() if p.family == "gbm"}


def _space(search_space: dict):
    spec = parse_study_spec({"name": "s", "data": {"dataset": "synthetic"}, "search_space": search_space},
                            source="test")
    return spec.search()


def _sample(space, n: int = 30, sampler=None):
    study = optuna.create_study(sampler=sampler or optuna.samplers.RandomSampler(seed=0))
    out = []
    for _ in range(n):
        trial = study.ask()
        values = space.sample(trial)
        out.append((values, space.to_config(values), trial))
        study.tell(trial, 0.5)
    return out, study


@pytest.mark.parametrize("family, other", [("gbm", TRANSFORMER_NAMES), ("transformer", GBM_NAMES)])
def test_a_study_fixed_to_one_family_never_samples_the_others_parameters(family, other):
    # the file even lists parameters of the other family: they are never suggested
    space = _space({"family": family, "d_model": [16, 32], "gbm_leaves": {"low": 4, "high": 16}})
    assert not set(space.searched) & other
    samples, study = _sample(space)
    for values, config, _ in samples:
        assert config.family == family and not set(values) & other
    assert not {name for t in study.trials for name in t.params} & other


def test_a_mixed_study_samples_each_trial_from_its_own_family_with_fixed_distributions():
    space = _space({"family": ["transformer", "gbm"]})
    samples, study = _sample(space, n=40, sampler=optuna.samplers.TPESampler(seed=0, n_startup_trials=10,
                                                                             multivariate=True, group=True))
    seen = {values["family"] for values, _, _ in samples}
    assert seen == {"transformer", "gbm"}
    dists: dict = {}
    for t in study.trials:
        own = GBM_NAMES if t.params["family"] == "gbm" else TRANSFORMER_NAMES
        assert set(t.params) - {"family"} <= own
        for name, dist in t.distributions.items():  # one distribution per name over the whole study
            assert dists.setdefault(name, dist) == dist
    for values, config, _ in samples:
        if config.family == "gbm":
            assert config.gbm.learning_rate == values["gbm_lr"] and config.gbm.blocks == values["gbm_blocks"]


def test_fixed_gbm_settings_and_bad_blocks_name_the_key(tmp_path):
    from yieldtune.errors import ConfigError

    with pytest.raises(ConfigError, match="gbm.blocks"):
        parse_study_spec({"name": "s", "data": {"dataset": "synthetic"}, "fixed": {"gbm": {"blocks": "morgan+x"}}},
                         source="f.toml")
    with pytest.raises(ConfigError, match="search_space.family"):
        _space({"family": ["transformer", "forest"]})


def _run(study, family: str, value: float, steps: int = 4) -> bool:
    trial = study.ask()
    trial.set_user_attr("family", family)
    for step in range(1, steps + 1):
        trial.report(value, step)
        if trial.should_prune():
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            return True
    study.tell(trial, value)
    return False


@pytest.mark.parametrize("cfg", [MedianSpec(type="median", n_startup_trials=1, n_warmup_steps=0),
                                 PercentileSpec(type="percentile", percentile=50.0, n_startup_trials=1,
                                                n_warmup_steps=0)])
def test_pruner_compares_a_trial_only_with_its_own_family(cfg):
    from yieldtune.study.pruners import build_pruner

    # without the family rule, weaker Transformers are pruned against strong GBM values ...
    plain = optuna.create_study(direction="maximize", pruner=build_pruner(cfg))
    for v in (0.90, 0.95, 0.92):
        _run(plain, "gbm", v)
    assert _run(plain, "transformer", 0.35)
    # ... with it, the first Transformers are judged among Transformers, and a bad GBM still among GBMs
    by_family = optuna.create_study(direction="maximize", pruner=build_pruner(cfg, by_family=True))
    for v in (0.90, 0.95, 0.92):
        _run(by_family, "gbm", v)
    assert not _run(by_family, "transformer", 0.30)
    assert not _run(by_family, "transformer", 0.35)
    assert _run(by_family, "transformer", 0.10)
    assert _run(by_family, "gbm", 0.50)


def test_hyperband_brackets_see_only_the_trials_family():
    from yieldtune.study.pruners import build_pruner

    # Hyperband builds its bracket studies from the study's storage: the family view reaches them, so the
    # first Transformer has no competitor in any bracket however strong the GBMs before it were.
    study = optuna.create_study(direction="maximize",
                                pruner=build_pruner(HyperbandSpec(type="hyperband", max_resource=4), by_family=True))
    for v in (0.90, 0.95, 0.92, 0.93, 0.91, 0.94):
        _run(study, "gbm", v)
    assert not _run(study, "transformer", 0.05)


def test_shuffle_seed_reorders_rows_before_the_train_rows_split(tmp_path):
    import numpy as np

    from yieldtune.data.synth import write_synthetic_plate
    from yieldtune.study.datasets import load_study_tables

    write_synthetic_plate(tmp_path / "plate.csv", n=30)
    base = {"name": "s", "data": {"dataset": "plate.csv", "train_rows": 20}}
    plain = parse_study_spec(base, source="t", path=tmp_path / "s.toml")
    shuffled = parse_study_spec({**base, "data": {**base["data"], "shuffle_seed": 0}}, source="t",
                                path=tmp_path / "s.toml")
    (a_train, a_test), (b_train, b_test) = load_study_tables(plain), load_study_tables(shuffled)
    order = np.random.RandomState(0).permutation(30)  # = pandas.DataFrame.sample(frac=1, random_state=0)
    everything = a_train.concat(a_test)
    assert b_train.ids == [everything.ids[i] for i in order[:20]]
    assert b_test.ids == [everything.ids[i] for i in order[20:]]


def test_extra_trees_is_searched_and_reaches_lightgbm():
    from yieldtune.model.gbm import lightgbm_params

    space = _space({"family": "gbm", "gbm_extra_trees": [False, True]})
    assert "gbm_extra_trees" in space.searched
    samples, _ = _sample(space, n=12)
    assert {values["gbm_extra_trees"] for values, _, _ in samples} == {False, True}
    for values, config, _ in samples:
        assert config.gbm.extra_trees is values["gbm_extra_trees"]
        assert lightgbm_params(config, threads=1)["extra_trees"] is values["gbm_extra_trees"]
