"""Sampler registry: the ``[sampler] type`` of a study file -> an Optuna sampler.

Workers in different processes each build their own sampler from the same study file; TPE's
``constant_liar`` makes them avoid proposing what another worker is already running.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import optuna

    from yieldtune.study.space import SearchSpace


def _tpe(cfg, space):
    import optuna

    return optuna.samplers.TPESampler(
        seed=cfg.seed, n_startup_trials=cfg.n_startup_trials, n_ei_candidates=cfg.n_ei_candidates,
        multivariate=cfg.multivariate, group=cfg.group and cfg.multivariate, constant_liar=cfg.constant_liar)


def _random(cfg, space):
    import optuna

    return optuna.samplers.RandomSampler(seed=cfg.seed)


def _cmaes(cfg, space):
    import optuna

    return optuna.samplers.CmaEsSampler(
        seed=cfg.seed, n_startup_trials=cfg.n_startup_trials, sigma0=cfg.sigma0,
        restart_strategy=cfg.restart_strategy, use_separable_cma=cfg.use_separable_cma,
        with_margin=cfg.with_margin, consider_pruned_trials=cfg.consider_pruned_trials,
        warn_independent_sampling=False)


def _qmc(cfg, space):
    import optuna

    return optuna.samplers.QMCSampler(seed=cfg.seed, qmc_type=cfg.qmc_type, scramble=cfg.scramble,
                                      warn_independent_sampling=False, warn_asynchronous_seeding=False)


def _grid(cfg, space):
    import optuna

    return optuna.samplers.GridSampler(space.grid(), seed=cfg.seed)


SAMPLERS: dict[str, Callable] = {"tpe": _tpe, "random": _random, "cmaes": _cmaes, "qmc": _qmc, "grid": _grid}


WORKER_STARTS_ATTR = "worker_starts:"  # + worker id: how many times a worker with that id has started


def record_worker_start(study: "optuna.Study", worker_id: str) -> int:
    """How many times ``worker_id`` started on this study before (0 the first time); counts this start."""
    key = WORKER_STARTS_ATTR + worker_id
    starts = int(study._storage.get_study_system_attrs(study._study_id).get(key, 0))
    study._storage.set_study_system_attr(study._study_id, key, starts + 1)
    return starts


def build_sampler(cfg, space: "SearchSpace | None" = None, *, worker_id: str | None = None, start: int = 0
                  ) -> "optuna.samplers.BaseSampler":
    """The Optuna sampler for a ``[sampler]`` table (``space`` is needed for ``grid``).

    With a seed and a ``worker_id``, the sampler seed is ``seed + crc32("<worker_id>#<start>")``, ``start``
    being how often that worker id started on the study before (:func:`record_worker_start`): parallel
    workers get different seeds (identical ones would propose identical configurations), a restarted worker
    does not replay its first configurations, and a fresh study run again reproduces the same seeds.
    """
    import zlib


    if cfg.seed is not None and worker_id is not None:
        salt = worker_id if start == 0 else f"{worker_id}#{start}"  # start 0 keeps the seeds of earlier versions
        cfg = cfg.model_copy(update={"seed": (cfg.seed + zlib.crc32(salt.encode())) % 2**31})
    return SAMPLERS[cfg.type](cfg, space)


__all__ = ["SAMPLERS", "build_sampler", "record_worker_start"]
