"""``molecule_features`` / ``feature_combine`` / ``encoder`` in study search spaces."""

from __future__ import annotations

import textwrap

import optuna
import pytest

from yieldtune.errors import ConfigError
from yieldtune.study.spec import load_study_spec

MINIMAL = """
name = "t"
[data]
dataset = "plate.csv"
"""


def _spec(tmp_path, body: str, name: str = "s.toml"):
    p = tmp_path / name
    p.write_text(MINIMAL + textwrap.dedent(body))
    return load_study_spec(p)


def test_feature_combinations_are_one_categorical_and_combine_is_conditional(tmp_path):
    space = _spec(tmp_path, """
        [search_space]
        molecule_features = ["none", "morgan", "morgan+rdkit2d"]
        feature_combine = ["add", "gate"]
        [fixed.model]
        encoder = "scratch"  # what feature_combine combines the features with
    """).search()
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = set()
    for _ in range(16):
        trial = study.ask()
        config = space.suggest(trial)
        choice = trial.params["molecule_features"]
        seen.add(choice)
        expected = () if choice == "none" else tuple(choice.split("+"))
        assert config.model.molecule_features == expected
        assert ("feature_combine" in trial.params) == (choice != "none")
        study.tell(trial, 0.0)
    assert seen == {"none", "morgan", "morgan+rdkit2d"}
    # a finished trial's params rebuild the same config (refits and exports)
    best = study.trials[0]
    assert space.config_from_params(best.params).model.molecule_features == space.suggest(
        optuna.trial.FixedTrial(best.params)).model.molecule_features


@pytest.mark.parametrize("choice", ['["morgan+ecfp"]', '"morgan+morgan"', "[1]"])
def test_bad_feature_choices_name_the_key(tmp_path, choice):
    with pytest.raises(ConfigError, match="search_space.molecule_features"):
        _spec(tmp_path, f"[search_space]\nmolecule_features = {choice}\n").search()


def test_fixed_molecule_features_win_over_the_default(tmp_path):
    space = _spec(tmp_path, """
        [fixed.model]
        molecule_features = ["rdkit2d"]
        feature_combine = "concat"
    """).search()
    config = space.suggest(optuna.create_study().ask())
    assert config.model.molecule_features == ("rdkit2d",) and config.model.feature_combine == "concat"


def test_encoder_none_and_feature_dropout_are_searched_only_with_features(tmp_path):
    space = _spec(tmp_path, """
        [search_space]
        molecule_features = ["morgan", "morgan+rdkit2d"]
        encoder = ["scratch", "none"]
        feature_dropout = {low = 0.0, high = 0.6}
    """).search()
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    encoders = set()
    for _ in range(12):
        trial = study.ask()
        config = space.suggest(trial)
        encoders.add(config.model.encoder)
        assert 0.0 <= config.model.feature_dropout <= 0.6
        assert config.model.feature_dropout == trial.params["feature_dropout"]
        study.tell(trial, 0.0)
    assert encoders == {"scratch", "none"}
    with pytest.raises(ConfigError, match="search_space.encoder.*molecule_features"):
        _spec(tmp_path, """
            [search_space]
            molecule_features = ["none", "morgan"]
            encoder = "none"
        """, name="bad.toml").search()
    with pytest.raises(ConfigError, match="fixed.model.encoder.*molecule_features"):
        _spec(tmp_path, """
            [search_space]
            molecule_features = ["none", "morgan"]
            [fixed.model]
            encoder = "none"
        """, name="bad_fixed.toml").search()
    plain = _spec(tmp_path, '[search_space]\nmolecule_features = "none"\nfeature_dropout = {low = 0.0, high = 0.6}\n',
                  name="p.toml").search()
    trial = optuna.create_study().ask()
    assert plain.suggest(trial).model.feature_dropout == 0.0 and "feature_dropout" not in trial.params


