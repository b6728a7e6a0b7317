"""The fingerprint baseline every quality claim is measured against: LightGBM on per-role summed Morgan counts.

Untuned on purpose (1,500 trees, LightGBM's defaults otherwise): a ten-line model a chemist would try first.
It fits on one thread unless told otherwise; LightGBM's deterministic mode gives the same trees on any number
of threads, so ``tune train`` and study ensembles let the rows decide (``threads=None``, :func:`baseline_threads`).
``tune bench baseline`` trains it on the same split as a Transformer run, in the same invocation, so a figure
is reported as a ratio to it.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from yieldtune.config import RunConfig
from yieldtune.data.table import ReactionTable
from yieldtune.metrics import regression_metrics
from yieldtune.model.gbm import GBMPredictor, cpu_share

N_TREES = 1500
BASELINE_BLOCKS = "morgan"
# Training rows per LightGBM thread: on the 2-core development machine two threads fitted 3,058 and 20,000 rows
# 1.5x as fast as one, and slowed the quick start's 864 rows (thread overhead per tree; README, Round 11)
ROWS_PER_THREAD = 1500


def baseline_threads(n_rows: int, share: int | None = None) -> int:
    """LightGBM threads for ``n_rows`` training rows: one per :data:`ROWS_PER_THREAD` rows, at least one, at most
    ``share`` (None: the process's CPU share, :func:`~yieldtune.model.gbm.cpu_share`)."""
    share = cpu_share() if share is None else share
    return max(1, min(int(share), n_rows // ROWS_PER_THREAD))


def baseline_config(*, radius: int = 2, n_bits: int = 2048, n_trees: int = N_TREES, seed: int = 0,
                    blocks: str = BASELINE_BLOCKS, threads: int = 1) -> RunConfig:
    """The baseline as a GBM-family configuration (LightGBM's defaults written out), which its saved
    ``gbm.json`` records; ``blocks`` other than Morgan give the same LightGBM on other features (the blend's
    DRFP GBM, :mod:`yieldtune.ensemble.blend`)."""
    return RunConfig.model_validate({"family": "gbm", "gbm": {
        "n_rounds": n_trees, "early_stopping_rounds": 0, "learning_rate": 0.1, "num_leaves": 31,
        "min_child_samples": 20, "feature_fraction": 1.0, "bagging_fraction": 1.0, "fp_radius": radius,
        "fp_bits": n_bits, "blocks": blocks, "seed": seed, "num_threads": threads}})


def fit_baseline(train: ReactionTable, *, radius: int = 2, n_bits: int = 2048, n_trees: int = N_TREES,
                 seed: int = 0, cache_dir: str | None = None, blocks: str = BASELINE_BLOCKS,
                 threads: int | None = 1) -> GBMPredictor:
    """The fitted baseline, a GBM-family predictor (saved and loaded like any GBM member); the features are
    the GBM family's per-role Morgan sums (or ``blocks``). Trained by the GBM family's own :func:`fit_gbm`
    (no validation rows: exactly ``n_trees`` rounds), so the family and the baseline share one LightGBM call.
    ``threads`` None: :func:`baseline_threads` for these rows (the trees are the same on any number)."""
    from yieldtune.train.gbm import fit_gbm

    config = baseline_config(radius=radius, n_bits=n_bits, n_trees=n_trees, seed=seed, blocks=blocks,
                             threads=baseline_threads(len(train)) if threads is None else threads)
    return fit_gbm(config, train, cache_dir=cache_dir).predictor


def run_baseline(train: ReactionTable, test: ReactionTable, *, seed: int = 0,
                 cache_dir: str | None = None, **kwargs: Any) -> tuple[dict[str, Any], np.ndarray]:
    """Train on ``train``, score ``test``: ``{"test": {r2, mae, rmse, n}, "n_train", "seconds", ...}`` and the
    test predictions."""
    t0 = time.perf_counter()
    pred, _ = fit_baseline(train, seed=seed, cache_dir=cache_dir, **kwargs).predict(test.reactions)
    return {"model": f"LightGBM {kwargs.get('n_trees', N_TREES)} trees on per-role summed Morgan counts "
                     f"(radius {kwargs.get('radius', 2)}, {kwargs.get('n_bits', 2048)} bits)",
            "n_train": len(train), "test": {"n": len(test), **regression_metrics(test.yields, pred)},
            "seconds": round(time.perf_counter() - t0, 2)}, pred


__all__ = ["BASELINE_BLOCKS", "N_TREES", "ROWS_PER_THREAD", "baseline_config", "baseline_threads", "fit_baseline",
           "run_baseline"]
