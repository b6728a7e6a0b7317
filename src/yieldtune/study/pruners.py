"""Pruner registry: the ``[pruner] type`` of a study file -> an Optuna pruner.

Every parameter is spelled out in the study file or takes the explicit constant default of its
``*Spec`` model in :mod:`yieldtune.study.spec`; nothing is "auto". Steps are 1-based epochs for
Transformer trials and 1-based boosting rounds for GBM trials.

The rule for a study with two model families: **a trial is compared only with trials of its own family.**
Epoch 10 of a Transformer and round 10 of a GBM are not the same fidelity, so every study pruner is wrapped
in :class:`FamilyPruner`, which hands the inner (unchanged Optuna) pruner a view of the study holding only
the trials of the running trial's family; each family gets its own inner pruner instance.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING

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


FAMILY_ATTR = "family"
DEFAULT_FAMILY = "transformer"


def trial_family(trial) -> str:
    """The model family of a (frozen) trial: its ``family`` parameter, else its user attribute."""
    return str(trial.params.get("family") or trial.user_attrs.get(FAMILY_ATTR) or DEFAULT_FAMILY)


class _FamilyStorage:
    """A read view of a study's storage that lists only the trials of one family (for pruners)."""

    def __init__(self, storage, family: str) -> None:
        self._inner, self._family = storage, family

    def get_all_trials(self, study_id, deepcopy: bool = True, states=None):
        trials = self._inner.get_all_trials(study_id, deepcopy=deepcopy, states=states)
        return [t for t in trials if trial_family(t) == self._family]

    def __getattr__(self, name):
        return getattr(self._inner, name)


def family_view(study: "optuna.Study", family: str, pruner=None) -> "optuna.Study":
    """``study`` as a study holding only the trials of ``family`` (read-only use: pruners, plots)."""
    import optuna

    return optuna.Study(study_name=study.study_name, storage=_FamilyStorage(study._storage, family),
                        sampler=study.sampler, pruner=pruner)


def _build(cfg):
    return PRUNERS[cfg.type](cfg)


class FamilyPruner:
    """Asks an Optuna pruner (one instance per family) with only the running trial's family in view.

    Optuna's pruners (Hyperband's bracket studies included) read the other trials through the study's
    storage, so a study view over :class:`_FamilyStorage` reaches every one of them unchanged.
    """

    def __init__(self, cfg) -> None:
        self.cfg = cfg
        self._inner: dict[str, "optuna.pruners.BasePruner"] = {}

    def inner(self, family: str) -> "optuna.pruners.BasePruner":
        if family not in self._inner:
            self._inner[family] = _build(self.cfg)
        return self._inner[family]

    def prune(self, study: "optuna.Study", trial) -> bool:
        family = trial_family(trial)
        inner = self.inner(family)
        return inner.prune(family_view(study, family, inner), trial)


@functools.lru_cache(maxsize=1)
def _family_pruner_class() -> type:
    """:class:`FamilyPruner` as a subclass of Optuna's BasePruner (optuna is imported lazily here)."""
    import optuna

    return type("FamilyPruner", (FamilyPruner, optuna.pruners.BasePruner), {})


def build_pruner(cfg, *, by_family: bool = False) -> "optuna.pruners.BasePruner":
    """The Optuna pruner for a ``[pruner]`` table; ``by_family`` (a study searching several model
    families) wraps it so each family is pruned among its own trials."""


    pruner = _build(cfg)
    if not by_family or cfg.type == "none":
        return pruner
    return _family_pruner_class()(cfg)


__all__ = ["PRUNERS", "build_pruner", "FamilyPruner", "family_view", "trial_family", "FAMILY_ATTR"]
