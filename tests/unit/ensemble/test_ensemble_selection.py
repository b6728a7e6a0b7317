"""Caruana greedy selection (plain and bagged), the plain mean, top-k choice and the weighted mixture, on random
data (no models)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
from optuna.trial import TrialState

from yieldtune.ensemble.ensemble import Ensemble, Member, combine
from yieldtune.ensemble.selection import (
    WEIGHTINGS,
    bagged_caruana_select,
    caruana_select,
    mean_weights,
    select_top_trials,
    trial_best_epoch,
)
from yieldtune.metrics import r2_score


def _random_case(rng: np.random.Generator):
    n = int(rng.integers(5, 60))
    m = int(rng.integers(1, 8))
    y = rng.uniform(0, 1, n)
    noise = rng.uniform(0.01, 0.6, m)
    bias = rng.normal(0, 0.2, m)
    preds = y[:, None] + bias[None, :] + rng.normal(0, 1, (n, m)) * noise[None, :]
    if rng.random() < 0.2:  # sometimes pure garbage columns
        preds = rng.uniform(-1, 2, (n, m))
    return preds, y


@pytest.mark.parametrize("seed", range(60))
def test_caruana_never_worse_than_best_single_and_weights_sum_to_one(seed):
    rng = np.random.default_rng(seed)
    preds, y = _random_case(rng)
    res = caruana_select(preds, y, rounds=int(rng.integers(1, 40)))
    best_single = max(r2_score(y, preds[:, j]) for j in range(preds.shape[1]))
    ens = r2_score(y, preds @ res.weights)
    assert ens >= best_single - 1e-12
    assert math.isclose(res.score, ens, rel_tol=1e-9, abs_tol=1e-12)
    assert math.isclose(res.weights.sum(), 1.0, rel_tol=1e-12)
    assert np.all(res.weights >= 0)
    # weights are multiples of 1/len(bag): selection with replacement
    bag = len(res.selection)
    assert np.allclose(res.weights * bag, np.round(res.weights * bag))
    assert res.selection[0] == int(np.argmax([r2_score(y, preds[:, j]) for j in range(preds.shape[1])]))


def test_caruana_selects_with_replacement():
    # a strong model and a weak one with opposite bias: the best bag uses the strong one more than once
    rng = np.random.default_rng(0)
    y = rng.uniform(0, 1, 200)
    strong = y + 0.05 + rng.normal(0, 0.01, 200)
    weak = y - 0.10 + rng.normal(0, 0.01, 200)
    res = caruana_select(np.column_stack([strong, weak]), y, rounds=20)
    assert res.counts[0] >= 2 and res.counts[1] >= 1
    assert res.weights[0] > res.weights[1] > 0
    assert res.score > r2_score(y, strong)


def test_caruana_single_model_gets_weight_one():
    y = np.linspace(0, 1, 10)
    res = caruana_select(y[:, None] * 0.9, y)
    assert res.weights.tolist() == [1.0]


def test_bagged_selection_splits_a_near_tie_that_plain_selection_gives_to_one_model():
    # b is a with a little extra noise: a wins on these 60 rows, but not on every resample of them
    rng = np.random.default_rng(0)
    y = rng.uniform(0, 1, 60)
    a = y + rng.normal(0, 0.1, 60)
    b = a + rng.normal(0.01, 0.02, 60)
    preds = np.column_stack([a, b])
    assert caruana_select(preds, y).weights.tolist() == [1.0, 0.0]
    bagged = bagged_caruana_select(preds, y)
    assert 0.05 < bagged.weights[1] < 0.5 and math.isclose(bagged.weights.sum(), 1.0)
    assert math.isclose(bagged.score, r2_score(y, preds @ bagged.weights))
    assert bagged_caruana_select(preds, y).weights.tolist() == bagged.weights.tolist()  # seeded
    assert bagged_caruana_select(preds, y, seed=1).weights.tolist() != bagged.weights.tolist()


def test_bagged_selection_gives_a_dominant_model_all_the_weight():
    rng = np.random.default_rng(1)
    y = rng.uniform(0, 1, 40)
    preds = np.column_stack([y + rng.normal(0, 0.01, 40), rng.uniform(0, 1, 40), 1 - y])
    assert bagged_caruana_select(preds, y).weights.tolist() == [1.0, 0.0, 0.0]


def test_mean_weights_ignore_the_hold_out():
    rng = np.random.default_rng(2)
    y = rng.uniform(0, 1, 30)
    preds = np.column_stack([y, rng.uniform(0, 1, 30), rng.uniform(0, 1, 30), 1 - y])
    res = mean_weights(preds, y)
    assert res.weights.tolist() == [0.25] * 4
    assert res.best_single == 0 and math.isclose(res.score, r2_score(y, preds.mean(axis=1)))


def test_every_weighting_is_described_and_returns_convex_weights():
    rng = np.random.default_rng(3)
    preds, y = _random_case(rng)
    for name, weighting in WEIGHTINGS.items():
        res = weighting.select(preds, y, rounds=10, score=r2_score)
        assert weighting.description and np.all(res.weights >= 0), name
        assert math.isclose(res.weights.sum(), 1.0), name


def _trial(number, value, params, state=TrialState.COMPLETE, **kw):
    return SimpleNamespace(number=number, value=value, params=params, state=state,
                           user_attrs=kw.get("user_attrs", {}), intermediate_values=kw.get("iv", {}))


def test_top_k_distinct_params_and_direction():
    trials = [
        _trial(0, 0.5, {"lr": 1}),
        _trial(1, 0.9, {"lr": 2}),
        _trial(2, 0.9, {"lr": 2}),          # same params as trial 1
        _trial(3, 0.95, {"lr": 3}, state=TrialState.PRUNED),
        _trial(4, 0.7, {"lr": 4}),
        _trial(5, float("nan"), {"lr": 5}),
    ]
    assert [t.number for t in select_top_trials(trials, 3, distinct="params")] == [1, 4, 0]
    assert [t.number for t in select_top_trials(trials, 3, distinct="none")] == [1, 2, 4]
    assert [t.number for t in select_top_trials(trials, 2, direction="minimize")] == [0, 4]
    with pytest.raises(ValueError, match="unknown distinctness"):
        select_top_trials(trials, 2, distinct="bogus")


def test_best_epoch_from_user_attr_or_intermediate_values():
    assert trial_best_epoch(_trial(0, 1, {}, user_attrs={"best_epoch": 4}, iv={1: 0.9})) == 4
    assert trial_best_epoch(_trial(0, 1, {}, iv={1: 0.2, 2: 0.6, 3: 0.6, 4: 0.1})) == 2
    assert trial_best_epoch(_trial(0, 1, {}, iv={1: 0.2, 2: 0.1}), direction="minimize") == 2
    assert trial_best_epoch(_trial(0, 1, {}), default=7) == 7
    with pytest.raises(ValueError):
        trial_best_epoch(_trial(0, 1, {}))


class _Const:
    """A member that predicts fixed arrays (mean, and per-row spread across TTA copies)."""

    def __init__(self, mean, std):
        self.mean, self.std = np.asarray(mean, float), np.asarray(std, float)
        self.calls = []

    def predict(self, reactions, *, tta=0, seed=0, batch_size=256):
        self.calls.append((len(reactions), tta, seed))
        return self.mean, self.std


def test_ensemble_mean_and_std_follow_the_weighted_mixture():
    a = _Const([0.2, 0.4], [0.0, 0.1])
    b = _Const([0.6, 0.4], [0.0, 0.1])
    ens = Ensemble([Member("a", a, 3.0), Member("b", b, 1.0)], tta=2)
    mean, std = ens.predict(["x", "y"])
    assert np.allclose(mean, [0.75 * 0.2 + 0.25 * 0.6, 0.4])
    # row 0: no TTA spread, member spread only; row 1: identical means, spread = TTA std
    m0 = 0.75 * 0.2 + 0.25 * 0.6
    assert np.isclose(std[0], math.sqrt(0.75 * (0.2 - m0) ** 2 + 0.25 * (0.6 - m0) ** 2))
    assert np.isclose(std[1], 0.1)
    assert a.calls == [(2, 2, 0)]  # the ensemble's TTA default reaches the members


def test_combine_equals_pooled_copies():
    # pooled population std over every (member, copy) with member weights == mixture formula
    rng = np.random.default_rng(1)
    copies = [rng.normal(0.5, 0.1, (4, 3)), rng.normal(0.3, 0.2, (4, 3))]  # rows x copies
    w = np.array([0.25, 0.75])
    means = np.column_stack([c.mean(axis=1) for c in copies])
    stds = np.column_stack([c.std(axis=1) for c in copies])
    mean, std = combine(means, stds, w)
    pooled = np.concatenate(copies, axis=1)
    pw = np.repeat(w / 3, 3)
    ref_mean = pooled @ pw
    ref_std = np.sqrt(((pooled - ref_mean[:, None]) ** 2) @ pw)
    assert np.allclose(mean, ref_mean) and np.allclose(std, ref_std)


def test_zero_weight_member_is_not_called():
    a, b = _Const([0.1], [0.0]), _Const([0.9], [0.0])
    ens = Ensemble([Member("a", a, 1.0), Member("b", b, 0.0)])
    mean, std = ens.predict(["x"])
    assert mean.tolist() == [0.1] and std.tolist() == [0.0] and b.calls == []
    with pytest.raises(ValueError):
        Ensemble([Member("a", a, 0.0)])
