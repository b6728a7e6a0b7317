"""Model families behind one small interface, so trials, refits and ensembles treat them alike.

A family trains a :class:`~yieldtune.config.RunConfig` on a training table (with an optional validation
table), reports the validation metrics every step (a Transformer epoch or ``report_every`` GBM rounds) to
a callback that may raise ``optuna.TrialPruned``, and returns a predictor with ``predict``/``save``; a refit
trains the configuration again for the steps its trial found best. :data:`FAMILIES` is keyed by the
``family`` name of the configuration; loading a saved member is
:data:`yieldtune.ensemble.format.MEMBER_FORMATS`' job.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from yieldtune.config import DEFAULT_EPOCHS, RunConfig


@dataclass
class StepReport:
    """One validation report: the step (1-based epoch or boosting round) and its metrics."""

    step: int
    val: dict[str, float | None]
    train_loss: float | None = None
    seconds: float | None = None


@dataclass
class FamilyFit:
    """What a trial needs from training: the predictor, validation predictions and the best step."""

    predictor: Any
    val_predictions: np.ndarray | None
    best_step: int
    best_val: dict[str, float | None]
    steps: int  # steps trained
    train_loss: float | None = None  # the last step's training loss, where the family has one


class ModelFamily(Protocol):
    name: str
    step_name: str  # "epoch" | "round"
    best_step_attr: str  # trial user attribute holding the best step

    def fit(self, config: RunConfig, train, val, *, device: str, cache_dir: Path | None, metric: str,
            on_step: Callable[[StepReport], None] | None) -> FamilyFit: ...

    def refit_config(self, config: RunConfig, steps: int | None, seed: int) -> RunConfig: ...

    def default_steps(self, config: RunConfig) -> int: ...

    def schedule_steps(self, config: RunConfig) -> int | None:
        """The whole schedule a configuration trains without early stopping (None: it follows the data size)."""
        ...


class TransformerFamily:
    name, step_name, best_step_attr = "transformer", "epoch", "best_epoch"

    def fit(self, config, train, val, *, device, cache_dir, metric, on_step):
        from yieldtune.train.trainer import Trainer

        def on_epoch(m) -> None:
            if on_step is not None:
                on_step(StepReport(m.epoch, {"r2": m.val_r2, "mae": m.val_mae, "rmse": m.val_rmse},
                                   float(m.train_loss), float(m.seconds)))

        result = Trainer(config, device=device, cache_dir=cache_dir).fit(train, val, on_epoch=on_epoch)
        b = result.best
        return FamilyFit(result.predictor, result.val_predictions, int(result.best_epoch),
                         {"r2": b.val_r2, "mae": b.val_mae, "rmse": b.val_rmse}, len(result.history),
                         float(result.history[-1].train_loss))

    def refit_config(self, config, steps, seed):
        return config.with_overrides({**({} if steps is None else {"train.epochs": int(steps)}),
                                      "train.seed": int(seed), "train.early_stopping_patience": 0})

    def default_steps(self, config):
        # a trial that recorded no best epoch: its configured epochs (unset: the most an unset value trains)
        return int(config.train.epochs or DEFAULT_EPOCHS)

    def schedule_steps(self, config):
        return config.train.epochs  # None: train.epochs_for the refit's rows


class GBMFamily:
    name, step_name, best_step_attr = "gbm", "round", "best_iteration"

    def fit(self, config, train, val, *, device, cache_dir, metric, on_step):
        from yieldtune.metrics import regression_metrics
        from yieldtune.train.gbm import fit_gbm

        def on_report(r) -> None:
            if on_step is not None:
                on_step(StepReport(r.round, {"r2": r.val_r2, "mae": r.val_mae, "rmse": r.val_rmse}))

        result = fit_gbm(config, train, val, cache_dir=cache_dir, metric=metric, on_report=on_report)
        best: dict[str, float | None] = {"r2": None, "mae": None, "rmse": None}
        if result.val_predictions is not None:
            best = dict(regression_metrics(val.yields, result.val_predictions))
        return FamilyFit(result.predictor, result.val_predictions, result.best_iteration, best,
                         result.best_iteration)

    def refit_config(self, config, steps, seed):
        return config.with_overrides({"gbm.n_rounds": int(steps), "gbm.seed": int(seed),
                                      "gbm.early_stopping_rounds": 0})

    def default_steps(self, config):
        return int(config.gbm.n_rounds)

    def schedule_steps(self, config):
        return int(config.gbm.n_rounds)


FAMILIES: dict[str, ModelFamily] = {"transformer": TransformerFamily(), "gbm": GBMFamily()}


def family_of(config: RunConfig) -> ModelFamily:
    return FAMILIES[config.family]


__all__ = ["FAMILIES", "FamilyFit", "ModelFamily", "StepReport", "family_of"]
