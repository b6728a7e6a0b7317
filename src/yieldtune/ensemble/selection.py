"""Which trials become ensemble members, and how much each one counts.

Member choice: the top-k COMPLETE trials of a study, optionally requiring distinct parameters
(:data:`DISTINCTNESS` registry). Weights (:data:`WEIGHTINGS` registry, ``ensemble.method``): greedy
forward selection with replacement (Caruana et al., ICML 2004) on held-out predictions, which starts
from the best single model and returns the best prefix of its path, so on the data it was fitted on the
weighted ensemble is never worse than the best single member; the same selection averaged over
bootstrap resamples of those rows (``bagged``, Caruana et al., ICDM 2006), which a small hold-out (a few
held-out molecules) overfits less; or the plain mean.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from yieldtune.metrics import r2_score


@dataclass
class CaruanaResult:
    """Weights per candidate column (sum 1), their score on the hold-out, the best single column; for greedy
    selection also the chosen bag in order, the score after each step and how often each column was chosen."""

    weights: np.ndarray
    selection: list[int]
    scores: list[float]
    score: float
    best_single: int
    best_single_score: float
    counts: np.ndarray = field(default_factory=lambda: np.zeros(0))


def _checked(predictions: np.ndarray, y_true: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    preds = np.asarray(predictions, dtype=np.float64)
    if preds.ndim != 2 or preds.shape[1] == 0:
        raise ValueError("predictions must be a 2-D array with at least one column")
    y = np.asarray(y_true, dtype=np.float64)
    if preds.shape[0] != len(y):
        raise ValueError(f"{preds.shape[0]} prediction rows but {len(y)} targets")
    return preds, y


def _best_single(preds: np.ndarray, y: np.ndarray, score: Callable) -> tuple[list[float], int]:
    """Each column's score and the best column (ties: lowest index, deterministic)."""
    singles = [score(y, preds[:, j]) for j in range(preds.shape[1])]
    return singles, int(np.argmax(singles))


def caruana_select(predictions: np.ndarray, y_true: np.ndarray, *, rounds: int = 50,
                   score: Callable[[np.ndarray, np.ndarray], float] = r2_score) -> CaruanaResult:
    """Greedy forward selection with replacement (higher ``score`` is better).

    ``predictions`` has one column per candidate model. Step 0 takes the best single column; each
    later step adds (with replacement) the column whose addition gives the best bag mean. The best
    prefix of the path wins, so the result is never worse than the best single column on this data.
    """
    preds, y = _checked(predictions, y_true)
    m = preds.shape[1]
    singles, first = _best_single(preds, y, score)
    selection = [first]
    running_sum = preds[:, first].copy()
    scores = [singles[first]]
    best_len, best_score = 1, singles[first]
    for _ in range(max(0, rounds - 1)):
        n = len(selection) + 1
        cand = [score(y, (running_sum + preds[:, j]) / n) for j in range(m)]
        j = int(np.argmax(cand))
        selection.append(j)
        running_sum += preds[:, j]
        scores.append(cand[j])
        if cand[j] > best_score:
            best_len, best_score = n, cand[j]
    counts = np.bincount(selection[:best_len], minlength=m).astype(np.float64)
    weights = counts / counts.sum()
    return CaruanaResult(weights=weights, selection=selection[:best_len], scores=scores,
                         score=best_score, best_single=first, best_single_score=singles[first],
                         counts=counts)


def bagged_caruana_select(predictions: np.ndarray, y_true: np.ndarray, *, rounds: int = 50,
                          score: Callable[[np.ndarray, np.ndarray], float] = r2_score, bags: int = 20,
                          seed: int = 0) -> CaruanaResult:
    """Caruana selection on ``bags`` bootstrap resamples of the rows, the weights averaged (seeded, so
    the same predictions always give the same weights). ``selection`` is empty: there is no single path;
    ``score`` is the averaged weights' score on all rows."""
    preds, y = _checked(predictions, y_true)
    rng = np.random.default_rng(seed)
    weights = np.zeros(preds.shape[1])
    for _ in range(bags):
        rows = rng.integers(0, len(y), len(y))
        weights += caruana_select(preds[rows], y[rows], rounds=rounds, score=score).weights
    weights /= bags
    singles, first = _best_single(preds, y, score)
    return CaruanaResult(weights=weights, selection=[], scores=[], score=score(y, preds @ weights),
                         best_single=first, best_single_score=singles[first])