def test_encoder_none_next_to_a_featureless_choice_splits_into_two_names(tmp_path):
    """Trials with features sample ``encoder`` over all its choices, featureless ones ``token_encoder``
    over the rest: every name keeps one distribution, and no trial gets the invalid none-without-features."""
    space = _spec(tmp_path, """
        [search_space]
        molecule_features = ["none", "morgan"]
        encoder = ["none", "scratch", "pretrained"]
    """).search()
    assert "token_encoder" in space.searched
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = set()
    for _ in range(30):
        trial = study.ask()
        config = space.suggest(trial)
        if trial.params["molecule_features"] == "none":
            assert "encoder" not in trial.params
            assert config.model.encoder == trial.params["token_encoder"] != "none"
        else:
            assert "token_encoder" not in trial.params
            assert config.model.encoder == trial.params["encoder"]
        seen.add((trial.params["molecule_features"], config.model.encoder))
        assert space.config_from_params(trial.params) == config  # refits rebuild the trial's config
        study.tell(trial, 0.0)
    assert seen == {("none", "scratch"), ("none", "pretrained"), ("morgan", "none"), ("morgan", "scratch"),
                    ("morgan", "pretrained")}
    distributions = {name: {repr(t.distributions[name]) for t in study.trials if name in t.distributions}
                     for name in ("encoder", "token_encoder")}
    assert all(len(d) == 1 for d in distributions.values())
    with pytest.raises(ConfigError, match="search_space.token_encoder"):
        _spec(tmp_path, """
            [search_space]
            molecule_features = ["none", "morgan"]
            token_encoder = ["scratch", "none"]
        """, name="bad.toml").search()


def test_flat_trials_of_an_encoder_none_search_take_a_token_encoder(tmp_path):
    space = _spec(tmp_path, """
        [search_space]
        architecture = ["hierarchical", "flat"]
        molecule_features = "morgan"
        encoder = ["none", "scratch", "pretrained"]
    """).search()
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = set()
    for _ in range(40):
        trial = study.ask()
        config = space.suggest(trial)  # never the invalid none-with-flat
        seen.add((config.model.architecture, config.model.encoder))
        assert ("token_encoder" in trial.params) == (config.model.architecture == "flat")
        study.tell(trial, 0.0)
    assert seen == {(a, e) for a in ("hierarchical", "flat") for e in ("none", "scratch", "pretrained")} - {
        ("flat", "none")}


def test_an_encoder_search_without_none_is_unchanged(tmp_path):
    """Studies that search token encoders only keep sampling ``encoder`` in every trial (their stored trials
    must rebuild the same configs)."""
    space = _spec(tmp_path, """
        [search_space]
        molecule_features = ["none", "morgan"]
        encoder = ["scratch", "pretrained"]
    """).search()
    assert "token_encoder" not in space.entries
    trial = optuna.create_study().ask()
    space.suggest(trial)
    params = {**trial.params, "molecule_features": "none", "encoder": "pretrained"}
    assert space.config_from_params(params).model.encoder == "pretrained"


def test_feature_combine_is_sampled_only_where_features_meet_a_token_encoder(tmp_path):
    """``feature_combine`` acts only in hierarchical trials with features and a token encoder: encoder-none
    trials (a molecule is its features) and flat trials (features summed per role) leave it out."""
    space = _spec(tmp_path, """
        [search_space]
        architecture = ["hierarchical", "flat"]
        molecule_features = ["none", "morgan"]
        encoder = ["none", "scratch"]
        feature_combine = ["add", "gate"]
    """).search()
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    sampled = set()
    for _ in range(40):
        trial = study.ask()
        config = space.suggest(trial)
        m = config.model
        combines = bool(m.molecule_features) and m.encoder != "none" and m.architecture == "hierarchical"
        assert ("feature_combine" in trial.params) == combines
        if combines:
            sampled.add(trial.params["feature_combine"])
            assert m.feature_combine == trial.params["feature_combine"]
        assert space.config_from_params(trial.params) == config
        study.tell(trial, 0.0)
    assert sampled == {"add", "gate"}


@pytest.mark.parametrize("fixed,sampled", [("", False), ('[fixed.model]\nencoder = "scratch"\n', True)])
def test_feature_combine_follows_the_derived_or_fixed_encoder(tmp_path, fixed, sampled):
    """A file that does not search ``encoder`` gets trials with features and no token encoder (the default
    that follows the features), so it samples no ``feature_combine``; a fixed token encoder brings it back."""
    space = _spec(tmp_path, '[search_space]\nmolecule_features = "morgan"\nfeature_combine = ["add", "gate"]\n'
                  + fixed).search()
    trial = optuna.create_study().ask()
    config = space.suggest(trial)
    assert config.model.encoder == ("scratch" if sampled else "none")
    assert ("feature_combine" in trial.params) == sampled
    assert ("feature_combine" in space.searched) == sampled  # never sampled, so not listed (grids, warm starts)


def test_a_token_encoder_no_trial_needs_is_not_listed(tmp_path):
    """Every trial has features and the hierarchical model, so none samples a hand-written ``token_encoder``."""
    space = _spec(tmp_path, """
        [search_space]
        molecule_features = ["morgan", "morgan+rdkit2d"]
        encoder = ["none", "scratch"]
        token_encoder = ["scratch", "pretrained"]
    """).search()
    assert "token_encoder" not in space.searched and "encoder" in space.searched
