"""Pruner registry: the ``[pruner] type`` of a study file -> an Optuna pruner.

Every parameter is spelled out in the study file or takes the explicit constant default of its
``*Spec`` model in :mod:`yieldtune.study.spec`; nothing is "auto". Steps are 1-based epochs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:  # pragma: no cover
    import optuna


def _median(cfg):
    import optuna

    return optuna.pruners.MedianPruner(n_startup_trials=cfg.n_startup_trials, n_warmup_steps=cfg.n_warmup_steps,
                                       interval_steps=cfg.interval_steps, n_min_trials=cfg.n_min_trials)


def _percentile(cfg):
    import optuna

    return optuna.pruners.PercentilePruner(cfg.percentile, n_startup_trials=cfg.n_startup_trials,
                                           n_warmup_steps=cfg.n_warmup_steps, interval_steps=cfg.interval_steps,
                                           n_min_trials=cfg.n_min_trials)


def _successive_halving(cfg):
    import optuna

    return optuna.pruners.SuccessiveHalvingPruner(
        min_resource=cfg.min_resource, reduction_factor=cfg.reduction_factor,
        min_early_stopping_rate=cfg.min_early_stopping_rate, bootstrap_count=cfg.bootstrap_count)


def _hyperband(cfg):
    import optuna

    return optuna.pruners.HyperbandPruner(min_resource=cfg.min_resource, max_resource=cfg.max_resource,
                                          reduction_factor=cfg.reduction_factor, bootstrap_count=cfg.bootstrap_count)


def _patient(cfg):
    import optuna

    inner = None if cfg.wrapped.type == "none" else build_pruner(cfg.wrapped)
    return optuna.pruners.PatientPruner(inner, patience=cfg.patience, min_delta=cfg.min_delta)


def _none(cfg):
    import optuna

    return optuna.pruners.NopPruner()


PRUNERS: dict[str, Callable] = {
    "median": _median, "percentile": _percentile, "successive_halving": _successive_halving,
    "hyperband": _hyperband, "patient": _patient, "none": _none,
}


def build_pruner(cfg) -> "optuna.pruners.BasePruner":
    """The Optuna pruner for a ``[pruner]`` table."""
    import warnings

    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return PRUNERS[cfg.type](cfg)


__all__ = ["PRUNERS", "build_pruner"]