def mean_weights(predictions: np.ndarray, y_true: np.ndarray, *, rounds: int = 50,
                 score: Callable[[np.ndarray, np.ndarray], float] = r2_score) -> CaruanaResult:
    """Every member counts the same (nothing is fitted on the hold-out rows; ``rounds`` is unused)."""
    preds, y = _checked(predictions, y_true)
    m = preds.shape[1]
    weights = np.full(m, 1.0 / m)
    singles, first = _best_single(preds, y, score)
    return CaruanaResult(weights=weights, selection=list(range(m)), scores=[], score=score(y, preds @ weights),
                         best_single=first, best_single_score=singles[first])


@dataclass(frozen=True)
class Weighting:
    """An ``ensemble.method``: ``select(predictions, y_true, *, rounds, score) -> CaruanaResult`` and the
    sentence model cards use for it."""

    select: Callable[..., CaruanaResult]
    description: str


WEIGHTINGS: dict[str, Weighting] = {
    "caruana": Weighting(caruana_select, "greedy forward selection with replacement (Caruana et al. 2004)"),
    "bagged": Weighting(bagged_caruana_select, "greedy forward selection with replacement, averaged over 20 "
                                               "bootstrap resamples of the rows (Caruana et al. 2006)"),
    "mean": Weighting(mean_weights, "the plain mean (every member configuration weighs the same)"),
}


# ---- which trials -------------------------------------------------------------------------

def _params_key(trial) -> str:
    return json.dumps(trial.params, sort_keys=True, default=str)


def _distinct_params(chosen: Sequence, candidate) -> bool:
    key = _params_key(candidate)
    return all(_params_key(t) != key for t in chosen)


def _distinct_none(chosen: Sequence, candidate) -> bool:
    return True


DISTINCTNESS: dict[str, Callable[[Sequence, object], bool]] = {
    "params": _distinct_params,  # no two members with identical parameters
    "none": _distinct_none,      # any COMPLETE trial may join
}


def select_top_trials(trials: Iterable, k: int, *, direction: str = "maximize",
                      distinct: str = "params") -> list:
    """The best ``k`` COMPLETE trials (FrozenTrial-like: number, state, value, params), best first."""
    from optuna.trial import TrialState

    if distinct not in DISTINCTNESS:
        raise ValueError(f"unknown distinctness rule {distinct!r}; known: {', '.join(DISTINCTNESS)}")
    ok = DISTINCTNESS[distinct]
    done = [t for t in trials if t.state == TrialState.COMPLETE and t.value is not None
            and math.isfinite(t.value)]
    sign = -1.0 if direction == "maximize" else 1.0
    done.sort(key=lambda t: (sign * t.value, t.number))
    chosen: list = []
    for t in done:
        if len(chosen) >= k:
            break
        if ok(chosen, t):
            chosen.append(t)
    return chosen


def trial_best_epoch(trial, *, direction: str = "maximize", default: int | None = None) -> int:
    """The epoch a refit should train for: the worker's ``best_epoch`` user attr, else the best
    reported intermediate value (steps are 1-based epochs), else ``default``."""
    attr = trial.user_attrs.get("best_epoch")
    if attr is not None:
        return max(1, int(attr))
    iv = {int(s): v for s, v in trial.intermediate_values.items() if v is not None and math.isfinite(v)}
    if iv:
        pick = max if direction == "maximize" else min
        best = pick(iv.values())
        return max(1, min(s for s, v in iv.items() if v == best))
    if default is None:
        raise ValueError(f"trial {trial.number}: no best_epoch user attr and no intermediate values")
    return max(1, int(default))
