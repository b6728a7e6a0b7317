"""Several shorter runs of one configuration, averaged (``tune train --model-runs N``).

One run's predictions on new molecules swing with its seed (README Round 7: sd 0.08 over seeds on Test4 with
a validation split, 0.02 without). N runs with different seeds, each training 1/N of the epochs the data size
gives, cost about what one full run costs, and their mean is steadier. On the unseen-molecule selection
hold-outs two half-length runs led one full run by +0.036 ± 0.018 alone, but inside the blend by only
+0.009 ± 0.006 (README Round 12), so one run stays the default. A given ``train.epochs`` is per run.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from yieldtune.config import RunConfig

RUN_SEED_STEP = 100  # run k trains with train.seed + 100 k (Round 12 measured with these seeds)


def run_configs(config: RunConfig, n_rows: int, runs: int) -> list[RunConfig]:
    """Each run's configuration for ``n_rows`` training rows: seeds ``seed + 100 k``; with ``train.epochs`` unset
    each trains ``1 / runs`` of the epochs the data size gives (at least one), so ``runs`` cost about one run.
    One run is ``config`` itself."""
    if runs < 1:
        raise ValueError(f"runs must be at least 1, got {runs}")
    if runs == 1:
        return [config]
    epochs = config.train.epochs or max(1, config.train.epochs_for(n_rows) // runs)
    return [config.with_overrides({"train.seed": config.train.seed + RUN_SEED_STEP * k, "train.epochs": epochs})
            for k in range(runs)]


def fit_runs(config: RunConfig, train, val=None, *, runs: int, device: str = "auto",
             cache_dir: str | Path | None = None, on_epoch: Callable | None = None,
             progress: bool = False) -> list[tuple[Any, Any]]:
    """Train every run of :func:`run_configs` on the same rows (``val``: each picks its own best epoch there):
    (:class:`~yieldtune.train.trainer.Trainer`, its :class:`~yieldtune.train.trainer.FitResult`) in run order, the
    trainer for the device and precision it resolved."""
    from yieldtune.train.trainer import Trainer

    cache = Path(cache_dir) if cache_dir else None
    trainers = [Trainer(cfg, device=device, cache_dir=cache, progress=progress)
                for cfg in run_configs(config, len(train), runs)]
    return [(t, t.fit(train, val, on_epoch=on_epoch)) for t in trainers]


def mean_of_runs(predictions: list[Any]) -> np.ndarray | None:
    """The runs' mean prediction (float64), None where the runs have none (no validation rows)."""
    if not predictions or any(p is None for p in predictions):
        return None
    return np.mean([np.asarray(p, np.float64) for p in predictions], axis=0)


__all__ = ["RUN_SEED_STEP", "fit_runs", "mean_of_runs", "run_configs"]
