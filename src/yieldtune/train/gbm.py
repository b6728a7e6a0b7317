"""Training the GBM family: LightGBM boosting with early stopping on the validation fold.

The validation metrics are computed every ``gbm.report_every`` rounds and handed to a callback (a trial
reports them to Optuna's pruner there); a refit (no validation rows) trains exactly ``gbm.n_rounds``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from yieldtune.config import RunConfig
from yieldtune.model.gbm import GBMPredictor, ReactionFeatures, lightgbm_params


@dataclass
class GBMRound:
    """One validation report: boosting round (1-based) and the validation metrics."""

    round: int
    val_r2: float | None
    val_mae: float | None
    val_rmse: float | None


@dataclass
class GBMFitResult:
    history: list[GBMRound]
    best_iteration: int
    predictor: "GBMPredictor"
    val_predictions: np.ndarray | None
    val_metric: float | None


def _metrics(y, p) -> dict[str, float]:
    from yieldtune.metrics import regression_metrics

    return regression_metrics(y, np.clip(p, 0.0, 1.0))


def fit_gbm(config: RunConfig, train, val=None, *, cache_dir: str | os.PathLike | None = None,
            metric: str = "r2", on_report: Callable[[GBMRound], None] | None = None,
            threads: int | None = None) -> GBMFitResult:
    """Boost on ``train``; with ``val``: early stopping on ``metric`` and a report every ``report_every`` rounds.

    ``on_report`` may raise (``optuna.TrialPruned``) to stop training; the exception propagates.
    Without ``val`` (refits) exactly ``gbm.n_rounds`` rounds are trained.
    """
    import lightgbm

    g = config.gbm
    features = ReactionFeatures.for_config(config, cache_dir)
    x_train = features.transform(train.reactions)
    y_train = np.asarray(train.yields, dtype=np.float64)
    params = lightgbm_params(config, threads)
    dtrain = lightgbm.Dataset(x_train, y_train, params={"verbosity": -1}, free_raw_data=True)
    history: list[GBMRound] = []
    callbacks: list = []
    valid_sets, feval = [], None
    higher_better = metric == "r2"
    if val is not None and len(val):
        x_val = features.transform(val.reactions)
        y_val = np.asarray(val.yields, dtype=np.float64)
        dval = lightgbm.Dataset(x_val, y_val, reference=dtrain)
        valid_sets = [dval]

        def feval(preds, _data):
            return metric, _metrics(y_val, preds)[metric], higher_better

        def report(env) -> None:
            done = env.iteration + 1
            if done % g.report_every and done != env.end_iteration:
                return
            m = _metrics(y_val, env.model.predict(x_val, num_iteration=done))
            entry = GBMRound(done, m["r2"], m["mae"], m["rmse"])
            history.append(entry)
            if on_report is not None:
                on_report(entry)

        report.order = 31  # after LightGBM's early stopping (order 30)
        callbacks.append(report)
        if g.early_stopping_rounds:
            callbacks.append(lightgbm.early_stopping(g.early_stopping_rounds, first_metric_only=True, verbose=False))
    booster = lightgbm.train(params, dtrain, num_boost_round=g.n_rounds, valid_sets=valid_sets,
                             valid_names=["valid"] if valid_sets else None, feval=feval, callbacks=callbacks)
    best = int(booster.best_iteration or 0) or booster.current_iteration()
    if best < booster.current_iteration():  # keep only the trees up to the best round (what save writes)
        booster = lightgbm.Booster(model_str=booster.model_to_string(num_iteration=best))
    val_pred, val_metric = None, None
    if valid_sets:
        val_pred = np.clip(booster.predict(x_val), 0.0, 1.0)
        val_metric = _metrics(y_val, val_pred)[metric]
    return GBMFitResult(history, best, GBMPredictor(booster, config, features), val_pred, val_metric)


__all__ = ["GBMFitResult", "GBMRound", "fit_gbm"]
